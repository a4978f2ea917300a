"""srlab benchmark: PSNR/SSIM by the standard protocol (``srlab.eval.benchmark``)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from srlab.cli.common import (
    UsageError,
    add_cache_options,
    add_readme_args,
    benchmark_sets,
    check_model,
    int_at_least,
    set_threads,
)

INCOMPLETE = 3  # exit status of a run stopped by --budget: not a failure, not done either


def add_parser(sub: argparse._SubParsersAction) -> None:
    from srlab.image.degrade import TRACKS

    p = sub.add_parser("benchmark", help="PSNR/SSIM by the standard protocol, and CPU speed",
                       description="Standard protocol: modcrop, MATLAB-bicubic LR, Y-channel "
                                   "PSNR/SSIM with border = scale; throughput in output "
                                   "megapixels per second, measured in the same run. Peers "
                                   "(others' models, labelled as such): opencv-espcn, "
                                   "opencv-fsrcnn, opencv-fsrcnn-small; with the 'peers' "
                                   "extra realesrgan-x4plus, realesrgan-x4plus-anime, "
                                   "realesr-animevideov3, span-ch48, span-ch52.")
    p.add_argument("-m", "--model", action="append", required=True, metavar="NAME",
                   help="model or peer to score (repeatable); 'shipped' = every model "
                        "with weights shipped at the scale; a trailing '+' (span+) adds the "
                        "x8 flip/rotation self-ensemble")
    p.add_argument("-s", "--scale", action="append", type=int, choices=(2, 3, 4),
                   metavar="S", help="scale (repeatable; default 4)")
    p.add_argument("-d", "--dataset", action="append", type=Path, metavar="DIR",
                   help="folder of HR images (repeatable; default: Set5 from $SRLAB_SHARED)")
    p.add_argument("--weights", action="append", default=[], metavar="MODEL=FILE",
                   help="weights file for a model instead of its shipped weights")
    p.add_argument("-o", "--out", type=Path, default=Path("out/benchmark"), metavar="DIR",
                   help="where benchmark.md/.csv/.json go (default: out/benchmark)")
    add_readme_args(p, "benchmark")
    p.add_argument("--gmsd", action="store_true",
                   help="add GMSD (perceptual, lower is better) to every table cell")
    p.add_argument("--niqe", action="store_true",
                   help="add the outputs' NIQE (no-reference, lower is better; "
                        "srlab inspect --niqe scores folders without ground truth)")
    p.add_argument("--degrade", action="append", default=None, metavar="TRACK",
                   choices=["clean", *TRACKS],
                   help="score on seeded degraded LR inputs instead of (or, with 'clean', "
                        "beside) the protocol's (repeatable): " + ", ".join(TRACKS)
                        + " (see degrade.TRACKS)")
    p.add_argument("--strip", type=Path, default=None, metavar="PNG",
                   help="also draw LR | each model | HR crops of the first 3 images of the "
                        "first dataset, on the last --degrade track, at the first scale")
    add_cache_options(p)
    p.add_argument("--budget", type=float, default=None, metavar="SECONDS",
                   help="stop starting new images after SECONDS: each image's scores are "
                        "cached as soon as measured, so a slow row is computed in pieces; "
                        "an unfinished run writes no table and exits with status 3, and the "
                        "same command continues it")
    p.add_argument("--threads", type=int_at_least(1, "--threads"), default=None, metavar="N")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from srlab.eval import benchmark as bm
    from srlab.eval import tables
    from srlab.zoo.catalog import shipped_models

    set_threads(args.threads)
    deadline = None
    if args.budget is not None:
        if not args.budget > 0:
            raise UsageError(f"--budget must be a positive number of seconds, got {args.budget}")
        if args.cache is None:
            raise UsageError("--budget needs the score cache (it keeps the pieces): "
                             "drop --no-cache")
        deadline = time.monotonic() + args.budget
    scales = args.scale or [4]
    from srlab.eval.peers import check_peer_scale
    from srlab.eval.runners import split_ensemble

    for name in args.model:
        if name in bm.PEERS:  # a scale it lacks is skipped with a line; none of them: usage
            if all(why := [check_peer_scale(name, s) for s in scales]):
                raise UsageError(why[0])
        elif name != "shipped":
            for scale in scales:
                check_model(split_ensemble(name)[0], scale, allow_auto=True)
    datasets = benchmark_sets(args.dataset)
    weights = {}
    for item in args.weights:
        if "=" not in item:
            raise UsageError(f"--weights expects MODEL=FILE, got {item!r}")
        name, file = item.split("=", 1)
        weights[name] = file
    niqe_model = None
    if args.niqe:
        from srlab.image.niqe import load_model

        niqe_model = load_model()
    rows = []
    tracks = list(dict.fromkeys(args.degrade or ["clean"]))
    for scale in scales:  # "shipped" means a different list of models at each scale
        names = list(dict.fromkeys(
            n for m in args.model for n in (shipped_models(scale) if m == "shipped" else [m])))
        for track in tracks:
            try:
                rows += bm.run_benchmark(names, [scale], datasets, weights=weights,
                                         cache=args.cache, refresh=args.refresh,
                                         track=None if track == "clean" else track,
                                         niqe_model=niqe_model, deadline=deadline,
                                         log=lambda line: print(line, file=sys.stderr))
            except bm.BenchmarkIncomplete as exc:
                print(f"srlab benchmark: {exc}", file=sys.stderr)
                return INCOMPLETE
    command = tables.command_line()
    if args.strip is not None:
        last = tracks[-1]
        bm.visual_strip([m for m in args.model if m != "shipped"], scales[0], datasets[0],
                        args.strip, track=None if last == "clean" else last)
        print(f"wrote {args.strip}", file=sys.stderr)
    md = tables.write_tables(rows, args.out, command, gmsd=args.gmsd, niqe=args.niqe)
    print(md.read_text())
    if args.readme is not None:
        tables.update_readme(args.readme, args.section, md.read_text())
        print(f"updated section '{args.section}' of {args.readme}", file=sys.stderr)
    return 0

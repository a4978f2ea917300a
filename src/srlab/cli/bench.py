"""srlab bench: CPU speed beside bicubic and OpenCV (``srlab.eval.speed``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from srlab.cli.common import UsageError, add_readme_args
from srlab.cli.common import check_model as _check_model
from srlab.cli.common import int_at_least as _int_at_least
from srlab.runtime.measured import BACKENDS


def _size(text: str) -> tuple[int, int]:
    """'480x320' -> (480, 320)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 480x320, not '{text}'") from None
    if w < 8 or h < 8:
        raise argparse.ArgumentTypeError(f"size must be at least 8x8, not '{text}'")
    return w, h


def _add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="CPU speed vs bicubic and OpenCV ESPCN/FSRCNN, one run",
                       description="Output megapixels per second of srlab models on each "
                                   "backend (torch, onnx) beside bicubic (PIL, OpenCV) and "
                                   "OpenCV dnn_superres ESPCN/FSRCNN, timed interleaved in "
                                   "one run (median of N) and reported as ratios to OpenCV "
                                   "ESPCN; then time vs image size and 1 vs 2 threads. "
                                   "Writes speed.md and speed.json.")
    p.add_argument("-m", "--model", action="append", default=None, metavar="NAME",
                   help="model (repeatable; default: span-fast, span and every model with "
                        "shipped weights) or a peer to time beside them (realesrgan-x4plus, "
                        "realesr-animevideov3, span-ch48, ...: see docs/benchmarks.md)")
    p.add_argument("--file", action="append", type=Path, default=None, metavar="FILE",
                   help="your own model file (.safetensors/.pth; repeatable, one scale): "
                        "timed beside span at the file's scale in one run (default models: "
                        "span; no size/thread tables); --store keeps its Mpx/s and PSNR cost "
                        "per backend in the user cache for its --backend auto")
    p.add_argument("-s", "--scale", action="append", type=int, choices=(2, 3, 4),
                   metavar="S", help="scale (repeatable; default: 2 and 4)")
    p.add_argument("--backend", action="append",
                   choices=[b for b in BACKENDS if b != "auto"], default=None,
                   help="backend (repeatable; default: torch, onnx and onnx-int8 if installed, "
                        "torch-bf16 if the CPU lists a bf16 flag, openvino and ncnn if installed)")
    p.add_argument("--store", nargs="?", default=None, metavar="FILE", const="",
                   help="also score each backend's PSNR against torch float32 (Set5, Urban100 "
                        "slice) and store Mpx/s and PSNR cost per model, scale and CPU for "
                        "--backend auto (default FILE: src/srlab/assets/backends.json)")
    p.add_argument("--store-images", type=_int_at_least(1, "--store-images"), default=20,
                   metavar="N", help="Urban100 images scored for --store/--pareto "
                                     "(default: 20)")
    p.add_argument("--pareto", type=Path, default=None, metavar="PNG",
                   help="also draw PSNR (Urban100, largest scale) against Mpx/s for every "
                        "model, backend and peer, with this CPU's fp32/bf16/int8 peak lines")
    p.add_argument("--size", type=_size, default=(480, 320), metavar="WxH",
                   help="LR input size (default: 480x320)")
    p.add_argument("--repeats", type=_int_at_least(1, "--repeats"), default=7, metavar="N",
                   help="timed runs per model, median reported (default: 7)")
    p.add_argument("--threads", type=_int_at_least(1, "--threads"), default=1, metavar="N",
                   help="threads for the main table, every runner alike (default: 1)")
    p.add_argument("--no-sizes", action="store_true", help="skip the time-vs-size table")
    p.add_argument("--no-threads", action="store_true", help="skip the 1-vs-2-threads table")
    p.add_argument("--huge", action="store_true",
                   help="also upscale a procedural 8000x6000 image x2 in tiles in a "
                        "subprocess and report its peak RSS (minutes)")
    p.add_argument("--huge-model", action="append", default=None, metavar="NAME",
                   help="model(s) for --huge (default: span-fast and bicubic)")
    p.add_argument("--huge-size", type=_size, default=(8000, 6000), metavar="WxH")
    p.add_argument("-o", "--out", type=Path, default=Path("out/bench"), metavar="DIR",
                   help="where speed.md/speed.json go (default: out/bench)")
    add_readme_args(p, "performance")
    p.set_defaults(handler=_cmd_bench)


def _cmd_bench(args: argparse.Namespace) -> int:
    from srlab.eval import speed
    from srlab.eval.peers import PEERS, check_peer_scale
    from srlab.eval.tables import command_line, update_readme

    files = _files(args)  # your own model files: cli/model_file.py
    scales = [files[0][1].scale] if files else args.scale or [2, 4]
    chosen = args.model or []
    asked_peers = [m for m in dict.fromkeys(chosen) if m in PEERS]  # timed as peers
    models = [m for m in chosen if m not in PEERS] if chosen else \
        (["span"] if files else speed.default_models())
    for name in models:
        for s in scales:
            _check_model(name, s)
    for name in asked_peers:  # a scale it lacks is skipped with a line; none of them: usage
        if all(why := [check_peer_scale(name, s) for s in scales]):
            raise UsageError(why[0])
    peers = list(dict.fromkeys([*speed.PEER_LABELS, *asked_peers]))
    if args.readme is not None and not args.readme.is_file():
        raise UsageError(f"--readme {args.readme}: no such file")

    def log(line: str) -> None:
        print(line, file=sys.stderr)

    log(speed.cpu_note())
    models += [str(f) for f, _ in files]
    rows = speed.run_speed(models, scales, backends=args.backend, lr_size=args.size,
                           repeats=args.repeats, threads=args.threads, peers=peers,
                           sizes=not (args.no_sizes or files),
                           thread_counts=() if args.no_threads or files else (1, 2), log=log)
    huge = []
    if args.huge:
        for name in args.huge_model or ["span-fast", "bicubic"]:
            log(f"huge: {name} x2 on {args.huge_size[0]}x{args.huge_size[1]} ...")
            huge.append(speed.huge_run(name, scale=2, size=args.huge_size,
                                       threads=args.threads))
            log(f"huge: {huge[-1]['seconds']:.1f} s, peak RSS {huge[-1]['peak_rss_gib']:.2f} GiB")
    command = command_line()
    md = speed.write_speed(rows, args.out, command=command, huge=huge)
    print(md.read_text())
    deltas = None
    if args.store is not None or args.pareto is not None:
        scores = speed.accuracy_scores(models, scales, args.backend or speed.default_backends(),
                                       sets=(("Set5", 5), ("Urban100", args.store_images)),
                                       peers=[*speed.PEERS_SCORED, *asked_peers]
                                       if args.pareto else (),
                                       log=log)
        deltas = speed.accuracy_deltas(scores)
    if args.pareto is not None:
        from srlab.eval.pareto import pareto_chart

        chart = pareto_chart(rows, scores, args.pareto, command=command,
                             images=args.store_images)
        log(f"wrote {chart}")
    if args.store is not None and files:  # the files' choice, in the user cache only
        _store_files(files, rows, deltas, command, log)
    elif args.store is not None:
        stored = speed.store_rows(rows, deltas, path=Path(args.store) if args.store else None,
                                  command=command)
        log(f"stored measurements in {stored}")
    log(f"auto would pick (x{max(scales)}): {speed.suggested_backends(rows, deltas)}")
    if args.readme is not None:
        update_readme(args.readme, args.section, md.read_text())
        log(f"updated section '{args.section}' of {args.readme}")
    return 0


def _files(args: argparse.Namespace) -> list[tuple[Path, object]]:
    """``--file`` values with their descriptions; all of one scale, which ``--scale`` (when
    given) must be."""
    from srlab.cli.model_file import info

    files = [(f, info(f)) for f in args.file or []]
    scales = {i.scale for _, i in files}  # type: ignore[attr-defined]
    if len(scales) > 1:
        raise UsageError("--file: the files have different scales "
                         f"({', '.join(f'x{s}' for s in sorted(scales))}); bench one scale")
    if files and args.scale and set(args.scale) != scales:
        raise UsageError(f"--file {files[0][0].name} is x{scales.pop()}: drop --scale")
    return files


def _store_files(files: list, rows: list, deltas: dict | None, command: str, log) -> None:
    """Each file's Mpx/s and PSNR cost per backend, under its sha256 (``file_key``), in the
    user cache that ``--backend auto`` reads for files (``runtime.foreign``)."""
    from dataclasses import replace

    from srlab.eval import speed
    from srlab.runtime.foreign import file_key, file_store_path

    for path, i in files:
        key = file_key(i)
        mine = [replace(r, model=key) for r in rows if r.model == str(path)]
        scores = {(key, s): v for (m, s), v in (deltas or {}).items() if m == str(path)}
        stored = speed.store_rows(mine, scores, path=file_store_path(), command=command)
        log(f"stored {path.name}'s measurements in {stored}")


# the verb's public entry, as in every cli module (the functions above keep their names and
# bodies from before the split: they are being changed in another branch)
add_parser = _add_bench

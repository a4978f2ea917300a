"""srlab inspect: what auto reads in images (``srlab.image.condition``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from srlab.cli.common import UsageError, add_readme_args, int_at_least


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="what auto detects in images (damage, strength)",
                       description="Print the condition auto reads from each image and the "
                                   "model strength it would choose; --eval measures the "
                                   "estimator on a seeded labelled set made from training "
                                   "images.")
    p.add_argument("images", nargs="*", type=Path, metavar="IMAGE")
    p.add_argument("--eval", dest="eval_dir", nargs="?", type=Path, default=None,
                   const=Path("${SRLAB_SHARED}/datasets/train/BSDS500-test"), metavar="DIR",
                   help="labelled-set confusion table from the HR images in DIR (default: "
                        "BSDS500-test of $SRLAB_SHARED's training images)")
    p.add_argument("--limit", type=int_at_least(1, "--limit"), default=100, metavar="N",
                   help="images of DIR to use (default 100)")
    p.add_argument("--score", action="store_true",
                   help="with --eval: also upscale every input at each strength step and "
                        "report auto, span, span-real and the best step per class in PSNR/SSIM "
                        "(x2, torch; slow: about 5 upscales per input)")
    add_readme_args(p, "estimator")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if not args.images and args.eval_dir is None:
        raise UsageError("give one or more images, or --eval")
    if args.eval_dir is not None:
        from srlab.eval.inspect import confusion_markdown, labelled_eval
        from srlab.eval.tables import command_line, update_readme
        from srlab.train.config import expand_path

        folder = Path(expand_path(str(args.eval_dir)))
        if not folder.is_dir():
            raise UsageError(f"dataset folder not found: {folder}")
        log = (lambda m: print(m, file=sys.stderr)) if args.score else None
        md = confusion_markdown(labelled_eval(folder, args.limit, score=args.score, log=log),
                                command_line())
        print(md)
        if args.readme is not None:
            update_readme(args.readme, args.section, md)
            print(f"updated section '{args.section}' of {args.readme}", file=sys.stderr)
    from srlab.image.condition import estimate
    from srlab.image.imageio import load_image

    for path in args.images:
        cond = estimate(load_image(path).array, path)
        verdict = ("span (faithful)" if cond.denoise == 0 else "span-real (clean it up)"
                   if cond.denoise == 1 else f"span/span-real blend {cond.denoise:g}")
        print(f"{path}: {cond.describe()} -> {cond.decision()}: {verdict}")
    return 0

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
    p.add_argument("--gray", action="store_true",
                   help="with --eval: the same set on gray versions of the images (old photos "
                        "and scans are often gray; no colour cue)")
    add_readme_args(p, "estimator")
    g = p.add_argument_group("NIQE (no-reference naturalness score, lower is better)")
    g.add_argument("--niqe", action="store_true",
                   help="print the NIQE of each IMAGE (files or folders) and their mean, "
                        "e.g. of a folder of upscales that has no ground truth")
    g.add_argument("--niqe-model", type=Path, default=None, metavar="FILE",
                   help="pristine model to score against (default: the one srlab ships)")
    g.add_argument("--fit-niqe", type=Path, default=None, metavar="OUT",
                   help="fit NIQE's pristine model on the training HR images in the IMAGE "
                        "folders (default: BSDS500-train, BSDS500-test and "
                        "ImageNet-sample400 of $SRLAB_SHARED/datasets/train) into OUT "
                        "(srlab ships src/srlab/assets/niqe_pristine.json)")
    p.set_defaults(handler=run)


def _niqe(args: argparse.Namespace) -> int:
    """--niqe / --fit-niqe: see srlab.eval.noref."""
    from srlab.eval import noref
    from srlab.image.niqe import load_model

    if args.fit_niqe is not None:
        from srlab.eval.tables import command_line

        folders = args.images or noref.default_fit_folders()
        for d in folders:
            if not d.is_dir():
                raise UsageError(f"--fit-niqe takes folders of training images: {d} is not one")
        model = noref.fit_folders(folders, args.fit_niqe, command_line(),
                                  log=lambda line: print(line, file=sys.stderr))
        print(f"wrote {args.fit_niqe}: {model.meta['blocks']} pristine blocks from "
              f"{model.meta['images_used']} images ({model.meta['images_skipped']} below "
              "96x96 skipped)")
        return 0
    if not args.images:
        raise UsageError("--niqe needs images or folders to score")
    results = noref.score_files(args.images, load_model(args.niqe_model))
    if not results:
        raise UsageError("no images in " + ", ".join(map(str, args.images)))
    for r in results:
        if r.score is None:
            print(f"srlab: error: {r.error}", file=sys.stderr)
        else:
            print(f"{r.path}  {r.score:.4f}")
    scored = [r.score for r in results if r.score is not None]
    if scored:
        print(f"mean NIQE over {len(scored)} images: {sum(scored) / len(scored):.4f}"
              + (f" ({len(results) - len(scored)} could not be scored)"
                 if len(scored) < len(results) else ""))
    return 0 if len(scored) == len(results) else 1


def run(args: argparse.Namespace) -> int:
    if args.niqe or args.fit_niqe is not None:
        return _niqe(args)
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
        md = confusion_markdown(labelled_eval(folder, args.limit, score=args.score,
                                                gray=args.gray, log=log),
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

"""NIQE of several models' upscales of a folder of real photos that has no ground truth
(default: RealSRSet, BSRGAN's 20 real degraded photos): each image is upscaled by each
model (its torch weights: the trained numbers) and the output scored with srlab's NIQE
(``srlab.image.niqe``, lower is better). Prints a markdown table, one row per image and a
mean row, with the command that made it. For a folder of outputs made elsewhere (say, a
peer's), ``srlab inspect --niqe DIR`` scores it the same way.

Usage: python tools/niqe_real.py [-m bicubic-matlab -m span -m span-real] [-s 4] [-d DIR]
       [--weights MODEL=FILE] [--readme docs/real-world.md --section niqe-realsrset]
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import numpy as np

from srlab.eval.noref import expand, upscaled_niqe
from srlab.eval.runners import make_upscaler
from srlab.eval.speed import load_average
from srlab.image.niqe import load_model


def main() -> int:
    from srlab.image.datasets import shared_dir

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-m", "--model", action="append", metavar="NAME")
    ap.add_argument("-s", "--scale", type=int, default=4, choices=(2, 3, 4))
    ap.add_argument("-d", "--dataset", type=Path,
                    default=shared_dir() / "datasets" / "real" / "RealSRSet")
    ap.add_argument("--weights", action="append", default=[], metavar="MODEL=FILE")
    ap.add_argument("--readme", type=Path, default=None, metavar="FILE",
                    help="also write the table between FILE's <!-- srlab:SECTION --> markers")
    ap.add_argument("--section", default="niqe-realsrset", metavar="NAME")
    args = ap.parse_args()
    models = args.model or ["bicubic-matlab", "span", "span-real"]
    weights = dict(w.split("=", 1) for w in args.weights)
    files = expand([args.dataset])
    if not files:
        print(f"niqe_real: no images in {args.dataset}", file=sys.stderr)
        return 1
    pristine = load_model()
    scores: dict[str, list[float]] = {}
    loads = []
    for name in models:
        fn, _, _ = make_upscaler(name, args.scale, weights.get(name))
        scores[name] = upscaled_niqe(fn, files, pristine)
        loads.append(load_average())
        print(f"{name}: mean NIQE {np.mean(scores[name]):.3f}", file=sys.stderr)
    lines = ["| image | " + " | ".join(models) + " |", "|---" * (len(models) + 1) + "|"]
    for i, f in enumerate(files):
        lines.append(f"| {f.name} | " + " | ".join(f"{scores[m][i]:.2f}" for m in models) + " |")
    lines.append(f"| **mean of {len(files)}** | "
                 + " | ".join(f"**{np.mean(scores[m]):.3f}**" for m in models) + " |")
    command = "python tools/niqe_real.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    table = "\n".join(lines) + (
        f"\n\nNIQE (no-reference, lower is better; pristine model {pristine.digest} fitted "
        f"on srlab's training images) of x{args.scale} outputs of the images in "
        f"`{args.dataset.name}`. Made by `{command}` (1-minute load "
        f"{min(loads):.1f}-{max(loads):.1f}; the scores do not depend on it).")
    print(table)
    if args.readme is not None:
        from srlab.eval.tables import update_readme

        update_readme(args.readme, args.section, table)
        print(f"updated section '{args.section}' of {args.readme}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The upsampling study's report table: quality and checkerboard artifacts of the four
upsamplers (one shared trunk), measured on the shipped weights by the standard protocol.

Checkerboard: ``srlab.zoo.upsampling.checkerboard_score`` on each output's Y channel
(border = scale cropped), as a ratio to the same score of the HR image — 1.0 means no more
period-s energy than the ground truth has, above 1.0 means the upsampler added a pattern.

    python tools/upsampling_study.py --scale 4 --readme docs/studies.md   (and --scale 2)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from srlab.api import load_model
from srlab.eval.benchmark import run_benchmark
from srlab.eval.tables import markdown_table
from srlab.image.datasets import load_pairs, shared_dir
from srlab.image.metrics import rgb_to_y
from srlab.zoo.upsampling import checkerboard_score

MODELS = ("up-transposed", "up-resize-nearest", "up-resize-bilinear", "up-subpixel")
SETS = ("Set5", "Set14")


def _y(img: np.ndarray) -> np.ndarray:
    return rgb_to_y(img) if img.ndim == 3 else img.astype(np.float64)


def checkerboard_ratio(name: str, scale: int, datasets: list[Path]) -> float:
    """Mean over images of score(SR) / score(HR) on Y."""
    up = load_model(name, scale)
    ratios = []
    for ds in datasets:
        for _, lr, hr in load_pairs(ds, scale):
            sr = up.upscale_array(lr)
            ref = checkerboard_score(_y(hr), scale, border=scale)
            ratios.append(checkerboard_score(_y(sr), scale, border=scale) / max(ref, 1e-12))
    return float(np.mean(ratios))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--readme", type=Path, default=None)
    args = ap.parse_args()
    datasets = [shared_dir() / "datasets" / "benchmark" / d for d in SETS]
    missing = [str(d) for d in datasets if not d.is_dir()]
    if missing:
        print(f"error: benchmark sets not found: {', '.join(missing)}", file=sys.stderr)
        return 1
    models = ["bicubic-matlab", *MODELS]
    rows = run_benchmark(models, [args.scale], datasets, cache=Path("out/score-cache"),
                         log=lambda line: print(line, file=sys.stderr))
    table = markdown_table(rows).splitlines()
    table[0] += " checkerboard (SR/HR) |"
    table[1] += "---|"
    for i, name in enumerate(models):
        ratio = checkerboard_ratio(name, args.scale, datasets)
        table[2 + i] += f" {ratio:.2f} |"
    target = "" if args.readme is None else f" --readme {args.readme}"
    text = "\n".join(table) + (
        f"\n\nPSNR (dB) / SSIM on Y, border = scale; checkerboard: period-{args.scale} pattern "
        "energy of the output over that of the HR image (1.00 = none added), mean over the "
        f"images. Made by `python tools/upsampling_study.py --scale {args.scale}{target}`.")
    print(text)
    if args.readme is not None:
        from srlab.eval.tables import update_readme

        update_readme(args.readme, f"upsampling-x{args.scale}", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What differs between the A/B outputs of several models, in numbers: colour fidelity and
contrast, to read beside a blind judge's verdict.

For each model folder made by tools/ab_outputs.py (OUT/<model>/<source>_<stem>.png):
- on the track outputs (jpeg75_*, real_*), PSNR of Y, Cb and Cr against the protocol's HR
  (modcrop; BT.601 studio range, color.py; border = scale), so a claim such as "its colour is
  worse" is measured, not guessed;
- on every output, the luma's standard deviation and its mean absolute high-pass (luma minus
  its 9x9 box mean): a GAN stage that raises local contrast or paints texture shows there.

Usage: python tools/ab_stats.py OUT -m span-real -m realesr-animevideov3 [--set DIR] [-s 4]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from srlab.image.datasets import benchmark_files, load_hr, shared_dir
from srlab.image.imageio import load_image
from srlab.image.metrics import rgb_to_y, ycbcr_psnr
from srlab.image.resize import modcrop


def contrast(img: np.ndarray) -> tuple[float, float]:
    """(std of luma, mean |luma - 9x9 box mean of luma|)."""
    import cv2

    y = rgb_to_y(img)
    return float(y.std()), float(np.abs(y - cv2.blur(y, (9, 9))).mean())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("-m", "--model", action="append", required=True, metavar="NAME")
    ap.add_argument("-s", "--scale", type=int, default=4, choices=(2, 3, 4))
    ap.add_argument("--set", type=Path, default=shared_dir() / "datasets" / "benchmark" / "BSD100")
    args = ap.parse_args()
    missing = [m for m in args.model if not (args.out / m).is_dir()]
    if missing:
        print(f"ab_stats: no output folder for {', '.join(missing)} in {args.out}",
              file=sys.stderr)
        return 2
    hr = {f.stem: modcrop(load_hr(f), args.scale) for f in benchmark_files(args.set)}
    print("| model | track | n | Y | Cb | Cr |\n|---|---|---|---|---|---|")
    rows = []
    for model in args.model:
        fidelity: dict[str, list[list[float]]] = {}
        stats = []
        for path in sorted((args.out / model).glob("*.png")):
            out = load_image(path).array
            stats.append(contrast(out))
            source = path.stem.split("_", 1)[0]
            if source == "photo":
                continue
            ref = hr[path.stem.split("_", 1)[1]]  # the protocol's HR, the same for every track
            fidelity.setdefault(source, []).append(ycbcr_psnr(out, ref, crop_border=args.scale))
        for source, vals in fidelity.items():
            y, cb, cr = np.mean(vals, axis=0)
            print(f"| {model} | {source} | {len(vals)} | {y:.2f} | {cb:.2f} | {cr:.2f} |")
        std, hp = np.mean(stats, axis=0)
        rows.append(f"| {model} | {len(stats)} | {std:.2f} | {hp:.2f} |")
    print("\n| model | outputs | luma std | luma high-pass |\n|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

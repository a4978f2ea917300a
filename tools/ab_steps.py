"""Outputs of two denoise steps of the span/span-real blend on scan-like damage, one folder per
step, for a blind A/B with ../shared/tools/ab_sheet.py: does the eye want more than the step
PSNR picks?

auto's learned step for JPEG-then-resize and halftone scans is 0.5, the step that scored best
in PSNR on training crops (docs/real-world.md). This writes, at x4, for images 100-119 of
BSDS500-test (training images; not the labelled set's first 100), a 512 px HR centre crop
through one seeded draw of the labelled set's halftone and JPEG-then-resize classes
(``eval.inspect``), and the 160 px centre crop of every RealSRSet photo auto gives 0.5, each
upscaled at both steps as OUT/d<step>/<source>_<stem>.png.

Usage: python tools/ab_steps.py OUT [--steps 0.5 1]
Then:  python ../shared/tools/ab_sheet.py SHEETS KEY.json 50 half=OUT/d0.5 full=OUT/d1 51
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from srlab.api import load_model
from srlab.eval.inspect import CLASSES, make_sample
from srlab.image.condition import estimate
from srlab.image.datasets import find_images, load_rgb, shared_dir
from srlab.image.imageio import load_image, save_image

CROP, PHOTO_CROP = 512, 160
KINDS = {"halftone": "halftone scan", "jtr": "JPEG q30-80 then resize 0.5-0.9 .png"}


def centre(img: np.ndarray, side: int) -> np.ndarray:
    h, w = img.shape[:2]
    y, x = (h - min(h, side)) // 2, (w - min(w, side)) // 2
    return img[y : y + side, x : x + side]


def inputs(photos: Path, step: float) -> list[tuple[str, np.ndarray]]:
    """(name, LR): the seeded scan-like draws, then the photos auto gives ``step``."""
    classes = {c.label: c for c in CLASSES}
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = find_images(shared_dir() / "datasets" / "train" / "BSDS500-test")[100:120]
        for i, p in enumerate(paths):
            hr = centre(load_rgb(p), CROP)
            for kind, label in KINDS.items():
                lr, _ = make_sample(hr, classes[label], [7, i], Path(tmp), f"{kind}{i}", scale=4)
                out.append((f"{kind}_{p.stem}", lr))
    for p in sorted(photos.iterdir()):
        if p.suffix.lower() in (".png", ".jpg", ".bmp"):
            img = load_image(p).array
            if estimate(img, p).denoise == step:
                out.append((f"photo_{p.stem}", centre(img, PHOTO_CROP)[..., :3]))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--steps", type=float, nargs=2, default=(0.5, 1.0), metavar="STEP")
    ap.add_argument("--real", type=Path,
                    default=shared_dir() / "datasets" / "real" / "RealSRSet")
    args = ap.parse_args()
    torch.set_num_threads(1)
    nets = {s: load_model("span", 4, denoise=s, backend="torch") for s in args.steps}
    for name, lr in inputs(args.real, args.steps[0]):
        for s, net in nets.items():
            folder = args.out / f"d{s:g}"
            folder.mkdir(parents=True, exist_ok=True)
            save_image(net.upscale_array(lr), folder / f"{name}.png")
    print(f"outputs in {', '.join(str(args.out / f'd{s:g}') for s in nets)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

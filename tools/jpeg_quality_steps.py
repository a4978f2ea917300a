"""Which denoise step scores best per JPEG quality, on training crops (``condition.JPEG_HEAVY``).

auto's learned step follows the kind of damage, not its severity (a JPEG's class step is
0.75). This measures, on the first 12 BSDS500-train images (training images only; a 96 px LR
crop each, MATLAB bicubic, then JPEG at each quality, as pixels), the mean Y PSNR of every
step of the span/span-real blend at x4 and x2: where full denoise (1) is best, a JPEG that
bad is raised to span-real.

Usage: nice -n 10 python tools/jpeg_quality_steps.py   (about 6 min on one core)
"""

from __future__ import annotations

import numpy as np
import torch

from srlab.api import load_model
from srlab.image.damage import STEPS
from srlab.image.datasets import find_images, load_rgb, shared_dir
from srlab.image.degrade import jpeg
from srlab.image.metrics import psnr
from srlab.image.resize import imresize, modcrop

QUALITIES = (30, 40, 50, 60, 75, 90)


def main() -> None:
    torch.set_num_threads(1)
    paths = find_images(shared_dir() / "datasets" / "train" / "BSDS500-train")[:12]
    print(f"| scale, quality | mean PSNR of steps {' / '.join(f'{s:g}' for s in STEPS)} "
          "| best |\n|---|---|---|")
    for sc in (4, 2):
        nets = {s: load_model(scale=sc, denoise=s, backend="torch") for s in STEPS}
        res: dict[int, dict[float, list[float]]] = {}
        for p in paths:
            hr = modcrop(load_rgb(p)[: 96 * sc, : 96 * sc], sc)
            lr0 = imresize(hr, 1 / sc)  # uint8 in, rounded uint8 out
            for q in QUALITIES:
                lr = jpeg(lr0, q)
                for s in STEPS:
                    res.setdefault(q, {}).setdefault(s, []).append(
                        psnr(nets[s].upscale_array(lr), hr, crop_border=sc))
        for q, d in res.items():
            m = {s: float(np.mean(v)) for s, v in d.items()}
            print(f"| x{sc}, q{q} | {' / '.join(f'{m[s]:.2f}' for s in STEPS)} | "
                  f"{max(m, key=lambda s: m[s]):g} |", flush=True)
    print("\nMade by `python tools/jpeg_quality_steps.py`.")


if __name__ == "__main__":
    main()

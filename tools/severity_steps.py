"""Which denoise step scores best per severity of one damage, on training crops (the raises in
``condition.choose``: ``JPEG_HEAVY``, ``NOISE_HEAVY``).

auto's learned step follows the kind of damage, not its severity (a JPEG's or sensor noise's
class step is 0.75). This measures, on the first 12 BSDS500-train images (training images
only; a 96 px LR crop each, MATLAB bicubic, then the damage at each severity), the mean Y
PSNR of every step of the span/span-real blend at x4 and x2, and for noise the mean noise
sigma ``condition.noise_sigma`` reads (what the rule sees): where full denoise (1) is best,
damage that bad is raised to span-real.

- ``jpeg``: JPEG at each quality, as pixels.
- ``noise``: Poisson-Gaussian sensor noise (``degrade.sensor_noise``, colour) of each sigma
  at mid-gray, seeded per image.

Usage: nice -n 10 python tools/severity_steps.py jpeg|noise [--readme docs/real-world.md]
(about 6 / 8 min on one core; ``--readme`` writes the table into the section
``severity-steps-KIND`` as well as printing it)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from srlab.api import load_model
from srlab.eval.tables import update_readme
from srlab.image.condition import noise_sigma
from srlab.image.damage import STEPS
from srlab.image.datasets import find_images, load_rgb, shared_dir
from srlab.image.degrade import jpeg, sensor_noise
from srlab.image.metrics import psnr
from srlab.image.resize import imresize, modcrop

SEVERITIES = {"jpeg": (30, 40, 50, 60, 75, 90), "noise": (4, 6, 8, 10, 12, 16, 20)}


def damaged(kind: str, lr: np.ndarray, level: int, seed: int) -> np.ndarray:
    if kind == "jpeg":
        return jpeg(lr, level)
    noisy = sensor_noise(lr, float(level), np.random.default_rng(seed))
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kind", choices=sorted(SEVERITIES))
    ap.add_argument("--readme", type=Path, default=None, metavar="MD")
    args = ap.parse_args()
    kind = args.kind
    torch.set_num_threads(1)
    paths = find_images(shared_dir() / "datasets" / "train" / "BSDS500-train")[:12]
    name = "quality" if kind == "jpeg" else "sigma (read)"
    lines = [f"| scale, {name} | mean PSNR of steps {' / '.join(f'{s:g}' for s in STEPS)} "
             "| best |", "|---|---|---|"]
    print("\n".join(lines))
    for sc in (4, 2):
        nets = {s: load_model(scale=sc, denoise=s, backend="torch") for s in STEPS}
        res: dict[int, dict[float, list[float]]] = {}
        read: dict[int, list[float]] = {}
        for i, p in enumerate(paths):
            hr = modcrop(load_rgb(p)[: 96 * sc, : 96 * sc], sc)
            lr0 = imresize(hr, 1 / sc)  # uint8 in, rounded uint8 out
            for level in SEVERITIES[kind]:
                lr = damaged(kind, lr0, level, seed=1000 * i + level)
                read.setdefault(level, []).append(noise_sigma(lr))
                for s in STEPS:
                    res.setdefault(level, {}).setdefault(s, []).append(
                        psnr(nets[s].upscale_array(lr), hr, crop_border=sc))
        for level, d in res.items():
            m = {s: float(np.mean(v)) for s, v in d.items()}
            what = f"q{level}" if kind == "jpeg" else f"{level} ({np.mean(read[level]):.1f})"
            lines.append(f"| x{sc}, {what} | {' / '.join(f'{m[s]:.2f}' for s in STEPS)} | "
                         f"{max(m, key=lambda s: m[s]):g} |")
            print(lines[-1], flush=True)
    made = (f"Made by `python tools/severity_steps.py {kind}"
            f"{f' --readme {args.readme}' if args.readme else ''}`.")
    print(f"\n{made}")
    if args.readme is not None:
        update_readme(args.readme, f"severity-steps-{kind}", "\n".join(lines) + f"\n\n{made}")


if __name__ == "__main__":
    main()

"""Which denoise step scores best per severity of one damage, on training crops (the raises in
``condition.choose``: ``JPEG_HEAVY``, ``NOISE_HEAVY``, ``SOFT``).

auto's learned step follows the kind of damage, not its severity (a JPEG's or sensor noise's
class step is 0.75). This measures, on the first 12 BSDS500-train images (training images
only; a 96 px LR crop each, MATLAB bicubic, then the damage at each severity), the mean Y
PSNR of every step of the span/span-real blend at x4 and x2, and for noise the mean noise
sigma ``condition.noise_sigma`` reads (what the rule sees): where full denoise (1) is best,
damage that bad is raised to span-real.

- ``jpeg``: JPEG at each quality, as pixels.
- ``noise``: Poisson-Gaussian sensor noise (``degrade.sensor_noise``, colour) of each sigma
  at mid-gray, seeded per image.
- ``blur``: a Gaussian blur of each sigma on the HR before the bicubic, then JPEG q75 and
  q60 as pixels (16 images); the column read is the median top-band share
  (``damage.features``' "high-band share", which blur empties), and a last line fits the
  share below which full denoise gains the most over step 0.75 summed over every crop.

Usage: nice -n 10 python tools/severity_steps.py jpeg|noise|blur [--readme docs/real-world.md]
(about 6 / 8 / 14 min on one core; ``--readme`` writes the table into the section
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
from srlab.image.damage import FEATURES, STEPS, features
from srlab.image.datasets import find_images, load_rgb, shared_dir
from srlab.image.degrade import gaussian_blur, jpeg, sensor_noise
from srlab.image.metrics import psnr
from srlab.image.resize import imresize, modcrop

SEVERITIES: dict[str, tuple] = {
    "jpeg": (30, 40, 50, 60, 75, 90), "noise": (4, 6, 8, 10, 12, 16, 20),
    "blur": tuple((q, b) for q in (75, 60) for b in (0.0, 1.0, 1.5, 2.0, 2.5))}
IMAGES = {"jpeg": 12, "noise": 12, "blur": 16}
_SHARE = FEATURES.index("high-band share")  # what condition.estimate reads as top_share


def damaged(kind: str, hr: np.ndarray, sc: int, level, seed: int) -> np.ndarray:
    """The LR of ``hr`` at scale ``sc`` with the damage ``level`` of ``kind``."""
    if kind == "blur":
        q, b = level
        soft = gaussian_blur(hr.astype(np.float64), b) if b else hr
        return jpeg(np.clip(np.round(imresize(soft, 1 / sc)), 0, 255).astype(np.uint8), q)
    lr = imresize(hr, 1 / sc)  # uint8 in, rounded uint8 out
    if kind == "jpeg":
        return jpeg(lr, level)
    noisy = sensor_noise(lr, float(level), np.random.default_rng(seed))
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


def reads(kind: str, lr: np.ndarray) -> float:
    """What the rule sees: the noise sigma, or the top-band share."""
    if kind == "blur":
        return float(features(lr, None, 0.0, None, 0.0, 0.0)[_SHARE])
    return noise_sigma(lr)


def label(kind: str, level, read: list[float]) -> str:
    if kind == "jpeg":
        return f"q{level}"
    if kind == "noise":
        return f"{level} ({np.mean(read):.1f})"
    return f"q{level[0]}, blur {level[1]:g} ({np.median(read):.3f})"


def best_threshold(crops: list[tuple[float, float]]) -> tuple[float, float]:
    """(share, mean gain per crop): the share below which switching 0.75 -> 1 gains most."""
    cands = np.round(np.arange(0.01, 0.1001, 0.005), 3)
    gains = [sum(g for sh, g in crops if sh < t) / len(crops) for t in cands]
    i = int(np.argmax(gains))
    return float(cands[i]), float(gains[i])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kind", choices=sorted(SEVERITIES))
    ap.add_argument("--readme", type=Path, default=None, metavar="MD")
    args = ap.parse_args()
    kind = args.kind
    torch.set_num_threads(1)
    paths = find_images(shared_dir() / "datasets" / "train" / "BSDS500-train")[: IMAGES[kind]]
    name = {"jpeg": "quality", "noise": "sigma (read)",
            "blur": "quality, HR blur sigma (top-band share read)"}[kind]
    crops: list[tuple[float, float]] = []  # (share read, PSNR of 1 minus 0.75) per blur crop
    lines = [f"| scale, {name} | mean PSNR of steps {' / '.join(f'{s:g}' for s in STEPS)} "
             "| best |", "|---|---|---|"]
    print("\n".join(lines))
    for sc in (4, 2):
        nets = {s: load_model(scale=sc, denoise=s, backend="torch") for s in STEPS}
        res: dict = {}
        read: dict = {}
        for i, p in enumerate(paths):
            hr = modcrop(load_rgb(p)[: 96 * sc, : 96 * sc], sc)
            for j, level in enumerate(SEVERITIES[kind]):
                lr = damaged(kind, hr, sc, level, seed=1000 * i + (j if kind == "blur" else level))
                read.setdefault(level, []).append(reads(kind, lr))
                for s in STEPS:
                    res.setdefault(level, {}).setdefault(s, []).append(
                        psnr(nets[s].upscale_array(lr), hr, crop_border=sc))
                if kind == "blur":
                    crops.append((read[level][-1], res[level][1.0][-1] - res[level][0.75][-1]))
        for level, d in res.items():
            m = {s: float(np.mean(v)) for s, v in d.items()}
            what = label(kind, level, read[level])
            lines.append(f"| x{sc}, {what} | {' / '.join(f'{m[s]:.2f}' for s in STEPS)} | "
                         f"{max(m, key=lambda s: m[s]):g} |")
            print(lines[-1], flush=True)
    if kind == "blur":
        t, g = best_threshold(crops)
        lines += ["", f"Full denoise instead of 0.75 below a top-band share of {t:g} gains the "
                  f"most over all {len(crops)} crops at x2 and x4: {g:+.3f} dB a crop."]
        print(lines[-1])
    made = (f"Made by `python tools/severity_steps.py {kind}"
            f"{f' --readme {args.readme}' if args.readme else ''}`.")
    print(f"\n{made}")
    if args.readme is not None:
        update_readme(args.readme, f"severity-steps-{kind}", "\n".join(lines) + f"\n\n{made}")


if __name__ == "__main__":
    main()

"""Graded degradations that turn an HR image into a training LR image.

One report trained on three LR sets — good, middle and bad — to see how a model copes with
real-world input. We make them on the fly, so every epoch sees fresh noise:

- ``clean``: MATLAB bicubic only (the benchmark protocol);
- ``moderate``: Gaussian blur, bicubic, Gaussian noise;
- ``severe``: as moderate, then JPEG compression.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from .resize import imresize

__all__ = ["Degradation", "LEVELS", "degrade"]


@dataclass(frozen=True)
class Degradation:
    blur_sigma: tuple[float, float] = (0.0, 0.0)  # Gaussian blur sigma range, HR pixels
    noise_sigma: tuple[float, float] = (0.0, 0.0)  # Gaussian noise std range, 0..255 units
    jpeg_quality: tuple[int, int] | None = None  # JPEG quality range, None = no JPEG


LEVELS: dict[str, Degradation] = {
    "clean": Degradation(),
    "moderate": Degradation(blur_sigma=(0.2, 1.5), noise_sigma=(1.0, 8.0)),
    "severe": Degradation(blur_sigma=(0.2, 2.0), noise_sigma=(2.0, 12.0), jpeg_quality=(30, 80)),
}


def _gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    radius = max(1, int(round(3 * sigma)))
    g = np.exp(-(np.arange(-radius, radius + 1) ** 2) / (2 * sigma**2))
    g /= g.sum()
    pad = np.pad(img, ((radius, radius), (radius, radius), (0, 0)), mode="reflect")
    rows = np.lib.stride_tricks.sliding_window_view(pad, g.size, axis=0) @ g
    return np.lib.stride_tricks.sliding_window_view(rows, g.size, axis=1) @ g


def degrade(hr: np.ndarray, scale: int, level: Degradation, rng: np.random.Generator) -> np.ndarray:
    """HR uint8 HxWxC -> LR uint8 (H/scale x W/scale) under ``level``."""
    if level == LEVELS["clean"]:
        return imresize(hr, 1 / scale)
    img = hr.astype(np.float64)
    lo, hi = level.blur_sigma
    if hi > 0:
        img = _gaussian_blur(img, float(rng.uniform(lo, hi)))
    img = imresize(img, 1 / scale)
    lo, hi = level.noise_sigma
    if hi > 0:
        img = img + rng.normal(0.0, float(rng.uniform(lo, hi)), img.shape)
    lr = np.clip(np.round(img), 0, 255).astype(np.uint8)
    if level.jpeg_quality is not None:
        from PIL import Image

        buf = io.BytesIO()
        quality = int(rng.integers(level.jpeg_quality[0], level.jpeg_quality[1] + 1))
        Image.fromarray(lr.squeeze()).save(buf, format="JPEG", quality=quality)
        lr = np.asarray(Image.open(buf)).reshape(lr.shape)
    return lr

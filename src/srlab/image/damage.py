"""A learned damage estimate: how much denoise (span -> span-real) an image wants.

``features`` reads a dozen cheap cues of an input (the file's JPEG quality, the JPEG lattice of
its pixels, luma and colour noise, how much of its detail sits in the highest frequencies, a
periodic peak in its spectrum, its sharpness); a small MLP (``DamageHead``, a few hundred
parameters) turns them into the probabilities of the strength steps ``STEPS`` (0, 0.25, ..., 1
of the span/span-real blend). It was trained (``tools/train_damage.py``) on
``srlab.image.degrade`` pipelines over training images with, per image, the regret (dB below
the best step against the HR, the blends actually run) of each step as the loss, so it learned
which step scores best, not a damage label. ``condition.choose`` turns the probabilities into
the step auto runs.

A CNN on 32x32 patches trained on the same targets was tried first and learned only the best
constant (held-out regret 0.256 dB, the same as always 0.5): per-patch targets are noisy, and
the cues above are what separates the classes.

The weights ship as ``weights/damage.safetensors`` (plain tensors, never unpickled: the
feature normalisation is stored beside the layers) with a card, ``weights/damage.md``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = ["STEPS", "FEATURES", "DamageHead", "features", "load_estimator", "strength_probs",
           "WEIGHTS"]

STEPS = (0.0, 0.25, 0.5, 0.75, 1.0)
FEATURES = ("jpeg file", "file quality", "lattice", "lattice quality", "luma noise",
            "colour noise", "high-band share", "spectral peak", "sharpness", "flat-tile std",
            "grid jump")
WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "damage.safetensors"


class DamageHead(nn.Module):
    """Normalised features -> one hidden layer -> logits of the steps."""

    def __init__(self, n_features: int = len(FEATURES), hidden: int = 16) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))
        self.net = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(),
                                 nn.Linear(hidden, len(STEPS)))

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.net((f - self.mean) / self.std)


def _spectrum_cues(y: np.ndarray, side: int = 128) -> tuple[float, float]:
    """(share of the detail energy in the top frequency band, peak-to-median ratio of that
    band): blur and resizing empty the band, noise fills it evenly, halftone dots put a peak
    in it. Mean over up to four ``side`` tiles, Hann-windowed."""
    h, w = y.shape
    s = min(side, h, w) // 2 * 2
    if s < 16:
        return 0.0, 0.0
    win = np.outer(np.hanning(s), np.hanning(s))
    f = np.fft.fftfreq(s)
    r = np.hypot(f[:, None], f[None, :])
    top, mid = r > 0.3, (r > 0.08) & (r <= 0.3)
    shares, peaks = [], []
    for y0 in sorted({0, h - s}):
        for x0 in sorted({0, w - s}):
            t = y[y0 : y0 + s, x0 : x0 + s]
            p = np.abs(np.fft.fft2((t - t.mean()) * win)) ** 2
            shares.append(p[top].sum() / max(p[top].sum() + p[mid].sum(), 1e-9))
            peaks.append(np.log(p[top].max() / max(np.median(p[top]), 1e-9)))
    return float(np.mean(shares)), float(np.mean(peaks))


def features(img: np.ndarray, jpeg_quality: int | None, lattice: float,
             lattice_quality: int | None, noise: float, chroma: float) -> np.ndarray:
    """The cues ``FEATURES`` of an image (uint8/16 array) beside the hand cues of
    ``condition``, which the caller has already measured."""
    from srlab.image.condition import luma  # one luma for both modules

    y = luma(img)
    share, peak = _spectrum_cues(y)
    dx = np.abs(np.diff(y, axis=1))
    sharp = float(np.log1p(dx.mean())) if dx.size else 0.0
    # local std over 4x4 tiles, 10th percentile: the noise floor flat areas show
    h, w = y.shape[0] // 4 * 4, y.shape[1] // 4 * 4
    tiles = y[:h, :w].reshape(h // 4, 4, w // 4, 4).std(axis=(1, 3)) if h and w else np.zeros(1)
    floor = float(np.log1p(np.percentile(tiles, 10)))
    # mean jump across the 8x8 grid over the jump inside it (blocks, whatever the lattice says)
    if dx.shape[1] >= 16:
        cols = np.arange(dx.shape[1])
        grid = dx[:, cols % 8 == 7].mean() / max(dx[:, cols % 8 != 7].mean(), 1e-6)
    else:
        grid = 1.0
    return np.array([
        1.0 if jpeg_quality is not None else 0.0,
        (100 - jpeg_quality) / 100 if jpeg_quality is not None else 0.0,
        lattice,
        (100 - lattice_quality) / 100 if lattice_quality is not None and lattice > 0.3 else 0.0,
        np.log1p(noise), np.log1p(chroma), share, peak, sharp, floor, float(grid),
    ], dtype=np.float32)


@lru_cache(maxsize=1)
def load_estimator(path: Path = WEIGHTS) -> DamageHead | None:
    """The shipped estimator, None when its weights are not there."""
    if not path.is_file():
        return None
    from safetensors.torch import load_file

    state = load_file(str(path))
    net = DamageHead(n_features=int(state["mean"].numel()),
                     hidden=int(state["net.0.weight"].shape[0]))
    net.load_state_dict(state)
    return net.eval()


def strength_probs(f: np.ndarray, net: DamageHead | None = None) -> np.ndarray | None:
    """The probability of each of ``STEPS`` for features ``f`` (None when no estimator
    ships)."""
    net = net or load_estimator()
    if net is None:
        return None
    with torch.inference_mode():
        p = torch.softmax(net(torch.from_numpy(f).float()[None]), dim=1)[0]
    return p.numpy().astype(np.float64)

"""A learned damage estimate: how much denoise (span -> span-real) an image wants.

``features`` reads sixteen cheap cues of an input (the file's JPEG quality, the JPEG lattice
of its pixels, luma and colour noise, how much of its detail sits in the highest
frequencies, periodic peaks in its spectrum, its sharpness, the 8x8 grid's jumps, and the
score of ``ArtifactCNN``); a small MLP (``DamageHead``) turns them into the probabilities of
the strength steps ``STEPS`` (0, 0.25, ..., 1 of the span/span-real blend), and
``condition.choose`` turns those into the step auto runs. It was trained
(``tools/train_damage.py``) on ``srlab.image.degrade``'s damages over training images, each
input's target being its class's step (clean 0; a damaged class the step >= 0.5 that scores
best against the HR on training crops).

Why the CNN: the hand-made cues cannot tell a JPEG resized after saving (grid gone) from a
clean photo with grain (old scans, video frames, web photos). ``ArtifactCNN``, a small fully
convolutional detector trained on luma patches with the plain label damaged / clean, reads
the artefacts themselves (ringing, smeared blocks, dots, noise). (A CNN trained on per-patch
regrets was tried first and learned only the best constant.)

Gray photos: the estimator learned on colour photos, where zero colour noise means chroma
smoothed by JPEG, so it read every gray photo as damaged. A ``colourless`` image's colour
noise is therefore missing (NaN), and ``DamageHead`` reads a missing cue as its training mean.

The weights ship as ``weights/damage.safetensors`` (plain tensors, never unpickled: the
feature normalisation is stored beside the layers) with a card, ``weights/damage.md``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from srlab.image.color import luma

__all__ = ["STEPS", "FEATURES", "ArtifactCNN", "DamageHead", "features", "load_estimator",
           "strength_probs", "WEIGHTS", "colourless", "LATTICE"]

STEPS = (0.0, 0.25, 0.5, 0.75, 1.0)
# lattice score (``condition.jpeg_lattice``) above which the pixels show a JPEG history; set
# on the labelled set of ``srlab inspect --eval`` (training images only). Here, not in
# ``condition``, because the cues read it and ``condition`` reads the cues
LATTICE = 0.3
FEATURES = ("jpeg file", "file quality", "lattice", "lattice quality", "luma noise",
            "colour noise", "high-band share", "spectral peak", "sharpness", "flat-tile std",
            "grid jump", "Nyquist share", "ring peak", "grid period", "Laplacian kurtosis",
            "artefact CNN")
WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "damage.safetensors"


class ArtifactCNN(nn.Module):
    """Luma (N, 1, H, W, 0..255) -> a damaged-minus-clean logit per image: the mean of a
    fully convolutional map (receptive field 19 px), so one net scores patches in training
    and whole images in use."""

    TILE = 128  # large images: the mean over a 3x3 grid of tiles this size

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        w = width
        self.body = nn.Sequential(
            nn.Conv2d(1, w, 3), nn.ReLU(), nn.Conv2d(w, w, 3, stride=2), nn.ReLU(),
            nn.Conv2d(w, 2 * w, 3, stride=2), nn.ReLU(), nn.Conv2d(2 * w, 2 * w, 3), nn.ReLU(),
            nn.Conv2d(2 * w, 1, 1))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.body(y / 64.0 - 2.0).mean(dim=(1, 2, 3))

    def score(self, y: np.ndarray) -> float:
        """The image's logit: whole when it is small, else a 3x3 grid of ``TILE`` tiles
        spread over it (a phone photo costs nine small tiles, not 12 Mpx of convolutions)."""
        h, w = y.shape
        if min(h, w) < 20:
            return 0.0
        t = self.TILE
        if max(h, w) <= 3 * t:
            tiles = [y]
        else:
            ys = np.linspace(0, max(h - t, 0), 3).astype(int)
            xs = np.linspace(0, max(w - t, 0), 3).astype(int)
            tiles = [y[a : a + t, b : b + t] for a in ys for b in xs]
        with torch.inference_mode():
            return float(np.mean([float(self(torch.from_numpy(
                np.ascontiguousarray(tile, dtype=np.float32))[None, None])) for tile in tiles]))


class DamageHead(nn.Module):
    """Normalised features -> one hidden layer -> logits of the steps; ``cnn`` (when the
    weights have one) computes the last feature."""

    def __init__(self, n_features: int = len(FEATURES), hidden: int = 16,
                 cnn_width: int = 0) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))
        self.net = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(),
                                 nn.Linear(hidden, len(STEPS)))
        self.cnn = ArtifactCNN(cnn_width) if cnn_width else None

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        # a missing cue (NaN: the colour noise of a gray image, the spectrum of a flat one)
        # reads as the training mean
        z = (f - self.mean) / self.std
        return self.net(torch.nan_to_num(z, nan=0.0, posinf=0.0, neginf=0.0))


def _spectrum_cues(y: np.ndarray, side: int = 128) -> tuple[float, float, float, float]:
    """(share of the detail energy in the top frequency band, peak-to-median ratio of that
    band, log share of the band next to Nyquist, strongest ring-normalised peak from period
    2.2 to 8): blur and resizing empty the top band, noise fills it up to Nyquist (a bicubic
    downscale leaves little there), halftone dots put a peak in a ring where a photo's
    spectrum is smooth. Mean over up to four ``side`` tiles, Hann-windowed."""
    h, w = y.shape
    s = min(side, h, w) // 2 * 2
    if s < 16:
        return 0.0, 0.0, 0.0, 0.0
    win = np.outer(np.hanning(s), np.hanning(s))
    f = np.fft.fftfreq(s)
    r = np.hypot(f[:, None], f[None, :])
    top, mid = r > 0.3, (r > 0.08) & (r <= 0.3)
    nyq = r > 0.42
    rings = np.minimum((r * s).astype(int), s)  # rings one frequency bin wide
    ring_band = (r > 0.125) & (r < 0.45)
    shares, peaks, nyqs, rpeaks = [], [], [], []
    for y0 in sorted({0, h - s}):
        for x0 in sorted({0, w - s}):
            t = y[y0 : y0 + s, x0 : x0 + s]
            p = np.abs(np.fft.fft2((t - t.mean()) * win)) ** 2
            if not p[top].any():  # a flat tile: nothing to read
                shares.append(np.nan), peaks.append(np.nan), nyqs.append(np.nan)
                rpeaks.append(np.nan)
                continue
            shares.append(p[top].sum() / max(p[top].sum() + p[mid].sum(), 1e-9))
            peaks.append(np.log(p[top].max() / max(np.median(p[top]), 1e-9)))
            nyqs.append(np.log((p[nyq].mean() + 1e-3) / (p[mid].mean() + 1e-3)))
            med = np.zeros(s + 1)
            for k in np.unique(rings[ring_band]):
                med[k] = np.median(p[rings == k])
            ratio = p[ring_band] / np.maximum(med[rings[ring_band]], 1e-9)
            rpeaks.append(np.log(np.sort(ratio)[-4:].mean()))  # halftone: 4 symmetric peaks
    # a flat tile has no spectrum to read: its log ratios are missing (NaN), not -inf
    cues = [np.where(np.isfinite(v), v, np.nan) for v in (shares, peaks, nyqs, rpeaks)]
    return tuple(float(np.nanmean(v)) if np.isfinite(v).any() else float("nan") for v in cues)


def _box9(a: np.ndarray) -> np.ndarray:
    """Mean over 9 neighbours along the last axis (edges repeated)."""
    pad = np.pad(a, [(0, 0)] * (a.ndim - 1) + [(4, 4)], mode="edge")
    c = np.cumsum(pad, axis=-1)
    c = np.concatenate([np.zeros_like(c[..., :1]), c], axis=-1)
    return (c[..., 9:] - c[..., :-9]) / 9


def _grid_period(y: np.ndarray) -> float:
    """How periodic the image's column and row jump profiles are at periods 3 to 8.5 px: a
    JPEG's 8x8 blocks leave a jump every 8 px along both axes, and still every 4-7 px after
    a resize (when the lattice and the 8-px grid are gone); a photo's profile is not
    periodic. Each jump is divided by its neighbours' mean (so texture does not drown the
    flat areas' block edges) before the mean per column. Log of the strongest peak over the
    profile spectrum's median, the larger of the two axes."""
    out = 0.0
    for d in (np.abs(np.diff(y, axis=1)), np.abs(np.diff(y, axis=0)).T):
        n = d.shape[1]
        if n < 32:
            continue
        prof = (d / (_box9(d) + 2.0)).mean(axis=0)
        detrended = prof - _box9(prof)
        spec = np.abs(np.fft.rfft(detrended * np.hanning(n))) ** 2
        fr = np.fft.rfftfreq(n)
        band = (fr >= 1 / 8.5) & (fr <= 1 / 3)
        rest = fr > 0.02
        if band.any() and spec[band].max() > 0:  # a flat profile has no period to read
            out = max(out, float(np.log(spec[band].max() / max(np.median(spec[rest]), 1e-12))))
    return out


def _kurtosis(y: np.ndarray) -> float:
    """Log kurtosis of the Laplacian response: a photo's is heavy-tailed (edges), noise makes
    it Gaussian (3)."""
    if min(y.shape) < 3:
        return 0.0
    lap = 4 * y[1:-1, 1:-1] - y[:-2, 1:-1] - y[2:, 1:-1] - y[1:-1, :-2] - y[1:-1, 2:]
    lap = lap - lap.mean()
    v = float((lap**2).mean())
    return float(np.log((lap**4).mean() / max(v * v, 1e-9))) if v > 1e-9 else 0.0


def features(img: np.ndarray, jpeg_quality: int | None, lattice: float,
             lattice_quality: int | None, noise: float, chroma: float,
             cnn: ArtifactCNN | None = None) -> np.ndarray:
    """The cues ``FEATURES`` of an image (uint8/16 array) beside the hand cues of
    ``condition``, which the caller has already measured; the last one is ``cnn``'s score
    (0 without one). The colour noise of a ``colourless`` image is NaN (missing)."""
    y = luma(img)
    share, peak, nyq, ring = _spectrum_cues(y)
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
        (100 - lattice_quality) / 100 if lattice_quality is not None and lattice > LATTICE else 0.0,
        np.log1p(noise), np.nan if colourless(img) else np.log1p(chroma), share, peak, sharp,
        floor, float(grid),
        nyq, ring, _grid_period(y), _kurtosis(y),
        cnn.score(y) if cnn is not None else 0.0,
    ], dtype=np.float32)


def colourless(img: np.ndarray, tol: int = 2) -> bool:
    """Whether an RGB image carries no colour (channels within ``tol`` levels everywhere: a
    gray photo, maybe saved as a colour JPEG). Its colour noise is then missing, not zero:
    zero colour noise in a colour photo means chroma smoothed away, a sign of JPEG, and the
    estimator, trained on colour photos, read every gray photo as damaged."""
    if img.ndim < 3 or img.shape[2] < 3:
        return True
    a = img[..., :3].astype(np.int32)
    t = tol * (257 if img.dtype == np.uint16 else 1)
    return bool(np.abs(a[..., 0] - a[..., 1]).max() <= t
                and np.abs(a[..., 2] - a[..., 1]).max() <= t)


@lru_cache(maxsize=1)
def load_estimator(path: Path = WEIGHTS) -> DamageHead | None:
    """The shipped estimator, None when its weights are not there."""
    if not path.is_file():
        return None
    from safetensors.torch import load_file

    state = load_file(str(path))
    cnn = state.get("cnn.body.0.weight")
    net = DamageHead(n_features=int(state["mean"].numel()),
                     hidden=int(state["net.0.weight"].shape[0]),
                     cnn_width=0 if cnn is None else int(cnn.shape[0]))
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

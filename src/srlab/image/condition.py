"""What state is an input image in? JPEG history and noise, for ``auto``.

Cues, each cheap and each catching what the others miss:

- the file's JPEG quantisation tables give the quality it was last saved at (the libjpeg
  scaling of the standard luma table that fits best);
- the pixels give a JPEG history even without the file (a PNG or screenshot of a JPEG): a
  decoded JPEG's 8x8 DCT coefficients sit on multiples of the quantiser steps (Fan and de
  Queiroz, IEEE TIP 2003). ``jpeg_lattice`` scores that for every libjpeg quality: about 0 for
  a clean image, 0.5-1 for one saved at that quality or lower. It replaced a blockiness ratio
  (jump across the 8x8 grid over the jump inside it), which separated clean images from
  quality-75 ones poorly on textured photos (see docs/real-world.md);
- the noise level is Immerkaer's Laplacian-difference estimate (CVIU 1996) over the flattest
  tenth of 8x8 tiles, on luma and on the colour differences R-G and B-G, where texture
  (shared by the channels) cancels and colour noise does not.

and a learned one (``srlab.image.damage``): a small MLP over these cues and a few more (the
spectrum's top band and its peaks, sharpness, the noise floor of flat tiles, the 8x8 grid's
jumps), trained on ``degrade``'s damages to give the probability of each strength step (0,
0.25, ..., 1 of the span/span-real blend) scoring best against the HR. It is what reads the
damage the hand thresholds miss: a JPEG re-saved at a high quality after a heavy one, a JPEG
resized after its save (the grid gone), mild sensor noise, blur.

``choose`` turns them into a denoise strength, one of ``STEPS``: 0 keeps span (faithful), 1 is
span-real, between them a blend of their weights. The learned estimate gives the step; the
file's tables can only raise it (a file saved at quality <= ``JPEG_CLEAN`` gets at least
``JPEG_FLOOR``); without the estimator's weights, or with ``SRLAB_AUTO_ESTIMATOR=hand``, the
hand cues decide alone (span or span-real), as the first auto did.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from srlab.image.color import luma
from srlab.image.damage import LATTICE, STEPS, WEIGHTS

__all__ = ["Condition", "estimate", "jpeg_quality_of", "jpeg_lattice", "noise_sigma",
           "chroma_noise", "choose", "STEPS", "JPEG_HEAVY", "LATTICE", "NOISY", "NOISE_HEAVY"]

# IJG's standard luminance quantisation table (ITU-T T.81 Annex K), zigzag order irrelevant:
# we compare the 64 entries as a set in file order.
_STD_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], dtype=np.float64)

# thresholds, set on the labelled set of ``srlab inspect --eval`` (training images only)
# LATTICE (damage.LATTICE): lattice score above which the pixels show a JPEG history
# luma noise sigma (0..255) above which an image counts as noisy, and gets span-real even
# when the learned estimate reads it clean; no clean image of the labelled set or the
# benchmark sets reads above 6.5
NOISY = 8.5
# read luma noise above which an image the estimate finds damaged (step >= JPEG_FLOOR) gets
# span-real: on training crops full denoise overtakes step 0.75 at a read sigma of 6.6-6.7,
# at x2 and x4 (``python tools/severity_steps.py noise``, docs/real-world.md)
NOISE_HEAVY = 6.7
CHROMA_NOISY = 3.0  # colour-difference noise sigma above which it counts as noisy
JPEG_CLEAN = 90  # quality above which JPEG damage is too small to remove
JPEG_FLOOR = 0.5  # the least strength a JPEG file at quality <= JPEG_CLEAN gets
# a JPEG (file or pixels) at quality <= JPEG_HEAVY gets span-real: on training crops
# (BSDS500-train, x2 and x4) full denoise scored best at every quality <= 50 (docs/real-world.md)
JPEG_HEAVY = 50
# a JPEG (file or pixels) at quality <= SOFT_JPEG whose top frequency band holds less than
# SOFT of its detail energy (``damage``'s "high-band share": blur empties it) gets span-real:
# on training crops (BSDS500-train, blur 0-2.5 HR px before the bicubic, then JPEG q60/75)
# full denoise beat step 0.75 by 0.10 dB on the crops below it, and this threshold gained
# the most over all crops at x2 and x4 (``python tools/severity_steps.py blur``)
SOFT = 0.035
SOFT_JPEG = 75


@dataclass(frozen=True)
class Condition:
    jpeg_quality: int | None  # from the file's tables; None when not a JPEG file
    lattice: float  # ~0 clean; 0.5-1 for a JPEG history in the pixels
    lattice_quality: int | None  # the lowest quality whose steps the pixels fit
    noise: float  # estimated luma noise sigma in 0..255 units
    chroma: float  # estimated colour-difference noise sigma (0 for gray images)
    denoise: float  # the strength ``choose`` picked, one of STEPS
    reason: str = ""  # why, in words (the CLI, the web API and ``inspect`` show it)
    probs: tuple[float, ...] | None = None  # the learned estimate per step, if it ships
    top_share: float | None = None  # detail energy in the top band (with the learned estimate)

    @property
    def degraded(self) -> bool:
        return self.denoise > 0

    def describe(self) -> str:
        parts = []
        if self.jpeg_quality is not None:
            parts.append(f"JPEG file, quality ~{self.jpeg_quality}")
        if self.lattice > LATTICE and self.lattice_quality is not None:
            parts.append(f"JPEG history in the pixels (quality ~{self.lattice_quality})")
        elif self.jpeg_quality is None:
            parts.append("no JPEG history")
        parts.append(f"noise sigma ~{self.noise:.1f} luma, ~{self.chroma:.1f} colour")
        return ", ".join(parts)

    def decision(self) -> str:
        """The strength and its reason, e.g. ``denoise 0.75 (learned estimate 0.71)``."""
        return f"denoise {self.denoise:g} ({self.reason})" if self.reason else \
            f"denoise {self.denoise:g}"


def _ijg_table(quality: int) -> np.ndarray:
    s = 5000 / quality if quality < 50 else 200 - 2 * quality
    return np.clip(np.floor((_STD_LUMA * s + 50) / 100), 1, 255)


_TABLES = {q: _ijg_table(q) for q in range(1, 101)}

# this module's code as imported: the benchmark's score cache keys auto's rows on it (a file
# read later could already hold an edit the running process never executed)
# the learned estimator's code and weights are part of it
SOURCE = b"".join((Path(__file__).parent / f).read_bytes()
                  for f in ("condition.py", "damage.py", "color.py")) + (
    WEIGHTS.read_bytes() if WEIGHTS.is_file() else b"")


def jpeg_quality_of(path: str | Path) -> int | None:
    """The libjpeg quality whose luma table best fits the file's, None for non-JPEG files."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            if im.format != "JPEG":
                return None
            tables = getattr(im, "quantization", None) or {}
    except OSError:
        return None
    if 0 not in tables:
        return None
    luma = np.asarray(tables[0], dtype=np.float64)
    if luma.size != 64:
        return None
    return min(_TABLES, key=lambda q: float(np.abs(np.sort(_TABLES[q]) - np.sort(luma)).sum()))


def _dct_matrix() -> np.ndarray:
    k = np.arange(8)
    d = np.sqrt(2 / 8) * np.cos((2 * k[None, :] + 1) * k[:, None] * np.pi / 16)
    d[0] /= np.sqrt(2)
    return d  # orthonormal DCT-II: JPEG's forward DCT of a block B is d @ B @ d.T


_DCT = _dct_matrix()
_LOW = [(0, 1), (1, 0), (1, 1), (0, 2), (2, 0), (1, 2), (2, 1), (2, 2), (0, 3), (3, 0)]


def jpeg_lattice(img: np.ndarray, side: int = 256) -> tuple[float, int | None]:
    """(score, quality): how well the luma DCT coefficients of a centred ``side`` crop on the
    image's 8x8 grid fit the quantiser steps of the best libjpeg quality in 30..95.

    Per low-frequency coefficient, the mean of cos(2 pi c / step) over blocks where
    |c| >= step / 2 (near-zero coefficients say nothing): ~0 when c is spread, ~1 when every c
    is a multiple of the step. Finer steps also fit (their multiples include the coarse ones),
    so the quality returned is the lowest that scores within 0.05 of the best.
    """
    y = luma(img)
    h, w = y.shape
    y0, x0 = max(0, (h - side) // 2) // 8 * 8, max(0, (w - side) // 2) // 8 * 8
    y = y[y0 : y0 + side, x0 : x0 + side]
    h, w = y.shape[0] // 8 * 8, y.shape[1] // 8 * 8
    if h == 0 or w == 0:
        return 0.0, None
    blocks = (y[:h, :w] - 128).reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3)
    blocks = blocks.reshape(-1, 8, 8)
    if img.ndim == 3 and img.shape[2] >= 3:  # a clipped R, G or B moved Y off the lattice
        rgb = img[:, :, :3][y0 : y0 + side, x0 : x0 + side][:h, :w]
        clipped = ((rgb == 0) | (rgb == (65535 if img.dtype == np.uint16 else 255))).any(axis=2)
        clipped = clipped.reshape(h // 8, 8, w // 8, 8).any(axis=(1, 3)).ravel()
        if (~clipped).sum() >= 20:
            blocks = blocks[~clipped]
    c = np.einsum("ij,njk,lk->nil", _DCT, blocks, _DCT)
    scores = {}
    for q in range(30, 96):
        steps = _TABLES[q].reshape(8, 8)
        per = []
        for i, j in _LOW:
            v = c[:, i, j]
            keep = np.abs(v) >= steps[i, j] / 2
            if keep.sum() >= 20:
                per.append(float(np.cos(2 * np.pi * v[keep] / steps[i, j]).mean()))
        scores[q] = float(np.mean(per)) if per else 0.0
    best = max(scores.values())
    if best <= 0:
        return 0.0, None
    return best, min(q for q, sc in scores.items() if sc >= best - 0.05)


# the flattest tenth of 8x8 tiles of pure Gaussian noise reads 0.736 of its sigma (mean of 20
# 256x256 draws, sigma 2-20, std 0.007): divided out, so the estimate is in sigma units
_FLATTEST_TENTH = 0.736


def _plane_noise(y: np.ndarray, block: int = 8) -> float:
    """Immerkaer's estimate over the flattest tenth of ``block``-sized tiles of one plane,
    leaving out tiles that touch 0 or 255 (clipping flattens noise there, and saturated sky
    is exactly what the flattest tiles would otherwise be)."""
    h, w = y.shape
    if h < 3 or w < 3:
        return 0.0
    lap = (y[:-2, :-2] - 2 * y[:-2, 1:-1] + y[:-2, 2:]
           - 2 * y[1:-1, :-2] + 4 * y[1:-1, 1:-1] - 2 * y[1:-1, 2:]
           + y[2:, :-2] - 2 * y[2:, 1:-1] + y[2:, 2:])
    hb, wb = lap.shape[0] // block, lap.shape[1] // block
    if hb * wb < 4:
        return float(np.sqrt(np.pi / 2) * np.abs(lap).mean() / 6)
    cut = (slice(0, hb * block), slice(0, wb * block))
    tiles = np.abs(lap[cut]).reshape(hb, block, wb, block).mean(axis=(1, 3))
    inner = y[1:-1, 1:-1][cut].reshape(hb, block, wb, block)
    unclipped = (inner.min(axis=(1, 3)) > 4) & (inner.max(axis=(1, 3)) < 251)
    values = tiles[unclipped] if unclipped.sum() >= 4 else tiles.ravel()
    flat = np.sort(values)[: max(1, values.size // 10)]
    return float(np.sqrt(np.pi / 2) * flat.mean() / 6) / _FLATTEST_TENTH


def noise_sigma(img: np.ndarray) -> float:
    """Luma noise sigma (0..255). Colour noise of sigma s per RGB channel reads as about
    0.67 s here; texture reads as noise too, which is why ``chroma_noise`` exists."""
    return _plane_noise(luma(img))


def chroma_noise(img: np.ndarray) -> float:
    """Noise sigma of the colour differences (R-G)/sqrt 2 and (B-G)/sqrt 2: texture and
    edges are mostly shared by the three channels and cancel there, colour noise does not.
    0 for gray images."""
    if img.ndim == 2 or img.shape[2] < 3:
        return 0.0
    a = img[..., :3].astype(np.float64) / (257.0 if img.dtype == np.uint16 else 1.0)
    r_g, b_g = (a[..., 0] - a[..., 1]) / np.sqrt(2), (a[..., 2] - a[..., 1]) / np.sqrt(2)
    return 0.5 * (_plane_noise(r_g) + _plane_noise(b_g))


def _hand(jpeg_quality: int | None, lattice: float, lattice_quality: int | None,
          noise: float, chroma: float) -> tuple[float, str]:
    """The hand cues alone (used when the estimator's weights are missing)."""
    if jpeg_quality is not None and jpeg_quality <= JPEG_CLEAN:
        return 1.0, f"JPEG file at quality {jpeg_quality} <= {JPEG_CLEAN}"
    if lattice > LATTICE and (lattice_quality or 100) <= JPEG_CLEAN:
        return 1.0, f"JPEG history at quality ~{lattice_quality} <= {JPEG_CLEAN}"
    if noise > NOISY or chroma > CHROMA_NOISY:
        return 1.0, "noise above the threshold"
    return 0.0, "no damage found"


def choose(jpeg_quality: int | None, lattice: float, lattice_quality: int | None,
           noise: float, chroma: float, probs: np.ndarray | None = None,
           top_share: float | None = None) -> tuple[float, str]:
    """(strength, reason): the learned estimate's expected strength rounded to a step, raised
    to ``JPEG_FLOOR`` when a hand cue finds damage (a JPEG file or JPEG history at quality
    <= ``JPEG_CLEAN``, colour noise above its threshold: on the labelled set they never fired
    on clean images) and to 1 for a JPEG at quality <= ``JPEG_HEAVY`` or luma noise above
    ``NOISE_HEAVY`` on an image the estimate finds damaged (above ``NOISY`` on any) or a
    soft JPEG (quality <= ``SOFT_JPEG``, top-band share ``top_share`` < ``SOFT``): the
    learned step follows the kind of damage, not its severity, and a class's step, 0.75 for
    JPEG and sensor noise, is too timid for heavy damage; the hand cues alone when there is
    no learned estimate."""
    if probs is None:
        return _hand(jpeg_quality, lattice, lattice_quality, noise, chroma)
    expected = float(np.dot(probs, STEPS))
    step = min(STEPS, key=lambda s: abs(s - expected))
    reason = f"learned estimate {expected:.2f}"
    hand, why = _hand(jpeg_quality, lattice, lattice_quality, noise, chroma)
    seen = [q for q in (jpeg_quality, lattice_quality if lattice > LATTICE else None)
            if q is not None]  # the JPEG qualities the file and the pixels show
    if seen and min(seen) <= JPEG_HEAVY and step < 1.0:
        step, reason = 1.0, f"{reason}, raised: JPEG at quality ~{min(seen)} <= {JPEG_HEAVY}"
    elif (seen and min(seen) <= SOFT_JPEG and top_share is not None and top_share < SOFT
          and step < 1.0):
        step, reason = 1.0, (f"{reason}, raised: a soft JPEG (quality ~{min(seen)}, top-band "
                             f"share {top_share:.3f} < {SOFT})")
    elif noise > (heavy := NOISE_HEAVY if step >= JPEG_FLOOR else NOISY) and step < 1.0:
        step, reason = 1.0, f"{reason}, raised: noise sigma ~{noise:.1f} > {heavy}"
    elif hand > 0 and step < JPEG_FLOOR:
        step, reason = JPEG_FLOOR, f"{reason}, raised: {why}"
    return step, reason


def learned_enabled() -> bool:
    """Whether auto decides by the learned estimate: yes unless ``SRLAB_AUTO_ESTIMATOR=hand``
    (the hand cues alone, as the first auto; for comparisons and old tables).

    The hand cues read only a JPEG's tables, its lattice and noise: they send a photo damaged
    before its last save (re-saved, resized, scanned) to span, which sharpens the damage; the
    learned estimate reads those (docs/real-world.md, its tables and bars)."""
    return os.environ.get("SRLAB_AUTO_ESTIMATOR", "").strip().lower() != "hand"


def estimate(img: np.ndarray, path: str | Path | None = None, *,
             learned: bool | None = None) -> Condition:
    """The condition of ``img`` (uint8 array as decoded), with the file's tables if given;
    ``learned`` (default: ``learned_enabled()``) adds the learned estimate."""
    q = jpeg_quality_of(path) if path is not None else None
    lat, lat_q = jpeg_lattice(img)
    n, c = noise_sigma(img), chroma_noise(img)
    from srlab.image.damage import FEATURES, features, load_estimator, strength_probs

    use = learned_enabled() if learned is None else learned
    net = load_estimator() if use else None
    f = features(img, q, lat, lat_q, n, c, net.cnn) if net is not None else None
    probs = strength_probs(f, net) if f is not None else None
    share = float(f[FEATURES.index("high-band share")]) if f is not None else None
    d, why = choose(q, lat, lat_q, n, c, probs, share)
    return Condition(jpeg_quality=q, lattice=lat, lattice_quality=lat_q, noise=n, chroma=c,
                     denoise=d, reason=why,
                     probs=None if probs is None else tuple(float(p) for p in probs),
                     top_share=share)

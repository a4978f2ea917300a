"""NIQE, the no-reference "naturalness" score (Mittal, Soundararajan, Bovik, IEEE SPL 2013).

A real-world photo has no ground truth, so PSNR/SSIM/GMSD cannot score its upscale; NIQE
can: it measures how far the local statistics of an image lie from those of pristine
natural photos. Lower is better. It follows the authors' MATLAB release
(``computequality.m``, ``estimatemodelparam.m``) step by step:

1. luma: BT.601 Y rounded to integers (``metrics.rgb_to_y``; gray images as they are),
   cropped to whole 96x96 blocks from the top-left;
2. MSCN coefficients ``(I - mu) / (sigma + 1)`` with a 7x7 Gaussian window, sigma 7/6,
   replicate padding (MATLAB ``imfilter(..., 'replicate')``);
3. per block, 18 features: the AGGD fit (shape, mean of the two scales) of the MSCN values,
   then for the horizontal, vertical and two diagonal neighbour products (``circshift``
   inside the block) the AGGD shape, mean, left and right scale; the AGGD shape is the
   MATLAB grid search over 0.2:0.001:10;
4. the same 18 on the image halved by MATLAB bicubic (``resize.imresize``), 48x48 blocks:
   36 features per 96x96 block;
5. a multivariate Gaussian fitted to the blocks' features (mean ignoring NaNs, covariance
   over the blocks without NaNs), and the score
   ``sqrt((mu1 - mu2)^T pinv((S1 + S2) / 2) (mu1 - mu2))`` against the pristine model.

The pristine model (``fit_pristine``) keeps, per training image, only the blocks whose mean
local sigma is at least 0.75 of the image's sharpest block, as ``estimatemodelparam.m``
does. srlab's model is fitted on its own training HR images by ``srlab inspect --fit-niqe``
(the file records the command and every image), not on the LIVE pristine set of the
MATLAB release, so absolute values differ from published NIQE tables; differences between
methods scored here are what it is for. numpy only: no SciPy, no torch.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from srlab.image.metrics import rgb_to_y
from srlab.image.resize import imresize

__all__ = ["BLOCK", "SHARPNESS_THRESHOLD", "FEATURES", "MODEL_PATH", "NiqeModel", "luma",
           "block_features", "niqe", "fit_pristine", "load_model", "save_model"]

BLOCK = 96  # the block size the release recommends and its pristine model was fitted with
SHARPNESS_THRESHOLD = 0.75  # estimatemodelparam.m's sh_th: keep blocks this sharp or sharper
FEATURES = 36  # 18 per scale, two scales
MODEL_PATH = Path(__file__).parents[1] / "assets" / "niqe_pristine.json"
FORMAT = "srlab-niqe-1"

_GAM = 0.2 + 0.001 * np.arange(9801)  # MATLAB 0.2:0.001:10
_R_GAM = np.array([math.gamma(2 / g) ** 2 / (math.gamma(1 / g) * math.gamma(3 / g))
                   for g in _GAM])
_FLAT = 1e-9  # |MSCN| below this is rounding noise of an exact 0 (see _mscn)
_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))  # computefeature.m's circshift offsets


def _window() -> np.ndarray:
    """fspecial('gaussian', 7, 7/6) is separable: its normalised 1-D factor."""
    g = np.exp(-(np.arange(-3, 4) ** 2) / (2 * (7 / 6) ** 2))
    return g / g.sum()


_G = _window()


def luma(img: np.ndarray) -> np.ndarray:
    """The plane NIQE reads: rounded BT.601 Y of RGB(A) images, gray values of gray ones,
    as float64 on the 0..255 scale (16-bit input is brought to it first); alpha is ignored."""
    a = np.asarray(img)
    scale = 257.0 if a.dtype == np.uint16 else 1.0
    if a.ndim == 3 and a.shape[2] in (1, 2):
        a = a[..., 0]
    if a.ndim == 3 and a.shape[2] in (3, 4):
        return np.round(rgb_to_y(a[..., :3].astype(np.float64) / scale))
    if a.ndim != 2:
        raise ValueError(f"NIQE expects an HxW or HxWxC image, got shape {a.shape}")
    return np.round(a.astype(np.float64) / scale)


def _blur(im: np.ndarray) -> np.ndarray:
    """imfilter(im, window, 'replicate'): the separable window, rows then columns."""
    p = np.pad(im, len(_G) // 2, mode="edge")
    p = np.lib.stride_tricks.sliding_window_view(p, len(_G), axis=0) @ _G
    return np.lib.stride_tricks.sliding_window_view(p, len(_G), axis=1) @ _G


def _mscn(im: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MSCN coefficients and the local sigma map, with MATLAB's replicate padding."""
    mu, sq = _blur(im), _blur(im * im)
    sigma = np.sqrt(np.abs(sq - mu * mu))
    mscn = (im - mu) / (sigma + 1)
    # In a flat neighbourhood the exact value is 0, but float summation leaves +-1e-13 whose
    # sign would move it into the AGGD's left or right half; snapping it back to 0 gives the
    # exact-arithmetic features (and BasicSR's 5.7296 on baboon with the MATLAB model).
    mscn[np.abs(mscn) < _FLAT] = 0.0
    return mscn, sigma


def _blocks(a: np.ndarray, size: int) -> np.ndarray:
    """N x size x size blocks in MATLAB's column-major block order (as blkproc's output
    reshaped), so features and sharpness line up the way the release's do."""
    nh, nw = a.shape[0] // size, a.shape[1] // size
    return a[: nh * size, : nw * size].reshape(nh, size, nw, size).transpose(2, 0, 1, 3) \
        .reshape(nh * nw, size, size)


def _aggd(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """estimateaggdparam.m for each row of ``x``: (shape alpha, left beta, right beta).
    A row with no negative (or positive) values gets NaN betas, as MATLAB's do."""
    neg, pos = x < 0, x > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        left = np.sqrt(np.sum(np.where(neg, x * x, 0), 1) / np.sum(neg, 1))
        right = np.sqrt(np.sum(np.where(pos, x * x, 0), 1) / np.sum(pos, 1))
        gammahat = left / right
        rhat = np.mean(np.abs(x), 1) ** 2 / np.mean(x * x, 1)
        rhatnorm = rhat * (gammahat**3 + 1) * (gammahat + 1) / (gammahat**2 + 1) ** 2
    # grid search as in MATLAB (min of squared differences, first index on ties; an all-NaN
    # row gives the first grid point both there and in numpy); chunked to bound memory
    idx = np.concatenate([np.argmin((_R_GAM[None, :] - r[:, None]) ** 2, axis=1)
                          for r in np.array_split(rhatnorm, max(1, len(rhatnorm) // 256))])
    alpha = _GAM[idx]
    ratio = np.sqrt(np.array([math.gamma(1 / a) / math.gamma(3 / a) for a in alpha]))
    return alpha, left * ratio, right * ratio


def _scale_features(blocks: np.ndarray) -> np.ndarray:
    """computefeature.m on N blocks: N x 18."""
    n = blocks.shape[0]
    alpha, bl, br = _aggd(blocks.reshape(n, -1))
    cols = [alpha, (bl + br) / 2]
    for shift in _SHIFTS:
        pair = blocks * np.roll(blocks, shift, axis=(1, 2))
        alpha, bl, br = _aggd(pair.reshape(n, -1))
        g = np.array([math.gamma(2 / a) / math.gamma(1 / a) for a in alpha])
        with np.errstate(invalid="ignore"):
            cols += [alpha, (br - bl) * g, bl, br]
    return np.stack(cols, axis=1)


def _check_size(im: np.ndarray) -> None:
    h, w = im.shape[:2]
    if h < BLOCK or w < BLOCK:
        raise ValueError(f"NIQE needs an image of at least {BLOCK}x{BLOCK} pixels, "
                         f"got {w}x{h}")


def block_features(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N x 36 features, N sharpness values) of an image's 96x96 blocks: the per-block
    quantities both the score and the pristine fit are made of."""
    im = luma(img)
    _check_size(im)
    im = im[: im.shape[0] // BLOCK * BLOCK, : im.shape[1] // BLOCK * BLOCK]
    mscn, sigma = _mscn(im)
    sharpness = _blocks(sigma, BLOCK).mean(axis=(1, 2))
    first = _scale_features(_blocks(mscn, BLOCK))
    mscn2, _ = _mscn(imresize(im, 0.5))  # float in, float out: no rounding, as in MATLAB
    second = _scale_features(_blocks(mscn2, BLOCK // 2))
    return np.concatenate([first, second], axis=1), sharpness


def _mvg(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MATLAB's nanmean (per column) and nancov (rows without NaN; 0 for a single row)."""
    ok = ~np.isnan(feats)
    counts = ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mu = np.where(ok, feats, 0).sum(axis=0) / counts
    full = feats[ok.all(axis=1)]
    if len(full) > 1:
        cov = np.cov(full, rowvar=False)
    else:
        cov = np.zeros((feats.shape[1], feats.shape[1]))
    return mu, cov


@dataclass(frozen=True)
class NiqeModel:
    """A pristine multivariate Gaussian: mean (36,), covariance (36, 36), and where it
    came from (``meta``: the command, the images, the number of blocks)."""

    mu: np.ndarray
    cov: np.ndarray
    meta: dict = field(default_factory=dict, compare=False)

    @property
    def digest(self) -> str:
        """Short hash of the parameters: a cached score is reused only with the same model."""
        h = hashlib.sha256(np.ascontiguousarray(self.mu, np.float64).tobytes())
        h.update(np.ascontiguousarray(self.cov, np.float64).tobytes())
        return h.hexdigest()[:12]


def niqe(img: np.ndarray, model: NiqeModel | None = None, *, crop_border: int = 0) -> float:
    """NIQE of an image (uint8/uint16 HxW or HxWxC, or float on 0..255); lower is better.

    ``model`` defaults to srlab's shipped pristine model. ``crop_border`` drops that many
    pixels from each side first (the benchmark protocol's border = scale). Raises
    ``ValueError`` with one line for an image below 96x96 or without any texture.
    """
    model = model or load_model()
    if crop_border > 0:
        img = img[crop_border:-crop_border, crop_border:-crop_border]
    feats, _ = block_features(img)
    mu, cov = _mvg(feats)
    if np.isnan(mu).any():
        raise ValueError("NIQE is undefined for an image without texture (its 96x96 blocks "
                         "are flat)")
    d = model.mu - mu
    inv = np.linalg.pinv((model.cov + cov) / 2)
    return float(np.sqrt(max(float(d @ inv @ d), 0.0)))


def fit_pristine(images: Iterable[np.ndarray], *,
                 threshold: float = SHARPNESS_THRESHOLD,
                 log: Callable[[str], None] | None = None) -> NiqeModel:
    """estimatemodelparam.m: pool the features of each image's sharp blocks (mean local
    sigma >= ``threshold`` x the image's sharpest block) and fit one Gaussian to them.
    Images smaller than one block are skipped (counted in ``meta``)."""
    pooled, used, skipped = [], 0, 0
    for i, img in enumerate(images):
        try:
            feats, sharp = block_features(img)
        except ValueError:
            skipped += 1
            continue
        pooled.append(feats[sharp >= threshold * sharp.max()])
        used += 1
        if log is not None and (i + 1) % 100 == 0:
            log(f"{i + 1} images")
    if not pooled:
        raise ValueError(f"no image of at least {BLOCK}x{BLOCK} pixels to fit NIQE on")
    feats = np.concatenate(pooled)
    mu, cov = _mvg(feats)
    if np.isnan(mu).any() or np.isnan(cov).any():
        raise ValueError("the pristine blocks leave a NIQE feature undefined: use more images")
    return NiqeModel(mu, cov, {"images_used": used, "images_skipped": skipped,
                               "blocks": int(len(feats)), "sharpness_threshold": threshold})


def save_model(model: NiqeModel, path: Path, meta: dict | None = None) -> Path:
    """Write the model as JSON (full float precision), atomically: a temp name, then
    rename, so a crash never leaves half a file where the shipped one was."""
    doc = {"format": FORMAT, "block": BLOCK, "features": FEATURES,
           "luma": "BT.601 Y (16..235), rounded; gray images as they are",
           **model.meta, **(meta or {}),
           "mu": [float(v) for v in model.mu],
           "cov": [[float(v) for v in row] for row in model.cov]}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make a private shipped file
        with os.fdopen(fd, "w") as fh:
            json.dump(doc, fh, indent=1)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


@lru_cache(maxsize=4)
def _load(path: str, mtime: float) -> NiqeModel:
    try:
        doc = json.loads(Path(path).read_text())
        mu = np.asarray(doc["mu"], dtype=np.float64)
        cov = np.asarray(doc["cov"], dtype=np.float64)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a NIQE model file ({exc})") from None
    if doc.get("format") != FORMAT or mu.shape != (FEATURES,) \
            or cov.shape != (FEATURES, FEATURES) or not np.isfinite(mu).all() \
            or not np.isfinite(cov).all():
        raise ValueError(f"{path}: not a {FORMAT} model (mean {FEATURES}, covariance "
                         f"{FEATURES}x{FEATURES}, finite)")
    meta = {k: v for k, v in doc.items() if k not in ("mu", "cov")}
    return NiqeModel(mu, cov, meta)


def load_model(path: str | Path | None = None) -> NiqeModel:
    """The pristine model in ``path`` (default: the one srlab ships); ValueError if the
    file is missing or malformed."""
    p = Path(path) if path is not None else MODEL_PATH
    try:
        mtime = p.stat().st_mtime
    except OSError:
        raise ValueError(f"NIQE model not found: {p} (make it with srlab inspect "
                         "--fit-niqe)") from None
    return _load(str(p), mtime)

"""Training data: HR folders (LR made on the fly) or paired ``high_res/`` + ``low_res/`` folders.

Images are loaded lazily (paths only until first use) with an optional cache of decoded
arrays. Batches are a pure function of (seed, iteration): each iteration draws its images,
crops and augmentations from ``np.random.default_rng([seed, iteration])``. That makes a
resumed run see exactly the batches an uninterrupted run would, with no sampler state to
save, and lets a background thread prepare batch i+1 while the model trains on batch i.
"""

from __future__ import annotations

import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from srlab.image.datasets import Pair, load_rgb, pairs_in
from srlab.image.degrade import LEVELS, Level, degrade, level
from srlab.image.resize import imresize, modcrop
from srlab.train.config import Config, expand_path

__all__ = ["ImageSet", "split_paths", "BatchSampler", "datasets_for", "clean_twin",
           "sampler_for"]

VAL_SEED = 7_777  # degraded validation inputs: one fixed draw per image
def split_paths(pairs: list[Pair], val_fraction: float, seed: int) -> tuple[list, list]:
    order = np.random.default_rng(seed).permutation(len(pairs))
    n_val = int(round(len(pairs) * val_fraction))
    val = [pairs[i] for i in sorted(order[:n_val])]
    train = [pairs[i] for i in sorted(order[n_val:])]
    return train, val


class ImageSet:
    """HR/LR image pairs at one scale, decoded on first use (and cached if asked).

    ``rescale`` adds each HR image again at smaller sizes (the VDSR/DRRN/MemNet recipe for
    small training sets: factors 1.0 ... 0.6). Downscaling with MATLAB bicubic gives new
    textures at new frequencies and softens the JPEG blocks of BSDS500, whose HR targets
    would otherwise teach the net to draw them. Fixed LR files (``low_res/``) only pair with
    their HR at factor 1.
    """

    def __init__(self, pairs: list[Pair], *, scale: int, degradation: str | Level = "clean",
                 cache: bool = True, min_lr_size: int = 1,
                 rescale: tuple[float, ...] = (1.0,)) -> None:
        if not rescale or any(not 0 < f <= 1 for f in rescale):
            raise ValueError(f"rescale factors must lie in (0, 1], got {list(rescale)}")
        self.scale = scale
        self.level = level(degradation) if isinstance(degradation, str) else degradation
        self.cache = cache
        self._cache: dict[int | tuple[str, int], tuple[np.ndarray, np.ndarray | None]] = {}
        self._shifted: dict[tuple[int, int, int], np.ndarray] = {}
        kept, small = [], []
        for pair in pairs:
            with Image.open(pair.hr) as im:
                w, h = im.size
            factors = [f for f in rescale if f == 1 or pair.lr is None]
            fits = [f for f in factors if round(min(h, w) * f) // scale >= min_lr_size]
            kept += [(pair, f) for f in fits]
            if not fits:
                small.append(pair)
        if small:  # one line, not one per image: T91 alone has dozens at x4
            names = ", ".join(p.hr.name for p in small[:5]) + (", ..." if len(small) > 5 else "")
            warnings.warn(f"skipping {len(small)} of {len(pairs)} images smaller than a "
                          f"{min_lr_size}px LR patch at x{scale} ({names})", stacklevel=2)
        self.entries: list[tuple[Pair, float]] = kept

    @classmethod
    def from_folders(cls, folders: list[str | Path], **kwargs) -> ImageSet:
        return cls([p for f in folders for p in pairs_in(Path(f))], **kwargs)

    def __len__(self) -> int:
        return len(self.entries)

    def images(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        """(HR modcropped, fixed LR or None when LR must be made on the fly)."""
        if i in self._cache:
            return self._cache[i]
        pair, factor = self.entries[i]
        hr = load_rgb(pair.hr)
        if factor != 1:
            hr = imresize(hr, factor)
        hr = modcrop(hr, self.scale)
        if pair.lr is not None:
            lr = load_rgb(pair.lr)
            if lr.shape[0] * self.scale != hr.shape[0] or lr.shape[1] * self.scale != hr.shape[1]:
                lr = lr[: hr.shape[0] // self.scale, : hr.shape[1] // self.scale]
        elif self.level == LEVELS["clean"]:
            lr = imresize(hr, 1 / self.scale)  # deterministic: make once, crop aligned patches
        else:
            lr = None
        if self.cache:
            self._cache[i] = (hr, lr)
        return hr, lr

    def shifted_lr(self, i: int, dy: int, dx: int) -> np.ndarray | None:
        """Clean LR of HR image ``i`` without its first ``dy`` rows and ``dx`` columns.

        ``images()`` samples each HR image on one LR grid; at xS there are S*S grids (phases),
        each a different LR image of the same scene, so a small training set yields S*S times
        as many distinct pairs. None where LR is not made here (fixed LR files, degradations).
        """
        hr, lr = self.images(i)
        if lr is None or self.entries[i][0].lr is not None:
            return None
        if dy == dx == 0:
            return lr
        if (i, dy, dx) in self._shifted:
            return self._shifted[i, dy, dx]
        lr = imresize(modcrop(hr[dy:, dx:], self.scale), 1 / self.scale)
        if self.cache:
            self._shifted[i, dy, dx] = lr
        return lr

    def full_pair(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Whole (LR, HR) pair for validation: the benchmark protocol, or this set's
        degradation drawn once per image from a fixed seed, so every epoch (and every rerun)
        is scored on the same degraded inputs."""
        hr, lr = self.images(i)
        if lr is None:
            if ("full", i) not in self._cache:
                rng = np.random.default_rng([VAL_SEED, i])
                self._cache[("full", i)] = (degrade(hr, self.scale, self.level, rng), hr)
            lr = self._cache[("full", i)][0]
        return lr, hr


def _augment(lr: np.ndarray, hr: np.ndarray, rng: np.random.Generator):
    if rng.random() < 0.5:
        lr, hr = lr[:, ::-1], hr[:, ::-1]
    if rng.random() < 0.5:
        lr, hr = lr[::-1], hr[::-1]
    k = int(rng.integers(4))
    lr, hr = np.rot90(lr, k), np.rot90(hr, k)
    return lr, hr


class BatchSampler:
    """Random LR/HR patch batches as a pure function of the iteration number.

    ``phases`` draws each clean patch from a random one of the scale**2 LR sampling grids of
    its HR image (``ImageSet.shifted_lr``) instead of always the grid that starts at pixel 0.
    Degraded and rotated patches need no option: they are cut at any HR pixel, so every grid.

    ``candidates`` > 1 draws that many positions in the sample's image and keeps the patch
    with the most HR detail inside its LR sampling cells (``_detail``). Uniform positions
    spend many steps on sky and walls, where bicubic is already close to exact; the idea is
    SamplingAug's (Wang et al., BMVC 2021), which ranks patches by how badly bicubic
    upsampling restores them. Best-of-k keeps flat patches in the mix (when all k are flat)
    rather than dropping them as a top-p% cut would (it did not raise the shipped x4:
    docs/training-history.md).
    """

    def __init__(self, data: ImageSet, *, patch: int, batch: int, seed: int, augment: bool = True,
                 rotate_deg: float = 0.0, phases: bool = False, candidates: int = 1,
                 prefetch: bool = True) -> None:
        if candidates < 1:
            raise ValueError(f"candidates must be at least 1, got {candidates}")
        self.data, self.patch, self.batch, self.seed = data, patch, batch, seed
        self.augment, self.rotate_deg, self.phases = augment, rotate_deg, phases
        self.candidates = candidates
        self._pool = ThreadPoolExecutor(max_workers=1) if prefetch else None
        self._pending: dict[int, Future] = {}
        if len(data) == 0:
            raise ValueError("no training images left (all missing or smaller than a patch)")

    def _patch(self, i: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        if self.candidates == 1:  # one draw: the same random stream as before the option
            return self._one_patch(i, rng)
        drawn = [self._one_patch(i, rng) for _ in range(self.candidates)]
        return max(drawn, key=lambda pair: _detail(pair[1], self.data.scale))

    def _one_patch(self, i: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        s, p = self.data.scale, self.patch
        hr, lr = self.data.images(i)
        dy = dx = 0
        if self.phases and lr is not None and self.rotate_deg == 0:
            dy, dx = (int(v) for v in rng.integers(s, size=2))
            shifted = self.data.shifted_lr(i, dy, dx)
            if shifted is not None and min(shifted.shape[:2]) >= p:
                lr = shifted
            else:  # fixed LR file, or too small once shifted: the aligned LR from above
                dy = dx = 0
        if lr is not None and self.rotate_deg == 0:
            y = int(rng.integers(lr.shape[0] - p + 1))
            x = int(rng.integers(lr.shape[1] - p + 1))
            y0, x0 = dy + y * s, dx + x * s
            return lr[y : y + p, x : x + p], hr[y0 : y0 + p * s, x0 : x0 + p * s]
        hp = p * s
        if self.rotate_deg > 0:  # rotate a larger crop with reflect padding, then cut the centre
            big = int(np.ceil(hp * 1.5))
            big = min(big, hr.shape[0], hr.shape[1])
            y = int(rng.integers(hr.shape[0] - big + 1))
            x = int(rng.integers(hr.shape[1] - big + 1))
            crop = hr[y : y + big, x : x + big]
            angle = float(rng.uniform(-self.rotate_deg, self.rotate_deg))
            crop = _rotate_reflect(crop, angle)
            o = (big - hp) // 2
            hr_p = crop[o : o + hp, o : o + hp]
        else:
            y = int(rng.integers(hr.shape[0] - hp + 1))
            x = int(rng.integers(hr.shape[1] - hp + 1))
            hr_p = hr[y : y + hp, x : x + hp]
        hr_p = np.ascontiguousarray(hr_p)
        return degrade(hr_p, s, self.data.level, rng), hr_p

    def make(self, iteration: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, iteration])
        idx = rng.integers(len(self.data), size=self.batch)
        lrs, hrs = [], []
        for i in idx:
            lr, hr = self._patch(int(i), rng)
            if self.augment:
                lr, hr = _augment(lr, hr, rng)
            lrs.append(np.ascontiguousarray(lr))
            hrs.append(np.ascontiguousarray(hr))

        def to_t(a: list[np.ndarray]) -> torch.Tensor:
            return torch.from_numpy(np.stack(a)).permute(0, 3, 1, 2).float().div_(255)

        return to_t(lrs), to_t(hrs)

    def get(self, iteration: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch ``iteration``, and start preparing the next one in the background."""
        fut = self._pending.pop(iteration, None)
        out = fut.result() if fut is not None else self.make(iteration)
        if self._pool is not None:
            self._pending = {iteration + 1: self._pool.submit(self.make, iteration + 1)}
        return out

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


def _detail(hr: np.ndarray, scale: int) -> float:
    """Mean variance of the HR pixels within each LR sampling cell: the detail that LR
    sampling throws away and the net must restore. A cheap stand-in for SamplingAug's
    bicubic-error ranking (no resize per candidate)."""
    h, w = hr.shape[0] // scale * scale, hr.shape[1] // scale * scale
    cells = hr[:h, :w].astype(np.float32).reshape(h // scale, scale, w // scale, scale, -1)
    return float(cells.var(axis=(1, 3)).mean())


def _rotate_reflect(img: np.ndarray, angle: float) -> np.ndarray:
    """Rotate about the centre, filling corners by reflection instead of black."""
    h, w = img.shape[:2]
    pad = max(h, w) // 2
    padded = np.pad(img, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    rot = np.asarray(Image.fromarray(padded).rotate(angle, resample=Image.BILINEAR))
    return rot[pad : pad + h, pad : pad + w]


def datasets_for(cfg: Config) -> tuple[ImageSet, ImageSet]:
    """The run's training and validation sets, from ``cfg.data`` (split from the training
    folders by ``run.seed`` when no validation folders are given)."""
    d, s = cfg.data, cfg.model.scale
    pairs = [p for f in d.train for p in pairs_in(Path(expand_path(f)))]
    if d.val:
        train_pairs = pairs
        val_pairs = [p for f in d.val for p in pairs_in(Path(expand_path(f)))]
    else:
        train_pairs, val_pairs = split_paths(pairs, d.val_fraction, cfg.run.seed)
    margin = 2 if d.rotate_deg > 0 else 1
    lvl = level(d.degradation, d.degradation_args)
    train_set = ImageSet(train_pairs, scale=s, degradation=lvl, cache=d.cache,
                         min_lr_size=int(d.patch * 1.5) if margin == 2 else d.patch,
                         rescale=tuple(d.rescale))
    # validation follows the task: a run on a degradation picks ``best`` on degraded inputs
    val_set = ImageSet(val_pairs[: d.val_max], scale=s, degradation=lvl, cache=True,
                       min_lr_size=12)
    if len(val_set) == 0:
        raise ValueError("no validation images (set data.val or a val_fraction > 0)")
    return train_set, val_set


def clean_twin(val: ImageSet) -> ImageSet | None:
    """The same validation images by the benchmark protocol, when ``val`` is degraded."""
    if val.level == LEVELS["clean"]:
        return None
    return ImageSet([p for p, _ in val.entries], scale=val.scale, cache=True, min_lr_size=12)


def sampler_for(cfg: Config, train_set: ImageSet, seed: int) -> BatchSampler:
    """The run's batches from ``train_set``, as ``cfg.data`` asks for them."""
    d = cfg.data
    return BatchSampler(train_set, patch=d.patch, batch=d.batch, seed=seed, augment=d.augment,
                        rotate_deg=d.rotate_deg, phases=d.phases, candidates=d.candidates,
                        prefetch=d.prefetch)

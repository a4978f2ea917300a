"""Image folders as datasets: training sets, benchmark sets and labelled sets are all read here,
so every task pairs HR and LR files the same way, and makes a benchmark set's LR inputs the
same way (``load_pairs``: the standard protocol)."""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from srlab.image.degrade import track_lr
from srlab.image.resize import imresize, modcrop

__all__ = ["IMAGE_EXTS", "Pair", "find_images", "load_rgb", "pairs_in", "shared_dir", "load_hr",
           "load_pairs", "benchmark_files"]

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


def find_images(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {folder}")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS)


def load_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


@dataclass
class Pair:
    hr: Path
    lr: Path | None  # None: LR is made from HR


def pairs_in(folder: Path) -> list[Pair]:
    """A folder of HR images, or the Kaggle ISR layout high_res/ (+ optional low_res/)."""
    hr_dir = folder / "high_res"
    if not hr_dir.is_dir():
        return [Pair(p, None) for p in find_images(folder)]
    lr_dir = folder / "low_res"
    lr_by_stem = {p.stem: p for p in find_images(lr_dir)} if lr_dir.is_dir() else {}
    return [Pair(p, lr_by_stem.get(p.stem)) for p in find_images(hr_dir)]


def shared_dir() -> Path:
    """The shared data folder beside the project: ``$SRLAB_SHARED``, default ``../shared``."""
    return Path(os.environ.get("SRLAB_SHARED", "../shared"))


def load_hr(path: Path) -> np.ndarray:
    """HR image as uint8: HxW for grayscale files, HxWx3 otherwise."""
    with Image.open(path) as im:
        if im.mode in ("L", "I;16", "1"):
            return np.asarray(im.convert("L"))
        return np.asarray(im.convert("RGB"))


def benchmark_files(ds: Path) -> list[Path]:
    """The image files of a benchmark folder, in the order ``load_pairs`` scores them."""
    files = sorted(p for p in Path(ds).iterdir()
                   if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".tif"))
    if not files:
        raise FileNotFoundError(f"no images in {ds}")
    return files


def load_pairs(ds: Path, scale: int, track: str | None = None, *,
               names: Collection[str] | None = None,
               ) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(file name, LR, HR) for each image of a folder, by the protocol: modcrop + MATLAB
    bicubic, then the seeded damage of ``track`` (``degrade.TRACKS``) if one is named.
    ``names`` loads only those files (the images a resumed benchmark row still lacks)."""
    out = []
    for f in benchmark_files(ds):
        if names is not None and f.name not in names:
            continue
        hr = modcrop(load_hr(f), scale)
        lr = imresize(hr, 1 / scale) if track is None else track_lr(hr, scale, track, f.name)
        out.append((f.name, lr, hr))
    return out

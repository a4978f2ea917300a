"""Image folders as datasets: training sets, benchmark sets and labelled sets are all read here,
so every task pairs HR and LR files the same way."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["IMAGE_EXTS", "Pair", "find_images", "load_rgb", "pairs_in", "shared_dir"]

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


def shared_dir() -> Path:
    """The data beside the project (benchmark and training sets, peers): ``$SRLAB_SHARED``,
    default ``../shared``."""
    return Path(os.environ.get("SRLAB_SHARED", "../shared"))


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



"""The per-image layer of the benchmark's score cache: one JSON file per scored image.

The row cache (``benchmark.run_benchmark``) keeps a whole (model, set, track) row, so a row
that is interrupted is lost. Real-ESRGAN x4plus takes tens of CPU-seconds per Set14 image,
hours per set: such a row has to be computed in pieces, across runs and sessions. So every
image's scores are stored as soon as they are measured, under a key of everything that
decides them (``image_key``), and a later run measures only the images still missing; the
row is assembled from its images' entries (``assemble``), its speed being their total output
pixels over their total seconds.

The entries live in ``images/`` of the same cache folder as the rows (``--cache``), written
atomically (temp name, then rename) like the rows, so an interrupted write leaves no entry
rather than half of one. An unreadable entry is measured again, never an error.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from srlab.image.degrade import TRACK_SEED

__all__ = ["ImageScore", "image_key", "file_digest", "load", "store", "IMAGES"]

IMAGES = "images"  # the sub-folder of the score cache that holds the per-image entries


@dataclass
class ImageScore:
    """One image's scores and the cost of its upscale, as measured (possibly in another run)."""

    psnr: float
    ssim: float
    gmsd: float
    seconds: float  # wall clock of the model call alone (speed.timed)
    pixels: int  # output pixels
    load: float  # 1-minute load average when it was measured
    params: int  # the model's, so a row assembled from entries needs no model loaded
    trained: bool
    niqe: float = float("nan")
    niqe_model: str = ""  # digest of the pristine NIQE model, "" when NIQE was not asked


def file_digest(path: Path) -> str:
    """sha256 of the file's bytes: the image itself, not its name or date."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def image_key(*, version: int, model_id: str, backend: str, image: str, name: str,
              scale: int, track: str | None) -> str:
    """The cache key of one image's scores: the scoring code's version, the model (tensors,
    architecture, scale; a peer's files and feeding), the backend that ran it, the image
    file's bytes and name (a track's per-image seed is drawn from the name), the scale, and
    the track with ``TRACK_SEED`` (``None``: the clean protocol)."""
    damage = "clean" if track is None else f"{track}|seed{TRACK_SEED}"
    text = f"{version}|{model_id}|{backend}|{image}|{name}|x{scale}|{damage}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _path(cache: Path, key: str) -> Path:
    return Path(cache) / IMAGES / f"{key}.json"


def load(cache: Path, key: str, niqe_model: str | None = None) -> ImageScore | None:
    """The stored scores, or None when absent, unreadable, or (``niqe_model`` given) scored
    without NIQE or against another pristine model: then the image is measured again."""
    try:
        entry = ImageScore(**json.loads(_path(cache, key).read_text()))
    except (OSError, ValueError, TypeError):
        return None
    if niqe_model is not None and entry.niqe_model != niqe_model:
        return None
    return entry


def store(cache: Path, key: str, entry: ImageScore) -> None:
    """Write one entry atomically (an interrupted run leaves it whole or absent)."""
    path = _path(cache, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(entry)))
    tmp.replace(path)

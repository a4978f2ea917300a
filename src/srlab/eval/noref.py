"""No-reference scoring of image files, and the fit of NIQE's pristine model.

``srlab inspect --niqe`` scores a folder of outputs (say, several models' upscales of
RealSRSet, which has no ground truth) image by image; ``srlab inspect --fit-niqe`` fits the
pristine model ``image.niqe`` ships from srlab's own training HR images and records the
command and every image in the file, so anyone can refit it and get the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from srlab.image import niqe as niqe_mod
from srlab.image.datasets import find_images, load_hr, shared_dir
from srlab.image.imageio import ImageError, is_image_file, load_image

__all__ = ["NiqeResult", "expand", "score_files", "default_fit_folders", "fit_folders",
           "FORBIDDEN_FIT_FOLDERS", "model_input", "upscaled_niqe", "lattice_ratio"]

# never fit the "pristine" model on what it will judge: benchmark and real-world test sets
FORBIDDEN_FIT_FOLDERS = {"Set5", "Set14", "BSD100", "Urban100", "RealSRSet", "benchmark", "real"}
FIT_FOLDERS = ("BSDS500-train", "BSDS500-test", "ImageNet-sample400")


@dataclass(frozen=True)
class NiqeResult:
    path: Path
    score: float | None  # None: could not be scored, ``error`` says why in one line
    error: str = ""


def expand(paths: list[Path]) -> list[Path]:
    """Files as given, folders as their image files (sorted; hidden files left out)."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(f for f in p.iterdir() if is_image_file(f))
        else:
            out.append(p)
    return out


def score_files(paths: list[Path], model: niqe_mod.NiqeModel | None = None) -> list[NiqeResult]:
    """NIQE of every image in ``paths`` (files or folders); a file that cannot be read or
    scored (e.g. below 96x96) gets its reason instead of a score."""
    model = model or niqe_mod.load_model()
    results = []
    for path in expand(paths):
        try:
            results.append(NiqeResult(path, niqe_mod.niqe(load_image(path).array, model)))
        except (ImageError, ValueError) as exc:
            results.append(NiqeResult(path, None, str(exc).splitlines()[0]))
    return results


def model_input(arr: np.ndarray) -> np.ndarray:
    """What the models take from a real photo: 8-bit gray or RGB (alpha dropped, 16-bit
    brought to 8)."""
    if arr.dtype == np.uint16:
        arr = np.round(arr / 257).astype(np.uint8)
    if arr.ndim == 3 and arr.shape[2] in (2, 4):
        arr = arr[..., :-1]
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    return np.ascontiguousarray(arr)


def upscaled_niqe(fn: Callable[[np.ndarray], np.ndarray], files: list[Path],
                  model: niqe_mod.NiqeModel | None = None) -> list[float]:
    """NIQE of ``fn``'s output for each image file (a folder of real photos with no ground
    truth, e.g. RealSRSet): how ``tools/niqe_real.py`` and ``srlab ship`` score a model on
    real photos."""
    model = model or niqe_mod.load_model()
    return [niqe_mod.niqe(fn(model_input(load_image(f).array)), model) for f in files]


def default_fit_folders() -> list[Path]:
    """The training HR folders srlab's shipped model is fitted on ($SRLAB_SHARED)."""
    return [shared_dir() / "datasets" / "train" / name for name in FIT_FOLDERS]


def fit_folders(folders: list[Path], out: Path, command: str, *,
                log: Callable[[str], None] = print) -> niqe_mod.NiqeModel:
    """Fit the pristine model on every image of ``folders`` and write it to ``out`` with the
    command and the image list (``folder/file`` names) recorded in it."""
    for folder in folders:
        if folder.resolve().name in FORBIDDEN_FIT_FOLDERS or any(
                part in FORBIDDEN_FIT_FOLDERS for part in folder.resolve().parts[-2:-1]):
            raise ValueError(f"{folder}: a test set; NIQE's pristine model is fitted on "
                             "training images only")
    files = [f for folder in folders for f in find_images(folder)]
    if not files:
        raise ValueError("no images to fit NIQE on in " + ", ".join(map(str, folders)))
    model = niqe_mod.fit_pristine((load_hr(f) for f in files),
                                  log=lambda m: log(f"NIQE fit: {m} of {len(files)}"))
    meta = {"command": command,
            "images": [f"{f.parent.name}/{f.name}" for f in files]}
    niqe_mod.save_model(model, out, meta)
    return niqe_mod.NiqeModel(model.mu, model.cov, {**model.meta, **meta})


def lattice_ratio(img: np.ndarray, period: int = 4) -> float:
    """How much a periodic ``period``-pixel pattern stands out of an image's spectrum.

    A GAN generator that ends in a pixel shuffle can fool its discriminator with a faint grid
    of the upscale's period (a checkerboard at 2x zoom); the grid puts energy at the spectral
    peaks (i*H/period, j*W/period). This is their mean power over the mean power of the ring
    around them (the 7x7 window minus the 3x3 centre): about 1 for a natural image, well
    above it for a gridded one. Luma of an RGB image; no reference needed.
    """
    from srlab.image.color import luma  # the one full-range luma of the no-reference cues

    y = luma(img)
    h, w = y.shape
    win = np.hanning(h)[:, None] * np.hanning(w)[None, :]
    power = np.abs(np.fft.fft2((y - y.mean()) * win)) ** 2
    peaks, rings = [], []
    for i in range(period):
        for j in range(period):
            if i == j == 0:
                continue
            ci, cj = round(i * h / period), round(j * w / period)
            rows = [(ci + d) % h for d in range(-3, 4)]
            cols = [(cj + d) % w for d in range(-3, 4)]
            block = power[np.ix_(rows, cols)]
            peaks.append(block[3, 3])
            ring = block.copy()
            ring[2:5, 2:5] = np.nan
            rings.append(np.nanmean(ring))
    return float(np.mean(peaks) / max(np.mean(rings), 1e-12))

"""``srlab inspect --eval``: what ``auto`` chooses on the damage people's photos have.

``labelled_set`` makes a labelled set from training images (never the benchmark sets): a
centred crop of each HR image (at most ``2 * SIDE`` px) goes through one seeded draw of each
class's damage (``srlab.image.degrade.Damage``) at x2, so the input is a photo-sized LR with
a known HR. Classes that end in a JPEG save are written as a .jpg file (auto reads the file's
quantisation tables) or kept as pixels only (.png). Every draw is seeded by the image's index
and the class, so the tables rerun to the same counts.

``labelled_eval`` counts the strength auto picks per class and, with ``score=True``, upscales
every input at every strength step (span/span-real blends, torch float32) to report auto,
span, span-real and the best step per image in Y PSNR / SSIM (border = scale).
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from srlab.image.condition import STEPS, estimate
from srlab.image.datasets import find_images, load_rgb
from srlab.image.degrade import Damage, degrade

if TYPE_CHECKING:
    from srlab.runtime.upscaler import Upscaler

__all__ = ["CLASSES", "LabelledClass", "labelled_set", "labelled_eval", "confusion_markdown",
           "SCALE", "SIDE"]

SCALE = 2  # the labelled inputs are x2 LR of their HR crop
SIDE = 256  # LR side at most (HR crop 2 * SIDE)


@dataclass(frozen=True)
class LabelledClass:
    label: str
    damage: Damage
    file: bool = False  # the last JPEG save is written as a .jpg file (tables readable)
    kind: str = "damaged"  # "clean": strength <= 0.25 wanted; "damaged": >= 0.5; "camera": report


CLASSES: list[LabelledClass] = [
    LabelledClass("clean (MATLAB bicubic)", Damage(), kind="clean"),
    LabelledClass("camera-like clean (blur 0.8-1.6)", Damage(blur_sigma=(0.8, 1.6)),
                  kind="camera"),
    LabelledClass("JPEG q30-95 .jpg", Damage(jpeg_quality=(30, 95)), file=True),
    LabelledClass("JPEG q30-95 .png", Damage(jpeg_quality=(30, 95))),
    LabelledClass("double JPEG q40-80 then q90-99 .jpg",
                  Damage(jpeg_quality=(40, 80), last_quality=(90, 99)), file=True),
    LabelledClass("JPEG q30-80 then resize 0.5-0.9 .png",
                  Damage(jpeg_quality=(30, 80), resize=(0.5, 0.9))),
    LabelledClass("sensor noise sigma 2-8", Damage(camnoise=(2.0, 8.0))),
    LabelledClass("halftone scan", Damage(halftone=(3.0, 5.0))),
    LabelledClass("blur 1-2 + JPEG q40-80 .jpg",
                  Damage(blur_sigma=(1.0, 2.0), jpeg_quality=(40, 80)), file=True),
]


@dataclass
class Sample:
    label: str
    index: int
    lr: np.ndarray
    hr: np.ndarray
    path: Path | None  # the .jpg file, for classes saved as files


def _crop(hr: np.ndarray, side: int) -> np.ndarray:
    h, w = hr.shape[:2]
    h, w = min(h, side) // SCALE * SCALE, min(w, side) // SCALE * SCALE
    y0, x0 = (hr.shape[0] - h) // 2, (hr.shape[1] - w) // 2
    return np.ascontiguousarray(hr[y0 : y0 + h, x0 : x0 + w])


def make_sample(hr: np.ndarray, cls: LabelledClass, seed: list[int], folder: Path,
                stem: str, scale: int = SCALE) -> tuple[np.ndarray, Path | None]:
    """One seeded draw of ``cls`` on ``hr`` (already cropped) at ``scale``: the LR pixels
    and, for file classes, the .jpg written into ``folder`` (its decoded pixels are the LR)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    d = cls.damage
    if not cls.file:
        return degrade(hr, scale, d, rng), None
    last = d.last_quality or d.jpeg_quality
    assert last is not None, "a file class ends in a JPEG save"
    before = (dataclasses.replace(d, last_quality=None) if d.last_quality
              else dataclasses.replace(d, jpeg_quality=None))
    lr = degrade(hr, scale, before, rng)
    q = int(rng.integers(last[0], last[1] + 1))
    path = folder / f"{stem}.jpg"
    Image.fromarray(lr).save(path, quality=q)
    return load_rgb(path), path


def gray_rgb(img: np.ndarray) -> np.ndarray:
    """An RGB uint8 image as gray (its BT.601 luma in all three channels): old photos and
    scans are often gray, and the labelled set's ``gray`` variant checks them."""
    from srlab.image.color import luma

    return np.repeat(np.round(luma(img)).astype(np.uint8)[..., None], 3, axis=2)


def labelled_set(folder: Path, limit: int, tmp: Path,
                 classes: list[LabelledClass] = CLASSES, gray: bool = False) -> Iterator[Sample]:
    """Every class on each of the first ``limit`` images of ``folder`` (files into ``tmp``),
    with ``gray`` on gray versions of the images (the damage is applied to the gray image)."""
    for i, path in enumerate(find_images(folder)[:limit]):
        hr = _crop(load_rgb(path), 2 * SIDE)
        if gray:
            hr = gray_rgb(hr)
        for c, cls in enumerate(classes):
            lr, file = make_sample(hr, cls, [i, c], tmp, f"{path.stem}_{c}")
            yield Sample(cls.label, i, lr, hr, file)


@dataclass
class ClassResult:
    chosen: Counter = field(default_factory=Counter)  # strength -> images
    best: Counter = field(default_factory=Counter)  # best-scoring step -> images
    psnr: dict[str, list[float]] = field(default_factory=dict)  # auto/span/span-real/best
    ssim: dict[str, list[float]] = field(default_factory=dict)


def step_models() -> dict[float, Upscaler]:
    """Every step of the span/span-real blend at the labelled set's scale, on torch float32
    (the trained numbers): what auto's choice is scored against."""
    from srlab.api import load_model

    return {s: load_model(scale=SCALE, denoise=s, backend="torch") for s in STEPS}


def labelled_eval(folder: Path, limit: int = 100, *, score: bool = False, gray: bool = False,
                  log=None) -> dict[str, ClassResult]:
    """label -> what auto chose (and, with ``score``, how each choice scored)."""
    from srlab.image.metrics import psnr, ssim

    results = {cls.label: ClassResult() for cls in CLASSES}
    nets = step_models() if score else None
    with tempfile.TemporaryDirectory() as tmp:
        for n, sample in enumerate(labelled_set(folder, limit, Path(tmp), gray=gray)):
            res = results[sample.label]
            chosen = estimate(sample.lr, sample.path).denoise
            res.chosen[chosen] += 1
            if nets is None:
                continue
            p, s = {}, {}
            for step, up in nets.items():
                sr = up.upscale_array(sample.lr)
                p[step] = psnr(sr, sample.hr, crop_border=SCALE)
                s[step] = ssim(sr, sample.hr, crop_border=SCALE)
            best = max(STEPS, key=lambda k: p[k])
            res.best[best] += 1
            near = min(STEPS, key=lambda k: abs(k - chosen))  # auto's own step
            for key, step in (("auto", near), ("span", 0.0), ("span-real", 1.0), ("best", best)):
                res.psnr.setdefault(key, []).append(p[step])
                res.ssim.setdefault(key, []).append(s[step])
            if log is not None and n % len(CLASSES) == len(CLASSES) - 1:
                log(f"image {sample.index + 1}/{limit} scored")
    return results


def _share(c: Counter, pred, n: int) -> str:
    k = sum(v for key, v in c.items() if pred(key))
    return f"{100 * k / n:.0f}%"


def confusion_markdown(results: dict[str, ClassResult], command: str) -> str:
    """The strength auto picked per class (and the bar each class has), then the scores."""
    kinds = {cls.label: cls.kind for cls in CLASSES}
    head = " | ".join(f"{s:g}" for s in STEPS)
    lines = [f"| input | images | strength chosen: {head} | bar | met |",
             "|---|---|" + "---|" * len(STEPS) + "---|---|"]
    for label, r in results.items():
        n = sum(r.chosen.values())
        if n == 0:
            continue
        cells = " | ".join(str(sum(v for k, v in r.chosen.items()
                                   if min(STEPS, key=lambda s, k=k: abs(s - k)) == step))
                           for step in STEPS)
        kind = kinds.get(label, "damaged")
        if kind == "clean":
            bar, ok = "<= 0.25 in >= 90%", _share(r.chosen, lambda k: k <= 0.25, n)
            met = f"{ok} ({'yes' if float(ok[:-1]) >= 90 else 'no'})"
        elif kind == "damaged":
            bar, ok = ">= 0.5 in >= 85%", _share(r.chosen, lambda k: k >= 0.5, n)
            met = f"{ok} ({'yes' if float(ok[:-1]) >= 85 else 'no'})"
        else:
            bar, met = "report", "-"
        lines.append(f"| {label} | {n} | {cells} | {bar} | {met} |")
    scored = {k: r for k, r in results.items() if r.psnr}
    if scored:
        lines += ["", "| input | best step (images per step) | auto | span | span-real | "
                  "best step per image |", "|---|---|---|---|---|---|"]
        for label, r in scored.items():
            best = ", ".join(f"{s:g}: {r.best[s]}" for s in STEPS if r.best[s])
            cells = " | ".join(f"{np.mean(r.psnr[k]):.2f} / {np.mean(r.ssim[k]):.4f}"
                               for k in ("auto", "span", "span-real", "best"))
            lines.append(f"| {label} | {best} | {cells} |")
        lines.append(f"\nY PSNR (dB) / SSIM at x{SCALE}, border {SCALE}, mean over the images "
                     "of each class; 'best step' is the strength of 0, 0.25, ..., 1 that "
                     "scored highest on that image (an oracle auto cannot reach).")
    return "\n".join(lines) + f"\n\nMade by `{command}`."

"""``srlab inspect``: what ``auto`` sees in an image, and how often it is right.

``labelled_eval`` makes a labelled set from training images (never the benchmark sets): each
HR image is halved with MATLAB bicubic (which erases the source's own JPEG history), cut to
at most 256 px, and saved clean, as JPEG at several qualities (as .jpg and as .png, so the
pixel cue is tested without the file's tables), with Gaussian noise, and blurred. Every
variant is seeded by the image's index, so the table reruns to the same counts.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

from srlab.image.condition import estimate
from srlab.image.datasets import find_images, load_rgb
from srlab.image.degrade import jpeg
from srlab.image.resize import imresize

__all__ = ["VARIANTS", "labelled_eval", "confusion_markdown"]

# class label -> (kind, parameter); .jpg variants keep the file, .png ones only the pixels
VARIANTS: list[tuple[str, str, float]] = [
    ("clean", "clean", 0),
    ("clean x4 LR", "small", 0),
    *[(f"JPEG q{q} .jpg", "jpg", q) for q in (50, 65, 75, 85, 90, 95)],
    *[(f"JPEG q{q} .png", "jpgpng", q) for q in (50, 65, 75, 85, 90, 95)],
    *[(f"noise sigma {s}", "noise", s) for s in (2, 5, 10, 15)],
    *[(f"blur sigma {s}", "blur", s) for s in (1.0, 2.0)],
]


def _variant(hr: np.ndarray, kind: str, value: float, rng: np.random.Generator,
             folder: Path, stem: str) -> tuple[np.ndarray, Path | None]:
    from PIL import Image

    if kind == "small":
        return imresize(hr, 0.25), None
    if kind in ("jpg", "jpgpng"):
        if kind == "jpgpng":
            return jpeg(hr, int(value)), None
        path = folder / f"{stem}_q{int(value)}.jpg"
        Image.fromarray(hr).save(path, quality=int(value))
        return load_rgb(path), path
    img = hr.astype(np.float64)
    if kind == "noise":
        img = img + rng.normal(0, value, img.shape)
    elif kind == "blur":
        from srlab.image.degrade import gaussian_blur

        img = gaussian_blur(img, value)
    return np.clip(np.round(img), 0, 255).astype(np.uint8), None


def labelled_eval(folder: Path, limit: int = 100) -> dict[str, Counter]:
    """label -> Counter of 'clean' / 'degraded' decisions over ``limit`` images of ``folder``."""
    counts: dict[str, Counter] = {label: Counter() for label, _, _ in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        for i, path in enumerate(find_images(folder)[:limit]):
            hr = imresize(load_rgb(path), 0.5)
            h, w = hr.shape[:2]
            y0, x0 = max(0, (h - 256) // 2), max(0, (w - 256) // 2)
            hr = np.ascontiguousarray(hr[y0 : y0 + 256, x0 : x0 + 256])
            for label, kind, value in VARIANTS:
                rng = np.random.default_rng([i, len(label)])
                img, file = _variant(hr, kind, value, rng, Path(tmp), path.stem)
                cond = estimate(img, file)
                counts[label]["degraded" if cond.degraded else "clean"] += 1
    return counts


def confusion_markdown(counts: dict[str, Counter], command: str) -> str:
    lines = ["| input | images | judged clean | judged degraded |", "|---|---|---|---|"]
    for label, c in counts.items():
        n = sum(c.values())
        lines.append(f"| {label} | {n} | {c['clean']} ({100 * c['clean'] / n:.0f}%) | "
                     f"{c['degraded']} ({100 * c['degraded'] / n:.0f}%) |")
    return "\n".join(lines) + f"\n\nMade by `{command}`."

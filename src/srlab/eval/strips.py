"""Side-by-side crops as one labelled PNG: the benchmark's ``--strip`` (LR | models | HR on a
benchmark set, ``benchmark.visual_strip``) and ``srlab strip`` (photos without ground truth,
e.g. RealSRSet: each model's output of the same crop, ``photo_strip``).

A photo strip upscales only a window around each crop (the crop plus ``context`` input
pixels on every side, so the models see the surroundings they would in the whole photo):
Real-ESRGAN x4plus costs seconds per 64 px tile on a CPU, and a strip is for the eye, not a
score. Peers are labelled as peers. A model that decides per image (auto) decides on the whole
photo, as ``srlab upscale`` would, and its decision runs on the window: read on the window
alone, auto would see a different image.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["draw_grid", "photo_strip", "PhotoCrop", "label"]

ArrayFn = Callable[[np.ndarray], np.ndarray]


@runtime_checkable
class Picks(Protocol):
    """An upscaler that chooses its network per image (``api.AutoUpscaler``); ``last`` holds
    (what it read, the network) after ``pick``."""

    last: Any

    def pick(self, arr: np.ndarray, path: str | Path | None = None) -> Any: ...


def label(model: str) -> str:
    """A column's title: a peer's name says it is one (never mistaken for srlab's)."""
    from srlab.eval.peers import PEERS

    return f"{model}\n(peer)" if model in PEERS else model


def _rgb(a: np.ndarray) -> np.ndarray:
    """Gray (HxW or HxWx1) as three equal channels; an alpha channel dropped."""
    a = a[..., None] if a.ndim == 2 else a
    return np.repeat(a, 3, axis=2) if a.shape[2] == 1 else a[..., :3]


def draw_grid(rows: Sequence[Sequence[np.ndarray]], labels: Sequence[str], out: Path) -> Path:
    """One PNG: a header of ``labels``, then one line of equal-width cells per row, 2 px white
    gaps; written atomically (temp name, then rename)."""
    from PIL import Image, ImageDraw

    lines = [np.concatenate([np.pad(_rgb(a), ((0, 0), (0, 2), (0, 0)), constant_values=255)
                             for a in cells], axis=1) for cells in rows]
    width = max(r.shape[1] for r in lines)
    grid = np.concatenate([np.pad(r, ((0, 2), (0, width - r.shape[1]), (0, 0)),
                                  constant_values=255) for r in lines], axis=0)
    top = 14 * max(t.count("\n") + 1 for t in labels)  # a peer's label has a second line
    head = Image.new("RGB", (grid.shape[1], top), "white")
    draw = ImageDraw.Draw(head)
    cell = grid.shape[1] // len(labels)
    for i, text in enumerate(labels):
        draw.multiline_text((i * cell + 2, 1), text, fill="black")
    img = Image.new("RGB", (grid.shape[1], grid.shape[0] + top), "white")
    img.paste(head, (0, 0))
    img.paste(Image.fromarray(grid), (0, top))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    img.save(tmp, format="PNG", optimize=True)
    tmp.replace(out)
    return out


@dataclass(frozen=True)
class PhotoCrop:
    """One photo and where to crop it: ``at`` = (x, y) of the crop's top-left corner in input
    pixels, None for the centre."""

    path: Path
    at: tuple[int, int] | None = None


def _window(size: int, start: int, crop: int, context: int) -> tuple[int, int]:
    lo = max(0, start - context)
    return lo, min(size, start + crop + context)


def photo_strip(models: Sequence[str], scale: int, photos: Sequence[PhotoCrop], out: Path, *,
                make: Callable[[str, int], ArrayFn | Picks], crop: int = 48, context: int = 24,
                report: Callable[[str], None] | None = None) -> Path:
    """One row per photo, one column per model: the ``crop`` x ``crop`` input-pixel crop of
    each photo, upscaled x``scale`` by each model (``make(name, scale)`` gives the upscaler:
    ``srlab strip`` passes the benchmark's, so peers run exactly as in the tables). A
    ``Picks`` upscaler decides on the whole photo; ``report`` gets a line per decision."""
    from srlab.image.datasets import load_rgb

    fns = [make(m, scale) for m in models]
    rows = []
    for photo in photos:
        img = load_rgb(photo.path)
        h, w = img.shape[:2]
        c = min(crop, h, w)
        x, y = photo.at if photo.at is not None else ((w - c) // 2, (h - c) // 2)
        if not (0 <= x <= w - c and 0 <= y <= h - c):
            raise ValueError(f"{photo.path.name}: a {c} px crop at {x},{y} leaves the "
                             f"{w}x{h} image")
        y0, y1 = _window(h, y, c, context)
        x0, x1 = _window(w, x, c, context)
        window = np.ascontiguousarray(img[y0:y1, x0:x1])
        oy, ox = (y - y0) * scale, (x - x0) * scale
        row = []
        for name, fn in zip(models, fns, strict=True):
            if isinstance(fn, Picks):
                run = fn.pick(img, photo.path).upscale_array
                if report is not None:
                    report(f"{photo.path.name}: {name} ran denoise {fn.last[0].denoise:g} "
                           f"({fn.last[0].reason})")
            else:
                run = fn
            row.append(run(window)[oy: oy + c * scale, ox: ox + c * scale])
        rows.append(row)
    return draw_grid(rows, [label(m) for m in models], out)

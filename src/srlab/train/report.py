"""Small training artefacts: the progress GIF and the curve PNGs that ship beside weights.

Why: they ship inside the package (``src/srlab/weights/<model>_x<s>/``), and a GIF written
with an adaptive palette per frame cost 1.2 MB for 24 frames of 288x288. One palette shared
by all frames and no dithering (its noise is what LZW cannot compress) let the GIF writer
store only the pixels that changed since the previous frame (the bicubic and HR columns of a
strip never change): about a sixth of the bytes. A curve plot needs no 16 million colours;
64 keep its anti-aliased lines and make it about 4x smaller.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["GIF_COLORS", "PLOT_COLORS", "evenly", "save_progress_gif", "compact_plot",
           "shrink_artifact"]

GIF_COLORS = 128
PLOT_COLORS = 64


def evenly(n: int, k: int) -> list[int]:
    """At most ``k`` of the indices 0..n-1, spread evenly, always with the first and last
    (all of them when n <= k: spacing by k, as before, dropped a short run's last epochs)."""
    m = min(n, k)
    return sorted({round(i * (n - 1) / max(m - 1, 1)) for i in range(m)})


def save_progress_gif(frames: Sequence[Image.Image], path: Path, *,
                      duration: int = 500) -> None:
    """``frames`` as a looping GIF with one shared palette (see the module docstring)."""
    from PIL import Image

    if not frames:
        return
    rgb = [f.convert("RGB") for f in frames]
    w, h = rgb[0].size
    sheet = Image.new("RGB", (w, h * len(rgb)))  # the palette is fitted to every frame at once
    for i, f in enumerate(rgb):
        sheet.paste(f.resize((w, h)) if f.size != (w, h) else f, (0, h * i))
    palette = sheet.quantize(colors=GIF_COLORS, method=Image.Quantize.MEDIANCUT,
                             dither=Image.Dither.NONE)
    q = [f.quantize(palette=palette, dither=Image.Dither.NONE) for f in rgb]
    _atomic(path, lambda tmp: q[0].save(tmp, format="GIF", save_all=True,
                                        append_images=q[1:], duration=duration, loop=0))


def compact_plot(path: Path) -> None:
    """Rewrite a matplotlib PNG in place as a ``PLOT_COLORS``-colour palette PNG."""
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        rgba = im.convert("RGBA")
    flat = Image.new("RGB", rgba.size, "white")
    flat.paste(rgba, mask=rgba.getchannel("A"))
    small = flat.quantize(colors=PLOT_COLORS, method=Image.Quantize.MEDIANCUT,
                          dither=Image.Dither.NONE)
    _atomic(path, lambda tmp: small.save(tmp, format="PNG", optimize=True))


def shrink_artifact(path: Path, *, gif_frames: int) -> tuple[int, int]:
    """Re-encode an existing progress GIF (at most ``gif_frames`` frames, spread evenly as
    training keeps them) or curve PNG the small way; the file is replaced only when the new
    one is smaller. Returns (bytes before, bytes after)."""
    from PIL import Image, ImageSequence

    path = Path(path)
    before = path.stat().st_size
    tmp = path.with_name(path.name + ".small")
    try:
        if path.suffix.lower() == ".gif":
            with Image.open(path) as im:
                frames = [f.convert("RGB") for f in ImageSequence.Iterator(im)]
            save_progress_gif([frames[i] for i in evenly(len(frames), gif_frames)], tmp,
                              duration=_gif_duration(path))
        elif path.suffix.lower() == ".png":
            tmp.write_bytes(path.read_bytes())
            compact_plot(tmp)
        else:
            return before, before
        after = tmp.stat().st_size
        if after < before:
            os.replace(tmp, path)
            return before, after
        return before, before
    finally:
        tmp.unlink(missing_ok=True)


def _gif_duration(path: Path) -> int:
    from PIL import Image

    with Image.open(path) as im:
        return int(im.info.get("duration", 500) or 500)


def _atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Write through a temp file beside ``path`` and rename: a reader never sees half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)

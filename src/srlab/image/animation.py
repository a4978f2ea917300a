"""Animated GIF, WebP and PNG (APNG): every frame in, every frame out.

``load_image`` reads the first frame of a file, which silently turns an animation into a
still. Here an animation is read as full-canvas RGBA frames (Pillow composites each frame
over the previous ones as the file's disposal says), with each frame's duration and
disposal, the loop count and the metadata; ``save_animation`` writes the upscaled frames
back, animated, in the same format family: GIF stays GIF, WebP stays WebP, APNG stays PNG.
Frames are upscaled one at a time by the caller (tiling and memory bounds per frame); all
frames together count against the pixel limit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from srlab.image.imageio import (
    READ_FORMATS,
    ImageError,
    first_line,
    pil_pixel_limit,
    write_atomic,
)
from srlab.image.metadata import metadata_kwargs, read_metadata

__all__ = ["ANIMATED_EXTENSIONS", "Animation", "animated_format", "load_animation",
           "save_animation"]

ANIMATED_EXTENSIONS: dict[str, str] = {".gif": "GIF", ".webp": "WEBP", ".png": "PNG",
                                       ".apng": "PNG"}
"""Output extension -> format, for animations (the formats that can hold one)."""
# GIF disposal (0 unspecified, 1 keep, 2 background, 3 previous) <-> APNG's (0 none,
# 1 background, 2 previous), for a GIF written as APNG or back
_GIF_TO_APNG = {0: 0, 1: 0, 2: 1, 3: 2}
_APNG_TO_GIF = {0: 1, 1: 2, 2: 3}


@dataclass
class Animation:
    """The frames of an animated file (HxWx4 uint8, full canvas; HxWx3 when every pixel of
    every frame is opaque) and how they play."""

    frames: list[np.ndarray]
    durations: list[int]  # milliseconds, one per frame
    loop: int | None  # 0 = forever; None = play once (no loop block)
    disposal: list[int] | None  # GIF/APNG per-frame disposal, as Pillow numbers it
    source_format: str  # GIF, WEBP or PNG
    icc_profile: bytes | None = None
    exif: bytes | None = None
    xmp: bytes | None = None

    @property
    def width(self) -> int:
        return int(self.frames[0].shape[1])

    @property
    def height(self) -> int:
        return int(self.frames[0].shape[0])


def animated_format(path: str | Path) -> str | None:
    """'GIF', 'WEBP' or 'PNG' when ``path`` is an animation of more than one frame, else
    None (a still, or not an image: ``load_image`` will say why)."""
    try:
        with pil_pixel_limit(None), Image.open(path, formats=READ_FORMATS) as im:
            if getattr(im, "is_animated", False) and getattr(im, "n_frames", 1) > 1:
                return im.format if im.format in ("GIF", "WEBP", "PNG") else None
    except Exception:  # noqa: BLE001 - unreadable files are load_image's to report
        return None
    return None


def _frames(im: Image.Image) -> Iterator[tuple[np.ndarray, int, int | None]]:
    for i in range(im.n_frames):
        im.seek(i)
        disposal = getattr(im, "disposal_method", None)  # GIF
        if disposal is None:
            disposal = im.info.get("disposal")  # APNG
        yield (np.asarray(im.convert("RGBA")).copy(), int(im.info.get("duration", 100) or 100),
               disposal)


def load_animation(path: str | Path, *, max_pixels: int | None = None) -> Animation:
    """Every frame of an animated file; ``ImageError`` (one line) for anything wrong.
    ``max_pixels`` bounds all frames together (checked before each frame is decoded)."""
    path = Path(path)
    limit = max_pixels or None
    try:
        with pil_pixel_limit(limit), Image.open(path, formats=READ_FORMATS) as im:
            fmt = im.format or "unknown"
            if fmt not in ("GIF", "WEBP", "PNG"):
                raise ImageError(f"{path}: {fmt} animations are not supported")
            w, h = im.size
            n = int(getattr(im, "n_frames", 1))
            if limit is not None and n * w * h > limit:
                raise ImageError(f"{path} has {n} frames of {w} x {h} = {n * w * h:,} pixels, "
                                 f"above the limit of {limit:,}; pass --max-pixels to raise it")
            _, exif, xmp = read_metadata(im)
            icc = im.info.get("icc_profile") or None
            loop = im.info.get("loop")
            frames, durations, disposal = [], [], []
            for arr, ms, disp in _frames(im):
                frames.append(arr)
                durations.append(ms)
                disposal.append(int(disp) if disp is not None else 0)
    except ImageError:
        raise
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types on bad files
        raise ImageError(f"{path}: cannot read the animation ({first_line(exc)})") from None
    if all(bool((f[..., 3] == 255).all()) for f in frames):  # opaque: keep it RGB
        frames = [np.ascontiguousarray(f[..., :3]) for f in frames]
    return Animation(frames, durations, None if loop is None else int(loop),
                     disposal if fmt in ("GIF", "PNG") else None, fmt, icc, exif, xmp)


def save_animation(anim: Animation, path: str | Path, *, quality: int = 95,
                   keep_metadata: bool = True) -> None:
    """Write ``anim`` (frames already upscaled) to ``path``, animated, atomically; the
    extension picks GIF, WebP or APNG (``ANIMATED_EXTENSIONS``). Durations, loop and (GIF,
    APNG) disposal are kept; GIF frames are quantised to 256 colours, as GIF requires."""
    path = Path(path)
    fmt = ANIMATED_EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise ImageError(f"{path.name}: an animation can be written as .gif, .webp or .png "
                         "(APNG), not as a single-frame format")
    if not anim.frames:
        raise ImageError(f"{path.name}: an animation needs at least one frame")
    images = [Image.fromarray(np.ascontiguousarray(f, dtype=np.uint8)) for f in anim.frames]
    disposal = anim.disposal
    if disposal is not None and anim.source_format != fmt:  # GIF and APNG number them apart
        table = _GIF_TO_APNG if fmt == "PNG" else _APNG_TO_GIF
        disposal = [table.get(d, 0) for d in disposal]
    kwargs: dict = {"save_all": True, "append_images": images[1:],
                    "duration": list(anim.durations)}
    if anim.loop is not None:
        kwargs["loop"] = anim.loop
    if fmt == "GIF":
        if disposal is not None:
            kwargs["disposal"] = disposal
        kwargs["optimize"] = False
    elif fmt == "PNG":
        from PIL import PngImagePlugin

        if disposal is not None:
            kwargs["disposal"] = disposal
        kwargs["blend"] = PngImagePlugin.Blend.OP_SOURCE  # full-canvas frames replace
        kwargs["default_image"] = False
    elif fmt == "WEBP":
        kwargs.update(quality=quality, method=4)
    if keep_metadata:
        if anim.icc_profile and fmt != "GIF":
            kwargs["icc_profile"] = anim.icc_profile
        if fmt != "GIF":
            kwargs.update(metadata_kwargs(fmt, anim.exif, anim.xmp))
    write_atomic(path, lambda tmp: images[0].save(tmp, format=fmt, **kwargs))

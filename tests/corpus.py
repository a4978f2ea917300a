"""A corpus of awkward and broken image files, generated from code (nothing downloaded).

Real users bring truncated downloads, files with the wrong extension, text files that happen
to be called ``.png``, decompression bombs, 16-bit scans, CMYK print files, palettes with
transparency, animated GIFs and phone photos that are stored sideways with an EXIF rotation
flag. Every entry here is one of those, built deterministically, so that the bad-input tests,
the fuzzer (which mutates these files as seeds) and the reliability report all work from the
same set.

``build_corpus(folder)`` writes the files and returns ``{file name: "ok" | "error"}``;
``OK_SIZES`` gives, for each "ok" entry, the (width, height) ``load_image`` must report —
after the EXIF rotation, which is why it is not simply the stored size.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from srlab.image.imageio import save_image

Expected = Literal["ok", "error"]

HUGE_SIDE = 100_000
"""The 'decompression bomb' header claims HUGE_SIDE x HUGE_SIDE (10 gigapixels) in 99 bytes."""


def _gradient(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A uint8 RGB image with structure and a little noise (compresses like a photo)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack([x * 255 / max(w - 1, 1), y * 255 / max(h - 1, 1),
                    127 + 100 * np.sin((x + y) / 3)], axis=-1)
    return np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)


def _encode(img: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def png_chunk(tag: bytes, data: bytes) -> bytes:
    """One PNG chunk with a correct CRC (a wrong CRC would be rejected before the header
    is even looked at, which is not the case these files are meant to exercise)."""
    return struct.pack(">I", len(data)) + tag + data + \
        struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def png_with_header(width: int, height: int) -> bytes:
    """A well-formed PNG whose IHDR claims ``width`` x ``height`` 8-bit RGB pixels but whose
    data holds a single empty row: the shape of a decompression-bomb / lying-header file."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + \
        png_chunk(b"IDAT", zlib.compress(b"\x00")) + png_chunk(b"IEND", b"")


def gif_frame_bomb(width: int = 65535, height: int = 65535) -> bytes:
    """A 50-byte GIF whose first frame claims ``width`` x ``height`` with disposal method 2:
    Pillow allocates and fills a frame-sized buffer while merely *opening* such a file
    (found by tools/fuzz_imageio.py; 4 GB for the default size)."""
    screen = b"GIF89a" + struct.pack("<HHBBB", 20, 16, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff"
    control = b"\x21\xf9\x04" + bytes([2 << 2]) + b"\0\0\0\0"  # dispose to background
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0)
    return screen + control + frame + b"\x02\x02\x4c\x01\x00\x3b"


def _png(arr: np.ndarray) -> bytes:
    return _encode(Image.fromarray(arr), "PNG")


def _jpeg(arr: np.ndarray, **kwargs: object) -> bytes:
    return _encode(Image.fromarray(arr), "JPEG", quality=90, **kwargs)


def _save16(arr: np.ndarray, name: str) -> Callable[[Path], None]:
    def write(folder: Path) -> None:
        save_image(arr, folder / name)

    return write


def _palette_with_transparency() -> bytes:
    im = Image.fromarray(_gradient(14, 18, 3)).quantize(16)
    return _encode(im, "PNG", transparency=0)


def _gray_alpha() -> bytes:
    g = _gradient(15, 11, 4)[..., 0]
    alpha = np.tile(np.linspace(0, 255, 11, dtype=np.uint8), (15, 1))
    return _encode(Image.fromarray(np.stack([g, alpha], axis=-1), mode="LA"), "PNG")


def _animated_gif() -> bytes:
    frames = [Image.fromarray(_gradient(16, 20, s)).quantize(64) for s in range(3)]
    return _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=80,
                   loop=0)


def _exif_rotated() -> bytes:
    """Stored 20 wide x 12 high with orientation 6 (rotate 90 cw): displayed 12 x 20."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return _jpeg(_gradient(12, 20, 5), exif=exif.tobytes())


def _cmyk_jpeg() -> bytes:
    return _encode(Image.fromarray(_gradient(10, 14, 6)).convert("CMYK"), "JPEG", quality=90)


def _pillow_16bit_gray() -> bytes:
    arr = (np.arange(9 * 7, dtype=np.uint16).reshape(9, 7) * 1000).astype(np.uint16)
    return _encode(Image.fromarray(arr), "PNG")  # mode I;16, written by Pillow itself


_RGB_PNG = _png(_gradient(24, 32, 1))
_RGB_JPEG = _jpeg(_gradient(24, 32, 2))


@dataclass(frozen=True)
class Entry:
    name: str
    expected: Expected
    size: tuple[int, int] | None  # (width, height) after EXIF orientation, for "ok" entries
    make: Callable[[Path], None]
    why: str


def _bytes(name: str, data: bytes) -> Callable[[Path], None]:
    def write(folder: Path) -> None:
        (folder / name).write_bytes(data)

    return write


def _entry(name: str, expected: Expected, size: tuple[int, int] | None, data: bytes | None,
           why: str, make: Callable[[Path], None] | None = None) -> Entry:
    return Entry(name, expected, size, make or _bytes(name, data or b""), why)


ENTRIES: list[Entry] = [
    _entry("empty.png", "error", None, b"", "zero-byte file"),
    _entry("truncated.png", "error", None, _RGB_PNG[: len(_RGB_PNG) // 2],
           "PNG cut in half (interrupted download)"),
    _entry("truncated.jpg", "error", None, _RGB_JPEG[: len(_RGB_JPEG) // 2],
           "JPEG cut in half"),
    _entry("header_only.png", "error", None, _RGB_PNG[:33], "PNG signature + IHDR, no data"),
    _entry("png_named.jpg", "ok", (32, 24), _RGB_PNG, "a PNG with a .jpg extension"),
    _entry("notes.png", "error", None, b"this is a text file, not an image\n" * 4,
           "text file named .png"),
    _entry("bomb_100000x100000.png", "error", None, png_with_header(HUGE_SIDE, HUGE_SIDE),
           "hand-made IHDR claiming 100000 x 100000 with a valid CRC"),
    _entry("gif_frame_bomb.gif", "error", None, gif_frame_bomb(),
           "50-byte GIF whose frame claims 65535 x 65535 (4 Gpx) with disposal 2"),
    _entry("zero_width.png", "error", None, png_with_header(0, 10),
           "IHDR with a zero width (valid CRC)"),
    _entry("bad_crc.png", "error", None,
           _RGB_PNG[:29] + bytes([_RGB_PNG[29] ^ 0xFF]) + _RGB_PNG[30:],
           "IHDR CRC corrupted"),
    _entry("pixel_1x1.png", "ok", (1, 1), _png(_gradient(1, 1)), "1 x 1"),
    _entry("pixel_2x3.png", "ok", (2, 3), _png(_gradient(3, 2)), "2 wide x 3 high"),
    _entry("odd_37x23.png", "ok", (37, 23), _png(_gradient(23, 37, 7)), "odd size PNG"),
    _entry("odd_17x9.jpg", "ok", (17, 9), _jpeg(_gradient(9, 17, 8)),
           "odd size JPEG (not a multiple of the 8x8 block)"),
    _entry("gray16.png", "ok", (13, 11), None, "16-bit grayscale (srlab's encoder)",
           _save16((np.arange(11 * 13).reshape(11, 13) * 450).astype(np.uint16), "gray16.png")),
    _entry("rgb16.png", "ok", (10, 7), None, "16-bit RGB (Pillow would cut it to 8 bit)",
           _save16((np.arange(7 * 10 * 3).reshape(7, 10, 3) * 300).astype(np.uint16),
                   "rgb16.png")),
    _entry("pillow_i16.png", "ok", (7, 9), _pillow_16bit_gray(), "16-bit gray written by Pillow"),
    _entry("cmyk.jpg", "ok", (14, 10), _cmyk_jpeg(), "CMYK JPEG (print workflow)"),
    _entry("palette_trns.png", "ok", (18, 14), _palette_with_transparency(),
           "palette PNG with a transparent index"),
    _entry("gray_alpha.png", "ok", (11, 15), _gray_alpha(), "grayscale + alpha"),
    _entry("animated.gif", "ok", (20, 16), _animated_gif(), "3-frame animated GIF"),
    _entry("exif_rotated.jpg", "ok", (12, 20), _exif_rotated(),
           "JPEG stored 20x12 with EXIF orientation 6"),
]

OK_SIZES: dict[str, tuple[int, int]] = {e.name: e.size for e in ENTRIES if e.size is not None}
"""(width, height) that ``load_image`` reports for each "ok" entry."""

WHY: dict[str, str] = {e.name: e.why for e in ENTRIES}


def build_corpus(folder: str | Path) -> dict[str, Expected]:
    """Write every corpus file into ``folder`` (created if missing); return name -> expected
    outcome of ``srlab upscale`` on it ("ok": an output of the right size; "error": one
    clear error line and a non-zero exit)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for entry in ENTRIES:
        entry.make(folder)
    return {e.name: e.expected for e in ENTRIES}

"""Reading and writing image files so that real-world files don't break the tools.

Cameras, scanners and editors produce far more than 8-bit RGB: 16-bit PNG/TIFF, grayscale,
alpha, palettes, CMYK, EXIF-rotated JPEGs, embedded colour profiles, truncated downloads and
the odd decompression bomb. Everything in srlab that touches a file goes through this module,
which turns all of that into one of four array layouts (HxW, HxWx2 gray+alpha, HxWx3 RGB,
HxWx4 RGBA; uint8 or uint16) and raises ``ImageError`` with one readable line for anything it
cannot handle, never a raw PIL exception.

Two details worth knowing:

* Pillow has no 16-bit RGB mode: opening a 16-bit colour PNG/TIFF silently yields 8-bit.
  ``load_image`` recovers the full depth by decoding twice (Pillow's own decoder does the
  PNG unfiltering / TIFF decompression; the first pass keeps the high byte of every sample,
  the second, with the byte order swapped, the low byte). 16-bit output is written by the
  small PNG and TIFF encoders below, since Pillow cannot write it either.
* ``save_image`` writes to a temporary file next to the target and renames it into place,
  so an interrupted run never leaves a half-written image under the final name.
"""

from __future__ import annotations

import io
import os
import re
import struct
import sys
import tempfile
import threading
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from srlab.image.metadata import exif_for_output, metadata_kwargs, read_metadata

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "WRITE_EXTENSIONS",
    "ImageError",
    "LoadedImage",
    "load_image",
    "save_image",
    "from_pil",
    "to_pil",
    "is_image_file",
]

# the picture `srlab demo` and `srlab bench` use when given none
SAMPLE_IMAGE = Path(__file__).parents[1] / "assets" / "sample.png"
DEFAULT_MAX_PIXELS = 100_000_000
"""Largest input (width x height) read without an explicit override: 100 Mpx is far beyond any
camera image, yet small enough that its decoded RGB array (300 MB) fits in memory."""

# Pillow plugins we let parse a file: fewer parsers, smaller attack surface for hostile files.
_READ_FORMATS = ("PNG", "JPEG", "BMP", "TIFF", "WEBP", "GIF")  # JPEG also opens MPO
IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".bmp", ".tif", ".tiff", ".webp", ".gif"}
)
"""Extensions recognised as images when a folder is expanded into its files."""

WRITE_EXTENSIONS: dict[str, str] = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".jpe": "JPEG",
    ".jfif": "JPEG",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
}
"""Output extension -> format. GIF is read but never written: 256 colours would undo the SR."""

_MODE_NAMES = {2: "LA", 3: "RGB", 4: "RGBA"}
_SUPPORTED = "PNG, JPEG, BMP, TIFF, WebP, GIF"
_ORIENTATION_TAG = 0x0112
_ICC_TIFF_TAG = 34675
_XMP_TIFF_TAG = 700


class ImageError(ValueError):
    """An image file cannot be read or written; the message is one line meant for users."""


@dataclass
class LoadedImage:
    """A decoded image ready for upscaling.

    ``array`` is HxW (gray), HxWx2 (gray + alpha), HxWx3 (RGB) or HxWx4 (RGBA), uint8 or
    uint16, with the EXIF orientation already applied. ``icc_profile`` is the embedded colour
    profile, to be written into the output so colours stay as they were; ``exif`` (its
    orientation already reset to 1, as the pixels are upright now) and ``xmp`` are the
    camera's and editors' metadata, kept in the output by ``save_image`` (``metadata.py``).
    """

    array: np.ndarray
    mode: str
    icc_profile: bytes | None
    source_format: str
    exif: bytes | None = None
    xmp: bytes | None = None

    @property
    def width(self) -> int:
        return int(self.array.shape[1])

    @property
    def height(self) -> int:
        return int(self.array.shape[0])

    @property
    def channels(self) -> int:
        return 1 if self.array.ndim == 2 else int(self.array.shape[2])

    @property
    def bit_depth(self) -> int:
        return 16 if self.array.dtype == np.uint16 else 8


def is_image_file(path: Path) -> bool:
    """True for a visible regular file with an image extension (used to expand folders)."""
    return path.is_file() and not path.name.startswith(".") and \
        path.suffix.lower() in IMAGE_EXTENSIONS


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------

_PIL_LIMIT_LOCK = threading.Lock()


@contextmanager
def _pil_pixel_limit(limit: int | None) -> Iterator[None]:
    """Temporarily set Pillow's global decompression-bomb limit (it has no per-call option).

    The lock keeps concurrent loads (e.g. the web server) from restoring each other's value.
    """
    with _PIL_LIMIT_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        old = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = limit
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = old


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def load_image(path: str | Path, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Decode an image file into a ``LoadedImage``; any problem raises ``ImageError``.

    ``max_pixels`` (None or 0 = no limit) is checked against the size in the file header
    before any pixel is decoded, so a tiny file claiming to be 100000 x 100000 costs nothing.
    """
    path = Path(path)
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    if path.is_dir():
        raise ImageError(f"{path}: is a directory, not an image")
    try:
        if path.stat().st_size == 0:
            raise ImageError(f"{path}: file is empty")
    except OSError as exc:
        raise ImageError(f"{path}: cannot read ({_first_line(exc)})") from None
    limit = max_pixels if max_pixels else None
    # Our own check below gives a better message, so Pillow's is off while opening — except
    # for GIF: its plugin allocates *and fills* a frame-sized buffer while opening, guarded
    # only by Pillow's check, so a 200-byte GIF claiming a 65535 x 65535 frame would cost
    # 4 GB (found by tools/fuzz_imageio.py). Pillow refuses above twice its setting.
    open_limit = (limit + 1) // 2 if limit is not None and _is_gif(path) else None
    with _pil_pixel_limit(open_limit):
        try:
            im = Image.open(path, formats=_READ_FORMATS)
        except Image.DecompressionBombError as exc:
            claimed = re.search(r"\((\d+) pixels\)", str(exc))
            what = f"claims {int(claimed.group(1)):,} pixels" if claimed else "claims more pixels"
            raise ImageError(f"{path} {what}, above the limit of {limit:,}; "
                             "pass --max-pixels to raise it") from None
        except UnidentifiedImageError:
            raise ImageError(
                f"{path}: not an image srlab can read, or damaged (srlab reads {_SUPPORTED})"
            ) from None
        except Exception as exc:  # noqa: BLE001 - Pillow raises many types on bad files
            raise ImageError(f"{path}: cannot read ({_first_line(exc)})") from None
    with im:
        w, h = im.size
        if w <= 0 or h <= 0:
            raise ImageError(f"{path}: image has no pixels ({w} x {h})")
        if limit is not None and w * h > limit:
            raise ImageError(
                f"{path} has {w} x {h} = {w * h:,} pixels, above the limit of {limit:,}; "
                "pass --max-pixels to raise it"
            )
        source_format = "JPEG" if im.format == "MPO" else (im.format or "unknown")
        with _pil_pixel_limit(limit):
            try:
                arr, mode, icc = _decode(im, path)
            except ImageError:
                raise
            except Image.DecompressionBombError:
                raise ImageError(
                    f"{path}: decodes to more than {limit:,} pixels; "
                    "pass --max-pixels to raise the limit"
                ) from None
            except MemoryError:
                raise ImageError(f"{path}: not enough memory to decode {w} x {h} pixels") \
                    from None
            except Exception as exc:  # noqa: BLE001 - truncated/corrupt data, any decoder
                raise ImageError(f"{path}: cannot decode ({_first_line(exc)})") from None
        # after decoding: reading EXIF may load the image, which consumes its tiles
        orientation, exif, xmp = read_metadata(im)
    arr = _apply_orientation(arr, orientation)
    return LoadedImage(array=arr, mode=mode, icc_profile=icc, source_format=source_format,
                       exif=exif, xmp=xmp)


def _is_gif(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(6) in (b"GIF87a", b"GIF89a")
    except OSError:
        return False  # Image.open will fail on it too, with the real reason


def _rawmode(im: Image.Image) -> str:
    """The raw (file) pixel layout Pillow will decode from, e.g. 'RGB;16B', or ''."""
    tiles = getattr(im, "tile", None) or []
    if not tiles:
        return ""
    args = tiles[0].args
    raw = args if isinstance(args, str) else (args[0] if args else "")
    return raw if isinstance(raw, str) else ""


def _swap_16bit_order(rawmode: str) -> str:
    """'RGB;16B' -> 'RGB;16L' and back ('N' = native order); see the module docstring."""
    base, _, end = rawmode.rpartition(";16")
    order = end[:1]
    if order == "N":
        order = "L" if sys.byteorder == "little" else "B"
    return f"{base};16{'L' if order == 'B' else 'B'}{end[1:]}"


def _retiled(path: Path, tiles: list, rawmode: str) -> np.ndarray:
    """Decode ``path`` again with every tile's raw mode replaced by ``rawmode``."""
    with Image.open(path, formats=_READ_FORMATS) as im:
        im.tile = [t._replace(args=rawmode if isinstance(t.args, str) else (rawmode, *t.args[1:]))
                   for t in tiles]
        im.load()
        return np.asarray(im).astype(np.uint16)


def _read_16bit_colour(im: Image.Image, path: Path, rawmode: str) -> np.ndarray:
    """Full 16-bit samples of an RGB/RGBA/LA image Pillow would otherwise cut to 8 bits."""
    tiles = list(im.tile)
    if rawmode.startswith("LA;16B") and im.mode == "RGBA":
        # 16-bit gray+alpha: 4 bytes a pixel, so reading them as 8-bit RGBA gets every byte
        b = _retiled(path, tiles, "RGBA")
        return np.stack([(b[..., 0] << 8) | b[..., 1], (b[..., 2] << 8) | b[..., 3]], axis=-1)
    im.load()
    high = np.asarray(im).astype(np.uint16)
    low = _retiled(path, tiles, _swap_16bit_order(rawmode))
    if low.shape != high.shape:
        raise ImageError(f"{path}: inconsistent 16-bit decode")
    return (high << 8) | low


def _cmyk_to_rgb(im: Image.Image, icc: bytes | None) -> Image.Image:
    """CMYK -> RGB through the embedded profile when there is one (print files usually have
    one, and a naive conversion shifts colours visibly)."""
    if icc:
        try:
            from PIL import ImageCms

            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            dst = ImageCms.createProfile("sRGB")
            out = ImageCms.profileToProfile(im, src, dst, outputMode="RGB")
            if out is not None:
                return out
        except Exception:  # noqa: BLE001 - a broken profile: fall back to the plain formula
            pass
    return im.convert("RGB")


def _decode(im: Image.Image, path: Path, *, reread: bool = True
            ) -> tuple[np.ndarray, str, bytes | None]:
    """Pixels of an opened image in one of srlab's layouts, a mode description, the ICC.

    ``reread`` allows decoding ``path`` a second time to recover 16-bit colour.
    """
    icc = im.info.get("icc_profile") or None
    mode = im.mode
    rawmode = _rawmode(im)
    if reread and mode in ("RGB", "RGBA") and ";16" in rawmode:
        arr = _read_16bit_colour(im, path, rawmode)
        return arr, f"{_MODE_NAMES[arr.shape[2]]} 16-bit", icc
    if mode.startswith("I;16"):
        return np.asarray(im).astype(np.uint16), "L 16-bit", icc
    if mode == "I":
        arr = np.asarray(im)
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise ImageError(f"{path}: 32-bit integer pixels outside 0..65535 are not supported")
        return arr.astype(np.uint16), "L 16-bit (from I)", icc
    if mode == "F":
        raise ImageError(f"{path}: 32-bit float images are not supported; save as 8 or 16 bit")
    if mode in ("L", "LA", "RGB", "RGBA"):
        return np.asarray(im).copy(), f"{mode} 8-bit", icc
    if mode == "1":
        return np.asarray(im.convert("L")), "L 8-bit (from 1-bit)", icc
    if mode in ("P", "PA"):
        target = "RGBA" if mode == "PA" or im.has_transparency_data else "RGB"
        return np.asarray(im.convert(target)), f"{target} 8-bit (from palette)", icc
    if mode == "La":
        return np.asarray(im.convert("LA")), "LA 8-bit", icc
    if mode in ("RGBa", "RGBX"):
        target = "RGBA" if mode == "RGBa" else "RGB"
        return np.asarray(im.convert(target)), f"{target} 8-bit", icc
    if mode == "CMYK":
        return np.asarray(_cmyk_to_rgb(im, icc)), "RGB 8-bit (from CMYK)", None
    if mode in ("YCbCr", "HSV", "LAB"):
        try:
            rgb = im.convert("RGB")
        except ValueError:
            raise ImageError(f"{path}: unsupported colour mode {mode}") from None
        return np.asarray(rgb), f"RGB 8-bit (from {mode})", None
    raise ImageError(f"{path}: unsupported colour mode {mode}")


def _apply_orientation(arr: np.ndarray, orientation: int) -> np.ndarray:
    """The EXIF orientation transform (same mapping as ``PIL.ImageOps.exif_transpose``),
    done on the array so it also applies to 16-bit colour that never was a PIL image."""
    if orientation == 2:
        arr = arr[:, ::-1]
    elif orientation == 3:
        arr = arr[::-1, ::-1]
    elif orientation == 4:
        arr = arr[::-1]
    elif orientation == 5:
        arr = arr.swapaxes(0, 1)
    elif orientation == 6:
        arr = np.rot90(arr, -1)
    elif orientation == 7:
        arr = arr[::-1, ::-1].swapaxes(0, 1)
    elif orientation == 8:
        arr = np.rot90(arr, 1)
    return np.ascontiguousarray(arr)


# --------------------------------------------------------------------------------------------
# PIL <-> numpy (the Upscaler's PIL path)
# --------------------------------------------------------------------------------------------


def from_pil(img: Image.Image) -> np.ndarray:
    """A PIL image as an srlab array (same layouts and conversions as ``load_image``)."""
    try:
        arr, _, _ = _decode(img, Path("<image>"), reread=False)
    except ImageError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise ImageError(f"cannot convert {img.mode} image: {_first_line(exc)}") from None
    return arr


def _to_8bit(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.uint16:
        return ((arr.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    raise ImageError(f"cannot convert {arr.dtype} pixels to 8 bit")


def _normalise(arr: np.ndarray) -> np.ndarray:
    """Validate an array for writing: 2-D or HxWx{1,2,3,4}, uint8/uint16 (float in [0, 1]
    and bool are converted to uint8)."""
    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (2, 3, 4)):
        raise ImageError(f"cannot write an array of shape {arr.shape} as an image")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageError(f"cannot write an empty image of shape {arr.shape}")
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    elif np.issubdtype(arr.dtype, np.floating):
        arr = np.clip(np.rint(np.nan_to_num(arr) * 255), 0, 255).astype(np.uint8)
    elif arr.dtype not in (np.uint8, np.uint16):
        raise ImageError(f"cannot write {arr.dtype} pixels (use uint8, uint16 or float 0..1)")
    return np.ascontiguousarray(arr)


def to_pil(arr: np.ndarray) -> Image.Image:
    """An srlab array as a PIL image. 16-bit gray stays 16-bit (mode I;16); 16-bit colour
    becomes 8-bit, because Pillow has no 16-bit colour modes."""
    arr = _normalise(arr)
    if arr.dtype == np.uint16:
        if arr.ndim == 2:
            return Image.fromarray(arr)  # I;16
        arr = _to_8bit(arr)
    return Image.fromarray(arr)  # L, LA, RGB or RGBA from the channel count


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + \
        struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def _encode_png16(arr: np.ndarray, icc: bytes | None, exif: bytes | None = None,
                  xmp: bytes | None = None) -> bytes:
    """A 16-bit PNG (gray, gray+alpha, RGB or RGBA) with every row 'Sub'-filtered."""
    h, w = arr.shape[:2]
    c = 1 if arr.ndim == 2 else arr.shape[2]
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    raw = arr.astype(">u2").view(np.uint8).reshape(h, w * c * 2)
    bpp = 2 * c
    filt = raw.copy()
    filt[:, bpp:] -= raw[:, :-bpp]  # uint8 arithmetic wraps modulo 256, as PNG wants
    rows = np.concatenate([np.ones((h, 1), np.uint8), filt], axis=1)  # filter type 1 = Sub
    out = [b"\x89PNG\r\n\x1a\n",
           _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0))]
    if icc:
        out.append(_png_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc)))
    if exif:  # eXIf holds the TIFF structure without JPEG's "Exif\0\0" prefix
        out.append(_png_chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\x00\x00") else exif))
    if xmp:  # iTXt, uncompressed, no language: how Adobe and exiftool store XMP in PNG
        out.append(_png_chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + xmp))
    out.append(_png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)))
    out.append(_png_chunk(b"IEND", b""))
    return b"".join(out)


def _encode_tiff16(arr: np.ndarray, icc: bytes | None, xmp: bytes | None = None) -> bytes:
    """A baseline little-endian 16-bit TIFF, one Deflate-compressed strip."""
    h, w = arr.shape[:2]
    c = 1 if arr.ndim == 2 else arr.shape[2]
    strip = zlib.compress(arr.astype("<u2").tobytes(), 6)
    blobs: list[bytes] = []
    offset = 8

    def place(data: bytes) -> int:
        nonlocal offset
        pos = offset
        blobs.append(data + (b"\x00" if len(data) % 2 else b""))  # word-align the next item
        offset += len(blobs[-1])
        return pos

    strip_at = place(strip)
    entries: list[tuple[int, int, int, bytes]] = []  # tag, type, count, 4-byte value field

    def short(tag: int, *values: int) -> None:
        data = struct.pack(f"<{len(values)}H", *values)
        field = data.ljust(4, b"\x00") if len(data) <= 4 else struct.pack("<I", place(data))
        entries.append((tag, 3, len(values), field))

    def long(tag: int, value: int) -> None:
        entries.append((tag, 4, 1, struct.pack("<I", value)))

    long(256, w)
    long(257, h)
    short(258, *([16] * c))
    short(259, 8)  # Adobe Deflate
    short(262, 2 if c >= 3 else 1)  # RGB / BlackIsZero
    long(273, strip_at)
    short(277, c)
    long(278, h)
    long(279, len(strip))
    short(284, 1)  # chunky
    if c in (2, 4):
        short(338, 2)  # unassociated alpha
    if icc:
        entries.append((_ICC_TIFF_TAG, 7, len(icc), struct.pack("<I", place(icc))))
    if xmp:
        entries.append((_XMP_TIFF_TAG, 1, len(xmp), struct.pack("<I", place(xmp))))
    if offset >= 2**32:
        raise ImageError("image too large for a TIFF file; write a PNG instead")
    ifd = struct.pack("<H", len(entries)) + b"".join(
        struct.pack("<HHI", tag, typ, count) + field for tag, typ, count, field in sorted(entries)
    ) + struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", offset) + b"".join(blobs) + ifd


def _flatten_alpha(arr: np.ndarray) -> np.ndarray:
    """Composite gray+alpha / RGBA over white, for formats written without alpha (JPEG)."""
    if arr.ndim == 2 or arr.shape[2] in (1, 3):
        return arr
    alpha = arr[..., -1:].astype(np.float32) / 255.0
    colour = arr[..., :-1].astype(np.float32)
    out = colour * alpha + 255.0 * (1.0 - alpha)
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out[..., 0] if out.shape[2] == 1 else out


def _gray_to_rgb(arr: np.ndarray) -> np.ndarray:
    """HxW -> HxWx3 and HxWx2 -> HxWx4 (gray replicated, alpha kept)."""
    if arr.ndim == 2:
        return np.repeat(arr[..., None], 3, axis=2)
    return np.concatenate([np.repeat(arr[..., :1], 3, axis=2), arr[..., 1:]], axis=2)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_atomic(path: Path, write) -> None:
    """Run ``write(tmp_path)`` then rename the temp file over ``path``; never half a file."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise ImageError(f"cannot write {path}: {_first_line(exc)}") from None
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, (OSError, ValueError)) and not isinstance(exc, ImageError):
            raise ImageError(f"cannot write {path}: {_first_line(exc)}") from None
        raise


def save_image(
    array: np.ndarray,
    path: str | Path,
    *,
    icc_profile: bytes | None = None,
    quality: int = 95,
    exif: bytes | None = None,
    xmp: bytes | None = None,
) -> None:
    """Write an srlab array to ``path`` in the format its extension names, atomically.

    16-bit arrays stay 16-bit in PNG and TIFF and are rounded to 8 bit for JPEG, WebP and
    BMP. JPEG and BMP keep no alpha: transparent pixels are composited over white.
    ``icc_profile`` is embedded wherever the format allows (all but BMP). ``exif`` (its
    orientation set to 1 and its pixel sizes to this image's) and ``xmp`` are kept in PNG,
    JPEG, WebP and TIFF (an 8-bit TIFF with EXIF is written uncompressed, as Pillow's
    compressed writer cannot hold the EXIF sub-IFD; a 16-bit TIFF keeps XMP, not EXIF).
    ``quality`` applies to JPEG and WebP.
    """
    path = Path(path)
    fmt = WRITE_EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        known = " ".join(sorted(set(WRITE_EXTENSIONS)))
        raise ImageError(f"cannot tell the image format from '{path.name}' (use one of: {known})")
    arr = _normalise(array)
    exif = exif_for_output(exif, arr.shape[1], arr.shape[0]) if exif else None
    xmp = bytes(xmp) if xmp else None
    if arr.dtype == np.uint16 and fmt in ("PNG", "TIFF"):
        if fmt == "TIFF" and arr.ndim == 3 and arr.shape[2] == 2:
            arr = _gray_to_rgb(arr)  # Pillow (so srlab) cannot read 16-bit gray+alpha TIFF
            icc_profile = None
        data = _encode_png16(arr, icc_profile, exif, xmp) if fmt == "PNG" else \
            _encode_tiff16(arr, icc_profile, xmp)
        _write_atomic(path, lambda tmp: Path(tmp).write_bytes(data))
        return
    arr = _to_8bit(arr)
    kwargs: dict = {}
    if fmt == "JPEG":
        arr = _flatten_alpha(arr)
        kwargs = {"quality": quality, "subsampling": 0 if quality >= 90 else 2}
    elif fmt == "WEBP":
        if arr.ndim == 2 or arr.shape[2] == 2:  # WebP is colour only
            arr = _gray_to_rgb(arr)
            icc_profile = None  # a gray profile would not describe RGB pixels
        kwargs = {"quality": quality, "method": 4}
    elif fmt == "BMP":
        # Pillow writes RGBA as 32-bit BI_RGB, whose 4th byte every reader (Pillow too)
        # ignores: the alpha would silently vanish, so composite over white as for JPEG
        arr = _flatten_alpha(arr)
        icc_profile = None  # Pillow's BMP writer cannot embed a profile
    elif fmt == "TIFF":
        kwargs = {"compression": "tiff_deflate"}
    elif fmt == "PNG":
        kwargs = {"compress_level": 6}
    if icc_profile:
        kwargs["icc_profile"] = icc_profile
    kwargs.update(metadata_kwargs(fmt, exif, xmp))
    img = to_pil(arr)
    _write_atomic(path, lambda tmp: img.save(tmp, format=fmt, **kwargs))


# for sibling writers and readers (image.animation): the same limits, parsers and atomic write
READ_FORMATS = _READ_FORMATS
pil_pixel_limit = _pil_pixel_limit
write_atomic = _write_atomic
first_line = _first_line

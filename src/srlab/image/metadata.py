"""EXIF and XMP from the input file into the output file (``imageio`` reads and writes them).

A photo's metadata is the photographer's: camera, lens, date, GPS, copyright, captions,
ratings. An upscaler that drops it makes its output a worse file than its input, so srlab
keeps it by default (``--strip-metadata`` drops it, with the ICC profile). Two fields would
lie after upscaling and are rewritten: the orientation (``load_image`` already turned the
pixels upright, so it becomes 1, in EXIF and in XMP's ``tiff:Orientation``) and EXIF's pixel
dimensions (``PixelXDimension``/``PixelYDimension``), set to the output's size.

Pillow does the parsing and the writing; what differs per format is only how the bytes are
handed to it (``metadata_kwargs``).
"""

from __future__ import annotations

import re
from typing import Any

from PIL import Image

__all__ = ["read_metadata", "exif_for_output", "metadata_kwargs", "ORIENTATION_TAG"]

ORIENTATION_TAG = 0x0112
_EXIF_IFD = 0x8769
_PIXEL_X, _PIXEL_Y = 0xA002, 0xA003
_XMP_TIFF_TAG = 700
_JPEG_APP1_MAX = 65533  # an APP1 segment's payload limit: larger EXIF cannot go into a JPEG
_XMP_ORIENTATION = re.compile(rb'(tiff:Orientation\s*=\s*["\'])\d(["\'])|'
                              rb'(<tiff:Orientation>)\d(</tiff:Orientation>)')


def _xmp_upright(xmp: bytes) -> bytes:
    """XMP with ``tiff:Orientation`` (attribute or element form) set to 1."""
    def one(m: re.Match[bytes]) -> bytes:
        if m.group(1) is not None:
            return m.group(1) + b"1" + m.group(2)
        return m.group(3) + b"1" + m.group(4)

    return _XMP_ORIENTATION.sub(one, xmp)


def read_metadata(im: Image.Image) -> tuple[int, bytes | None, bytes | None]:
    """(EXIF orientation, EXIF bytes with the orientation reset to 1, XMP bytes) of an opened
    image; a corrupt block costs only itself, never the image."""
    orientation, exif, xmp = 1, None, None
    try:
        ex = im.getexif()
        orientation = int(ex.get(ORIENTATION_TAG, 1))
        if orientation not in range(1, 9):
            orientation = 1
        if len(ex):
            if ORIENTATION_TAG in ex:
                ex[ORIENTATION_TAG] = 1
            ex.pop(_XMP_TIFF_TAG, None)  # a TIFF's XMP tag is carried as XMP, not as EXIF
            exif = ex.tobytes()
    except Exception:  # noqa: BLE001 - a corrupt EXIF block must not cost the image
        orientation, exif = 1, None
    raw = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp")
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    if isinstance(raw, (bytes, bytearray)) and raw:
        xmp = _xmp_upright(bytes(raw).rstrip(b"\x00"))
    return orientation, exif, xmp


def exif_for_output(exif: bytes, width: int, height: int) -> bytes | None:
    """The EXIF to write beside a ``width`` x ``height`` image: orientation 1, pixel sizes
    updated where the block records them; None when the bytes do not parse."""
    try:
        ex = Image.Exif()
        ex.load(exif)
        if ORIENTATION_TAG in ex:
            ex[ORIENTATION_TAG] = 1
        sub = ex.get_ifd(_EXIF_IFD)
        if _PIXEL_X in sub or _PIXEL_Y in sub:
            sub[_PIXEL_X], sub[_PIXEL_Y] = int(width), int(height)
        return ex.tobytes()
    except Exception:  # noqa: BLE001 - unparsable: better no EXIF than a broken file
        return None


def metadata_kwargs(fmt: str, exif: bytes | None, xmp: bytes | None) -> dict[str, Any]:
    """Pillow ``save`` arguments that write ``exif`` and ``xmp`` in format ``fmt`` (8-bit
    writers; the 16-bit PNG/TIFF encoders in ``imageio`` write their own chunks/tags)."""
    out: dict[str, Any] = {}
    if fmt == "BMP":
        return out  # BMP holds no metadata
    if exif and not (fmt == "JPEG" and len(exif) > _JPEG_APP1_MAX):
        out["exif"] = exif
    if not xmp:
        return out
    if fmt in ("JPEG", "WEBP"):
        out["xmp"] = xmp
    elif fmt == "PNG":
        from PIL import PngImagePlugin

        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", xmp.decode("utf-8", "replace"), zip=False)
        out["pnginfo"] = info
    elif fmt == "TIFF":
        ex = Image.Exif()
        if exif:
            ex.load(exif)
        ex[_XMP_TIFF_TAG] = xmp
        out["exif"] = ex.tobytes()
    if fmt == "TIFF" and "exif" in out:
        # Pillow's compressed TIFF path (libtiff) cannot write the EXIF sub-IFD and fails:
        # with metadata to keep the TIFF is written uncompressed (Pillow's own writer)
        out["compression"] = "raw"
    return out

"""An image's width and height from its file header, without decoding a pixel.

Why not ``PIL.Image.open(path).size``: ``Image.open`` runs Pillow's decompression-bomb
check right after reading the header and raises for a header above twice
``Image.MAX_IMAGE_PIXELS``, so a caller that wants to *say* how large the file claims to be
("200000 x 150000 = 30,000,000,000 pixels, above the limit") never learns the size. Here each
Pillow format plugin reads the header itself (what ``Image.open`` does before its check), so
the size is the file's own, whatever it claims. Nothing is decoded and Pillow's global limit
is never touched (the web server reads headers from several threads).

GIF is the exception: its plugin allocates a frame-sized buffer while opening, so its size
comes from the logical screen descriptor (bytes 6-9) instead.
"""

from __future__ import annotations

import struct
from pathlib import Path

__all__ = ["header_size"]

_GIF = (b"GIF87a", b"GIF89a")


def header_size(path: str | Path) -> tuple[int, int] | None:
    """(width, height) the file's header claims, or None when no Pillow plugin reads it
    (not an image, or damaged: the decoder then explains why)."""
    from PIL import Image

    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
            if head[:6] in _GIF:
                if len(head) < 10:
                    return None
                return struct.unpack("<HH", head[6:10])
            Image.init()
            for fmt in Image.ID:
                factory, accept = Image.OPEN[fmt]
                if fmt == "GIF":
                    continue
                try:
                    ok = accept(head) if accept else True
                except Exception:  # noqa: BLE001 - a plugin's sniffer failing is a "no"
                    continue
                if not ok or isinstance(ok, str):  # a str is Pillow's "broken" verdict
                    continue
                fh.seek(0)
                try:
                    im = factory(fh, str(path))
                except Exception:  # noqa: BLE001 - not this format (or damaged): try the next
                    continue
                w, h = im.size
                return (int(w), int(h))
    except OSError:
        return None
    return None

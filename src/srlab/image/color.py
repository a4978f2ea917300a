"""BT.601 YCbCr in the studio range the SR protocol uses (Y in 16..235 on a 0..255 scale).

Luma-only models (like ESPCN and srlab's fast flagship) upscale Y with the network and the
chroma with bicubic, as the ESPCN/FSRCNN papers and OpenCV's dnn_superres do.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["BT601", "BT601_OFFSET", "RGB_TO_YCBCR", "YCBCR_OFFSET", "rgb_to_ycbcr",
           "ycbcr_to_rgb", "luma", "luma_terms"]

# rows Y, Cb, Cr: RGB on 0..1 -> 0..255 studio range, plus the offsets; the one copy srlab has
BT601 = ((65.481, 128.553, 24.966), (-37.797, -74.203, 112.0), (112.0, -93.786, -18.214))
BT601_OFFSET = (16.0, 128.0, 128.0)
RGB_TO_YCBCR = torch.tensor(BT601, dtype=torch.float64) / 255.0
YCBCR_OFFSET = torch.tensor(BT601_OFFSET, dtype=torch.float64) / 255.0
_INV = torch.linalg.inv(RGB_TO_YCBCR)
# Y's row over the studio range's height (235 - 16): 0.299, 0.587, 0.114, the same floats
_FULL_RANGE_Y = tuple(c / 219.0 for c in BT601[0])


def luma_terms() -> tuple[torch.Tensor, float, float]:
    """Y = row . RGB + offset (row as 1x3x1x1, float32), and the gain g = 255/219 with which
    the inverse transform puts a change of Y into each of R, G and B: what a luma network's
    output is scaled by when it runs on (or is lifted to) RGB."""
    row = RGB_TO_YCBCR[0].float().view(1, 3, 1, 1)
    return row, float(YCBCR_OFFSET[0]), float(1.0 / RGB_TO_YCBCR[0].sum())


def rgb_to_ycbcr(x: torch.Tensor) -> torch.Tensor:
    """N x 3 x H x W RGB in [0, 1] -> YCbCr in [0, 1] (Y in 16/255..235/255)."""
    m = RGB_TO_YCBCR.to(x.dtype)
    return torch.einsum("ij,njhw->nihw", m, x) + YCBCR_OFFSET.to(x.dtype).view(1, 3, 1, 1)


def ycbcr_to_rgb(x: torch.Tensor) -> torch.Tensor:
    m = _INV.to(x.dtype)
    return torch.einsum("ij,njhw->nihw", m, x - YCBCR_OFFSET.to(x.dtype).view(1, 3, 1, 1))


def luma(img: np.ndarray) -> np.ndarray:
    """BT.601 luma in full range 0..255 (float) of a gray or RGB(A) array, uint8 or uint16:
    the plane auto's damage cues read (the JPEG lattice, noise, the artefact CNN), which
    need the pixels' own range, not the protocol's 16..235."""
    a = img.astype(np.float64) / (257.0 if img.dtype == np.uint16 else 1.0)
    if a.ndim == 2:
        return a
    if a.shape[2] < 3:
        return a[..., 0]
    r, g, b = _FULL_RANGE_Y
    return a[..., 0] * r + a[..., 1] * g + a[..., 2] * b

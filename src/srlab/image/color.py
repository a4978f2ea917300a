"""BT.601 YCbCr in the studio range the SR protocol uses (Y in 16..235 on a 0..255 scale).

Luma-only models (like ESPCN and srlab's fast flagship) upscale Y with the network and the
chroma with bicubic, as the ESPCN/FSRCNN papers and OpenCV's dnn_superres do.
"""

from __future__ import annotations

import torch

__all__ = ["BT601", "BT601_OFFSET", "RGB_TO_YCBCR", "YCBCR_OFFSET", "rgb_to_ycbcr",
           "ycbcr_to_rgb"]

# rows Y, Cb, Cr: RGB on 0..1 -> 0..255 studio range, plus the offsets; the one copy srlab has
BT601 = ((65.481, 128.553, 24.966), (-37.797, -74.203, 112.0), (112.0, -93.786, -18.214))
BT601_OFFSET = (16.0, 128.0, 128.0)
RGB_TO_YCBCR = torch.tensor(BT601, dtype=torch.float64) / 255.0
YCBCR_OFFSET = torch.tensor(BT601_OFFSET, dtype=torch.float64) / 255.0
_INV = torch.linalg.inv(RGB_TO_YCBCR)


def rgb_to_ycbcr(x: torch.Tensor) -> torch.Tensor:
    """N x 3 x H x W RGB in [0, 1] -> YCbCr in [0, 1] (Y in 16/255..235/255)."""
    m = RGB_TO_YCBCR.to(x.dtype)
    return torch.einsum("ij,njhw->nihw", m, x) + YCBCR_OFFSET.to(x.dtype).view(1, 3, 1, 1)


def ycbcr_to_rgb(x: torch.Tensor) -> torch.Tensor:
    m = _INV.to(x.dtype)
    return torch.einsum("ij,njhw->nihw", m, x - YCBCR_OFFSET.to(x.dtype).view(1, 3, 1, 1))

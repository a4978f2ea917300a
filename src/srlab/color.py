"""BT.601 YCbCr in the studio range the SR protocol uses (Y in 16..235 on a 0..255 scale).

Luma-only models (like ESPCN and srlab's fast flagship) upscale Y with the network and the
chroma with bicubic, as the ESPCN/FSRCNN papers and OpenCV's dnn_superres do.
"""

from __future__ import annotations

import torch

__all__ = ["rgb_to_ycbcr", "ycbcr_to_rgb"]

_FWD = torch.tensor(
    [[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]],
    dtype=torch.float64,
) / 255.0
_OFF = torch.tensor([16.0, 128.0, 128.0], dtype=torch.float64) / 255.0
_INV = torch.linalg.inv(_FWD)


def rgb_to_ycbcr(x: torch.Tensor) -> torch.Tensor:
    """N x 3 x H x W RGB in [0, 1] -> YCbCr in [0, 1] (Y in 16/255..235/255)."""
    m = _FWD.to(x.dtype)
    return torch.einsum("ij,njhw->nihw", m, x) + _OFF.to(x.dtype).view(1, 3, 1, 1)


def ycbcr_to_rgb(x: torch.Tensor) -> torch.Tensor:
    m = _INV.to(x.dtype)
    return torch.einsum("ij,njhw->nihw", m, x - _OFF.to(x.dtype).view(1, 3, 1, 1))

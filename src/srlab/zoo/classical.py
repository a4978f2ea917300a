"""Classical interpolation upscalers, wrapped as parameter-free models.

They follow the same contract as the networks, so every tool (upscale, tiling, benchmark,
compare) treats a baseline exactly like a learned model.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from srlab.image.resize import imresize_torch

__all__ = ["Nearest", "Bilinear", "Bicubic", "MatlabBicubic", "Lanczos"]


class _Interp(nn.Module):
    mode = "nearest"
    receptive_field = 1

    def __init__(self, *, scale: int, in_channels: int = 3) -> None:
        super().__init__()
        self.scale = scale
        self.in_channels = in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "nearest":
            return F.interpolate(x, scale_factor=self.scale, mode="nearest")
        out = F.interpolate(x, scale_factor=self.scale, mode=self.mode, align_corners=False)
        return out.clamp(0, 1)


class Nearest(_Interp):
    mode = "nearest"


class Bilinear(_Interp):
    mode = "bilinear"
    receptive_field = 1


class Bicubic(_Interp):
    mode = "bicubic"
    receptive_field = 2


class MatlabBicubic(_Interp):
    """MATLAB's imresize bicubic (a = -0.5, symmetric padding) — the published baseline."""

    receptive_field = 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return imresize_torch(x, self.scale).clamp(0, 1)


def _lanczos_matrix(in_len: int, out_len: int, scale: int, lobes: int = 3) -> np.ndarray:
    """Lanczos weights, built like resize_matrix but with the windowed sinc kernel."""
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale) - 1  # 0-based source coordinate
    left = np.floor(u) - lobes + 1
    idx = left[:, None] + np.arange(2 * lobes)[None, :]
    d = u[:, None] - idx
    w = np.sinc(d) * np.sinc(d / lobes) * (np.abs(d) < lobes)
    w /= w.sum(axis=1, keepdims=True)
    idx = np.clip(idx.astype(np.int64), 0, in_len - 1)  # replicate edges
    mat = np.zeros((out_len, in_len))
    np.add.at(mat, (np.repeat(np.arange(out_len), 2 * lobes), idx.ravel()), w.ravel())
    return mat


class Lanczos(_Interp):
    receptive_field = 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        mh = torch.from_numpy(_lanczos_matrix(h, h * self.scale, self.scale)).to(x.dtype)
        mw = torch.from_numpy(_lanczos_matrix(w, w * self.scale, self.scale)).to(x.dtype)
        return torch.matmul(torch.matmul(mh, x), mw.t()).clamp(0, 1)



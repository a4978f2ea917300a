"""ESPCN: all convolutions at LR resolution, upscaled at the end by a sub-pixel shuffle.

Paper: Shi et al., "Real-Time Single Image and Video Super-Resolution Using an Efficient
Sub-Pixel Convolutional Neural Network", CVPR 2016.

conv 5x5 (64) - tanh - conv 3x3 (32) - tanh - conv 3x3 (C * s^2) - pixel shuffle. Running
on the LR grid makes it ~s^2 times cheaper than SRCNN-style pre-upsampling nets; that is the
point the report makes with it. RGB by default as the reports built it; the shipped x2 and
x4 weights are luma (``in_channels=1``: 21,284 / 24,752 parameters), as the paper's tables.

Variants (registry name; parameters at RGB):
=====  ======  ======  ======
name   x2      x3      x4
=====  ======  ======  ======
espcn  26,796  31,131  37,200
=====  ======  ======  ======
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ESPCN"]


class ESPCN(nn.Module):
    """5-3-3 tanh network on the LR grid with a pixel-shuffle output layer."""

    def __init__(self, *, scale: int, in_channels: int = 3, n1: int = 64, n2: int = 32) -> None:
        super().__init__()
        self.scale = scale
        self.in_channels = in_channels
        self.conv1 = nn.Conv2d(in_channels, n1, 5, padding=2)
        self.conv2 = nn.Conv2d(n1, n2, 3, padding=1)
        self.conv3 = nn.Conv2d(n2, in_channels * scale * scale, 3, padding=1)
        self.receptive_field = 2 + 1 + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.conv1(x))
        h = torch.tanh(self.conv2(h))
        return F.pixel_shuffle(self.conv3(h), self.scale)

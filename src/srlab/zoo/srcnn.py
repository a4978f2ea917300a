"""SRCNN, the first CNN for single-image super-resolution (a report baseline).

Paper: Dong, Loy, He, Tang, "Learning a Deep Convolutional Network for Image
Super-Resolution", ECCV 2014, and "Image Super-Resolution Using Deep Convolutional Networks",
TPAMI 2016.

The network works on the bicubic-upscaled image: patch extraction (9x9, 64 filters), non-linear
mapping (1x1, 32 filters), reconstruction (5x5). Two deliberate departures from the paper:
'same' zero padding instead of 'valid' convolutions (so output size = input size x scale, as
the model contract requires), and RGB input by default as the reports built it (the paper's
main results are luma-only). The shipped x2 and x4 weights are luma (``in_channels=1``, 8,129
parameters), trained as the paper did; the paper's published table row is its larger 9-5-5
net (57K parameters).

Variants (registry name; parameters do not depend on the scale):
=====  ========  =======  ======
name   channels  filters  params
=====  ========  =======  ======
srcnn  RGB (3)   64-32    20,099 (15,616 + 2,080 + 2,403)
=====  ========  =======  ======
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SRCNN", "pre_upsampling_rf"]


def pre_upsampling_rf(hr_radius: int, scale: int) -> int:
    """LR receptive field of a net run on the bicubic-upscaled input.

    An HR output pixel depends on HR pixels within ``hr_radius``; each of those comes from a
    4-tap bicubic, which reaches ``ceil(hr_radius / scale) + 2`` LR pixels away at most.
    """
    return -(-hr_radius // scale) + 2


class SRCNN(nn.Module):
    """9-1-5 SRCNN with ReLU, on the bicubic-upscaled input (zero 'same' padding)."""

    def __init__(
        self,
        *,
        scale: int,
        in_channels: int = 3,
        n1: int = 64,
        n2: int = 32,
        f1: int = 9,
        f2: int = 1,
        f3: int = 5,
    ) -> None:
        super().__init__()
        if min(f1, f2, f3) < 1 or not (f1 % 2 and f2 % 2 and f3 % 2):
            raise ValueError(f"kernel sizes must be odd and positive, got {f1}-{f2}-{f3}")
        self.scale = scale
        self.in_channels = in_channels
        self.extract = nn.Conv2d(in_channels, n1, f1, padding=f1 // 2)
        self.mapping = nn.Conv2d(n1, n2, f2, padding=f2 // 2)
        self.reconstruct = nn.Conv2d(n2, in_channels, f3, padding=f3 // 2)
        self.receptive_field = pre_upsampling_rf(f1 // 2 + f2 // 2 + f3 // 2, scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        h = F.relu(self.extract(h))
        h = F.relu(self.mapping(h))
        return self.reconstruct(h)

"""VDSR: a very deep plain 3x3 network that learns the residual over bicubic.

Paper: Kim, Lee, Lee, "Accurate Image Super-Resolution Using Very Deep Convolutional
Networks", CVPR 2016.

``depth`` 3x3 convolutions (64 channels, ReLU, zero padding) on the bicubic-upscaled image;
the last one predicts a residual that is added to the bicubic input (the global skip is what
lets a 20-layer plain net train at all). The depth is a constructor argument so the report's
depth study (5/10/15/20) uses one class. RGB, with biases (the paper's 665K is luma, no biases).

Initialisation is He's (Kaiming normal for ReLU), as in the paper, and the last conv starts
near zero so the net starts at bicubic. PyTorch's default conv init keeps about 1/6 of the
signal's variance per ReLU layer: over 18 hidden layers the residual branch went silent
(first-layer gradient 1.7e-7 of the last layer's, by ``python tools/probes.py vdsr-init``; a
20-layer run trained that way left validation PSNR unmoved for 450 iterations). With He's
init the ratio is 2.7e-3, and it grows as the last layer does.

Variants (registry names; parameters do not depend on the scale):
=======  =====  =======
name     depth  params
=======  =====  =======
vdsr-5   5      114,307
vdsr-10  10     298,947
vdsr-15  15     483,587
vdsr     20     668,227
=======  =====  =======
(params = 1,792 + (depth - 2) x 36,928 + 1,731 at RGB)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from srlab.zoo.srcnn import pre_upsampling_rf

__all__ = ["VDSR"]


class VDSR(nn.Module):
    """``depth`` conv3x3+ReLU layers on the bicubic input, plus a global residual."""

    def __init__(
        self, *, scale: int, in_channels: int = 3, depth: int = 20, feat: int = 64
    ) -> None:
        super().__init__()
        if depth < 2:
            raise ValueError(f"depth must be at least 2, not {depth}")
        self.scale = scale
        self.in_channels = in_channels
        self.depth = depth
        layers: list[nn.Module] = [nn.Conv2d(in_channels, feat, 3, padding=1), nn.ReLU(True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(feat, feat, 3, padding=1), nn.ReLU(True)]
        layers.append(nn.Conv2d(feat, in_channels, 3, padding=1))
        self.body = nn.Sequential(*layers)
        self.receptive_field = pre_upsampling_rf(depth, scale)
        convs = [m for m in self.body if isinstance(m, nn.Conv2d)]
        for conv in convs[:-1]:
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
            nn.init.zeros_(conv.bias)
        nn.init.normal_(convs[-1].weight, std=1e-3)
        nn.init.zeros_(convs[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return up + self.body(up)

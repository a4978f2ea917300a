"""Encoder-decoder (U-Net-like autoencoder) on the bicubic-upscaled image.

The report's "autoencoder" network: the widely used Keras SR-autoencoder layout, itself a
2-level U-Net (Ronneberger, Fischer, Brox, "U-Net", MICCAI 2015) with additive skips; the
pooling / dropout / nearest-upsampling choices follow that report.

Down: [conv3x3 64, conv3x3 64] - maxpool - dropout - [conv 128, conv 128] - maxpool - dropout
- conv 256. Up: nearest x2 - [conv 128, conv 128] + skip(128) - nearest x2 - [conv 64,
conv 64] + skip(64) - conv3x3 to C, added to the bicubic input (global residual). ReLU after
every conv but the last; dropout is active only in training mode (``nn.Dropout``).

Sizes: the HR input is padded (replicate) on the bottom/right only to a multiple of 4 and the
output cropped back, so any h, w work and the padding does not move the pooling grid.

Receptive field: an output pixel depends on HR pixels within 20 px (worked out layer by layer,
with the worst-case alignment of the two pooling grids), i.e. ceil(20 / s) + 2 LR pixels,
rounded up to a multiple of 4. The rounding matters for tiling: max-pooling is not
shift-invariant, so a tile computes the same values as the whole image only when its origin
lies on the 4-pixel HR pooling grid. Tiles start at ``tile * k - overlap`` LR pixels, so with
the overlap a multiple of 4, tiled == untiled exactly whenever ``tile`` is a multiple of 4
(64, 128, 256, ...); other tile sizes give small differences near tile seams.

Variants (registry name; parameters at RGB, independent of scale):
===========  =========
name         params
===========  =========
autoencoder  1,110,403
===========  =========
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from srlab.zoo.srcnn import pre_upsampling_rf

__all__ = ["AutoEncoder"]

_HR_RADIUS = 20  # see the module docstring


def _conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(True))


class AutoEncoder(nn.Module):
    """2-level encoder-decoder with additive skips and a global bicubic residual."""

    def __init__(
        self,
        *,
        scale: int,
        in_channels: int = 3,
        feat: int = 64,
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        f1, f2, f3 = feat, 2 * feat, 4 * feat
        self.scale = scale
        self.in_channels = in_channels
        self.enc1 = nn.Sequential(_conv(in_channels, f1), _conv(f1, f1))
        self.enc2 = nn.Sequential(_conv(f1, f2), _conv(f2, f2))
        self.bottleneck = _conv(f2, f3)
        self.pool = nn.MaxPool2d(2)
        self.drop = nn.Dropout(dropout)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.dec2 = nn.Sequential(_conv(f3, f2), _conv(f2, f2))
        self.dec1 = nn.Sequential(_conv(f2, f1), _conv(f1, f1))
        self.out = nn.Conv2d(f1, in_channels, 3, padding=1)
        rf = pre_upsampling_rf(_HR_RADIUS, scale)
        self.receptive_field = -(-rf // 4) * 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        hr_h, hr_w = up.shape[-2:]
        pad_h, pad_w = -hr_h % 4, -hr_w % 4
        h = F.pad(up, [0, pad_w, 0, pad_h], mode="replicate") if pad_h or pad_w else up
        e1 = self.enc1(h)
        e2 = self.enc2(self.drop(self.pool(e1)))
        b = self.bottleneck(self.drop(self.pool(e2)))
        d2 = self.dec2(self.up(b)) + e2
        d1 = self.dec1(self.up(d2)) + e1
        return up + self.out(d1)[..., :hr_h, :hr_w]

"""The fully-convolutional family of the fourth report: one FCN, one design change at a time.

Papers: Long, Shelhamer, Darrell, "Fully Convolutional Networks for Semantic Segmentation",
CVPR 2015; EDSR/MDSR (Lim et al., CVPR-W 2017: residual blocks, one trunk with several scale
heads); dilation (Yu & Koltun, ICLR 2016); VGG (Simonyan & Zisserman, ICLR 2015); sub-pixel
heads (Shi et al., CVPR 2016).

Shared trunk, on the LR grid: conv3x3 (C -> 64) - ReLU, then ``blocks`` blocks. The base
variant ``fcn-upsample`` resizes the trunk features to HR (nearest or bilinear), then conv3x3
(64 -> 32) - ReLU - conv3x3 (32 -> C). Every variant adds its output to the bicubic input
and keeps six trunk convs, so each differs from ``fcn-upsample`` in exactly one respect:

- ``fcn-residual``: 3 residual blocks (conv-ReLU-conv + identity) instead of 6 plain convs;
- ``fcn-dilated``: 2 blocks of dilated convs (dilation 1, 2, 4) + identity;
- ``fcn-vgg``: frozen VGG16 relu1_2 features (64 ch) of the bicubic input are concatenated
  with the HR features and fused by a conv3x3 (96 -> 32); weights from a local file only;
- ``fcn-d2s``: a depth-to-space head (conv3x3 to C*s^2 + pixel shuffle) replaces the HR stage;
- ``fcn-multi``: one trunk, two depth-to-space heads (x2 and x4) trained together;
  ``forward`` uses the head of ``self.scale``, ``forward_all`` returns both.

Variants (registry names; parameters at RGB; fcn-vgg includes the 38,720 frozen VGG ones):
============  =======  =======  =======
name          x2       x3       x4
============  =======  =======  =======
fcn-upsample  242,691  242,691  242,691
fcn-residual  242,691  242,691  242,691
fcn-dilated   242,691  242,691  242,691
fcn-vgg       309,091  309,091  309,091
fcn-d2s       230,284  238,939  251,056
fcn-multi     257,980  -        257,980
============  =======  =======  =======
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from srlab.zoo.srcnn import pre_upsampling_rf
from srlab.zoo.vgg import VGGFeatures

__all__ = ["FCN", "FCNMulti", "Block", "Upsample"]

Block = Literal["plain", "residual", "dilated"]
Upsample = Literal["nearest", "bilinear", "d2s"]
_BLOCK_RF = {"plain": 1, "residual": 2, "dilated": 1 + 2 + 4}


class _Plain(nn.Module):
    def __init__(self, feat: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(feat, feat, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv(x))


class _Residual(nn.Module):
    def __init__(self, feat: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(feat, feat, 3, padding=1)
        self.conv2 = nn.Conv2d(feat, feat, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class _Dilated(nn.Module):
    def __init__(self, feat: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(feat, feat, 3, padding=d, dilation=d)
                                   for d in (1, 2, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for i, conv in enumerate(self.convs):
            h = conv(h)
            if i < len(self.convs) - 1:
                h = F.relu(h)
        return x + h


_BLOCKS: dict[str, type[nn.Module]] = {"plain": _Plain, "residual": _Residual,
                                       "dilated": _Dilated}


class _Trunk(nn.Module):
    """conv3x3 + ReLU, then ``blocks`` blocks of the chosen kind, all on the LR grid."""

    def __init__(self, *, in_channels: int, feat: int, blocks: int, block: Block) -> None:
        super().__init__()
        if block not in _BLOCKS:
            raise ValueError(f"block must be one of {tuple(_BLOCKS)}, not {block!r}")
        self.head = nn.Conv2d(in_channels, feat, 3, padding=1)
        self.blocks = nn.Sequential(*(_BLOCKS[block](feat) for _ in range(blocks)))
        self.receptive_field = 1 + blocks * _BLOCK_RF[block]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(F.relu(self.head(x)))


def _bicubic(x: torch.Tensor, scale: int) -> torch.Tensor:
    return F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)


class FCN(nn.Module):
    """LR trunk + (resize then HR convs | depth-to-space) head + bicubic skip; see module docs."""

    def __init__(
        self,
        *,
        scale: int,
        in_channels: int = 3,
        feat: int = 64,
        hr_feat: int = 32,
        blocks: int = 6,
        block: Block = "plain",
        upsample: Upsample = "nearest",
        vgg: bool = False,
        vgg_weights: str | Path | None = None,
    ) -> None:
        super().__init__()
        if upsample not in ("nearest", "bilinear", "d2s"):
            raise ValueError(f"upsample must be nearest, bilinear or d2s, not {upsample!r}")
        if vgg and (upsample == "d2s" or in_channels != 3):
            raise ValueError("the VGG branch needs RGB input and an HR stage (not d2s)")
        if vgg_weights is not None and not vgg:
            raise ValueError("vgg_weights given but vgg=False")
        self.scale = scale
        self.in_channels = in_channels
        self.upsample = upsample
        self.trunk = _Trunk(in_channels=in_channels, feat=feat, blocks=blocks, block=block)
        rf_trunk = self.trunk.receptive_field
        self.vgg: VGGFeatures | None = None
        if upsample == "d2s":
            self.d2s = nn.Conv2d(feat, in_channels * scale * scale, 3, padding=1)
            rf = rf_trunk + 1
        else:
            self.up_conv = nn.Conv2d(feat, hr_feat, 3, padding=1)
            hr_radius = 2  # up_conv + out_conv, in HR pixels
            if vgg:
                self.vgg = VGGFeatures(layers=4, weights=vgg_weights)
                self.fuse = nn.Conv2d(hr_feat + self.vgg.out_channels, hr_feat, 3, padding=1)
                hr_radius += 1
                # VGG branch: 2 convs on the bicubic input, then fuse + out conv
                rf_vgg = pre_upsampling_rf(2 + 2, scale)
            self.out_conv = nn.Conv2d(hr_feat, in_channels, 3, padding=1)
            # nearest: an HR pixel r px away from an LR cell reads LR ceil(r/s) cells away;
            # bilinear reads one more LR pixel.
            rf = rf_trunk + -(-hr_radius // scale) + (1 if upsample == "bilinear" else 0)
            if vgg:
                rf = max(rf, rf_vgg)
        self.receptive_field = max(rf, 2)  # 2 = the bicubic skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.trunk(x)
        base = _bicubic(x, self.scale)
        if self.upsample == "d2s":
            return base + F.pixel_shuffle(self.d2s(h), self.scale)
        if self.upsample == "nearest":
            h = F.interpolate(h, scale_factor=self.scale, mode="nearest")
        else:
            h = F.interpolate(h, scale_factor=self.scale, mode="bilinear", align_corners=False)
        h = F.relu(self.up_conv(h))
        if self.vgg is not None:
            h = F.relu(self.fuse(torch.cat([h, self.vgg(base)], dim=1)))
        return base + self.out_conv(h)


class FCNMulti(nn.Module):
    """One LR trunk shared by depth-to-space heads for several scales (default x2 and x4).

    The trunk learns scale-independent features, so one training run serves every scale at
    the cost of one set of trunk weights; ``scale`` only picks the head ``forward`` uses.
    """

    def __init__(
        self,
        *,
        scale: int,
        in_channels: int = 3,
        feat: int = 64,
        blocks: int = 6,
        block: Block = "plain",
        scales: tuple[int, ...] = (2, 4),
    ) -> None:
        super().__init__()
        scales = tuple(scales)  # a weights file's JSON metadata gives a list
        if scale not in scales:
            raise ValueError(f"scale {scale} is not one of the heads {scales}")
        self.scale = scale
        self.scales = scales
        self.in_channels = in_channels
        self.trunk = _Trunk(in_channels=in_channels, feat=feat, blocks=blocks, block=block)
        self.heads = nn.ModuleDict({str(s): nn.Conv2d(feat, in_channels * s * s, 3, padding=1)
                                    for s in scales})
        self.receptive_field = max(self.trunk.receptive_field + 1, 2)

    def _head(self, x: torch.Tensor, h: torch.Tensor, s: int) -> torch.Tensor:
        return _bicubic(x, s) + F.pixel_shuffle(self.heads[str(s)](h), s)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._head(x, self.trunk(x), self.scale)

    def forward_all(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        """Outputs of every head from one trunk pass (for multi-scale training)."""
        h = self.trunk(x)
        return {s: self._head(x, h, s) for s in self.scales}

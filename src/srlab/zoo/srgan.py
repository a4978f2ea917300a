"""SRGAN: the SRResNet generator (registered) and its VGG-style discriminator (for training).

Paper: Ledig et al., "Photo-Realistic Single Image Super-Resolution Using a Generative
Adversarial Network", CVPR 2017.

Generator (SRResNet): conv9x9 (64) - PReLU, ``blocks`` residual blocks
(conv3x3-BN-PReLU-conv3x3-BN + identity), conv3x3-BN + long skip from the head, sub-pixel
stages (conv3x3 to 64*r^2 - pixel shuffle r - PReLU; one r=2 or r=3 stage, two r=2 at x4),
a conv9x9 to C, no output activation (the Upscaler clamps). BatchNorm runs on its running
statistics at inference, so outputs do not depend on the batch or on tiling.

Why 8 blocks, not the paper's 16: 16 are 53% (x4) to 82% (x2) of the generator's
multiply-adds, so 8 make each pass 1.4x (x4) to 1.7x (x2) cheaper, and on a 2-core CPU budget
the extra iterations are worth more than the depth (the adversarial phase needs many to
settle). Pass ``blocks=16`` for the paper's generator.

Why a global bicubic skip (``skip="bicubic"``; the paper has none): without it the generator
must rebuild the whole image through BatchNorm layers from a random start, and on a CPU budget
it never got there (docs/training-history.md); with it, it learns only the residual over
bicubic, as VDSR does. Pass ``skip="none"`` for the paper's generator.

Discriminator: conv3x3 64 - LReLU(0.2), then 7 conv3x3-BN-LReLU blocks with channels 64,
128, 128, 256, 256, 512, 512 and strides 2, 1, 2, 1, 2, 1, 2; adaptive average pooling to 1x1 (the
paper flattens a fixed 96x96 patch; pooling accepts any patch size), dense 1024 - LReLU -
dense 1. It returns a logit (train it with ``BCEWithLogitsLoss``), one per image.

Variants (registry name; generator parameters at RGB):
=====================  ======  =========  =========  =========
name                   blocks  x2         x3         x4
=====================  ======  =========  =========  =========
srgan                  8       808,845    993,485    956,558
(paper, blocks=16)     16      1,401,749  1,586,389  1,549,462
=====================  ======  =========  =========  =========
Discriminator: 5,213,569 parameters (RGB).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SRResNet", "Discriminator"]


class _ResBlock(nn.Module):
    def __init__(self, feat: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(feat, feat, 3, padding=1), nn.BatchNorm2d(feat), nn.PReLU(),
            nn.Conv2d(feat, feat, 3, padding=1), nn.BatchNorm2d(feat),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _stages(scale: int) -> list[int]:
    if scale == 4:
        return [2, 2]
    if scale in (2, 3):
        return [scale]
    raise ValueError(f"SRResNet supports scales 2, 3 and 4, not {scale}")


class SRResNet(nn.Module):
    """SRGAN's generator: 9x9 head, BN residual blocks, pixel-shuffle stages, 9x9 tail."""

    def __init__(
        self,
        *,
        scale: int,
        in_channels: int = 3,
        feat: int = 64,
        blocks: int = 16,
        skip: Literal["none", "bicubic"] = "none",
    ) -> None:
        super().__init__()
        if skip not in ("none", "bicubic"):
            raise ValueError(f"skip must be none or bicubic, not {skip!r}")
        self.scale = scale
        self.in_channels = in_channels
        self.skip = skip
        self.head = nn.Sequential(nn.Conv2d(in_channels, feat, 9, padding=4), nn.PReLU())
        self.blocks = nn.Sequential(*(_ResBlock(feat) for _ in range(blocks)))
        self.body_tail = nn.Sequential(nn.Conv2d(feat, feat, 3, padding=1), nn.BatchNorm2d(feat))
        up: list[nn.Module] = []
        for r in _stages(scale):
            up += [nn.Conv2d(feat, feat * r * r, 3, padding=1), nn.PixelShuffle(r), nn.PReLU()]
        self.upsample = nn.Sequential(*up)
        self.tail = nn.Conv2d(feat, in_channels, 9, padding=4)
        # LR pixels: head 4 + 2 per block + body_tail 1, then (for every scale) the first
        # stage's conv (1) and the later stages' conv + the 9x9 tail together reach 2 more.
        self.receptive_field = 4 + 2 * blocks + 1 + 1 + 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        head = self.head(x)
        h = head + self.body_tail(self.blocks(head))
        out = self.tail(self.upsample(h))
        if self.skip == "bicubic":
            out = out + F.interpolate(x, scale_factor=self.scale, mode="bicubic",
                                      align_corners=False)
        return out


class Discriminator(nn.Module):
    """VGG-style real/fake classifier returning one logit per image (any patch size)."""

    def __init__(self, *, in_channels: int = 3, feat: int = 64, dense: int = 1024) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, feat, 3, padding=1),
                                   nn.LeakyReLU(0.2, True)]
        cin = feat
        for i, mult in enumerate((1, 2, 2, 4, 4, 8, 8)):
            cout = feat * mult
            stride = 2 if i % 2 == 0 else 1
            layers += [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
                       nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, True)]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Linear(cin, dense)
        self.fc2 = nn.Linear(dense, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pool(self.features(x)).flatten(1)
        return self.fc2(F.leaky_relu(self.fc1(h), 0.2))

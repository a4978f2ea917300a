"""Discriminators for the GAN phase of a run (``gan.discriminator``).

- ``vgg``: SRGAN's VGG-style classifier, one logit per image (Ledig et al., CVPR 2017),
  in ``srlab.zoo.srgan`` beside its generator.
- ``unet``: Real-ESRGAN's U-Net discriminator with spectral normalisation (Wang et al.,
  "Real-ESRGAN", ICCVW 2021; spectral norm: Miyato et al., ICLR 2018). It returns one logit
  per pixel, so it judges local texture (fur, foliage) rather than whole-image statistics,
  and spectral norm keeps its gradients tame without batch norm. ``feat`` is its width:
  Real-ESRGAN uses 64; 16 costs a sixteenth of the multiplies, which is what makes the GAN
  stage trainable on two CPU cores.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

__all__ = ["UNetDiscriminator", "build_discriminator", "DISCRIMINATORS"]


class UNetDiscriminator(nn.Module):
    """Three 2x downsamplings, three bilinear upsamplings with skips, a per-pixel logit."""

    def __init__(self, *, in_channels: int = 3, feat: int = 64) -> None:
        super().__init__()

        def sn(cin: int, cout: int, k: int, stride: int = 1) -> nn.Module:
            return spectral_norm(nn.Conv2d(cin, cout, k, stride, (k - 1) // 2 if k == 3 else 1,
                                           bias=False))

        f = feat
        self.conv0 = nn.Conv2d(in_channels, f, 3, 1, 1)
        self.down = nn.ModuleList([sn(f, 2 * f, 4, 2), sn(2 * f, 4 * f, 4, 2),
                                   sn(4 * f, 8 * f, 4, 2)])
        self.up = nn.ModuleList([sn(8 * f, 4 * f, 3), sn(4 * f, 2 * f, 3), sn(2 * f, f, 3)])
        self.refine = nn.Sequential(sn(f, f, 3), nn.LeakyReLU(0.2, True),
                                    sn(f, f, 3), nn.LeakyReLU(0.2, True))
        self.out = nn.Conv2d(f, 1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.conv0(x), 0.2)
        skips = [h]
        for conv in self.down:
            h = F.leaky_relu(conv(h), 0.2)
            skips.append(h)
        skips.pop()  # the deepest map is h itself
        for conv in self.up:
            h = F.interpolate(h, scale_factor=2, mode="bilinear", align_corners=False)
            h = F.leaky_relu(conv(h), 0.2)
            skip = skips.pop()
            h = h[..., : skip.shape[-2], : skip.shape[-1]] + skip
        return self.out(self.refine(h))


def _vgg(in_channels: int, feat: int) -> nn.Module:
    from srlab.zoo import srgan  # looked up at build time, so a test can swap the class

    return srgan.Discriminator(in_channels=in_channels, feat=feat)


DISCRIMINATORS = {"vgg": _vgg, "unet": lambda c, f: UNetDiscriminator(in_channels=c, feat=f)}


def build_discriminator(name: str, *, in_channels: int, feat: int) -> nn.Module:
    """The discriminator ``name`` (a key of DISCRIMINATORS) for images of ``in_channels``."""
    if name not in DISCRIMINATORS:
        raise ValueError(f"unknown discriminator {name!r} ({', '.join(DISCRIMINATORS)})")
    return DISCRIMINATORS[name](in_channels, feat)

"""Discriminators for the GAN phase of a run (``gan.discriminator``).

- ``vgg``: SRGAN's VGG-style classifier, one logit per image (Ledig et al., CVPR 2017),
  in ``srlab.zoo.srgan`` beside its generator.
- ``unet``: Real-ESRGAN's U-Net discriminator with spectral normalisation (Wang et al.,
  "Real-ESRGAN", ICCVW 2021; spectral norm: Miyato et al., ICLR 2018). It returns one logit
  per pixel, so it judges local texture (fur, foliage) rather than whole-image statistics,
  and spectral norm keeps its gradients tame without batch norm. ``feat`` is its width:
  Real-ESRGAN uses 64; 16 costs a sixteenth of the multiplies, which is what makes the GAN
  stage trainable on two CPU cores.
- ``FrequencyDiscriminator`` (``gan.freq_weight``, beside either): one logit per image from
  the log-amplitude spectrum, as Fuoli et al.'s Fourier-space discriminator ("Fourier Space
  Losses for Efficient Perceptual Image Super-Resolution", ICCV 2021). A grid the generator
  paints is a spike in the spectrum and blur a missing band: both are plain to see there,
  while a per-pixel discriminator can be fooled by a faint regular grid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

__all__ = ["UNetDiscriminator", "FrequencyDiscriminator", "build_discriminator",
           "DISCRIMINATORS"]


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


class FrequencyDiscriminator(nn.Module):
    """Strided spectral-norm convs over (log amplitude, |frequency| row, column), pooled."""

    def __init__(self, *, in_channels: int = 1, feat: int = 16) -> None:
        super().__init__()
        f = feat
        layers: list[nn.Module] = [nn.Conv2d(in_channels + 2, f, 3, 1, 1), nn.LeakyReLU(0.2)]
        for cin, cout in ((f, 2 * f), (2 * f, 4 * f), (4 * f, 4 * f)):
            layers += [spectral_norm(nn.Conv2d(cin, cout, 4, 2, 1)), nn.LeakyReLU(0.2)]
        self.body = nn.Sequential(*layers)
        self.out = nn.Linear(4 * f, 1)

    @staticmethod
    def spectrum(x: torch.Tensor) -> torch.Tensor:
        """log(1 + |rfft2|) of the Hann-windowed, mean-removed image, DC row centred."""
        h, w = x.shape[-2:]
        win = torch.hann_window(h, dtype=x.dtype, device=x.device)[:, None] * \
            torch.hann_window(w, dtype=x.dtype, device=x.device)[None, :]
        amp = torch.fft.rfft2((x - x.mean((-2, -1), keepdim=True)) * win).abs()
        return torch.fft.fftshift(torch.log1p(amp * (64.0 / (h * w) ** 0.5)), dim=-2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spec = self.spectrum(x.float())
        n, _, h, w = spec.shape
        fy = torch.linspace(-1, 1, h, device=x.device).abs().view(1, 1, h, 1).expand(n, 1, h, w)
        fx = torch.linspace(0, 1, w, device=x.device).view(1, 1, 1, w).expand(n, 1, h, w)
        h_ = self.body(torch.cat([spec, fy, fx], 1))
        return self.out(h_.mean((-2, -1)))


def _vgg(in_channels: int, feat: int) -> nn.Module:
    from srlab.zoo import srgan  # looked up at build time, so a test can swap the class

    return srgan.Discriminator(in_channels=in_channels, feat=feat)


DISCRIMINATORS = {"vgg": _vgg, "unet": lambda c, f: UNetDiscriminator(in_channels=c, feat=f)}


def build_discriminator(name: str, *, in_channels: int, feat: int) -> nn.Module:
    """The discriminator ``name`` (a key of DISCRIMINATORS) for images of ``in_channels``."""
    if name not in DISCRIMINATORS:
        raise ValueError(f"unknown discriminator {name!r} ({', '.join(DISCRIMINATORS)})")
    return DISCRIMINATORS[name](in_channels, feat)

"""The upsampling study: one LR trunk, four interchangeable ways to reach the HR grid.

Paper: Odena, Dumoulin, Olah, "Deconvolution and Checkerboard Artifacts", Distill 2016
(https://distill.pub/2016/deconv-checkerboard/); sub-pixel convolution from Shi et al.,
CVPR 2016.

Everything but the upsampler is shared (conv 5x5 64 - ReLU - ``convs`` x conv 3x3 64 - ReLU,
plus a global bicubic skip), so differences in quality and artifacts come from the upsampler:

- ``transposed``: ``ConvTranspose2d(kernel=2s - s%2, stride=s, padding=s//2)``, which gives
  exactly s*h outputs for s = 2, 3, 4 and is centred on each LR pixel. Output phases receive
  different sums of kernel taps, hence periodic (checkerboard) artifacts at period s unless
  training learns them away.
- ``resize-nearest`` / ``resize-bilinear``: resize the features, then a 3x3 conv (Odena's
  "resize-convolution"): every output phase uses the same kernel, so no built-in checkerboard.
- ``subpixel``: conv 3x3 to C*s^2 channels + pixel shuffle (ESPCN's upsampler).

``checkerboard_score`` measures the period-s artifact energy of an output, for the report.

Variants (registry names; parameters at RGB):
==================  =======  =======  =======
name                x2       x3       x4
==================  =======  =======  =======
up-transposed       81,795   83,523   91,011
up-resize-nearest   80,451   80,451   80,451
up-resize-bilinear  80,451   80,451   80,451
up-subpixel         85,644   94,299   106,416
==================  =======  =======  =======
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["UpsamplingNet", "Upsampler", "checkerboard_score"]

Upsampler = Literal["transposed", "resize-nearest", "resize-bilinear", "subpixel"]
_UPSAMPLERS = ("transposed", "resize-nearest", "resize-bilinear", "subpixel")


class UpsamplingNet(nn.Module):
    """Shared LR trunk + the selected upsampler + bicubic skip."""

    def __init__(
        self,
        *,
        scale: int,
        upsampler: Upsampler = "subpixel",
        in_channels: int = 3,
        feat: int = 64,
        convs: int = 2,
    ) -> None:
        super().__init__()
        if upsampler not in _UPSAMPLERS:
            raise ValueError(f"upsampler must be one of {_UPSAMPLERS}, not {upsampler!r}")
        self.scale = scale
        self.in_channels = in_channels
        self.upsampler = upsampler
        layers: list[nn.Module] = [nn.Conv2d(in_channels, feat, 5, padding=2), nn.ReLU(True)]
        for _ in range(convs):
            layers += [nn.Conv2d(feat, feat, 3, padding=1), nn.ReLU(True)]
        self.trunk = nn.Sequential(*layers)
        if upsampler == "transposed":
            kernel = 2 * scale - scale % 2  # (h-1)s - 2(s//2) + kernel == s*h for every s
            self.up = nn.ConvTranspose2d(feat, in_channels, kernel, stride=scale,
                                         padding=scale // 2)
        elif upsampler == "subpixel":
            self.up = nn.Conv2d(feat, in_channels * scale * scale, 3, padding=1)
        else:
            self.up = nn.Conv2d(feat, in_channels, 3, padding=1)
        # trunk (2 + convs) + upsampler (every variant reaches 1 LR pixel; see module docs);
        # the bicubic skip reaches 2, less than this.
        self.receptive_field = 2 + convs + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.trunk(x)
        s = self.scale
        if self.upsampler == "transposed":
            out = self.up(h)
        elif self.upsampler == "subpixel":
            out = F.pixel_shuffle(self.up(h), s)
        elif self.upsampler == "resize-nearest":
            out = self.up(F.interpolate(h, scale_factor=s, mode="nearest"))
        else:
            out = self.up(F.interpolate(h, scale_factor=s, mode="bilinear", align_corners=False))
        return out + F.interpolate(x, scale_factor=s, mode="bicubic", align_corners=False)


def checkerboard_score(img: np.ndarray | torch.Tensor, scale: int, *, border: int = 0) -> float:
    """Energy of the period-``scale`` pattern in an image (0 for none), in intensity^2 units.

    High-pass the image with an s x s box filter (which flattens any period-s pattern to its
    mean), average the residual separately over each of the s x s phases of the pixel grid,
    and return the variance of those phase means (averaged over channels and batch). Image
    content averages out across phases; a checkerboard does not. ``img`` is an HxW or HxWxC
    array, or a (N)CxHxW / HxW tensor; ``border`` pixels are cropped from each side first
    (to ignore zero-padding effects at the edges).
    """
    if isinstance(img, np.ndarray):
        arr = img if img.ndim == 3 else img[..., None]
        t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float64)).permute(2, 0, 1)
    else:
        t = img.detach().to(torch.float64).cpu()
        if t.ndim == 2:
            t = t[None]
    if t.ndim == 3:
        t = t[None]
    if border:
        t = t[..., border:-border, border:-border]
    s = scale
    h, w = t.shape[-2:]
    if h < 2 * s or w < 2 * s:
        raise ValueError(f"image of {h}x{w} is too small to measure period {s}")
    resid = t[..., : h - s + 1, : w - s + 1] - F.avg_pool2d(t, s, stride=1)
    hh, ww = (resid.shape[-2] // s) * s, (resid.shape[-1] // s) * s
    n, c = resid.shape[:2]
    blocks = resid[..., :hh, :ww].reshape(n, c, hh // s, s, ww // s, s)
    phase_means = blocks.mean(dim=(2, 4))  # N x C x s x s
    return float(phase_means.flatten(2).var(dim=2, unbiased=False).mean())

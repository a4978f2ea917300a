"""Training losses: pixel losses, the reports' PSNR/SSIM combinations, FFT, VGG perceptual.

A loss is chosen in the config as weighted terms, e.g. ``{l1: 1.0, fft: 0.05}``. All terms
take (sr, hr) float tensors in [0, 1] and return a scalar to minimise. The reports tried
maximising PSNR and SSIM directly; those are here as minimisable forms
(``psnr`` = -PSNR, ``ssim`` = 1 - SSIM, and their combinations).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LOSSES", "CombinedLoss", "build_loss", "ssim_torch", "psnr_torch", "VGGLoss"]


def psnr_torch(sr: torch.Tensor, hr: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    return 10 * torch.log10(1.0 / (F.mse_loss(sr, hr) + eps))


def _gauss(channels: int, size: int = 11, sigma: float = 1.5, dtype=torch.float32) -> torch.Tensor:
    g = torch.exp(-((torch.arange(size, dtype=dtype) - size // 2) ** 2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def ssim_torch(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """Differentiable mean SSIM per channel ('valid' 11x11 Gaussian window, data range 1)."""
    c = sr.shape[1]
    w = _gauss(c, dtype=sr.dtype).to(sr.device)
    c1, c2 = 0.01**2, 0.03**2
    mu_x, mu_y = F.conv2d(sr, w, groups=c), F.conv2d(hr, w, groups=c)
    sxx = F.conv2d(sr * sr, w, groups=c) - mu_x**2
    syy = F.conv2d(hr * hr, w, groups=c) - mu_y**2
    sxy = F.conv2d(sr * hr, w, groups=c) - mu_x * mu_y
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return s.mean()


def charbonnier(sr: torch.Tensor, hr: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    return torch.sqrt((sr - hr) ** 2 + eps**2).mean()


def fft_loss(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """L1 distance of the 2-D spectra: penalises lost high frequencies that L1 averages away."""
    return (torch.fft.rfft2(sr) - torch.fft.rfft2(hr)).abs().mean()


LOSSES = {
    "mse": F.mse_loss,
    "l1": F.l1_loss,
    "mae": F.l1_loss,
    "charbonnier": charbonnier,
    "psnr": lambda sr, hr: -psnr_torch(sr, hr),
    "ssim": lambda sr, hr: 1 - ssim_torch(sr, hr),
    "mse_ssim": lambda sr, hr: F.mse_loss(sr, hr) - ssim_torch(sr, hr),
    "psnr_ssim": lambda sr, hr: -psnr_torch(sr, hr) - ssim_torch(sr, hr),
    "psnr_over_ssim": lambda sr, hr: -psnr_torch(sr, hr) / (1 - ssim_torch(sr, hr) + 1e-6),
    "fft": fft_loss,
}


class VGGLoss(nn.Module):
    """L1 between VGG16 features (up to relu2_2) of SR and HR; weights from a local file."""

    def __init__(self, *, weights: str | None) -> None:
        super().__init__()
        from srlab.zoo.vgg import VGGFeatures

        self.features = VGGFeatures(weights=weights)
        for p in self.features.parameters():
            p.requires_grad_(False)
        self.features.eval()

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        if sr.shape[1] == 1:
            sr, hr = sr.repeat(1, 3, 1, 1), hr.repeat(1, 3, 1, 1)
        return F.l1_loss(self.features(sr), self.features(hr))


class CombinedLoss(nn.Module):
    """Weighted sum of named terms; ``parts`` keeps the last value of each for logging."""

    def __init__(self, terms: dict[str, float], *, vgg_weights: str | None = None,
                 allow_random_vgg: bool = False) -> None:
        super().__init__()
        unknown = sorted(set(terms) - set(LOSSES) - {"vgg"})
        if unknown or not terms:
            raise ValueError(f"unknown loss terms {unknown} (known: {sorted(LOSSES) + ['vgg']})")
        self.terms = dict(terms)
        self.vgg: VGGLoss | None = None
        if "vgg" in terms:
            if vgg_weights is None and not allow_random_vgg:
                raise ValueError("the vgg loss needs loss.vgg_weights: a local VGG16 weights file "
                                 "(srlab never downloads weights)")
            self.vgg = VGGLoss(weights=vgg_weights)
        self.parts: dict[str, float] = {}

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        total = sr.new_zeros(())
        for name, weight in self.terms.items():
            value = self.vgg(sr, hr) if name == "vgg" else LOSSES[name](sr, hr)
            self.parts[name] = float(value.detach())
            total = total + weight * value
        return total


def build_loss(terms: dict[str, float], *, vgg_weights: str | None = None,
               allow_random_vgg: bool = False) -> CombinedLoss:
    return CombinedLoss(terms, vgg_weights=vgg_weights, allow_random_vgg=allow_random_vgg)

"""Training losses: pixel losses, the reports' PSNR/SSIM combinations, FFT, VGG perceptual,
and the VGG-free perceptual terms of the GAN stage (``randcnn``, ``texture``, ``ldl``).

A loss is chosen in the config as weighted terms, e.g. ``{l1: 1.0, fft: 0.05}``. All terms
take (sr, hr) float tensors in [0, 1] and return a scalar to minimise. The reports tried
maximising PSNR and SSIM directly; those are here as minimisable forms
(``psnr`` = -PSNR, ``ssim`` = 1 - SSIM, and their combinations).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LOSSES", "CombinedLoss", "build_loss", "ssim_torch", "psnr_torch", "VGGLoss",
           "RandomCNNLoss", "ldl_loss", "usm_sharpen", "lattice_loss"]


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


def lattice_loss(sr: torch.Tensor, hr: torch.Tensor,
                 periods: tuple[int, ...] = (3, 4)) -> torch.Tensor:
    """Spectral amplitude of ``sr`` above ``hr``'s at the pixel-shuffle lattice frequencies.

    A generator ending in a pixel shuffle of factor p can paint a faint grid of period p that a
    discriminator may take for texture; the grid is all at the bins (i*H/p, j*W/p). Penalising
    only what exceeds the target's own amplitude there leaves real periodic content alone.
    Periods 3 and 4 cover x2, x3 and x4 (x2's bins are among x4's)."""
    h, w = sr.shape[-2:]
    fs = torch.fft.rfft2(sr - sr.mean((-2, -1), keepdim=True)).abs() / (h * w)
    ft = torch.fft.rfft2(hr - hr.mean((-2, -1), keepdim=True)).abs() / (h * w)
    mask = torch.zeros(fs.shape[-2:], dtype=torch.bool, device=sr.device)
    for p in periods:
        if h % p or w % p:
            continue
        rows = [i * h // p for i in range(p)]
        cols = [j * w // p for j in range(p) if j * w // p <= w // 2]
        for r_ in rows:
            for c in cols:
                mask[r_, c] = (r_, c) != (0, 0)
    if not mask.any():
        return sr.new_zeros(())
    return F.relu(fs[..., mask] - ft[..., mask]).sum(-1).mean()


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
    "lattice": lattice_loss,
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


class RandomCNNLoss(nn.Module):
    """L1 between the features of a frozen, randomly initialised VGG-style CNN.

    Liu et al., "Generic Perceptual Loss for Modeling Structured Output Dependencies" (CVPR
    2021): an untrained deep network's features already carry the structure that makes a
    pretrained VGG a good perceptual loss, which is what srlab can have offline. The weights
    come from a fixed seed, so every run (and a resumed one) uses the same extractor; two
    stages (full and half resolution), half VGG's widths to keep a CPU step cheap.
    """

    def __init__(self, in_channels: int = 1, widths: tuple[int, int] = (32, 64),
                 seed: int = 1234) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        convs, cin = [], in_channels
        for w in (widths[0], widths[0], widths[1], widths[1]):
            conv = nn.Conv2d(cin, w, 3, padding=1)
            with torch.no_grad():  # Kaiming-normal, as the paper's random VGG
                conv.weight.normal_(0, (2 / (cin * 9)) ** 0.5, generator=gen)
                conv.bias.zero_()
            convs.append(conv)
            cin = w
        self.convs = nn.ModuleList(convs)
        for p in self.parameters():
            p.requires_grad_(False)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for i, conv in enumerate(self.convs):
            if i == 2:
                x = F.max_pool2d(x, 2)
            x = F.relu(conv(x))
            if i % 2:
                out.append(x)
        return out

    def pair(self, sr: torch.Tensor, hr: torch.Tensor
             ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Features of SR (with gradient) and HR (without): what ``randcnn`` and ``texture``
        compare, computed once when both terms are on."""
        if sr.shape[1] != self.convs[0].in_channels:  # RGB into a luma extractor: use Y-ish
            sr, hr = sr.mean(1, keepdim=True), hr.mean(1, keepdim=True)
        with torch.no_grad():
            target = self.features(hr)
        return self.features(sr), target

    @staticmethod
    def compare(fs: list[torch.Tensor], ft: list[torch.Tensor]) -> torch.Tensor:
        return sum(F.l1_loss(a, b) for a, b in zip(fs, ft, strict=True))

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        return self.compare(*self.pair(sr, hr))


class TextureLoss(nn.Module):
    """L1 between local Gram matrices of a frozen random CNN's features: a texture loss.

    EnhanceNet (Sajjadi et al., ICCV 2017) matched VGG Gram matrices on 16x16 windows so
    that an SR network draws texture of the target's statistics rather than its own strokes;
    Ustyuzhaninov et al. (ICLR 2017) showed random multi-scale filters already carry natural
    texture statistics, so the frozen extractor of ``RandomCNNLoss`` (same seed) serves
    offline. Where ``randcnn`` matches features where they are, this matches what they look
    like together per window (fine grain for fine grain, flat for flat), which the blind
    judges of issue 51 asked of our GAN stage's painted strokes. ``window`` is in pixels at
    full resolution, halved with the extractor's second stage.
    """

    def __init__(self, in_channels: int = 1, window: int = 16,
                 extractor: RandomCNNLoss | None = None) -> None:
        super().__init__()
        self.extractor = extractor if extractor is not None else RandomCNNLoss(in_channels)
        self.window = window

    @staticmethod
    def gram(f: torch.Tensor, w: int) -> torch.Tensor:
        """(B * windows, C, C) Gram matrices of ``f``'s non-overlapping w x w windows (one
        window, the whole map, when the map is smaller than w)."""
        b, c, h, wd = f.shape
        if h < w or wd < w:
            x = f.reshape(b, c, -1)
        else:
            x = f[:, :, :h // w * w, :wd // w * w].reshape(b, c, h // w, w, wd // w, w)
            x = x.permute(0, 2, 4, 1, 3, 5).reshape(-1, c, w * w)
        return x @ x.transpose(1, 2) / x.shape[-1]

    def compare(self, fs: list[torch.Tensor], ft: list[torch.Tensor]) -> torch.Tensor:
        total = fs[0].new_zeros(())
        for level, (a, b) in enumerate(zip(fs, ft, strict=True)):
            w = max(2, self.window >> level)
            total = total + F.l1_loss(self.gram(a, w), self.gram(b, w))
        return total

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        return self.compare(*self.extractor.pair(sr, hr))


def ldl_loss(sr: torch.Tensor, hr: torch.Tensor, sr_ema: torch.Tensor,
             ksize: int = 7) -> torch.Tensor:
    """Locally discriminative learning (Liang et al., "Details or Artifacts", CVPR 2022).

    GAN generators paint both real texture and artifacts; artifacts are where the residual
    against HR is locally noisy and where the slow EMA generator is closer to HR than the
    current one. Those pixels get an L1 penalty weighted by the residual's local variance
    (``ksize`` window) times its image-level variance to the 1/5, so texture that the EMA
    also produces is left alone.
    """
    r = (hr - sr).abs().sum(1, keepdim=True).detach()
    r_ema = (hr - sr_ema).abs().sum(1, keepdim=True)
    pad = ksize // 2
    rp = F.pad(r, (pad, pad, pad, pad), mode="reflect")
    mean = F.avg_pool2d(rp, ksize, 1)
    local_var = (F.avg_pool2d(rp * rp, ksize, 1) - mean * mean).clamp_min(0)
    image_var = r.flatten(1).var(dim=1).clamp_min(0).pow(0.2).view(-1, 1, 1, 1)
    weight = torch.where(r < r_ema, torch.zeros_like(r), image_var * local_var)
    return F.l1_loss(weight * sr, weight * hr)


def usm_sharpen(img: torch.Tensor, weight: float = 0.5, threshold: float = 10 / 255,
                sigma: float = 8.0) -> torch.Tensor:
    """Unsharp-masked ``img`` (Real-ESRGAN's "sharpen GT"): add ``weight`` x the detail that a
    Gaussian blur (sigma 8, its 51-px kernel) removes, only where that detail exceeds
    ``threshold`` (a softened mask), so flat areas keep their noise level."""
    size = 51
    x = torch.arange(size, dtype=img.dtype, device=img.device) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    c = img.shape[1]
    kh, kw = g.view(1, 1, size, 1).expand(c, 1, size, 1), g.view(1, 1, 1, size).expand(c, 1, 1,
                                                                                         size)

    pad_mode = "reflect" if min(img.shape[-2:]) > size // 2 else "replicate"  # tiny patches

    def blur(t: torch.Tensor) -> torch.Tensor:
        t = F.pad(t, (size // 2,) * 4, mode=pad_mode)
        return F.conv2d(F.conv2d(t, kh, groups=c), kw, groups=c)

    residual = img - blur(img)
    mask = blur((residual.abs() > threshold).to(img.dtype))
    sharp = (img + weight * residual).clamp(0, 1)
    return mask * sharp + (1 - mask) * img


class CombinedLoss(nn.Module):
    """Weighted sum of named terms; ``parts`` keeps the last value of each for logging.

    ``ldl`` needs the EMA generator's output (``sr_ema``); ``needs_ema`` tells the loop to
    compute it. ``randcnn`` is the random-feature perceptual loss on ``in_channels``,
    ``texture`` the local-Gram texture loss on the same features.
    """

    def __init__(self, terms: dict[str, float], *, vgg_weights: str | None = None,
                 allow_random_vgg: bool = False, in_channels: int = 3) -> None:
        super().__init__()
        special = {"vgg", "randcnn", "texture", "ldl"}
        unknown = sorted(set(terms) - set(LOSSES) - special)
        if unknown or not terms:
            raise ValueError(f"unknown loss terms {unknown} "
                             f"(known: {sorted(set(LOSSES) | special)})")
        self.terms = dict(terms)
        self.needs_ema = "ldl" in terms
        # one frozen extractor (and one pass of it per step) for randcnn and texture
        self.randcnn = RandomCNNLoss(in_channels) if {"randcnn", "texture"} & set(terms) \
            else None
        self.texture = TextureLoss(in_channels, extractor=self.randcnn) \
            if "texture" in terms else None
        self.vgg: VGGLoss | None = None
        if "vgg" in terms:
            if vgg_weights is None and not allow_random_vgg:
                raise ValueError("the vgg loss needs loss.vgg_weights: a local VGG16 weights file "
                                 "(srlab never downloads weights)")
            self.vgg = VGGLoss(weights=vgg_weights)
        self.parts: dict[str, float] = {}

    def forward(self, sr: torch.Tensor, hr: torch.Tensor,
                sr_ema: torch.Tensor | None = None) -> torch.Tensor:
        total = sr.new_zeros(())
        feats = self.randcnn.pair(sr, hr) if self.randcnn is not None else None
        for name, weight in self.terms.items():
            if name == "vgg":
                value = self.vgg(sr, hr)
            elif name == "randcnn":
                value = self.randcnn.compare(*feats)
            elif name == "texture":
                value = self.texture.compare(*feats)
            elif name == "ldl":
                if sr_ema is None:
                    raise ValueError("the ldl loss needs the EMA generator (set optim.ema)")
                value = ldl_loss(sr, hr, sr_ema)
            else:
                value = LOSSES[name](sr, hr)
            self.parts[name] = float(value.detach())
            total = total + weight * value
        return total


def build_loss(terms: dict[str, float], *, vgg_weights: str | None = None,
               allow_random_vgg: bool = False, in_channels: int = 3) -> CombinedLoss:
    return CombinedLoss(terms, vgg_weights=vgg_weights, allow_random_vgg=allow_random_vgg,
                        in_channels=in_channels)

"""Image-quality metrics by the standard SR protocol.

PSNR and SSIM are computed on 0..255 values, either on the BT.601 luma (Y) channel — the
convention of every published SR table — or on all RGB channels, after cropping
``crop_border`` pixels (= the scale) from each side. SSIM uses an 11x11 Gaussian window,
sigma 1.5, K1 = 0.01, K2 = 0.03, evaluated only where the window fits (``valid``), as in the
reference MATLAB code of Wang et al.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["rgb_to_y", "psnr", "ycbcr_psnr", "ssim", "mse", "mae", "gmsd", "evaluate", "Scores"]


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """BT.601 luma on the 16..235 scale from RGB (uint8 or float 0..255), as float64."""
    from srlab.image.color import BT601, BT601_OFFSET

    (r, g, b), rgb = BT601[0], img.astype(np.float64) / 255.0
    return BT601_OFFSET[0] + rgb[..., 0] * r + rgb[..., 1] * g + rgb[..., 2] * b


def _prepare(a: np.ndarray, b: np.ndarray, crop_border: int, y_channel: bool):
    if a.shape != b.shape:
        raise ValueError(f"metric inputs differ in shape: {a.shape} vs {b.shape}")
    if y_channel and a.ndim == 3 and a.shape[2] == 3:
        a, b = rgb_to_y(a), rgb_to_y(b)
    else:
        a, b = a.astype(np.float64), b.astype(np.float64)
    if crop_border > 0:
        a = a[crop_border:-crop_border, crop_border:-crop_border]
        b = b[crop_border:-crop_border, crop_border:-crop_border]
    return a, b


def mse(a: np.ndarray, b: np.ndarray, *, crop_border: int = 0, y_channel: bool = False) -> float:
    """Mean squared error in 0..255 units."""
    x, y = _prepare(a, b, crop_border, y_channel)
    return float(np.mean((x - y) ** 2))


def mae(a: np.ndarray, b: np.ndarray, *, crop_border: int = 0, y_channel: bool = False) -> float:
    """Mean absolute error in 0..255 units."""
    x, y = _prepare(a, b, crop_border, y_channel)
    return float(np.mean(np.abs(x - y)))


def psnr(a: np.ndarray, b: np.ndarray, *, crop_border: int = 0, y_channel: bool = True) -> float:
    """PSNR in dB with peak 255; infinite for identical images."""
    err = mse(a, b, crop_border=crop_border, y_channel=y_channel)
    return float("inf") if err == 0 else float(10 * np.log10(255.0**2 / err))


def ycbcr_psnr(a: np.ndarray, b: np.ndarray, *, crop_border: int = 0
               ) -> tuple[float, float, float]:
    """PSNR of Y, Cb and Cr (BT.601 studio range, ``color.rgb_to_ycbcr``) of two RGB images:
    colour fidelity measured apart from the luma the protocol scores (its Y is ``psnr``'s)."""
    import torch

    from srlab.image.color import rgb_to_ycbcr

    def planes(img: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(img[..., :3])).permute(2, 0, 1)[None]
        return rgb_to_ycbcr(x.double() / 255.0)[0].permute(1, 2, 0).numpy() * 255.0

    x, y = planes(a), planes(b)
    y_, cb, cr = (psnr(x[..., c], y[..., c], crop_border=crop_border, y_channel=False)
                  for c in range(3))
    return y_, cb, cr


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    g = np.exp(-((np.arange(size) - size // 2) ** 2) / (2 * sigma**2))
    return g / g.sum()


def _filter_valid(img: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 'valid' correlation of a 2-D array with the 1-D window g (rows, then cols)."""
    win = np.lib.stride_tricks.sliding_window_view(img, g.size, axis=0)
    tmp = win @ g
    win = np.lib.stride_tricks.sliding_window_view(tmp, g.size, axis=1)
    return win @ g


def _ssim_2d(x: np.ndarray, y: np.ndarray) -> float:
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    g = _gaussian_window()
    mu_x, mu_y = _filter_valid(x, g), _filter_valid(y, g)
    sxx = _filter_valid(x * x, g) - mu_x**2
    syy = _filter_valid(y * y, g) - mu_y**2
    sxy = _filter_valid(x * y, g) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2)
    return float(np.mean(num / den))


def ssim(a: np.ndarray, b: np.ndarray, *, crop_border: int = 0, y_channel: bool = True) -> float:
    """Mean SSIM; for multi-channel input (y_channel=False) the mean over channels."""
    x, y = _prepare(a, b, crop_border, y_channel)
    if min(x.shape[:2]) < 11:
        raise ValueError(f"SSIM needs at least 11x11 pixels after cropping, got {x.shape[:2]}")
    if x.ndim == 2:
        return _ssim_2d(x, y)
    return float(np.mean([_ssim_2d(x[..., c], y[..., c]) for c in range(x.shape[2])]))


@dataclass(frozen=True)
class Scores:
    psnr: float
    ssim: float
    mse: float
    mae: float
    gmsd: float  # perceptual (lower is better); reported beside PSNR for GAN-trained models
    niqe: float = float("nan")  # no-reference (image.niqe), only when asked: it costs time


def gmsd(a: np.ndarray, b: np.ndarray, *, crop_border: int = 0, y_channel: bool = True) -> float:
    """Gradient Magnitude Similarity Deviation (Xue et al., IEEE TIP 2014); lower is better.

    A full-reference perceptual metric that needs no learned weights, so it runs offline
    (LPIPS and NIQE need downloaded parameters). It follows the authors' MATLAB code: 2x2
    average then 2x downsampling, Prewitt gradients (/3), similarity with c = 170 on the
    0..255 scale, and the sample standard deviation of the similarity map. ``b`` is the
    reference.
    """
    x, y = _prepare(a, b, crop_border, y_channel)

    def grad(img: np.ndarray) -> np.ndarray:
        p = np.pad(img, ((0, 1), (0, 1)))  # conv2(img, ones(2)/4, 'same'), zero padded
        img = ((p[:-1, :-1] + p[1:, :-1] + p[:-1, 1:] + p[1:, 1:]) / 4)[::2, ::2]
        p = np.pad(img, 1)
        gx = (p[:-2, :-2] + p[1:-1, :-2] + p[2:, :-2] - p[:-2, 2:] - p[1:-1, 2:] - p[2:, 2:]) / 3
        gy = (p[:-2, :-2] + p[:-2, 1:-1] + p[:-2, 2:] - p[2:, :-2] - p[2:, 1:-1] - p[2:, 2:]) / 3
        return np.sqrt(gx**2 + gy**2)

    ma, mb = grad(x), grad(y)
    gms = (2 * ma * mb + 170.0) / (ma**2 + mb**2 + 170.0)
    return float(np.std(gms, ddof=1))


def evaluate(sr: np.ndarray, hr: np.ndarray, *, scale: int, y_channel: bool = True) -> Scores:
    """Every metric by the standard protocol (border = scale)."""
    return Scores(
        psnr=psnr(sr, hr, crop_border=scale, y_channel=y_channel),
        ssim=ssim(sr, hr, crop_border=scale, y_channel=y_channel),
        mse=mse(sr, hr, crop_border=scale, y_channel=y_channel),
        mae=mae(sr, hr, crop_border=scale, y_channel=y_channel),
        gmsd=gmsd(sr, hr, crop_border=scale, y_channel=y_channel),
    )

"""The guided filter (He, Sun and Tang, "Guided Image Filtering", ECCV 2010 / TPAMI 2013) and
its fast form for joint upsampling (He and Sun, "Fast Guided Filter", 2015).

``q = mean(a) * I + mean(b)``, with ``a, b`` the least-squares fit ``p ~ a * I + b`` in each
(2r+1)^2 window: ``p`` takes the edges of the guide ``I`` and loses what ``I`` does not
explain. A luma model's colour uses it (``runtime.upscaler.ChromaPolicy``): the LR chroma,
guided by the network's sharp HR luma, so colour edges follow the luma edges instead of
bleeding across them as bicubic chroma does, and colour noise that the luma does not carry
(the speckles of a noisy phone photo) is averaged away.

It runs in torch (box means as two separable average pools, O(1) in r per pixel), not
OpenCV's ``ximgproc.guidedFilter``: the upscaler works on tensors of any backend's output,
inside tiles, and OpenCV (contrib) is an optional extra there.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["guided_upsample"]


def _box(x: torch.Tensor, r: int) -> torch.Tensor:
    """Mean over a (2r+1)^2 window, windows clipped at the border (not zero-padded)."""
    k = 2 * r + 1
    x = F.avg_pool2d(x, (k, 1), stride=1, padding=(r, 0), count_include_pad=False)
    return F.avg_pool2d(x, (1, k), stride=1, padding=(0, r), count_include_pad=False)


def _fit(guide: torch.Tensor, src: torch.Tensor, radius: int,
         eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The window means of ``a`` and ``b`` in ``src ~ a * guide + b``."""
    mean_i, mean_p = _box(guide, radius), _box(src, radius)
    cov = _box(guide * src, radius) - mean_i * mean_p
    var = _box(guide * guide, radius) - mean_i * mean_i
    a = cov / (var + eps)
    b = mean_p - a * mean_i
    return _box(a, radius), _box(b, radius)


def _radius(radius: int, x: torch.Tensor) -> int:
    """``radius``, clipped so a window fits in the image (avg_pool2d refuses a larger one)."""
    return max(0, min(radius, (min(x.shape[-2:]) - 1) // 2))


def guided_upsample(guide: torch.Tensor, src: torch.Tensor, scale: int, radius: int,
                    eps: float) -> torch.Tensor:
    """``src`` (N x C x h x w) upscaled by ``scale`` along the edges of ``guide`` (N x 1 x sh
    x sw): the fast guided filter, with the fit made on the LR grid (``radius`` in LR pixels)
    and its coefficients upsampled bilinearly, so the cost at HR is one multiply-add. ``eps``
    (a variance on the [0, 1] scale) is how much guide contrast counts as an edge: smaller
    keeps more of ``src``'s own detail."""
    low = F.avg_pool2d(guide, scale)  # the guide on src's grid: LR pixel i = HR [i*s, i*s+s)
    r = _radius(radius, src)
    if r < 1:  # a sliver of a tile: a flat fit, i.e. bilinear colour
        a, b = torch.zeros_like(src), src
    else:
        a, b = _fit(low, src, r, eps)
    size = guide.shape[-2:]
    a = F.interpolate(a, size=size, mode="bilinear", align_corners=False)
    b = F.interpolate(b, size=size, mode="bilinear", align_corners=False)
    return a * guide + b

"""The Python API: ``load_model(name, scale)`` -> an ``Upscaler`` that upscales images.

An Upscaler wraps a registered network with everything between "an image" and "a tensor":
dtype (8/16-bit/float), grayscale and alpha, luma-only models (Y by the network, chroma by
bicubic), tiling and threads. The CLI, the web demo and the benchmark all go through it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .models.registry import DEFAULT_MODEL, build_model, get_spec
from .tiling import tiled_apply
from .weights import (
    WeightsError,
    WeightsMeta,
    apply_state_dict,
    count_params,
    read_weights,
    shipped_weights_path,
)

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["Upscaler", "load_model", "upscale"]


def _bicubic(x: torch.Tensor, scale: int) -> torch.Tensor:
    return F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)


class Upscaler:
    """A ready-to-use upscaler: ``up(image)`` for numpy arrays (HxW, HxWxC) or PIL images."""

    def __init__(self, net: nn.Module, *, name: str, scale: int, meta: WeightsMeta | None) -> None:
        self.net = net.eval()
        self.name = name
        self.scale = scale
        self.meta = meta
        self.in_channels: int = getattr(net, "in_channels", 3)
        self.receptive_field: int = getattr(net, "receptive_field", 8)

    @property
    def trained(self) -> bool:
        """False for networks running on random weights (no weights shipped or given)."""
        has_params = any(True for _ in self.net.parameters())
        return not has_params or (self.meta is not None and self.meta.trained)

    @property
    def params(self) -> int:
        return count_params(self.net)

    def _rgb(self, x: torch.Tensor) -> torch.Tensor:
        """The model on a 1x3xhxw RGB tensor, handling luma-only networks."""
        if self.in_channels == 3:
            return self.net(x)
        from .color import rgb_to_ycbcr, ycbcr_to_rgb

        ycc = rgb_to_ycbcr(x)
        y = self.net(ycc[:, :1])
        chroma = _bicubic(ycc[:, 1:], self.scale)
        return ycbcr_to_rgb(torch.cat([y, chroma], dim=1)).clamp(0, 1)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        if c == 3:
            return self._rgb(x).clamp(0, 1)
        if c == 1:  # grayscale: luma models take it as is; RGB models see it replicated
            if self.in_channels == 1:
                return self.net(x).clamp(0, 1)
            return self._rgb(x.repeat(1, 3, 1, 1)).mean(dim=1, keepdim=True).clamp(0, 1)
        if c in (2, 4):  # colour + alpha: alpha upscaled separately by bicubic, reattached
            colour = self._forward(x[:, : c - 1])
            alpha = _bicubic(x[:, c - 1 :], self.scale).clamp(0, 1)
            return torch.cat([colour, alpha], dim=1)
        raise ValueError(f"unsupported number of channels: {c}")

    def upscale_array(self, arr: np.ndarray, *, tile: int = 0, overlap: int | None = None,
                      on_tile=None) -> np.ndarray:
        """HxW or HxWxC array (uint8, uint16 or float in [0, 1]) -> array of the same dtype."""
        if arr.ndim == 2:
            return self.upscale_array(arr[..., None], tile=tile, overlap=overlap,
                                      on_tile=on_tile)[..., 0]
        if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4):
            raise ValueError(f"unsupported image shape {arr.shape}")
        if overlap is None:
            overlap = self.receptive_field
        return tiled_apply(self._forward, arr, scale=self.scale, tile=tile, overlap=overlap,
                           on_tile=on_tile)

    def __call__(self, image: np.ndarray | Image.Image, *, tile: int = 0,
                 overlap: int | None = None) -> np.ndarray | Image.Image:
        if isinstance(image, np.ndarray):
            return self.upscale_array(image, tile=tile, overlap=overlap)
        from .imageio import from_pil, to_pil

        return to_pil(self.upscale_array(from_pil(image), tile=tile, overlap=overlap))


def load_model(
    name: str | None = None,
    scale: int = 4,
    *,
    weights: str | Path | None = None,
    fuse: bool = True,
) -> Upscaler:
    """Build a registered model, with ``weights`` or the weights srlab ships for it.

    Without either, a network runs on random weights and ``Upscaler.trained`` is False.
    """
    name = name or DEFAULT_MODEL
    spec = get_spec(name)
    if scale not in spec.scales:
        raise ValueError(f"model '{name}' supports scales {list(spec.scales)}, not {scale}")
    path = Path(weights) if weights is not None else shipped_weights_path(name, scale)
    meta: WeightsMeta | None = None
    tensors = None
    if weights is not None or path.is_file():
        tensors, meta = read_weights(path)
        if meta is not None and (meta.arch != name or meta.scale != scale):
            raise WeightsError(
                f"{path.name} holds {meta.arch} x{meta.scale}, not {name} x{scale}"
            )
    net = build_model(name, scale, **(meta.kwargs if meta else {}))
    if tensors is not None:
        apply_state_dict(net, tensors, path.name)
        if meta is None:  # a foreign tensor file: usable, but we know nothing about it
            meta = WeightsMeta(arch=name, scale=scale, params=count_params(net),
                               recipe=f"loaded from {path.name}", license="unknown")
    if fuse and hasattr(net, "reparameterize"):
        net.reparameterize()
    return Upscaler(net, name=name, scale=scale, meta=meta)


def upscale(image: np.ndarray | Image.Image, scale: int = 4, model: str | None = None):
    """One-call upscaling with the default (or a named) model."""
    return load_model(model, scale)(image)

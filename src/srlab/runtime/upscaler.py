"""The ``Upscaler``: everything between "an image" and "a network's tensor", once for every
backend.

An Upscaler wraps a network (a torch module, or any callable with the same tensor contract:
an ONNX Runtime session, a compiled OpenVINO model, a model file's padded network) with
dtype (8/16-bit/float), grayscale and alpha, luma-only models (Y by the network, chroma by
bicubic), tiling and threads; ``TilePolicy`` is the one rule for an automatic tile size.

It lives here, below both ``srlab.api`` (which loads and dispatches, and re-exports it as the
public name) and the backends in ``srlab.runtime`` (which subclass or wrap it), so neither
has to import the other's module to reach it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from srlab.image.color import luma_terms, rgb_to_ycbcr, ycbcr_to_rgb
from srlab.image.guided import guided_upsample
from srlab.image.outsize import OutputSize, finish, plan_size
from srlab.image.resize import upscale_bicubic
from srlab.image.tiling import tiled_apply
from srlab.zoo.weights import WeightsMeta, count_params

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["Upscaler", "StandInUpscaler", "TilePolicy", "TILE_POLICY", "ChromaPolicy",
           "GUIDED_CHROMA", "on_image"]


@dataclass(frozen=True)
class TilePolicy:
    """The one rule for "tile size automatic": a size given (> 0) is used as is; otherwise an
    image above ``above_pixels`` input pixels is cut into ``tile`` x ``tile`` LR tiles, and a
    smaller one runs in one pass.

    Tiling bounds activation memory and gives progress per tile; it never changes the result
    (the overlap is the network's receptive field). ``Upscaler.upscale_array(tile=0)`` itself
    is one pass: the policy is what callers apply when a user leaves the size automatic
    (``srlab upscale``, the batch task, the web server, the huge-image speed run).
    """

    tile: int = 512
    # a 4x pass over a 12 Mpx photo in one piece would need several GB of activations
    above_pixels: int = 2_000_000

    def tile_for(self, height: int, width: int, tile: int = 0) -> int:
        """The LR tile edge to use for an ``height`` x ``width`` input (0 = one pass)."""
        if tile > 0:
            return tile
        return self.tile if height * width > self.above_pixels else 0

    def count(self, height: int, width: int, tile: int = 0) -> int:
        """How many tiles ``tile_for`` gives (1 for one pass): the length of a progress bar."""
        t = self.tile_for(height, width, tile)
        if t <= 0:
            return 1
        return math.ceil(height / t) * math.ceil(width / t)


TILE_POLICY = TilePolicy()
"""The CLI's and the batch task's policy; the web server uses the same rule with smaller
tiles (``web.state.TILES``) for finer progress and a smaller footprint per request."""


@dataclass(frozen=True)
class ChromaPolicy:
    """Where a luma model's colour comes from, when not from bicubic: the LR chroma upscaled
    along the network's luma edges (``image.guided.guided_upsample``).

    Bicubic chroma (the ESPCN papers', OpenCV dnn_superres's) is soft, so colour bleeds past
    the sharp luma edges (a green fringe from a hat over a face), and it carries the input's
    colour noise as speckles. The real-photo models use this policy (``ModelSpec.guided_chroma``);
    the protocol models keep bicubic chroma, their published colour. Luma is untouched.

    ``radius`` (LR pixels) and ``eps`` were chosen by ``python tools/chroma_tune.py`` on
    training images (BSDS500-train) on the jpeg75, real and camnoise5 tracks.
    """

    radius: int = 1
    eps: float = 1e-4

    @property
    def reach(self) -> int:
        """LR pixels of context it adds to the network's: the fit's two box means and the
        bilinear step of the coefficients (the tile overlap grows by this)."""
        return 2 * self.radius + 1


GUIDED_CHROMA = ChromaPolicy()

_Y_ROW, _Y_OFF, _Y_GAIN = luma_terms()


def on_image(upscale_array: Callable[..., np.ndarray], image: np.ndarray | Image.Image,
             tile: int, overlap: int | None, size: OutputSize | None = None,
             scale: int = 0) -> np.ndarray | Image.Image:
    """An array in, an array out; a PIL image in, a PIL image out (both upscalers' call).
    ``size``: the network's x``scale`` output resized to it (``image.outsize``)."""
    from srlab.image.imageio import from_pil, to_pil

    arr = image if isinstance(image, np.ndarray) else from_pil(image)
    out = upscale_array(arr, tile=tile, overlap=overlap)
    if size is not None:
        out = finish(out, plan_size(size, arr.shape[1], arr.shape[0], [scale]))
    return out if isinstance(image, np.ndarray) else to_pil(out)


class Upscaler:
    """A ready-to-use upscaler: ``up(image)`` for numpy arrays (HxW, HxWxC) or PIL images.

    ``net`` is usually an ``nn.Module``, but any callable mapping 1xCxhxw float tensors to
    1xCx(sh)x(sw) works (the ONNX Runtime backend passes a session wrapper): tiling, colour
    and alpha handling live here once, whatever runs the network.
    """

    backend = "torch"  # who runs the network (runtime.onnx sets its own)
    chroma: ChromaPolicy | None = None  # a luma model's colour: None = bicubic

    def __init__(self, net: Callable[[torch.Tensor], torch.Tensor], *, name: str, scale: int,
                 meta: WeightsMeta | None, params: int | None = None) -> None:
        self.net = net.eval() if isinstance(net, nn.Module) else net
        self.name = name
        self.scale = scale
        self.meta = meta
        self.in_channels: int = getattr(net, "in_channels", 3)
        self.receptive_field: int = getattr(net, "receptive_field", 8)
        self._params = params

    @property
    def trained(self) -> bool:
        """False for networks running on random weights (no weights shipped or given)."""
        has_params = isinstance(self.net, nn.Module) and any(True for _ in self.net.parameters())
        return not has_params or (self.meta is not None and self.meta.trained)

    @property
    def context(self) -> int:
        """LR pixels of context each output pixel depends on: the network's receptive field,
        plus the colour step's reach where a luma network's colour is guided (the tile
        overlap that keeps tiled output equal to untiled)."""
        guided = self.chroma is not None and self.in_channels == 1
        return self.receptive_field + (self.chroma.reach if guided else 0)

    @property
    def params(self) -> int:
        """Parameters of the architecture as trained (before any re-parameterisation)."""
        return self._params if self._params is not None else count_params(self.net)

    def self_ensembled(self) -> Upscaler:
        """This model averaged over the 8 flips and rotations of its input (``ensemble.py``):
        8x the time for a small, consistent gain, whatever backend runs the network."""
        from srlab.runtime.ensemble import SelfEnsemble

        out = Upscaler(SelfEnsemble(self.net), name=self.name, scale=self.scale,
                       meta=self.meta, params=self.params)
        # the backend's contract, not the wrapped callable's (a session has no attributes)
        out.in_channels, out.receptive_field = self.in_channels, self.receptive_field
        out.backend, out.chroma = self.backend, self.chroma
        return out

    def _rgb(self, x: torch.Tensor) -> torch.Tensor:
        """The model on a 1x3xhxw RGB tensor, handling luma-only networks (not clamped).

        A luma model upscales Y (BT.601, color.py) and the colour comes from bicubic, i.e.
        ``ycbcr_to_rgb(cat(net(Y), bicubic(CbCr)))``. Computed as the equal (bicubic and the
        colour transform are linear; every RGB channel gets luma with the same gain g)
        ``g * net(Y) + bicubic(RGB - g * Y)``: one bicubic of 3 LR planes and one multiply-add
        at HR instead of two colour-matrix passes and a concatenation at HR. With a
        ``chroma`` policy the colour is instead the LR CbCr upscaled along net(Y)'s edges.
        """
        if self.in_channels == 3:
            return self.net(x)
        if self.chroma is not None:
            ycc = rgb_to_ycbcr(x)
            y_hr = self.net(ycc[:, :1])
            c = self.chroma
            cbcr = guided_upsample(y_hr, ycc[:, 1:], self.scale, c.radius, c.eps)
            return ycbcr_to_rgb(torch.cat([y_hr, cbcr], dim=1))
        # Y at LR; einsum, as x is an HWC view (to_float) that conv2d would copy first
        y = torch.einsum("nchw,c->nhw", x, _Y_ROW.to(x.dtype).view(3)).unsqueeze(1)
        y = y + _Y_OFF
        out = upscale_bicubic(x - _Y_GAIN * y, self.scale)
        return out.add_(self.net(y), alpha=_Y_GAIN)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        if c == 3:
            out = self._rgb(x)  # clamped in place only when we made the buffer (luma path)
            return out.clamp_(0, 1) if self.in_channels == 1 else out.clamp(0, 1)
        if c == 1:  # grayscale: luma models take it as is; RGB models see it replicated
            if self.in_channels == 1:
                return self.net(x).clamp(0, 1)
            return self._rgb(x.repeat(1, 3, 1, 1)).mean(dim=1, keepdim=True).clamp(0, 1)
        if c in (2, 4):  # colour + alpha: alpha upscaled separately by bicubic, reattached
            colour = self._forward(x[:, : c - 1])
            alpha = upscale_bicubic(x[:, c - 1 :], self.scale).clamp(0, 1)
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
            overlap = self.context
        return tiled_apply(self._forward, arr, scale=self.scale, tile=tile, overlap=overlap,
                           on_tile=on_tile)

    def __call__(self, image: np.ndarray | Image.Image, *, tile: int = 0,
                 overlap: int | None = None, size: OutputSize | None = None
                 ) -> np.ndarray | Image.Image:
        """Upscale by ``scale``, or to ``size`` (any factor, width, height or box: this
        network's output resized by ``image.outsize``)."""
        return on_image(self.upscale_array, image, tile, overlap, size, self.scale)


class StandInUpscaler(Upscaler):
    """A torch model's network run by another runtime (an ONNX Runtime session, ncnn): the
    same name, scale, weights, tensor contract and colour policy as ``like``, and trained as
    it was (the runtime's callable has no parameters to ask)."""

    def __init__(self, net: Callable[[torch.Tensor], torch.Tensor], *, like: Upscaler) -> None:
        super().__init__(net, name=like.name, scale=like.scale, meta=like.meta,
                         params=like.params)
        self.in_channels = like.in_channels
        self.receptive_field = like.receptive_field
        self.chroma = like.chroma
        self._trained = like.trained

    @property
    def trained(self) -> bool:
        return self._trained

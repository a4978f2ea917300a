"""The Python API: ``load_model(name, scale)`` -> an ``Upscaler`` that upscales images.

An Upscaler wraps a registered network with everything between "an image" and "a tensor":
dtype (8/16-bit/float), grayscale and alpha, luma-only models (Y by the network, chroma by
bicubic), tiling and threads. The CLI, the web demo and the benchmark all go through it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from srlab.image.outsize import OutputSize, finish, plan_size
from srlab.image.resize import upscale_bicubic
from srlab.image.tiling import tiled_apply
from srlab.zoo.blend import CHAIN, Blend
from srlab.zoo.catalog import resolve
from srlab.zoo.registry import AUTO, build_model
from srlab.zoo.weights import (
    WeightsError,
    WeightsMeta,
    apply_state_dict,
    check_state_dict,
    count_params,
    read_weights,
    shipped_weights_path,
)

if TYPE_CHECKING:
    from PIL import Image

    from srlab.image.condition import Condition

__all__ = ["Upscaler", "AutoUpscaler", "load_model", "upscale", "TilePolicy", "TILE_POLICY"]


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


def _luma_constants() -> tuple[torch.Tensor, float, float]:
    """BT.601 luma weights (from color.py, the single source), its offset, and the gain
    g = 255/219 that the inverse transform gives luma in every one of R, G and B."""
    from srlab.image.color import RGB_TO_YCBCR, YCBCR_OFFSET

    row = RGB_TO_YCBCR[0].float().view(1, 3, 1, 1)
    return row, float(YCBCR_OFFSET[0]), float(1.0 / RGB_TO_YCBCR[0].sum())


_Y_ROW, _Y_OFF, _Y_GAIN = _luma_constants()


def _on_image(upscale_array: Callable[..., np.ndarray], image: np.ndarray | Image.Image,
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
        out.backend = self.backend
        return out

    def _rgb(self, x: torch.Tensor) -> torch.Tensor:
        """The model on a 1x3xhxw RGB tensor, handling luma-only networks (not clamped).

        A luma model upscales Y (BT.601, color.py) and the colour comes from bicubic, i.e.
        ``ycbcr_to_rgb(cat(net(Y), bicubic(CbCr)))``. Computed as the equal (bicubic and the
        colour transform are linear; every RGB channel gets luma with the same gain g)
        ``g * net(Y) + bicubic(RGB - g * Y)``: one bicubic of 3 LR planes and one multiply-add
        at HR instead of two colour-matrix passes and a concatenation at HR.
        """
        if self.in_channels == 3:
            return self.net(x)
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
            overlap = self.receptive_field
        return tiled_apply(self._forward, arr, scale=self.scale, tile=tile, overlap=overlap,
                           on_tile=on_tile)

    def __call__(self, image: np.ndarray | Image.Image, *, tile: int = 0,
                 overlap: int | None = None, size: OutputSize | None = None
                 ) -> np.ndarray | Image.Image:
        """Upscale by ``scale``, or to ``size`` (any factor, width, height or box: this
        network's output resized by ``image.outsize``)."""
        return _on_image(self.upscale_array, image, tile, overlap, size, self.scale)


class AutoUpscaler:
    """A denoise strength per image (span, span-real or a blend of their weights), from the
    condition ``condition.estimate`` reads in it.

    Each strength's network is loaded on first use and kept. ``last`` holds the latest
    decision, so a caller can say what was detected and chosen.
    """

    def __init__(self, scale: int, *, fuse: bool = True, ensemble: bool = False,
                 loader: Callable[[float], Upscaler] | None = None,
                 backend: str = "auto") -> None:
        resolve(AUTO, scale)  # ChoiceError ("auto needs ...") where it cannot run
        self.name, self.scale, self._fuse, self._ensemble = AUTO, scale, fuse, ensemble
        # denoise strength -> Upscaler (shipped networks and blends on ``backend``)
        self._loader = loader or (lambda d: load_model(scale=scale, fuse=fuse, denoise=d,
                                                       backend=backend))
        self._nets: dict[float, Upscaler] = {}
        self.last: tuple[Condition, Upscaler] | None = None

    def _net(self, denoise: float) -> Upscaler:
        if denoise not in self._nets:
            up = self._loader(denoise)
            self._nets[denoise] = up.self_ensembled() if self._ensemble else up
        return self._nets[denoise]

    def pick(self, arr: np.ndarray, path: str | Path | None = None) -> Upscaler:
        """The network for this image (``last`` says what was read and chosen)."""
        from srlab.image.condition import estimate

        cond = estimate(arr, path)
        self.last = (cond, self._net(cond.denoise))
        return self.last[1]

    def _any(self) -> Upscaler:
        return next(iter(self._nets.values())) if self._nets else self._net(0.0)

    @property
    def trained(self) -> bool:
        return True

    @property
    def params(self) -> int:
        return self._any().params

    @property
    def meta(self) -> WeightsMeta | None:
        return self._any().meta

    @property
    def receptive_field(self) -> int:
        return self._any().receptive_field

    def self_ensembled(self) -> AutoUpscaler:
        return AutoUpscaler(self.scale, fuse=self._fuse, ensemble=True, loader=self._loader)

    def upscale_array(self, arr: np.ndarray, *, tile: int = 0, overlap: int | None = None,
                      on_tile=None, path: str | Path | None = None) -> np.ndarray:
        return self.pick(arr, path).upscale_array(arr, tile=tile, overlap=overlap,
                                                  on_tile=on_tile)

    def __call__(self, image: np.ndarray | Image.Image, *, tile: int = 0,
                 overlap: int | None = None, size: OutputSize | None = None
                 ) -> np.ndarray | Image.Image:
        return _on_image(self.upscale_array, image, tile, overlap, size, self.scale)


def _blended(scale: int, blend: Blend, fuse: bool, backend: str) -> Upscaler:
    """The shipped networks of ``blend`` (``zoo.blend``: denoise and detail) as one network,
    their weights mixed by its coefficients (one architecture, so the mix is a network too:
    Real-ESRGAN's ``-dn``, ESRGAN's network interpolation). An end point is that network."""
    whole = blend.whole()
    if whole is not None:
        return load_model(whole, scale, fuse=fuse, backend=backend)
    blend.check(scale)  # BlendError (a ValueError): one sentence
    coef = blend.coefficients()
    read = {n: read_weights(shipped_weights_path(n, scale)) for n in coef}
    first, (t0, m0) = next(iter(read.items()))
    for n, (t, m) in read.items():
        if m0 is None or m is None or m.kwargs != m0.kwargs or t.keys() != t0.keys():
            raise WeightsError(f"{first} and {n} x{scale} do not share one architecture")
    assert m0 is not None
    if len(coef) == 2:  # lerp: the very tensors (so cached exports) denoise always gave
        (a, _), (b, cb) = coef.items()
        mixed = {k: torch.lerp(read[a][0][k].float(), read[b][0][k].float(), cb) for k in t0}
    else:
        mixed = {k: sum(c * read[n][0][k].float() for n, c in coef.items()) for k in t0}
    net = build_model(first, scale, **m0.kwargs)
    apply_state_dict(net, mixed, f"{' / '.join(coef)} blend")
    params = count_params(net)
    if fuse and hasattr(net, "reparameterize"):
        net.reparameterize()
    if fuse:
        net = net.to(memory_format=torch.channels_last)
    meta = WeightsMeta(arch=first, scale=scale, kwargs=m0.kwargs, params=params,
                       recipe="blend: " + " + ".join(f"{c:g} x {n}" for n, c in coef.items()),
                       train_seconds=sum(m.total_seconds for _, m in read.values() if m))
    up = Upscaler(net, name=blend.label(), scale=scale, meta=meta, params=params)
    if backend == "torch" or not fuse:
        return up
    from srlab.runtime.backends import load_blend

    return load_blend(up, backend)  # type: ignore[arg-type]


def load_model(
    name: str | Path | None = None,
    scale: int | None = None,
    *,
    weights: str | Path | None = None,
    fuse: bool = True,
    denoise: float | None = None,
    backend: str = "auto",
    detail: float | None = None,
) -> Upscaler | AutoUpscaler:
    """Build a registered model, with ``weights`` or the weights srlab ships for it.

    ``name="auto"`` returns an ``AutoUpscaler`` (span or span-real per image); ``denoise``
    (0..1, for span) blends span's weights towards span-real's; ``detail`` (0..1) blends
    span-real's towards span-real-gan's (crisp texture, may invent detail), and alone it
    means the real side (denoise 1). How the two combine: ``zoo.blend``.

    ``backend`` says who runs the network (``runtime.backends``): ``auto`` (the default)
    takes the fastest one ``srlab bench --store`` measured for this model, scale and CPU
    within 0.02 dB of float32 (bfloat16 on CPUs that have it), torch float32 where nothing
    was measured; ``"torch"`` keeps the trained float32 numbers (the benchmark uses it).
    Blends run as their cached ONNX export (``runtime.backends.load_blend``) where a fast
    backend is asked or picked, else on torch. ``result.backend`` says which one runs.

    ``name`` may be a model file instead (``.safetensors``/``.pth``, a path: SPAN, ESRGAN,
    SwinIR, ... recognised by spandrel, ``runtime.foreign``): ``scale`` then defaults to the
    file's and must match it; ``scale`` of a registered model defaults to 4.

    Without either, a network runs on random weights and ``Upscaler.trained`` is False.
    ``fuse`` (the default) prepares the network for inference: re-parameterised branches,
    and weights in channels_last, which makes oneDNN pick its NHWC convolutions. Measured,
    1 thread, network alone on NCHW input: 0.5-0.85x the time across the zoo. RGB inputs
    reach the network as an HWC view (``to_float``), which already selects NHWC, so end to
    end it matters most for luma models, whose 1-channel input cannot: span-fast x4 on
    480x320, 222 -> 193 ms. ``fuse=False`` keeps the network bit-exact with the one trained.
    """
    blend = Blend(denoise, detail)  # BlendError for a strength outside 0..1
    if _is_model_file(name):  # your own model file (srlab[spandrel]): runtime.foreign
        if weights is not None or blend.given:
            raise ValueError("a model file holds its own weights: drop weights/denoise/detail")
        from srlab.runtime.foreign import load_file_model
        from srlab.zoo.foreign import registered

        own = registered(name)  # offered by its file name (srlab serve --model-file)
        return load_file_model(own.path if own else name, scale=scale,  # type: ignore[arg-type]
                               backend=backend)
    scale = 4 if scale is None else scale
    name = None if name is None else str(name)
    if name == AUTO:
        if weights is not None or blend.given:
            raise ValueError("auto chooses its own weights: drop --weights/--denoise/--detail, "
                             "or name a model")
        return AutoUpscaler(scale, fuse=fuse, backend=backend)
    if blend.given:
        if weights is not None or (name is not None and name not in CHAIN):
            raise ValueError(f"a denoise/detail blend mixes the shipped {', '.join(CHAIN)} "
                             "weights; it does not apply to other models or weights files")
        return _blended(scale, blend, fuse, backend)
    name = resolve(name, scale, allow_auto=False)
    if backend == "auto" and not fuse:
        backend = "torch"  # unfused means bit-exact with the network as trained
    if backend != "torch":
        from srlab.runtime.backends import load_backend

        return load_backend(name, scale, backend=backend, weights=weights,  # type: ignore[arg-type]
                            fuse=fuse)
    path = Path(weights) if weights is not None else shipped_weights_path(name, scale)
    meta: WeightsMeta | None = None
    tensors = None
    if weights is not None or path.is_file():
        tensors, meta = read_weights(path)
        if meta is not None and (meta.arch != name or meta.scale != scale):
            raise WeightsError(
                f"{path.name} holds {meta.arch} x{meta.scale}, not {name} x{scale}"
            )
    kwargs = meta.kwargs if meta else {}
    if tensors is not None:
        _check_fits(name, scale, kwargs, tensors, path.name)
    net = build_model(name, scale, **kwargs)
    if tensors is not None:
        apply_state_dict(net, tensors, path.name)
        if meta is None:  # a foreign tensor file: usable, but we know nothing about it
            meta = WeightsMeta(arch=name, scale=scale, params=count_params(net),
                               recipe=f"loaded from {path.name}", license="unknown")
    params = count_params(net)  # counted before fusing: the architecture as trained
    if fuse and hasattr(net, "reparameterize"):
        net.reparameterize()
    if fuse:
        net = net.to(memory_format=torch.channels_last)
    return Upscaler(net, name=name, scale=scale, meta=meta, params=params)


def _is_model_file(name: str | Path | None) -> bool:
    from srlab.zoo.foreign import looks_like_file

    return looks_like_file(name)


def _check_fits(name: str, scale: int, kwargs: object, tensors: dict[str, torch.Tensor],
                source: str) -> None:
    """Refuse a weights file before building the real network: its metadata's ``kwargs`` are
    tried on the meta device (no memory), so a file asking for an impossible or enormous
    architecture gives a ``WeightsError`` instead of a TypeError or an out-of-memory machine,
    and the tensors' names and shapes are checked against that architecture."""
    try:
        if not isinstance(kwargs, dict):
            raise TypeError(f"kwargs must be a mapping, not {type(kwargs).__name__}")
        with torch.device("meta"):
            probe = build_model(name, scale, **kwargs)
    except Exception as exc:  # noqa: BLE001 - any constructor failure means "does not fit"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"{source}: its metadata describes a {name} x{scale} that cannot be "
                           f"built ({first})") from None
    check_state_dict(probe, tensors, source)


def upscale(image: np.ndarray | Image.Image, scale: float = 4, model: str | None = None, *,
            width: int | None = None, height: int | None = None,
            fit: tuple[int, int] | str | None = None):
    """One-call upscaling: ``auto`` (span or span-real per image) where both ship at
    ``scale``, else the default model; or the named one.

    Any output size: ``scale`` may be any number >= 1 (1.5; 3 with a x4-only model), or give
    ``width``, ``height`` (both: that exact size) or ``fit=(w, h)`` (aspect kept) instead.
    The model runs at the nearest scale it ships at or above, then the result is resized
    (``image.outsize``, MATLAB's antialiased bicubic). ``SizeError`` for impossible sizes.
    """
    from srlab.zoo.catalog import run_scales

    if scale == 4 and (width is not None or height is not None or fit is not None):
        scale = None  # type: ignore[assignment]  # the default factor gives way to a size
    size = OutputSize.of(scale, width, height, fit)
    assert size is not None
    w, h = (image.shape[1], image.shape[0]) if isinstance(image, np.ndarray) else image.size
    plan = plan_size(size, w, h, run_scales(model))
    up = load_model(resolve(model, plan.model_scale), plan.model_scale)
    return up(image, size=size if plan.resize else None)

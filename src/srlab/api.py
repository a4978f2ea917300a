"""The Python API: ``load_model(name, scale)`` -> an ``Upscaler`` that upscales images.

An Upscaler (``runtime.upscaler``, re-exported here) wraps a network with everything between
"an image" and "a tensor": dtype (8/16-bit/float), grayscale and alpha, luma-only models (Y by
the network, chroma by bicubic), tiling and threads. The CLI, the web demo and the benchmark
all go through it. This module is the entry point that dispatches a model choice (a zoo
model on torch or on a fast backend, ``auto``, a denoise/detail blend, a model file) to
``srlab.runtime``, which never imports it back.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from srlab.image.outsize import OutputSize, plan_size
from srlab.runtime.torch_model import chroma_for, load_torch_model
from srlab.runtime.upscaler import TILE_POLICY, TilePolicy, Upscaler, on_image
from srlab.zoo.blend import CHAIN, Blend, mix
from srlab.zoo.catalog import resolve
from srlab.zoo.registry import AUTO, build_model
from srlab.zoo.weights import (
    WeightsMeta,
    apply_state_dict,
    count_params,
    read_weights,
    shipped_weights_path,
)

if TYPE_CHECKING:
    from PIL import Image

    from srlab.image.condition import Condition

__all__ = ["Upscaler", "AutoUpscaler", "load_model", "upscale", "TilePolicy", "TILE_POLICY"]


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
        return on_image(self.upscale_array, image, tile, overlap, size, self.scale)


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
    mixed = mix(read, coef)  # WeightsError unless one architecture
    first, (_, m0) = next(iter(read.items()))
    assert m0 is not None
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
    up.chroma = chroma_for(coef)
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
    return load_torch_model(name, scale, weights=weights, fuse=fuse)


def _is_model_file(name: str | Path | None) -> bool:
    from srlab.zoo.foreign import looks_like_file

    return looks_like_file(name)


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

"""The model registry: an explicit list of every upscaler srlab knows, by name.

A plain dict built from a literal list (no decorators, no folder scanning), so that reading
this file tells you every model there is. Each entry names a builder with a keyword-only
constructor ``builder(scale=s, **arch_kwargs)`` and the scales it supports.

Every built model follows one contract (see ``SRModel`` below): it maps an LR batch
N x C x h x w in [0, 1] to N x C x (s*h) x (s*w), and declares ``scale``, ``in_channels``
(3 for RGB, 1 for models that work on luma only) and ``receptive_field`` (how many LR pixels
of context each side an output pixel depends on; tiled inference uses it for the overlap).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from torch import nn

from srlab.zoo import autoencoder, classical, espcn, fcn, span, srcnn, srgan, upsampling, vdsr

__all__ = ["ModelSpec", "MODELS", "DEFAULT_MODEL", "default_model", "build_model", "get_spec",
           "SRModel", "DENOISE_PAIR", "DETAIL_PAIR", "AUTO", "auto_available",
           "detail_available", "auto_scales", "ChoiceError", "UnknownModelError"]


class SRModel(Protocol):
    scale: int
    in_channels: int
    receptive_field: int


@dataclass(frozen=True)
class ModelSpec:
    name: str
    builder: Callable[..., nn.Module]
    scales: tuple[int, ...]
    summary: str
    family: str
    kwargs: dict[str, Any] = field(default_factory=dict)  # fixed arch args of this variant
    trainable: bool = True
    # what training needs that srlab cannot ship or fetch (shown as the status when untrained)
    needs: str = ""
    # a luma model for real photos: its colour is the LR chroma guided by its luma
    # (runtime.upscaler.ChromaPolicy), not bicubic chroma with the input's colour noise
    guided_chroma: bool = False


_ALL = (2, 3, 4)

_SPECS: list[ModelSpec] = [
    # classical baselines (no parameters)
    ModelSpec("nearest", classical.Nearest, _ALL, "nearest-neighbour", "classical",
              trainable=False),
    ModelSpec("bilinear", classical.Bilinear, _ALL, "bilinear (PyTorch)", "classical",
              trainable=False),
    ModelSpec("bicubic", classical.Bicubic, _ALL, "bicubic a=-0.75 (PyTorch/OpenCV style)",
              "classical", trainable=False),
    ModelSpec("bicubic-matlab", classical.MatlabBicubic, _ALL,
              "MATLAB imresize bicubic a=-0.5 (the protocol's baseline)", "classical",
              trainable=False),
    ModelSpec("lanczos", classical.Lanczos, _ALL, "Lanczos-3", "classical", trainable=False),
    # flagship family (srlab's default)
    ModelSpec("span-fast", span.SPAN, _ALL, "flagship, fast: luma-only reparameterised net",
              "flagship", kwargs=span.FAST),
    ModelSpec("span", span.SPAN, _ALL, "flagship, quality: luma residual net, 48 ch x 14 blocks",
              "flagship", kwargs=span.QUALITY),
    ModelSpec("span-real", span.SPAN, (2, 4),
              "flagship, real photos: span trained to remove JPEG, noise and blur",
              "flagship", kwargs=span.QUALITY, guided_chroma=True),
    # span-real given crisp texture by a GAN stage (configs/span-real-gan_x4.yaml); never
    # picked by auto, reached by name or by --detail (zoo.blend)
    ModelSpec("span-real-gan", span.SPAN, (4,),
              "crisp texture for real photos (GAN stage); may invent detail",
              "flagship", kwargs=span.QUALITY, guided_chroma=True),
    # --- report networks (zoo) --- entries below are added per architecture file
    ModelSpec("srcnn", srcnn.SRCNN, _ALL, "SRCNN 9-1-5 on bicubic input (Dong 2014)", "report"),
    ModelSpec("vdsr-5", vdsr.VDSR, _ALL, "VDSR depth 5 (depth study)", "report",
              kwargs={"depth": 5}),
    ModelSpec("vdsr-10", vdsr.VDSR, _ALL, "VDSR depth 10 (depth study)", "report",
              kwargs={"depth": 10}),
    ModelSpec("vdsr-15", vdsr.VDSR, _ALL, "VDSR depth 15 (depth study)", "report",
              kwargs={"depth": 15}),
    ModelSpec("vdsr", vdsr.VDSR, _ALL, "VDSR depth 20, residual over bicubic (Kim 2016)",
              "report", kwargs={"depth": 20}),
    ModelSpec("espcn", espcn.ESPCN, _ALL, "ESPCN: LR convs + pixel shuffle (Shi 2016)", "report"),
    ModelSpec("up-transposed", upsampling.UpsamplingNet, _ALL,
              "upsampling study: transposed convolution", "report",
              kwargs={"upsampler": "transposed"}),
    ModelSpec("up-resize-nearest", upsampling.UpsamplingNet, _ALL,
              "upsampling study: nearest resize + conv", "report",
              kwargs={"upsampler": "resize-nearest"}),
    ModelSpec("up-resize-bilinear", upsampling.UpsamplingNet, _ALL,
              "upsampling study: bilinear resize + conv", "report",
              kwargs={"upsampler": "resize-bilinear"}),
    ModelSpec("up-subpixel", upsampling.UpsamplingNet, _ALL,
              "upsampling study: sub-pixel conv (pixel shuffle)", "report",
              kwargs={"upsampler": "subpixel"}),
    ModelSpec("autoencoder", autoencoder.AutoEncoder, _ALL,
              "2-level encoder-decoder with skips on bicubic input", "report"),
    ModelSpec("fcn-upsample", fcn.FCN, _ALL, "FCN, nearest upsampling inside", "report",
              kwargs={"block": "plain", "upsample": "nearest"}),
    ModelSpec("fcn-residual", fcn.FCN, _ALL, "FCN with residual blocks", "report",
              kwargs={"block": "residual", "blocks": 3}),
    ModelSpec("fcn-dilated", fcn.FCN, _ALL, "FCN with dilated blocks (1, 2, 4)", "report",
              kwargs={"block": "dilated", "blocks": 2}),
    ModelSpec("fcn-vgg", fcn.FCN, _ALL, "FCN + frozen VGG16 relu1_2 branch", "report",
              kwargs={"vgg": True}, needs="VGG16 weights"),
    ModelSpec("fcn-d2s", fcn.FCN, _ALL, "FCN with a depth-to-space head", "report",
              kwargs={"upsample": "d2s"}),
    ModelSpec("fcn-multi", fcn.FCNMulti, (2, 4), "FCN, one trunk with x2 and x4 heads",
              "report"),
    ModelSpec("srgan", srgan.SRResNet, _ALL,
              "SRGAN generator (SRResNet, 8 blocks, bicubic skip)", "report",
              kwargs={"blocks": 8, "skip": "bicubic"}),
]

MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in _SPECS}
# one architecture, two weights: --denoise S blends them (0 = faithful, 1 = cleaned), and
# "auto" picks between them per image from what condition.estimate reads in it
DENOISE_PAIR = ("span", "span-real")
# --detail D blends these (0 = span-real, 1 = its GAN stage; zoo.blend); auto never uses it
DETAIL_PAIR = ("span-real", "span-real-gan")
AUTO = "auto"
DEFAULT_MODEL = "span"
# when the default has no shipped weights at a scale, the first of these that has them is used
DEFAULT_CHAIN = ("span", "span-fast")


def default_model(scale: int) -> str:
    """srlab's default at ``scale``: the first of DEFAULT_CHAIN that ships trained weights."""
    from srlab.zoo.weights import shipped_weights_path

    for name in DEFAULT_CHAIN:
        if shipped_weights_path(name, scale).is_file():
            return name
    return DEFAULT_MODEL


def auto_scales() -> list[int]:
    """The scales at which ``auto`` can exist: those both networks of DENOISE_PAIR register."""
    faithful, real = (MODELS[n] for n in DENOISE_PAIR)
    return sorted(set(faithful.scales) & set(real.scales))


def auto_available(scale: int) -> bool:
    """Whether both weights of DENOISE_PAIR ship at ``scale`` (auto and --denoise need them)."""
    from srlab.zoo.weights import shipped_weights_path

    return all(shipped_weights_path(n, scale).is_file() for n in DENOISE_PAIR)


def detail_available(scale: int) -> bool:
    """Whether both weights of DETAIL_PAIR ship at ``scale`` (--detail needs them)."""
    from srlab.zoo.weights import shipped_weights_path

    return all(shipped_weights_path(n, scale).is_file() for n in DETAIL_PAIR)


class ChoiceError(ValueError):
    """A model/scale srlab cannot (or, for untrained weights, should not) run; one sentence."""


class UnknownModelError(ChoiceError):
    """No model of that name is registered; the message lists the names."""


def get_spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        known = ", ".join(sorted(MODELS))
        raise UnknownModelError(f"unknown model '{name}' (known: {known})") from None


def build_model(name: str, scale: int, **overrides: Any) -> nn.Module:
    """Build a registered model with random (or no) weights at ``scale``.

    ``overrides`` replace the variant's architecture arguments (e.g. from a weights file or a
    training config); they are passed through to the typed constructor, which rejects unknown
    names.
    """
    spec = get_spec(name)
    if scale not in spec.scales:
        raise ValueError(f"model '{name}' supports scales {spec.scales}, not {scale}")
    return spec.builder(scale=scale, **{**spec.kwargs, **overrides})

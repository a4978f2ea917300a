"""A registered model on torch float32: its shipped weights, a weights file, or random ones.

This is the plain loading every backend starts from (the ONNX, int8 and OpenVINO backends
export this network; torch-bf16 runs it under autocast), so it lives below both
``srlab.api`` (whose ``load_model`` dispatches to it for ``backend="torch"``) and the other
``srlab.runtime`` modules, which get the network here instead of through the api.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch

from srlab.runtime.upscaler import GUIDED_CHROMA, ChromaPolicy, Upscaler
from srlab.zoo.catalog import resolve
from srlab.zoo.registry import build_model, get_spec
from srlab.zoo.weights import (
    WeightsError,
    WeightsMeta,
    apply_state_dict,
    check_state_dict,
    count_params,
    read_weights,
    shipped_weights_path,
)

__all__ = ["load_torch_model", "chroma_for"]


def load_torch_model(name: str | None, scale: int = 4, *, weights: str | Path | None = None,
                     fuse: bool = True) -> Upscaler:
    """One registered network (``None``: the default at ``scale``; ``auto``, blends and model
    files are ``srlab.api.load_model``'s) on torch float32, with ``weights`` or the weights
    srlab ships for it; random weights without either (``Upscaler.trained`` is False).

    ``fuse`` prepares the network for inference (re-parameterised branches, channels_last
    weights: ``srlab.api.load_model`` says what that buys); ``fuse=False`` keeps it
    bit-exact with the network as trained.
    """
    name = resolve(name, scale, allow_auto=False)
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
    up = Upscaler(net, name=name, scale=scale, meta=meta, params=params)
    up.chroma = chroma_for([name])
    return up


def chroma_for(names: Iterable[str]) -> ChromaPolicy | None:
    """The colour of a network made of ``names`` (one model, or the models a blend mixes):
    guided as soon as one of them is a real-photo model (``ModelSpec.guided_chroma``)."""
    return GUIDED_CHROMA if any(get_spec(n).guided_chroma for n in names) else None


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

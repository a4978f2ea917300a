"""The network a run trains: built from the registry, started from another run's weights,
parts zeroed or frozen; its optimiser and its EMA copy.

``model.init`` takes whatever tensors fit (x4 weights start an x2 model; a luma SPAN's
weights, lifted, start an RGB one), ``model.zero`` lets a deeper net start as the shallower
one it grew from, and ``model.freeze`` fits a new head on a fixed trunk. A prefix that
matches no parameter is a config error, not a silent no-op.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable

import torch
from torch import nn

from srlab.train.config import Config, expand_path
from srlab.zoo import span
from srlab.zoo.registry import build_model, get_spec
from srlab.zoo.weights import apply_state_dict, read_weights

__all__ = ["build_student", "named_parameters", "optimizer", "ema_copy", "update_ema"]


def build_student(cfg: Config, log: Callable[[str], None]) -> tuple[nn.Module, float]:
    """The network to train (in the run's memory format), and the training seconds already
    spent on its init weights."""
    m, spec = cfg.model, get_spec(cfg.model.name)
    if not spec.trainable:
        raise ValueError(f"model '{spec.name}' has no parameters to train")
    model = build_model(m.name, m.scale, **m.kwargs)
    init_seconds = 0.0
    if m.init:
        tensors, init_meta = read_weights(expand_path(m.init))
        if init_meta is not None:
            init_seconds = init_meta.total_seconds
        own = model.state_dict()  # start from another scale's weights: take what fits
        if isinstance(model, span.SPAN) and model.in_channels == 3 and span.is_luma(tensors):
            tensors = span.luma_to_rgb(tensors)  # a luma run's weights start an RGB run
            log(f"lifted the luma weights of {m.init} to RGB (span.luma_to_rgb)")
        fit = {k: v for k, v in tensors.items() if k in own and own[k].shape == v.shape}
        apply_state_dict(model, {**own, **fit}, m.init)
        log(f"initialised {len(fit)}/{len(own)} tensors from {m.init}")
    if m.zero:
        zeroed = named_parameters(model, m.zero, "model.zero", m.name)
        with torch.no_grad():
            for p in zeroed.values():
                p.zero_()
        log(f"zeroed {len(zeroed)} parameter tensors ({', '.join(m.zero)})")
    if m.freeze:
        frozen = named_parameters(model, m.freeze, "model.freeze", m.name)
        for n, p in model.named_parameters():
            p.requires_grad_(n not in frozen)
        log(f"froze {len(frozen)} parameter tensors ({', '.join(m.freeze)})")
    if cfg.run.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model, init_seconds


def named_parameters(model: nn.Module, prefixes: list[str], key: str,
                     arch: str) -> dict[str, nn.Parameter]:
    """The parameters named by ``prefixes`` (a name or a module path), for ``model.zero`` and
    ``model.freeze``; a list that matches nothing is a config error, not a silent no-op."""
    found = {n: p for n, p in model.named_parameters()
             if any(n == f or n.startswith(f + ".") for f in prefixes)}
    if not found:
        raise ValueError(f"{key} {prefixes} matches no parameter of {arch}")
    return found


def optimizer(params: Iterable[nn.Parameter], cfg: Config) -> torch.optim.Optimizer:
    """``cfg.optim``'s optimiser over ``params`` (the learning rate is set every step)."""
    o = cfg.optim
    if o.name == "adam":
        return torch.optim.Adam(params, lr=o.lr, weight_decay=o.weight_decay)
    if o.name == "adamw":
        return torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay)
    if o.name == "sgd":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
    raise ValueError(f"unknown optimizer {o.name!r} (adam, adamw, sgd)")


def ema_copy(model: nn.Module, decay: float) -> nn.Module | None:
    """The EMA copy of ``model`` that validates and ships, or None with ``optim.ema`` 0."""
    return copy.deepcopy(model).eval() if decay > 0 else None


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, it: int, decay: float) -> None:
    """One EMA step after iteration ``it``; the decay warms up to ``decay`` so that early
    validation does not score the random init."""
    d = min(decay, (1 + it) / (10 + it))
    for pe, pm in zip(ema.parameters(), model.parameters(), strict=True):
        pe.lerp_(pm, 1 - d)
    for be, bm in zip(ema.buffers(), model.buffers(), strict=True):
        be.copy_(bm)

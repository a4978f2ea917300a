"""A model's or a peer's name -> something that upscales a uint8 array, for every task that
measures or shows models side by side (benchmark, bench, compare, strips, ship).

It lives apart from ``benchmark`` and ``speed`` because both need it and ``benchmark`` times
with ``speed``: one place, no import circle. srlab's models run on torch here (the trained
numbers); a trailing ``+`` asks for the self-ensemble; peers come from ``eval.peers``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from srlab.eval.peers import PEERS, peer_params, peer_upscaler

__all__ = ["ArrayFn", "ENSEMBLE_SUFFIX", "make_upscaler", "split_ensemble"]

ArrayFn = Callable[[np.ndarray], np.ndarray]
ENSEMBLE_SUFFIX = "+"


def split_ensemble(name: str) -> tuple[str, bool]:
    """'span+' -> ('span', True); 'span' -> ('span', False)."""
    if name.endswith(ENSEMBLE_SUFFIX) and name not in PEERS:
        return name[: -len(ENSEMBLE_SUFFIX)], True
    return name, False


def make_upscaler(name: str, scale: int, weights: str | None = None) -> tuple[ArrayFn, int, bool]:
    """(uint8 array -> uint8 array, parameter count, trained?) for a model or a peer;
    a trailing ``+`` on a model's name adds the self-ensemble. A peer that cannot run here
    raises ``PeerUnavailable`` with the reason in one line."""
    if name in PEERS:
        return peer_upscaler(name, scale), peer_params(name, scale), True
    from srlab.api import load_model

    base, ensemble = split_ensemble(name)
    up = load_model(base, scale, weights=weights, backend="torch")  # the trained numbers
    if ensemble:
        up = up.self_ensembled()
    return up.upscale_array, up.params, up.trained

"""What the demo and ``/api/models`` say about a model's speed, and the card that says it.

Why not the ``mpx_per_s`` in the weights headers: ``srlab ship`` records the throughput of
its scoring pass (torch float32, on the day of shipping, under whatever load the machine
had). Those were never one measurement: span x2 reads 0.14-0.22 Mpx/s there and span x4
1.6-1.97 (an 11x gap where the network's work differs 4x), and span-real x4, the same network
as span x4, reads 0.39-0.64. The one consistent source is ``srlab bench --store``
(src/srlab/assets/backends.json): every backend of span, span-real and span-fast at x2 and x4
timed interleaved in one run, per CPU model. So the speed shown is that file's figure for
the backend ``--backend auto`` runs here, and nothing where it has none.
"""

from __future__ import annotations

import functools
from typing import Any

from srlab.zoo.catalog import model_card
from srlab.zoo.registry import AUTO, DENOISE_PAIR

__all__ = ["stored_speed", "speed_sentence", "card", "models_json"]

_TIMINGS = ("mpx_per_s", "cpu_mpx_per_s", "seconds")
_EXAMPLE = (2000, 1500)  # the input the speed sentence times: a 3 Mpx photo


@functools.cache
def stored_speed(name: str, scale: int) -> dict[str, Any] | None:
    """Output Mpx/s of ``name`` x``scale`` on the backend auto picks on this CPU model, as
    ``srlab bench --store`` measured it; None when that was not measured here."""
    from srlab.runtime.cpu import cpu_model
    from srlab.runtime.measured import available_backends, choose, load_store

    net = DENOISE_PAIR[0] if name == AUTO else name
    cpu = cpu_model()
    measured = load_store().get(cpu, {}).get(net, {}).get(str(scale))
    if not measured:
        return None
    # found, not imported: the card is drawn on page load
    backend = choose(measured, allowed=available_backends(imports=False))
    m = measured.get(backend) or measured.get("torch")
    if m is None:
        return None
    return {"mpx_per_s": round(m.mpx_per_s, 2), "backend": backend, "cpu": cpu,
            "source": "srlab bench --store (src/srlab/assets/backends.json)"}


def _speed_words(net: str, sp: dict[str, Any], scale: int) -> str:
    w, h = _EXAMPLE
    seconds = w * h * scale * scale / 1e6 / sp["mpx_per_s"]
    return (f"{net}: about {sp['mpx_per_s']:.2f} Mpx of output per second on "
            f"{sp['backend']}, so a {w} × {h} photo at ×{scale} takes about {seconds:.0f} s")


def speed_sentence(name: str, scale: int) -> str:
    """One line for the card: the stored speed of the network(s) that run, and what it
    means for a 3 Mpx photo (auto: both of the networks it picks from)."""
    nets = list(DENOISE_PAIR) if name == AUTO else [name]
    parts = [(n, stored_speed(n, scale)) for n in nets]
    if any(sp is None for _, sp in parts):
        return ("**Speed:** not measured on this kind of CPU (`srlab bench --store` "
                "records it).")
    cpu = parts[0][1]["cpu"]  # type: ignore[index]
    said = "; ".join(_speed_words(n, sp, scale) for n, sp in parts)  # type: ignore[arg-type]
    return f"**Speed here** ({cpu}, measured by `srlab bench`): {said}."


def card(name: str, scale: int) -> str:
    """The model card the demo shows: ``catalog.model_card`` with this server's speed."""
    return model_card(name, scale, speed=speed_sentence(name, scale))


def models_json(entries: list[Any]) -> list[dict[str, Any]]:
    """``/api/models``: the catalogue's JSON with each variant's ``speed`` from the stored
    bench (or null) instead of the headers' ship-time timings, which are dropped from
    ``metrics`` (see the module docstring)."""
    out = []
    for e in entries:
        j = e.to_json()
        for v in j["variants"]:
            v["metrics"] = {ds: {k: x for k, x in row.items() if k not in _TIMINGS}
                            for ds, row in v["metrics"].items()}
            v["speed"] = stored_speed(e.name, v["scale"])
        j["metrics"] = {s: {ds: {k: x for k, x in row.items() if k not in _TIMINGS}
                            for ds, row in rows.items()} for s, rows in j["metrics"].items()}
        out.append(j)
    return out

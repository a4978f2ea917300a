"""What ``srlab bench --store`` measured per backend, and what ``--backend auto`` picks from it.

Why stored measurements instead of a table in the code: which backend wins depends on the
CPU (VNNI makes int8 pay, native bf16 makes torch-bf16 pay) and on the model (small nets
are dominated by overheads, big ones by convolutions), so a hand-pasted table is right on
one machine only. ``srlab bench --store`` writes what it measured into
src/srlab/assets/backends.json under the CPU's model name: Mpx/s per backend and the PSNR
each costs against torch float32. ``pick_backend`` takes the fastest whose cost is within
``ACCURACY_BOUND_DB`` on every set measured; a combination never measured runs on torch.

The store and the pick sit here, below the modules that load networks: ``runtime.backends``
(the shipped models and blends) and ``runtime.foreign`` (model files, whose measurements live
in the user cache) both read them, and ``runtime.backends`` loads model files through
``runtime.foreign``. ``runtime.backends`` re-exports every name, its public home so far.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

__all__ = ["ACCURACY_BOUND_DB", "BACKENDS", "Backend", "EXACT_BACKENDS", "STORE_PATH",
           "Measurement", "Store", "load_store", "pick_backend", "record_measurements",
           "save_store", "choose", "available_backends"]

Backend = Literal["torch", "onnx", "onnx-int8", "torch-bf16", "openvino", "ncnn", "auto"]
BACKENDS = ("torch", "onnx", "onnx-int8", "torch-bf16", "openvino", "ncnn", "auto")

STORE_PATH = Path(__file__).resolve().parent.parent / "assets" / "backends.json"
ACCURACY_BOUND_DB = 0.02  # the most PSNR (dB, any set measured) auto may give for speed
# same numbers as the trained float32 net (each checked against it to 1e-3 when built)
EXACT_BACKENDS = ("torch", "onnx", "ncnn")


@dataclass(frozen=True)
class Measurement:
    """One backend's figures for one model, scale and CPU."""

    mpx_per_s: float
    # PSNR (dB) minus torch float32's, per set measured; empty: accuracy not measured
    psnr_delta: dict[str, float]

    def within(self, bound: float = ACCURACY_BOUND_DB) -> bool:
        return bool(self.psnr_delta) and min(self.psnr_delta.values()) >= -bound


Store = dict[str, dict[str, dict[str, dict[str, Measurement]]]]  # cpu -> model -> scale -> be


def load_store(path: Path | None = None) -> Store:
    """The stored measurements; an absent or unreadable file is an empty store."""
    try:
        raw = json.loads((path or STORE_PATH).read_text())
    except (OSError, ValueError):
        return {}
    out: Store = {}
    for cpu, models in (raw.get("cpus") or {}).items():
        for model, scales in models.items():
            for scale, backends in scales.items():
                out.setdefault(cpu, {}).setdefault(model, {})[str(scale)] = {
                    b: Measurement(float(m["mpx_per_s"]),
                                   {k: float(v) for k, v in (m.get("psnr_delta") or {}).items()})
                    for b, m in backends.items()}
    return out


def save_store(store: Store, path: Path | None = None, *, command: str = "",
               cpu: str | None = None, models: Sequence[str] = ()) -> Path:
    """Write ``store`` as JSON (sorted, so a re-measurement diffs cleanly), with the command
    that measured each CPU's models: ``command`` for ``models`` of ``cpu`` (every entry when
    neither is given); the others keep theirs."""
    path = path or STORE_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        old = {}
    # per entry; a file from before kept one command for all, which is not carried over
    commands = {c: dict(ms) for c, ms in (old.get("commands") or {}).items()
                if isinstance(ms, dict)}
    if command:
        for c in [cpu] if cpu else store:
            for model in models or store.get(c, {}):
                commands.setdefault(c, {})[model] = command
    cpus = {c: {model: {scale: {b: asdict(m) for b, m in sorted(bes.items())}
                        for scale, bes in sorted(scales.items())}
                for model, scales in sorted(held.items())}
            for c, held in sorted(store.items())}
    kept = {c: {m: cmd for m, cmd in commands.get(c, {}).items() if m in cpus[c]} for c in cpus}
    path.write_text(json.dumps({"commands": {c: ms for c, ms in kept.items() if ms},
                                "bound_db": ACCURACY_BOUND_DB, "cpus": cpus},
                               indent=1, sort_keys=True) + "\n")
    return path


def record_measurements(store: Store, cpu: str, model: str, scale: int,
                        measured: Mapping[str, Measurement]) -> Store:
    """``store`` with this model/scale's backends replaced by ``measured`` (others kept)."""
    store.setdefault(cpu, {}).setdefault(model, {})[str(scale)] = dict(measured)
    return store


def choose(measured: Mapping[str, Measurement], *, allowed: Sequence[str],
           bound: float = ACCURACY_BOUND_DB) -> str:
    """The fastest of ``allowed`` whose accuracy cost is within ``bound``; torch if none.
    torch float32 is the reference, so it is always within the bound."""
    ok = [(m.mpx_per_s, b) for b, m in measured.items()
          if b in allowed and (b == "torch" or m.within(bound))]
    return max(ok)[1] if ok else "torch"


def available_backends(*, imports: bool = True) -> list[str]:
    """The backends that can run here (their runtimes installed), in ``BACKENDS`` order.
    ``imports=False`` finds the runtimes without importing them: the web card asks on page
    load, and OpenVINO takes ~10 s to import."""
    from srlab.runtime.ncnn import ncnn_available
    from srlab.runtime.onnx import onnx_available
    from srlab.runtime.openvino import openvino_available

    missing = set() if onnx_available(imports=imports) else {"onnx", "onnx-int8"}
    if not openvino_available(imports=imports):
        missing.add("openvino")
    if not ncnn_available():
        missing.add("ncnn")
    return [b for b in BACKENDS if b != "auto" and b not in missing]


def pick_backend(model: str, scale: int, *, exact: bool = False, store: Store | None = None,
                 cpu: str | None = None,
                 available: Callable[[], list[str]] | None = None) -> str:
    """The backend ``auto`` runs ``model`` x``scale`` on here (see the module docstring).
    ``exact`` allows only backends that keep the float32 numbers (custom weights: their
    int8 cost was never measured)."""
    from srlab.runtime.cpu import cpu_model

    store = load_store() if store is None else store
    measured = store.get(cpu or cpu_model(), {}).get(model, {}).get(str(scale))
    if not measured:
        return "torch"
    allowed = [b for b in (available or available_backends)()
               if not exact or b in EXACT_BACKENDS]
    return choose(measured, allowed=allowed)


"""Who runs a network: ``load_backend`` and ``--backend auto``, the fastest backend measured
for this model, scale and CPU.

Backends: ``torch`` (float32, the trained numbers), ``torch-bf16`` (CPU autocast to bfloat16:
faster only on CPUs with AVX512-BF16 or AMX, see ``runtime.cpu``), ``onnx`` (ONNX Runtime,
``runtime.onnx``), ``onnx-int8`` (``runtime.int8``) and ``openvino`` (OpenVINO, bfloat16 where
the CPU has it: ``runtime.openvino``). ``srlab.load_model`` and the CLI
default to ``auto``.

Why stored measurements instead of a table in the code: which backend wins depends on the
CPU (VNNI makes int8 pay, native bf16 makes torch-bf16 pay) and on the model (small nets
are dominated by overheads, big ones by convolutions), so a hand-pasted table is right on
one machine only. ``srlab bench --store`` writes what it measured into
src/srlab/assets/backends.json under the CPU's model name: Mpx/s per backend and the PSNR
each costs against torch float32. ``pick_backend`` takes the fastest whose cost is within
``ACCURACY_BOUND_DB`` on every set measured; a combination never measured runs on torch.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from srlab.api import Upscaler

__all__ = ["ACCURACY_BOUND_DB", "BACKENDS", "Backend", "EXACT_BACKENDS", "STORE_PATH",
           "Measurement", "load_store", "pick_backend", "record_measurements", "save_store",
           "choose", "load_backend", "available_backends", "load_blend"]

Backend = Literal["torch", "onnx", "onnx-int8", "torch-bf16", "openvino", "auto"]
BACKENDS = ("torch", "onnx", "onnx-int8", "torch-bf16", "openvino", "auto")

STORE_PATH = Path(__file__).resolve().parent.parent / "assets" / "backends.json"
ACCURACY_BOUND_DB = 0.02  # the most PSNR (dB, any set measured) auto may give for speed
EXACT_BACKENDS = ("torch", "onnx")  # same numbers as the trained float32 net (parity 1e-3)


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


def save_store(store: Store, path: Path | None = None, *, command: str = "") -> Path:
    """Write ``store`` as JSON (sorted, so a re-measurement diffs cleanly)."""
    path = path or STORE_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    cpus = {cpu: {model: {scale: {b: asdict(m) for b, m in sorted(bes.items())}
                          for scale, bes in sorted(scales.items())}
                  for model, scales in sorted(models.items())}
            for cpu, models in sorted(store.items())}
    path.write_text(json.dumps({"command": command, "bound_db": ACCURACY_BOUND_DB,
                                "cpus": cpus}, indent=1, sort_keys=True) + "\n")
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


def available_backends() -> list[str]:
    """The backends that can run here (their runtimes installed), in ``BACKENDS`` order."""
    from srlab.runtime.onnx import onnx_available
    from srlab.runtime.openvino import openvino_available

    missing = set() if onnx_available() else {"onnx", "onnx-int8"}
    if not openvino_available():
        missing.add("openvino")
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


def load_backend(name: str, scale: int = 4, *, backend: Backend = "torch",
                 weights: str | Path | None = None, threads: int | None = None,
                 fuse: bool = True) -> Upscaler:
    """The model on ``backend``; ``auto`` asks ``runtime.backends.pick_backend`` (measured
    per model, scale and CPU; torch when nothing is stored or onnxruntime is missing). The
    result's ``backend`` attribute says which one runs."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    from srlab.zoo.foreign import looks_like_file

    if looks_like_file(name):  # a model file (srlab bench --file): runtime.foreign
        from srlab.runtime.foreign import load_file_model

        return load_file_model(name, scale=scale, backend=backend, threads=threads,
                               fallback=backend == "auto")
    if backend == "auto":
        return _load_auto(name, scale, weights=weights, threads=threads, fuse=fuse)
    if backend == "onnx":
        from srlab.runtime.onnx import load_onnx_model

        return load_onnx_model(name, scale, weights=weights, threads=threads)
    if backend == "onnx-int8":
        from srlab.runtime.int8 import load_int8_model

        return load_int8_model(name, scale, weights=weights, threads=threads)
    if backend == "openvino":
        from srlab.runtime.openvino import load_openvino_model

        return load_openvino_model(name, scale, weights=weights, threads=threads)
    if backend == "torch-bf16":
        from srlab.runtime.bf16 import load_bf16_model

        return load_bf16_model(name, scale, weights=weights, fuse=fuse)
    from srlab.api import load_model

    return load_model(name, scale, weights=weights, fuse=fuse, backend="torch")


def load_blend(up: Upscaler, backend: Backend = "auto") -> Upscaler:
    """A span/span-real blend (``api._denoised``, a torch network) on a fast backend: its ONNX
    export, cached per weights and so per strength step, on ONNX Runtime, quantised by the
    pair's shared int8 recipe where ``onnx-int8`` is asked or picked (one calibration per step
    on first use, then cached), else float32. ``auto`` follows the pick for the pair's real
    network here; torch (or bf16) asked, or onnxruntime missing, keeps torch."""
    from srlab.zoo.registry import DENOISE_PAIR

    if backend == "auto":
        backend = pick_backend(DENOISE_PAIR[1], up.scale)  # type: ignore[assignment]
    if backend in ("torch", "torch-bf16") or "onnx" not in available_backends():
        return up
    if backend == "onnx-int8" and "onnx-int8" in available_backends():
        from srlab.runtime.int8 import int8_upscaler, recipe_for

        return int8_upscaler(up, recipe=recipe_for(DENOISE_PAIR[1]))
    from srlab.runtime.onnx import onnx_upscaler

    out = onnx_upscaler(up)
    out.backend = "onnx"
    return out


def _load_auto(name: str, scale: int, *, weights: str | Path | None, threads: int | None,
               fuse: bool) -> Upscaler:
    """The backend ``pick_backend`` names; if it cannot be built here (int8 calibration
    needs the training images once, a runtime may fail), the next one it would pick, down
    to torch, so the default path never fails where torch runs."""
    from srlab.runtime.onnx import OnnxError

    installed, failed = available_backends(), set()
    while True:
        backend = pick_backend(name, scale, exact=weights is not None,
                               available=lambda: [b for b in installed if b not in failed])
        if backend == "torch":
            return load_backend(name, scale, backend="torch", weights=weights, fuse=fuse)
        try:
            return load_backend(name, scale, backend=backend,  # type: ignore[arg-type]
                                weights=weights, threads=threads, fuse=fuse)
        except OnnxError:
            failed.add(backend)

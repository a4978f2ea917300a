"""Who runs a network: ``load_backend`` and ``--backend auto``, the fastest backend measured
for this model, scale and CPU.

Backends: ``torch`` (float32, the trained numbers), ``torch-bf16`` (CPU autocast to bfloat16:
faster only on CPUs with AVX512-BF16 or AMX, see ``runtime.cpu``), ``onnx`` (ONNX Runtime,
``runtime.onnx``), ``onnx-int8`` (``runtime.int8``), ``openvino`` (OpenVINO, bfloat16 where
the CPU has it: ``runtime.openvino``) and ``ncnn`` (Winograd convolutions, the SPAN and ESPCN
networks: ``runtime.ncnn``). ``srlab.load_model`` and the CLI
default to ``auto``.

What ``auto`` picks comes from the measurements ``srlab bench --store`` keeps
(``runtime.measured``: why measured, not a table in the code); the store's names are
re-exported here, where they were first, so ``runtime.backends.pick_backend`` still works.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from srlab.runtime.measured import (
    ACCURACY_BOUND_DB,
    BACKENDS,
    EXACT_BACKENDS,
    STORE_PATH,
    Backend,
    Measurement,
    Store,
    available_backends,
    choose,
    load_store,
    pick_backend,
    record_measurements,
    save_store,
)

if TYPE_CHECKING:  # torch loads on first use: the CLI imports this module for BACKENDS
    from srlab.runtime.upscaler import Upscaler

__all__ = ["ACCURACY_BOUND_DB", "BACKENDS", "Backend", "EXACT_BACKENDS", "STORE_PATH",
           "Measurement", "Store", "load_store", "pick_backend", "record_measurements",
           "save_store", "choose", "load_backend", "available_backends", "load_blend"]


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
    if backend == "ncnn":
        from srlab.runtime.ncnn import load_ncnn_model

        return load_ncnn_model(name, scale, weights=weights, threads=threads)
    if backend == "torch-bf16":
        from srlab.runtime.bf16 import load_bf16_model

        return load_bf16_model(name, scale, weights=weights, fuse=fuse)
    from srlab.runtime.torch_model import load_torch_model

    return load_torch_model(name, scale, weights=weights, fuse=fuse)


def load_blend(up: Upscaler, backend: Backend = "auto") -> Upscaler:
    """A span/span-real blend (``api._blended``, a torch network) on a fast backend: its ONNX
    export, cached per weights and so per strength step, on ONNX Runtime, quantised by the
    pair's shared int8 recipe where ``onnx-int8`` is asked or picked (one calibration per step
    on first use, then cached), else float32; or on ncnn where that is asked or picked. ``auto``
    follows the pick for the pair's real network here; torch (or bf16) asked, or the asked
    runtime missing, keeps torch."""
    from srlab.zoo.registry import DENOISE_PAIR

    if backend == "auto":
        backend = pick_backend(DENOISE_PAIR[1], up.scale)  # type: ignore[assignment]
    if backend == "ncnn" and "ncnn" in available_backends():
        from srlab.runtime.ncnn import ncnn_upscaler

        return ncnn_upscaler(up)
    if backend in ("torch", "torch-bf16", "ncnn") or "onnx" not in available_backends():
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

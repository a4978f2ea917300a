"""The OpenVINO backend (``--backend openvino``): the exported ONNX network compiled by
OpenVINO's CPU plugin, in bfloat16 where the CPU has it.

Why beside ONNX Runtime: in float32 the two run span at about the same speed, but OpenVINO
executes the convolutions in bfloat16 (``INFERENCE_PRECISION_HINT``) with its own
AVX512-BF16 kernels, which ONNX Runtime's CPU provider does not (docs/benchmarks.md, the
Performance table made by ``srlab bench``, has the rows side by side). On a
CPU without bf16 the plugin runs float32. The network is the cached, parity-checked ONNX
export of ``runtime.onnx`` (nothing is downloaded), compiled once with dynamic height and
width; tiling, colour and alpha stay in ``Upscaler``. ``openvino`` is an optional extra
(``pip install 'srlab[openvino]'``), imported only here.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from srlab.runtime.onnx import OnnxError, OnnxUpscaler, exported_file
from srlab.runtime.torch_model import load_torch_model

__all__ = ["OPENVINO_HINT", "OpenVinoUpscaler", "openvino_available", "load_openvino_model"]

OPENVINO_HINT = "pip install 'srlab[openvino]'"


def openvino_available(*, imports: bool = True) -> bool:
    """OpenVINO and the ONNX export it compiles from (``srlab[onnx]``) are both installed
    (``imports=False``: found, not imported; OpenVINO takes ~10 s to import)."""
    from srlab.runtime.onnx import onnx_available

    if not imports:
        return importlib.util.find_spec("openvino") is not None and onnx_available(imports=False)
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return onnx_available()


def _core() -> Any:
    try:
        import openvino as ov
    except ImportError:
        raise OnnxError(f"the openvino backend needs OpenVINO: {OPENVINO_HINT}") from None
    return ov.Core()


class _CompiledSession:
    """A compiled OpenVINO model behind the ``session.run(None, {"lr": x})`` call that
    ``OnnxUpscaler``'s network wrapper makes, so both backends share one Upscaler."""

    def __init__(self, compiled: Any) -> None:
        self.compiled = compiled
        self.request = compiled.create_infer_request()

    def run(self, _outputs: object, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        self.request.infer({0: feeds["lr"]})
        return [self.request.get_output_tensor(0).data.copy()]


def compile_onnx(path: str | Path, threads: int | None = None) -> _CompiledSession:
    """``path`` compiled for the CPU: bf16 where the CPU lists it, float32 otherwise."""
    import torch

    core = _core()
    config: dict[str, Any] = {"INFERENCE_NUM_THREADS": threads or torch.get_num_threads(),
                              "PERFORMANCE_HINT": "LATENCY"}
    if "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        config["INFERENCE_PRECISION_HINT"] = "bf16"
    return _CompiledSession(core.compile_model(core.read_model(str(path)), "CPU", config))


class OpenVinoUpscaler(OnnxUpscaler):
    backend = "openvino"


def load_openvino_model(name: str, scale: int = 4, *, weights: str | Path | None = None,
                        threads: int | None = None) -> OpenVinoUpscaler:
    """The model on OpenVINO, from the same cached ONNX export as the onnx backend."""
    _core()  # the missing-package error before an export is made
    up = load_torch_model(name, scale, weights=weights)
    with exported_file(up) as path:
        session = compile_onnx(path, threads)
    return OpenVinoUpscaler(session, like=up)

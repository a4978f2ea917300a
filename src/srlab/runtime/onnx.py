"""ONNX export and the ONNX Runtime backend (``srlab export``, ``srlab upscale --backend``).

What is exported is the *network* only (LR tensor -> SR tensor, dynamic height and width):
for a luma model that is Y -> Y, and the colour handling (BT.601, bicubic chroma), alpha,
dtype conversion and tiling stay in Python, in ``Upscaler``. ``OnnxUpscaler`` is an
``Upscaler`` whose network is an ONNX Runtime session, so both backends share every line
of that code and differ only in who runs the convolutions.

Every export is checked against PyTorch on a random image of another size than the one
traced (which also proves the height/width are really dynamic); a difference above
``PARITY_TOL`` is an error, not a warning.

Which backend runs a model (``--backend``, ``auto`` among them) is decided in
``runtime.backends``. onnx and onnxruntime are optional (``pip install 'srlab[onnx]'``) and
imported only in the functions that use them; ``auto`` falls back to torch when they are
missing. ``onnx-int8`` is the network quantised to int8 (``runtime.int8``).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import re
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from srlab.runtime.torch_model import load_torch_model
from srlab.runtime.upscaler import StandInUpscaler, Upscaler

__all__ = [
    "ONNX_HINT",
    "PARITY_TOL",
    "OnnxError",
    "OnnxExport",
    "OnnxUpscaler",
    "SessionNet",
    "cache_dir",
    "check_parity",
    "export_net",
    "export_onnx",
    "export_upscaler",
    "exported_file",
    "exported_path",
    "load_onnx_model",
    "make_session",
    "onnx_upscaler",
    "onnx_available",
]

ONNX_HINT = "pip install 'srlab[onnx]'"
PARITY_TOL = 1e-3


class OnnxError(RuntimeError):
    """ONNX export, parity or runtime failure (missing packages included)."""


def onnx_available(*, imports: bool = True) -> bool:
    """True when both onnx (export metadata) and onnxruntime (inference) import
    (``imports=False``: are found, without the cost of importing them)."""
    if not imports:
        return all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise OnnxError(f"the ONNX backend needs onnxruntime: {ONNX_HINT}") from None
    return onnxruntime


def _onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise OnnxError(f"ONNX export needs the onnx package: {ONNX_HINT}") from None
    return onnx


def cache_dir() -> Path:
    """Where exported models are cached: ``$SRLAB_CACHE/onnx``, else
    ``$XDG_CACHE_HOME/srlab/onnx``, else ``~/.cache/srlab/onnx``."""
    if os.environ.get("SRLAB_CACHE"):
        return Path(os.environ["SRLAB_CACHE"]) / "onnx"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "srlab" / "onnx"


# --------------------------------------------------------------------------------------------
# export + parity
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OnnxExport:
    path: Path
    max_abs_diff: float  # ONNX Runtime vs PyTorch on the parity image
    parity_size: tuple[int, int]  # (height, width) of that image's LR input


def export_net(net: nn.Module, in_channels: int, out_path: str | Path, *, opset: int = 17,
               metadata: dict[str, str] | None = None, trace_hw: tuple[int, int] = (24, 20)
               ) -> Path:
    """Write ``net`` (1xCxhxw -> 1xCx(sh)x(sw)) as ONNX with dynamic height and width.

    Uses the TorchScript-based exporter (``dynamo=False``): it needs no extra package
    (the dynamo exporter needs onnxscript) and handles every op srlab's models use, bicubic
    included. ``metadata`` goes into the model's ``metadata_props``.
    """
    onnx = _onnx()
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    x = torch.rand(1, in_channels, *trace_hw)
    with warnings.catch_warnings():  # the legacy exporter announces its deprecation
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net.eval(), (x,), str(out), dynamo=False, opset_version=opset,
            input_names=["lr"], output_names=["sr"], do_constant_folding=True,
            dynamic_axes={"lr": {2: "height", 3: "width"},
                          "sr": {2: "out_height", 3: "out_width"}},
        )
    if metadata:
        model = onnx.load(str(out))
        for key, value in metadata.items():
            prop = model.metadata_props.add()
            prop.key, prop.value = key, str(value)
        onnx.save(model, str(out))
    return out


def make_session(path: str | Path | bytes, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session. Spinning worker threads are turned off: on a machine
    shared with other jobs they burn the cores the other threads need (measured with 2
    threads beside two training jobs: 265 ms spinning vs 225 ms not, span-fast x4 480x320)."""
    ort = _ort()
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads or torch.get_num_threads()
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3
    src = path if isinstance(path, bytes) else str(path)
    return ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])


def check_parity(onnx_path: str | Path, net: nn.Module, in_channels: int, *,
                 hw: tuple[int, int] = (37, 29), tol: float = PARITY_TOL, seed: int = 0) -> float:
    """Max |ONNX Runtime - PyTorch| on a random ``hw`` image; ``OnnxError`` above ``tol``."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, in_channels, *hw, generator=g)
    with torch.inference_mode():
        ref = net.eval()(x).float().numpy()
    got = make_session(onnx_path, threads=1).run(None, {"lr": x.numpy()})[0]
    if got.shape != ref.shape:
        raise OnnxError(f"ONNX output shape {got.shape} != PyTorch {ref.shape}")
    diff = float(np.abs(got - ref).max())
    if not np.isfinite(diff) or diff > tol:
        raise OnnxError(f"ONNX parity check failed: max abs diff {diff:.3g} > {tol:g}")
    return diff


def _metadata(up: Upscaler) -> dict[str, str]:
    return {"srlab.arch": up.name, "srlab.scale": str(up.scale),
            "srlab.in_channels": str(up.in_channels),
            "srlab.receptive_field": str(up.receptive_field),
            "srlab.trained": str(int(up.trained)), "srlab.params": str(up.params)}


def export_onnx(model_name: str, scale: int, out_path: str | Path, *,
                weights: str | Path | None = None, opset: int = 17,
                log: Callable[[str], None] | None = print) -> OnnxExport:
    """Export a registered model (its shipped weights, ``weights``, or random ones) to ONNX
    with dynamic height/width, then check it against PyTorch (see ``check_parity``).

    The network is exported re-parameterised (as it runs for inference). Raises
    ``OnnxError`` if the packages are missing or the parity check fails.
    """
    up = load_torch_model(model_name, scale, weights=weights)
    return export_upscaler(up, out_path, opset=opset, log=log)


def export_upscaler(up: Upscaler, out_path: str | Path, *, opset: int = 17,
                    log: Callable[[str], None] | None = None) -> OnnxExport:
    """``export_onnx`` for an already loaded model (on torch float32: what is exported is
    the trained network, not a backend's approximation of it)."""
    if up.backend != "torch" or not isinstance(up.net, nn.Module):
        raise OnnxError(f"export takes a model on torch float32, not on {up.backend} "
                        "(load it with backend='torch')")
    path = export_net(up.net, up.in_channels, out_path, opset=opset, metadata=_metadata(up))
    hw = (37, 29)  # not the traced 24x20: proves the dynamic axes
    diff = check_parity(path, up.net, up.in_channels, hw=hw)
    if log is not None:
        log(f"{path}: {up.name} x{up.scale}, parity vs PyTorch on a random {hw[1]}x{hw[0]} "
            f"input: max abs diff {diff:.2e} (limit {PARITY_TOL:g})")
    return OnnxExport(path=path, max_abs_diff=diff, parity_size=hw)


# --------------------------------------------------------------------------------------------
# the ONNX Runtime backend
# --------------------------------------------------------------------------------------------


class _SessionNet:
    """A callable with the network contract (1xCxhxw float tensor in and out) over a session."""

    def __init__(self, session: Any) -> None:
        self.session = session

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        arr = x.detach().contiguous().float().numpy()
        return torch.from_numpy(self.session.run(None, {"lr": arr})[0])


SessionNet = _SessionNet  # public name: model files (runtime.foreign) wrap a session too


class OnnxUpscaler(StandInUpscaler):
    """An ``Upscaler`` whose network runs in ONNX Runtime (same ``upscale_array``, tiling,
    colour and alpha handling: those are inherited, not copied)."""

    backend = "onnx"

    def __init__(self, session: Any, *, like: Upscaler) -> None:
        super().__init__(_SessionNet(session), like=like)
        self.session = session


def _weights_key(up: Upscaler, opset: int) -> str:
    """Cache key: everything the exported file depends on, weights bytes included."""
    h = hashlib.sha256(f"{up.name}|{up.scale}|{opset}|{torch.__version__}".encode())
    assert isinstance(up.net, nn.Module)
    for name, t in sorted(up.net.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def load_onnx_model(name: str, scale: int = 4, *, weights: str | Path | None = None,
                    threads: int | None = None, opset: int = 17,
                    log: Callable[[str], None] | None = None) -> OnnxUpscaler:
    """The model on ONNX Runtime, exported on first use into ``cache_dir()``.

    The cache file is named by a hash of the weights, so new weights mean a new export and
    a stale file is never used (``exported_file``).
    """
    _ort()
    up = load_torch_model(name, scale, weights=weights)
    with exported_file(up, opset=opset, log=log) as path:
        session = make_session(path, threads)
    return OnnxUpscaler(session, like=up)


def onnx_upscaler(up: Upscaler, *, threads: int | None = None) -> OnnxUpscaler:
    """A torch ``Upscaler`` (e.g. a span/span-real blend, ``api._blended``) on ONNX Runtime,
    through the cached export: one file per weights, so one per blend step."""
    _ort()
    with exported_file(up) as path:
        session = make_session(path, threads)
    return OnnxUpscaler(session, like=up)


@contextlib.contextmanager
def exported_file(up: Upscaler, *, opset: int = 17,
                  log: Callable[[str], None] | None = None) -> Iterator[Path]:
    """The ONNX file of ``up`` while the block runs: the cached export for trained weights,
    a temporary one for random weights (they differ on every load; caching them would only
    fill the disk). Runtimes read the file when they build their session, inside the block."""
    if up.trained:
        yield exported_path(up, opset=opset, log=log)
        return
    with tempfile.TemporaryDirectory() as tmp:
        yield export_upscaler(up, Path(tmp) / "model.onnx", opset=opset, log=log).path


def exported_path(up: Upscaler, *, opset: int = 17,
                  log: Callable[[str], None] | None = None) -> Path:
    """The cached ONNX file of a trained model, exported and parity-checked on first use."""
    stem = re.sub(r"[^\w.-]+", "-", up.name).strip("-")  # "span (denoise 0.5)" -> span-denoise-0.5
    path = cache_dir() / f"{stem}_x{up.scale}_{_weights_key(up, opset)}.onnx"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=path.parent)
        os.close(fd)
        try:
            done = export_upscaler(up, tmp, opset=opset, log=None)
            os.replace(tmp, path)  # atomic: a concurrent reader sees all or nothing
            if log is not None:
                log(f"exported {up.name} x{up.scale} to {path} (parity vs PyTorch: max abs "
                    f"diff {done.max_abs_diff:.2e})")
        finally:
            Path(tmp).unlink(missing_ok=True)
    return path

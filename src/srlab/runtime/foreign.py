"""A model file (``zoo.foreign``) as an ``Upscaler`` on any backend: ``srlab upscale -m
FILE``, ``srlab.load_model("FILE")``, ``srlab serve --model-file FILE``, ``srlab bench --file``.

One path: the network runs behind ``zoo.foreign.PaddedNet`` (the architecture's size
requirements) inside srlab's ``Upscaler``, so tiling, alpha, gray, 16-bit and batch are the
zoo's, not copies. Tiles and overlaps are rounded up to the architecture's alignment (window
attention partitions a tile from its origin), and the overlap defaults to the file's
measured-safe context (``zoo.foreign.DEFAULT_CONTEXT``).

Backends: ``onnx`` is the file's network exported with dynamic height and width and
checked against PyTorch (``runtime.onnx.check_parity``) at a second size; the export, or
the reason it failed, is cached under the file's sha256, so a file whose architecture does
not export (e.g. a shape-dependent mask baked in by the tracer) runs on torch at once,
said once. ``openvino`` and ``onnx-int8`` start from that export; ``torch-bf16`` is CPU
autocast. ``auto`` takes what ``srlab bench --file FILE --store`` measured for this file
and CPU (stored in the user cache, ``file_store_path``), like ``--backend auto`` for the
shipped models; unmeasured files run on torch.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from srlab.runtime.measured import BACKENDS, load_store, pick_backend
from srlab.runtime.onnx import OnnxError, cache_dir
from srlab.runtime.upscaler import Upscaler
from srlab.zoo.foreign import ForeignInfo, ForeignModel, ForeignModelError, load_model_file
from srlab.zoo.weights import WeightsMeta

__all__ = ["ForeignUpscaler", "file_key", "file_store_path", "load_file_model",
           "export_file", "stored_backend"]

Log = Callable[[str], None]


class RuntimeMissing(OnnxError):
    """The backend's runtime is not installed: the user's explicit choice cannot run."""


class ForeignUpscaler(Upscaler):
    """An ``Upscaler`` over a model file's network (on any backend): the zoo's image path,
    with tile sizes and overlaps rounded up to the architecture's alignment."""

    def __init__(self, fm: ForeignModel, inner: Any = None, *, backend: str = "torch") -> None:
        i = fm.info
        meta = WeightsMeta(arch=i.architecture, scale=i.scale, params=i.params,
                           recipe=f"model file {i.name} (sha256 {i.sha256})",
                           license=i.license or "not stated in the file")
        super().__init__(fm.padded(inner), name=i.name, scale=i.scale, meta=meta,
                         params=i.params)
        self.in_channels = i.in_channels
        self.receptive_field = i.context
        self.backend = backend
        self.info: ForeignInfo = i

    def _aligned(self, n: int) -> int:
        return math.ceil(n / self.info.align) * self.info.align if n > 0 else n

    def upscale_array(self, arr: np.ndarray, *, tile: int = 0, overlap: int | None = None,
                      on_tile=None) -> np.ndarray:
        overlap = self.context if overlap is None else overlap
        return super().upscale_array(arr, tile=self._aligned(tile),
                                     overlap=self._aligned(overlap), on_tile=on_tile)


def file_key(info: ForeignInfo) -> str:
    """The name a file's measurements are stored under: its content, not its path."""
    return f"sha256:{info.sha256}"


def file_store_path() -> Path:
    """Measured backends of model files (``srlab bench --file F --store``): in the user
    cache beside the ONNX exports, not in the package (those are the shipped models')."""
    return cache_dir().parent / "file-backends.json"


def stored_backend(info: ForeignInfo) -> str:
    """What ``auto`` runs this file on here: the fastest backend measured for it on this
    CPU within the accuracy bound (``measured.pick_backend``); torch if none is stored."""
    return pick_backend(file_key(info), info.scale, store=load_store(file_store_path()))


def _measured(info: ForeignInfo) -> bool:
    from srlab.runtime.cpu import cpu_model

    store = load_store(file_store_path())
    return bool(store.get(cpu_model(), {}).get(file_key(info), {}).get(str(info.scale)))


def _sides(fm: ForeignModel) -> tuple[tuple[int, int], tuple[int, int]]:
    """A trace size and a different parity size, both of the sizes exported graphs get."""
    info, m = fm.info, fm.graph_multiple

    def side(n: int) -> int:
        return math.ceil(max(n, info.minimum) / m) * m

    trace = (side(24), side(20))
    parity = (side(37), side(29))
    if parity == trace:
        parity = (trace[0] + m, trace[1])
    return trace, parity


def export_file(fm: ForeignModel, *, opset: int = 17, log: Log | None = None) -> Path:
    """The file's network as parity-checked ONNX, cached by sha256 (as is a failure's
    reason, so an architecture that does not export is not exported again)."""
    from srlab.runtime.onnx import check_parity, export_net

    i = fm.info
    stem = f"file-{i.sha256[:20]}-op{opset}-torch{torch.__version__.split('+')[0]}"
    path = cache_dir() / f"{stem}.onnx"
    failed = path.with_suffix(".failed")
    if path.is_file():
        return path
    if failed.is_file():
        raise OnnxError(failed.read_text().strip())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=path.parent)
    os.close(fd)
    trace, parity = _sides(fm)
    try:
        export_net(fm.net, i.in_channels, tmp, opset=opset, trace_hw=trace,
                   metadata={"srlab.file": i.name, "srlab.sha256": i.sha256,
                             "srlab.arch": i.architecture, "srlab.scale": str(i.scale)})
        diff = check_parity(tmp, fm.net, i.in_channels, hw=parity)
        os.replace(tmp, path)
    except Exception as exc:  # noqa: BLE001 - any export failure: the file runs on torch
        text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() \
            else type(exc).__name__
        reason = f"{i.architecture} does not export to ONNX ({text})"
        if isinstance(exc, OnnxError) and "parity" in text:
            reason = f"{i.architecture}'s ONNX export fails the parity check ({text})"
        if not isinstance(exc, (OnnxError, OSError)) or "parity" in text:  # the file's: cache
            failed.write_text(reason + "\n")
        raise OnnxError(reason) from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    if log is not None:
        log(f"exported {i.name} to {path} (parity vs PyTorch at {parity[1]}x{parity[0]}: "
            f"max abs diff {diff:.2e})")
    return path


def _int8_file(fm: ForeignModel, fp32: Path, log: Log | None) -> Path:
    from srlab.runtime.int8 import INT8_RECIPE, calibration_patches, quantize_int8

    path = fp32.with_name(f"{fp32.stem}_int8_{INT8_RECIPE.key()}.onnx")
    if not path.is_file():
        patches = calibration_patches(fm.info.scale, fm.info.in_channels, INT8_RECIPE)
        fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=path.parent)
        os.close(fd)
        try:
            quantize_int8(fp32, tmp, patches, INT8_RECIPE)
            os.replace(tmp, path)
        except OnnxError:
            raise
        except Exception as exc:  # noqa: BLE001 - the quantiser's own failures
            raise OnnxError(f"int8 quantisation failed ({str(exc).strip()[:160]})") from None
        finally:
            Path(tmp).unlink(missing_ok=True)
        if log is not None:
            log(f"quantised {fm.info.name} to int8: {path}")
    return path


def _on(fm: ForeignModel, backend: str, threads: int | None, log: Log | None) -> Upscaler:
    """``fm`` on ``backend``; ``OnnxError`` when that backend cannot run it here."""
    try:
        return _build(fm, backend, threads, log)
    except OnnxError:
        raise
    except Exception as exc:  # noqa: BLE001 - a runtime refusing the exported graph
        text = str(exc).strip().splitlines()[0][:160] if str(exc).strip() \
            else type(exc).__name__
        raise OnnxError(f"{backend} cannot run {fm.info.name} ({text})") from None


def _build(fm: ForeignModel, backend: str, threads: int | None, log: Log | None) -> Upscaler:
    if backend == "torch":
        return ForeignUpscaler(fm)
    if backend == "torch-bf16":
        from srlab.runtime.bf16 import Bf16Net

        return ForeignUpscaler(fm, Bf16Net(fm.net), backend=backend)
    if backend == "ncnn":  # its graph writer knows srlab's own classes, not spandrel's
        raise OnnxError(f"the ncnn backend runs srlab's own networks, not model files "
                        f"({fm.info.name})")
    from srlab.runtime.onnx import SessionNet, make_session, onnx_available

    if not onnx_available():
        from srlab.runtime.onnx import ONNX_HINT

        raise RuntimeMissing(f"the {backend} backend needs onnx and onnxruntime: {ONNX_HINT}")
    if backend == "openvino":
        from srlab.runtime.openvino import OPENVINO_HINT, compile_onnx, openvino_available

        if not openvino_available():
            raise RuntimeMissing(f"the openvino backend needs OpenVINO: {OPENVINO_HINT}")
        return ForeignUpscaler(fm, SessionNet(compile_onnx(export_file(fm, log=log), threads)),
                               backend=backend)
    path = export_file(fm, log=log)
    if backend == "onnx-int8":
        path = _int8_file(fm, path, log)
    return ForeignUpscaler(fm, SessionNet(make_session(path, threads)), backend=backend)


def load_file_model(path: str | os.PathLike[str], *, scale: int | None = None,
                    backend: str = "auto", threads: int | None = None,
                    log: Log | None = None, fallback: bool = True) -> ForeignUpscaler:
    """A model file on ``backend`` (see the module docstring). ``scale``, when given, must be
    the file's (``ForeignModelError`` otherwise). ``log`` hears, once each: the file's
    architecture, size and sha256, and the backend that runs it (with the reason when it is
    not the one asked for). ``fallback=False`` raises ``OnnxError`` where the asked backend
    cannot run this file instead of running it on torch (``srlab bench`` skips that row)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    fm = load_model_file(path)
    i = fm.info
    if scale is not None and scale != i.scale:
        raise ForeignModelError(f"{i.name} is an x{i.scale} model ({i.architecture}), not "
                                f"x{scale}: drop --scale or pass --scale {i.scale}")
    say = log or (lambda _line: None)
    tags = f" {'/'.join(i.tags)}" if i.tags else ""
    say(f"{i.name}: {i.architecture}{tags} x{i.scale}, {i.params:,} parameters, "
        f"sha256 {i.sha256}")
    wanted = stored_backend(i) if backend == "auto" else backend
    if backend == "auto" and wanted == "torch":
        say(f"{i.name}: backend torch (" + ("measured fastest for this file here)"
                                           if _measured(i) else
                                           "nothing measured for this file on this CPU; "
                                           f"'srlab bench --file {i.path} --store' times the "
                                           "others and keeps the choice)"))
    try:
        up = _on(fm, wanted, threads, log)
    except RuntimeMissing:
        if backend != "auto":
            raise  # the user's explicit choice cannot run here at all
        say(f"{i.name}: backend torch ({wanted}, measured for this file, is not installed)")
        return ForeignUpscaler(fm)
    except OnnxError as exc:  # the file's export or quantisation failed: torch runs it
        if not fallback:
            raise
        say(f"{i.name}: {exc}; running on torch")
        return ForeignUpscaler(fm)
    if backend == "auto" and wanted != "torch":
        say(f"{i.name}: backend {wanted} (measured for this file: {file_store_path()})")
    return up

"""Your own model file on the command line: ``srlab upscale -m FILE``, ``srlab models
--file FILE``, ``srlab bench --file FILE``, ``srlab serve --model-file FILE``.

What the verbs share: a file is recognised by its name (``zoo.foreign.looks_like_file``),
loaded once through ``runtime.foreign`` (which prints its architecture, size and sha256
once, and the backend that runs it), and every refusal (not a model, unknown
architecture, wrong scale, a hostile pickle, a truncated file, spandrel not installed) is
one line and exit status 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from srlab.cli.common import PROG, UsageError, one_line

__all__ = ["is_model_file", "load", "describe", "info", "register"]


def is_model_file(name: str | Path | None) -> bool:
    from srlab.zoo.foreign import looks_like_file

    return looks_like_file(name)


def _say(line: str) -> None:
    print(f"{PROG}: {one_line(line)}", file=sys.stderr)


def load(path: str | Path, *, scale: int | None, backend: str = "auto",
         threads: int | None = None, weights: Path | None = None,
         denoise: float | None = None, detail: float | None = None) -> Any:
    """The file as an Upscaler on ``backend``; any refusal is a ``UsageError`` (exit 2)."""
    from srlab.runtime.foreign import load_file_model
    from srlab.runtime.onnx import OnnxError
    from srlab.zoo.foreign import ForeignModelError

    if weights is not None or denoise is not None or detail is not None:
        raise UsageError(f"{Path(path).name} is a model file with its own weights: drop "
                         "--weights/--denoise/--detail")
    try:
        return load_file_model(path, scale=scale, backend=backend, threads=threads, log=_say)
    except (ForeignModelError, OnnxError) as exc:
        raise UsageError(str(exc)) from None


def info(path: str | Path) -> Any:
    """The file's ``ForeignInfo`` (architecture, scale, ...); refusals as in ``load``."""
    from srlab.zoo.foreign import ForeignModelError, load_model_file

    try:
        return load_model_file(path).info
    except ForeignModelError as exc:
        raise UsageError(str(exc)) from None


def describe(path: str | Path) -> str:
    """``srlab models --file``: the file described like a zoo model, one field a line."""
    from srlab.runtime.foreign import stored_backend

    i = info(path)
    rows = [*i.rows(), ("backend (auto)", stored_backend(i))]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def register(path: str | Path) -> Any:
    """``srlab serve --model-file``: offer the file by its name in the demo and the API
    (``zoo.foreign.register_file``), checked now; says its sha256 once."""
    from srlab.zoo.foreign import ForeignModelError, register_file

    try:
        i = register_file(path)
    except ForeignModelError as exc:
        raise UsageError(str(exc)) from None
    _say(f"{i.name}: {i.architecture} x{i.scale}, {i.params:,} parameters, sha256 {i.sha256}; "
         "offered as model '" + i.name + "'")
    return i

"""Weights as data: a safetensors file whose header carries a ``WeightsMeta`` record.

One loader for every weights file srlab reads. It never unpickles anything it did not
write: safetensors is a flat tensor format with a JSON header, so loading it cannot run code.
A foreign ``.pth``/``.pt`` file is opened only with ``torch.load(weights_only=True)``, which
refuses pickled objects other than tensors and plain containers.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = [
    "WeightsMeta",
    "atomic_replace",
    "WeightsError",
    "save_weights",
    "save_tensors",
    "read_weights",
    "load_state_dict_file",
    "shipped_weights_path",
    "count_params",
]

SHIPPED_DIR = Path(__file__).parents[1] / "weights"
_META_KEY = "srlab"


class WeightsError(ValueError):
    """A weights file is missing, corrupt, foreign or does not fit the model."""


@dataclass
class WeightsMeta:
    arch: str  # registry name
    scale: int
    kwargs: dict[str, Any] = field(default_factory=dict)  # constructor args beyond the registry's
    params: int = 0
    recipe: str = ""  # how it was trained: config file, iterations, data, CPU time
    train_seconds: float = 0.0  # this run's CPU time
    # CPU time already in the weights this run started from (model.init), their own
    # inherited time included: a grown or fine-tuned net's card must not hide its ancestry
    init_seconds: float = 0.0
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # dataset -> psnr/ssim
    license: str = "MIT"
    trained: bool = True

    @property
    def total_seconds(self) -> float:
        """CPU time in these weights: this run's and all it started from."""
        return self.train_seconds + self.init_seconds

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> WeightsMeta:
        try:
            raw = json.loads(text)
            return cls(**raw)
        except (json.JSONDecodeError, TypeError) as exc:
            raise WeightsError(f"weights metadata is not a valid srlab record: {exc}") from None


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def atomic_replace(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_weights(model: nn.Module, meta: WeightsMeta, path: str | Path) -> None:
    """Write ``model``'s state dict and ``meta`` atomically (temp file + rename)."""
    meta.params = count_params(model)
    save_tensors(model.state_dict(), meta, path)


def save_tensors(tensors: dict[str, torch.Tensor], meta: WeightsMeta, path: str | Path) -> None:
    """Write tensors and their ``meta`` record as one safetensors file, atomically: the one
    writer of srlab weights files (a trained network's, or a blend's)."""
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    atomic_replace(Path(path), lambda tmp: save_file(state, tmp, {_META_KEY: meta.to_json()}))


def read_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], WeightsMeta | None]:
    """Tensors and metadata of a weights file (safetensors, or tensors-only .pth)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    if path.suffix in (".pth", ".pt", ".ckpt"):
        return load_state_dict_file(path), None
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            header = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise WeightsError(f"{path.name} is not a readable safetensors file ({exc})") from None
    try:
        meta = WeightsMeta.from_json(header[_META_KEY]) if _META_KEY in header else None
    except WeightsError as exc:  # name the file: it may be one of several in a command
        raise WeightsError(f"{path.name}: {exc}") from None
    return tensors, meta


def load_state_dict_file(path: Path) -> dict[str, torch.Tensor]:
    """A foreign checkpoint, read with ``weights_only=True`` so pickled code cannot run."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure here means "refused"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"refused to load {path.name}: not a plain tensor file ({first})") \
            from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path.name} does not hold a state dict of tensors")
    return obj


def apply_state_dict(model: nn.Module, tensors: dict[str, torch.Tensor], source: str) -> None:
    """Load tensors into ``model`` strictly, with one clear error on any mismatch."""
    check_state_dict(model, tensors, source)
    model.load_state_dict(tensors)


def check_state_dict(model: nn.Module, tensors: dict[str, torch.Tensor], source: str) -> None:
    """``WeightsError`` unless ``tensors`` has exactly ``model``'s names and shapes. Works on a
    model built on the meta device, so a file can be refused before any memory is spent."""
    own = model.state_dict()
    missing = sorted(set(own) - set(tensors))
    extra = sorted(set(tensors) - set(own))
    bad = [k for k in own if k in tensors and own[k].shape != tensors[k].shape]
    if missing or extra or bad:
        detail = (missing and f"missing {missing[:3]}") or (extra and f"unexpected {extra[:3]}") \
            or f"shape mismatch at {bad[:3]}"
        raise WeightsError(f"{source} does not fit the model: {detail}")


def shipped_weights_path(arch: str, scale: int) -> Path:
    return SHIPPED_DIR / f"{arch}_x{scale}.safetensors"

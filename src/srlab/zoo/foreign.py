"""Your own model files: community super-resolution models (``.safetensors`` / ``.pth``)
read and recognised by spandrel (chaiNNer-org, MIT), described like the zoo's models.

Why spandrel: the community shares SR networks (OpenModelDB: SPAN, ESRGAN/Real-ESRGAN, the
compact SRVGG, SwinIR, HAT, DAT, ...) as bare state dicts. spandrel detects ~40
architectures from the tensor names and shapes, rebuilds each with its hyperparameters, and
reports what a caller needs (scale, channels, size requirements, tiling advice). Only its
main registry is used; ``spandrel_extra_arches`` (non-commercial and copyleft
architectures) is never imported.

Safety, in order, before any tensor is built: the extension (``.safetensors`` or ``.pth``;
``.pt`` may be TorchScript, which is code, so it is refused), a size cap, the bytes read
once and hashed (the sha256 a user compares with OpenModelDB's is the hash of exactly what
was loaded), then ``.safetensors`` parsed by safetensors (a JSON header and raw tensors:
nothing to execute) and ``.pth`` unpickled by spandrel's restricted unpickler, which
allows only tensor storages and ordered dicts: a ``__reduce__`` payload names a global
(``posix.system``) and is refused before it can run.

spandrel is an optional extra (``pip install 'srlab[spandrel]'``: spandrel installed with
``--no-deps``, plus einops), imported only here and only when a file is loaded.
"""

from __future__ import annotations

import enum
import hashlib
import importlib.util
import io
import math
import os
import sys
import types
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from srlab.zoo.weights import WeightsError, count_params

__all__ = ["FILE_SUFFIXES", "MAX_MODEL_BYTES", "SPANDREL_HINT", "ForeignModelError",
           "ForeignInfo", "ForeignModel", "PaddedNet", "looks_like_file", "load_model_file",
           "spandrel_available", "import_spandrel", "supported_architectures",
           "register_file", "registered", "registered_files", "unregister_all"]

SPANDREL_HINT = "pip install 'srlab[spandrel]'"
FILE_SUFFIXES = (".safetensors", ".pth")
# refused with a reason: these may hold code (TorchScript, arbitrary pickles) or are no SR model
_REFUSED = {".pt": "may be TorchScript (code)", ".ckpt": "a training checkpoint, may hold code",
            ".bin": "an opaque pickle", ".pkl": "a pickle", ".pickle": "a pickle",
            ".onnx": "ONNX (srlab exports ONNX itself from a .safetensors/.pth)",
            ".param": "an NCNN model", ".jit": "TorchScript (code)"}
# the largest community SR models (HAT-L, DAT-L) are ~100-200 MB; a 1 GiB cap leaves room
# and stops a file from filling memory before anything is checked
MAX_MODEL_BYTES = 1 << 30
# what srlab runs: image-to-image super-resolution; the others need inputs srlab has no
# place for (masks, aligned faces) or do not enlarge
_SR_PURPOSES = ("SR",)
# LR pixels of context each side of a tile (rounded up to the architecture's alignment):
# tiled output equals untiled within 2 levels (8-bit) for the architectures tests build;
# the CLI's --overlap raises it for models with a wider receptive field
DEFAULT_CONTEXT = 32
_ALIGN = 16  # tile origins on multiples of this: window attention partitions alike


class ForeignModelError(WeightsError):
    """A model file srlab refuses: one sentence that names the file (the CLI exits 2)."""


def looks_like_file(name: str | os.PathLike[str] | None) -> bool:
    """True when a ``-m`` value names a file rather than a registered model: registered names
    hold no dot or path separator, files do (``4x-foo.pth``, ``models/bar``). The name
    alone decides: a file called ``span`` in the current folder does not shadow the model."""
    if name is None:
        return False
    text = os.fspath(name)
    return "/" in text or os.sep in text or bool(Path(text).suffix)


def spandrel_available() -> bool:
    return importlib.util.find_spec("spandrel") is not None


def _torchvision_stand_in() -> dict[str, types.ModuleType]:
    """The three torchvision names spandrel's main registry imports at module level (LaMa
    inpainting: ``InterpolationMode``, ``rotate``; RestoreFormer faces: ``normalize``).

    torchvision cannot be installed beside srlab's CPU torch, and neither architecture is
    super-resolution (srlab refuses both by purpose), but ``import spandrel`` imports its
    whole registry. The stand-in exists only while spandrel is imported (taken out of
    ``sys.modules`` right after, so nothing else ever sees a fake torchvision); its
    functions raise a clear error if those two architectures ever ran.
    """

    def unavailable(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("this architecture needs torchvision, which srlab does not install "
                           "(LaMa and RestoreFormer are not super-resolution models)")

    class InterpolationMode(enum.Enum):  # torchvision's values, for LaMa's default arguments
        NEAREST = "nearest"
        NEAREST_EXACT = "nearest-exact"
        BILINEAR = "bilinear"
        BICUBIC = "bicubic"
        BOX = "box"
        HAMMING = "hamming"
        LANCZOS = "lanczos"

    tv = types.ModuleType("torchvision")
    transforms = types.ModuleType("torchvision.transforms")
    functional = types.ModuleType("torchvision.transforms.functional")
    functional.__dict__.update(InterpolationMode=InterpolationMode, rotate=unavailable,
                               normalize=unavailable)
    tv.__dict__["transforms"] = transforms
    transforms.__dict__["functional"] = functional
    return {"torchvision": tv, "torchvision.transforms": transforms,
            "torchvision.transforms.functional": functional}


def import_spandrel() -> Any:
    """``import spandrel`` (with the stand-in when torchvision is absent), or a one-line
    ``ForeignModelError`` naming the extra."""
    if "spandrel" in sys.modules:
        return sys.modules["spandrel"]
    if not spandrel_available():
        raise ForeignModelError(f"model files need spandrel: {SPANDREL_HINT}")
    stand_in = {} if importlib.util.find_spec("torchvision") is not None \
        else _torchvision_stand_in()
    sys.modules.update(stand_in)
    try:
        import spandrel
    except ImportError as exc:  # e.g. einops missing: the extra is incomplete
        raise ForeignModelError(f"spandrel could not be imported ({exc}): "
                                f"{SPANDREL_HINT}") from None
    finally:
        for key, module in stand_in.items():
            if sys.modules.get(key) is module:
                del sys.modules[key]
    return spandrel


def supported_architectures() -> list[str]:
    """The names of spandrel's main registry (what can be recognised), detection order."""
    registry = import_spandrel().MAIN_REGISTRY
    return [a.architecture.name for a in registry.architectures("detection")]


@dataclass(frozen=True)
class ForeignInfo:
    """A model file described like a zoo ``Variant``: what ``srlab models --file`` prints."""

    path: Path
    sha256: str
    size_bytes: int
    architecture: str  # spandrel's name (``SPAN``, ``ESRGAN``, ``SwinIR``, ...)
    tags: tuple[str, ...]  # spandrel's size tags (``48nf``, ``light``, ...)
    scale: int
    params: int
    in_channels: int
    size_multiple: int  # input sides must be multiples of this (padded otherwise)
    minimum: int  # smallest input side (padded otherwise)
    tiling: str  # spandrel's advice: supported, discouraged, internal
    context: int  # LR pixels of overlap between tiles (``DEFAULT_CONTEXT``, aligned)
    window: int  # attention window (lcm of the sizes found; 1: none): the model pads to it
    align: int  # tile sizes and overlaps are multiples of this
    license: str | None  # from the file's metadata, when it says

    @property
    def name(self) -> str:
        return self.path.name

    def rows(self) -> list[tuple[str, str]]:
        """(field, value) pairs, in the order ``srlab models --file`` prints them."""
        tags = f" ({', '.join(self.tags)})" if self.tags else ""
        return [("file", str(self.path)), ("sha256", self.sha256),
                ("size", f"{self.size_bytes / 1e6:.1f} MB"),
                ("architecture", self.architecture + tags), ("scale", f"x{self.scale}"),
                ("parameters", f"{self.params:,}"),
                ("input channels", f"{self.in_channels} "
                 + ("(RGB)" if self.in_channels == 3 else "(gray: runs on luma)")),
                ("size multiple", "1 (any size)" if self.size_multiple == 1 and not self.minimum
                 else f"{self.size_multiple}" + (f", minimum {self.minimum}" if self.minimum
                                                 else "") + " (other sizes are padded)"),
                ("tiling", f"{self.tiling}, {self.context} px context, aligned to {self.align}"),
                ("licence", self.license or "not stated in the file (see where you got it)")]


class PaddedNet(nn.Module):
    """``inner`` (a network or a runtime's callable, 1xCxhxw -> 1xCx(sh)x(sw)) on inputs
    padded to the model's size requirements, the padding cropped from the output: what
    spandrel's descriptor does, kept outside the exported graph so every backend pads
    alike (reflect, then replicate where reflect cannot reach, as spandrel)."""

    def __init__(self, inner: Any, *, scale: int, multiple: int, minimum: int,
                 in_channels: int) -> None:
        super().__init__()
        self.inner = inner
        self.scale, self.multiple, self.minimum = scale, multiple, minimum
        self.in_channels = in_channels

    def pad_to(self, side: int) -> int:
        return math.ceil(max(side, self.minimum) / self.multiple) * self.multiple

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = self.pad_to(h) - h, self.pad_to(w) - w
        if ph or pw:
            rh, rw = min(ph, h - 1), min(pw, w - 1)
            x = F.pad(x, (0, rw, 0, rh), mode="reflect")
            if ph > rh or pw > rw:
                x = F.pad(x, (0, pw - rw, 0, ph - rh), mode="replicate")
        out = self.inner(x)
        return out[..., : h * self.scale, : w * self.scale] if ph or pw else out


@dataclass
class ForeignModel:
    """A loaded model file: its description and the network (float32, eval mode)."""

    info: ForeignInfo
    net: nn.Module  # the architecture's module, weights loaded

    @property
    def graph_multiple(self) -> int:
        """Input sides an exported graph is built and checked for: the size multiple and
        the attention window (the network pads to its window in Python, which a traced
        graph cannot repeat, so exported graphs get inputs padded to it beforehand, with
        the same reflect padding the network would add)."""
        return math.lcm(self.info.size_multiple, self.info.window)

    def padded(self, inner: Any = None) -> PaddedNet:
        """``inner`` (default: the torch network) behind the model's padding; a runtime's
        callable (an exported graph) also gets its inputs padded to ``graph_multiple``."""
        i = self.info
        multiple = i.size_multiple if inner is None else self.graph_multiple
        return PaddedNet(self.net if inner is None else inner, scale=i.scale,
                         multiple=multiple, minimum=i.minimum, in_channels=i.in_channels)


def _refuse(path: Path, why: str) -> ForeignModelError:
    return ForeignModelError(f"{path.name}: {why}")


def _read(path: Path, max_bytes: int) -> bytes:
    suffix = path.suffix.lower()
    if suffix not in FILE_SUFFIXES:
        what = _REFUSED.get(suffix, "not a model file srlab reads")
        raise _refuse(path, f"{suffix or 'no extension'} is {what}; srlab runs .safetensors "
                            "and .pth model files only")
    if not path.is_file():
        raise _refuse(path, "no such model file")
    size = path.stat().st_size
    if size > max_bytes:
        raise _refuse(path, f"{size / 1e6:.0f} MB is above the {max_bytes / 1e6:.0f} MB limit "
                            "for a model file")
    return path.read_bytes()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:160] if text else type(exc).__name__


def _state_dict(path: Path, data: bytes) -> tuple[dict[str, Any], str | None]:
    """The file's tensors (spandrel-canonicalised) and the licence its metadata states."""
    sp = import_spandrel()
    licence = None
    if path.suffix.lower() == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load as load_safetensors

        try:
            state = load_safetensors(data)
            meta = _safetensors_metadata(data)
        except (SafetensorError, ValueError, RuntimeError, OSError) as exc:
            raise _refuse(path, f"not a readable safetensors file, truncated or damaged "
                                f"({_first_line(exc)})") from None
        licence = next((str(v) for k, v in meta.items()
                        if k.lower().split(".")[-1] in ("license", "licence")), None)
    else:
        from spandrel.__helpers.unpickler import RestrictedUnpickle  # spandrel's own

        try:
            state = torch.load(io.BytesIO(data), map_location="cpu",
                               pickle_module=RestrictedUnpickle)  # type: ignore[arg-type]
        except Exception as exc:  # noqa: BLE001 - every failure here is "refused"
            msg = _first_line(exc)
            why = (f"refused: it holds more than tensors ({msg}); nothing in it was run"
                   if "forbidden" in msg else
                   f"not a readable .pth state dict, truncated or damaged ({msg})")
            raise _refuse(path, why) from None
    if not isinstance(state, dict):
        raise _refuse(path, f"holds a {type(state).__name__}, not a state dict of tensors")
    state = sp.canonicalize_state_dict(state)
    if not state or not any(isinstance(v, torch.Tensor) for v in state.values()):
        raise _refuse(path, "holds no tensors: not a model file")
    return state, licence


def _safetensors_metadata(data: bytes) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors header (already validated by the loader)."""
    import json

    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    return dict(header.get("__metadata__") or {})


def _leaf_keys(cond: Any) -> list[str]:
    keys = getattr(cond, "_keys", None)
    if keys is None:
        return []
    out: list[str] = []
    for k in keys:
        out += [k] if isinstance(k, str) else _leaf_keys(k)
    return out


def _nearest(state: dict[str, Any], registry: Any, n: int = 3) -> list[str]:
    """Architectures whose detection keys the file has most of (spandrel detects by the
    presence of named tensors; a file with none of them is no known model)."""
    scored = []
    archs = [s.architecture for s in registry.architectures("detection")]
    for arch in archs:
        # spandrel's Architecture keeps its KeyCondition here (no public accessor); an
        # architecture detected by a plain function simply takes no part in the ranking
        keys = _leaf_keys(getattr(arch, "_detect", None))
        if keys:
            scored.append((sum(k in state for k in keys) / len(keys), arch.name))
    scored.sort(key=lambda t: -t[0])
    best = [name for frac, name in scored[:n] if frac > 0]
    return best or [a.name for a in archs if a.id in ("SPAN", "ESRGAN", "Compact")]


def _detect(path: Path, state: dict[str, Any]) -> Any:
    """The spandrel descriptor; refused when unknown, not super-resolution, or not RGB/gray
    in and out. The architecture is checked before it is built."""
    sp = import_spandrel()
    registry = sp.MAIN_REGISTRY
    support = next((a for a in registry.architectures("detection") if a.detect(state)), None)
    if support is None:
        near = ", ".join(_nearest(state, registry))
        raise _refuse(path, f"unknown architecture: spandrel recognises none of its "
                            f"{len(state)} tensors (nearest supported: {near}; "
                            "'srlab models --file' lists what is supported)")
    name = support.architecture.name
    try:
        desc = support.architecture.load(state)
    except Exception as exc:  # noqa: BLE001 - a file that looks like X but does not fit
        raise _refuse(path, f"looks like {name} but its tensors do not fit that "
                            f"architecture ({_first_line(exc)})") from None
    if not isinstance(desc, sp.ImageModelDescriptor) or desc.purpose not in _SR_PURPOSES:
        purpose = getattr(desc, "purpose", "?")
        raise _refuse(path, f"is a {name} model for {purpose}, not super-resolution; srlab "
                            "runs x2, x3 and x4 super-resolution models")
    if desc.scale not in (2, 3, 4):
        raise _refuse(path, f"{name} x{desc.scale}: srlab runs x2, x3 and x4 models")
    if desc.input_channels not in (1, 3) or desc.output_channels != desc.input_channels:
        raise _refuse(path, f"{name} maps {desc.input_channels} to {desc.output_channels} "
                            "channels; srlab runs RGB->RGB and gray->gray models")
    return desc


def _window(net: nn.Module) -> int:
    """The attention window the network partitions its input into (lcm of every
    ``window_size`` its modules declare; 1 for convolutional networks)."""
    sizes = [1]
    for m in net.modules():
        w = getattr(m, "window_size", None)
        for v in (w if isinstance(w, (tuple, list)) else (w,)):
            if isinstance(v, int) and 0 < v <= 64:
                sizes.append(v)
    return math.lcm(*sizes)


def load_model_file(path: str | os.PathLike[str], *,
                    max_bytes: int = MAX_MODEL_BYTES) -> ForeignModel:
    """Read, check, recognise and build a model file (``ForeignModelError`` on refusal)."""
    path = Path(path)
    data = _read(path, max_bytes)
    sha = hashlib.sha256(data).hexdigest()
    state, licence = _state_dict(path, data)
    with warnings.catch_warnings():  # constructors' deprecation notes are not the user's
        warnings.simplefilter("ignore")
        desc = _detect(path, state)
    net = desc.model.float().eval()
    for p in net.parameters():
        p.requires_grad_(False)
    req = desc.size_requirements
    window = _window(net)
    # window attention partitions a tile from its origin: tiles start on window multiples
    align = math.lcm(_ALIGN, int(req.multiple_of), window)
    info = ForeignInfo(
        path=path, sha256=sha, size_bytes=len(data), architecture=desc.architecture.name,
        tags=tuple(desc.tags), scale=int(desc.scale), params=count_params(net),
        in_channels=int(desc.input_channels), size_multiple=int(req.multiple_of),
        minimum=int(req.minimum), tiling=desc.tiling.name.lower(),
        context=math.ceil(DEFAULT_CONTEXT / align) * align, window=window, align=align,
        license=licence)
    return ForeignModel(info, net)


# --------------------------------------------------------------------------------------------
# model files offered by name (``srlab serve --model-file``): the catalogue lists them
# --------------------------------------------------------------------------------------------

_REGISTERED: dict[str, ForeignInfo] = {}


def register_file(path: str | os.PathLike[str]) -> ForeignInfo:
    """Offer a model file by its file name wherever the zoo's names go (``zoo.catalog``:
    ``resolve``, the demo's model list, model cards, ``/api/models``; ``load_model(name)``).
    The file is loaded once here, so a refusal happens at start-up, not on a request."""
    fm = load_model_file(path)
    name = fm.info.name
    other = _REGISTERED.get(name)
    if other is not None and other.path.resolve() != fm.info.path.resolve():
        raise ForeignModelError(f"{name}: two model files of that name ({other.path} and "
                                f"{fm.info.path}); rename one")
    _REGISTERED[name] = fm.info
    return fm.info


def registered(name: object) -> ForeignInfo | None:
    """The registered model file of that name, if any."""
    return _REGISTERED.get(name) if isinstance(name, str) else None


def registered_files() -> list[ForeignInfo]:
    return list(_REGISTERED.values())


def unregister_all() -> None:
    """Forget every registered file (tests; a server registers once at start-up)."""
    _REGISTERED.clear()

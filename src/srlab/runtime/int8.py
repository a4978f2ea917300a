"""The ``onnx-int8`` backend: the exported network statically quantised to int8 (QDQ).

Why static QDQ with per-channel weights: ONNX Runtime fuses QuantizeLinear / DequantizeLinear
around each Conv into an integer convolution, which runs on AVX512-VNNI where the CPU has
it; per-channel weight scales keep the 3x3 filters' small channels from being rounded away.
Activation ranges come from LR patches of the *training* images (never a benchmark set),
made by the evaluation protocol (MATLAB bicubic), a fixed seed, clipped at a percentile
of each tensor's histogram so one outlier pixel does not stretch the int8 grid.

The quantised file is built at first use from the exported float model (itself built from
the shipped safetensors) and cached beside it, named by the weights' hash and the recipe;
nothing is downloaded and nothing is unpickled. It needs the training images
(``$SRLAB_SHARED/datasets/train``) once, for the calibration.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from srlab.runtime.onnx import (
    OnnxError,
    OnnxUpscaler,
    cache_dir,
    export_upscaler,
    exported_path,
    make_session,
)
from srlab.runtime.torch_model import load_torch_model

if TYPE_CHECKING:
    from srlab.runtime.upscaler import Upscaler

__all__ = ["Int8Recipe", "INT8_RECIPE", "INT8_RECIPES", "recipe_for", "calibration_patches",
           "quantize_int8",
           "load_int8_model", "int8_upscaler"]


@dataclass(frozen=True)
class Int8Recipe:
    """How a model is calibrated and quantised; part of the cache key."""

    folders: tuple[str, ...] = ("T91", "BSDS500-train", "ImageNet-sample400")
    patches: int = 48  # LR patches, one per image drawn
    patch: int = 64  # LR side in pixels
    seed: int = 0
    method: str = "Percentile"  # onnxruntime CalibrationMethod name
    percentile: float = 99.999
    # quantise only these ops: the residual Adds, the skip and the pixel shuffle stay float
    op_types: tuple[str, ...] = ("Conv", "Relu")
    keep_last_conv: bool = True  # the conv feeding the pixel shuffle stays float
    # further convs (indices in graph order) kept float: the ones whose rounding costs most,
    # found on held-out training images by tools/int8_sensitivity.py
    keep_convs: tuple[int, ...] = ()

    def key(self) -> str:
        return hashlib.sha256(repr(sorted(asdict(self).items())).encode()).hexdigest()[:10]


INT8_RECIPE = Int8Recipe()
# per architecture: the convs whose int8 rounding costs most stay float. For span (and
# span-real, the same network) tools/int8_sensitivity.py on 12 held-out BSDS500-test images
# at x4 found conv 30 (the body's last conv, added to the shallow features) worth 0.061 dB
# and conv 0 (the first) 0.011 dB; every other conv 0.002 dB or less. Both kept float:
# -0.0825 -> -0.0107 dB against float32 on those images.
_SPAN_INT8 = Int8Recipe(keep_convs=(0, 30))
INT8_RECIPES: dict[str, Int8Recipe] = {"span": _SPAN_INT8, "span-real": _SPAN_INT8}


def recipe_for(name: str) -> Int8Recipe:
    """The int8 recipe of a model: its own where measured, else the default."""
    return INT8_RECIPES.get(name, INT8_RECIPE)


def calibration_patches(scale: int, in_channels: int, recipe: Int8Recipe = INT8_RECIPE, *,
                        root: Path | None = None) -> list[np.ndarray]:
    """``recipe.patches`` float32 1xCxPxP LR patches in [0, 1] (Y for luma models): a seeded
    HR crop of a seeded training image, downscaled by MATLAB bicubic (the protocol's LR)."""
    from srlab.image.datasets import find_images, load_rgb, shared_dir
    from srlab.image.metrics import rgb_to_y
    from srlab.image.resize import imresize

    base = root if root is not None else shared_dir() / "datasets" / "train"
    files: list[Path] = []
    for folder in recipe.folders:
        if (base / folder).is_dir():
            files += find_images(base / folder)
    if not files:
        raise OnnxError(f"int8 calibration needs the training images under {base} "
                        "(set SRLAB_SHARED)")
    rng = np.random.default_rng(recipe.seed)
    side = recipe.patch * scale
    out: list[np.ndarray] = []
    for i in rng.permutation(len(files)):
        if len(out) == recipe.patches:
            break
        hr = load_rgb(files[i])
        h, w = hr.shape[:2]
        if h < side or w < side:
            continue  # T91 has images smaller than a patch
        y0, x0 = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        lr = imresize(hr[y0 : y0 + side, x0 : x0 + side], 1 / scale)
        x = rgb_to_y(lr)[None] if in_channels == 1 else lr.transpose(2, 0, 1)
        out.append((x / 255.0).astype(np.float32)[None])
    return out


class _Reader:
    """onnxruntime's CalibrationDataReader protocol over a list of input arrays."""

    def __init__(self, arrays: Sequence[np.ndarray]) -> None:
        self._it: Iterator[np.ndarray] = iter(arrays)

    def get_next(self) -> dict[str, np.ndarray] | None:
        x = next(self._it, None)
        return None if x is None else {"lr": x}

    def rewind(self) -> None:  # part of the protocol; one pass is all quantize_static makes
        pass


def quantize_int8(src: str | Path, out: str | Path, patches: Sequence[np.ndarray],
                  recipe: Int8Recipe = INT8_RECIPE) -> Path:
    """Quantise the float ONNX model ``src`` into ``out`` (static, QDQ, per-channel s8
    weights, u8 activations) with ranges calibrated on ``patches``."""
    try:
        from onnxruntime.quantization import (
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_static,
        )
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError:
        raise OnnxError("int8 needs onnxruntime's quantization tools: pip install "
                        "'srlab[onnx]'") from None
    import onnx

    out = Path(out)
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        pre = Path(tmp) / "pre.onnx"  # shapes inferred and graph optimised, as ORT advises
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        convs = [n.name for n in onnx.load(str(pre)).graph.node if n.op_type == "Conv"]
        exclude = (convs[-1:] if recipe.keep_last_conv else []) \
            + [convs[i] for i in recipe.keep_convs if i < len(convs)]
        quantize_static(
            str(pre), str(out), _Reader(patches), quant_format=QuantFormat.QDQ,
            per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            calibrate_method=getattr(CalibrationMethod, recipe.method),
            op_types_to_quantize=list(recipe.op_types), nodes_to_exclude=exclude,
            extra_options={"CalibPercentile": recipe.percentile, "WeightSymmetric": True,
                           "ActivationSymmetric": False},
        )
    return out


def load_int8_model(name: str, scale: int = 4, *, weights: str | Path | None = None,
                    threads: int | None = None, recipe: Int8Recipe | None = None,
                    patches: Sequence[np.ndarray] | None = None,
                    log: Callable[[str], None] | None = None) -> OnnxUpscaler:
    """The model quantised to int8 on ONNX Runtime, built on first use and cached (see the
    module docstring). ``patches`` replaces the training-image calibration (tests)."""
    up = load_torch_model(name, scale, weights=weights)  # one network: 'auto' is refused
    return int8_upscaler(up, recipe=recipe or recipe_for(name), threads=threads,
                         patches=patches, log=log)


def int8_upscaler(up: Upscaler, *, recipe: Int8Recipe, threads: int | None = None,
                  patches: Sequence[np.ndarray] | None = None,
                  log: Callable[[str], None] | None = None) -> OnnxUpscaler:
    """A torch ``Upscaler`` (a registered model, or a span/span-real blend) quantised by
    ``recipe``, cached beside its float export (one file per weights and recipe)."""
    name, scale = up.name, up.scale

    def build(src: Path, dst: Path) -> None:
        cal = patches if patches is not None else calibration_patches(
            scale, up.in_channels, recipe)
        quantize_int8(src, dst, cal, recipe)

    if not up.trained:  # random weights differ per load: nothing worth caching
        with tempfile.TemporaryDirectory() as tmp:
            fp32 = export_upscaler(up, Path(tmp) / "model.onnx", opset=17, log=None).path
            build(fp32, Path(tmp) / "int8.onnx")
            session = make_session((Path(tmp) / "int8.onnx").read_bytes(), threads)
        return _int8(session, up)
    fp32 = exported_path(up, log=log)
    path = cache_dir() / f"{fp32.stem}_int8_{recipe.key()}.onnx"
    if not path.is_file():
        fd, tmp_name = tempfile.mkstemp(suffix=".onnx", dir=path.parent)
        os.close(fd)
        try:
            build(fp32, Path(tmp_name))
            os.replace(tmp_name, path)  # atomic, as for the float export
            if log is not None:
                log(f"quantised {name} x{scale} to int8: {path}")
        finally:
            Path(tmp_name).unlink(missing_ok=True)
    return _int8(make_session(path, threads), up)


def _int8(session: Any, up: Any) -> OnnxUpscaler:
    out = OnnxUpscaler(session, like=up)
    out.backend = "onnx-int8"
    return out

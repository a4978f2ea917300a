"""Output sizes other than a model's scale: ``--scale 1.5``, ``--scale 3`` with a x4-only
model, ``--width``, ``--height``, ``--fit WxH``.

A network only enlarges by the integer factors it was trained for. Any other size is planned
here, in one place for the CLI, the batch task, the Python API and the HTTP API:
``OutputSize`` is what the user asked for, ``plan_size`` turns it (with the image's size and
the scales a model ships) into a ``SizePlan`` (the model scale to run and the exact output
size), and ``finish`` resizes the network's output to that size with srlab's one bicubic,
MATLAB's antialiased kernel (``image.resize``), the same one that makes the protocol's LR.

The model scale is the factor itself when the model ships it, else the nearest shipped scale
at or above it (x3 from a x4-only model: run x4, shrink by 3/4), else the largest shipped
one followed by a bicubic enlargement (no network ships x10: the caller is told so by
``SizePlan.describe``). This module knows nothing of models: callers pass the scales.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from srlab.image.resize import resize_taps

__all__ = ["MAX_ENLARGEMENT", "OutputSize", "SizeError", "SizeLimitError", "SizePlan",
           "choose_scale", "finish", "parse_fit", "plan_size"]

_FIT = re.compile(r"^\s*(\d+)\s*[xX×]\s*(\d+)\s*$")
_STRIP_ROWS = 256  # output rows resized at once: bounds the float working memory


class SizeError(ValueError):
    """An output size that cannot be honoured; the message is one line meant for users."""


class SizeLimitError(SizeError):
    """An output size above what the pixel limit allows (the server answers 413)."""


def parse_fit(text: str) -> tuple[int, int]:
    """'1920x1080' -> (1920, 1080); anything else is a ``SizeError``."""
    m = _FIT.match(str(text))
    if not m:
        raise SizeError(f"--fit takes WIDTHxHEIGHT like 1920x1080, not '{text}'")
    w, h = int(m.group(1)), int(m.group(2))
    if w < 1 or h < 1:
        raise SizeError(f"--fit needs a width and height of at least 1, not '{text}'")
    return w, h


@dataclass(frozen=True)
class OutputSize:
    """What size the user wants: a factor (any number >= 1), a width, a height, both (that
    exact size), or a box to fit in with the aspect ratio kept. Checked when made."""

    scale: float | None = None
    width: int | None = None
    height: int | None = None
    fit: tuple[int, int] | None = None  # (width, height) of the box

    def __post_init__(self) -> None:
        if self.scale is None and self.width is None and self.height is None and \
                self.fit is None:
            raise SizeError("an output size needs a scale, a width, a height or a box to fit")
        if self.scale is not None:
            if not isinstance(self.scale, (int, float)) or not math.isfinite(self.scale) \
                    or self.scale < 1:
                raise SizeError(f"scale must be a number of at least 1, not {self.scale}")
            if self.width is not None or self.height is not None or self.fit is not None:
                raise SizeError("give either a scale or a width/height/fit, not both")
        for what, v in (("width", self.width), ("height", self.height)):
            if v is not None and (not isinstance(v, int) or v < 1):
                raise SizeError(f"{what} must be a whole number of at least 1, not {v}")
        if self.fit is not None:
            if self.width is not None or self.height is not None:
                raise SizeError("give either --fit or --width/--height, not both")
            if len(self.fit) != 2 or min(self.fit) < 1:
                raise SizeError(f"fit needs a width and height of at least 1, not {self.fit}")

    @classmethod
    def of(cls, scale: float | None = None, width: int | None = None,
           height: int | None = None, fit: str | tuple[int, int] | None = None
           ) -> OutputSize | None:
        """From optional pieces (CLI flags, query parameters): None when nothing was given."""
        if scale is None and width is None and height is None and fit is None:
            return None
        box = parse_fit(fit) if isinstance(fit, str) else (tuple(fit) if fit else None)
        return cls(scale=scale, width=width, height=height, fit=box)  # type: ignore[arg-type]

    @property
    def integer_scale(self) -> int | None:
        """The factor when it is a whole number (a model may ship it), else None."""
        if self.scale is not None and float(self.scale).is_integer():
            return int(self.scale)
        return None

    def target(self, width: int, height: int) -> tuple[int, int]:
        """The output (width, height) for a ``width`` x ``height`` input."""
        def rnd(x: float) -> int:
            return max(1, int(math.floor(x + 0.5)))

        if self.scale is not None:
            return rnd(width * self.scale), rnd(height * self.scale)
        if self.fit is not None:
            bw, bh = self.fit
            if bw * height <= bh * width:  # the width is the tighter side
                return bw, rnd(height * bw / width)
            return rnd(width * bh / height), bh
        if self.width is not None and self.height is not None:
            return self.width, self.height
        if self.width is not None:
            return self.width, rnd(height * self.width / width)
        assert self.height is not None
        return rnd(width * self.height / height), self.height

    def label(self) -> str:
        """For output file names: 'x1.5', 'w1920', 'h1080', '1920x1080', 'fit1920x1080'."""
        if self.scale is not None:
            return f"x{self.scale:g}"
        if self.fit is not None:
            return f"fit{self.fit[0]}x{self.fit[1]}"
        if self.width is not None and self.height is not None:
            return f"{self.width}x{self.height}"
        return f"w{self.width}" if self.width is not None else f"h{self.height}"

    def describe(self) -> str:
        if self.scale is not None:
            return f"{self.scale:g}x"
        if self.fit is not None:
            return f"fit {self.fit[0]}x{self.fit[1]}"
        if self.width is not None and self.height is not None:
            return f"{self.width}x{self.height}"
        return f"width {self.width}" if self.width is not None else f"height {self.height}"


def choose_scale(factor: float, scales: Iterable[int]) -> int:
    """The model scale for an enlargement by ``factor``: itself if shipped, else the nearest
    shipped scale at or above it, else the largest one."""
    avail = sorted({int(s) for s in scales})
    if not avail:
        raise SizeError("the model ships no scale to run")
    above = [s for s in avail if s >= factor - 1e-9]
    return above[0] if above else avail[-1]


@dataclass(frozen=True)
class SizePlan:
    """What runs for one image: the model at ``model_scale``, then a resize to ``out_size``
    (width, height) when that differs from the model's own output."""

    size: OutputSize | None
    in_size: tuple[int, int]
    model_scale: int
    out_size: tuple[int, int]

    @property
    def model_size(self) -> tuple[int, int]:
        return self.in_size[0] * self.model_scale, self.in_size[1] * self.model_scale

    @property
    def resize(self) -> bool:
        return self.out_size != self.model_size

    def describe(self, name: str) -> str:
        """'span x4 -> resize to 1.5x (768x512)', or 'span x4' when nothing is resized."""
        ran = f"{name} x{self.model_scale}"
        if not self.resize:
            return ran
        what = self.size.describe() if self.size is not None else "size"
        return f"{ran} -> resize to {what} ({self.out_size[0]}x{self.out_size[1]})"


MAX_ENLARGEMENT = 16
"""An output may have at most this many times the pixels allowed in (what x4 gives at the
input limit): ``--fit 100000x100000`` on a thumbnail must not exhaust memory."""


def plan_size(size: OutputSize | int | float, width: int, height: int,
              scales: Iterable[int], *, max_pixels: int | None = None) -> SizePlan:
    """The plan for a ``width`` x ``height`` image given the model's shipped ``scales``; an
    integer factor the model ships is its own plan (no resize). ``SizeError`` when the target
    would be smaller than the input (srlab enlarges) or, given the input limit
    ``max_pixels``, above ``MAX_ENLARGEMENT`` times it."""
    if not isinstance(size, OutputSize):
        size = OutputSize(scale=size)
    scales = list(scales)
    out_w, out_h = size.target(width, height)
    if out_w < width or out_h < height:
        raise SizeError(f"{width}x{height} is already larger than {size.describe()} "
                        f"({out_w}x{out_h}); srlab only enlarges")
    if max_pixels and out_w * out_h > MAX_ENLARGEMENT * max_pixels:
        raise SizeLimitError(f"{size.describe()} of {width}x{height} is {out_w}x{out_h} = "
                        f"{out_w * out_h:,} pixels, above {MAX_ENLARGEMENT} x the input limit "
                        f"of {max_pixels:,}")
    whole = size.integer_scale
    if whole is not None and whole in scales:
        return SizePlan(size, (width, height), whole, (width * whole, height * whole))
    factor = max(out_w / width, out_h / height)
    return SizePlan(size, (width, height), choose_scale(factor, scales), (out_w, out_h))


def _to_dtype(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype == np.uint8 or dtype == np.uint16:
        return np.clip(np.round(x), 0, 255 if dtype == np.uint8 else 65535).astype(dtype)
    return np.clip(x, 0, 1).astype(dtype)


def _resize_rows(arr: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """MATLAB bicubic (antialiased when shrinking) of an HxWxC array, by output row strips
    so the float64 working memory is a strip, not the whole image; same dtype out."""
    h, w = arr.shape[:2]
    ih, wh = resize_taps(h, out_h, out_h / h)
    iw, ww = resize_taps(w, out_w, out_w / w)
    out = np.empty((out_h, out_w, arr.shape[2]), arr.dtype)
    for r0 in range(0, out_h, _STRIP_ROWS):
        r1 = min(out_h, r0 + _STRIP_ROWS)
        rows = np.zeros((r1 - r0, w, arr.shape[2]), np.float64)
        for k in range(ih.shape[1]):
            rows += wh[r0:r1, k, None, None] * arr[ih[r0:r1, k]]
        strip = np.zeros((r1 - r0, out_w, arr.shape[2]), np.float64)
        for k in range(iw.shape[1]):
            strip += ww[None, :, k, None] * rows[:, iw[:, k]]
        out[r0:r1] = _to_dtype(strip, arr.dtype)
    return out


def finish(arr: np.ndarray, plan: SizePlan) -> np.ndarray:
    """The network's output resized to ``plan.out_size`` (unchanged when no resize is
    planned): same layout and dtype, uint8/uint16 rounded and clipped, float clipped to 0..1.
    Alpha is resized like the colour channels."""
    if not plan.resize:
        return arr
    out_w, out_h = plan.out_size
    gray = arr.ndim == 2
    data = arr[..., None] if gray else arr
    res = _resize_rows(data, out_h, out_w)
    return res[..., 0] if gray else res

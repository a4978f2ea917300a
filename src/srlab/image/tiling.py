"""Tiled inference: run any model on an image piece by piece with bounded memory.

Each tile's core is computed from the core plus ``overlap`` LR pixels of real context on
every side, and only the core of the output is kept. When ``overlap`` is at least the
model's receptive field, every output pixel sees exactly the inputs it would see in one
untiled pass, so the stitched result equals the untiled one (up to float rounding) — no
seams, and no blending weights needed. The output is written straight into an array of the
input's dtype (uint8 stays uint8), so peak memory is the output image plus one tile's
activations, whatever the image size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

__all__ = ["tiled_apply", "tile_grid", "to_float", "from_float"]

TensorFn = Callable[[torch.Tensor], torch.Tensor]


def _peak(dtype: np.dtype) -> float:
    return float(np.iinfo(dtype).max) if np.issubdtype(dtype, np.integer) else 1.0


def to_float(arr: np.ndarray) -> torch.Tensor:
    """HxWxC array (uint8, uint16 or float in [0, 1]) -> 1xCxHxW float32 tensor."""
    t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32) / _peak(arr.dtype))
    return t.permute(2, 0, 1).unsqueeze(0)


def from_float(t: torch.Tensor, dtype: np.dtype) -> np.ndarray:
    """1xCxHxW float tensor -> HxWxC array of ``dtype``, rounded and clipped for integers.

    NaN (a diverged net's output, e.g. a snapshot just before the divergence guard rolls
    back) becomes 0: casting NaN to an integer is undefined and numpy warns about it. One
    reduction detects it, so ``nan_to_num``'s extra passes and mask run only on such output.

    The result may be a strided view (HWC over CHW memory): callers that store it copy it
    anyway, and making it contiguous here would be one more pass over the output.
    """
    arr = t.squeeze(0).permute(1, 2, 0).float().numpy()
    if np.issubdtype(dtype, np.integer):
        peak = _peak(dtype)
        scaled = np.multiply(arr, peak)  # the one float temporary; the rest is in place
        np.rint(scaled, out=scaled)
        np.clip(scaled, 0, peak, out=scaled)
        if np.isnan(scaled.sum(dtype=np.float32)):
            np.nan_to_num(scaled, copy=False, nan=0.0)
        return scaled.astype(dtype)
    return arr.astype(dtype, copy=False)


def tile_grid(length: int, tile: int) -> Iterator[tuple[int, int]]:
    """Start/stop of consecutive cores of at most ``tile`` pixels covering [0, length)."""
    for start in range(0, length, tile):
        yield start, min(start + tile, length)


def tiled_apply(
    fn: TensorFn,
    img: np.ndarray,
    *,
    scale: int,
    tile: int = 0,
    overlap: int = 0,
    on_tile: Callable[[], None] | None = None,
) -> np.ndarray:
    """Apply ``fn`` (1xCxhxw -> 1xCx(sh)x(sw) float tensors) to an HxWxC image by tiles.

    ``tile`` <= 0 or a tile larger than the image means one pass over the whole image.
    """
    h, w, c = img.shape
    if tile <= 0 or (tile >= h and tile >= w):
        with torch.inference_mode():
            return from_float(fn(to_float(img)), img.dtype)
    out: np.ndarray | None = None
    with torch.inference_mode():  # once, not per tile: the loop stays cheap for small tiles
        for y0, y1 in tile_grid(h, tile):
            py0, py1 = max(0, y0 - overlap), min(h, y1 + overlap)
            for x0, x1 in tile_grid(w, tile):
                px0, px1 = max(0, x0 - overlap), min(w, x1 + overlap)
                sr = fn(to_float(img[py0:py1, px0:px1]))
                oy, ox = (y0 - py0) * scale, (x0 - px0) * scale
                core = sr[..., oy : oy + (y1 - y0) * scale, ox : ox + (x1 - x0) * scale]
                part = from_float(core, img.dtype)
                if out is None:
                    out = np.empty((h * scale, w * scale, part.shape[2]), dtype=img.dtype)
                out[y0 * scale : y1 * scale, x0 * scale : x1 * scale] = part
                if on_tile is not None:
                    on_tile()
    assert out is not None
    return out

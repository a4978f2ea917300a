"""How much LR context an ncnn peer's tiles need so that tiled output == one pass (within 2
grey levels), measured on a photo: the ``context`` of each model in
``srlab.eval.peers.ncnn.NCNN_MODELS``.

Method: the one-pass output of a ``--size`` square photo (the bundled sample, resized) is
the reference. A central ``--tile`` core is then run with ``--max-context`` pixels of real
context around it; the core's pixels at distance >= d from that crop's edge are what a tile
with context d keeps, so the largest grey-level error among them, for every d, gives the
smallest context that holds (the "needed" column). ``--verify`` then runs the real tiled
pass (srlab's one tiling, ``Upscaler.upscale_array(tile=..., overlap=context)``) with the
stored context and reports its largest difference from the one pass: the bar is <= 2.

Slow for realesrgan-x4plus (RRDBNet, 16.7M parameters): minutes per pass on 2 cores.
Usage: python tools/peer_context.py [--peer NAME ...] [--size 300] [--tile 128] [--verify]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from srlab.eval.peers.ncnn import NCNN_MODELS, ncnn_upscaler
from srlab.eval.speed import load_average, lr_image


def error_by_distance(one: np.ndarray, crop_out: np.ndarray, y0: int, x0: int, scale: int,
                      max_context: int) -> list[int]:
    """Largest |difference| (grey levels) between the crop's output and the one pass over
    the crop pixels at LR distance >= d from the crop's edge, for d = 0 .. max_context."""
    ch, cw = crop_out.shape[0] // scale, crop_out.shape[1] // scale
    ref = one[y0 * scale : (y0 + ch) * scale, x0 * scale : (x0 + cw) * scale].astype(int)
    diff = np.abs(crop_out.astype(int) - ref)
    out = []
    for d in range(max_context + 1):
        inner = diff[d * scale : (ch - d) * scale, d * scale : (cw - d) * scale]
        out.append(int(inner.max()) if inner.size else 0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peer", action="append", choices=list(NCNN_MODELS), default=None)
    ap.add_argument("--size", type=int, default=300)
    ap.add_argument("--tile", type=int, default=128)
    ap.add_argument("--max-context", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--verify", action="store_true",
                    help="also run the tiled pass with the stored context (slow for RRDBNet)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    img = lr_image(args.size, args.size)
    print(f"{args.size}x{args.size} photo, {args.tile} px tiles, {args.threads} threads; "
          f"load average {load_average():.1f}")
    print("| peer | scale | needed context (<= 2 levels) | stored context | "
          "tiled vs one pass, max levels |")
    print("|---|---|---|---|---|")
    for name in args.peer or list(NCNN_MODELS):
        model = NCNN_MODELS[name]
        scale = max(model.files)
        up = ncnn_upscaler(name, scale)
        t = time.perf_counter()
        one = up.upscale_array(img)
        m = args.max_context
        c0 = (args.size - args.tile) // 2
        y0 = x0 = max(0, c0 - m)
        y1 = x1 = min(args.size, c0 + args.tile + m)
        crop_out = up.upscale_array(img[y0:y1, x0:x1])
        errs = error_by_distance(one, crop_out, y0, x0, scale, min(m, c0))
        needed = next((d for d in range(len(errs)) if max(errs[d:]) <= 2), None)
        verified = "-"
        if args.verify:
            tiled = up.upscale_array(img, tile=args.tile, overlap=model.context)
            diff = np.abs(tiled.astype(int) - one.astype(int)).max(axis=2)
            wy, wx = np.unravel_index(int(diff.argmax()), diff.shape)
            verified = (f"{int(diff.max())} (at LR y={wy // scale}, x={wx // scale}; "
                        f"{int((diff > 2).sum())} HR px above 2)")
        needed_text = str(needed) if needed is not None else f"> {len(errs) - 1}"
        print(f"| {name} | x{scale} | {needed_text} | {model.context} | {verified} |  "
              f"({time.perf_counter() - t:.0f} s; errors at d=0,8,16,..: {errs[::8]})",
              flush=True)
    print(f"load average at the end {load_average():.1f}")


if __name__ == "__main__":
    main()

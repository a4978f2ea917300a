"""Which convolutions of a model cost PSNR when quantised to int8, measured on held-out
*training* images (never a benchmark set), and the smallest set kept in float that brings
int8 within a bound of float32.

Method: the full int8 recipe (runtime.int8.INT8_RECIPE) is the baseline; each conv is kept
float on its own and the PSNR it wins back is recorded; then the convs are added in that
order, best first, until the int8 model is within ``--bound`` dB of float32 on the same
images. Prints both tables and the ``keep_convs`` tuple to put in the recipe.

Usage: python tools/int8_sensitivity.py span -s 4 [--images 12] [--bound 0.015]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

import numpy as np

from srlab.api import load_model
from srlab.image.datasets import load_pairs, shared_dir
from srlab.image.metrics import psnr
from srlab.runtime.int8 import INT8_RECIPE, calibration_patches, quantize_int8
from srlab.runtime.onnx import OnnxUpscaler, exported_path, make_session


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("-s", "--scale", type=int, default=4)
    ap.add_argument("--images", type=int, default=12)
    ap.add_argument("--bound", type=float, default=0.015)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-keep", type=int, default=8)
    args = ap.parse_args()

    up = load_model(args.model, args.scale, backend="torch")
    # BSDS500-test: a training folder the calibration patches do not come from
    held = load_pairs(shared_dir() / "datasets" / "train" / "BSDS500-test", args.scale)
    held = held[: args.images]
    ref = float(np.mean([psnr(up.upscale_array(lr), hr, crop_border=args.scale)
                         for _, lr, hr in held]))
    src = exported_path(up)
    cal = calibration_patches(args.scale, up.in_channels, INT8_RECIPE)
    import onnx

    n_convs = sum(n.op_type == "Conv" for n in onnx.load(str(src)).graph.node)

    def score(keep: tuple[int, ...]) -> float:
        recipe = dataclasses.replace(INT8_RECIPE, keep_convs=keep)
        with tempfile.TemporaryDirectory() as tmp:
            out = quantize_int8(src, Path(tmp) / "q.onnx", cal, recipe)
            q = OnnxUpscaler(make_session(out, args.threads), like=up)
            return float(np.mean([psnr(q.upscale_array(lr), hr, crop_border=args.scale)
                                  for _, lr, hr in held])) - ref

    base = score(())
    print(f"{args.model} x{args.scale}: float32 {ref:.4f} dB on {len(held)} BSDS500-test "
          f"images; int8 (recipe) {base:+.4f} dB; {n_convs} convs, the last kept float")
    gains = []
    for i in range(n_convs - 1):
        d = score((i,))
        gains.append((d - base, i))
        print(f"keep conv {i:2d} float: {d:+.4f} dB (wins back {d - base:+.4f})", flush=True)
    order = [i for _, i in sorted(gains, reverse=True)]
    keep: tuple[int, ...] = ()
    for i in order[: args.max_keep]:
        keep = tuple(sorted((*keep, i)))
        d = score(keep)
        print(f"keep {keep}: {d:+.4f} dB", flush=True)
        if d >= -args.bound:
            break
    print(f"keep_convs = {keep}")


if __name__ == "__main__":
    main()

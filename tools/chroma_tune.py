"""Choose the guided-chroma policy (``runtime.upscaler.ChromaPolicy``) on training images.

For a luma model (default span-real) on the first ``-n`` images of a training folder (default
BSDS500-train: never a benchmark set), each seeded track's LR (``degrade.TRACKS``) is
upscaled with bicubic chroma and with guided chroma at each radius x eps; the table gives
the mean PSNR of Cb and Cr against the HR (``metrics.ycbcr_psnr``, border = scale). The
luma is the network's in every column, so only the colour differs.

Usage: python tools/chroma_tune.py [-m span-real] [--set DIR] [-n 16]
         [--track jpeg75 --track real --track camnoise5 --track jpeg90]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from srlab.api import load_model
from srlab.image.datasets import load_pairs, shared_dir
from srlab.image.metrics import ycbcr_psnr
from srlab.runtime.upscaler import ChromaPolicy

RADII = (1, 2)
EPSILONS = (1e-4, 1e-3, 1e-2)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-m", "--model", default="span-real")
    ap.add_argument("-s", "--scale", type=int, default=4, choices=(2, 3, 4))
    ap.add_argument("--set", type=Path,
                    default=shared_dir() / "datasets" / "train" / "BSDS500-train")
    ap.add_argument("-n", type=int, default=16, help="images per track (default 16)")
    ap.add_argument("--track", action="append", metavar="NAME")
    args = ap.parse_args()
    tracks = args.track or ["jpeg75", "real", "camnoise5", "jpeg90"]
    up = load_model(args.model, args.scale, backend="torch")
    if up.in_channels != 1:
        print(f"chroma_tune: {args.model} is an RGB network: its colour is its own",
              file=sys.stderr)
        return 2
    policies: dict[str, ChromaPolicy | None] = {"bicubic": None}
    policies.update({f"r{r} eps {e:g}": ChromaPolicy(r, e) for r in RADII for e in EPSILONS})
    print("| track | " + " | ".join(policies) + " |")
    print("|---" * (len(policies) + 1) + "|")
    for track in tracks:
        pairs = load_pairs(args.set, args.scale, track)[: args.n]
        cells = []
        for policy in policies.values():
            up.chroma = policy
            scores = [ycbcr_psnr(up.upscale_array(lr), hr, crop_border=args.scale)[1:]
                      for _, lr, hr in pairs]
            cb, cr = np.mean(scores, axis=0)
            cells.append(f"{cb:.2f} / {cr:.2f}")
        print(f"| {track} | " + " | ".join(cells) + " |", flush=True)
    print(f"\nmean Cb / Cr PSNR (dB) of {args.model} x{args.scale} on {len(pairs)} images of "
          f"{args.set.name} per track; command: python tools/chroma_tune.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Default-path speed of auto on a damaged photo against span-real alone (issue 50's bar:
within 1.3x), both on their default backends, interleaved (``eval.speed.time_interleaved``).

The photo is srlab's procedural sample scene (``eval.speed.procedural_image``) at the given LR
size, saved as JPEG ``--quality`` and read back with its file (so auto reads the tables too).
Rows: auto (estimate + the chosen strength's network), the estimate alone, span-real, span,
and each blend step on its backend.

Usage: nice -n 10 python tools/auto_speed.py [--size 320x240] [--repeats 5] [--quality 60]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    from PIL import Image

    from srlab.api import load_model
    from srlab.eval.speed import Runner, load_average, procedural_image, time_interleaved
    from srlab.image.condition import STEPS, estimate
    from srlab.image.datasets import load_rgb

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="320x240")
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--quality", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    w, h = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "photo.jpg"
        Image.fromarray(procedural_image(h, w)).save(path, quality=args.quality)
        img = load_rgb(path)
        auto = load_model("auto", args.scale)
        cond = estimate(img, path)
        print(f"input {w}x{h} JPEG q{args.quality}: auto reads {cond.decision()}")
        runners = [Runner("auto (default path)", "auto", "auto", args.scale,
                          lambda a: auto.upscale_array(a, path=path)),
                   Runner("estimate alone", "auto", "-", args.scale,
                          lambda a: np.asarray(estimate(a, path).denoise))]
        for s in STEPS:
            up = load_model(scale=args.scale, denoise=s)
            runners.append(Runner(f"{up.name} [{up.backend}]", up.name, up.backend,
                                  args.scale, up.upscale_array))
        times = time_interleaved(runners, img, args.repeats)
    ref = statistics.median(times[runners[-1].label])  # span-real on its backend
    print(f"median of {args.repeats}, {args.threads} threads, load average {load_average():.1f}")
    print("| run | median s | x span-real |\n|---|---|---|")
    for r in runners:
        m = statistics.median(times[r.label])
        print(f"| {r.label} | {m:.3f} | {m / ref:.2f} |")


if __name__ == "__main__":
    main()

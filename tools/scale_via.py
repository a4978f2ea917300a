"""How much an output size other than the network's costs: x3 by running the x4 network and
shrinking its output to x3 (``image.outsize``: what ``srlab upscale --scale 3`` does with a
x4-only model such as span-real) against the native x3 network, where a model ships both.

By the standard protocol (``load_pairs``: modcrop + MATLAB-bicubic LR; ``evaluate``: Y
BT.601 PSNR/SSIM, border = the target scale). Both rows see the same LR and HR images.

    PYTHONPATH=src python tools/scale_via.py -m span -m span-fast \\
        -d ../shared/datasets/benchmark/Set14 -d ../shared/datasets/benchmark/BSD100 \\
        --readme docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import numpy as np

from srlab.api import load_model
from srlab.eval.speed import load_average
from srlab.eval.tables import update_readme
from srlab.image.datasets import load_pairs, shared_dir
from srlab.image.metrics import evaluate
from srlab.image.outsize import OutputSize, finish, plan_size


def score(model: str, via: int, target: int, pairs: list) -> tuple[float, float]:
    """Mean PSNR/SSIM of ``model`` run at x``via`` and resized to x``target``."""
    up = load_model(model, via, backend="torch")  # the trained float32 numbers
    ps, ss = [], []
    for _, lr, hr in pairs:
        plan = plan_size(OutputSize(scale=target), lr.shape[1], lr.shape[0], [via])
        sr = finish(up.upscale_array(lr), plan)
        s = evaluate(sr, hr, scale=target)
        ps.append(s.psnr)
        ss.append(s.ssim)
    return float(np.mean(ps)), float(np.mean(ss))


def main() -> int:
    bench = shared_dir() / "datasets" / "benchmark"
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-m", "--model", action="append", default=None)
    ap.add_argument("-d", "--dataset", action="append", type=Path, default=None)
    ap.add_argument("--target", type=int, default=3, help="output scale (default: 3)")
    ap.add_argument("--via", type=int, default=4, help="network scale run (default: 4)")
    ap.add_argument("--readme", type=Path, default=None,
                    help="write the table between '<!-- srlab:scale-via -->' markers")
    args = ap.parse_args()
    models = args.model or ["span", "span-fast"]
    sets = args.dataset or [bench / "Set14", bench / "BSD100"]
    rows = []
    for ds in sets:
        pairs = load_pairs(ds, args.target)
        for m in models:
            native = score(m, args.target, args.target, pairs)
            via = score(m, args.via, args.target, pairs)
            rows.append((m, ds.name, native, via))
            print(f"{m} {ds.name}: native x{args.target} {native[0]:.2f} dB, "
                  f"x{args.via} -> x{args.target} {via[0]:.2f} dB", file=sys.stderr)
    lines = [f"| model | set | native x{args.target} | x{args.via} -> resize to "
             f"x{args.target} | difference |", "|---|---|---|---|---|"]
    for m, ds, (pn, sn), (pv, sv) in rows:
        lines.append(f"| {m} | {ds} | {pn:.2f} / {sn:.4f} | {pv:.2f} / {sv:.4f} | "
                     f"{pv - pn:+.2f} dB |")
    cmd = "PYTHONPATH=src python tools/scale_via.py " + " ".join(
        shlex.quote(a) for a in sys.argv[1:])
    lines += ["", f"PSNR (dB) / SSIM on Y, border = {args.target}, MATLAB-bicubic LR; the "
              f"x{args.via} output shrunk by MATLAB's antialiased bicubic (`image.outsize`, as "
              f"`srlab upscale --scale {args.target}` does with a x{args.via}-only model). "
              f"Made by `{cmd}` (1-minute load {load_average():.1f}; scores do not depend "
              "on load)."]
    text = "\n".join(lines)
    print(text)
    if args.readme:
        update_readme(args.readme, "scale-via", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

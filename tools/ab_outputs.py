"""Outputs of several models (srlab's or peers') on real photos and on seeded degraded tracks,
one folder per model, for a blind A/B with ../shared/tools/ab_sheet.py.

Sources: the images of a folder without ground truth (default RealSRSet, BSRGAN's 20 real
degraded photos), and the LR inputs of benchmark tracks (``srlab benchmark --degrade``'s
seeded LR, e.g. jpeg75 and real) of a benchmark set (default BSD100). Each output is written
once, as OUT/<model>/<source>_<stem>.png (source: "photo" or the track), so a run can be
stopped and rerun (files present are kept) and a model added later gets the same inputs.

Usage: python tools/ab_outputs.py OUT -m span-real-gan -m realesr-animevideov3
         [--weights MODEL=FILE] [--real DIR] [--set DIR] [--track jpeg75 --track real] [-n 20]
Then:  python ../shared/tools/ab_sheet.py SHEETS KEY.json SEED A=OUT/A B=OUT/B 30
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from srlab.eval.noref import expand, model_input
from srlab.eval.runners import make_upscaler
from srlab.image.datasets import load_pairs, shared_dir
from srlab.image.imageio import load_image, save_image
from srlab.image.niqe import load_model, niqe


def sources(real: Path, dataset: Path, tracks: list[str], scale: int,
            n: int) -> list[tuple[str, np.ndarray]]:
    """(name, LR) of every input: the real photos, then the first ``n`` images of each track."""
    out = [(f"photo_{f.stem}", model_input(load_image(f).array)) for f in expand([real])]
    for track in tracks:
        for name, lr, _ in load_pairs(dataset, scale, track)[:n]:
            out.append((f"{track}_{Path(name).stem}", lr))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("-m", "--model", action="append", required=True, metavar="NAME")
    ap.add_argument("-s", "--scale", type=int, default=4, choices=(2, 3, 4))
    ap.add_argument("--weights", action="append", default=[], metavar="MODEL=FILE")
    ap.add_argument("--real", type=Path,
                    default=shared_dir() / "datasets" / "real" / "RealSRSet")
    ap.add_argument("--set", type=Path, default=shared_dir() / "datasets" / "benchmark" / "BSD100")
    ap.add_argument("--track", action="append", metavar="NAME")
    ap.add_argument("-n", type=int, default=20, help="images per track (default 20)")
    ap.add_argument("--niqe", action="store_true",
                    help="print each model's mean NIQE per source (lower is better)")
    args = ap.parse_args()
    tracks = args.track or ["jpeg75", "real"]
    weights = dict(w.split("=", 1) for w in args.weights)
    inputs = sources(args.real, args.set, tracks, args.scale, args.n)
    pristine = load_model() if args.niqe else None
    for model in args.model:
        folder = args.out / model
        folder.mkdir(parents=True, exist_ok=True)
        fn = None
        scores: dict[str, list[float]] = {}
        for name, lr in inputs:
            path = folder / f"{name}.png"
            if path.is_file():
                sr = load_image(path).array
            else:
                if fn is None:
                    fn, _, _ = make_upscaler(model, args.scale, weights.get(model))
                sr = fn(lr)
                save_image(sr, path)
            if pristine is not None:
                scores.setdefault(name.split("_")[0], []).append(niqe(sr, pristine))
        summary = ", ".join(f"{k} {np.mean(v):.3f} ({len(v)})" for k, v in scores.items())
        print(f"{model}: {len(inputs)} outputs in {folder}"
              + (f"; mean NIQE {summary}" if summary else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

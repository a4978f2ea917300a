"""Are auto's misses on a labelled class wrong by PSNR? The best step of the images it put
below the class's bar.

The labelled set's bar asks a strength >= 0.5 for every damaged class; for a class whose damage
is often mild (JPEG then resize: the resize hides most of it) an image read as clean may be
one a blend does not help. For each image of the class this prints auto's step, the step of
the span/span-real blend that scores best against the HR (Y PSNR, border = scale, the x2
inputs of ``srlab inspect --eval``), and the gain of step 0.5 over step 0; then, for the
misses (step < 0.5) and the hits, the best steps and the mean gain.

Usage: python tools/labelled_misses.py [--class 'JPEG q30-80 then resize'] [--limit 100]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

from srlab.eval.inspect import CLASSES, SCALE, labelled_set, step_models
from srlab.image.condition import STEPS, estimate
from srlab.image.datasets import shared_dir
from srlab.image.metrics import psnr


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--class", dest="label", default="JPEG q30-80 then resize",
                    help="a labelled class, or the start of its label")
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--folder", type=Path,
                    default=shared_dir() / "datasets" / "train" / "BSDS500-test")
    args = ap.parse_args()
    matches = [c for c in CLASSES if c.label.startswith(args.label) and c.kind == "damaged"]
    if len(matches) != 1:
        sys.exit(f"labelled_misses: --class must start one damaged class's label: "
                 f"{', '.join(c.label for c in CLASSES if c.kind == 'damaged')}")
    label = matches[0].label
    nets = step_models()
    rows = []
    print("| image | auto | best step | gain of 0.5 over 0 (dB) |\n|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for smp in labelled_set(args.folder, args.limit, Path(tmp)):
            if smp.label != label:
                continue
            chosen = estimate(smp.lr, smp.path).denoise
            p = {s: psnr(nets[s].upscale_array(smp.lr), smp.hr, crop_border=SCALE)
                 for s in STEPS}
            best = max(STEPS, key=lambda s, p=p: p[s])
            rows.append((chosen, best, p[0.5] - p[0.0]))
            print(f"| {smp.index} | {chosen:g} | {best:g} | {p[0.5] - p[0.0]:+.3f} |", flush=True)
    chosen, best, gain = (np.array(c) for c in zip(*rows, strict=True))
    for name, sel in (("misses (auto < 0.5)", chosen < 0.5), ("hits (auto >= 0.5)", chosen >= 0.5)):
        if not sel.any():
            continue
        counts = Counter(best[sel].tolist())
        steps = ", ".join(f"{s:g}: {counts[s]}" for s in STEPS if counts[s])
        print(f"\n{label}, {name}: {int(sel.sum())} of {len(rows)} images; best step {steps}; "
              f"mean gain of 0.5 over 0 {gain[sel].mean():+.3f} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

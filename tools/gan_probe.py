"""Does a GAN run paint a grid? The lattice ratio and NIQE of its generators on real photos.

A generator can fool its discriminator with a faint grid at the pixel shuffle's period; the
EMA weights a run ships average such a grid away, so the raw generator (in the run's
checkpoint) is where it shows first. For each run directory this upscales a few RealSRSet
photos (no ground truth) with the raw generator and with the EMA (``last.safetensors``),
and prints one markdown row each: ``eval.noref.lattice_ratio`` per photo (about 1-10 for a
natural upscale, hundreds for a gridded one) and the mean NIQE (lower reads as more
natural; NIQE also rewards painted texture, so read it beside the ratio and the eye).
Weights files (``.safetensors``) and model or peer names (their shipped weights) give one row each.

Usage: python tools/gan_probe.py runs/span-real-gan_x4 [more runs or weights]
           [-m span-real] [--photos tiger dog] [--real DIR]
"""

from __future__ import annotations

import argparse
import copy
import shlex
import sys
from pathlib import Path

import numpy as np
import torch

from srlab.eval.noref import lattice_ratio, model_input
from srlab.image.datasets import shared_dir
from srlab.image.imageio import load_image
from srlab.image.niqe import load_model, niqe


def generators(target: Path, arch: str, scale: int):
    """(label, upscaler) of a run's raw generator and EMA, of one weights file, or of a
    model's shipped weights (``target`` a model name such as span-real-gan)."""
    from srlab.api import load_model as load_upscaler

    if not target.exists():  # a model or a peer by name
        from srlab.eval.runners import make_upscaler

        yield f"{target} (shipped)", make_upscaler(str(target), scale)[0]
        return
    if target.is_file():
        yield target.name, load_upscaler(arch, scale, weights=str(target),
                                         backend="torch").upscale_array
        return
    ema = load_upscaler(arch, scale, weights=str(target / "last.safetensors"), backend="torch")
    ck = torch.load(target / "checkpoint.pt", map_location="cpu", weights_only=True)
    raw = copy.deepcopy(ema)
    raw.net.load_state_dict(ck["model"])  # same architecture, the un-averaged weights
    it = int(ck["iteration"])
    yield f"{target.name} raw generator, iteration {it:,}", raw.upscale_array
    yield f"{target.name} EMA, iteration {it:,}", ema.upscale_array


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("targets", type=Path, nargs="+",
                    help="run directories, weights files or model names")
    ap.add_argument("-m", "--model", default="span-real", help="their architecture")
    ap.add_argument("-s", "--scale", type=int, default=4)
    ap.add_argument("--photos", nargs="+", default=["tiger", "dog"])
    ap.add_argument("--real", type=Path,
                    default=shared_dir() / "datasets" / "real" / "RealSRSet")
    args = ap.parse_args()
    torch.set_num_threads(1)
    photos = {p: model_input(load_image(args.real / f"{p}.png").array) for p in args.photos}
    pristine = load_model()
    print(f"| generator | lattice ratio ({', '.join(args.photos)}) | mean NIQE |")
    print("|---|---|---|")
    for target in args.targets:
        for label, up in generators(target, args.model, args.scale):
            outs = [up(lr) for lr in photos.values()]
            ratios = " / ".join(f"{lattice_ratio(o):.0f}" for o in outs)
            print(f"| {label} | {ratios} | {np.mean([niqe(o, pristine) for o in outs]):.2f} |",
                  flush=True)
    print(f"\nMade by `python tools/gan_probe.py {shlex.join(sys.argv[1:])}`.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

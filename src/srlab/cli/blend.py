"""srlab blend: two weights files of one architecture mixed into one (``zoo.blend``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from srlab.cli.common import fraction_of


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("blend", help="mix two weights files of one network into one",
                       description="Write (1 - ALPHA) x A + ALPHA x B, tensor by tensor, as a "
                                   "new weights file: network interpolation (ESRGAN) for "
                                   "weights of your own, e.g. an L1 run and its GAN stage. "
                                   "Both files must be srlab weights of one architecture and "
                                   "scale. Use the result with --weights; the shipped pairs "
                                   "have --denoise and --detail instead.")
    p.add_argument("a", type=Path, metavar="A", help="weights file at ALPHA 0 (.safetensors)")
    p.add_argument("b", type=Path, metavar="B", help="weights file at ALPHA 1 (.safetensors)")
    p.add_argument("--alpha", type=fraction_of("--alpha"), default=0.5, metavar="T",
                   help="share of B, 0..1 (default: 0.5)")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="FILE",
                   help="the blend, a .safetensors file")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from srlab.zoo.blend import blend_files

    meta = blend_files(args.a, args.b, args.alpha, args.output)
    print(f"wrote {args.output}: {meta.arch} x{meta.scale}, {1 - args.alpha:g} x {args.a.name} "
          f"+ {args.alpha:g} x {args.b.name} (its record keeps both recipes)")
    return 0

"""srlab compare: runs and models side by side (``srlab.eval.compare``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from srlab.cli.common import benchmark_sets


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="compare runs and models: tables, bar charts, best/worst",
                       description="Each item is a run directory (runs/NAME: its best weights "
                                   "at its own scale) or a registered model name. Writes "
                                   "compare.md/.csv, PSNR/SSIM bar charts and the best and "
                                   "worst images by MSE.")
    p.add_argument("items", nargs="+", metavar="RUN_OR_MODEL")
    p.add_argument("-s", "--scale", action="append", type=int, choices=(2, 3, 4), metavar="S",
                   help="scales for registry models (repeatable; default: the runs' scales)")
    p.add_argument("-d", "--dataset", action="append", type=Path, metavar="DIR",
                   help="folder of HR images (repeatable; default: Set5 from $SRLAB_SHARED)")
    p.add_argument("-o", "--out", type=Path, default=Path("out/compare"), metavar="DIR")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from srlab.eval.compare import compare
    from srlab.eval.tables import command_line

    datasets = benchmark_sets(args.dataset)
    res = compare(args.items, scales=args.scale, datasets=datasets, out_dir=args.out,
                  command=command_line(), log=lambda line: print(line, file=sys.stderr))
    print(res.table.read_text())
    return 0

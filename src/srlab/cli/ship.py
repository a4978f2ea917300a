"""srlab ship: benchmark a run's weights and install them (``srlab.ship``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from srlab.cli.common import UsageError, add_cache_options


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ship", help="benchmark a run's weights and install them in the package",
                       description="Benchmarks RUN/best.safetensors on Set5/Set14/BSD100/"
                                   "Urban100 and installs it with its measured metadata and "
                                   "a generated model card under src/srlab/weights/.")
    p.add_argument("run", type=Path, nargs="?",
                   help="run directory (runs/NAME), or a weights file no run made whole "
                        "(a blend written by srlab blend)")
    p.add_argument("--which", choices=("best", "last"), default="best")
    p.add_argument("--as", dest="name", default=None, metavar="NAME",
                   help="install under this registered model name instead of the run's "
                        "(e.g. a GAN stage trained from span-real ships as span-real-gan); "
                        "refused unless NAME has the same architecture and scale")
    p.add_argument("--cards", action="store_true",
                   help="instead of shipping a run, rewrite the header of every shipped "
                        "model card from its weights' metadata and shipped run config; "
                        "the measured section is kept as it was shipped")
    p.add_argument("--datasets", nargs="+", default=None, metavar="NAME",
                   help="benchmark sets to measure (default: Set5 Set14 BSD100 Urban100)")
    add_cache_options(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from srlab.ship import DEFAULT_SETS, is_weights_file, rerender_card, ship_run
    from srlab.zoo.registry import ChoiceError

    if args.name is not None and args.cards:
        raise UsageError("--as names the model a run ships as; it does not apply to --cards")
    if args.cards:
        if args.run is not None:
            raise UsageError("--cards rewrites the shipped cards; give no run directory")
        from srlab.zoo.weights import SHIPPED_DIR

        for weights in sorted(SHIPPED_DIR.glob("*.safetensors")):
            if rerender_card(weights):
                print(f"rewrote {weights.with_suffix('.md')}", file=sys.stderr)
        return 0
    if args.run is None:
        raise UsageError("give a run directory (runs/NAME), or --cards")
    if not (args.run.is_dir() or is_weights_file(args.run)):
        raise UsageError(f"not a run directory or a .safetensors file: {args.run}")
    try:
        ship_run(args.run, datasets=tuple(args.datasets or DEFAULT_SETS), which=args.which,
                 cache=args.cache, refresh=args.refresh, name=args.name,
                 log=lambda line: print(line, file=sys.stderr))
    except ChoiceError as exc:  # --as NAME: unknown, another scale or architecture
        raise UsageError(str(exc)) from None
    return 0

"""srlab tune: hyperparameter search with Optuna (``srlab.train.tune``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from srlab.cli.common import int_at_least


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tune", help="hyperparameter search with Optuna (needs srlab[tune])",
                       description="Searches learning rate, weight decay, blocks/channels, "
                                   "loss and optimizer; prunes bad trials on validation PSNR; "
                                   "writes runs/<run.name>/tune.md.")
    p.add_argument("config", type=Path, nargs="?", default=None)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--trials", type=int_at_least(1, "--trials"), default=10, metavar="N")
    p.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                   help="start no new trial after this many seconds")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from srlab.train.config import load_config
    from srlab.train.tune import tune

    res = tune(load_config(args.config, args.overrides), args.trials, timeout=args.timeout)
    import shlex

    print(f"best validation PSNR {res.best_psnr:.3f} dB with: "
          + " ".join(f"--set {shlex.quote(o)}" for o in res.overrides))
    return 0

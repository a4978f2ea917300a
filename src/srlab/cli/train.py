"""srlab train: train a model from a YAML config (``srlab.train.loop``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from srlab.cli.common import int_at_least


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model from a YAML config",
                       description="Train any registered model; artifacts go to "
                                   "runs/<run.name>/. Example configs: configs/*.yaml.")
    p.add_argument("config", type=Path, nargs="?", default=None,
                   help="YAML config (default: built-in defaults)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set optim.lr=1e-3 (repeatable)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run from runs/<run.name>/checkpoint.pt")
    p.add_argument("--kfold", type=int_at_least(2, "--kfold"), default=None, metavar="K",
                   help="K-fold cross-validation over the training images")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from srlab.train.config import load_config

    cfg = load_config(args.config, args.overrides)
    if args.kfold:
        from srlab.train.kfold import kfold

        kfold(cfg, args.kfold, resume=args.resume)
        return 0
    from srlab.train.loop import train

    summary = train(cfg, resume=args.resume)
    if summary.run_dir.joinpath("summary.md").is_file():
        print(summary.run_dir.joinpath("summary.md").read_text())
    return 0

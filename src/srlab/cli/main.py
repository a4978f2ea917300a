"""The ``srlab`` command line: parser, ``main`` and the one place errors become a line.

Layout: one module per verb (``srlab.cli.upscale``, ``.models``, ...), each with
``add_parser(subparsers)`` that declares its arguments (and sets ``handler``) and a handler
``(args) -> int`` that runs it over the library; ``srlab.cli.common`` holds what several
verbs share. Handlers import their task module (and with it torch) lazily, so
``srlab --help`` and ``import srlab.cli`` stay fast.

Errors: any bad input ends with exactly one line on stderr, ``srlab: error: ...``, and a
non-zero exit status — 2 for usage errors (bad option, unknown model, contradictory
arguments), 1 for failures (unreadable image, bad weights file), 130 for Ctrl-C. Unexpected
exceptions print one line too, plus a hint; ``SRLAB_DEBUG=1`` shows the full traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Sequence

from srlab import __version__
from srlab.cli import (
    bench,
    benchmark,
    blend,
    compare,
    demo,
    export,
    inspect,
    models,
    serve,
    ship,
    strip,
    train,
    tune,
    upscale,
)
from srlab.cli.common import PROG, Parser, UsageError, debug, one_line, print_error

__all__ = ["main", "build_parser"]

# the verbs, in the order ``srlab --help`` lists them
_SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    m.add_parser for m in (upscale, models, demo, benchmark, train, ship, compare, tune, serve,
                           export, bench, inspect, strip, blend)
]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG,
        description="srlab: super-resolution on a CPU. Start with 'srlab demo', then "
                    "'srlab upscale photo.jpg'.",
        epilog="Set SRLAB_DEBUG=1 to get a traceback instead of a one-line error.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in _SUBCOMMANDS:
        add(sub)
    return parser


def _known_failure_types() -> tuple[type[BaseException], ...]:
    """Library errors meant for users (one line, exit 1). Imported lazily: imageio is light,
    and WeightsError is only reachable once a handler imported torch anyway."""
    from srlab.image.imageio import ImageError

    types: list[type[BaseException]] = [ImageError, ValueError, OSError]
    weights = sys.modules.get("srlab.zoo.weights")
    if weights is not None:
        types.insert(1, weights.WeightsError)
    peers = sys.modules.get("srlab.eval.peers")
    if peers is not None:  # an OpenCV peer this OpenCV cannot run: its reason is the line
        types.append(peers.PeerUnavailable)
    return tuple(types)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit status (the console script exits with it)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if getattr(args, "handler", None) is None:
            parser.print_help(sys.stderr)
            return 2
        return int(args.handler(args) or 0)
    except SystemExit as exc:  # argparse: --help/--version (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except KeyboardInterrupt:
        if debug():
            traceback.print_exc()
        print(f"\n{PROG}: interrupted", file=sys.stderr)
        return 130
    except UsageError as exc:
        if debug():
            traceback.print_exc()
        print_error(str(exc))
        return 2
    except BrokenPipeError:  # e.g. `srlab models | head`: stop quietly
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 1
    except Exception as exc:  # noqa: BLE001 - the one place that turns errors into a line
        if debug():
            traceback.print_exc()
        if isinstance(exc, _known_failure_types()):
            if isinstance(exc, FileNotFoundError) and exc.filename:
                print_error(f"{exc.filename}: no such file or folder")
            elif isinstance(exc, OSError) and exc.strerror and exc.filename:
                print_error(f"{exc.filename}: {exc.strerror}")
            else:
                print_error(str(exc) or type(exc).__name__)
        else:
            hint = "" if debug() else " (run with SRLAB_DEBUG=1 for a traceback)"
            print_error(f"unexpected {type(exc).__name__}: {one_line(str(exc))}{hint}")
        return 1


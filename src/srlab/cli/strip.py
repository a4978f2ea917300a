"""srlab strip: the same crop of each photo through several models, one PNG (``eval.strips``).

For photos without ground truth (RealSRSet, your own): the benchmark's ``--strip`` needs HR
images, this does not. Peers (Real-ESRGAN, the published SPAN, OpenCV's) run exactly as in
the benchmark tables and are labelled as peers.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from srlab.cli.common import UsageError, check_model, int_at_least, set_threads

_AT = re.compile(r"^(?P<path>.+)@(?P<x>\d+),(?P<y>\d+)$")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("strip", help="the same crop of photos through several models, one PNG",
                       description="One row per photo, one column per model (in the order "
                                   "given): a crop of each photo upscaled by each model, for "
                                   "the eye (no ground truth needed). Only a window around "
                                   "the crop is upscaled, so slow peers stay cheap.")
    p.add_argument("photos", nargs="+", metavar="PHOTO[@X,Y]",
                   help="an image file; @X,Y puts the crop's top-left corner there (input "
                        "pixels; default: the centre)")
    p.add_argument("-m", "--model", action="append", required=True, metavar="NAME",
                   help="model or peer, one column each (repeatable), e.g. -m bicubic-matlab "
                        "-m span-real -m realesrgan-x4plus")
    p.add_argument("-s", "--scale", type=int, choices=(2, 3, 4), default=4, metavar="S")
    p.add_argument("--crop", type=int_at_least(8, "--crop"), default=48, metavar="N",
                   help="crop side in input pixels (default 48: 192 px per cell at x4)")
    p.add_argument("--context", type=int_at_least(0, "--context"), default=24, metavar="N",
                   help="input pixels around the crop the models also see (default 24)")
    p.add_argument("-o", "--out", type=Path, required=True, metavar="PNG")
    p.add_argument("--threads", type=int_at_least(1, "--threads"), default=None, metavar="N")
    p.set_defaults(handler=run)


def _photo(text: str):
    from srlab.eval.strips import PhotoCrop

    m = _AT.match(text)
    path, at = (Path(m["path"]), (int(m["x"]), int(m["y"]))) if m else (Path(text), None)
    if not path.is_file():
        raise UsageError(f"photo not found: {path}")
    return PhotoCrop(path, at)


def run(args: argparse.Namespace) -> int:
    from srlab.api import load_model
    from srlab.eval.peers import PEERS, check_peer_scale
    from srlab.eval.runners import make_upscaler
    from srlab.eval.strips import photo_strip

    for name in args.model:
        if name in PEERS:
            if (why := check_peer_scale(name, args.scale)) is not None:
                raise UsageError(why)
        else:
            check_model(name, args.scale, allow_auto=True)
    if args.out.suffix.lower() != ".png":
        raise UsageError(f"--out must be a .png file, got {args.out}")
    photos = [_photo(t) for t in args.photos]
    set_threads(args.threads)
    try:
        photo_strip(args.model, args.scale, photos, args.out, crop=args.crop,
                    context=args.context, report=lambda line: print(line, file=sys.stderr),
                    make=lambda n, s: (load_model(n, s, backend="torch") if n == "auto"
                                       else make_upscaler(n, s)[0]))
    except ValueError as exc:  # a crop outside its photo
        raise UsageError(str(exc)) from None
    print(f"wrote {args.out}", file=sys.stderr)
    return 0

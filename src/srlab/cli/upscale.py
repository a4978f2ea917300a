"""srlab upscale: files and folders in, upscaled files out (``srlab.batch``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from srlab.cli.common import (
    DEFAULT_MAX_PIXELS,
    PROG,
    UsageError,
    add_backend_arg,
    add_common_model_args,
    fraction,
    int_at_least,
    one_line,
    pixel_count,
    set_threads,
    usage_message,
    warn_if_untrained,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "upscale",
        help="upscale image files or folders",
        description="Upscale images with a registered model. Inputs are image files or "
                    "folders (the images directly inside). Without -o, each result is "
                    "written next to its input as NAME_x{scale}.png. With one input file, "
                    "-o FILE.ext writes exactly that file (format from the extension). "
                    "Otherwise -o names a folder (created if needed) and outputs keep their "
                    "input's file name and format (GIF becomes PNG) unless --ext is given. "
                    "Reads PNG, JPEG, BMP, TIFF, WebP and GIF, 8 or 16 bit, gray, colour or "
                    "with alpha; keeps bit depth, alpha and colour profile. An input file is "
                    "never overwritten without --force. Exit status: 0 if every image was "
                    "written, 1 if any failed, 2 for usage errors.",
    )
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT",
                   help="image file or folder")
    p.add_argument("-o", "--output", default=None, metavar="OUT",  # str: keeps a trailing /
                   help="output file (one input) or folder")
    add_common_model_args(p)
    add_backend_arg(p)
    p.add_argument("--tile", type=int_at_least(0, "--tile"), default=0, metavar="N",
                   help="upscale in N x N input tiles to bound memory; 0 = automatic: "
                        "images above 2 Mpx use 512 (default: 0)")
    p.add_argument("--overlap", type=int_at_least(0, "--overlap"), default=None, metavar="N",
                   help="tile context in input pixels (default: the model's receptive field, "
                        "which makes tiled output identical to untiled)")
    p.add_argument("--self-ensemble", action="store_true",
                   help="average the model over the 8 flips and rotations of each image: "
                        "8x slower, usually a little sharper (Timofte 2016; EDSR+)")
    p.add_argument("--denoise", type=fraction, default=None, metavar="S",
                   help="0..1: blend span (0, faithful) towards span-real (1, removes JPEG "
                        "artifacts, noise and blur); default: auto picks per image")
    p.add_argument("--ext", default=None, metavar="EXT",
                   choices=("png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff"),
                   help="output format when writing into a folder or next to the inputs: "
                        "png, jpg, webp, bmp or tif")
    p.add_argument("--quality", type=int_at_least(1, "--quality", 100), default=95, metavar="Q",
                   help="JPEG/WebP quality 1-100 (default: 95)")
    p.add_argument("-f", "--force", action="store_true",
                   help="allow an output to replace an input file")
    p.add_argument("--max-pixels", type=pixel_count, default=DEFAULT_MAX_PIXELS, metavar="N",
                   help="refuse inputs larger than N pixels, checked before decoding, against "
                        "decompression bombs; accepts 250M or 1G; 0 = no limit "
                        "(default: 100M)")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="print nothing for images written (errors are still printed)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    set_threads(args.threads)
    from tqdm import tqdm

    from srlab import batch
    from srlab.batch import BatchHooks, UpscaleOptions, Written

    def written(w: Written) -> None:
        if not args.quiet:
            tqdm.write(f"{w.source} -> {w.target}  ({w.in_size[0]}x{w.in_size[1]} -> "
                       f"{w.out_size[0]}x{w.out_size[1]}, {w.seconds:.1f} s)", file=sys.stdout)

    def error(_src: Path, message: str) -> None:
        tqdm.write(f"{PROG}: error: {one_line(message)}", file=sys.stderr)

    def choice(src: Path, cond: Any, name: str) -> None:
        if not args.quiet:
            tqdm.write(f"{src}: auto: {cond.describe()} -> {name}, {cond.decision()}",
                       file=sys.stderr)

    opts = UpscaleOptions(
        output=args.output, scale=args.scale, model=args.model, weights=args.weights,
        backend=args.backend, denoise=args.denoise, threads=args.threads,
        self_ensemble=args.self_ensemble, tile=args.tile, overlap=args.overlap,
        force=args.force, max_pixels=args.max_pixels or None, ext=args.ext,
        quality=args.quality, progress=True)
    hooks = BatchHooks(on_written=written, on_error=error, on_model=warn_if_untrained,
                       on_choice=choice)
    try:
        result = batch.upscale_files(args.inputs, opts, hooks=hooks)
    except batch.UsageError as exc:
        raise UsageError(usage_message(exc.__cause__ or exc)) from None
    total = len(result.written) + len(result.failed)
    if result.failed and total > 1:
        print(f"{PROG}: {len(result.failed)} of {total} images failed", file=sys.stderr)
    return result.exit_code

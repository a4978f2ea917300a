"""srlab upscale: files and folders in, upscaled files out (``srlab.batch``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from srlab.cli import model_file
from srlab.cli.common import (
    DEFAULT_MAX_PIXELS,
    PROG,
    UsageError,
    add_backend_arg,
    add_common_model_args,
    fraction,
    fraction_of,
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
                    "input's file name and format (a still GIF becomes PNG) unless --ext is given. "
                    "Reads PNG, JPEG, BMP, TIFF, WebP and GIF, 8 or 16 bit, gray, colour or "
                    "with alpha; keeps bit depth, alpha, colour profile and EXIF/XMP metadata, "
                    "and every frame of an animated GIF/WebP/PNG. An input file is "
                    "never overwritten without --force. Exit status: 0 if every image was "
                    "written, 1 if any failed, 2 for usage errors.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT",  # str: keeps URLs
                   help="image file or folder")
    p.add_argument("-o", "--output", default=None, metavar="OUT",  # str: keeps a trailing /
                   help="output file (one input) or folder")
    add_common_model_args(p, any_scale=True, model_files=True)  # -m FILE: cli/model_file.py
    add_size_args(p)
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
    p.add_argument("--detail", type=fraction_of("--detail"), default=None, metavar="D",
                   help="0..1: blend span-real (0) towards span-real-gan (1, crisp GAN "
                        "texture for photos; may invent detail in small text and faces). "
                        "Alone it means the real side (denoise 1); with --denoise S, S blends "
                        "span towards that blend. x4 only; auto never adds detail")
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
    _add_many_args(p)
    p.set_defaults(handler=run)


def _add_many_args(p: argparse.ArgumentParser) -> None:
    """Many images (srlab.batch.cluster; docs/many-images.md)."""
    g = p.add_argument_group("many images (docs/many-images.md)")
    g.add_argument("-r", "--recursive", action="store_true",
                   help="images in sub-folders too; their tree is kept under -o")
    g.add_argument("--cluster", default=None, metavar="ADDRESS",
                   help="run on Dask: local:N (N worker processes here) or a scheduler "
                        "address such as tcp://host:8786 (needs srlab[cluster])")
    g.add_argument("--manifest", default=None, metavar="FILE",
                   help="JSON Lines record of every input (default with --cluster or "
                        "--resume: srlab-manifest.jsonl beside the outputs)")
    g.add_argument("--resume", action="store_true",
                   help="skip inputs whose output exists and is verified complete")
    g.add_argument("--chunk", type=int, default=0, metavar="N",
                   help="files per cluster task (default: sized to about 1.5 s of work "
                        "from the first files' times)")


def run(args: argparse.Namespace) -> int:
    set_threads(args.threads)
    from tqdm import tqdm

    from srlab import batch
    from srlab.batch import BatchHooks, UpscaleOptions, Written

    def written(w: Written) -> None:
        if not args.quiet:
            ran = f", {w.ran}" if w.ran else ""
            frames = f", {w.frames} frames" if w.frames > 1 else ""
            tqdm.write(f"{w.source} -> {w.target}  ({w.in_size[0]}x{w.in_size[1]} -> "
                       f"{w.out_size[0]}x{w.out_size[1]}{ran}{frames}, {w.seconds:.1f} s)",
                       file=sys.stdout)

    def error(_src: Path, message: str) -> None:
        tqdm.write(f"{PROG}: error: {one_line(message)}", file=sys.stderr)

    def choice(src: Path, cond: Any, name: str) -> None:
        if not args.quiet:
            why = f": {cond.reason}" if cond.reason else ""  # the name says the strength
            tqdm.write(f"{src}: auto: {cond.describe()} -> {name}{why}", file=sys.stderr)

    scale, size = output_size(args)
    upscaler = None  # your own model file (-m FILE): loaded here, refusals exit 2
    if model_file.is_model_file(args.model):
        # a whole --scale asks the file for that scale; any other size runs the file's own
        # scale and resizes (image.outsize, as for zoo models)
        only_scale = args.width is None and args.height is None and args.fit is None
        asked = int(args.scale) if args.scale_given and only_scale and \
            float(args.scale).is_integer() else None
        upscaler = model_file.load(args.model, scale=asked, backend=args.backend,
                                   threads=args.threads, weights=args.weights,
                                   denoise=args.denoise, detail=args.detail)
        if asked is None and only_scale and not args.scale_given:
            scale, size = upscaler.scale, None  # the file's own scale, no resize
    opts = UpscaleOptions(
        output=args.output, scale=scale, size=size, strip_metadata=args.strip_metadata,
        model=args.model, weights=args.weights,
        backend=args.backend, denoise=args.denoise, detail=args.detail, threads=args.threads,
        self_ensemble=args.self_ensemble, tile=args.tile, overlap=args.overlap,
        force=args.force, max_pixels=args.max_pixels or None, ext=args.ext,
        quality=args.quality, progress=True, recursive=args.recursive, cluster=args.cluster,
        manifest=args.manifest, resume=args.resume, chunk=args.chunk)
    hooks = BatchHooks(on_written=written, on_error=error, on_model=warn_if_untrained,
                       on_choice=choice)
    try:
        result = batch.upscale_files(args.inputs, opts, upscaler=upscaler, hooks=hooks)
    except batch.UsageError as exc:
        raise UsageError(usage_message(exc.__cause__ or exc)) from None
    total = len(result.written) + len(result.failed)
    if result.failed and total > 1:
        print(f"{PROG}: {len(result.failed)} of {total} images failed", file=sys.stderr)
    if result.summary:  # many images: one line for the whole batch
        print(f"{PROG}: {result.summary}", file=sys.stderr)
    return result.exit_code


# --- any output size and metadata (image.outsize, image.metadata) ---------------------------

DEFAULT_SCALE = 4  # = catalog.DEFAULT_SCALE (tests/test_catalog.py checks the parser's default)


def _fit(text: str) -> tuple[int, int]:
    from srlab.image.outsize import SizeError, parse_fit

    try:
        return parse_fit(text)
    except SizeError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_size_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--width", type=int_at_least(1, "--width"), default=None, metavar="W",
                   help="output width in pixels (height follows the aspect ratio unless "
                        "--height is given too)")
    p.add_argument("--height", type=int_at_least(1, "--height"), default=None, metavar="H",
                   help="output height in pixels (width follows the aspect ratio unless "
                        "--width is given too)")
    p.add_argument("--fit", type=_fit, default=None, metavar="WxH",
                   help="largest output that fits in W x H with the aspect ratio kept, e.g. "
                        "1920x1080")
    p.add_argument("--strip-metadata", action="store_true",
                   help="drop EXIF, XMP and the ICC colour profile (kept by default; EXIF "
                        "orientation is reset as the pixels are turned upright)")


def output_size(args: argparse.Namespace) -> tuple[int, Any]:
    """(model scale, OutputSize or None) from --scale/--width/--height/--fit: a whole scale
    with a weights file stays that scale (the file holds one); anything else is planned by
    ``image.outsize`` per image. Contradictions are a UsageError (exit 2)."""
    from srlab.image.outsize import OutputSize, SizeError

    s = args.scale
    only_scale = args.width is None and args.height is None and args.fit is None
    if not only_scale and not getattr(args, "scale_given", False):
        s = None  # the default factor gives way to a width, height or box
    whole = s is not None and float(s).is_integer()
    if whole and only_scale and args.weights is not None:
        return int(s), None
    try:
        size = OutputSize.of(int(s) if whole else s, args.width, args.height, args.fit)
    except SizeError as exc:
        raise UsageError(str(exc).replace("give either a scale", "give either --scale")
                         .replace("a width/height/fit", "--width/--height/--fit")) from None
    return (int(s) if whole else DEFAULT_SCALE), size

"""The ``srlab`` command line: a thin layer of argparse over the library's task modules.

Layout: every subcommand is a pair of functions, ``_add_X(subparsers)`` that declares its
arguments and ``_cmd_X(args) -> int`` that runs it. Handlers import their task module (and
with it torch) lazily, so ``srlab --help`` and ``import srlab.cli`` stay fast.

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
from pathlib import Path
from typing import Any, NoReturn

from srlab import __version__
from srlab.image.imageio import SAMPLE_IMAGE

__all__ = ["main", "build_parser", "UsageError"]

PROG = "srlab"
_DEFAULT_MAX_PIXELS = 100_000_000  # = imageio.DEFAULT_MAX_PIXELS (not imported: keep startup fast)


class UsageError(Exception):
    """Bad command-line usage, reported as one line with exit status 2."""


# --------------------------------------------------------------------------------------------
# plumbing: one-line errors
# --------------------------------------------------------------------------------------------


def _one_line(text: str) -> str:
    return " ".join(str(text).split()) or "unknown error"


def _print_error(message: str) -> None:
    print(f"{PROG}: error: {_one_line(message)}", file=sys.stderr)


def _warn(message: str) -> None:
    print(f"{PROG}: warning: {_one_line(message)}", file=sys.stderr)


def _debug() -> bool:
    return os.environ.get("SRLAB_DEBUG", "") not in ("", "0")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (not usage + message) and exits with 2."""

    def error(self, message: str) -> NoReturn:
        _print_error(f"{message} (see '{self.prog} --help')")
        raise SystemExit(2)


def _int_at_least(low: int, what: str, high: int | None = None) -> Callable[[str], int]:
    """An argparse type whose errors name the option and the allowed range."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be an integer, not '{text}'") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{what} must be at least {low}, not {value}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"{what} must be at most {high}, not {value}")
        return value

    parse.__name__ = what
    return parse


def _fraction(text: str) -> float:
    """--denoise: a number from 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--denoise must be a number from 0 to 1, not "
                                         f"'{text}'") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"--denoise must be from 0 to 1, not {value:g}")
    return value


def _pixel_count(text: str) -> int:
    """'100000000', '250M', '1.5G' or '2e8' -> pixels; 0 means no limit."""
    t = text.strip().upper().replace("_", "")
    mult = {"K": 10**3, "M": 10**6, "G": 10**9}.get(t[-1:], 1)
    if mult != 1:
        t = t[:-1]
    try:
        value = float(t) * mult
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--max-pixels takes a pixel count like 250000000 or 250M, not '{text}'"
        ) from None
    if value < 0:
        raise argparse.ArgumentTypeError("--max-pixels cannot be negative")
    return int(value)


def _set_threads(n: int | None) -> None:
    if n:
        import torch

        torch.set_num_threads(n)


def _add_common_model_args(p: argparse.ArgumentParser, *, scale_default: int = 4) -> None:
    p.add_argument("-s", "--scale", type=int, choices=(2, 3, 4), default=scale_default,
                   help=f"upscaling factor (default: {scale_default})")
    p.add_argument("-m", "--model", default=None, metavar="NAME",
                   help="registered model (default: srlab's default model, marked * in "
                        "'srlab models')")
    p.add_argument("--weights", type=Path, default=None, metavar="FILE",
                   help="weights file (.safetensors, or a tensors-only .pth) instead of the "
                        "weights shipped for the model")
    p.add_argument("--threads", type=_int_at_least(1, "--threads"), default=None, metavar="N",
                   help="CPU threads for torch (default: torch's choice)")


def _check_model(name: str | None, scale: int, *, allow_auto: bool = False) -> str:
    """Unknown model or unsupported scale is a usage error (exit 2), found before any work."""
    from srlab.batch import UsageError as TaskUsageError
    from srlab.batch import resolve_model

    try:
        return resolve_model(name, scale, allow_auto=allow_auto)
    except TaskUsageError as exc:
        raise UsageError(str(exc)) from None


def _warn_if_untrained(up: Any) -> None:
    if not up.trained:
        _warn(f"model '{up.name}' x{up.scale} has no trained weights yet and runs on random "
              "ones: expect noise, not an upscaled image (try --model bicubic, or --weights)")


# --------------------------------------------------------------------------------------------
# upscale
# --------------------------------------------------------------------------------------------


def _add_upscale(sub: argparse._SubParsersAction) -> None:
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
    _add_common_model_args(p)
    _add_backend_arg(p)
    p.add_argument("--tile", type=_int_at_least(0, "--tile"), default=0, metavar="N",
                   help="upscale in N x N input tiles to bound memory; 0 = automatic: "
                        "images above 2 Mpx use 512 (default: 0)")
    p.add_argument("--overlap", type=_int_at_least(0, "--overlap"), default=None, metavar="N",
                   help="tile context in input pixels (default: the model's receptive field, "
                        "which makes tiled output identical to untiled)")
    p.add_argument("--self-ensemble", action="store_true",
                   help="average the model over the 8 flips and rotations of each image: "
                        "8x slower, usually a little sharper (Timofte 2016; EDSR+)")
    p.add_argument("--denoise", type=_fraction, default=None, metavar="S",
                   help="0..1: blend span (0, faithful) towards span-real (1, removes JPEG "
                        "artifacts, noise and blur); default: auto picks per image")
    p.add_argument("--ext", default=None, metavar="EXT",
                   choices=("png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff"),
                   help="output format when writing into a folder or next to the inputs: "
                        "png, jpg, webp, bmp or tif")
    p.add_argument("--quality", type=_int_at_least(1, "--quality", 100), default=95, metavar="Q",
                   help="JPEG/WebP quality 1-100 (default: 95)")
    p.add_argument("-f", "--force", action="store_true",
                   help="allow an output to replace an input file")
    p.add_argument("--max-pixels", type=_pixel_count, default=_DEFAULT_MAX_PIXELS, metavar="N",
                   help="refuse inputs larger than N pixels, checked before decoding, against "
                        "decompression bombs; accepts 250M or 1G; 0 = no limit "
                        "(default: 100M)")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="print nothing for images written (errors are still printed)")
    p.set_defaults(handler=_cmd_upscale)


def _cmd_upscale(args: argparse.Namespace) -> int:
    _set_threads(args.threads)
    from tqdm import tqdm

    from srlab.batch import UsageError as TaskUsageError
    from srlab.batch import Written, upscale_files

    def written(w: Written) -> None:
        if not args.quiet:
            tqdm.write(f"{w.source} -> {w.target}  ({w.in_size[0]}x{w.in_size[1]} -> "
                       f"{w.out_size[0]}x{w.out_size[1]}, {w.seconds:.1f} s)", file=sys.stdout)

    def error(_src: Path, message: str) -> None:
        tqdm.write(f"{PROG}: error: {_one_line(message)}", file=sys.stderr)

    def choice(src: Path, cond: Any, name: str) -> None:
        if not args.quiet:
            tqdm.write(f"{src}: auto: {cond.describe()} -> {name}", file=sys.stderr)

    try:
        result = upscale_files(
            args.inputs, output=args.output, scale=args.scale, model=args.model,
            weights=args.weights, tile=args.tile, overlap=args.overlap, force=args.force,
            upscaler=_backend_upscaler(args), self_ensemble=args.self_ensemble,
            max_pixels=args.max_pixels or None, ext=args.ext, quality=args.quality,
            progress=True, on_written=written, on_error=error, on_model=_warn_if_untrained,
            on_choice=choice,
        )
    except TaskUsageError as exc:
        raise UsageError(str(exc)) from None
    total = len(result.written) + len(result.failed)
    if result.failed and total > 1:
        print(f"{PROG}: {len(result.failed)} of {total} images failed", file=sys.stderr)
    return result.exit_code


# --------------------------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------------------------


def _add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models",
        help="list the registered models, their weights and measured quality",
        description="Every registered model: family, scales, parameter count (at x4, or the "
                    "first scale), which scales have shipped weights, the Set5 PSNR (Y) "
                    "recorded in the shipped weights' metadata, and whether it is trained. "
                    "* marks the default model.",
    )
    p.add_argument("--markdown", action="store_true", help="print a markdown table")
    p.add_argument("--readme", type=Path, default=None, metavar="FILE",
                   help="write the markdown table into FILE between '<!-- srlab:models -->' "
                        "and '<!-- /srlab:models -->'")
    p.set_defaults(handler=_cmd_models)


def _count_params(name: str, scale: int) -> int:
    """Parameters without allocating them: build on the meta device, CPU as a fallback."""
    import torch

    from srlab.zoo.registry import build_model
    from srlab.zoo.weights import count_params

    try:
        with torch.device("meta"):
            return count_params(build_model(name, scale))
    except Exception:  # noqa: BLE001 - some constructors compute on real tensors
        return count_params(build_model(name, scale))


def _set5_psnr(meta: Any) -> float | None:
    for key, vals in (getattr(meta, "metrics", None) or {}).items():
        if key.lower() == "set5" and isinstance(vals, dict):
            value = vals.get("psnr", vals.get("PSNR"))
            if isinstance(value, (int, float)):
                return float(value)
    return None


def _format_params(n: int) -> str:
    if n == 0:
        return "0"
    if n >= 1_000_000:
        return f"{n / 1e6:.2f}M"
    return f"{n / 1e3:.1f}K"


def model_rows() -> list[dict[str, str]]:
    """The table ``srlab models`` prints, as rows of strings (also used by the docs)."""
    from srlab.zoo.registry import DEFAULT_MODEL, MODELS
    from srlab.zoo.weights import WeightsError, read_weights, shipped_weights_path

    rows = []
    for name, spec in MODELS.items():
        first = 4 if 4 in spec.scales else spec.scales[0]
        metas: dict[int, Any] = {}
        for s in spec.scales:
            path = shipped_weights_path(name, s)
            if path.is_file():
                try:
                    metas[s] = read_weights(path)[1]
                except WeightsError:
                    metas[s] = "corrupt"
        meta_first = metas.get(first)
        if meta_first not in (None, "corrupt") and getattr(meta_first, "params", 0):
            params = int(meta_first.params)
        else:
            params = _count_params(name, first)
        if params == 0:
            weights, status = "n/a", "classical"
        else:
            weights = " ".join(
                f"x{s}" + ("(corrupt)" if metas[s] == "corrupt" else "") for s in sorted(metas)
            ) or "none"
            trained = any(m not in (None, "corrupt") and m.trained for m in metas.values())
            status = "trained" if trained else (f"needs {spec.needs}" if spec.needs
                                                else "untrained")
        psnrs = [(s, _set5_psnr(m)) for s, m in sorted(metas.items()) if m != "corrupt"]
        psnr = " ".join(f"x{s} {v:.2f}" for s, v in psnrs if v is not None) or "-"
        minutes = " ".join(f"x{s} {m.total_seconds / 60:.0f}"
                           for s, m in sorted(metas.items())
                           if m != "corrupt" and getattr(m, "train_seconds", 0)) or "-"
        rows.append({
            "model": name + (" *" if name == DEFAULT_MODEL else ""),
            "family": spec.family,
            "scales": ",".join(str(s) for s in spec.scales),
            "params": _format_params(params) + ("" if first == 4 else f" (x{first})"),
            "weights": weights,
            "Set5 PSNR": psnr,
            "train min": minutes,
            "status": status,
        })
    return rows


def _cmd_models(args: argparse.Namespace) -> int:
    rows = model_rows()
    cols = ["model", "family", "scales", "params", "weights", "Set5 PSNR", "train min", "status"]
    if args.markdown or args.readme:
        lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(row[c] for c in cols) + " |" for row in rows]
        text = "\n".join(lines) + ("\n\n\\* default model. Made by `srlab models --markdown`; "
                                   "Set5 PSNR (Y, border = scale) from each shipped weights "
                                   "file's metadata, measured by `srlab ship`; train min: CPU "
                                   "minutes of the run that made the file plus those recorded "
                                   "in the weights it started from (a fine-tune or a grown "
                                   "net counts its parents' minutes too, where recorded).")
        if args.readme:
            from srlab.eval.benchmark import update_readme

            update_readme(args.readme, "models", text)
        print(text)
        return 0
    cells = [[row[c] for c in cols] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip())
    for r in cells:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    print("* default model. params at x4 (or the first scale). Set5 PSNR: Y channel, "
          "border = scale, from the shipped weights' metadata. train min: CPU minutes.")
    return 0


# --------------------------------------------------------------------------------------------
# demo
# --------------------------------------------------------------------------------------------


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="upscale the bundled sample image and compare with bicubic",
        description="Shrink the bundled sample image with MATLAB bicubic, upscale it back with "
                    "a model, write the result and a labelled side-by-side (LR | bicubic | "
                    "model | original), and print PSNR/SSIM (Y channel, border = scale) of "
                    "bicubic and of the model against the original.",
    )
    _add_common_model_args(p)
    p.add_argument("--out", type=Path, default=Path("out/demo"), metavar="DIR",
                   help="output folder (default: out/demo)")
    p.set_defaults(handler=_cmd_demo)


def _label_font(size: int = 14):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # Pillow without FreeType: the bitmap font
        return ImageFont.load_default()


def compare_panel(panels: Sequence[tuple[str, Any]], *, gap: int = 6) -> Any:
    """Equal-size uint8 RGB images side by side, each with a caption above; an RGB array."""
    import numpy as np
    from PIL import Image, ImageDraw

    h, w = panels[0][1].shape[:2]
    font = _label_font()
    strip = 24
    canvas = Image.new("RGB", (len(panels) * w + (len(panels) + 1) * gap, h + strip + gap),
                       (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for i, (label, arr) in enumerate(panels):
        x = gap + i * (w + gap)
        canvas.paste(Image.fromarray(np.ascontiguousarray(arr)), (x, strip))
        draw.text((x + 2, 4), label, fill=(0, 0, 0), font=font)
    return np.asarray(canvas)


def _cmd_demo(args: argparse.Namespace) -> int:
    _set_threads(args.threads)
    import numpy as np

    from srlab.api import load_model
    from srlab.image.imageio import load_image, save_image
    from srlab.image.metrics import psnr, ssim
    from srlab.image.resize import imresize, modcrop

    s = args.scale
    model = _check_model(args.model, s)
    hr = load_image(SAMPLE_IMAGE).array
    if hr.ndim == 2:
        hr = np.repeat(hr[..., None], 3, axis=2)
    hr = modcrop(hr[..., :3], s)
    h, w = hr.shape[:2]
    lr = imresize(hr, size=(h // s, w // s))  # the protocol's degradation: MATLAB bicubic
    up = load_model(model, s, weights=args.weights)
    _warn_if_untrained(up)
    sr = up.upscale_array(lr)
    bicubic = imresize(lr, s)
    nearest = np.repeat(np.repeat(lr, s, axis=0), s, axis=1)

    def score(img: np.ndarray) -> tuple[float, float]:
        return (psnr(img, hr, crop_border=s, y_channel=True),
                ssim(img, hr, crop_border=s, y_channel=True))

    base_label = "bicubic (MATLAB)"
    rows = [(base_label, *score(bicubic)), (model, *score(sr))]

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sr_path, cmp_path = out / f"sample_x{s}.png", out / f"compare_x{s}.png"
    save_image(sr, sr_path)
    panel = compare_panel([
        (f"LR {w // s}x{h // s} (nearest)", nearest),
        (f"bicubic (MATLAB)  {rows[0][1]:.2f} dB", bicubic),
        (f"{model}  {rows[1][1]:.2f} dB", sr),
        (f"original {w}x{h}", hr),
    ])
    save_image(panel, cmp_path)

    kind = "no parameters" if up.params == 0 else \
        f"{'trained' if up.trained else 'UNTRAINED'}, {up.params:,} parameters"
    print(f"sample {w}x{h} -> LR {w // s}x{h // s} (MATLAB bicubic) -> x{s} with '{model}' "
          f"({kind})")
    name_w = max(len(r[0]) for r in (("method",), *rows))
    print(f"{'method'.ljust(name_w)}  PSNR (Y)  SSIM (Y)   (border {s} px)")
    for label, p_db, s_val in rows:
        print(f"{label.ljust(name_w)}  {p_db:8.2f}  {s_val:8.4f}")
    print(f"{model} vs bicubic: {rows[1][1] - rows[0][1]:+.2f} dB")
    print(f"wrote {sr_path}")
    print(f"wrote {cmp_path}  (LR | bicubic | {model} | original)")
    return 0


# --------------------------------------------------------------------------------------------
# Subcommands added by other modules. Pattern: write `_add_X(sub)` (declare arguments, then
# `p.set_defaults(handler=_cmd_X)`) and `_cmd_X(args) -> int` (import the task module inside
# the handler, raise UsageError for bad usage), then list `_add_X` in _SUBCOMMANDS below.
#
# --- benchmark: srlab benchmark (srlab.eval.benchmark) -------------------------------------------


def _benchmark_sets(given: list[Path] | None) -> list[Path]:
    """The HR folders to score: those given, else Set5 from $SRLAB_SHARED; all must exist."""
    from srlab.eval.benchmark import shared_dir

    datasets = given or [shared_dir() / "datasets" / "benchmark" / "Set5"]
    for d in datasets:
        if not d.is_dir():
            raise UsageError(f"dataset folder not found: {d}")
    return datasets


def _add_benchmark(sub: argparse._SubParsersAction) -> None:
    from srlab.image.degrade import TRACKS

    p = sub.add_parser("benchmark", help="PSNR/SSIM by the standard protocol, and CPU speed",
                       description="Standard protocol: modcrop, MATLAB-bicubic LR, Y-channel "
                                   "PSNR/SSIM with border = scale; throughput in output "
                                   "megapixels per second, measured in the same run. Peers: "
                                   "opencv-espcn, opencv-fsrcnn, opencv-fsrcnn-small.")
    p.add_argument("-m", "--model", action="append", required=True, metavar="NAME",
                   help="model or peer to score (repeatable); 'shipped' = every model "
                        "with weights shipped at the scale; a trailing '+' (span+) adds the "
                        "x8 flip/rotation self-ensemble")
    p.add_argument("-s", "--scale", action="append", type=int, choices=(2, 3, 4),
                   metavar="S", help="scale (repeatable; default 4)")
    p.add_argument("-d", "--dataset", action="append", type=Path, metavar="DIR",
                   help="folder of HR images (repeatable; default: Set5 from $SRLAB_SHARED)")
    p.add_argument("--weights", action="append", default=[], metavar="MODEL=FILE",
                   help="weights file for a model instead of its shipped weights")
    p.add_argument("-o", "--out", type=Path, default=Path("out/benchmark"), metavar="DIR",
                   help="where benchmark.md/.csv/.json go (default: out/benchmark)")
    p.add_argument("--readme", type=Path, default=None, metavar="FILE",
                   help="also write the table into FILE between "
                        "'<!-- srlab:NAME -->' and '<!-- /srlab:NAME -->' markers")
    p.add_argument("--section", default="benchmark", metavar="NAME",
                   help="marker name for --readme (default: benchmark)")
    p.add_argument("--gmsd", action="store_true",
                   help="add GMSD (perceptual, lower is better) to every table cell")
    p.add_argument("--degrade", action="append", default=None, metavar="TRACK",
                   choices=["clean", *TRACKS],
                   help="score on seeded degraded LR inputs instead of (or, with 'clean', "
                        "beside) the protocol's (repeatable): " + ", ".join(TRACKS)
                        + " (see degrade.TRACKS)")
    p.add_argument("--strip", type=Path, default=None, metavar="PNG",
                   help="also draw LR | each model | HR crops of the first 3 images of the "
                        "first dataset, on the last --degrade track, at the first scale")
    _add_cache_options(p)
    p.add_argument("--threads", type=_int_at_least(1, "--threads"), default=None, metavar="N")
    p.set_defaults(handler=_cmd_benchmark)


def _shipped_models(scale: int) -> list[str]:
    """Registry models with weights shipped at ``scale``, in registry order."""
    from srlab.zoo.registry import MODELS
    from srlab.zoo.weights import shipped_weights_path

    return [n for n, spec in MODELS.items()
            if scale in spec.scales and shipped_weights_path(n, scale).is_file()]


def _add_cache_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache", type=Path, default=Path("out/score-cache"), metavar="DIR",
                   help="reuse scores measured before for the same tensors and images "
                        "(default: out/score-cache)")
    p.add_argument("--no-cache", dest="cache", action="store_const", const=None,
                   help="measure everything again and store nothing")
    p.add_argument("--refresh", action="store_true",
                   help="measure everything again and store the fresh rows in the cache, "
                        "replacing older ones (e.g. rows timed on a busy machine)")


def _cmd_benchmark(args: argparse.Namespace) -> int:
    from srlab.eval import benchmark as bm

    _set_threads(args.threads)
    scales = args.scale or [4]
    for name in args.model:
        if name not in bm.PEERS and name != "shipped":
            for scale in scales:
                _check_model(bm.split_ensemble(name)[0], scale, allow_auto=True)
    datasets = _benchmark_sets(args.dataset)
    weights = {}
    for item in args.weights:
        if "=" not in item:
            raise UsageError(f"--weights expects MODEL=FILE, got {item!r}")
        name, file = item.split("=", 1)
        weights[name] = file
    rows = []
    tracks = list(dict.fromkeys(args.degrade or ["clean"]))
    for scale in scales:  # "shipped" means a different list of models at each scale
        names = list(dict.fromkeys(
            n for m in args.model for n in (_shipped_models(scale) if m == "shipped" else [m])))
        for track in tracks:
            rows += bm.run_benchmark(names, [scale], datasets, weights=weights,
                                     cache=args.cache, refresh=args.refresh,
                                     track=None if track == "clean" else track,
                                     log=lambda line: print(line, file=sys.stderr))
    command = bm.command_line()
    if args.strip is not None:
        last = tracks[-1]
        bm.visual_strip([m for m in args.model if m != "shipped"], scales[0], datasets[0],
                        args.strip, track=None if last == "clean" else last)
        print(f"wrote {args.strip}", file=sys.stderr)
    md = bm.write_tables(rows, args.out, command, gmsd=args.gmsd)
    print(md.read_text())
    if args.readme is not None:
        bm.update_readme(args.readme, args.section, md.read_text())
        print(f"updated section '{args.section}' of {args.readme}", file=sys.stderr)
    return 0


# --- train: srlab train (srlab.train.loop) -------------------------------------------------------


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model from a YAML config",
                       description="Train any registered model; artifacts go to "
                                   "runs/<run.name>/. Example configs: configs/*.yaml.")
    p.add_argument("config", type=Path, nargs="?", default=None,
                   help="YAML config (default: built-in defaults)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set optim.lr=1e-3 (repeatable)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run from runs/<run.name>/checkpoint.pt")
    p.add_argument("--kfold", type=_int_at_least(2, "--kfold"), default=None, metavar="K",
                   help="K-fold cross-validation over the training images")
    p.set_defaults(handler=_cmd_train)


def _cmd_train(args: argparse.Namespace) -> int:
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


# --- ship: srlab ship (srlab.ship) ----------------------------------------------------------


def _add_ship(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ship", help="benchmark a run's weights and install them in the package",
                       description="Benchmarks RUN/best.safetensors on Set5/Set14/BSD100/"
                                   "Urban100 and installs it with its measured metadata and "
                                   "a generated model card under src/srlab/weights/.")
    p.add_argument("run", type=Path, nargs="?", help="run directory (runs/NAME)")
    p.add_argument("--which", choices=("best", "last"), default="best")
    p.add_argument("--cards", action="store_true",
                   help="instead of shipping a run, rewrite the header of every shipped "
                        "model card from its weights' metadata and shipped run config; "
                        "the measured section is kept as it was shipped")
    p.add_argument("--datasets", nargs="+", default=None, metavar="NAME",
                   help="benchmark sets to measure (default: Set5 Set14 BSD100 Urban100)")
    _add_cache_options(p)
    p.set_defaults(handler=_cmd_ship)


def _cmd_ship(args: argparse.Namespace) -> int:
    from srlab.ship import DEFAULT_SETS, rerender_card, ship_run

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
    if not args.run.is_dir():
        raise UsageError(f"run directory not found: {args.run}")
    ship_run(args.run, datasets=tuple(args.datasets or DEFAULT_SETS), which=args.which,
             cache=args.cache, refresh=args.refresh,
             log=lambda line: print(line, file=sys.stderr))
    return 0


# --- compare: srlab compare -----------------------------------------------------------------


def _add_compare(sub: argparse._SubParsersAction) -> None:
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
    p.set_defaults(handler=_cmd_compare)


def _cmd_compare(args: argparse.Namespace) -> int:
    from srlab.eval.benchmark import command_line
    from srlab.eval.compare import compare

    datasets = _benchmark_sets(args.dataset)
    res = compare(args.items, scales=args.scale, datasets=datasets, out_dir=args.out,
                  command=command_line(), log=lambda line: print(line, file=sys.stderr))
    print(res.table.read_text())
    return 0


# --- tune: srlab tune -----------------------------------------------------------------------


def _add_tune(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tune", help="hyperparameter search with Optuna (needs srlab[tune])",
                       description="Searches learning rate, weight decay, blocks/channels, "
                                   "loss and optimizer; prunes bad trials on validation PSNR; "
                                   "writes runs/<run.name>/tune.md.")
    p.add_argument("config", type=Path, nargs="?", default=None)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--trials", type=_int_at_least(1, "--trials"), default=10, metavar="N")
    p.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                   help="start no new trial after this many seconds")
    p.set_defaults(handler=_cmd_tune)


def _cmd_tune(args: argparse.Namespace) -> int:
    from srlab.train.config import load_config
    from srlab.train.tune import tune

    res = tune(load_config(args.config, args.overrides), args.trials, timeout=args.timeout)
    import shlex

    print(f"best validation PSNR {res.best_psnr:.3f} dB with: "
          + " ".join(f"--set {shlex.quote(o)}" for o in res.overrides))
    return 0

# --- serve: srlab serve (web demo) ----------------------------------------------------------


def _add_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="web demo and HTTP API (Gradio + FastAPI)",
                       description="Pick a model and scale, upload, compare with bicubic, "
                                   "download; model cards and training curves; JSON API under "
                                   "/api (see README). Needs the web extra.")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default: 127.0.0.1)")
    p.add_argument("--port", type=_int_at_least(1, "--port", 65535), default=7860)
    p.add_argument("--max-upload-mb", type=float, default=None, metavar="MB",
                   help="largest accepted upload")
    p.add_argument("--max-pixels", type=_pixel_count, default=None, metavar="N",
                   help="largest accepted input image, in pixels")
    p.add_argument("--concurrency", type=_int_at_least(1, "--concurrency"), default=None,
                   metavar="N", help="upscale jobs run at once")
    p.add_argument("--threads", type=_int_at_least(1, "--threads"), default=None, metavar="N")
    p.set_defaults(handler=_cmd_serve)


def _cmd_serve(args: argparse.Namespace) -> int:
    from srlab import web

    _set_threads(args.threads)
    options = {k: v for k, v in (("max_upload_mb", args.max_upload_mb),
                                  ("max_pixels", args.max_pixels),
                                  ("concurrency", args.concurrency)) if v is not None}
    return web.serve_main(args.host, args.port, **options)

# --- export: srlab export (ONNX) ------------------------------------------------------------


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a model to ONNX (checked against PyTorch)",
                       description="Export a registered model's network (re-parameterised, "
                                   "dynamic height/width) to ONNX, then check ONNX Runtime "
                                   "against PyTorch on a random image of another size; a max "
                                   "abs difference above 1e-3 is an error. Luma models export "
                                   "Y -> Y: colour handling stays in srlab. Needs "
                                   "pip install 'srlab[onnx]'.")
    p.add_argument("model", metavar="MODEL", help="registered model (see 'srlab models')")
    p.add_argument("-s", "--scale", type=int, choices=(2, 3, 4), default=4,
                   help="upscaling factor (default: 4)")
    p.add_argument("--onnx", type=Path, required=True, metavar="FILE", help="output .onnx file")
    p.add_argument("--weights", type=Path, default=None, metavar="FILE",
                   help="weights file instead of the shipped weights")
    p.add_argument("--opset", type=_int_at_least(13, "--opset"), default=17, metavar="N",
                   help="ONNX opset (default: 17)")
    p.set_defaults(handler=_cmd_export)


def _cmd_export(args: argparse.Namespace) -> int:
    model = _check_model(args.model, args.scale)
    from srlab.runtime.onnx import OnnxError, export_onnx

    try:
        export_onnx(model, args.scale, args.onnx, weights=args.weights, opset=args.opset)
    except OnnxError as exc:  # missing packages or a failed parity check: exit 1, one line
        _print_error(str(exc))
        return 1
    return 0


def _add_backend_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=("torch", "onnx", "onnx-int8", "torch-bf16", "auto"),
                   default="auto",
                   help="who runs the network: auto (default: the fastest backend 'srlab bench "
                        "--store' measured for this model, scale and CPU within 0.02 dB of "
                        "float32; torch when nothing is stored or onnxruntime is missing), "
                        "torch, onnx (ONNX Runtime; exported and cached on first use, needs "
                        "srlab[onnx]), onnx-int8 (the same quantised to int8, calibrated on "
                        "the training images on first use) or torch-bf16 (bfloat16 autocast: "
                        "fast only on CPUs where bf16 measures faster)")


def _backend_upscaler(args: argparse.Namespace) -> Any:
    """None for the torch backend (upscale_files loads the model itself), else the model on
    the chosen backend, loaded once for the batch; ``auto`` (the model) and ``--denoise``
    load their networks here too, on that backend where they are whole shipped networks."""
    from srlab.runtime.onnx import OnnxError, load_backend
    from srlab.zoo.registry import AUTO, DENOISE_PAIR

    denoise = getattr(args, "denoise", None)
    backend = getattr(args, "backend", "torch")
    if denoise is not None:
        if args.model not in (None, DENOISE_PAIR[0]) or args.weights is not None:
            raise UsageError(f"--denoise blends the shipped {' and '.join(DENOISE_PAIR)} "
                             "weights; drop --model/--weights")
    model = AUTO if denoise is not None else _check_model(args.model, args.scale,
                                                          allow_auto=args.weights is None)

    def on_backend(name: str) -> Any:
        try:
            return load_backend(name, args.scale, backend=backend, weights=args.weights,
                                threads=args.threads)
        except OnnxError as exc:  # e.g. --backend onnx without onnxruntime installed
            raise UsageError(str(exc)) from None

    if model == AUTO:
        from srlab.api import AutoUpscaler, load_model

        def net(d: float) -> Any:  # whole shipped networks go to the backend; blends to torch
            if d in (0, 1) and backend != "torch":
                return on_backend(DENOISE_PAIR[int(d)])
            return load_model(scale=args.scale, denoise=d)

        if denoise is not None:
            return _or_usage(lambda: net(denoise))
        return _or_usage(lambda: AutoUpscaler(args.scale, loader=net))
    if backend == "torch":
        return None
    return on_backend(model)


def _or_usage(make: Callable[[], Any]) -> Any:
    try:
        return make()
    except ValueError as exc:  # e.g. span-real not shipped at this scale
        raise UsageError(str(exc)) from None


# --- bench: srlab bench (srlab.eval.speed) -------------------------------------------------------


def _size(text: str) -> tuple[int, int]:
    """'480x320' -> (480, 320)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 480x320, not '{text}'") from None
    if w < 8 or h < 8:
        raise argparse.ArgumentTypeError(f"size must be at least 8x8, not '{text}'")
    return w, h


def _add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="CPU speed vs bicubic and OpenCV ESPCN/FSRCNN, one run",
                       description="Output megapixels per second of srlab models on each "
                                   "backend (torch, onnx) beside bicubic (PIL, OpenCV) and "
                                   "OpenCV dnn_superres ESPCN/FSRCNN, timed interleaved in "
                                   "one run (median of N) and reported as ratios to OpenCV "
                                   "ESPCN; then time vs image size and 1 vs 2 threads. "
                                   "Writes speed.md and speed.json.")
    p.add_argument("-m", "--model", action="append", default=None, metavar="NAME",
                   help="model (repeatable; default: span-fast, span and every model with "
                        "shipped weights)")
    p.add_argument("-s", "--scale", action="append", type=int, choices=(2, 3, 4),
                   metavar="S", help="scale (repeatable; default: 2 and 4)")
    p.add_argument("--backend", action="append",
                   choices=("torch", "onnx", "onnx-int8", "torch-bf16"), default=None,
                   help="backend (repeatable; default: torch, onnx and onnx-int8 if installed, "
                        "torch-bf16 if the CPU lists a bf16 flag)")
    p.add_argument("--store", nargs="?", default=None, metavar="FILE", const="",
                   help="also score each backend's PSNR against torch float32 (Set5, Urban100 "
                        "slice) and store Mpx/s and PSNR cost per model, scale and CPU for "
                        "--backend auto (default FILE: src/srlab/assets/backends.json)")
    p.add_argument("--store-images", type=_int_at_least(1, "--store-images"), default=20,
                   metavar="N", help="Urban100 images scored for --store/--pareto "
                                     "(default: 20)")
    p.add_argument("--pareto", type=Path, default=None, metavar="PNG",
                   help="also draw PSNR (Urban100, largest scale) against Mpx/s for every "
                        "model, backend and peer, with this CPU's fp32/bf16/int8 peak lines")
    p.add_argument("--size", type=_size, default=(480, 320), metavar="WxH",
                   help="LR input size (default: 480x320)")
    p.add_argument("--repeats", type=_int_at_least(1, "--repeats"), default=7, metavar="N",
                   help="timed runs per model, median reported (default: 7)")
    p.add_argument("--threads", type=_int_at_least(1, "--threads"), default=1, metavar="N",
                   help="threads for the main table, every runner alike (default: 1)")
    p.add_argument("--no-sizes", action="store_true", help="skip the time-vs-size table")
    p.add_argument("--no-threads", action="store_true", help="skip the 1-vs-2-threads table")
    p.add_argument("--huge", action="store_true",
                   help="also upscale a procedural 8000x6000 image x2 in tiles in a "
                        "subprocess and report its peak RSS (minutes)")
    p.add_argument("--huge-model", action="append", default=None, metavar="NAME",
                   help="model(s) for --huge (default: span-fast and bicubic)")
    p.add_argument("--huge-size", type=_size, default=(8000, 6000), metavar="WxH")
    p.add_argument("-o", "--out", type=Path, default=Path("out/bench"), metavar="DIR",
                   help="where speed.md/speed.json go (default: out/bench)")
    p.add_argument("--readme", type=Path, default=None, metavar="FILE",
                   help="also write the tables into FILE between '<!-- srlab:NAME -->' and "
                        "'<!-- /srlab:NAME -->' markers")
    p.add_argument("--section", default="performance", metavar="NAME",
                   help="marker name for --readme (default: performance)")
    p.set_defaults(handler=_cmd_bench)


def _cmd_bench(args: argparse.Namespace) -> int:
    from srlab.eval import speed
    from srlab.eval.benchmark import command_line, update_readme

    scales = args.scale or [2, 4]
    models = args.model or speed.default_models()
    for name in models:
        for s in scales:
            _check_model(name, s)
    if args.readme is not None and not args.readme.is_file():
        raise UsageError(f"--readme {args.readme}: no such file")

    def log(line: str) -> None:
        print(line, file=sys.stderr)

    log(speed.cpu_note())
    rows = speed.run_speed(models, scales, backends=args.backend, lr_size=args.size,
                           repeats=args.repeats, threads=args.threads,
                           sizes=not args.no_sizes,
                           thread_counts=() if args.no_threads else (1, 2), log=log)
    huge = []
    if args.huge:
        for name in args.huge_model or ["span-fast", "bicubic"]:
            log(f"huge: {name} x2 on {args.huge_size[0]}x{args.huge_size[1]} ...")
            huge.append(speed.huge_run(name, scale=2, size=args.huge_size,
                                       threads=args.threads))
            log(f"huge: {huge[-1]['seconds']:.1f} s, peak RSS {huge[-1]['peak_rss_gib']:.2f} GiB")
    command = command_line()
    md = speed.write_speed(rows, args.out, command=command, huge=huge)
    print(md.read_text())
    deltas = None
    if args.store is not None or args.pareto is not None:
        scores = speed.accuracy_scores(models, scales, args.backend or speed.default_backends(),
                                       sets=(("Set5", 5), ("Urban100", args.store_images)),
                                       peers=speed.PEERS_SCORED if args.pareto else (),
                                       log=log)
        deltas = speed.accuracy_deltas(scores)
    if args.pareto is not None:
        from srlab.eval.pareto import pareto_chart

        log(f"wrote {pareto_chart(rows, scores, args.pareto, command=command)}")
    if args.store is not None:
        stored = speed.store_rows(rows, deltas, path=Path(args.store) if args.store else None,
                                  command=command)
        log(f"stored measurements in {stored}")
    log(f"auto would pick (x{max(scales)}): {speed.suggested_backends(rows, deltas)}")
    if args.readme is not None:
        update_readme(args.readme, args.section, md.read_text())
        log(f"updated section '{args.section}' of {args.readme}")
    return 0


# --- inspect: srlab inspect (srlab.image.condition, srlab.eval.inspect) --------------------------


def _add_inspect(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="what auto detects in images (JPEG history, noise)",
                       description="Print the condition auto reads from each image and the "
                                   "model strength it would choose; --eval measures the "
                                   "estimator on a seeded labelled set made from training "
                                   "images.")
    p.add_argument("images", nargs="*", type=Path, metavar="IMAGE")
    p.add_argument("--eval", dest="eval_dir", nargs="?", type=Path, default=None,
                   const=Path("${SRLAB_SHARED}/datasets/train/BSDS500-test"), metavar="DIR",
                   help="labelled-set confusion table from the HR images in DIR (default: "
                        "BSDS500-test of $SRLAB_SHARED's training images)")
    p.add_argument("--limit", type=_int_at_least(1, "--limit"), default=100, metavar="N",
                   help="images of DIR to use (default 100)")
    p.add_argument("--readme", type=Path, default=None, metavar="FILE",
                   help="also write the table into FILE between '<!-- srlab:NAME -->' and "
                        "'<!-- /srlab:NAME -->' markers")
    p.add_argument("--section", default="estimator", metavar="NAME",
                   help="marker name for --readme (default: estimator)")
    p.set_defaults(handler=_cmd_inspect)


def _cmd_inspect(args: argparse.Namespace) -> int:
    if not args.images and args.eval_dir is None:
        raise UsageError("give one or more images, or --eval")
    if args.eval_dir is not None:
        from srlab.eval.benchmark import command_line, update_readme
        from srlab.eval.inspect import confusion_markdown, labelled_eval
        from srlab.train.config import expand_path

        folder = Path(expand_path(str(args.eval_dir)))
        if not folder.is_dir():
            raise UsageError(f"dataset folder not found: {folder}")
        md = confusion_markdown(labelled_eval(folder, args.limit), command_line())
        print(md)
        if args.readme is not None:
            update_readme(args.readme, args.section, md)
            print(f"updated section '{args.section}' of {args.readme}", file=sys.stderr)
    from srlab.image.condition import estimate
    from srlab.image.imageio import load_image

    for path in args.images:
        cond = estimate(load_image(path).array, path)
        verdict = "span-real (clean it up)" if cond.degraded else "span (faithful)"
        print(f"{path}: {cond.describe()} -> {verdict}")
    return 0


# --------------------------------------------------------------------------------------------

_SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_upscale,
    _add_models,
    _add_demo,
    _add_benchmark,
    _add_train,
    _add_ship,
    _add_compare,
    _add_tune,
    _add_serve,
    _add_export,
    _add_bench,
    _add_inspect,
]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
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


# --------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------


def _known_failure_types() -> tuple[type[BaseException], ...]:
    """Library errors meant for users (one line, exit 1). Imported lazily: imageio is light,
    and WeightsError is only reachable once a handler imported torch anyway."""
    from srlab.image.imageio import ImageError

    types: list[type[BaseException]] = [ImageError, ValueError, OSError]
    weights = sys.modules.get("srlab.zoo.weights")
    if weights is not None:
        types.insert(1, weights.WeightsError)
    bench = sys.modules.get("srlab.eval.benchmark")
    if bench is not None:  # an OpenCV peer this OpenCV cannot run: its reason is the line
        types.append(bench.PeerUnavailable)
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
        if _debug():
            traceback.print_exc()
        print(f"\n{PROG}: interrupted", file=sys.stderr)
        return 130
    except UsageError as exc:
        if _debug():
            traceback.print_exc()
        _print_error(str(exc))
        return 2
    except BrokenPipeError:  # e.g. `srlab models | head`: stop quietly
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 1
    except Exception as exc:  # noqa: BLE001 - the one place that turns errors into a line
        if _debug():
            traceback.print_exc()
        if isinstance(exc, _known_failure_types()):
            if isinstance(exc, FileNotFoundError) and exc.filename:
                _print_error(f"{exc.filename}: no such file or folder")
            elif isinstance(exc, OSError) and exc.strerror and exc.filename:
                _print_error(f"{exc.filename}: {exc.strerror}")
            else:
                _print_error(str(exc) or type(exc).__name__)
        else:
            hint = "" if _debug() else " (run with SRLAB_DEBUG=1 for a traceback)"
            _print_error(f"unexpected {type(exc).__name__}: {_one_line(str(exc))}{hint}")
        return 1


if __name__ == "__main__":
    sys.exit(main())

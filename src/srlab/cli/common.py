"""What every verb of the CLI shares: one-line errors, argument types, the model options and
the one model check (``zoo.catalog.resolve``), and the options several verbs take."""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

__all__ = [
    "PROG", "DEFAULT_MAX_PIXELS", "UsageError", "one_line", "print_error", "warn", "debug",
    "Parser", "int_at_least", "fraction", "fraction_of", "number_in", "scale_factor", "pixel_count",
    "set_threads", "add_common_model_args",
    "check_model", "usage_message", "warn_if_untrained", "add_cache_options", "benchmark_sets",
    "add_backend_arg",
]

PROG = "srlab"
DEFAULT_MAX_PIXELS = 100_000_000  # = imageio.DEFAULT_MAX_PIXELS (not imported: keep startup fast)


class UsageError(Exception):
    """Bad command-line usage, reported as one line with exit status 2."""


def one_line(text: str) -> str:
    return " ".join(str(text).split()) or "unknown error"


def print_error(message: str) -> None:
    print(f"{PROG}: error: {one_line(message)}", file=sys.stderr)


def warn(message: str) -> None:
    print(f"{PROG}: warning: {one_line(message)}", file=sys.stderr)


def debug() -> bool:
    return os.environ.get("SRLAB_DEBUG", "") not in ("", "0")


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (not usage + message) and exits with 2."""

    def error(self, message: str) -> NoReturn:
        print_error(f"{message} (see '{self.prog} --help')")
        raise SystemExit(2)


def int_at_least(low: int, what: str, high: int | None = None) -> Callable[[str], int]:
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


def number_in(what: str, low: float, high: float | None = None) -> Callable[[str], float]:
    """An argparse type for a finite number from ``low`` to ``high`` (no upper end when None)
    whose one-line errors name the option: the one range parser of the command line."""
    span = f"from {low:g} to {high:g}" if high is not None else f"of at least {low:g}"
    upper = math.inf if high is None else high

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be a number {span}, not "
                                             f"'{text}'") from None
        if not low <= value <= upper or math.isinf(value):  # NaN fails the comparison
            raise argparse.ArgumentTypeError(f"{what} must be a number {span}, not {text}")
        return value

    parse.__name__ = what
    return parse


def fraction_of(what: str) -> Callable[[str], float]:
    """A number from 0 to 1 (--denoise, --detail)."""
    return number_in(what, 0, 1)


fraction = fraction_of("--denoise")  # --denoise: a number from 0 to 1


def pixel_count(text: str) -> int:
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


def set_threads(n: int | None) -> None:
    if n:
        import torch

        torch.set_num_threads(n)


scale_factor = number_in("--scale", 1)  # srlab upscale: any factor >= 1 (image.outsize)


class _GivenScale(argparse.Action):
    """Stores --scale and notes it was given: the default factor gives way to --width/--fit,
    a factor the user typed conflicts with them."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:  # noqa: ANN001
        setattr(namespace, self.dest, values)
        namespace.scale_given = True


def add_common_model_args(p: argparse.ArgumentParser, *, scale_default: int = 4,
                          any_scale: bool = False, model_files: bool = False) -> None:
    """``any_scale``: any factor >= 1 (``image.outsize``); ``model_files``: ``-m`` also takes
    your own model file (``cli/model_file.py``), whose scale is its own unless ``--scale`` is
    given (``args.scale_given`` says whether it was)."""
    own = ("; a model file's own scale" if model_files else "")
    if any_scale:  # srlab upscale: any factor; the model runs at the nearest scale it ships
        p.add_argument("-s", "--scale", type=scale_factor, default=scale_default, metavar="S",
                       action=_GivenScale,
                       help=f"upscaling factor, any number >= 1 (default: {scale_default}"
                            f"{own}): "
                            "2, 3 or 4 run the model at that scale where it ships; any other "
                            "runs the nearest shipped scale at or above and resizes the result "
                            "(MATLAB's antialiased bicubic)")
    else:
        p.add_argument("-s", "--scale", type=int, choices=(2, 3, 4), default=scale_default,
                       action=_GivenScale,
                       help=f"upscaling factor (default: {scale_default}{own})")
    p.set_defaults(scale_given=False)
    p.add_argument("-m", "--model", default=None, metavar="NAME",
                   help="registered model (default: srlab's default model, marked * in "
                        "'srlab models')" + (", or your own model file (.safetensors or "
                                            ".pth: SPAN, ESRGAN, Compact, SwinIR, HAT, DAT, "
                                            "... recognised by spandrel; srlab[spandrel])"
                                            if model_files else ""))
    p.add_argument("--weights", type=Path, default=None, metavar="FILE",
                   help="weights file (.safetensors, or a tensors-only .pth) instead of the "
                        "weights shipped for the model")
    p.add_argument("--threads", type=int_at_least(1, "--threads"), default=None, metavar="N",
                   help="CPU threads for torch (default: torch's choice)")


def check_model(name: str | None, scale: int, *, allow_auto: bool = False) -> str:
    """Unknown model or unsupported scale is a usage error (exit 2), found before any work
    (``zoo.catalog.resolve``, the one check)."""
    from srlab.zoo.catalog import resolve

    try:
        return resolve(name, scale, allow_auto=allow_auto)
    except ValueError as exc:
        raise UsageError(usage_message(exc)) from None


def usage_message(exc: BaseException) -> str:
    """A refused model choice as the CLI says it: an unknown name points at 'srlab models'."""
    from srlab.zoo.registry import UnknownModelError

    return f"{exc}; see 'srlab models'" if isinstance(exc, UnknownModelError) else str(exc)


def warn_if_untrained(up: Any) -> None:
    if not up.trained:
        warn(f"model '{up.name}' x{up.scale} has no trained weights yet and runs on random "
              "ones: expect noise, not an upscaled image (try --model bicubic, or --weights)")


def add_cache_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache", type=Path, default=Path("out/score-cache"), metavar="DIR",
                   help="reuse scores measured before for the same tensors and images "
                        "(default: out/score-cache)")
    p.add_argument("--no-cache", dest="cache", action="store_const", const=None,
                   help="measure everything again and store nothing")
    p.add_argument("--refresh", action="store_true",
                   help="measure everything again and store the fresh rows in the cache, "
                        "replacing older ones (e.g. rows timed on a busy machine)")


def benchmark_sets(given: list[Path] | None) -> list[Path]:
    """The HR folders to score: those given, else Set5 from $SRLAB_SHARED; all must exist."""
    from srlab.image.datasets import shared_dir

    datasets = given or [shared_dir() / "datasets" / "benchmark" / "Set5"]
    for d in datasets:
        if not d.is_dir():
            raise UsageError(f"dataset folder not found: {d}")
    return datasets


def add_backend_arg(p: argparse.ArgumentParser) -> None:
    from srlab.runtime.measured import BACKENDS

    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="who runs the network: auto (default: the fastest backend 'srlab bench "
                        "--store' measured for this model, scale and CPU within 0.02 dB of "
                        "float32; torch when nothing is stored or a runtime is missing), "
                        "torch, onnx (ONNX Runtime; exported and cached on first use, needs "
                        "srlab[onnx]), onnx-int8 (the same quantised to int8, calibrated on "
                        "the training images on first use), torch-bf16 (bfloat16 autocast: "
                        "fast only on CPUs where bf16 measures faster), openvino (the ONNX "
                        "export on OpenVINO, bfloat16 where the CPU has it; needs "
                        "srlab[onnx,openvino]) or ncnn (span and espcn networks with Winograd "
                        "convolutions; needs srlab[peers])")


def add_readme_args(p: argparse.ArgumentParser, section: str) -> None:
    """``--readme FILE`` and ``--section NAME``: where a command writes its generated table."""
    p.add_argument("--readme", type=Path, default=None, metavar="FILE",
                   help="also write the table into FILE between '<!-- srlab:NAME -->' and "
                        "'<!-- /srlab:NAME -->' markers")
    p.add_argument("--section", default=section, metavar="NAME",
                   help=f"marker name for --readme (default: {section})")

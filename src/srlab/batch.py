"""The batch upscale task behind ``srlab upscale``: files and folders in, upscaled files out.

Where the outputs go (decided once, up front, for the whole batch, so that a naming conflict
is reported before any work is done):

* no ``output``: next to each input, as ``NAME_x{scale}.png`` (``ext`` picks another format).
  PNG by default because it is lossless and keeps 16-bit and alpha: re-encoding an upscaled
  JPEG as JPEG would add a second round of compression artefacts.
* one input file and ``output`` with an image extension (``-o big.jpg``): exactly that file;
  its extension chooses the format.
* otherwise ``output`` is a folder (created if missing) and every output keeps its input's
  file name, so ``srlab upscale lr/ -o sr/`` mirrors the folder. The format follows the
  input's extension (GIF, which cannot hold an upscaled photo, becomes PNG) unless ``ext``
  says otherwise.

Folders contribute the image files directly inside them (not sub-folders), sorted by name.
An input file is never overwritten unless ``force`` is set; existing outputs are.

A file that cannot be read, upscaled or written is recorded as a failure and the batch goes
on; ``BatchResult.exit_code`` is 1 when anything failed. Arguments that make no sense
together raise ``UsageError`` before anything is done.
"""

from __future__ import annotations

import math
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from srlab.image.imageio import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    WRITE_EXTENSIONS,
    ImageError,
    is_image_file,
    load_image,
    save_image,
)

if TYPE_CHECKING:
    from srlab.api import AutoUpscaler, Upscaler
    from srlab.image.condition import Condition

__all__ = [
    "AUTO_TILE",
    "AUTO_TILE_PIXELS",
    "BatchResult",
    "Job",
    "UsageError",
    "Written",
    "auto_tile",
    "plan_jobs",
    "resolve_model",
    "upscale_files",
]

AUTO_TILE_PIXELS = 2_000_000
"""Inputs above this many pixels are upscaled in tiles, so memory stays bounded (a 4x pass
over a 12 Mpx photo in one piece would need several GB of activations)."""
AUTO_TILE = 512


class UsageError(ValueError):
    """The arguments contradict each other (e.g. ``-o file.png`` with several inputs)."""


@dataclass(frozen=True)
class Job:
    source: Path
    target: Path


@dataclass(frozen=True)
class Written:
    source: Path
    target: Path
    in_size: tuple[int, int]  # width, height
    out_size: tuple[int, int]
    seconds: float


@dataclass
class BatchResult:
    written: list[Written] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)  # input, one-line reason

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1


def auto_tile(height: int, width: int) -> int:
    """Tile size used when none is given: 0 (one pass) up to ~2 Mpx, else 512."""
    return AUTO_TILE if height * width > AUTO_TILE_PIXELS else 0


def _normalise_ext(ext: str | None) -> str | None:
    if ext is None:
        return None
    e = ext.lower() if ext.startswith(".") else f".{ext.lower()}"
    if e not in WRITE_EXTENSIONS:
        known = ", ".join(sorted({k.lstrip(".") for k in WRITE_EXTENSIONS}))
        raise UsageError(f"unknown output format '{ext}' (choose from {known})")
    return e


def _expand(inputs: Sequence[Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    files: list[Path] = []
    failed: list[tuple[Path, str]] = []
    seen: set[Path] = set()
    for p in inputs:
        try:  # an unlistable folder (or a path under one) fails alone, not the whole batch
            if p.is_dir():
                found = sorted((f for f in p.iterdir() if is_image_file(f)),
                               key=lambda f: f.name)
                if not found:
                    failed.append((p, f"{p}: no image files in this folder"))
            elif p.exists():
                found = [p]
            else:
                failed.append((p, f"{p}: no such file or folder"))
                continue
        except OSError as exc:
            failed.append((p, f"{p}: cannot read ({exc.strerror or type(exc).__name__})"))
            continue
        for f in found:  # the same file given twice (a.png dir/) is done once
            if f.resolve() not in seen:
                seen.add(f.resolve())
                files.append(f)
    return files, failed


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def plan_jobs(
    inputs: Sequence[Path | str],
    *,
    output: Path | str | None,
    scale: int,
    ext: str | None = None,
    force: bool = False,
) -> tuple[list[Job], list[tuple[Path, str]]]:
    """Decide every output path (rules in the module docstring).

    Returns the jobs and the inputs refused already (missing, would overwrite an input, two
    inputs mapping to one output). Raises ``UsageError`` for contradictory arguments.
    """
    paths = [Path(p) for p in inputs]
    out_ext = _normalise_ext(ext)
    files, failed = _expand(paths)
    # exactly one image in all, or one input path that is not a folder (a missing file
    # should fail as missing, not as a usage error)
    single_file = (len(files) == 1 and not failed) or (len(paths) == 1 and not paths[0].is_dir())

    file_target: Path | None = None
    out_dir: Path | None = None
    if output is not None:
        out = Path(output)
        trailing_sep = str(output).endswith(("/", os.sep))
        suffix = out.suffix.lower()
        looks_like_image = suffix in WRITE_EXTENSIONS or suffix in IMAGE_EXTENSIONS
        if out.is_dir() or trailing_sep:
            out_dir = out
        elif out.exists():
            if not single_file:
                raise UsageError(f"-o {out}: exists and is not a folder, but there are "
                                 "several inputs")
            file_target = out
        elif single_file and suffix:
            file_target = out
        elif looks_like_image:
            raise UsageError(f"-o {out} names one image file, but there are "
                             f"{max(len(files), len(paths))} inputs; give a folder instead")
        else:
            out_dir = out
        if file_target is not None:
            fmt_ext = file_target.suffix.lower()
            if fmt_ext not in WRITE_EXTENSIONS:
                known = " ".join(sorted(WRITE_EXTENSIONS))
                raise UsageError(f"cannot tell the image format from '{file_target.name}' "
                                 f"(use one of: {known})")
            if out_ext is not None and WRITE_EXTENSIONS[out_ext] != WRITE_EXTENSIONS[fmt_ext]:
                raise UsageError(f"--ext {ext} contradicts -o {file_target.name}")

    jobs: list[Job] = []
    taken: dict[Path, Path] = {}
    for src in files:
        if file_target is not None:
            target = file_target
        elif out_dir is not None:
            if out_ext is not None:
                suffix_out = out_ext
            elif src.suffix.lower() in WRITE_EXTENSIONS:
                suffix_out = src.suffix  # the name is kept exactly, case included
            else:
                suffix_out = ".png"  # GIF or no extension
            target = out_dir / (src.stem + suffix_out)
        else:
            target = src.with_name(f"{src.stem}_x{scale}{out_ext or '.png'}")
        key = target.resolve()
        if key in taken:
            failed.append((src, f"{src}: its output {target} is also the output of "
                                f"{taken[key]}; skipped"))
            continue
        if not force and any(_same_file(target, other) for other in files):
            failed.append((src, f"{src}: refusing to overwrite the input file {target} "
                                "(pass --force to allow it)"))
            continue
        taken[key] = src
        jobs.append(Job(src, target))
    return jobs, failed


def resolve_model(model: str | None, scale: int, *, allow_auto: bool = False) -> str:
    """The model name to use, checked before any work: an unknown model or unsupported scale
    is a ``UsageError``. None means the default for the scale: ``auto`` where it is allowed
    and both its networks ship, else the default network."""
    from srlab.zoo.registry import AUTO, UnknownModelError, auto_available, default_model, get_spec

    if model == AUTO or (model is None and allow_auto and auto_available(scale)):
        if not allow_auto:
            raise UsageError("'auto' chooses a network per image; name one network here")
        if not auto_available(scale):
            raise UsageError(f"auto is not available at x{scale} (span-real ships at x2 "
                             "and x4); name a model")
        return AUTO
    name = model or default_model(scale)
    try:
        spec = get_spec(name)
    except UnknownModelError as exc:
        raise UsageError(f"{exc}; see 'srlab models'") from None
    if scale not in spec.scales:
        raise UsageError(f"model '{name}' supports scales {list(spec.scales)}, not {scale}")
    return name


def load_upscaler(model: str | None, scale: int, weights: str | Path | None = None) -> Upscaler:
    """The model, loaded once per batch. An unknown model or unsupported scale is a
    ``UsageError``; a bad weights file raises ``WeightsError``."""
    from srlab.api import load_model

    return load_model(resolve_model(model, scale, allow_auto=weights is None), scale,
                      weights=weights)


def upscale_files(
    inputs: Sequence[Path | str],
    *,
    output: Path | str | None = None,
    scale: int = 4,
    model: str | None = None,
    weights: str | Path | None = None,
    upscaler: Upscaler | None = None,
    self_ensemble: bool = False,
    tile: int = 0,
    overlap: int | None = None,
    force: bool = False,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    ext: str | None = None,
    quality: int = 95,
    progress: bool = False,
    on_written: Callable[[Written], None] | None = None,
    on_error: Callable[[Path, str], None] | None = None,
    on_model: Callable[[Upscaler], None] | None = None,
    on_choice: Callable[[Path, Condition, str], None] | None = None,
) -> BatchResult:
    """Upscale every input image and write the results (see the module docstring for names).

    ``upscaler`` (already loaded) wins over ``model``/``weights``/``scale``; otherwise the
    model is loaded once, and only if there is something to do. ``self_ensemble`` averages
    the model over 8 flips and rotations (``ensemble.py``; 8x slower). ``tile`` 0 means automatic
    (see ``auto_tile``); ``overlap`` None means the model's receptive field, which makes
    tiled output identical to untiled. ``progress`` shows a bar on stderr (when it is a
    terminal): per image for a batch, per tile for one large image. ``on_error`` receives
    each failure as it happens, with a one-line reason that names the file; ``on_model``
    the loaded model before the first image (the CLI warns there about untrained weights);
    ``on_choice`` what ``auto`` read in each image and the network it chose.
    """
    from tqdm import tqdm

    if upscaler is not None:
        scale = upscaler.scale
    jobs, refused = plan_jobs(inputs, output=output, scale=scale, ext=ext, force=force)
    result = BatchResult()

    def fail(src: Path, message: str) -> None:
        result.failed.append((src, message))
        if on_error is not None:
            on_error(src, message)

    for src, message in refused:
        fail(src, message)
    if not jobs:
        return result
    up = upscaler if upscaler is not None else load_upscaler(model, scale, weights)
    if self_ensemble:
        up = up.self_ensembled()
    if on_model is not None:
        on_model(up)

    bar = tqdm(total=len(jobs), unit="img", file=sys.stderr, dynamic_ncols=True,
               disable=None if progress and len(jobs) > 1 else True)
    try:
        for job in jobs:
            bar.set_postfix_str(job.source.name, refresh=False)
            try:
                written = _upscale_one(job, up, tile=tile, overlap=overlap,
                                       max_pixels=max_pixels, quality=quality,
                                       tile_bar=progress and len(jobs) == 1,
                                       on_choice=on_choice)
            except ImageError as exc:
                fail(job.source, str(exc))
            except (ValueError, OSError, RuntimeError, MemoryError) as exc:
                if os.environ.get("SRLAB_DEBUG", "") not in ("", "0"):
                    traceback.print_exc()
                text = str(exc).strip().splitlines()[0] if str(exc).strip() \
                    else type(exc).__name__
                fail(job.source, f"{job.source}: {text}")
            else:
                result.written.append(written)
                if on_written is not None:
                    on_written(written)
            bar.update(1)
    finally:
        bar.close()
    return result


def _upscale_one(job: Job, up: Upscaler | AutoUpscaler, *, tile: int, overlap: int | None,
                 max_pixels: int | None, quality: int, tile_bar: bool,
                 on_choice: Callable[[Path, Condition, str], None] | None = None) -> Written:
    from tqdm import tqdm

    from srlab.api import AutoUpscaler

    start = time.perf_counter()
    img = load_image(job.source, max_pixels=max_pixels)
    if isinstance(up, AutoUpscaler):  # the file too: its JPEG tables are the best cue
        auto, up = up, up.pick(img.array, job.source)
        if on_choice is not None and auto.last is not None:
            # the backend folds into auto's existing line: "-> span [onnx]" (torch: silent)
            on = getattr(up, "backend", "torch")
            on_choice(job.source, auto.last[0], up.name if on == "torch" else f"{up.name} [{on}]")
    t = tile if tile > 0 else auto_tile(img.height, img.width)
    n_tiles = math.ceil(img.height / t) * math.ceil(img.width / t) if t > 0 else 1
    with tqdm(total=n_tiles, unit="tile", file=sys.stderr, leave=False, dynamic_ncols=True,
              disable=None if tile_bar and n_tiles > 1 else True) as bar:
        sr = up.upscale_array(img.array, tile=t, overlap=overlap, on_tile=lambda: bar.update(1))
    job.target.parent.mkdir(parents=True, exist_ok=True)
    save_image(sr, job.target, icc_profile=img.icc_profile, quality=quality)
    return Written(job.source, job.target, (img.width, img.height),
                   (int(sr.shape[1]), int(sr.shape[0])), time.perf_counter() - start)

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
  input's extension (a still GIF, which cannot hold an upscaled photo, becomes PNG; an
  animated GIF or WebP stays an animation in its format) unless ``ext``
  says otherwise.

Folders contribute the image files directly inside them (not sub-folders), sorted by name;
with ``recursive`` (``-r``) every image below them, and each output keeps its sub-folder under
``output``.
An input file is never overwritten unless ``force`` is set; existing outputs are.

A file that cannot be read, upscaled or written is recorded as a failure and the batch goes
on; ``BatchResult.exit_code`` is 1 when anything failed. Arguments that make no sense
together raise ``UsageError`` before anything is done.

The model: named once in ``UpscaleOptions``, resolved once (``resolve_choice``, over
``zoo.catalog.resolve``) before the outputs are planned, and loaded once, on its backend,
only if there is something to do (``load_upscaler``). Tile size: ``runtime.upscaler.TILE_POLICY``.

Many images (``cluster``, ``manifest``, ``resume`` or fsspec URLs such as ``memory://`` and
``s3://``): ``batch.cluster`` runs the same per-file work as tasks, on a Dask cluster or in
this process, and keeps a JSON Lines manifest (``batch.manifest``) so a batch can resume.
Without them nothing here changes and Dask is never imported.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from srlab.image.animation import ANIMATED_EXTENSIONS, animated_format
from srlab.image.imageio import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    WRITE_EXTENSIONS,
    ImageError,
    is_image_file,
    load_image,
    save_image,
)
from srlab.image.outsize import MAX_ENLARGEMENT, OutputSize, SizePlan, finish, plan_size

if TYPE_CHECKING:
    from srlab.api import AutoUpscaler
    from srlab.image.condition import Condition
    from srlab.runtime.upscaler import Upscaler

__all__ = [
    "BatchHooks",
    "BatchResult",
    "Job",
    "UpscaleOptions",
    "UsageError",
    "Written",
    "load_upscaler",
    "upscale_one",
    "plan_jobs",
    "resolve_choice",
    "upscale_files",
]


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
    model: str = ""  # the network that ran (auto's choice for auto), for the manifest
    backend: str = ""
    ran: str = ""  # with a resize after the network: "span x4 -> resize to 1.5x (768x512)"
    frames: int = 1  # an animation's frame count


@dataclass
class BatchResult:
    written: list[Written] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)  # input, one-line reason
    skipped: list[Path] = field(default_factory=list)  # resume: outputs already complete
    summary: str = ""  # many images: one line (counts, rate, workers, manifest)

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1


def _normalise_ext(ext: str | None) -> str | None:
    if ext is None:
        return None
    e = ext.lower() if ext.startswith(".") else f".{ext.lower()}"
    if e not in WRITE_EXTENSIONS:
        known = ", ".join(sorted({k.lstrip(".") for k in WRITE_EXTENSIONS}))
        raise UsageError(f"unknown output format '{ext}' (choose from {known})")
    return e


def _expand(inputs: Sequence[Path], recursive: bool = False,
            subdir: dict[Path, Path] | None = None,
            ) -> tuple[list[Path], list[tuple[Path, str]]]:
    files: list[Path] = []
    failed: list[tuple[Path, str]] = []
    seen: set[Path] = set()
    for p in inputs:
        try:  # an unlistable folder (or a path under one) fails alone, not the whole batch
            if p.is_dir():
                found = sorted((f for f in (p.rglob("*") if recursive else p.iterdir())
                                if is_image_file(f)), key=lambda f: f.relative_to(p).parts)
                if recursive and subdir is not None:  # -r: where each output goes under -o
                    subdir.update({f: f.relative_to(p).parent for f in found})
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


class _Inputs:
    """Whether a path is one of the input files (the same file, by device and inode, or by
    resolved path when it does not exist yet): one lookup per target, not one per input,
    so planning a million files stays linear."""

    def __init__(self, files: Sequence[Path]) -> None:
        self.ids: set[tuple[int, int]] = set()
        self.paths = {f.resolve() for f in files}
        for f in files:
            try:
                st = f.stat()
            except OSError:
                continue
            self.ids.add((st.st_dev, st.st_ino))

    def __contains__(self, target: Path) -> bool:
        try:
            st = target.stat()
        except OSError:
            return target.resolve() in self.paths
        return (st.st_dev, st.st_ino) in self.ids


def plan_jobs(
    inputs: Sequence[Path | str],
    *,
    output: Path | str | None,
    scale: int,
    ext: str | None = None,
    force: bool = False,
    recursive: bool = False,
    label: str | None = None,
) -> tuple[list[Job], list[tuple[Path, str]]]:
    """Decide every output path (rules in the module docstring).

    Returns the jobs and the inputs refused already (missing, would overwrite an input, two
    inputs mapping to one output). Raises ``UsageError`` for contradictory arguments.
    ``label`` replaces ``x{scale}`` in default names (an ``OutputSize.label()``).
    """
    label = label or f"x{scale}"
    paths = [Path(p) for p in inputs]
    out_ext = _normalise_ext(ext)
    subdir: dict[Path, Path] = {}
    files, failed = _expand(paths, recursive, subdir)
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
            if fmt_ext not in WRITE_EXTENSIONS and fmt_ext not in ANIMATED_EXTENSIONS:
                known = " ".join(sorted(WRITE_EXTENSIONS))
                raise UsageError(f"cannot tell the image format from '{file_target.name}' "
                                 f"(use one of: {known})")
            if out_ext is not None and WRITE_EXTENSIONS[out_ext] != WRITE_EXTENSIONS[fmt_ext]:
                raise UsageError(f"--ext {ext} contradicts -o {file_target.name}")

    if recursive and out_dir is not None:  # -r -o inside an input: never re-read outputs
        files = [f for f in files if not f.resolve().is_relative_to(out_dir.resolve())]
    jobs: list[Job] = []
    taken: dict[Path, Path] = {}
    input_files = _Inputs(files) if not force else None
    for src in files:
        if file_target is not None:
            target = file_target
        elif out_dir is not None:
            if out_ext is not None:
                suffix_out = out_ext
            elif src.suffix.lower() in WRITE_EXTENSIONS:
                suffix_out = src.suffix  # the name is kept exactly, case included
            else:
                suffix_out = _animated_suffix(src) or ".png"  # GIF or no extension
            target = out_dir / subdir.get(src, Path()) / (src.stem + suffix_out)
        else:
            suffix_out = out_ext or _animated_suffix(src) or ".png"
            target = src.with_name(f"{src.stem}_{label}{suffix_out}")
        key = target.resolve()
        if key in taken:
            failed.append((src, f"{src}: its output {target} is also the output of "
                                f"{taken[key]}; skipped"))
            continue
        if input_files is not None and target in input_files:
            failed.append((src, f"{src}: refusing to overwrite the input file {target} "
                                "(pass --force to allow it)"))
            continue
        taken[key] = src
        jobs.append(Job(src, target))
    return jobs, failed


@dataclass(frozen=True)
class UpscaleOptions:
    """Everything one ``srlab upscale`` run decides, as one value (the CLI builds it from
    its arguments; a script can build it directly)."""

    output: Path | str | None = None
    scale: int = 4
    model: str | None = None  # None: auto where both its networks ship, else the default
    weights: str | Path | None = None  # a weights file instead of the shipped one
    backend: str = "torch"  # who runs the network: torch, onnx, torch-bf16 or auto
    denoise: float | None = None  # 0..1: blend span towards span-real
    detail: float | None = None  # 0..1: blend span-real towards span-real-gan (zoo.blend)
    threads: int | None = None  # for the ONNX Runtime session (torch's are process-wide)
    self_ensemble: bool = False  # average over the 8 flips and rotations (8x slower)
    tile: int = 0  # 0: automatic (runtime.upscaler.TILE_POLICY)
    overlap: int | None = None  # None: the model's receptive field (tiled == untiled)
    force: bool = False  # allow an output to replace an input file
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    ext: str | None = None
    quality: int = 95
    progress: bool = False  # bars on stderr: per image for a batch, per tile for one image
    recursive: bool = False  # -r: images in sub-folders too, their tree kept under output
    # many images (batch.cluster): "local:N", "tcp://host:8786" or a distributed Client
    cluster: object = None
    manifest: str | Path | None = None  # JSON Lines record; default: beside the outputs
    resume: bool = False  # skip inputs whose output is already complete (verified)
    chunk: int = 0  # files per cluster task; 0: sized to ~1.5 s of work (batch.cluster)
    # any output size (image.outsize): the model runs at the scale the plan picks, then the
    # result is resized; None: exactly x``scale``
    size: OutputSize | None = None
    strip_metadata: bool = False  # drop EXIF, XMP and the ICC profile instead of keeping them


@dataclass(frozen=True)
class BatchHooks:
    """What the caller hears while the batch runs. ``on_error`` gets each failure with a
    one-line reason that names the file; ``on_model`` the loaded model before the first
    image (the CLI warns there about untrained weights); ``on_choice`` what ``auto`` read in
    each image and the network it chose."""

    on_written: Callable[[Written], None] | None = None
    on_error: Callable[[Path, str], None] | None = None
    on_model: Callable[[Upscaler], None] | None = None
    on_choice: Callable[[Path, Condition, str], None] | None = None


def resolve_choice(opts: UpscaleOptions) -> str:
    """The model to run, checked once before any work (``zoo.catalog.resolve``): ``auto``
    for a blend (``--denoise``/``--detail``, ``zoo.blend``), else the named one or the
    default. Any refusal is a ``UsageError`` in the catalogue's words, caused by the
    catalogue's ``ChoiceError``."""
    from srlab.zoo.blend import CHAIN, Blend
    from srlab.zoo.catalog import resolve
    from srlab.zoo.registry import AUTO

    try:
        blend = Blend(opts.denoise, opts.detail)
        if blend.given:
            blend.check(opts.scale)
    except ValueError as exc:  # BlendError: a strength outside 0..1, a missing network
        raise UsageError(str(exc)) from exc
    if blend.given:
        if opts.model not in (None, *CHAIN) or opts.weights is not None:
            flag = "--detail" if opts.detail is not None else "--denoise"
            raise UsageError(f"{flag} blends the shipped {', '.join(CHAIN)} weights; drop "
                             "--model/--weights")
        return AUTO
    try:
        return resolve(opts.model, opts.scale, allow_auto=opts.weights is None)
    except ValueError as exc:  # the cause says which refusal it was (the CLI adds a hint)
        raise UsageError(str(exc)) from exc


def load_upscaler(opts: UpscaleOptions, model: str) -> Upscaler | AutoUpscaler:
    """``model`` (from ``resolve_choice``) on ``opts.backend``, loaded once for the batch.
    ``auto``, ``--denoise`` and ``--detail`` run whole shipped networks on that backend and
    blends as their cached export on it (``api.load_model``, ``runtime.backends.load_blend``).
    A backend that cannot run here (no onnxruntime) is a ``UsageError``; a bad weights file
    raises ``WeightsError``."""
    from srlab.api import AutoUpscaler, load_model
    from srlab.runtime.backends import load_backend
    from srlab.runtime.onnx import OnnxError
    from srlab.zoo.blend import Blend
    from srlab.zoo.registry import AUTO

    def on_backend(name: str) -> Upscaler:
        try:
            return load_backend(name, opts.scale, backend=opts.backend,  # type: ignore[arg-type]
                                weights=opts.weights, threads=opts.threads)
        except OnnxError as exc:  # e.g. --backend onnx without onnxruntime installed
            raise UsageError(str(exc)) from None

    if model != AUTO:
        return on_backend(model)

    def net(d: float | None, detail: float | None = None) -> Upscaler:
        whole = Blend(d, detail).whole()  # an end point: that shipped network on the backend
        if whole is not None and opts.backend != "torch":
            return on_backend(whole)
        return load_model(scale=opts.scale, denoise=d, detail=detail,
                          backend=opts.backend)

    try:
        if opts.denoise is not None or opts.detail is not None:
            return net(opts.denoise, opts.detail)
        return AutoUpscaler(opts.scale, loader=net)
    except ValueError as exc:  # e.g. span-real not shipped at this scale
        raise UsageError(str(exc)) from None


def upscale_files(
    inputs: Sequence[Path | str],
    options: UpscaleOptions | None = None,
    *,
    upscaler: Upscaler | AutoUpscaler | None = None,
    hooks: BatchHooks | None = None,
    **changes: object,
) -> BatchResult:
    """Upscale every input image and write the results (see the module docstring for names).

    ``options`` says what to do (``changes`` replace some of its fields: ``output=...``);
    ``upscaler`` (already loaded) wins over its model/weights/scale/backend. Otherwise the
    model is resolved once, first, and loaded once, only if there is something to do.
    ``progress`` shows a bar on stderr (when it is a terminal): per image for a batch, per
    tile for one large image.
    """
    from tqdm import tqdm

    opts = replace(options or UpscaleOptions(), **changes)  # type: ignore[arg-type]
    hooks = hooks or BatchHooks()
    from srlab.batch.storage import is_url

    if opts.cluster is not None or opts.manifest is not None or opts.resume or \
            any(is_url(p) for p in [*inputs, opts.output or ""]):
        from srlab.batch.cluster import run_many  # many images: tasks, manifest, resume

        return run_many(inputs, opts, upscaler=upscaler, hooks=hooks)
    model = None
    if upscaler is not None:
        opts = replace(opts, scale=upscaler.scale)
    elif opts.size is None:
        model = resolve_choice(opts)
    models = ModelSet(opts, upscaler, model, hooks)  # the network per model scale
    jobs, refused = plan_jobs(inputs, output=opts.output, scale=opts.scale, ext=opts.ext,
                              force=opts.force, recursive=opts.recursive,
                              label=opts.size.label() if opts.size else None)
    result = BatchResult()

    def fail(src: Path, message: str) -> None:
        result.failed.append((src, message))
        if hooks.on_error is not None:
            hooks.on_error(src, message)

    for src, message in refused:
        fail(src, message)
    if not jobs:
        return result
    models.preload()

    bar = tqdm(total=len(jobs), unit="img", file=sys.stderr, dynamic_ncols=True,
               disable=None if opts.progress and len(jobs) > 1 else True)
    try:
        for job in jobs:
            bar.set_postfix_str(job.source.name, refresh=False)
            try:
                written = upscale_one(job, models, tile=opts.tile, overlap=opts.overlap,
                                       max_pixels=opts.max_pixels, quality=opts.quality,
                                       tile_bar=opts.progress and len(jobs) == 1,
                                       on_choice=hooks.on_choice,
                                       strip_metadata=opts.strip_metadata)
            except UsageError:
                raise  # a model that cannot load here (a later scale of --fit): stop
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
                if hooks.on_written is not None:
                    hooks.on_written(written)
            bar.update(1)
    finally:
        bar.close()
    return result


def upscale_one(job: Job, models: ModelSet, *, tile: int, overlap: int | None,
                 max_pixels: int | None, quality: int, tile_bar: bool,
                 on_choice: Callable[[Path, Condition, str], None] | None = None,
                 strip_metadata: bool = False) -> Written:
    from tqdm import tqdm

    from srlab.api import AutoUpscaler
    from srlab.runtime.upscaler import TILE_POLICY

    start = time.perf_counter()
    if _animated_suffix(job.source, any_format=True):
        return _upscale_animation(job, models, tile=tile, overlap=overlap,
                                  max_pixels=max_pixels, quality=quality, start=start,
                                  strip_metadata=strip_metadata)
    img = load_image(job.source, max_pixels=max_pixels)
    plan = models.plan(img.width, img.height)
    up = models.get(plan.model_scale)
    name = getattr(up, "name", "")
    if isinstance(up, AutoUpscaler):  # the file too: its JPEG tables are the best cue
        auto, up = up, up.pick(img.array, job.source)
        name = up.name
        if on_choice is not None and auto.last is not None:
            # the backend folds into auto's existing line: "-> span [onnx]" (torch: silent)
            on = getattr(up, "backend", "torch")
            on_choice(job.source, auto.last[0], up.name if on == "torch" else f"{up.name} [{on}]")
    t = TILE_POLICY.tile_for(img.height, img.width, tile)
    n_tiles = TILE_POLICY.count(img.height, img.width, tile)
    with tqdm(total=n_tiles, unit="tile", file=sys.stderr, leave=False, dynamic_ncols=True,
              disable=None if tile_bar and n_tiles > 1 else True) as bar:
        sr = up.upscale_array(img.array, tile=t, overlap=overlap, on_tile=lambda: bar.update(1))
    sr = finish(sr, plan)
    job.target.parent.mkdir(parents=True, exist_ok=True)
    keep = not strip_metadata
    save_image(sr, job.target, icc_profile=img.icc_profile if keep else None, quality=quality,
               exif=img.exif if keep else None, xmp=img.xmp if keep else None)
    return Written(job.source, job.target, (img.width, img.height),
                   (int(sr.shape[1]), int(sr.shape[0])), time.perf_counter() - start,
                   model=name, backend=getattr(up, "backend", "torch"),
                   ran=plan.describe(up.name) if plan.resize else "", frames=1)



# --------------------------------------------------------------------------------------------
# any output size (image.outsize) and animations (image.animation)
# --------------------------------------------------------------------------------------------


class ModelSet:
    """The network per model scale for one batch: with an ``OutputSize`` each image's plan
    may pick another scale (``--fit`` on images of different sizes), so networks are loaded
    on first use and kept; without one, the one network at ``opts.scale``."""

    def __init__(self, opts: UpscaleOptions, upscaler: Upscaler | AutoUpscaler | None,
                 model: str | None, hooks: BatchHooks) -> None:
        self.opts, self.hooks, self.model, self._given = opts, hooks, model, upscaler
        self._loaded: dict[int, Upscaler | AutoUpscaler] = {}
        if upscaler is not None:
            self.scales = [upscaler.scale]
        elif opts.size is None:
            self.scales = [opts.scale]
        else:
            self.scales = self._run_scales()

    def _run_scales(self) -> list[int]:
        from srlab.zoo.blend import Blend
        from srlab.zoo.catalog import run_scales
        from srlab.zoo.registry import AUTO, default_model

        if self.opts.detail is not None:  # where every network of the blend ships
            blend = Blend(self.opts.denoise, self.opts.detail)
            whole = self.opts.size.integer_scale if self.opts.size is not None else None
            if whole is not None:  # a whole factor names the network's scale (x4 only)
                try:
                    blend.check(whole)
                except ValueError as exc:
                    raise UsageError(str(exc)) from exc
            return blend.scales()
        name = AUTO if self.opts.denoise is not None else self.opts.model
        if name is None and self.opts.weights is not None:
            name = default_model(4)
        try:
            return run_scales(name)
        except ValueError as exc:  # unknown model: the catalogue's words (CLI adds a hint)
            raise UsageError(str(exc)) from exc

    def plan(self, width: int, height: int) -> SizePlan:
        if self.opts.size is None:
            s = self.scales[0]
            return SizePlan(None, (width, height), s, (width * s, height * s))
        return plan_size(self.opts.size, width, height, self.scales,
                         max_pixels=self.opts.max_pixels)

    def preload(self) -> None:
        """Load the network before the first image where every image needs the same scale
        (no size, or a factor), so a model that cannot load stops the batch up front."""
        size = self.opts.size
        if size is None:
            self.get(self.scales[0])
        elif size.scale is not None:
            self.get(plan_size(size, 1000, 1000, self.scales).model_scale)

    def _ready(self, up: Upscaler | AutoUpscaler) -> Upscaler | AutoUpscaler:
        if self.opts.self_ensemble:
            up = up.self_ensembled()
        if self.hooks.on_model is not None and not self._loaded:
            self.hooks.on_model(up)
        return up

    def get(self, scale: int) -> Upscaler | AutoUpscaler:
        if scale not in self._loaded and self._given is not None:
            self._loaded[scale] = self._ready(self._given)  # its one scale (self.scales)
        if scale not in self._loaded:
            opts = replace(self.opts, scale=scale)
            model = self.model if self.opts.size is None else resolve_choice(opts)
            self._loaded[scale] = self._ready(load_upscaler(opts, model or ""))
        return self._loaded[scale]


def _animated_suffix(src: Path, *, any_format: bool = False) -> str | None:
    """The output extension that keeps ``src`` animated (.gif, .webp), or None for a still.
    ``any_format`` also answers for APNG (.png), which needs no change of name."""
    suffix = src.suffix.lower()
    if suffix not in (".gif", ".webp") and not (any_format and suffix == ".png"):
        return None
    fmt = animated_format(src)
    if fmt is None:
        return None
    return {"GIF": ".gif", "WEBP": ".webp", "PNG": ".png"}[fmt]


def _upscale_animation(job: Job, models: ModelSet, *, tile: int, overlap: int | None,
                       max_pixels: int | None, quality: int, start: float,
                       strip_metadata: bool) -> Written:
    """Every frame of an animated GIF/WebP/APNG upscaled (each tiled by ``TILE_POLICY``, one
    at a time), written animated with its durations, loop and disposal."""
    from srlab.api import AutoUpscaler
    from srlab.image.animation import load_animation, save_animation
    from srlab.runtime.upscaler import TILE_POLICY

    if job.target.suffix.lower() not in ANIMATED_EXTENSIONS:
        raise ImageError(f"{job.source} is animated; {job.target.suffix} holds one frame: "
                         "write .gif, .webp or .png (APNG)")
    anim = load_animation(job.source, max_pixels=max_pixels)
    in_size = (anim.width, anim.height)
    plan = models.plan(*in_size)
    total = len(anim.frames) * plan.out_size[0] * plan.out_size[1]
    if max_pixels and total > MAX_ENLARGEMENT * max_pixels:  # all frames are held at once
        raise ImageError(f"{job.source}: {len(anim.frames)} frames of {plan.out_size[0]}x"
                         f"{plan.out_size[1]} = {total:,} output pixels, above "
                         f"{MAX_ENLARGEMENT} x the input limit of {max_pixels:,}")
    up = models.get(plan.model_scale)
    if isinstance(up, AutoUpscaler):  # one network for the whole animation, from frame 1
        up = up.pick(anim.frames[0][..., :3], job.source)
    t = TILE_POLICY.tile_for(anim.height, anim.width, tile)
    for i, frame in enumerate(anim.frames):
        anim.frames[i] = finish(up.upscale_array(frame, tile=t, overlap=overlap), plan)
    job.target.parent.mkdir(parents=True, exist_ok=True)
    save_animation(anim, job.target, quality=quality, keep_metadata=not strip_metadata)
    return Written(job.source, job.target, in_size, plan.out_size, time.perf_counter() - start,
                   ran=plan.describe(up.name) if plan.resize else "", frames=len(anim.frames))

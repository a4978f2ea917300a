"""What the UI and the API share: limits, the work queue, the model cache, scratch files, and
the one upscale job both faces run (decode -> pick the network -> tiled upscale -> encode).

No Gradio or FastAPI here: this is the part a test can drive without a server.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from srlab.runtime.upscaler import TilePolicy
from srlab.zoo.catalog import resolve
from srlab.zoo.registry import AUTO, DENOISE_PAIR, DETAIL_PAIR

if TYPE_CHECKING:
    from srlab.api import AutoUpscaler
    from srlab.image.condition import Condition
    from srlab.image.imageio import LoadedImage
    from srlab.runtime.upscaler import Upscaler

__all__ = ["WEB_EXTRA_HINT", "MissingWebExtra", "import_gradio", "Limits", "WebError", "Busy",
           "Cancelled", "WorkGate", "check_output", "ModelCache", "ServerState", "Job", "Options",
           "Result", "FORMATS", "log", "probe", "decode", "run_image", "zip_results",
           "release_memory"]

WEB_EXTRA_HINT = "srlab serve needs the web extra: pip install 'srlab[web]'"

DEFAULT_MAX_UPLOAD_MB = 20.0
# input pixels: a 24 Mpx phone photo (6000 x 4000) and a little more; decoded it is 75 MB,
# and it runs through the tiled path, so the network's memory is one tile's whatever the size
DEFAULT_MAX_PIXELS = 25_000_000
# output pixels: what stays refused. The result is held whole (it is encoded as one file):
# 100 Mpx = 300 MB of 8-bit RGB, so a 25 Mpx photo runs at x2, a 6 Mpx one at x4
# (tools/web_memory.py measures the peak of such a job)
DEFAULT_MAX_OUTPUT_PIXELS = 100_000_000
DEFAULT_CONCURRENCY = 1  # upscales running at once (each may use all torch threads)
DEFAULT_QUEUE_SIZE = 8  # API upscales waiting; one more is answered 503 at once
UI_QUEUE_MAX = 64  # browser jobs waiting in Gradio's queue (files on disk: they cost nothing)
DEFAULT_MODEL_CACHE = 4  # loaded models kept in memory (LRU)
DEFAULT_MAX_BATCH = 10  # images in one UI batch
TILE = 256  # LR tile edge for large inputs: bounds activation memory, output is identical
# srlab's one tile rule (runtime.upscaler.TilePolicy) with the server's sizes: smaller tiles
# than the CLI's, above 2 tiles' worth of pixels, for fine progress and a small footprint per
# request
TILES = TilePolicy(tile=TILE, above_pixels=2 * TILE * TILE)
TILE_MIN, TILE_MAX = 32, 2048
# output formats: name -> (extension, MIME type); PNG keeps 16 bits and alpha
FORMATS = {"png": (".png", "image/png"), "jpg": (".jpg", "image/jpeg"),
           "webp": (".webp", "image/webp")}

log = logging.getLogger("srlab.web")
T = TypeVar("T")


class MissingWebExtra(ImportError):
    """gradio/fastapi/uvicorn are not installed; the message says how to get them."""


def import_gradio():
    """Import gradio with telemetry off (the server must work offline), or explain the fix."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    try:
        import gradio
    except ImportError as exc:
        raise MissingWebExtra(WEB_EXTRA_HINT) from exc
    return gradio


# --------------------------------------------------------------------------------------------
# limits, errors, the work queue, the model cache
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """What one server accepts; shared by the UI and the API so both refuse the same things."""

    max_upload_bytes: int = int(DEFAULT_MAX_UPLOAD_MB * 1024 * 1024)
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_output_pixels: int = DEFAULT_MAX_OUTPUT_PIXELS
    concurrency: int = DEFAULT_CONCURRENCY
    queue_size: int = DEFAULT_QUEUE_SIZE
    model_cache: int = DEFAULT_MODEL_CACHE
    max_batch: int = DEFAULT_MAX_BATCH

    def __post_init__(self) -> None:
        if self.max_upload_bytes <= 0 or self.max_pixels <= 0 or self.max_output_pixels <= 0:
            raise ValueError("upload and pixel limits must be positive")
        if self.concurrency < 1 or self.queue_size < 0 or self.model_cache < 1:
            raise ValueError("concurrency and model cache must be >= 1, queue size >= 0")
        if self.max_batch < 1:
            raise ValueError("the batch size limit must be >= 1")


class WebError(Exception):
    """A request we refuse, with the HTTP status and a one-line message for the user."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Busy(WebError):
    """The wait queue is full: the client should retry later (HTTP 503)."""

    def __init__(self) -> None:
        super().__init__(503, "busy, try again")


class Cancelled(Exception):
    """The user pressed Cancel (or left): the job stops at the next tile."""


class WorkGate:
    """One first-come, first-served line for the UI and the API: at most ``concurrency`` jobs
    run, and an API request finding ``concurrency + queue_size`` jobs pending gets ``Busy``.

    A browser job (``submit(..., wait=True)``) is never refused for being busy: it takes its
    place in the same line and waits, and ``ahead`` tells its page how many jobs are before
    it. (Browser jobs are bounded by Gradio's queue instead, and a waiting one holds no pixels:
    decoding happens when it starts.) Jobs run on a private thread pool, whose queue is FIFO
    and filled under the lock in ticket order, so the line is the order of arrival. An HTTP
    client that disconnects does not free its slot before its upscale has really finished:
    the count drops when the thread is done, which is what bounds memory.
    """

    def __init__(self, concurrency: int, queue_size: int) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=concurrency, thread_name_prefix="srlab-web"
        )
        self._limit = concurrency + queue_size
        self._pending = 0
        self._waiting: list[int] = []  # tickets queued and not started, in arrival order
        self._tickets = itertools.count(1)
        self._lock = threading.Lock()

    @property
    def pending(self) -> int:
        """Jobs running or waiting right now."""
        return self._pending

    def submit(self, fn: Callable[[], T], *, wait: bool = False
               ) -> concurrent.futures.Future[T]:
        """Queue ``fn``; the future carries its place in line as ``srlab_ticket``.
        ``wait=False`` (the API) raises ``Busy`` when the line is full."""
        with self._lock:
            if not wait and self._pending >= self._limit:
                raise Busy()
            ticket = next(self._tickets)
            fut = self._pool.submit(self._start, ticket, fn)
            self._pending += 1
            self._waiting.append(ticket)
        fut.srlab_ticket = ticket  # type: ignore[attr-defined]
        fut.add_done_callback(partial(self._release, ticket))
        return fut

    def _start(self, ticket: int, fn: Callable[[], T]) -> T:
        with self._lock:
            if ticket in self._waiting:
                self._waiting.remove(ticket)
        return fn()

    def _release(self, ticket: int, _fut: object) -> None:
        with self._lock:
            self._pending -= 1
            if ticket in self._waiting:  # cancelled before it started
                self._waiting.remove(ticket)

    def ahead(self, fut: concurrent.futures.Future) -> int | None:
        """Jobs before this one (running or earlier in line); None once it has started."""
        ticket = getattr(fut, "srlab_ticket", None)
        with self._lock:
            if ticket not in self._waiting:
                return None
            running = self._pending - len(self._waiting)
            return running + self._waiting.index(ticket)

    def run_sync(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` through the queue from a worker thread."""
        return self.submit(fn).result()

    async def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` through the queue from the event loop (the HTTP API)."""
        return await asyncio.wrap_future(self.submit(fn))


class ModelCache:
    """A small LRU of loaded upscalers: loading reads weights and builds the network, which
    costs more than upscaling a small image, so recently used models stay in memory.

    Keys are ``(name, scale)``, ``("auto", scale)`` for the per-image chooser and
    ``("denoise", scale, d)`` for a span/span-real blend.
    """

    def __init__(self, maxsize: int = DEFAULT_MODEL_CACHE) -> None:
        self.maxsize = maxsize
        self._items: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.auto_lock = threading.Lock()  # AutoUpscaler.pick/last is one decision at a time

    def _get(self, key: tuple, load: Callable[[], Any]) -> Any:
        with self._lock:  # one loader at a time: no duplicate loads under a burst
            up = self._items.get(key)
            if up is None:
                up = load()
                self._items[key] = up
                while len(self._items) > self.maxsize:
                    self._items.popitem(last=False)
            self._items.move_to_end(key)
            return up

    def get(self, name: str, scale: int) -> Upscaler:
        from srlab.api import load_model

        return self._get((name, scale), partial(load_model, name, scale))

    def auto(self, scale: int) -> AutoUpscaler:
        from srlab.api import load_model

        return self._get((AUTO, scale), partial(load_model, AUTO, scale))

    def denoised(self, scale: int, denoise: float) -> Upscaler:
        return self.blended(scale, denoise, None)

    def blended(self, scale: int, denoise: float | None, detail: float | None) -> Upscaler:
        """A weight blend (``zoo.blend``): denoise and/or detail; keys stay
        ``("denoise", scale, d)`` for a denoise-only blend."""
        from srlab.api import load_model

        d = None if denoise is None else round(float(denoise), 3)
        t = None if detail is None else round(float(detail), 3)
        key = ("denoise", scale, d) if t is None else ("blend", scale, d, t)
        return self._get(key, partial(load_model, scale=scale, denoise=d, detail=t))


class _WorkDir:
    """Scratch space for uploads and results: one folder per server, swept of entries older
    than an hour (the UI hands result paths to Gradio, which copies them later), removed at
    exit."""

    max_age = 3600.0

    def __init__(self) -> None:
        self._path: Path | None = None
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        with self._lock:
            if self._path is None or not self._path.is_dir():
                self._path = Path(tempfile.mkdtemp(prefix="srlab-web-"))
                import atexit

                atexit.register(shutil.rmtree, self._path, True)
            return self._path

    def new(self, suffix: str) -> Path:
        """A fresh, unguessable path (uuid4 hex + ``suffix``) in the scratch folder."""
        self.sweep()
        return self.path / f"{uuid.uuid4().hex}{suffix}"

    def folder(self) -> Path:
        """A fresh folder, for results that keep a readable file name."""
        p = self.new("")
        p.mkdir()
        return p

    def sweep(self) -> None:
        cutoff = time.time() - self.max_age
        for p in self.path.iterdir():
            try:
                if p.stat().st_mtime < cutoff:
                    if p.is_dir():
                        shutil.rmtree(p, ignore_errors=True)
                    else:
                        p.unlink()
            except OSError:
                pass


@dataclass
class ServerState:
    """Everything the UI and API share: limits, work queue, model cache, scratch folder."""

    limits: Limits = field(default_factory=Limits)
    gate: WorkGate = field(init=False)
    models: ModelCache = field(init=False)
    workdir: _WorkDir = field(default_factory=_WorkDir)

    def __post_init__(self) -> None:
        self.gate = WorkGate(self.limits.concurrency, self.limits.queue_size)
        self.models = ModelCache(self.limits.model_cache)


# --------------------------------------------------------------------------------------------
# jobs: progress and cancel
# --------------------------------------------------------------------------------------------


class Job:
    """Progress of one UI job (tiles done / total over a batch) and its cancel switch.

    The worker thread calls ``tick`` after every tile (``Upscaler.upscale_array``'s
    ``on_tile``); the UI thread reads the counters to draw progress and sets ``cancel``.
    """

    def __init__(self, total_tiles: int = 0, images: int = 1) -> None:
        self.total = max(1, total_tiles)
        self.done = 0
        self.images = images
        self.image = 0  # 1-based index of the image being processed
        self.name = ""
        self.phase = "waiting for a free worker"
        self.ahead: int | None = None  # jobs before this one in the server's line
        self.started = time.monotonic()
        self.tiles_started: float | None = None
        self.cancel = threading.Event()
        self.future: concurrent.futures.Future | None = None  # set once queued

    def tick(self) -> None:
        if self.tiles_started is None:
            self.tiles_started = time.monotonic()
        self.done += 1
        self.check()

    def check(self) -> None:
        if self.cancel.is_set():
            raise Cancelled()

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total)

    def eta(self) -> float | None:
        """Seconds left from this job's own tile rate (None until a few tiles are done)."""
        if self.tiles_started is None or self.done < 2:
            return None
        rate = (time.monotonic() - self.tiles_started) / self.done
        return rate * (self.total - self.done)


def tile_for(width: int, height: int, tile: int) -> int:
    """The tile edge actually used for a ``width`` x ``height`` upload (``TILES``)."""
    return TILES.tile_for(height, width, tile)


def tiles_of(width: int, height: int, tile: int) -> int:
    """Tiles of one upload, for the progress bar (``TILES``)."""
    return TILES.count(height, width, tile)


# --------------------------------------------------------------------------------------------
# decoding with the server's limits
# --------------------------------------------------------------------------------------------


def mb(n: int) -> str:
    """Bytes for messages: '20 MB', '0.15 MB' (MB = 2**20, as the --max-upload-mb option)."""
    return f"{n / 2**20:.3g} MB"


def _probe_size(path: Path) -> tuple[int, int] | None:
    """Width/height the file's header claims (no pixel decoded, whatever the size: a
    decompression bomb is reported with its own numbers); None if unreadable, in which
    case ``load_image`` produces the user-facing message."""
    from srlab.image.header import header_size

    return header_size(path)


def check_output(limits: Limits, name: str, width: int, height: int, scale: float) -> None:
    """413 when the result of ``width`` x ``height`` at ``scale`` is above the output limit:
    said before any work is queued, with the largest input that would run."""
    out = int(round(width * scale)) * int(round(height * scale))
    if out > limits.max_output_pixels:
        fit = limits.max_output_pixels / scale**2
        raise WebError(413, f"{name} at ×{scale:g} would be {out / 1e6:,.0f} Mpx, above this "
                            f"server's output limit of {limits.max_output_pixels / 1e6:g} Mpx; "
                            f"use a smaller scale, or at ×{scale:g} at most "
                            f"{fit / 1e6:.1f} Mpx of input")


def probe(path: Path, display_name: str, limits: Limits) -> tuple[int, int]:
    """The size checks (413 bytes, 413 pixels) from the header alone: what the UI runs the
    moment a file is uploaded, before anyone presses Upscale. Returns (width, height)."""
    size = path.stat().st_size
    if size == 0:
        raise WebError(400, f"{display_name}: empty upload (0 bytes)")
    if size > limits.max_upload_bytes:
        raise WebError(413, f"{display_name} is {mb(size)}, above the upload limit "
                            f"of {mb(limits.max_upload_bytes)}")
    wh = _probe_size(path)
    if wh is not None and wh[0] * wh[1] > limits.max_pixels:
        raise WebError(413, f"{display_name} is {wh[0]} x {wh[1]} = {wh[0] * wh[1]:,} pixels, "
                            f"above this server's limit of {limits.max_pixels:,}; "
                            "downscale or crop it first")
    return wh or (0, 0)


def decode(path: Path, display_name: str, limits: Limits) -> LoadedImage:
    """Size checks (413) then decoding through srlab.image.imageio (400 on any bad file)."""
    from srlab.image.imageio import ImageError, load_image

    probe(path, display_name, limits)
    try:
        return load_image(path, max_pixels=limits.max_pixels)
    except ImageError as exc:
        raise WebError(400, str(exc).replace(str(path), display_name)) from None


# --------------------------------------------------------------------------------------------
# the one upscale path both faces use
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    """One request's choices, validated by ``checked`` before any work is queued."""

    model: str
    scale: int
    ensemble: bool = False
    denoise: float | None = None  # None: auto decides (model auto) or not a blend
    tile: int = 0  # 0: automatic
    fmt: str = "png"
    quality: int = 92
    allow_untrained: bool = False
    detail: float | None = None  # span-real -> span-real-gan (zoo.blend); None: no detail

    def checked(self) -> Options:
        """Raise WebError(400) with one sentence for any choice the server refuses."""
        if self.scale not in (2, 3, 4):
            raise WebError(400, f"scale must be 2, 3 or 4, not {self.scale}")
        if self.fmt not in FORMATS:
            raise WebError(400, f"format must be one of {', '.join(FORMATS)}, not '{self.fmt}'")
        if not 1 <= self.quality <= 100:
            raise WebError(400, f"quality must be from 1 to 100, not {self.quality}")
        if self.tile and not TILE_MIN <= self.tile <= TILE_MAX:
            raise WebError(400, f"tile must be 0 (automatic) or from {TILE_MIN} to "
                                f"{TILE_MAX} pixels, not {self.tile}")
        if self.denoise is not None:
            if not 0 <= self.denoise <= 1:
                raise WebError(400, f"denoise must be from 0 to 1, not {self.denoise:g}")
            if self.model not in (AUTO, DENOISE_PAIR[0]):
                raise WebError(400, f"denoise blends {' and '.join(DENOISE_PAIR)}: use it with "
                                    f"model=auto (or no model), not with {self.model}")
        if self.detail is not None:  # a weight blend with detail: zoo.blend checks it
            from srlab.zoo.blend import CHAIN, Blend

            if self.model not in (AUTO, *CHAIN):
                raise WebError(400, f"detail blends {' and '.join(DETAIL_PAIR)}: use it with "
                                    f"model=auto (or no model), not with {self.model}")
            try:
                Blend(self.denoise, self.detail).check(self.scale)
            except ValueError as exc:
                raise WebError(400, str(exc)) from None
            return self
        try:
            resolve(AUTO if self.denoise is not None else self.model, self.scale,
                    trained_only=not self.allow_untrained)
        except ValueError as exc:
            raise WebError(400, str(exc)) from None
        return self


@dataclass
class Result:
    """One upscaled image: the array (until written), what ran, and why."""

    array: np.ndarray | None  # dropped (None) once written, so the pixels can be freed
    icc_profile: bytes | None
    seconds: float
    trained: bool
    in_size: tuple[int, int]
    out_size: tuple[int, int]
    chosen: str  # the network that ran ("span-real", "span (denoise 0.5)", "bicubic")
    label: str  # its name in file names ("span-real", "span-dn0.5", "espcn+")
    condition: Condition | None = None  # what auto read in the image
    denoise: float | None = None
    detail: float | None = None

    def headers(self) -> dict[str, str]:
        """What ran, as the API's X-Srlab-* response headers (ASCII only)."""
        h = {"X-Srlab-Chosen": self.chosen,
             "X-Srlab-Trained": str(self.trained).lower(),
             "X-Srlab-Seconds": f"{self.seconds:.4f}",
             "X-Srlab-Input-Size": "{}x{}".format(*self.in_size),
             "X-Srlab-Output-Size": "{}x{}".format(*self.out_size)}
        if self.denoise is not None:
            h["X-Srlab-Denoise"] = f"{self.denoise:g}"
        if self.detail is not None:
            h["X-Srlab-Detail"] = f"{self.detail:g}"
        if self.condition is not None:
            h["X-Srlab-Condition"] = self.condition.describe()
            h["X-Srlab-Reason"] = self.condition.decision()
        return {k: v.encode("ascii", "replace").decode() for k, v in h.items()}


def _label(opts: Options, chosen: str, denoise: float | None) -> str:
    from srlab.eval.runners import ENSEMBLE_SUFFIX

    if opts.detail is not None:
        from srlab.zoo.blend import Blend

        base = Blend(opts.denoise, opts.detail).tag()
    elif denoise is not None and 0 < denoise < 1:
        base = f"{DENOISE_PAIR[0]}-dn{denoise:g}"
    else:
        base = chosen
    return base + ENSEMBLE_SUFFIX if opts.ensemble else base


def run_image(state: ServerState, img: LoadedImage, opts: Options, *, path: Path | None = None,
              job: Job | None = None) -> Result:
    """Upscale one decoded image with ``opts``: auto reads the image (and the file's JPEG
    tables at ``path``) and picks the network; progress and cancel go through ``job``."""
    check_output(state.limits, "the image", img.width, img.height, opts.scale)
    condition = None
    denoise = opts.denoise
    if opts.detail is not None:
        up = state.models.blended(opts.scale, opts.denoise, opts.detail)
    elif opts.denoise is not None:
        up = state.models.denoised(opts.scale, opts.denoise)
    elif opts.model == AUTO:
        auto = state.models.auto(opts.scale)
        with state.models.auto_lock:
            up = auto.pick(img.array, path)
            assert auto.last is not None
            condition = auto.last[0]
        denoise = condition.denoise
    else:
        up = state.models.get(opts.model, opts.scale)
    chosen = up.name
    if opts.ensemble:  # a wrapper around the cached model: nothing extra to load or cache
        up = up.self_ensembled()
    tile = tile_for(img.width, img.height, opts.tile)
    if job is not None:
        job.check()
    t0 = time.perf_counter()
    out = up.upscale_array(img.array, tile=tile, on_tile=job.tick if job else None)
    return Result(out, img.icc_profile, time.perf_counter() - t0, up.trained,
                  (img.width, img.height), (int(out.shape[1]), int(out.shape[0])), chosen,
                  _label(opts, chosen, denoise), condition, denoise, opts.detail)


_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def safe_stem(filename: str) -> str:
    """A file-name stem safe in a download name and an HTTP header (ASCII, no quotes)."""
    stem = _UNSAFE.sub("_", Path(filename).stem).strip("._") or "upload"
    return stem[:80]


def write_result(res: Result, folder: Path, stem: str, opts: Options, *,
                 exif: bytes | None = None, xmp: bytes | None = None,
                 size_label: str | None = None) -> Path:
    """Save the result as ``<stem>_<label>_x<scale>.<ext>`` in ``folder`` (srlab.image.imageio,
    as the CLI writes it: 16 bits and alpha kept in PNG, ICC profile, EXIF and XMP embedded).
    ``size_label`` (an ``OutputSize.label()``: 'x1.5', 'fit1920x1080') replaces ``x<scale>``,
    as in the CLI's names."""
    from srlab.image.imageio import save_image

    assert res.array is not None, "written already"
    ext = FORMATS[opts.fmt][0]
    final = folder / f"{stem}_{res.label}_{size_label or f'x{opts.scale}'}{ext}"
    save_image(res.array, final, icc_profile=res.icc_profile, quality=opts.quality, exif=exif,
               xmp=xmp)
    return final


def release_memory() -> None:
    """Hand freed pages back to the OS after a large job (glibc keeps them otherwise, and the
    server's resident size would stay at its peak between jobs). No-op elsewhere."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def zip_results(paths: Iterable[Path], dest: Path) -> Path:
    """The batch's results in one zip, stored (images are compressed already): written file
    by file, so memory stays at one read buffer whatever the batch size."""
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_STORED) as zf:
        for p in paths:
            zf.write(p, arcname=p.name)
    return dest

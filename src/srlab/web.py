"""``srlab serve``: a browser demo and a small HTTP API over the same library calls.

This module is a face, not a second implementation: every request ends in
``srlab.load_model(name, scale).upscale_array(...)`` and ``srlab.imageio`` for decoding and
encoding, exactly like the CLI. Gradio (and FastAPI/uvicorn, which it brings) are imported
only inside the functions below, so ``import srlab`` never needs the ``web`` extra.

One process serves two front doors that share one work queue and one model cache:

* ``/`` — the Gradio UI: pick a model and scale, upload, compare with bicubic, download the
  full-resolution PNG, read the model's card and its training curves.
* ``/api/...`` — plain HTTP for scripts (OpenAPI page at ``/docs``)::

      GET  /api/health                        -> {"status": "ok", ...}
      GET  /api/models                        -> JSON list of models, scales, params, metrics
      POST /api/upscale?model=NAME&scale=S    -> image/png (multipart field "file",
                                                 or the raw image bytes as the body)

  Errors are JSON ``{"error": "...", "status": N}``: 400 bad image or parameters, 413 upload
  or pixel count above the limit, 503 "busy, try again" when the wait queue is full.

Why the limits: a single 4-megapixel upload at x4 is a 64-megapixel output, and a CPU server
shared with other work must not let a burst of those exhaust memory. Uploads are capped in
bytes before they are parsed and in pixels before they are decoded; at most ``concurrency``
upscales run at once and at most ``queue_size`` more wait; anything beyond is refused at once
instead of piling up.
"""

# No ``from __future__ import annotations`` here: FastAPI and Gradio read the annotations of
# the handlers defined inside build_api/build_app at run time, and those name classes
# imported locally (fastapi.Request, gr.Request). Names that exist only for type checkers
# are quoted instead.
import asyncio
import atexit
import concurrent.futures
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from . import __version__
from .models.registry import (
    DEFAULT_MODEL,
    MODELS,
    UnknownModelError,
    build_model,
    default_model,
    get_spec,
)
from .weights import SHIPPED_DIR, WeightsError, WeightsMeta, count_params, read_weights

if TYPE_CHECKING:
    import gradio as gr
    from fastapi import FastAPI

    from .imageio import LoadedImage
    from .upscaler import Upscaler

__all__ = [
    "WEB_EXTRA_HINT",
    "Limits",
    "WebError",
    "Busy",
    "WorkGate",
    "ModelCache",
    "model_catalog",
    "model_card",
    "training_artifacts",
    "build_app",
    "create_app",
    "serve",
    "serve_main",
]

WEB_EXTRA_HINT = "srlab serve needs the web extra: pip install 'srlab[web]'"

DEFAULT_MAX_UPLOAD_MB = 20.0
DEFAULT_MAX_PIXELS = 4_000_000  # input pixels; x4 makes that a 64 Mpx output
DEFAULT_CONCURRENCY = 1  # upscales running at once (each may use all torch threads)
DEFAULT_QUEUE_SIZE = 8  # upscales waiting; one more is answered 503 at once
DEFAULT_MODEL_CACHE = 4  # loaded models kept in memory (LRU)
TILE = 256  # LR tile edge for large inputs: bounds activation memory, output is identical
_MULTIPART_SLACK = 64 * 1024  # multipart headers/boundaries on top of the file itself
ARTIFACT_FILES = ("loss.png", "psnr.png", "ssim.png", "progress.gif", "metrics.csv")

T = TypeVar("T")


class MissingWebExtra(ImportError):
    """gradio/fastapi/uvicorn are not installed; the message says how to get them."""


def _import_gradio():
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
    concurrency: int = DEFAULT_CONCURRENCY
    queue_size: int = DEFAULT_QUEUE_SIZE
    model_cache: int = DEFAULT_MODEL_CACHE

    def __post_init__(self) -> None:
        if self.max_upload_bytes <= 0 or self.max_pixels <= 0:
            raise ValueError("upload and pixel limits must be positive")
        if self.concurrency < 1 or self.queue_size < 0 or self.model_cache < 1:
            raise ValueError("concurrency and model cache must be >= 1, queue size >= 0")


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


class WorkGate:
    """At most ``concurrency`` jobs run, at most ``queue_size`` wait; the rest get ``Busy``.

    Jobs run on a private thread pool, so an HTTP client that disconnects does not free its
    slot before its upscale has really finished: the count drops when the thread is done,
    which is what bounds memory.
    """

    def __init__(self, concurrency: int, queue_size: int) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=concurrency, thread_name_prefix="srlab-web"
        )
        self._limit = concurrency + queue_size
        self._pending = 0
        self._lock = threading.Lock()

    @property
    def pending(self) -> int:
        """Jobs running or waiting right now."""
        return self._pending

    def submit(self, fn: Callable[[], T]) -> "concurrent.futures.Future[T]":
        with self._lock:
            if self._pending >= self._limit:
                raise Busy()
            self._pending += 1
        try:
            fut = self._pool.submit(fn)
        except BaseException:
            self._release(None)
            raise
        fut.add_done_callback(self._release)
        return fut

    def _release(self, _fut: object) -> None:
        with self._lock:
            self._pending -= 1

    def run_sync(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` through the queue from a worker thread (the Gradio handlers)."""
        return self.submit(fn).result()

    async def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` through the queue from the event loop (the HTTP API)."""
        return await asyncio.wrap_future(self.submit(fn))


class ModelCache:
    """A small LRU of loaded ``Upscaler``s: loading reads weights and builds the network, which
    costs more than upscaling a small image, so recently used models stay in memory."""

    def __init__(self, maxsize: int = DEFAULT_MODEL_CACHE) -> None:
        self.maxsize = maxsize
        self._items: OrderedDict[tuple[str, int], Upscaler] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, name: str, scale: int) -> "Upscaler":
        key = (name, scale)
        with self._lock:  # one loader at a time: no duplicate loads under a burst
            up = self._items.get(key)
            if up is None:
                from .upscaler import load_model

                up = load_model(name, scale)
                self._items[key] = up
                while len(self._items) > self.maxsize:
                    self._items.popitem(last=False)
            self._items.move_to_end(key)
            return up


# --------------------------------------------------------------------------------------------
# the catalogue: which models and scales exist, trained or not, with their recorded numbers
# --------------------------------------------------------------------------------------------


@dataclass
class Variant:
    """One (model, scale) pair as the UI and ``/api/models`` describe it."""

    name: str
    scale: int
    trained: bool
    params: int
    meta: WeightsMeta | None
    classical: bool

    def to_json(self) -> dict[str, Any]:
        m = self.meta
        return {
            "scale": self.scale,
            "trained": self.trained,
            "params": self.params,
            "metrics": dict(m.metrics) if m else {},
            "recipe": m.recipe if m else "",
            "train_seconds": m.train_seconds if m else 0.0,
            "artifacts": sorted(training_artifacts(self.name, self.scale)),
        }


@dataclass
class ModelEntry:
    name: str
    summary: str
    family: str
    variants: dict[int, Variant] = field(default_factory=dict)

    @property
    def scales(self) -> list[int]:
        return sorted(self.variants)

    @property
    def trained(self) -> bool:
        return any(v.trained for v in self.variants.values())

    @property
    def classical(self) -> bool:
        return any(v.classical for v in self.variants.values())

    def to_json(self) -> dict[str, Any]:
        first = self.variants[self.scales[0]]
        return {
            "name": self.name,
            "summary": self.summary,
            "family": self.family,
            "scales": self.scales,
            "trained": self.trained,
            "params": first.params,
            "metrics": {str(s): v.meta.metrics for s, v in self.variants.items()
                        if v.meta and v.meta.metrics},
            "variants": [v.to_json() for v in self.variants.values()],
        }


_CATALOG: list[ModelEntry] | None = None
_CATALOG_LOCK = threading.Lock()


def _variant(name: str, scale: int) -> Variant:
    """Describe one pair from its shipped weights header, without keeping any network."""
    from .weights import shipped_weights_path

    spec = get_spec(name)
    meta: WeightsMeta | None = None
    path = shipped_weights_path(name, scale)
    if path.is_file():
        try:
            _, meta = read_weights(path)
        except WeightsError:
            meta = None  # a broken file: load_model will report it if someone picks it
    params = meta.params if meta and meta.params else \
        count_params(build_model(name, scale, **(meta.kwargs if meta else {})))
    classical = not spec.trainable and params == 0
    trained = classical or (meta is not None and meta.trained)
    return Variant(name, scale, trained, params, meta, classical)


def model_catalog() -> list[ModelEntry]:
    """Every registered model: trained learned models first, then the classical baselines,
    then networks that only have random weights (the UI labels those "(untrained)").

    Built once per process (it builds each network once to count parameters, ~2 s).
    """
    global _CATALOG
    with _CATALOG_LOCK:
        if _CATALOG is None:
            entries = []
            for name, spec in MODELS.items():
                entry = ModelEntry(name, spec.summary, spec.family)
                for s in spec.scales:
                    entry.variants[s] = _variant(name, s)
                entries.append(entry)
            rank = {id(e): (0 if e.trained and not e.classical else 1 if e.classical else 2)
                    for e in entries}
            _CATALOG = sorted(entries, key=lambda e: rank[id(e)])  # stable: registry order
        return _CATALOG


def _entry(name: str) -> ModelEntry:
    for e in model_catalog():
        if e.name == name:
            return e
    get_spec(name)  # raises UnknownModelError with the list of names
    raise AssertionError(name)


def _default_choice() -> tuple[str, int]:
    """The UI's first selection: the flagship if it is trained, else the first trained
    network, else bicubic — never a random-weights network by default."""
    cat = model_catalog()
    learned = [e for e in cat if e.trained and not e.classical]
    pick = next((e for e in learned if e.name == DEFAULT_MODEL), None) or \
        (learned[0] if learned else _entry("bicubic"))
    scale = next((s for s in pick.scales if pick.variants[s].trained), pick.scales[0])
    return pick.name, scale


def _check_choice(name: str, scale: int) -> None:
    try:
        spec = get_spec(name)
    except UnknownModelError as exc:
        raise WebError(400, str(exc)) from None
    if scale not in spec.scales:
        raise WebError(400, f"model '{name}' supports scales {list(spec.scales)}, not {scale}")


def training_artifacts(name: str, scale: int) -> dict[str, Path]:
    """The training curves/GIF/CSV shipped beside a model's weights, by file name."""
    folder = SHIPPED_DIR / f"{name}_x{scale}"
    return {f: folder / f for f in ARTIFACT_FILES if (folder / f).is_file()}


_METRIC_LABELS = {"psnr": "PSNR (dB)", "ssim": "SSIM", "mpx_per_s": "CPU Mpx/s",
                  "cpu_mpx_per_s": "CPU Mpx/s", "seconds": "seconds", "lpips": "LPIPS"}


def _fmt(value: Any, key: str) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if key == "ssim" else f"{value:.2f}"
    return str(value)


def model_card(name: str, scale: int) -> str:
    """Markdown card of one (model, scale): size, recorded metrics, throughput, recipe."""
    entry = _entry(name)
    v = entry.variants.get(scale) or entry.variants[entry.scales[0]]
    lines = [f"### {name} ×{v.scale}", "", entry.summary, ""]
    if v.classical:
        lines.append("**Classical resampling** — no parameters, nothing to train.")
    else:
        state = "trained weights ship with srlab" if v.trained else \
            "**untrained** — no weights ship for this scale, the network runs on random " \
            "weights (useful for testing only)"
        lines.append(f"**Parameters:** {v.params:,} · **Weights:** {state}")
    m = v.meta
    if m is not None and m.metrics:
        keys: list[str] = []
        for row in m.metrics.values():
            keys += [k for k in row if k not in keys]
        keys = sorted(keys, key=lambda k: {"psnr": 0, "ssim": 1}.get(k, 2))  # stable
        head = ["dataset"] + [_METRIC_LABELS.get(k, k) for k in keys]
        lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for ds, row in sorted(m.metrics.items()):
            cells = [ds] + [_fmt(row[k], k) if k in row else "–" for k in keys]
            lines.append("| " + " | ".join(cells) + " |")
    elif not v.classical:
        lines += ["", "No measured PSNR/SSIM recorded for this model."]
    if m is not None and m.recipe:
        lines += ["", f"**Training recipe:** {m.recipe}"]
    if m is not None and m.train_seconds:
        total = m.total_seconds
        inherited = (f" ({m.init_seconds / 3600:.2f} h of it in the weights it started from)"
                     if m.init_seconds else "")
        lines += ["", f"**CPU training time:** {total / 3600:.2f} h{inherited}"]
    if m is not None and m.license:
        lines += ["", f"**Weights licence:** {m.license}"]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# the one upscale path both faces use
# --------------------------------------------------------------------------------------------


class _WorkDir:
    """Scratch space for uploads and results: one folder per server, swept of files older
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
                atexit.register(shutil.rmtree, self._path, True)
            return self._path

    def new(self, suffix: str) -> Path:
        self.sweep()
        return self.path / f"{uuid.uuid4().hex}{suffix}"

    def sweep(self) -> None:
        cutoff = time.time() - self.max_age
        for p in self.path.iterdir():
            try:
                if p.stat().st_mtime < cutoff:
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


def _mb(n: int) -> str:
    """Bytes for messages: '20 MB', '0.15 MB' (MB = 2**20, as the --max-upload-mb option)."""
    return f"{n / 2**20:.3g} MB"


def _probe_size(path: Path) -> tuple[int, int] | None:
    """Width/height from the file header only (no pixel decoded); None if unreadable,
    in which case ``load_image`` produces the user-facing message."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size
    except Image.DecompressionBombError:
        return (1 << 20, 1 << 20)
    except Exception:  # noqa: BLE001 - any failure: let load_image explain it
        return None


def _decode(path: Path, display_name: str, limits: Limits) -> "LoadedImage":
    """Size checks (413) then decoding through srlab.imageio (400 on any bad file)."""
    from .imageio import ImageError, load_image

    size = path.stat().st_size
    if size == 0:
        raise WebError(400, f"{display_name}: empty upload (0 bytes)")
    if size > limits.max_upload_bytes:
        raise WebError(413, f"{display_name} is {_mb(size)}, above the upload limit "
                            f"of {_mb(limits.max_upload_bytes)}")
    wh = _probe_size(path)
    if wh is not None and wh[0] * wh[1] > limits.max_pixels:
        raise WebError(413, f"{display_name} is {wh[0]} x {wh[1]} = {wh[0] * wh[1]:,} pixels, "
                            f"above this server's limit of {limits.max_pixels:,}; "
                            "downscale or crop it first")
    try:
        return load_image(path, max_pixels=limits.max_pixels)
    except ImageError as exc:
        raise WebError(400, str(exc).replace(str(path), display_name)) from None


@dataclass
class Result:
    array: np.ndarray
    icc_profile: bytes | None
    seconds: float
    trained: bool
    in_size: tuple[int, int]

    @property
    def out_size(self) -> tuple[int, int]:
        return int(self.array.shape[1]), int(self.array.shape[0])


def _label(name: str, ensemble: bool) -> str:
    """The name a result goes by: ``span+`` for the self-ensemble, as in benchmark tables."""
    from .benchmark import ENSEMBLE_SUFFIX

    return name + ENSEMBLE_SUFFIX if ensemble else name


def _upscale(state: "ServerState", img: "LoadedImage", name: str, scale: int,
             ensemble: bool = False) -> Result:
    up = state.models.get(name, scale)
    if ensemble:  # a wrapper around the cached model: nothing extra to load or cache
        up = up.self_ensembled()
    tile = TILE if img.width * img.height > 2 * TILE * TILE else 0
    t0 = time.perf_counter()
    out = up.upscale_array(img.array, tile=tile)
    return Result(out, img.icc_profile, time.perf_counter() - t0, up.trained,
                  (img.width, img.height))


def _write_png(state: ServerState, arr: np.ndarray, icc: bytes | None) -> Path:
    from .imageio import save_image

    path = state.workdir.new(".png")
    save_image(arr, path, icc_profile=icc)
    return path


def _api_job(state: ServerState, data: bytes, filename: str, name: str,
             scale: int, ensemble: bool = False) -> tuple[bytes, Result]:
    suffix = Path(filename).suffix.lower()[:8] or ".img"
    upload = state.workdir.new(suffix)
    upload.write_bytes(data)
    try:
        img = _decode(upload, filename, state.limits)
    finally:
        upload.unlink(missing_ok=True)
    res = _upscale(state, img, name, scale, ensemble)
    out = _write_png(state, res.array, res.icc_profile)
    try:
        return out.read_bytes(), res
    finally:
        out.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------
# HTTP API
# --------------------------------------------------------------------------------------------

_UPLOAD_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {"type": "object", "required": ["file"],
                           "properties": {"file": {"type": "string", "format": "binary"}}},
            },
            "image/*": {"schema": {"type": "string", "format": "binary"}},
        },
    },
    "responses": {
        "200": {"description": "the upscaled image", "content": {"image/png": {}}},
        "400": {"description": "not a readable image, empty upload, unknown model or scale"},
        "413": {"description": "upload bytes or pixel count above the server's limit"},
        "503": {"description": "busy, try again: the wait queue is full"},
    },
}


def _error(status: int, message: str):
    from fastapi.responses import JSONResponse

    headers = {"Retry-After": "2"} if status == 503 else None
    return JSONResponse({"error": message, "status": status}, status_code=status,
                        headers=headers)


def build_api(state: "ServerState") -> "FastAPI":
    """The FastAPI app with ``/api/*``; ``create_app`` mounts the Gradio UI on it at ``/``."""
    _import_gradio()  # fastapi comes with gradio: one extra, one message
    from fastapi import FastAPI, Request
    from fastapi.responses import Response
    from starlette.datastructures import UploadFile

    api = FastAPI(
        title="srlab",
        version=__version__,
        description="Super-resolution on CPU. `POST /api/upscale?model=NAME&scale=S` with a "
                    "multipart `file` (or the raw image as the body) returns a PNG.",
    )
    limits = state.limits

    @api.get("/api/health")
    def health() -> dict[str, Any]:
        """Liveness, plus how full the work queue is."""
        return {"status": "ok", "version": __version__, "pending": state.gate.pending,
                "capacity": limits.concurrency + limits.queue_size}

    @api.get("/api/models")
    async def models() -> list[dict[str, Any]]:
        """Every model with its scales, parameter count, trained flag and recorded metrics."""
        cat = await asyncio.to_thread(model_catalog)
        return [e.to_json() for e in cat]

    @api.post("/api/upscale", openapi_extra=_UPLOAD_DOC,
              responses={200: {"content": {"image/png": {}}}})
    async def upscale(request: Request, model: str | None = None, scale: int = 4,
                      ensemble: bool = False):
        """Upscale one image; the PNG comes back with timing and model in X-Srlab-* headers.

        Without ``model``, srlab's default at ``scale`` (as ``srlab.load_model(None, scale)``).
        ``ensemble=true`` averages the 8 flips and rotations (``srlab upscale --self-ensemble``):
        8x the time for a small PSNR gain.
        """
        model = model or default_model(scale)
        try:
            _check_choice(model, scale)
        except WebError as exc:
            return _error(exc.status, exc.message)
        cap = limits.max_upload_bytes + _MULTIPART_SLACK
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            return _error(413, f"upload of {_mb(int(declared))} is above the limit "
                               f"of {_mb(limits.max_upload_bytes)}")
        body = bytearray()
        async for chunk in request.stream():  # counted as it arrives: no unbounded buffering
            body += chunk
            if len(body) > cap:
                return _error(413, f"upload is above the limit of "
                                   f"{_mb(limits.max_upload_bytes)}")
        payload = bytes(body)
        body.clear()
        ctype = request.headers.get("content-type", "")
        filename = "upload"
        if ctype.startswith("multipart/form-data"):
            async def replay() -> dict[str, Any]:
                return {"type": "http.request", "body": payload, "more_body": False}

            try:
                form = await Request(request.scope, replay).form(max_files=1, max_fields=8)
            except Exception as exc:  # noqa: BLE001 - malformed multipart of any kind
                return _error(400, f"malformed multipart upload ({exc})")
            part = form.get("file")
            if not isinstance(part, UploadFile):
                return _error(400, "multipart upload needs an image in the field 'file'")
            data = await part.read()
            filename = Path(part.filename or "upload").name
        else:
            data = payload
        try:
            png, res = await state.gate.run(partial(_api_job, state, data, filename,
                                                    model, scale, ensemble))
        except WebError as exc:
            return _error(exc.status, exc.message)
        except (ValueError, WeightsError) as exc:
            return _error(400, str(exc))
        stem = Path(filename).stem or "upload"
        label = _label(model, ensemble)
        headers = {
            "X-Srlab-Model": model,
            "X-Srlab-Scale": str(scale),
            "X-Srlab-Trained": str(res.trained).lower(),
            "X-Srlab-Ensemble": str(ensemble).lower(),
            "X-Srlab-Seconds": f"{res.seconds:.4f}",
            "X-Srlab-Input-Size": "{}x{}".format(*res.in_size),
            "X-Srlab-Output-Size": "{}x{}".format(*res.out_size),
            "Server-Timing": f"upscale;dur={res.seconds * 1000:.1f}",
            "Content-Disposition": f'inline; filename="{stem}_{label}_x{scale}.png"',
        }
        return Response(png, media_type="image/png", headers=headers)

    return api


# --------------------------------------------------------------------------------------------
# Gradio UI
# --------------------------------------------------------------------------------------------


def _model_choices() -> list[tuple[str, str]]:
    return [(e.name if e.trained else f"{e.name} (untrained)", e.name) for e in model_catalog()]


def _scale_choices(name: str) -> list[tuple[str, int]]:
    e = _entry(name)
    return [(f"×{s}" if v.trained else f"×{s} (untrained)", s) for s, v in e.variants.items()]


def _ui_job(state: ServerState, path: str, name: str, scale: int,
            ensemble: bool = False) -> tuple[str, str, str, str]:
    src = Path(path)
    img = _decode(src, src.name, state.limits)
    res = _upscale(state, img, name, scale, ensemble)
    bic = state.models.get("bicubic", scale).upscale_array(img.array)
    # the download keeps a readable name: <input>_<model>_x<scale>.png, in its own folder
    label = _label(name, ensemble)
    final = state.workdir.new("") / f"{src.stem}_{label}_x{scale}.png"
    final.parent.mkdir()
    from .imageio import save_image

    save_image(res.array, final, icc_profile=res.icc_profile)
    bic_path = _write_png(state, bic, res.icc_profile)
    (w, h), (ow, oh) = res.in_size, res.out_size
    note = "" if res.trained else " — **untrained network (random weights)**"
    status = (f"{label} ×{scale}: {w} × {h} → **{ow} × {oh}** in {res.seconds:.2f} s{note}. "
              "Drag the slider: left bicubic, right the model.")
    return str(bic_path), str(final), str(final), status


def build_app(state: "ServerState | None" = None) -> "gr.Blocks":
    """The Gradio Blocks of the demo (queue configured from ``state.limits``)."""
    gr = _import_gradio()
    state = state or ServerState()
    limits = state.limits
    model0, scale0 = _default_choice()

    with gr.Blocks(title="srlab — super-resolution", delete_cache=(3600, 3600)) as demo:
        gr.Markdown(
            "# srlab — super-resolution on CPU\n"
            f"Upload an image (up to {limits.max_pixels / 1e6:g} Mpx, "
            f"{_mb(limits.max_upload_bytes)}), pick a model and a scale, compare with "
            "bicubic, download the full-resolution PNG. The same operations are an HTTP API: "
            "see `/docs`."
        )
        with gr.Row():
            with gr.Column(scale=1):
                model_dd = gr.Dropdown(_model_choices(), value=model0, label="Model",
                                       elem_id="srlab-model")
                scale_dd = gr.Dropdown(_scale_choices(model0), value=scale0, label="Scale",
                                       elem_id="srlab-scale")
                inp = gr.Image(type="filepath", image_mode=None, label="Input image",
                               sources=["upload", "clipboard"], elem_id="srlab-input")
                ensemble = gr.Checkbox(False, label="Self-ensemble: average 8 flips and "
                                       "rotations (8× slower, slightly sharper)",
                                       elem_id="srlab-ensemble")
                run = gr.Button("Upscale", variant="primary", elem_id="srlab-run")
                card = gr.Markdown(model_card(model0, scale0), elem_id="srlab-card")
            with gr.Column(scale=2):
                compare = gr.ImageSlider(type="filepath", format="png",
                                         label="bicubic ↔ model", elem_id="srlab-compare")
                status = gr.Markdown(elem_id="srlab-status")
                download = gr.File(label="Result (full-resolution PNG)",
                                   elem_id="srlab-download")
        show = gr.Button("Show training metrics", elem_id="srlab-show-metrics")
        with gr.Column(visible=False) as metrics_box:
            no_artifacts = gr.Markdown()
            with gr.Row():
                loss_img = gr.Image(label="training loss", interactive=False, height=320,
                                    buttons=["download", "fullscreen"])
                psnr_img = gr.Image(label="validation PSNR", interactive=False, height=320,
                                    buttons=["download", "fullscreen"])
                ssim_img = gr.Image(label="validation SSIM", interactive=False, height=320,
                                    buttons=["download", "fullscreen"])
                gif_img = gr.Image(label="training progress", interactive=False, height=320,
                                    buttons=["download", "fullscreen"])
            csv_file = gr.File(label="metrics.csv")

        def on_model(name: str, scale: int):
            scales = _entry(name).scales
            if scale not in scales:
                scale = next((s for s in scales if _entry(name).variants[s].trained),
                             scales[0])
            return (gr.Dropdown(choices=_scale_choices(name), value=scale),
                    model_card(name, scale), gr.Column(visible=False))

        def on_scale(name: str, scale: int):
            if scale not in _entry(name).scales:
                return gr.skip(), gr.skip()
            return model_card(name, scale), gr.Column(visible=False)

        def on_show(name: str, scale: int):
            art = training_artifacts(name, int(scale))
            msg = "" if art else f"No training artifacts ship for this model ({name} ×{scale})."
            return (gr.Column(visible=True), msg,
                    gr.Image(value=_s(art.get("loss.png")), visible="loss.png" in art),
                    gr.Image(value=_s(art.get("psnr.png")), visible="psnr.png" in art),
                    gr.Image(value=_s(art.get("ssim.png")), visible="ssim.png" in art),
                    gr.Image(value=_s(art.get("progress.gif")), visible="progress.gif" in art),
                    gr.File(value=_s(art.get("metrics.csv")), visible="metrics.csv" in art))

        def on_run(path: str | None, name: str, scale: int, ens: bool):
            if not path:
                raise gr.Error("Upload an image first.")
            try:
                _check_choice(name, int(scale))
                bic, sr, dl, msg = state.gate.run_sync(
                    partial(_ui_job, state, path, name, int(scale), bool(ens)))
            except WebError as exc:
                raise gr.Error(exc.message) from None
            except (ValueError, WeightsError) as exc:
                raise gr.Error(str(exc)) from None
            return (bic, sr), dl, msg

        def on_load(request: gr.Request):
            """``/?model=bicubic&scale=2`` preselects a model: shareable links, and tests."""
            q = dict(request.query_params) if request is not None else {}
            name = q.get("model", model0)
            if name not in MODELS:
                name = model0
            try:
                scale = int(q.get("scale", scale0 if name == model0 else 0))
            except ValueError:
                scale = 0
            if scale not in _entry(name).scales:
                scale = _entry(name).scales[0]
            return (gr.Dropdown(value=name), gr.Dropdown(choices=_scale_choices(name),
                                                         value=scale),
                    model_card(name, scale))

        model_dd.input(on_model, [model_dd, scale_dd], [scale_dd, card, metrics_box],
                        api_visibility="private")
        scale_dd.input(on_scale, [model_dd, scale_dd], [card, metrics_box],
                        api_visibility="private")
        show.click(on_show, [model_dd, scale_dd],
                   [metrics_box, no_artifacts, loss_img, psnr_img, ssim_img, gif_img, csv_file],
                   api_visibility="private")
        run.click(on_run, [inp, model_dd, scale_dd, ensemble], [compare, download, status],
                  api_name="upscale")
        demo.load(on_load, None, [model_dd, scale_dd, card], api_visibility="private")

    demo.queue(default_concurrency_limit=limits.concurrency, max_size=limits.queue_size or 1)
    return demo


def _s(p: Path | None) -> str | None:
    return None if p is None else str(p)


def _theme(gr):
    """System fonts only: the default theme would fetch Google Fonts, and the server must
    work offline (and not stall a browser that cannot reach the internet)."""
    return gr.themes.Default(
        font=["ui-sans-serif", "system-ui", "sans-serif"],
        font_mono=["ui-monospace", "Consolas", "monospace"],
    )


def create_app(limits: Limits | None = None) -> "FastAPI":
    """The complete ASGI app: ``/api/*`` plus the Gradio UI at ``/`` — what ``serve`` runs
    and what the tests start under uvicorn."""
    gr = _import_gradio()
    state = ServerState(limits or Limits())
    api = build_api(state)
    demo = build_app(state)
    return gr.mount_gradio_app(
        api, demo, path="/",
        allowed_paths=[str(SHIPPED_DIR)],
        max_file_size=state.limits.max_upload_bytes,
        theme=_theme(gr),
        show_error=True,
        footer_links=["api", "settings"],
    )


def serve(
    host: str = "127.0.0.1",
    port: int = 7860,
    *,
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    concurrency: int = DEFAULT_CONCURRENCY,
    queue_size: int = DEFAULT_QUEUE_SIZE,
    log_level: str = "info",
) -> None:
    """Run the UI and the API with uvicorn until interrupted (blocking)."""
    limits = Limits(max_upload_bytes=int(max_upload_mb * 1024 * 1024), max_pixels=max_pixels,
                    concurrency=concurrency, queue_size=queue_size)
    app = create_app(limits)
    import uvicorn

    shown = "localhost" if host in ("0.0.0.0", "::") else host
    print(f"srlab serve: UI at http://{shown}:{port}/ , API docs at http://{shown}:{port}/docs",
          file=sys.stderr)
    uvicorn.run(app, host=host, port=port, log_level=log_level)


def serve_main(
    host: str = "127.0.0.1",
    port: int = 7860,
    *,
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    concurrency: int = DEFAULT_CONCURRENCY,
    queue_size: int = DEFAULT_QUEUE_SIZE,
) -> int:
    """``srlab serve`` for the CLI: an exit code and one-line messages instead of tracebacks."""
    try:
        serve(host, port, max_upload_mb=max_upload_mb, max_pixels=max_pixels,
              concurrency=concurrency, queue_size=queue_size)
    except MissingWebExtra:
        print(f"error: {WEB_EXTRA_HINT}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":  # python -m srlab.web [port]
    sys.exit(serve_main(port=int(sys.argv[1]) if len(sys.argv) > 1 else 7860))

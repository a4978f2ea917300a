"""The JSON/HTTP API of ``srlab serve`` (FastAPI), and its offline documentation pages.

Every refusal is ``{"error": "<one sentence>", "status": N}`` with the matching status —
including FastAPI's own parameter validation (400, not 422), unknown ``/api`` paths (404) and
wrong methods (405) — and is logged as one line, not a traceback: a user's mistake is not a
server fault.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the annotations of the
# handlers defined inside build_api at run time, and those name classes imported locally
# (fastapi.Request). Names that exist only for type checkers are quoted instead.
import asyncio
import importlib.resources
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from srlab import __version__
from srlab.web import state as _state
from srlab.web.sizing import Sized as _Sized
from srlab.web.sizing import finish_result
from srlab.web.state import FORMATS, TILE_MAX, TILE_MIN, Options, ServerState, WebError, log, mb
from srlab.zoo.catalog import DEFAULT_SCALE, default_name, model_catalog
from srlab.zoo.registry import AUTO
from srlab.zoo.weights import WeightsError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from srlab.web.state import Result

__all__ = ["build_api", "DOCS_PACKAGE"]

_MULTIPART_SLACK = 64 * 1024  # multipart headers/boundaries on top of the file itself
DOCS_PACKAGE = "fastapi-offline"  # ships Swagger UI 5 and ReDoc 2 assets (MIT)
_DOCS_STATIC = "/api-docs-assets"

_DESCRIPTION = f"""\
Super-resolution on CPU, the same library calls as the `srlab` CLI.

`POST /api/upscale?model=NAME&scale=S` with a multipart `file` (or the raw image bytes as the
body) returns the upscaled image (PNG unless `format` says otherwise).

* No `model`: **auto** where its weights ship at that scale (it reads each image's JPEG
  history and noise and runs span or span-real), else srlab's default model.
* `denoise=D` (0..1) blends span (0, faithful) and span-real (1, cleaned) instead of letting
  auto decide.
* `detail=D` (0..1, x4) blends span-real (0) and span-real-gan (1: crisp GAN texture for
  photos, may invent detail in small text and faces); alone it means the real side
  (denoise 1), with `denoise=S` S blends span towards that. Auto never adds detail.
* Any output size: `scale` may be any number >= 1 (1.5; 3 with a x4-only model), or give
  `width`, `height` (both: that exact size) or `fit=1920x1080` (aspect kept) instead. The
  model runs at the nearest scale it ships at or above, then the result is resized
  (MATLAB's antialiased bicubic); `X-Srlab-Ran` says so.
* Only trained model/scale pairs are served; `allow_untrained=true` runs the others on
  random weights (for studies).

What ran is in the response headers: `X-Srlab-Model` (asked), `X-Srlab-Chosen` (the network
that ran, e.g. `span-real`), `X-Srlab-Condition` (what auto read, e.g. `JPEG file, quality ~72,
luma noise sigma ~1.1`), `X-Srlab-Denoise` (strength used), `X-Srlab-Trained`,
`X-Srlab-Seconds`, `X-Srlab-Input-Size`, `X-Srlab-Output-Size`.

Errors are JSON `{{"error": "...", "status": N}}`: 400 bad image or parameter, 404 unknown
path, 405 wrong method, 413 upload, pixel count (the size the file's header claims) or
result size above the limit, 503 busy (retry after the `Retry-After` seconds; the browser
demo waits in the same line instead). Default scale: x{DEFAULT_SCALE}.
"""

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
        "200": {"description": "the upscaled image",
                "content": {mime: {} for _, mime in FORMATS.values()},
                "headers": {h: {"schema": {"type": "string"}, "description": d} for h, d in (
                    ("X-Srlab-Model", "the model asked for (auto, span, ...)"),
                    ("X-Srlab-Chosen", "the network that ran"),
                    ("X-Srlab-Condition", "what auto detected in the image (auto only)"),
                    ("X-Srlab-Denoise", "denoise strength used (auto or denoise only)"),
                    ("X-Srlab-Detail", "detail strength used (detail only)"),
                    ("X-Srlab-Reason", "auto's strength and why, e.g. 'denoise 0.75 (learned "
                                       "estimate 0.71)' (auto only)"),
                    ("X-Srlab-Trained", "false when the network ran on random weights"),
                    ("X-Srlab-Seconds", "upscaling time"),
                    ("X-Srlab-Output-Size", "WIDTHxHEIGHT of the result"),
                    ("X-Srlab-Ran", "with a resize after the network: what ran, e.g. "
                                    "'span x4 -> resize to 1.5x (768x512)'"))}},
        "400": {"description": "not a readable image, empty upload, bad parameter, unknown "
                               "or untrained model/scale"},
        "413": {"description": "upload bytes or pixel count above the server's limit"},
        "503": {"description": "busy, try again: the wait queue is full"},
    },
}

# one sentence per query parameter, for FastAPI's validation errors (which say 422 + detail)
_PARAM_HELP = {
    "scale": "scale must be a number of at least 1",
    "ensemble": "ensemble must be true or false",
    "allow_untrained": "allow_untrained must be true or false",
    "strip_metadata": "strip_metadata must be true or false",
    "denoise": "denoise must be a number from 0 to 1",
    "detail": "detail must be a number from 0 to 1",
    "format": f"format must be one of {', '.join(FORMATS)}",
    "quality": "quality must be a whole number from 1 to 100",
    "tile": f"tile must be 0 (automatic) or a whole number from {TILE_MIN} to {TILE_MAX}",
    "width": "width must be a whole number of at least 1",
    "height": "height must be a whole number of at least 1",
}
_ENDPOINTS = {"/api/health": ("GET", "HEAD"), "/api/models": ("GET", "HEAD"),
              "/api/upscale": ("POST",)}


def _error(status: int, message: str, request: Any = None, headers: dict | None = None):
    """The one error shape, logged as one line (user mistakes are not tracebacks)."""
    from fastapi.responses import JSONResponse

    where = f"{request.method} {request.url.path}" if request is not None else "api"
    log.warning("%s -> %d: %s", where, status, message)
    headers = dict(headers or {})
    if status == 503:
        headers["Retry-After"] = "2"
    return JSONResponse({"error": message, "status": status}, status_code=status,
                        headers=headers or None)


def _validation_message(exc: Any) -> str:
    """FastAPI's RequestValidationError as one sentence: the first bad parameter."""
    for err in exc.errors():
        loc = [str(x) for x in err.get("loc", ())]
        name = loc[-1] if loc else "parameter"
        value = err.get("input")
        help_ = _PARAM_HELP.get(name, f"{name} is not valid ({err.get('msg', 'invalid')})")
        return f"{help_}, not '{value}'" if isinstance(value, (str, int, float)) else help_
    return "bad request parameters"


def _docs_assets() -> Path | None:
    """Swagger UI / ReDoc files from the installed fastapi-offline package (no CDN)."""
    try:
        root = importlib.resources.files("fastapi_offline") / "static"
    except ModuleNotFoundError:
        return None
    path = Path(str(root))
    return path if (path / "swagger-ui-bundle.js").is_file() else None


def _add_docs(api: "FastAPI") -> None:
    """``/docs`` (Swagger UI) and ``/redoc`` from local files, so they render offline."""
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles

    assets = _docs_assets()
    if assets is None:
        page = ("<!doctype html><title>srlab API</title><h1>srlab API</h1>"
                f"<p>The interactive docs need the <code>{DOCS_PACKAGE}</code> package "
                f"(<code>pip install {DOCS_PACKAGE}</code>, part of srlab's web extra). "
                "The API description is at <a href='/openapi.json'>/openapi.json</a>.</p>")

        @api.get("/docs", include_in_schema=False)
        @api.get("/redoc", include_in_schema=False)
        def no_docs() -> HTMLResponse:
            return HTMLResponse(page)

        return
    api.mount(_DOCS_STATIC, StaticFiles(directory=str(assets)), name="api-docs-assets")

    @api.get("/docs", include_in_schema=False)
    def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json", title="srlab API",
            swagger_js_url=f"{_DOCS_STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{_DOCS_STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{_DOCS_STATIC}/favicon.png")

    @api.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json", title="srlab API",
            redoc_js_url=f"{_DOCS_STATIC}/redoc.standalone.js",
            redoc_favicon_url=f"{_DOCS_STATIC}/favicon.png", with_google_fonts=False)


def _api_job(state: ServerState, data: bytes, filename: str,
             opts: Options, sized: "_Sized | None" = None, strip_metadata: bool = False
             ) -> "tuple[Path, Result, str, Options]":
    """Decode, upscale and write one upload: the result file (deleted once sent), what ran,
    what was said about it (a resize after the network) and the options it ran with.
    ``sized``: an output size other than the model's, planned once the image's size is
    known (``image.outsize``)."""
    upload = state.workdir.new(Path(filename).suffix.lower()[:8] or ".img")
    upload.write_bytes(data)
    try:
        img = _state.decode(upload, filename, state.limits)
        plan = None
        if sized is not None:
            plan, opts = sized.plan(img.width, img.height)
        res = _state.run_image(state, img, opts, path=upload)  # auto reads the JPEG tables
    finally:
        upload.unlink(missing_ok=True)
    exif, xmp = (None, None) if strip_metadata else (img.exif, img.xmp)
    if strip_metadata:
        res.icc_profile = None
    del img
    ran = finish_result(res, plan)
    folder = state.workdir.folder()
    out = _state.write_result(res, folder, _state.safe_stem(filename), opts, exif=exif, xmp=xmp)
    res.array = None  # the pixels are on disk now: free them before the response is sent
    _state.release_memory()
    return out, res, ran, opts


def build_api(state: ServerState) -> "FastAPI":
    """The FastAPI app with ``/api/*`` and the docs; ``create_app`` mounts the UI at ``/``."""
    _state.import_gradio()  # fastapi comes with gradio: one extra, one message
    from fastapi import FastAPI, Query, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse
    from starlette.background import BackgroundTask
    from starlette.datastructures import UploadFile
    from starlette.exceptions import HTTPException as StarletteHTTPException

    api = FastAPI(title="srlab", version=__version__, description=_DESCRIPTION,
                  docs_url=None, redoc_url=None)
    limits = state.limits

    @api.exception_handler(RequestValidationError)
    async def bad_params(request: Request, exc: RequestValidationError):
        return _error(400, _validation_message(exc), request)

    @api.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return _error(exc.status_code, str(exc.detail), request)

    _add_docs(api)

    @api.get("/api/health")
    def health() -> dict[str, Any]:
        """Liveness, plus how full the work queue is."""
        return {"status": "ok", "version": __version__, "pending": state.gate.pending,
                "capacity": limits.concurrency + limits.queue_size}

    @api.get("/api/models")
    async def models() -> list[dict[str, Any]]:
        """Every model (and ``auto``) with its scales, which of them are trained, parameter
        counts per scale, recorded quality metrics and the measured speed (``speed``: output
        Mpx/s on the backend auto runs here, from ``srlab bench --store``; null if none)."""
        from srlab.web.cards import models_json

        return await asyncio.to_thread(lambda: models_json(model_catalog()))

    @api.post("/api/upscale", openapi_extra=_UPLOAD_DOC)
    async def upscale(
        request: Request,
        model: str | None = Query(None, description="registry name or 'auto'; default: auto "
                                                    "where it ships, else srlab's default"),
        scale: float = Query(DEFAULT_SCALE, description="upscaling factor, any number >= 1: "
                                                        "2, 3 or 4 run the model at that scale "
                                                        "where it ships, others the nearest "
                                                        "shipped scale above, then a resize"),
        width: int | None = Query(None, ge=1, description="output width (instead of scale)"),
        height: int | None = Query(None, ge=1, description="output height (instead of "
                                                           "scale)"),
        fit: str | None = Query(None, description="WIDTHxHEIGHT box the output fits in, "
                                                  "aspect kept (instead of scale)"),
        ensemble: bool = Query(False, description="average the 8 flips and rotations "
                                                  "(8x the time, slightly sharper)"),
        denoise: float | None = Query(None, ge=0, le=1,
                                      description="blend span (0) .. span-real (1)"),
        allow_untrained: bool = Query(False, description="serve a network without trained "
                                                         "weights (random weights)"),
        format: Literal["png", "jpg", "webp"] = Query("png", description="output format"),
        quality: int = Query(92, ge=1, le=100, description="JPEG/WebP quality"),
        tile: int = Query(0, description=f"LR tile edge, 0 = automatic, else {TILE_MIN}.."
                                         f"{TILE_MAX} (memory only, same result)"),
        strip_metadata: bool = Query(False, description="drop EXIF, XMP and the ICC profile "
                                                        "(kept by default)"),
        detail: float | None = Query(None, ge=0, le=1,
                                     description="blend span-real (0) .. span-real-gan (1): "
                                                 "crisp texture, may invent detail (x4)"),
    ):
        """Upscale one image; what ran comes back in X-Srlab-* headers."""
        try:
            sized = _Sized.of(model, scale, width, height, fit, denoise, detail=detail)
        except ValueError as exc:  # SizeError, or an unknown model name
            return _error(400, str(exc), request)
        if sized is not None:  # checked up front at a scale it may run, again per image
            scale = sized.first_scale()
        scale = int(scale)
        if model is None:  # auto where it ships (or to blend), else the default network
            model = AUTO if denoise is not None or detail is not None else default_name(scale)
        try:
            opts = Options(model, scale, ensemble, denoise, tile, format, quality,
                           allow_untrained, detail=detail).checked()
        except WebError as exc:
            return _error(exc.status, exc.message, request)
        if sized is not None:
            sized = sized.with_options(opts, limits.max_pixels)
        cap = limits.max_upload_bytes + _MULTIPART_SLACK
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            return _error(413, f"upload of {mb(int(declared))} is above the limit "
                               f"of {mb(limits.max_upload_bytes)}", request)
        body = bytearray()
        async for chunk in request.stream():  # counted as it arrives: no unbounded buffering
            body += chunk
            if len(body) > cap:
                return _error(413, f"upload is above the limit of "
                                   f"{mb(limits.max_upload_bytes)}", request)
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
                return _error(400, f"malformed multipart upload ({exc})", request)
            part = form.get("file")
            if not isinstance(part, UploadFile):
                return _error(400, "multipart upload needs an image in the field 'file'",
                              request)
            data = await part.read()
            filename = Path(part.filename or "upload").name
        else:
            data = payload
        try:
            out, res, ran, opts = await state.gate.run(partial(_api_job, state, data, filename,
                                                         opts, sized, strip_metadata))
        except WebError as exc:
            return _error(exc.status, exc.message, request)
        except (ValueError, WeightsError) as exc:
            return _error(400, str(exc), request)
        except Exception:
            log.exception("upscale failed")  # a server fault: the traceback belongs in the log
            return _error(500, "the upscale failed on the server (see its log)", request)
        headers = {"X-Srlab-Model": opts.model, "X-Srlab-Scale": str(opts.scale),
                   "X-Srlab-Ensemble": str(opts.ensemble).lower(), **res.headers(),
                   **({"X-Srlab-Ran": ran} if ran else {}),
                   "Server-Timing": f"upscale;dur={res.seconds * 1000:.1f}",
                   "Content-Disposition": f'inline; filename="{out.name}"'}
        # streamed from disk and deleted after: a 64 Mpx result is never held as bytes
        return FileResponse(out, media_type=FORMATS[opts.fmt][1], headers=headers,
                            background=BackgroundTask(_remove, out))

    all_methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

    @api.api_route("/api/{rest:path}", methods=all_methods, include_in_schema=False)
    async def not_here(request: Request, rest: str):
        """Anything else under /api: 405 for a known path with the wrong method, else 404 —
        in the API's shape, not the UI's HTML."""
        path = "/api/" + rest
        allowed = _ENDPOINTS.get(path.rstrip("/"))
        if allowed:
            return _error(405, f"{path} accepts {' or '.join(allowed)}, not {request.method}",
                          request, {"Allow": ", ".join(allowed)})
        return _error(404, f"no API endpoint {path} (see /docs)", request)

    return api


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
    try:
        path.parent.rmdir()
    except OSError:
        pass

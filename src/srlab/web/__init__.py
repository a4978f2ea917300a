"""``srlab serve``: a browser demo and a JSON/HTTP API over the same library calls.

This package is a face, not a second implementation: every request ends in
``srlab.load_model(...).upscale_array(...)`` and ``srlab.image.imageio`` for decoding and encoding,
exactly like the CLI. Gradio (and FastAPI/uvicorn, which it brings) are imported only inside
functions, so ``import srlab`` — and even ``import srlab.web`` — never needs the web extra.

One process serves two front doors that share one work queue and one model cache:

* ``/`` — the Gradio UI (``app.py``): pick a model and scale (auto by default where it
  ships, with a denoise strength), upload one image or a batch, follow the progress, compare
  bicubic and the model with zoom and pan, download the results (or a zip), read the model's
  card and its training curves.
* ``/api/...`` — plain HTTP for scripts (``api.py``; Swagger UI at ``/docs``, ReDoc at
  ``/redoc``, both served from local files)::

      GET  /api/health                        -> {"status": "ok", ...}
      GET  /api/models                        -> models (and auto), scales, params, metrics
      POST /api/upscale?model=NAME&scale=S    -> the image (multipart field "file",
                                                 or the raw image bytes as the body)

  ``model=auto`` (the default where both span and span-real ship at that scale) reads each
  image and picks the network; ``denoise=D`` blends them. What ran comes back in
  ``X-Srlab-Chosen`` / ``X-Srlab-Condition`` / ``X-Srlab-Denoise`` headers. Errors are JSON
  ``{"error": "...", "status": N}``: 400 bad image or parameters (also for a model/scale
  without trained weights, unless ``allow_untrained=true``), 404/405 wrong path or method,
  413 upload, pixel count or result size above the limit, 503 "busy, try again" when the
  queue is full.

Why the limits: a 25-megapixel phone photo at x2 is a 100-megapixel output, and a CPU server
shared with other work must not let a burst of those exhaust memory. Uploads are capped in
bytes before they are parsed and in pixels (the size the header claims) before they are
decoded, results in pixels before any work; at most ``concurrency`` upscales run at once, in
one first-come line: an API call finding ``queue_size`` waiting is refused at once (503)
instead of piling up, a browser job waits its turn with its place shown (Gradio's queue
bounds those). Results go to disk and are streamed from there.

Modules: ``catalog`` (what is offered, model cards), ``state`` (limits, queue, cache, the one
upscale job), ``sizing`` (output sizes other than the model's scale, for both faces), ``api``
(FastAPI), ``app`` (Gradio, ``create_app``, ``serve``).
"""

from srlab.web.app import PREVIEW_MAX_PIXELS, build_app, create_app, serve, serve_main
from srlab.web.state import (
    WEB_EXTRA_HINT,
    Busy,
    Limits,
    MissingWebExtra,
    ModelCache,
    ServerState,
    WebError,
    WorkGate,
)
from srlab.zoo.catalog import DEFAULT_SCALE, model_card, model_catalog, training_artifacts

__all__ = [
    "WEB_EXTRA_HINT",
    "DEFAULT_SCALE",
    "PREVIEW_MAX_PIXELS",
    "Limits",
    "WebError",
    "Busy",
    "MissingWebExtra",
    "WorkGate",
    "ModelCache",
    "ServerState",
    "model_catalog",
    "model_card",
    "training_artifacts",
    "build_app",
    "create_app",
    "serve",
    "serve_main",
]

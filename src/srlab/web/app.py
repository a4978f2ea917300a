"""The Gradio UI of ``srlab serve``, the app that joins it to the API, and the server entry.

What a user sees: pick a model (main models first, study networks grouped and labelled), a
scale (only trained ones) or an output size (a factor, a width, a height or a box to fit in:
``web.sizing``, the API's planner), upload one image or a batch, or paste one (checked the moment it
arrives: size, pixels, readable), press Upscale, wait in line behind other jobs (API calls
included: the position is shown), watch real progress (tiles done / total) with a Cancel
button that is live only while the job runs, then compare bicubic and the model side by side
with zoom and pan at 1:1, and download each result or a zip. Every mistake a user can make is
one plain sentence in the status line right under the Upscale button (where a phone user is
looking), worded as the API words it, and one line in the server log.

The page says what state it is in, for scripts and tests: ``#srlab-page
[data-srlab-page=loaded]`` appears once its load event has run (it sets the model from the
link), and the status line's ``.srlab-state`` has ``data-srlab`` = ``ready`` / ``queued`` /
``running`` / ``done`` / ``cancelled`` / ``error`` with ``data-event``, a fresh id per upload
check and per Upscale press.
"""

# No ``from __future__ import annotations`` here: Gradio reads the annotations of the
# handlers defined inside build_app at run time (gr.Request, gr.Progress).
import concurrent.futures
import html
import importlib.resources
import math
import re
import sys
import uuid
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from srlab.web import state as _state
from srlab.web.cards import card as model_card
from srlab.web.sizing import SIZE_MODES, finish_result, from_ui
from srlab.web.state import (
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_OUTPUT_PIXELS,
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_UPLOAD_MB,
    DEFAULT_QUEUE_SIZE,
    UI_QUEUE_MAX,
    WEB_EXTRA_HINT,
    Cancelled,
    Job,
    Limits,
    MissingWebExtra,
    Options,
    ServerState,
    WebError,
    log,
    mb,
)
from srlab.zoo.catalog import (
    default_choice,
    pick_scale,
    trained_scales,
    training_artifacts,
    ui_models,
)
from srlab.zoo.registry import AUTO, DENOISE_PAIR, DETAIL_PAIR, MODELS, detail_available
from srlab.zoo.weights import WeightsError

if TYPE_CHECKING:
    import gradio as gr
    from fastapi import FastAPI

__all__ = ["build_app", "create_app", "serve", "serve_main", "PREVIEW_MAX_PIXELS"]

# the comparison shows real pixels up to this many output pixels (a 1000 x 1000 input at x4);
# larger results are previewed downscaled (the note says so) and downloaded at full size,
# so neither the server nor the browser holds two 64 Mpx images for a preview
PREVIEW_MAX_PIXELS = 16_000_000
TILE_CHOICES = [("automatic", 0), ("64 px", 64), ("128 px", 128), ("256 px", 256),
                ("512 px", 512)]
UPLOAD_TYPES = [".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"]
_PREVIEW_NAME = re.compile(r"^[0-9a-f]{32}\.png$")
_STATIC_FILES = {"panzoom.min.js", "compare.js", "paste.js", "status.js"}
POLL_SECONDS = 0.3  # how often the status line redraws progress during a job
THUMB_EDGE = 640  # the input preview's longest side

_CSS = """
#srlab-card table { display: block; width: max-content; max-width: 100%; overflow-x: auto; }
#srlab-card th, #srlab-card td { white-space: nowrap; word-break: normal;
  overflow-wrap: normal; }
.srlab-msg { padding: 6px 10px; border-radius: 6px; margin: 2px 0; }
.srlab-err { background: #fde8e8; color: #8a1c1c; border: 1px solid #f5b5b5; }
.srlab-info { background: var(--block-background-fill); }
.srlab-progress { display: flex; gap: 10px; align-items: center; flex-wrap: wrap; }
.srlab-progress progress { width: 220px; height: 12px; }
.srlab-cmp-empty { display: flex; align-items: center; justify-content: center;
  height: min(62vh, 540px); border: 1px dashed var(--border-color-primary);
  border-radius: 8px; color: var(--body-text-color-subdued); padding: 16px;
  text-align: center; }
.srlab-stage { position: relative; overflow: hidden; height: min(62vh, 540px, 100vw);
  border-radius: 8px; touch-action: none; user-select: none;
  background: repeating-conic-gradient(#ddd 0 25%, #f4f4f4 0 50%) 0 0 / 20px 20px; }
.srlab-pz { position: absolute; left: 0; top: 0; }
.srlab-pz img { position: absolute; left: 0; top: 0; max-width: none !important;
  image-rendering: pixelated; }
.srlab-divider { position: absolute; top: 0; bottom: 0; width: 24px; margin-left: -12px;
  cursor: ew-resize; z-index: 3; touch-action: none; }
.srlab-divider::before { content: ""; position: absolute; left: 11px; top: 0; bottom: 0;
  width: 2px; background: #fff; box-shadow: 0 0 3px rgba(0,0,0,.6); }
.srlab-knob { position: absolute; top: 50%; left: 2px; width: 20px; height: 20px;
  margin-top: -10px; border-radius: 50%; background: #fff;
  box-shadow: 0 0 4px rgba(0,0,0,.6); }
.srlab-tag { position: absolute; top: 6px; z-index: 2; padding: 1px 6px; font-size: 12px;
  border-radius: 4px; background: rgba(0,0,0,.6); color: #fff; pointer-events: none; }
.srlab-tag-l { left: 6px; } .srlab-tag-r { right: 6px; }
.srlab-bar { display: flex; gap: 6px; align-items: center; flex-wrap: wrap;
  margin-top: 6px; font-size: 13px; }
.srlab-bar button { padding: 2px 10px; border: 1px solid var(--border-color-primary);
  border-radius: 6px; background: var(--button-secondary-background-fill); }
.srlab-note { color: var(--body-text-color-subdued); }
#srlab-buttons { gap: 8px; flex-wrap: nowrap; }
#srlab-run { flex: 3 1 0; }
#srlab-paste, #srlab-cancel { flex: 1 1 0; min-width: 0; }
#srlab-status:not(:has(.srlab-msg)), #srlab-page { display: none; }
@media (max-width: 480px) { #srlab-card th, #srlab-card td { padding: 4px 6px; } }
"""

_EMPTY_COMPARE = ("<div class='srlab-cmp-empty'>The result appears here: bicubic left of the "
                  "divider, the model right of it. Scroll or pinch to zoom, drag to pan, "
                  "1:1 shows real pixels.</div>")


# --------------------------------------------------------------------------------------------
# small renderers (plain functions, so tests can call them)
# --------------------------------------------------------------------------------------------


def message_html(text: str, *, error: bool = False, state: str = "") -> str:
    """One status line; errors are one plain sentence, styled as an error. ``state``
    (``data-srlab``) says what the page is doing, for scripts and tests."""
    cls = "srlab-err" if error else "srlab-info"
    state = "error" if error else state or "info"
    return (f"<div class='srlab-msg {cls}' data-srlab='{state}'>"
            f"{text if not error else html.escape(text)}</div>")


def status_html(lines: str, state: str, event: str) -> str:
    """The status line's content: ``lines`` under one element that says the page's
    ``state`` and which ``event`` (a fresh id per upload check and per Upscale press) wrote
    it, so a script can wait for *this* press's answer, not read the previous one's."""
    return f"<div class='srlab-state' data-srlab='{state}' data-event='{event}'>{lines}</div>"


def progress_html(job: Job) -> str:
    """Tiles done / total of the whole job, with an estimate from this job's own pace."""
    pct = int(job.fraction * 100)
    where = html.escape(job.name)
    if job.images > 1:
        where += f" ({job.image} of {job.images})"
    state = "running"
    if job.image == 0:
        state = "queued"
        if job.ahead:
            text = (f"Waiting in line: {job.ahead} job{'s' * (job.ahead != 1)} ahead of yours "
                    "(browser and API jobs run in the order they arrive)…")
        else:
            text = "Starting…"
    elif job.phase == "tiles":
        eta = job.eta()
        left = f" · about {eta:.0f} s left" if eta is not None else ""
        text = f"Upscaling {where}: tile {job.done} of {job.total} · {pct}%{left}"
    else:
        text = f"{html.escape(job.phase.capitalize())} {where}…"
    return (f"<div class='srlab-msg srlab-info srlab-progress' data-srlab='{state}' "
            f"data-done='{job.done}' data-total='{job.total}' data-ahead='{job.ahead or 0}'>"
            f"<progress max='100' "
            f"value='{pct}'></progress><span>{text}</span></div>")


def compare_html(item: dict[str, Any]) -> str:
    """The comparison viewer's markup for one result (wired by static/compare.js)."""
    w, h = item["preview_size"]
    note = ""
    if item["preview_size"] != item["out_size"]:
        note = (f"Preview at {100 * w / item['out_size'][0]:.0f}% of the "
                f"{item['out_size'][0]:,} × {item['out_size'][1]:,} result; the download is "
                "full size.")
    chosen = html.escape(item["chosen"])
    return f"""<div class="srlab-cmp" data-key="{uuid.uuid4().hex}" data-w="{w}" data-h="{h}">
<div class="srlab-stage">
<div class="srlab-pz" style="width:{w}px;height:{h}px">
<img class="srlab-after" src="/srlab-preview/{item['after']}" width="{w}" height="{h}"
 alt="{chosen} result" draggable="false">
<img class="srlab-before" src="/srlab-preview/{item['before']}" width="{w}" height="{h}"
 alt="bicubic" draggable="false">
</div>
<div class="srlab-divider panzoom-exclude" tabindex="0" role="slider"
 aria-label="divider: bicubic left, {chosen} right"><span class="srlab-knob"></span></div>
<span class="srlab-tag srlab-tag-l">bicubic</span>
<span class="srlab-tag srlab-tag-r">{chosen}</span>
</div>
<div class="srlab-bar"><button data-act="fit">Fit</button><button data-act="1:1">1:1</button>
<button data-act="out" aria-label="zoom out">−</button><button data-act="in"
 aria-label="zoom in">+</button><span class="srlab-zoom">100%</span>
<span class="srlab-note">{note}</span></div>
</div>"""


def result_line(item: dict[str, Any], scale: int) -> str:
    """What was done to one image, and for auto what it detected and chose."""
    (w, h), (ow, oh) = item["in_size"], item["out_size"]
    name = html.escape(item["name"])
    line = (f"{name}: {html.escape(item['label'])} ×{scale}: {w} × {h} → <b>{ow} × {oh}</b> "
            f"in {item['seconds']:.2f} s")
    if item.get("condition"):
        line += (f"<br>Detected: {html.escape(item['condition'])} → chose "
                 f"<b>{html.escape(item['chosen'])}</b>")
    elif item.get("denoise") is not None:
        line += f" (denoise {item['denoise']:g})"
    if not item["trained"]:
        line += " — <b>untrained network (random weights)</b>"
    if item.get("ran"):  # an output size other than the model's: the CLI's words
        line += f"<br>Ran: <span class='srlab-ran'>{html.escape(item['ran'])}</span>"
    return line


# --------------------------------------------------------------------------------------------
# the work behind the UI (runs on the WorkGate's thread)
# --------------------------------------------------------------------------------------------


def _save_preview(state: ServerState, arr: Any) -> str:
    """An 8-bit PNG for the browser (fast compression: it is a view, not the result)."""
    from srlab.image.imageio import to_pil

    path = state.workdir.new(".png")
    img = arr if hasattr(arr, "save") else to_pil(arr)
    img.save(path, format="PNG", compress_level=1)
    return path.name


def _previews(state: ServerState, img: Any, res: Any, opts: Options,
              plan: Any = None) -> dict[str, Any]:
    """bicubic and model images of the same size for the comparison: full size up to
    PREVIEW_MAX_PIXELS, else both scaled to fit it (bicubic straight from the input).
    ``plan``: an output size other than the model's (bicubic is resized as the model was)."""
    from PIL import Image

    from srlab.image.imageio import to_pil

    ow, oh = res.out_size
    if ow * oh <= PREVIEW_MAX_PIXELS:
        tile = _state.tile_for(img.width, img.height, opts.tile)
        bic = state.models.get("bicubic", opts.scale).upscale_array(img.array, tile=tile)
        if plan is not None:
            from srlab.image.outsize import finish

            bic = finish(bic, plan)
        before, after, size = _save_preview(state, bic), _save_preview(state, res.array), \
            (ow, oh)
        del bic
    else:
        f = math.sqrt(PREVIEW_MAX_PIXELS / (ow * oh))
        size = (max(1, int(ow * f)), max(1, int(oh * f)))
        small = _reduced(res.array, max(1, math.ceil(1 / f))).resize(size,
                                                                     Image.Resampling.BOX)
        after = _save_preview(state, small)
        before = _save_preview(state, to_pil(img.array).resize(size, Image.Resampling.BICUBIC))
    return {"before": before, "after": after, "preview_size": size}


def _reduced(arr: Any, factor: int, rows: int = 64) -> Any:
    """``arr`` shrunk ``factor`` times by box averaging, as a PIL image, one band of rows at
    a time: a 100 Mpx result never gets a full-size PIL copy (Pillow keeps RGB in 4 bytes
    a pixel: that copy alone would be 400 MB)."""
    from PIL import Image

    from srlab.image.imageio import to_pil

    if arr.shape[0] < factor:  # a strip thinner than one block: nothing to average
        return to_pil(arr)
    band = factor * rows
    h = arr.shape[0] // factor * factor
    parts = [to_pil(arr[y:min(y + band, h)]).reduce(factor) for y in range(0, h, band)]
    out = Image.new(parts[0].mode, (parts[0].width, sum(p.height for p in parts)))
    y = 0
    for part in parts:
        out.paste(part, (0, y))
        y += part.height
    return out


def _ui_batch(state: ServerState, ready: list[dict[str, Any]], opts: Options,
              job: Job, plans: list[tuple[Any, Options]] | None = None) -> list[dict[str, Any]]:
    """Every uploaded image through the shared path; results written to one folder.
    ``plans``: per image, its output size plan and options (``_size_plans``)."""
    folder = state.workdir.folder()
    items = []
    for i, up in enumerate(ready, start=1):
        job.image, job.name, job.phase = i, up["name"], "reading"
        job.check()
        src = Path(up["path"])
        img = _state.decode(src, up["name"], state.limits)
        job.phase = "tiles"
        plan, o = plans[i - 1] if plans else (None, opts)
        res = _state.run_image(state, img, o, path=src, job=job)
        ran = finish_result(res, plan)
        job.phase = f"saving the {opts.fmt.upper()} of"
        out = _state.write_result(res, folder, _state.safe_stem(up["name"]), o,
                                  size_label=plan.size.label() if plan is not None else None)
        job.phase = "preparing the comparison for"
        item = {"name": up["name"], "path": str(out), "in_size": res.in_size,
                "out_size": res.out_size, "seconds": res.seconds, "chosen": res.chosen,
                "label": res.label, "trained": res.trained, "denoise": res.denoise,
                "condition": res.condition.describe() if res.condition else None,
                "reason": res.condition.decision() if res.condition else None,
                "ran": ran, "scale": o.scale, **_previews(state, img, res, o, plan)}
        res.array = None
        del img
        _state.release_memory()
        items.append(item)
    if len(items) > 1:
        job.phase = "zipping"
        names = {Path(it["path"]).name for it in items}
        if len(names) == len(items):  # else two uploads had one name: the zip keeps both
            zip_path = folder / f"srlab_results_x{opts.scale}.zip"
        else:
            zip_path = folder / f"srlab_results_x{opts.scale}_{uuid.uuid4().hex[:6]}.zip"
        _state.zip_results([Path(it["path"]) for it in items], zip_path)
        items[0]["zip"] = str(zip_path)
    return items


def _check_upload(state: ServerState, path: str) -> dict[str, Any]:
    """The upload-time check: bytes and pixels from the header, then a full decode (a
    truncated file must fail now, not after pressing Upscale). Also makes the input's
    preview: a small PNG, which every browser shows (a TIFF upload would not display)."""
    from srlab.image.imageio import to_pil

    src = Path(path)
    img = _state.decode(src, src.name, state.limits)  # probes the header first
    thumb = to_pil(img.array)
    thumb.thumbnail((THUMB_EDGE, THUMB_EDGE))
    thumb_path = state.workdir.new(".png")
    thumb.save(thumb_path, format="PNG", compress_level=1)
    return {"path": str(src), "name": src.name, "size": (img.width, img.height),
            "thumb": str(thumb_path)}


def _size_plans(sized: Any, opts: Options, items: list[dict[str, Any]],
                limits: Limits) -> list[tuple[Any, Options]] | None:
    """Per upload, its output size plan and the options it runs with (the model scale the
    plan chose, checked again), from the sizes the upload check read: a bad size is said
    when Upscale is pressed, before any work is queued. None without an output size."""
    if sized is None:
        return None
    sized = sized.with_options(opts, limits.max_pixels)
    return [sized.plan(*it["size"]) for it in items]


def _size_box(mode: str) -> dict[str, Any]:
    """The Output size text box for ``mode``: hidden for the model's own scale."""
    boxes = {"factor": ("Factor: any number ≥ 1 (3 from a ×4 model)", "1.5"),
             "width": ("Width in pixels (height keeps the aspect)", "1920"),
             "height": ("Height in pixels (width keeps the aspect)", "1080"),
             "fit": ("Fit in W×H pixels (aspect kept)", "1920x1080")}
    label, example = boxes.get(mode, ("Size", ""))
    return {"visible": mode in boxes, "label": label, "placeholder": f"e.g. {example}",
            "value": ""}


def _auto_strength(items: list[dict[str, Any]], i: int | None = 0) -> dict[str, Any] | None:
    """What the denoise slider shows after a run: the strength auto ran on the image shown,
    and why (the API's X-Srlab-Denoise and X-Srlab-Reason); None when auto did not choose
    (another model, or a strength set by hand)."""
    if not items or i is None or not 0 <= int(i) < len(items):
        return None
    it = items[int(i)]
    if not it.get("condition") or it.get("denoise") is None:
        return None
    return {"value": float(it["denoise"]),
            "info": f"auto ran {it['denoise']:g} on {it['name']}: {it.get('reason') or ''}"}


# --------------------------------------------------------------------------------------------
# Gradio UI
# --------------------------------------------------------------------------------------------


def _scale_choices(name: str) -> list[tuple[str, int]]:
    return [(f"×{s}", s) for s in trained_scales(name)]


def _s(p: Path | None) -> str | None:
    return None if p is None else str(p)


def build_app(state: "ServerState | None" = None) -> "gr.Blocks":
    """The Gradio Blocks of the demo (queue configured from ``state.limits``)."""
    gr = _state.import_gradio()
    state = state or ServerState()
    limits = state.limits
    jobs: dict[str, Job] = {}  # session -> its running job, for the Cancel button
    model0, scale0 = default_choice()

    def refuse(message: str) -> str:
        log.warning("ui -> %s", message)  # one line: a user's mistake, not a server fault
        return message_html(message, error=True)

    with gr.Blocks(title="srlab — super-resolution", delete_cache=(3600, 3600)) as demo:
        gr.Markdown(
            "# srlab — super-resolution on CPU\n"
            f"Upload an image or a batch (up to {limits.max_batch}, each up to "
            f"{limits.max_pixels / 1e6:g} Mpx and {mb(limits.max_upload_bytes)}; results up to "
            f"{limits.max_output_pixels / 1e6:g} Mpx), pick a model and press **Upscale**. "
            "The same operations are an HTTP API: [API docs](/docs).", elem_id="srlab-header")
        # says (to scripts and tests) that the page's load event has run: see the docstring
        page_state = gr.HTML("", elem_id="srlab-page")
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=320):
                model_dd = gr.Dropdown(
                    ui_models(), value=model0, label="Model", elem_id="srlab-model",
                    info="Main models first; 'baseline' = classical resampling, 'study' = "
                         "the report's experiments (for comparison, not the best results).")
                scale_rd = gr.Radio(_scale_choices(model0), value=scale0, label="Scale",
                                    elem_id="srlab-scale")
                with gr.Group(elem_id="srlab-size-box"):
                    size_mode = gr.Radio(
                        SIZE_MODES, value="scale", label="Output size", elem_id="srlab-size-mode",
                        info="Other sizes run the model at its nearest scale at or above, "
                             "then resize (MATLAB bicubic), as srlab upscale --scale/--fit.")
                    size_value = gr.Textbox(**_size_box("scale"), max_lines=1,
                                            elem_id="srlab-size")
                with gr.Group(visible=model0 == AUTO) as denoise_box:
                    dn_auto = gr.Checkbox(True, label="Denoise strength: auto (read from each "
                                          "image)", elem_id="srlab-denoise-auto")
                    dn = gr.Slider(0, 1, value=0.5, step=0.05,
                                   label=f"Denoise strength: 0 = faithful ({DENOISE_PAIR[0]}), "
                                         f"1 = clean ({DENOISE_PAIR[1]})",
                                   elem_id="srlab-denoise")
                    # detail (zoo.blend): 0 leaves auto/denoise as they are; above 0 runs the
                    # real side (denoise 1 unless set by hand) towards the GAN stage
                    dt = gr.Slider(0, 1, value=0, step=0.05,
                                   label=f"Detail: 0 = off, 1 = crisp texture "
                                         f"({DETAIL_PAIR[1]}, x4; may invent detail in small "
                                         "text and faces)",
                                   info=f"Above 0 blends {DETAIL_PAIR[0]} towards "
                                        f"{DETAIL_PAIR[1]}; with denoise on auto it uses the "
                                        "clean side for every image.",
                                   visible=detail_available(4),  # ships at x4 only
                                   elem_id="srlab-detail")
                files = gr.File(file_count="multiple", file_types=UPLOAD_TYPES, height=150,
                                label="Images (one, or a batch; or paste one)",
                                elem_id="srlab-input")
                with gr.Row(elem_id="srlab-buttons"):
                    run = gr.Button("Upscale", variant="primary", elem_id="srlab-run")
                    paste = gr.Button("Paste", variant="secondary", elem_id="srlab-paste")
                    cancel = gr.Button("Cancel", variant="secondary", interactive=False,
                                       elem_id="srlab-cancel")
                # right under the buttons: where the eye is after a tap, on a phone too
                status = gr.HTML("", elem_id="srlab-status")
                preview = gr.Image(label="Input", interactive=False, height=170,
                                   buttons=["fullscreen"], elem_id="srlab-preview")
                with gr.Accordion("Options: format, tile size, self-ensemble", open=False,
                                  elem_id="srlab-options"):
                    fmt = gr.Radio([("PNG (lossless)", "png"), ("WebP", "webp"),
                                    ("JPEG", "jpg")], value="png", label="Output format",
                                   elem_id="srlab-format")
                    quality = gr.Slider(50, 100, value=92, step=1, label="WebP/JPEG quality",
                                        visible=False, elem_id="srlab-quality")
                    tile = gr.Dropdown(TILE_CHOICES, value=0, label="Tile size (input pixels)",
                                       info="Smaller tiles use less memory and show finer "
                                            "progress; the result is the same.",
                                       elem_id="srlab-tile")
                    ensemble = gr.Checkbox(False, label="Self-ensemble: average 8 flips and "
                                           "rotations (8× slower, slightly sharper)",
                                           elem_id="srlab-ensemble")
            with gr.Column(scale=3, min_width=320):
                compare = gr.HTML(_EMPTY_COMPARE, elem_id="srlab-compare", js_on_load=None)
                pick = gr.Dropdown([], label="Showing", visible=False, elem_id="srlab-pick")
                download = gr.File(label="Results", file_count="multiple", interactive=False,
                                   elem_id="srlab-download")
        with gr.Column(elem_id="srlab-card-box"):
            show = gr.Button("Show training metrics", size="sm", elem_id="srlab-show-metrics")
            card = gr.Markdown(model_card(model0, scale0), elem_id="srlab-card")
            with gr.Column(visible=False) as metrics_box:
                no_artifacts = gr.Markdown()
                with gr.Row():
                    loss_img = gr.Image(label="training loss", interactive=False, height=300,
                                        buttons=["download", "fullscreen"])
                    psnr_img = gr.Image(label="validation PSNR", interactive=False, height=300,
                                        buttons=["download", "fullscreen"])
                    ssim_img = gr.Image(label="validation SSIM", interactive=False, height=300,
                                        buttons=["download", "fullscreen"])
                    gif_img = gr.Image(label="training progress", interactive=False,
                                       height=300, buttons=["download", "fullscreen"])
                csv_file = gr.File(label="metrics.csv")
        ready = gr.State([])
        results = gr.State([])

        def on_model(name: str, scale: int):
            scale = pick_scale(name, scale)
            return (gr.Radio(choices=_scale_choices(name), value=scale),
                    gr.Group(visible=name == AUTO), model_card(name, scale),
                    gr.Column(visible=False))

        def on_scale(name: str, scale: int):
            if scale not in trained_scales(name):
                return gr.skip(), gr.skip()
            return model_card(name, int(scale)), gr.Column(visible=False)

        def on_show(name: str, scale: int):
            art = training_artifacts(name, int(scale))
            msg = "" if art else f"No training artifacts ship for this model ({name} ×{scale})."
            return (gr.Column(visible=True), msg,
                    gr.Image(value=_s(art.get("loss.png")), visible="loss.png" in art),
                    gr.Image(value=_s(art.get("psnr.png")), visible="psnr.png" in art),
                    gr.Image(value=_s(art.get("ssim.png")), visible="ssim.png" in art),
                    gr.Image(value=_s(art.get("progress.gif")), visible="progress.gif" in art),
                    gr.File(value=_s(art.get("metrics.csv")), visible="metrics.csv" in art))

        def on_files(paths: list[str] | None):
            """Check each upload as it arrives: one sentence per refused file."""
            paths = list(paths or [])
            event = uuid.uuid4().hex[:12]
            if not paths:
                return None, "", []
            if len(paths) > limits.max_batch:
                return None, status_html(refuse(f"at most {limits.max_batch} images at once, "
                                                f"not {len(paths)}"), "error", event), []
            good, bad = [], []
            for p in paths:
                try:
                    good.append(_check_upload(state, p))
                except WebError as exc:
                    bad.append(refuse(exc.message))
            if good:
                w, h = good[0]["size"]
                what = (f"{html.escape(good[0]['name'])}: {w} × {h}" if len(good) == 1 else
                        f"{len(good)} images ready")
                lines = bad + [message_html(f"{what} — press Upscale.", state="ready")]
            else:
                lines = bad
            return ((good[0]["thumb"] if good else None),
                    status_html("".join(lines), "ready" if good else "error", event), good)

        def on_run(items: list[dict[str, Any]], name: str, scale: int, dn_is_auto: bool,
                   dn_value: float, out_fmt: str, q: float, tile_px: int, ens: bool,
                   dt_value: float, size_how: str, size_text: str,
                   request: gr.Request, progress=gr.Progress()):
            skip = gr.skip()
            idle = gr.Button(interactive=False)
            event = uuid.uuid4().hex[:12]

            def say(message: str, state: str = "error"):  # the rest untouched, Cancel off
                return skip, skip, status_html(message, state, event), skip, skip, idle

            if not items:
                yield say(refuse("Upload an image first."))
                return
            denoise = None if name != AUTO or dn_is_auto else float(dn_value)
            detail = float(dt_value) if name == AUTO and dt_value else None
            try:
                size_scale, sized = from_ui(name, size_how, size_text, denoise, detail)
                opts = Options(name, int(size_scale or scale), bool(ens), denoise,
                               int(tile_px or 0), out_fmt or "png", int(q),
                               detail=detail).checked()
                plans = _size_plans(sized, opts, items, limits)
                for i, it in enumerate(items):
                    _state.check_output(limits, it["name"], *it["size"],
                                        plans[i][1].scale if plans else opts.scale)
            except WebError as exc:
                yield say(refuse(exc.message))
                return
            except ValueError as exc:  # a bad output size: the API's sentence
                yield say(refuse(str(exc)))
                return
            total = sum(_state.tiles_of(*it["size"], opts.tile) for it in items)
            job = Job(total, len(items))
            session = getattr(request, "session_hash", None) or uuid.uuid4().hex
            # wait=True: never "busy" for a person; the job takes its place in the one line
            fut = state.gate.submit(partial(_ui_batch, state, items, opts, job, plans),
                                    wait=True)
            job.future = fut
            jobs[session] = job
            live = gr.Button(interactive=True)
            try:
                while True:
                    job.ahead = state.gate.ahead(fut)
                    try:
                        out = fut.result(timeout=POLL_SECONDS)
                        break
                    except concurrent.futures.TimeoutError:
                        progress((job.done, job.total), desc="tiles", unit="tiles")
                        line = progress_html(job)
                        yield (skip, skip, status_html(line, "queued" if job.image == 0
                                                       else "running", event),
                               skip, skip, live)
            except (Cancelled, concurrent.futures.CancelledError):
                yield say(message_html(f"Cancelled after {job.done} of {job.total} tiles.",
                                       state="cancelled"), "cancelled")
                return
            except WebError as exc:
                yield say(refuse(exc.message))
                return
            except (ValueError, WeightsError) as exc:
                yield say(refuse(str(exc)))
                return
            except Exception:  # a server fault: the log gets the traceback, the user a sentence
                log.exception("ui upscale failed")
                yield say(message_html("The upscale failed on the server; its log has the "
                                       "details.", error=True))
                return
            finally:
                job.cancel.set()  # also stops the worker when the browser went away mid-job
                if jobs.get(session) is job:
                    del jobs[session]
            lines = "<br>".join(result_line(it, it.get("scale", opts.scale)) for it in out)
            files_out = ([out[0]["zip"]] if "zip" in out[0] else []) + [it["path"] for it in out]
            choices = [(it["name"], i) for i, it in enumerate(out)]
            yield (compare_html(out[0]),
                   gr.Dropdown(choices=choices, value=0, visible=len(out) > 1),
                   status_html(message_html(lines, state="done"), "done", event), files_out, out,
                   idle)

        def on_cancel(request: gr.Request):
            job = jobs.get(getattr(request, "session_hash", None) or "")
            if job is not None:
                job.cancel.set()
                if job.future is not None:
                    job.future.cancel()  # still waiting for a worker: it never starts

        def on_pick(i: int | None, items: list[dict[str, Any]]):
            if i is None or not items or not 0 <= int(i) < len(items):
                return gr.skip()
            return compare_html(items[int(i)])

        def on_load(request: gr.Request):
            """``/?model=span&scale=2`` preselects a model (shareable links, and tests);
            a model without trained weights is explained, not selected. The choices are
            read again on every page load, so weights shipped while the server runs (auto
            becoming available) show up without a restart."""
            q = dict(request.query_params) if request is not None else {}
            first, first_scale = default_choice()
            name, note = q.get("model", first), ""
            choices = ui_models()
            if name not in [n for _, n in choices]:
                if name in MODELS or name == AUTO:
                    note = refuse(f"{name} has no trained weights here, so the demo does not "
                                  "offer it (the API runs it with allow_untrained=true)")
                else:
                    note = refuse(f"unknown model '{name}'")
                name = first
            try:
                wanted = int(q.get("scale", first_scale))
            except ValueError:
                wanted = first_scale
            scale = pick_scale(name, wanted)
            return (gr.Dropdown(choices=choices, value=name),
                    gr.Radio(choices=_scale_choices(name), value=scale),
                    model_card(name, scale), gr.Group(visible=name == AUTO),
                    # a note only when there is one: an upload checked before this event
                    # landed keeps its answer
                    status_html(note, "error", "load") if note else gr.skip(),
                    "<span data-srlab-page='loaded'></span>")

        private = {"api_visibility": "private"}
        model_dd.input(on_model, [model_dd, scale_rd], [scale_rd, denoise_box, card,
                                                        metrics_box], **private)
        scale_rd.input(on_scale, [model_dd, scale_rd], [card, metrics_box], **private)
        # the slider follows auto until the user moves it: moving it unticks auto in the
        # page itself (no server round trip that could land late or be lost)
        dn.input(None, None, dn_auto, js="() => false", **private)
        fmt.input(lambda f: gr.Slider(visible=f != "png"), fmt, quality, **private)
        show.click(on_show, [model_dd, scale_rd],
                   [metrics_box, no_artifacts, loss_img, psnr_img, ssim_img, gif_img, csv_file],
                   **private)
        files.change(on_files, files, [preview, status, ready], concurrency_limit=4,
                     concurrency_id="check", show_progress="minimal", **private)
        # as many browser jobs in the server's line as API ones; more wait in Gradio's queue
        ran = run.click(on_run, [ready, model_dd, scale_rd, dn_auto, dn, fmt, quality, tile,
                                 ensemble, dt, size_mode, size_value],
                        [compare, pick, status, download, results, cancel],
                        show_progress="minimal", show_progress_on=[compare],
                        concurrency_limit=limits.concurrency + limits.queue_size, **private)
        paste.click(None, None, None, js="() => { window.srlabPaste && window.srlabPaste(); }",
                    **private)
        cancel.click(on_cancel, None, None, concurrency_limit=None, queue=False, **private)
        pick.input(on_pick, [pick, results], compare, **private)
        demo.load(on_load, None, [model_dd, scale_rd, card, denoise_box, status, page_state],
                  **private)
        # the output size control: its box follows the mode (issue 53)
        size_mode.input(lambda m: gr.Textbox(**_size_box(m)), size_mode, size_value,
                        **private)

        # the denoise slider shows what auto ran on the image shown (issue 50)
        def on_strength(i: int | None, items: list[dict[str, Any]], is_auto: bool):
            shown = _auto_strength(items, i) if is_auto else None  # a hand-set value stays
            return gr.skip() if shown is None else gr.Slider(**shown)

        # when the job has ended (.then: results.change, written by this generator, did not
        # reach the page in Chromium)
        ran.then(lambda items, a: on_strength(0, items, a), [results, dn_auto], dn,
                 **private)
        pick.input(on_strength, [pick, results, dn_auto], dn, **private)

    demo.queue(default_concurrency_limit=limits.concurrency, max_size=UI_QUEUE_MAX)
    return demo


def _theme(gr):
    """System fonts only: the default theme would fetch Google Fonts, and the server must
    work offline (and not stall a browser that cannot reach the internet)."""
    return gr.themes.Default(
        font=["ui-sans-serif", "system-ui", "sans-serif"],
        font_mono=["ui-monospace", "Consolas", "monospace"],
    )


def _static_dir() -> Path:
    return Path(str(importlib.resources.files("srlab.web") / "static"))


def _add_file_routes(api: "FastAPI", state: ServerState) -> None:
    """The viewer's script and the comparison previews, served by the app itself."""
    from fastapi.responses import FileResponse, Response

    static = _static_dir()

    @api.get("/srlab-static/{name}", include_in_schema=False)
    def static_file(name: str):
        if name not in _STATIC_FILES or not (static / name).is_file():
            return Response(status_code=404)
        return FileResponse(static / name, media_type="text/javascript",
                            headers={"Cache-Control": "max-age=3600"})

    @api.get("/srlab-preview/{name}", include_in_schema=False)
    def preview_file(name: str):
        path = state.workdir.path / name
        if not _PREVIEW_NAME.match(name) or not path.is_file():
            return Response(status_code=404)
        return FileResponse(path, media_type="image/png")


def create_app(limits: Limits | None = None) -> "FastAPI":
    """The complete ASGI app: ``/api/*`` and ``/docs`` plus the Gradio UI at ``/`` — what
    ``serve`` runs and what the tests start under uvicorn."""
    gr = _state.import_gradio()
    from srlab.web.api import build_api

    state = ServerState(limits or Limits())
    api = build_api(state)
    api.state.srlab = state  # the shared state, for the process that runs the app (tests)
    _add_file_routes(api, state)
    demo = build_app(state)
    head = ("<script src='/srlab-static/panzoom.min.js'></script>"
            "<script src='/srlab-static/compare.js'></script>"
            "<script src='/srlab-static/paste.js'></script>"
            "<script src='/srlab-static/status.js'></script>")
    from srlab.zoo import weights
    return gr.mount_gradio_app(
        api, demo, path="/",
        allowed_paths=[str(weights.SHIPPED_DIR), str(state.workdir.path)],
        # Gradio's own cap is looser than ours, so an upload somewhat over the limit gets
        # srlab's sentence (the API's wording) from the upload check, not Gradio's toast
        max_file_size=4 * state.limits.max_upload_bytes,
        theme=_theme(gr), css=_CSS, head=head,
        show_error=True,
        footer_links=["settings"],
    )


def _setup_logging() -> None:
    """One line per refused request on stderr, beside uvicorn's own log."""
    import logging

    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     srlab.web: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


def serve(
    host: str = "127.0.0.1",
    port: int = 7860,
    *,
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    concurrency: int = DEFAULT_CONCURRENCY,
    queue_size: int = DEFAULT_QUEUE_SIZE,
    log_level: str = "info",
    max_output_pixels: int = DEFAULT_MAX_OUTPUT_PIXELS,
) -> None:
    """Run the UI and the API with uvicorn until interrupted (blocking)."""
    limits = Limits(max_upload_bytes=int(max_upload_mb * 1024 * 1024), max_pixels=max_pixels,
                    concurrency=concurrency, queue_size=queue_size,
                    max_output_pixels=max_output_pixels)
    app = create_app(limits)
    import uvicorn

    _setup_logging()
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
    max_output_pixels: int = DEFAULT_MAX_OUTPUT_PIXELS,
) -> int:
    """``srlab serve`` for the CLI: an exit code and one-line messages instead of tracebacks."""
    try:
        serve(host, port, max_upload_mb=max_upload_mb, max_pixels=max_pixels,
              concurrency=concurrency, queue_size=queue_size,
              max_output_pixels=max_output_pixels)
    except MissingWebExtra:
        print(f"error: {WEB_EXTRA_HINT}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


"""The web UI's logic without a browser: what is offered, the upload check, the batch job
with its progress and cancel, the comparison previews and the model card's text.

test_web_e2e.py drives the same paths through Chromium; these pin the details fast.
"""

from __future__ import annotations

import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import save_png
from PIL import Image

from srlab import web
from srlab.web import app, state
from srlab.zoo import catalog
from srlab.zoo.weights import WeightsMeta


def test_picker_offers_only_trained_combinations_main_models_first():
    offered = [name for _, name in catalog.ui_models()]
    untrained = {e.name for e in catalog.model_catalog() if not e.trained}
    assert not untrained & set(offered), untrained & set(offered)
    for name in offered:
        assert catalog.trained_scales(name), name
    labels = [label for label, _ in catalog.ui_models()]
    assert not any("untrained" in label for label in labels)
    main = [n for n in offered if n in catalog.MAIN_MODELS]
    assert offered[: len(main)] == main  # main models lead, in MAIN_MODELS order
    assert all(label.startswith(("baseline · ", "study · "))
               for label, n in catalog.ui_models() if n not in catalog.MAIN_MODELS)


def test_without_weights_only_the_baselines_are_offered(tmp_path, monkeypatch):
    from srlab.zoo import weights
    monkeypatch.setattr(weights, "SHIPPED_DIR", tmp_path)  # nothing ships
    offered = [name for _, name in catalog.ui_models()]
    assert offered == ["nearest", "bilinear", "bicubic", "bicubic-matlab", "lanczos"]
    assert catalog.default_choice() == ("nearest", 4)
    (tmp_path / "srgan_x4.safetensors").write_bytes(
        (Path(__file__).parents[1] / "src/srlab/weights/srgan_x4.safetensors").read_bytes())
    assert "srgan" in [name for _, name in catalog.ui_models()]
    assert app._scale_choices("srgan") == [("×4", 4)]  # x2 and x3 run on random weights


def test_switching_model_keeps_a_trained_scale():
    assert catalog.pick_scale("srgan", 2) == 4  # srgan ships x4 only
    assert catalog.pick_scale("span", 2) == 2  # kept when trained there
    assert catalog.pick_scale("vdsr-5", 4) == 2  # x2 only: the default x4 is not there


def test_default_is_x4_and_auto_when_it_ships(tmp_path, monkeypatch):
    from _web_server import make_shipped_pair

    from srlab.zoo.registry import auto_available

    name, scale = catalog.default_choice()
    assert scale == catalog.DEFAULT_SCALE == 4
    assert name == ("auto" if auto_available(4) else "span")
    make_shipped_pair(tmp_path, monkeypatch)
    assert catalog.default_choice() == ("auto", 4)
    assert [n for _, n in catalog.ui_models()][:2] == ["auto", "span"]


def test_upload_check_refuses_with_the_api_wording(srv, tmp_path):
    text = tmp_path / "notes.png"
    text.write_bytes(b"not an image\n" * 30)
    with pytest.raises(state.WebError) as err:
        app._check_upload(srv, str(text))
    assert err.value.status == 400
    assert err.value.message.startswith("notes.png: not an image srlab can read")
    assert str(tmp_path) not in err.value.message  # no server path leaks
    big = save_png(tmp_path / "big.png", np.zeros((301, 300, 3), np.uint8))
    with pytest.raises(state.WebError, match=r"big.png is 300 x 301 = 90,300 pixels, above "
                                             r"this server's limit of 90,000"):
        app._check_upload(srv, big)
    ok = app._check_upload(srv, save_png(tmp_path / "ok.png", np.zeros((20, 30, 3), np.uint8)))
    assert ok["size"] == (30, 20) and ok["name"] == "ok.png"


def test_input_preview_is_a_small_png_whatever_the_upload(tmp_path, rng, monkeypatch):
    tiff = tmp_path / "scan.tif"  # browsers cannot show TIFF: the preview must not be it
    Image.fromarray(rng.integers(0, 256, (200, 280, 3), dtype=np.uint8)).save(tiff)
    srv = state.ServerState(state.Limits(max_pixels=300 * 300))
    with Image.open(app._check_upload(srv, str(tiff))["thumb"]) as im:
        assert im.format == "PNG" and im.size == (280, 200)
    monkeypatch.setattr(app, "THUMB_EDGE", 100)
    with Image.open(app._check_upload(srv, str(tiff))["thumb"]) as im:
        assert im.size == (100, 71)


def test_batch_job_counts_tiles_writes_results_and_a_zip(srv, tmp_path, rng):
    items = [app._check_upload(srv, save_png(tmp_path / f"img{i}.png",
                                         rng.integers(0, 256, (70, 100, 3), dtype=np.uint8)))
             for i in range(3)]
    opts = state.Options("bicubic", 2, tile=32, fmt="webp", quality=90).checked()
    total = sum(state.tiles_of(*it["size"], opts.tile) for it in items)
    assert total == 3 * 4 * 3  # 100 x 70 in 32 px tiles: 4 x 3 each
    job = state.Job(total, len(items))
    out = app._ui_batch(srv, items, opts, job)
    assert job.done == job.total == total and job.fraction == 1.0
    assert [Path(it["path"]).name for it in out] == [f"img{i}_bicubic_x2.webp" for i in range(3)]
    with zipfile.ZipFile(out[0]["zip"]) as zf:
        assert sorted(zf.namelist()) == [f"img{i}_bicubic_x2.webp" for i in range(3)]
    for it in out:
        assert it["preview_size"] == it["out_size"] == (200, 140)
        assert (srv.workdir.path / it["before"]).is_file()
        html = app.compare_html(it)
        assert f"/srlab-preview/{it['after']}" in html and 'data-w="200"' in html
        assert "Preview at" not in html


def test_cancel_stops_the_job_at_the_next_tile(srv, tmp_path, rng):
    items = [app._check_upload(srv, save_png(tmp_path / "a.png",
                                         rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)))]
    opts = state.Options("bicubic", 2, tile=32).checked()
    job = state.Job(16, 1)
    calls = []

    def tick():
        calls.append(1)
        if len(calls) == 3:
            job.cancel.set()
        state.Job.tick(job)

    job.tick = tick  # type: ignore[method-assign]
    with pytest.raises(state.Cancelled):
        app._ui_batch(srv, items, opts, job)
    assert job.done == 3  # stopped right after the tile during which Cancel was pressed


def test_progress_line_says_tiles_and_time_left():
    job = state.Job(40, 2)
    job.image, job.name, job.phase = 2, "b.png", "tiles"
    job.tiles_started = 0.0
    job.done = 10
    text = app.progress_html(job)
    assert "Upscaling b.png (2 of 2): tile 10 of 40 · 25%" in text
    assert "s left" in text and "value='25'" in text


def test_large_results_are_previewed_downscaled(srv, tmp_path, rng, monkeypatch):
    monkeypatch.setattr(app, "PREVIEW_MAX_PIXELS", 100 * 100)
    items = [app._check_upload(srv, save_png(tmp_path / "a.png",
                                         rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)))]
    out = app._ui_batch(srv, items, state.Options("bicubic", 2).checked(), state.Job(1))
    it = out[0]
    assert it["out_size"] == (160, 120)
    w, h = it["preview_size"]
    assert w * h <= 100 * 100 and abs(w / h - 160 / 120) < 0.05
    with Image.open(srv.workdir.path / it["after"]) as im:
        assert im.size == (w, h)
    with Image.open(srv.workdir.path / it["before"]) as im:
        assert im.size == (w, h)
    assert "the download is full size" in app.compare_html(it)
    with Image.open(it["path"]) as im:
        assert im.size == (160, 120)


def test_errors_are_escaped_one_line_messages():
    msg = app.message_html("<b>x.png</b>: not an image", error=True)
    assert "&lt;b&gt;" in msg and "srlab-err" in msg


def test_card_metrics_read_as_written(monkeypatch):
    meta = WeightsMeta(arch="span", scale=4, params=10, recipe="loss 1*l1 + 1*l1 _a_",
                       metrics={"Urban100": {"psnr": 24.5, "ssim": 0.7312, "gmsd": 0.00123}})
    e = catalog.ModelEntry("span", "s", "flagship",
                           {4: catalog.Variant("span", 4, True, 10, meta, False)})
    monkeypatch.setattr(catalog, "entry", lambda name: e)
    card = catalog.model_card("span", 4)
    assert "0.0012" in card and "0.7312" in card and "24.50" in card  # GMSD: 4 decimals
    assert "1*l1" not in card and "1&#42;l1 + 1&#42;l1" in card  # not Markdown italics
    assert "| Urban100 |" in card


def test_package_keeps_the_old_names():
    for name in ("Limits", "WebError", "Busy", "WorkGate", "ModelCache", "model_catalog",
                 "model_card", "training_artifacts", "build_app", "create_app", "serve",
                 "serve_main", "WEB_EXTRA_HINT", "MissingWebExtra"):
        assert hasattr(web, name), name


# --- issue 53: phone photos, the true size of a bomb, one fair line, plain cards ------------


def test_a_bomb_is_refused_with_the_size_its_header_claims(srv, tmp_path):
    from corpus import png_with_header

    from srlab.image.header import header_size

    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_with_header(200_000, 150_000))  # Pillow refuses to open it
    assert header_size(bomb) == (200_000, 150_000)
    with pytest.raises(state.WebError) as err:
        app._check_upload(srv, str(bomb))
    assert err.value.status == 413
    assert "bomb.png is 200000 x 150000 = 30,000,000,000 pixels" in err.value.message
    assert "1048576" not in err.value.message  # never a placeholder
    gif = tmp_path / "g.gif"
    Image.new("RGB", (40, 30)).save(gif)
    assert header_size(gif) == (40, 30)
    assert header_size(tmp_path / "missing.png") is None


def test_header_size_reads_the_whole_bad_input_corpus(tmp_path):
    """Every file of tests/corpus.py: a size or None, never an exception; the size of each
    readable one is the one load_image reports (up to an EXIF rotation)."""
    from corpus import OK_SIZES, build_corpus

    from srlab.image.header import header_size

    for name in build_corpus(tmp_path):
        size = header_size(tmp_path / name)
        if name in OK_SIZES:
            assert size is not None and sorted(size) == sorted(OK_SIZES[name]), name


def test_phone_photos_pass_and_the_output_limit_is_said_before_any_work():
    limits = state.Limits()
    assert limits.max_pixels >= 24_000_000  # a 6000 x 4000 phone photo is accepted
    state.check_output(limits, "p.jpg", 6000, 4000, 2)  # 96 Mpx: runs
    with pytest.raises(state.WebError) as err:
        state.check_output(limits, "p.jpg", 6000, 4000, 4)
    assert err.value.status == 413
    assert "p.jpg at ×4 would be 384 Mpx, above this server's output limit of 100 Mpx" \
        in err.value.message and "6.2 Mpx of input" in err.value.message


def test_one_line_for_browser_and_api_jobs_first_come_first_served():
    import threading

    gate = state.WorkGate(concurrency=1, queue_size=1)
    release = threading.Event()
    order: list[str] = []

    def job(name: str):
        def run():
            release.wait(10)
            order.append(name)
        return run

    first = gate.submit(job("api-1"))
    second = gate.submit(job("api-2"))
    with pytest.raises(state.Busy):  # the API's line is full
        gate.submit(job("api-3"))
    ui = gate.submit(job("ui"), wait=True)  # a person waits instead
    late = gate.submit(job("ui-2"), wait=True)
    deadline = time.monotonic() + 10
    while gate.ahead(first) is not None and time.monotonic() < deadline:
        time.sleep(0.01)  # the first job starts on the worker thread
    assert gate.ahead(first) is None
    assert gate.ahead(second) == 1 and gate.ahead(ui) == 2 and gate.ahead(late) == 3
    assert late.cancel()  # cancelled while waiting: it leaves the line
    release.set()
    for f in (first, second, ui):
        f.result(10)
    assert order == ["api-1", "api-2", "ui"]
    assert gate.pending == 0


def test_reduced_preview_equals_pillow_reduce(rng):
    arr = rng.integers(0, 256, (203, 150, 3), dtype=np.uint8)
    got = np.asarray(app._reduced(arr, 3, rows=5))
    want = np.asarray(Image.fromarray(arr[:201]).reduce(3))
    np.testing.assert_array_equal(got, want)


def test_picker_labels_are_short_and_the_card_reads_in_plain_words():
    assert max(len(label) for label, _ in catalog.ui_models()) <= 40  # fits 390 px
    card = catalog.model_card("span", 4, speed="**Speed here:** x")
    assert "**Speed here:** x" in card and "CPU Mpx/s" not in card
    assert "1*l1" not in card and "runs/" not in card and "LR patches" not in card


def test_api_speeds_come_from_one_bench_run_not_the_ship_headers():
    from srlab.runtime.backends import load_store
    from srlab.runtime.cpu import cpu_model
    from srlab.web import cards

    listing = {m["name"]: m for m in cards.models_json(catalog.model_catalog())}
    for m in listing.values():
        for v in m["variants"]:
            assert all("mpx_per_s" not in row for row in v["metrics"].values()), m["name"]
    stored = load_store().get(cpu_model(), {})
    if "span" not in stored:
        pytest.skip(f"no srlab bench figures stored for this CPU ({cpu_model()})")
    span = {v["scale"]: v["speed"] for v in listing["span"]["variants"]}
    for scale in (2, 4):
        sp = span[scale]
        assert sp["mpx_per_s"] == round(stored["span"][str(scale)][sp["backend"]].mpx_per_s, 2)
    # x4 runs the body on 4x fewer input pixels per output pixel: faster per output Mpx
    assert span[4]["mpx_per_s"] > span[2]["mpx_per_s"]
    auto = {v["scale"]: v["speed"] for v in listing["auto"]["variants"]}
    assert all(auto[s] == span[s] for s in auto)  # auto's figures are span's, as its card says

"""The demo's Output size control and its denoise slider without a browser (issue 53, 50).

The size control is the HTTP API's ``scale``/``width``/``height``/``fit`` read from a text
box: the same planner (``web.sizing.Sized`` over ``image.outsize``), the same sentences for a
bad value, the same pixels. test_web_outsize_e2e.py drives it through Chromium.
"""

from __future__ import annotations

import html
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("gradio", reason="the web extra is not installed: pip install 'srlab[web]'")

from conftest import save_png  # noqa: E402

from srlab.image.outsize import SizeError  # noqa: E402
from srlab.web import api, app, sizing, state  # noqa: E402


def test_the_box_is_read_as_the_api_reads_its_parameters():
    scale, sized = sizing.from_ui("span", "factor", " 1.5 ", None)
    assert scale == 2 and sized.size.scale == 1.5  # x2 shipped: the nearest at or above
    assert sizing.from_ui("span", "factor", "4", None) == (4, None)  # a shipped scale as is
    assert sizing.from_ui("span", "scale", "whatever", None) == (None, None)
    scale, sized = sizing.from_ui("span", "fit", "300x200", None)
    assert scale == 4 and sized.size.fit == (300, 200)  # planned per image
    assert sizing.from_ui("bicubic", "width", "640", None)[1].size.width == 640
    assert sizing.from_ui("bicubic", "height", "480", None)[1].size.height == 480


@pytest.mark.parametrize("mode, text, query", [
    ("factor", "abc", "scale=abc"),
    ("factor", "0.5", "scale=0.5"),
    ("factor", "nan", "scale=nan"),
    ("width", "wide", "width=wide"),
    ("width", "0", "width=0"),
    ("height", "-3", "height=-3"),
    ("fit", "1920", "fit=1920"),
    ("fit", "0x10", "fit=0x10"),
])
def test_a_bad_value_is_the_api_sentence(srv, mode, text, query):
    with pytest.raises(SizeError) as err:
        sizing.from_ui("bicubic", mode, text, None)
    from fastapi.testclient import TestClient

    body = io.BytesIO()
    Image.new("RGB", (8, 8)).save(body, format="PNG")
    with TestClient(api.build_api(srv)) as client:
        r = client.post(f"/api/upscale?model=bicubic&{query}",
                        files={"file": ("a.png", body.getvalue(), "image/png")})
    assert r.status_code == 400 and r.json()["error"] == str(err.value)


def test_an_empty_box_says_what_to_type():
    with pytest.raises(SizeError, match=r"type the output factor first, e\.g\. 1\.5"):
        sizing.from_ui("span", "factor", "  ", None)
    with pytest.raises(SizeError, match=r"type the output box first, e\.g\. 1920x1080"):
        sizing.from_ui("span", "fit", None, None)


def test_a_sized_batch_gives_the_api_pixels_and_says_what_ran(srv, tmp_path, rng):
    arr = rng.integers(0, 256, (70, 100, 3), dtype=np.uint8)
    items = [app._check_upload(srv, save_png(tmp_path / "img.png", arr))]
    for mode, text, size, label, ran in (
            ("factor", "1.5", (150, 105), "x1.5", "bicubic x2 -> resize to 1.5x (150x105)"),
            ("fit", "250x250", (250, 175), "fit250x250",
             "bicubic x3 -> resize to fit 250x250 (250x175)")):
        scale, sized = sizing.from_ui("bicubic", mode, text, None)
        opts = state.Options("bicubic", scale, tile=32).checked()
        plans = app._size_plans(sized, opts, items, srv.limits)
        out = app._ui_batch(srv, items, opts, state.Job(4, 1), plans)[0]
        assert out["out_size"] == out["preview_size"] == size and out["ran"] == ran
        assert Path(out["path"]).name == f"img_bicubic_{label}.png"
        line = app.result_line(out, out["scale"])
        assert f"100 × 70 → <b>{size[0]} × {size[1]}</b>" in line and html.escape(ran) in line
        with Image.open(out["path"]) as im:
            ui = np.asarray(im)
        with Image.open(srv.workdir.path / out["before"]) as im:
            assert im.size == size  # bicubic resized as the model was, for the comparison
        # the HTTP API's job with the same request: the same pixels, the same words
        api_sized = sizing.Sized.of("bicubic", 1.5 if mode == "factor" else 4, None, None,
                                    text if mode == "fit" else None, None)
        path, res, api_ran, _ = api._api_job(srv, Path(items[0]["path"]).read_bytes(),
                                             "img.png", opts,
                                             api_sized.with_options(opts, srv.limits.max_pixels))
        with Image.open(path) as im:
            np.testing.assert_array_equal(ui, np.asarray(im))
        assert api_ran == ran


def test_a_size_that_cannot_be_made_is_refused_before_any_work(srv, tmp_path, rng):
    items = [app._check_upload(srv, save_png(tmp_path / "img.png",
                                         rng.integers(0, 256, (70, 100, 3), dtype=np.uint8)))]
    scale, sized = sizing.from_ui("bicubic", "width", "50", None)
    opts = state.Options("bicubic", scale).checked()
    with pytest.raises(state.WebError, match="already larger than width 50"):
        app._size_plans(sized, opts, items, srv.limits)


def test_the_slider_shows_the_strength_auto_ran():
    ran = {"name": "web.jpg", "condition": "JPEG file, quality ~35", "denoise": 1.0,
           "reason": "JPEG quality 35 <= 90"}
    clean = {**ran, "name": "a.png", "denoise": 0.0, "reason": "clean"}
    assert app._auto_strength([ran, clean], 0) == {
        "value": 1.0, "info": "auto ran 1 on web.jpg: JPEG quality 35 <= 90"}
    assert app._auto_strength([ran, clean], 1)["value"] == 0.0  # the image shown
    by_hand = {**ran, "condition": None, "denoise": 0.5}
    assert app._auto_strength([by_hand], 0) is None  # a strength set by hand stays as set
    assert app._auto_strength([], 0) is None and app._auto_strength([ran], 3) is None

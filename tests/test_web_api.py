"""The HTTP API of ``srlab serve``: listing, upscaling, and refusing what must be refused.

The server runs in-process on a loopback port with deliberately small limits, so that the
413/503 paths can be reached with tiny requests; the point is that every refusal is a clear
JSON error and that the server keeps answering afterwards.
"""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytest.importorskip("gradio", reason="the web extra is not installed: pip install 'srlab[web]'")
httpx = pytest.importorskip("httpx")

from _web_server import running_server  # noqa: E402
from PIL import Image  # noqa: E402

from srlab import web  # noqa: E402
from srlab.zoo import catalog  # noqa: E402
from srlab.zoo.registry import MODELS, auto_available, default_model  # noqa: E402

LIMITS = web.Limits(max_upload_bytes=150_000, max_pixels=200 * 200, concurrency=1,
                    queue_size=1)


@pytest.fixture(scope="module")
def base() -> str:
    with running_server(LIMITS) as url:
        yield url


@pytest.fixture(scope="module")
def client(base):
    with httpx.Client(base_url=base, timeout=120) as c:
        yield c


def png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def upload(client, data: bytes, name: str = "in.png", **params):
    return client.post("/api/upscale", params=params, files={"file": (name, data, "image/png")})


def assert_alive(client) -> None:
    r = client.get("/api/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"


def test_health(client):
    body = client.get("/api/health").json()
    assert body["status"] == "ok"
    assert body["capacity"] == LIMITS.concurrency + LIMITS.queue_size


def test_models_listing(client):
    r = client.get("/api/models")
    assert r.status_code == 200
    models = r.json()
    by_name = {m["name"]: m for m in models}
    assert set(by_name) == set(MODELS) | {"auto"}  # auto is listed as a model of its own
    for m in models:
        if m["name"] != "auto":
            assert m["scales"] == sorted(MODELS[m["name"]].scales)
        assert isinstance(m["params"], int) and isinstance(m["trained"], bool)
        assert isinstance(m["metrics"], dict)
        assert [v["scale"] for v in m["variants"]] == m["scales"]
    assert by_name["bicubic"]["params"] == 0 and by_name["bicubic"]["trained"]
    assert by_name["span"]["params"] > 0
    # trained networks first, random-weights networks last
    untrained = [i for i, m in enumerate(models) if not m["trained"]]
    assert untrained == list(range(len(models) - len(untrained), len(models)))


def test_upscale_bicubic_x2_matches_library(client, smooth_rgb):
    r = upload(client, png_bytes(smooth_rgb), model="bicubic", scale=2)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert r.headers["x-srlab-model"] == "bicubic" and r.headers["x-srlab-scale"] == "2"
    assert r.headers["x-srlab-output-size"] == "72x80"
    assert float(r.headers["x-srlab-seconds"]) >= 0
    out = decode(r.content)
    assert out.shape == (80, 72, 3)
    from srlab import load_model

    np.testing.assert_array_equal(out, load_model("bicubic", 2).upscale_array(smooth_rgb))


def test_upscale_default_model_x2(client, smooth_rgb):
    r = upload(client, png_bytes(smooth_rgb), scale=2)  # no model: auto, else the default
    assert r.status_code == 200, r.text
    assert r.headers["x-srlab-model"] == ("auto" if auto_available(2) else default_model(2))
    assert decode(r.content).shape == (80, 72, 3)


def test_upscale_self_ensemble_matches_library(client, smooth_rgb):
    from srlab import load_model

    r = upload(client, png_bytes(smooth_rgb), model="espcn", scale=2, ensemble="true")
    assert r.status_code == 200, r.text
    assert r.headers["x-srlab-ensemble"] == "true"
    assert 'espcn+_x2.png' in r.headers["content-disposition"]
    up = load_model("espcn", 2)
    want = up.self_ensembled().upscale_array(smooth_rgb)
    np.testing.assert_array_equal(decode(r.content), want)
    # and it is a different computation from the single pass (else the flag did nothing)
    assert not np.array_equal(want, up.upscale_array(smooth_rgb))


def test_upscale_raw_body(client, smooth_rgb):
    r = client.post("/api/upscale", params={"model": "nearest", "scale": 3},
                    content=png_bytes(smooth_rgb), headers={"content-type": "image/png"})
    assert r.status_code == 200, r.text
    assert decode(r.content).shape == (120, 108, 3)


@pytest.mark.parametrize("data", [b"this is not an image\n" * 20, b"",
                                  b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00"],
                         ids=["text", "empty", "truncated"])
def test_bad_upload_is_400_and_server_survives(client, data):
    r = upload(client, data, name="photo.png", model="bicubic", scale=2)
    assert r.status_code == 400
    assert "photo.png" in r.json()["error"] or "empty" in r.json()["error"]
    assert_alive(client)


def test_truncated_real_png_is_400(client, smooth_rgb):
    data = png_bytes(smooth_rgb)
    r = upload(client, data[: len(data) // 2], model="bicubic", scale=2)
    assert r.status_code == 400, r.text
    assert_alive(client)


# (fcn-multi x3 is no longer refused: it runs x4 and resizes, test_outsize.py)
@pytest.mark.parametrize("params", [{"model": "no-such-model", "scale": 2},
                                    {"model": "fcn-vgg", "scale": 3}])
def test_bad_choice_is_400(client, smooth_rgb, params):
    r = upload(client, png_bytes(smooth_rgb), **params)
    assert r.status_code == 400 and "error" in r.json()


def test_oversized_upload_is_413(client):
    r = upload(client, np.random.default_rng(0).bytes(LIMITS.max_upload_bytes + 1000),
               model="bicubic", scale=2)
    assert r.status_code == 413
    assert "limit" in r.json()["error"]
    assert_alive(client)


def test_too_many_pixels_is_413(client):
    r = upload(client, png_bytes(np.zeros((250, 250, 3), np.uint8)), name="wide.png",
               model="bicubic", scale=2)
    assert r.status_code == 413
    assert "62,500 pixels" in r.json()["error"]
    assert_alive(client)


def test_burst_is_served_or_refused_busy(client, rng):
    """8 simultaneous jobs, 1 worker, 1 waiting slot: the rest must get a quick 503.

    vdsr (20 layers at HR size, ~0.5 s a job here) keeps the worker busy long enough for the
    burst to overlap whatever the machine's load; the flagship is too fast to be sure of it.
    """
    data = png_bytes(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8))

    def one(_):
        return upload(client, data, model="vdsr", scale=2)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(8)))
    codes = sorted(r.status_code for r in results)
    assert set(codes) <= {200, 503}, codes
    assert 200 in codes and 503 in codes, codes
    for r in results:
        if r.status_code == 503:
            assert r.json()["error"] == "busy, try again"
            assert r.headers["retry-after"]
        else:
            assert decode(r.content).shape == (192, 192, 3)
    assert_alive(client)
    assert client.get("/api/health").json()["pending"] == 0


def test_model_card_and_artifacts(tmp_path, monkeypatch):
    assert "Classical resampling" in web.model_card("bicubic", 2)
    card = web.model_card("span", 4)
    assert "parameters; its weights ship with srlab" in card
    assert "How close to the original" in card and "How it was trained:" in card
    assert "1*l1" not in card and "runs/" not in card  # the loss formula and paths: jargon
    folder = tmp_path / "span_x4"
    folder.mkdir()
    (folder / "loss.png").write_bytes(png_bytes(np.zeros((4, 4, 3), np.uint8)))
    monkeypatch.setattr(catalog, "ARTIFACTS_DIR", tmp_path)
    assert set(web.training_artifacts("span", 4)) == {"loss.png"}
    assert web.training_artifacts("span", 2) == {}


def test_serve_main_without_web_extra(monkeypatch, capsys):
    def missing():
        raise web.MissingWebExtra(web.WEB_EXTRA_HINT)

    monkeypatch.setattr(web.state, "import_gradio", missing)
    assert web.serve_main("127.0.0.1", 0) == 2
    assert "pip install 'srlab[web]'" in capsys.readouterr().err


# --- issue 41: one error shape, only trained combinations, offline docs, formats ------------


@pytest.mark.parametrize("params, needle", [
    ({"scale": "abc"}, "scale must be a number of at least 1, not 'abc'"),
    ({"scale": "0.5"}, "scale must be a number of at least 1, not 0.5"),
    ({"ensemble": "maybe"}, "ensemble must be true or false, not 'maybe'"),
    ({"denoise": "2"}, "denoise must be a number from 0 to 1"),
    ({"format": "gif"}, "format must be one of png, jpg, webp"),
    ({"quality": "0", "format": "jpg"}, "quality must be a whole number from 1 to 100"),
    ({"tile": "7"}, "tile must be 0 (automatic) or from 32 to 2048 pixels, not 7"),
    ({"model": "espcn", "denoise": "0.5"}, "denoise blends span and span-real"),
], ids=["scale-abc", "scale-below-1", "ensemble", "denoise", "format", "quality", "tile",
        "denoise-other-model"])
def test_bad_parameter_is_400_in_the_error_shape(client, smooth_rgb, params, needle):
    """FastAPI would answer 422 {"detail": [...]}: the API documents {"error": ...}, 400."""
    r = upload(client, png_bytes(smooth_rgb), **{"model": "bicubic", "scale": 2, **params})
    assert r.status_code == 400, r.text
    body = r.json()
    assert set(body) == {"error", "status"} and body["status"] == 400
    assert needle in body["error"], body


def test_wrong_method_is_405_and_unknown_path_404(client):
    r = client.get("/api/upscale")
    assert r.status_code == 405 and r.json()["error"].startswith("/api/upscale accepts POST")
    assert r.headers["allow"] == "POST"
    r = client.post("/api/models")
    assert r.status_code == 405 and "error" in r.json()
    r = client.get("/api/nope")
    assert r.status_code == 404 and r.json() == {"error": "no API endpoint /api/nope "
                                                          "(see /docs)", "status": 404}


@pytest.fixture
def only_span_x4(tmp_path, monkeypatch):
    """A weights folder holding span x4 alone: everything else is untrained, whatever ships."""
    from srlab.zoo import weights
    src = weights.shipped_weights_path("span", 4)
    (tmp_path / src.name).write_bytes(src.read_bytes())
    monkeypatch.setattr(weights, "SHIPPED_DIR", tmp_path)
    return tmp_path


def test_untrained_combination_needs_allow_untrained(client, smooth_rgb, only_span_x4):
    # span x2 is not trained here, x4 is: x2 runs x4 and resizes (image.outsize)
    r = upload(client, png_bytes(smooth_rgb), model="span", scale=2)
    assert r.status_code == 200, r.text
    assert r.headers["x-srlab-ran"].startswith("span x4 -> resize to 2x")
    r = upload(client, png_bytes(smooth_rgb), model="srgan", scale=4)
    assert r.status_code == 400 and "no trained weights at any scale" in r.json()["error"]
    r = upload(client, png_bytes(smooth_rgb), model="srgan", scale=2, allow_untrained="true")
    assert r.status_code == 200, r.text
    assert r.headers["x-srlab-trained"] == "false"
    assert decode(r.content).shape == (80, 72, 3)
    by_name = {m["name"]: m for m in client.get("/api/models").json()}
    assert by_name["span"]["trained_scales"] == [4] and not by_name["srgan"]["trained"]


def test_models_give_params_per_scale(client):
    models = client.get("/api/models").json()
    for m in models:
        per_scale = {str(v["scale"]): v["params"] for v in m["variants"]}
        assert m["params_by_scale"] == per_scale, m["name"]
        # the headline count is a trained scale's (srgan's was its untrained x2's)
        assert m["params"] == per_scale[str(m["params_scale"])]
        if m["trained"]:
            assert m["params_scale"] in m["trained_scales"], m["name"]
            if 4 in m["trained_scales"]:
                assert m["params_scale"] == 4
    srgan = {m["name"]: m for m in models}["srgan"]["params_by_scale"]
    assert srgan["2"] != srgan["4"]  # the x4 generator has one more upsampling stage
    main = [m["name"] for m in models[:2]]
    assert main == ["span", "span-fast"] or main[0] == "auto"


@pytest.mark.parametrize("fmt, mime, pil_format", [("jpg", "image/jpeg", "JPEG"),
                                                   ("webp", "image/webp", "WEBP")])
def test_output_format(client, smooth_rgb, fmt, mime, pil_format):
    r = upload(client, png_bytes(smooth_rgb), model="bicubic", scale=2, format=fmt,
               quality="80")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == mime
    assert f'in_bicubic_x2.{fmt}"' in r.headers["content-disposition"]
    with Image.open(io.BytesIO(r.content)) as im:
        assert im.format == pil_format and im.size == (72, 80)


def test_tile_option_gives_the_same_pixels(client, rng):
    data = png_bytes(rng.integers(0, 256, (70, 90, 3), dtype=np.uint8))
    whole = upload(client, data, model="espcn", scale=2)
    tiled = upload(client, data, model="espcn", scale=2, tile="32")
    assert whole.status_code == tiled.status_code == 200
    np.testing.assert_array_equal(decode(whole.content), decode(tiled.content))


def test_odd_file_name_is_safe_in_the_header(client, smooth_rgb):
    r = client.post("/api/upscale", params={"model": "bicubic", "scale": 2},
                    files={"file": ('pho"to é.png', png_bytes(smooth_rgb), "image/png")})
    assert r.status_code == 200, r.text
    assert 'filename="pho_to_.png' not in r.headers["content-disposition"]
    assert r.headers["content-disposition"].isascii()


def test_docs_are_served_from_local_files(client):
    page = client.get("/docs")
    assert page.status_code == 200
    assert "cdn." not in page.text and "unpkg" not in page.text
    assert "/api-docs-assets/swagger-ui-bundle.js" in page.text
    js = client.get("/api-docs-assets/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 100_000
    assert "cdn." not in client.get("/redoc").text
    spec = client.get("/openapi.json").json()
    assert "/api/upscale" in spec["paths"]
    assert "X-Srlab-Chosen" in spec["paths"]["/api/upscale"]["post"]["responses"]["200"][
        "headers"]


def test_user_mistakes_log_one_line_not_a_traceback(client, smooth_rgb, caplog, capfd):
    import logging

    with caplog.at_level(logging.INFO, logger="srlab.web"):
        upload(client, b"not an image" * 10, name="notes.png", model="bicubic", scale=2)
        upload(client, png_bytes(smooth_rgb), model="bicubic", scale="abc")
        client.get("/api/upscale")
    records = [r for r in caplog.records if r.name == "srlab.web"]
    assert len(records) == 3, [r.getMessage() for r in records]
    for rec in records:
        assert rec.exc_info is None and "\n" not in rec.getMessage()
    assert "notes.png" in records[0].getMessage()
    assert "Traceback" not in capfd.readouterr().err


# --- auto and denoise (issue 36): a stand-in span-real makes auto available -----------------


@pytest.fixture
def pair(tmp_path, monkeypatch):
    from _web_server import make_shipped_pair

    return make_shipped_pair(tmp_path, monkeypatch)


def test_auto_is_refused_where_it_does_not_ship(client, smooth_rgb, tmp_path, monkeypatch):
    from srlab.zoo import weights
    monkeypatch.setattr(weights, "SHIPPED_DIR", tmp_path)  # nothing ships here
    r = upload(client, png_bytes(smooth_rgb), model="auto", scale=4)
    assert r.status_code == 400
    assert r.json()["error"] == ("auto needs the span and span-real weights at x4, which are "
                                 "not shipped; name a model instead")


def test_auto_reports_what_it_detected_and_chose(client, pair):
    from conftest import synthetic_image

    from srlab.image.degrade import jpeg
    from srlab.image.resize import imresize

    photo = imresize(synthetic_image(3, 192, 192), 0.5)  # 96 x 96, smooth and clean
    buf = io.BytesIO()
    Image.fromarray(jpeg(photo, 40)).save(buf, format="JPEG", quality=40)
    r = upload(client, buf.getvalue(), name="web.jpg", scale=4)  # no model: auto
    assert r.status_code == 200, r.text
    assert r.headers["x-srlab-model"] == "auto"
    # a strength of at least the JPEG floor, and the header says which and why
    strength = float(r.headers["x-srlab-denoise"])
    assert strength >= 0.5
    assert r.headers["x-srlab-chosen"] == ("span-real" if strength == 1
                                           else f"span (denoise {strength:g})")
    assert r.headers["x-srlab-reason"].startswith(f"denoise {strength:g} (learned estimate")
    assert r.headers["x-srlab-condition"].startswith("JPEG file, quality ~40")
    assert decode(r.content).shape == (384, 384, 3)
    # a clean photo-like picture (the demo's sample scene at half size: a synthetic drawing
    # is no photo for the learned estimate) keeps span
    from srlab.image.datasets import load_rgb
    from srlab.image.imageio import SAMPLE_IMAGE

    scene = imresize(load_rgb(SAMPLE_IMAGE), 0.5)
    clean = upload(client, png_bytes(scene), scale=4, model="auto")
    assert clean.status_code == 200, clean.text
    assert clean.headers["x-srlab-chosen"] == "span"
    assert clean.headers["x-srlab-denoise"] == "0"
    assert "no JPEG history" in clean.headers["x-srlab-condition"]


def test_denoise_blends_and_says_so(client, pair, smooth_rgb):
    from srlab import load_model

    r = upload(client, png_bytes(smooth_rgb), scale=4, denoise="0.5")
    assert r.status_code == 200, r.text
    assert r.headers["x-srlab-model"] == "auto"
    assert r.headers["x-srlab-chosen"] == "span (denoise 0.5)"
    assert r.headers["x-srlab-denoise"] == "0.5"
    assert "span-dn0.5_x4.png" in r.headers["content-disposition"]
    want = load_model(scale=4, denoise=0.5).upscale_array(smooth_rgb)
    np.testing.assert_array_equal(decode(r.content), want)

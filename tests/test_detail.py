"""span-real-gan and --detail: the registry entry, the weight blend (zoo.blend) in the API, the
CLI, the web request options, and ``srlab ship --as``."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import synthetic_image
from PIL import Image

import srlab
from srlab import cli
from srlab.api import load_model
from srlab.image.degrade import jpeg
from srlab.zoo import weights
from srlab.zoo.blend import Blend
from srlab.zoo.registry import DENOISE_PAIR, DETAIL_PAIR, MODELS, build_model
from srlab.zoo.weights import WeightsMeta, read_weights, save_weights

GAN = DETAIL_PAIR[1]


def _scaled_copy(factor: float, arch: str, dest) -> None:
    """span x4's shipped weights times ``factor``, saved as ``arch`` (a stand-in network of
    the same architecture with other weights)."""
    _, meta = read_weights(weights.shipped_weights_path("span", 4))
    net = load_model("span", 4, fuse=False).net
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(factor)
    meta.arch = arch
    save_weights(net, meta, dest / f"{arch}_x4.safetensors")


@pytest.fixture
def shipped_trio(tmp_path, monkeypatch):
    """A weights dir with span x4 and stand-ins for span-real (x0.5) and span-real-gan (x0.25)
    at x4, the one scale span-real-gan registers."""
    (tmp_path / "span_x4.safetensors").write_bytes(
        weights.shipped_weights_path("span", 4).read_bytes())
    _scaled_copy(0.5, "span-real", tmp_path)
    _scaled_copy(0.25, GAN, tmp_path)
    monkeypatch.setattr(weights, "SHIPPED_DIR", tmp_path)
    return tmp_path


def photo(size: int = 24) -> np.ndarray:
    return synthetic_image(3, size, size)


# --- the registry ----------------------------------------------------------------------------


def test_span_real_gan_is_span_real_s_architecture_at_x4():
    gan, real = MODELS[GAN], MODELS[DETAIL_PAIR[0]]
    assert gan.builder is real.builder and gan.kwargs == real.kwargs
    assert gan.scales == (4,) and gan.family == "flagship"
    assert "may invent detail" in gan.summary
    assert GAN not in DENOISE_PAIR  # auto chooses among the faithful pair only


def test_auto_never_picks_the_gan_stage(shipped_trio):
    auto = load_model("auto", 4)
    clean = photo(48)
    for picked in (auto.pick(clean), auto.pick(jpeg(clean, 40))):
        # span, span-real or a denoise blend of the two ("span (denoise 0.5)"), no detail
        assert picked.name.split(" (denoise ")[0] in DENOISE_PAIR, picked.name
        assert "detail" not in picked.name


def test_models_lists_span_real_gan(shipped_trio, capsys):
    assert cli.main(["models", "--markdown"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith(f"| {GAN} "))
    assert "x4" in row and "flagship" in row


# --- the weight blend --------------------------------------------------------------------------


@pytest.mark.parametrize("denoise, detail, want", [
    (None, None, {}),
    (0.5, None, {"span": 0.5, "span-real": 0.5}),
    (None, 0.0, {"span-real": 1.0}),
    (None, 1.0, {GAN: 1.0}),
    (None, 0.7, {"span-real": 0.3, GAN: 0.7}),
    (0.5, 0.5, {"span": 0.5, "span-real": 0.25, GAN: 0.25}),
    (0.0, 0.9, {"span": 1.0}),
])
def test_blend_coefficients(denoise, detail, want):
    got = Blend(denoise, detail).coefficients()
    assert got.keys() == want.keys()
    assert all(abs(got[k] - want[k]) < 1e-12 for k in want)
    assert not got or abs(sum(got.values()) - 1) < 1e-12


@pytest.mark.parametrize("detail, name", [(0.0, "span-real"), (1.0, GAN)])
def test_detail_end_points_are_the_two_networks(shipped_trio, detail, name):
    img = photo()
    blend = load_model(scale=4, detail=detail, fuse=False, backend="torch")
    one = load_model(name, 4, fuse=False, backend="torch")
    assert blend.name == name
    assert np.array_equal(blend(img), one(img))


@pytest.mark.parametrize("denoise, detail", [(None, 0.5), (None, 0.3), (0.5, 0.5)])
def test_a_blend_is_the_mixed_state_dict(shipped_trio, denoise, detail):
    states = {n: load_model(n, 4, fuse=False, backend="torch").net.state_dict()
              for n in (*DENOISE_PAIR, GAN)}
    coef = Blend(denoise, detail).coefficients()
    mid = load_model(scale=4, denoise=denoise, detail=detail, fuse=False,
                     backend="torch").net.state_dict()
    for k in mid:
        want = sum(c * states[n][k] for n, c in coef.items())
        assert torch.allclose(mid[k], want, atol=1e-6), k
    # and it is not an end point: the blend really mixes
    assert not torch.allclose(mid[k], states[GAN][k])


def test_blend_names_say_what_ran(shipped_trio):
    assert load_model(scale=4, detail=0.7, fuse=False).name == "span-real (detail 0.7)"
    assert load_model(scale=4, denoise=0.5, detail=0.5, fuse=False).name == \
        "span (denoise 0.5, detail 0.5)"
    assert Blend(None, 0.7).tag() == "span-real-dt0.7"


@pytest.mark.parametrize("kwargs, scale, needle", [
    ({"detail": 1.5}, 4, "detail must be between 0 and 1, not 1.5"),
    ({"detail": -0.1}, 4, "detail must be between 0 and 1"),
    ({"detail": 0.5}, 2, "detail needs span-real-gan, which cannot run at x2"),
    ({"detail": 0.5, "name": "espcn"}, 4, "does not apply to other models"),
    ({"detail": 0.5, "name": "auto"}, 4, "auto chooses its own weights"),
])
def test_api_refusals(shipped_trio, kwargs, scale, needle):
    with pytest.raises(ValueError, match=needle):
        load_model(kwargs.pop("name", None), scale, **kwargs)


def test_detail_needs_the_gan_weights_shipped(tmp_path, monkeypatch):
    (tmp_path / "span_x4.safetensors").write_bytes(
        weights.shipped_weights_path("span", 4).read_bytes())
    _scaled_copy(0.5, "span-real", tmp_path)
    monkeypatch.setattr(weights, "SHIPPED_DIR", tmp_path)
    with pytest.raises(ValueError, match="span-real-gan weights at x4, which are not shipped"):
        load_model(scale=4, detail=0.5)


def test_a_detail_blend_runs_on_onnx_like_on_torch(shipped_trio, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("SRLAB_CACHE", str(tmp_path / "cache"))
    fast = load_model(scale=4, detail=0.5, backend="onnx")
    ref = load_model(scale=4, detail=0.5, backend="torch")
    assert fast.backend == "onnx"
    img = photo()
    diff = np.abs(fast(img).astype(int) - ref(img).astype(int))
    assert diff.max() <= 1
    assert len(list((tmp_path / "cache" / "onnx").glob("span-real-detail-0.5_x4_*.onnx"))) == 1


# --- the CLI -----------------------------------------------------------------------------------


def _png(tmp_path) -> str:
    src = tmp_path / "a.png"
    buf = io.BytesIO()
    Image.fromarray(photo()).save(buf, format="PNG")
    src.write_bytes(buf.getvalue())
    return str(src)


def test_cli_detail_writes_the_blend(shipped_trio, tmp_path, capsys):
    out = tmp_path / "o.png"
    code = cli.main(["upscale", _png(tmp_path), "-o", str(out), "--detail", "0.5",
                     "--backend", "torch"])
    assert code == 0, capsys.readouterr().err
    want = load_model(scale=4, detail=0.5, backend="torch")(photo())
    assert np.array_equal(np.asarray(Image.open(out)), want)


@pytest.mark.parametrize("argv, needle", [
    (["--detail", "2"], "--detail must be a number from 0 to 1, not 2"),
    (["--detail", "x"], "--detail must be a number from 0 to 1"),
    (["--detail", "0.5", "-s", "2"], "detail needs span-real-gan, which cannot run at x2"),
    (["--detail", "0.5", "-m", "espcn"], "--detail blends"),
])
def test_cli_detail_errors_are_one_line(shipped_trio, tmp_path, capsys, argv, needle):
    code = cli.main(["upscale", _png(tmp_path), "-o", str(tmp_path / "o.png"), *argv])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert needle in err
    assert not (tmp_path / "o.png").exists()


def test_cli_help_says_how_detail_and_denoise_combine(capsys):
    assert cli.main(["upscale", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--detail D" in text and "Alone it means the real side (denoise 1)" in text


# --- the web request options --------------------------------------------------------------------


def test_web_options_check_detail(shipped_trio):
    pytest.importorskip("gradio")
    from srlab.web.state import Options, WebError

    Options("auto", 4, detail=0.5).checked()
    for opts, needle in ((Options("auto", 2, detail=0.5), "cannot run at x2"),
                         (Options("espcn", 4, detail=0.5), "detail blends"),
                         (Options("auto", 4, detail=1.5), "between 0 and 1")):
        with pytest.raises(WebError, match=needle) as exc:
            opts.checked()
        assert exc.value.status == 400


# --- srlab ship --as ------------------------------------------------------------------------------


def _run(tmp_path, arch: str, scale: int, *, gan: bool = False, init: str | None = None):
    """A finished run folder holding ``arch`` x``scale`` weights (random, marked trained)."""
    run = tmp_path / "runs" / f"{arch}_x{scale}"
    run.mkdir(parents=True)
    net = build_model(arch, scale)
    save_weights(net, WeightsMeta(arch=arch, scale=scale, recipe="test run",
                                  train_seconds=60.0), run / "last.safetensors")
    cfg = {"model": {"name": arch, "scale": scale, **({"init": init} if init else {})},
           "run": {"epochs": 1, "iters_per_epoch": 2}}
    if gan:
        cfg["gan"] = {"enabled": True, "adv_weight": 0.1, "pretrain_iters": 0, "d_lr": 1e-4,
                      "discriminator": "unet", "d_features": 16}
        cfg["loss"] = {"sharpen_gt": True}
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    (run / "metrics.csv").write_text("epoch,iteration,val_psnr\n1,2,20.0\n")
    return run


@pytest.mark.parametrize("arch, scale, name, needle", [
    ("span-fast", 4, GAN, "another architecture"),
    ("span-real", 2, GAN, "supports scales [4], not 2"),
    ("span-real", 4, "no-such-model", "unknown model"),
])
def test_ship_as_refuses_another_architecture_or_scale(tmp_path, monkeypatch, capsys, arch,
                                                       scale, name, needle):
    monkeypatch.setattr(weights, "SHIPPED_DIR", tmp_path / "w")
    run = _run(tmp_path, arch, scale)
    code = cli.main(["ship", str(run), "--which", "last", "--as", name, "--no-cache"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and needle in err, err
    assert not (tmp_path / "w").exists()  # refused before measuring or writing anything


def test_ship_as_installs_under_the_name_with_noref_score(tmp_path, monkeypatch, hr_folder):
    from srlab.ship import ship_run

    init = tmp_path / "parent.safetensors"
    save_weights(build_model("span-real", 4),
                 WeightsMeta(arch="span-real", scale=4, train_seconds=100.0), init)
    run = _run(tmp_path, "span-real", 4, gan=True, init=str(init))
    shared = tmp_path / "shared"
    (shared / "datasets" / "benchmark").mkdir(parents=True)
    (shared / "datasets" / "benchmark" / "Tiny").symlink_to(hr_folder)
    real = shared / "datasets" / "real" / "RealSRSet"
    real.mkdir(parents=True)
    for i in range(2):
        Image.fromarray(synthetic_image(10 + i, 30, 28)).save(real / f"{i}.png")
    monkeypatch.setenv("SRLAB_SHARED", str(shared))
    dest = tmp_path / "w"
    out = ship_run(run, datasets=("Tiny",), dest=dest, which="last", name=GAN,
                   log=lambda _: None)
    assert out.name == f"{GAN}_x4.safetensors"
    _, meta = read_weights(out)
    assert meta.arch == GAN and meta.metrics["RealSRSet"]["niqe"] > 0
    card = (dest / f"{GAN}_x4.md").read_text()
    assert f"--which last --as {GAN}" in card and f"| {GAN} | x4 |" in card
    assert "- iterations: 2 of the 2 the run plans" in card
    assert "unet discriminator (16 features)" in card and "sharpened GT" in card
    assert "of the 2 photos of RealSRSet" in card and "parent.safetensors" in card
    # shipped under its run's model name it would replace the weights it started from
    monkeypatch.setattr(weights, "SHIPPED_DIR", dest)
    with pytest.raises(ValueError, match="ship it --as another"):
        ship_run(_run(tmp_path / "again", "span-real", 4, gan=True,
                      init=str(dest / "span-real_x4.safetensors")),
                 datasets=("Tiny",), dest=dest, which="last", log=lambda _: None)


def test_ship_installs_a_blend_file_with_its_record_and_noref_score(tmp_path, monkeypatch,
                                                                    hr_folder):
    """A blend no single run made ships from its file: the card's recipe is the blend's record
    (both halves), NIQE is measured since one half had an adversarial stage, and nothing of
    the run shipped before under that name is left beside it."""
    from srlab.ship import ship_run
    from srlab.zoo.blend import blend_files

    a, b = tmp_path / "faithful.safetensors", tmp_path / "crisp.safetensors"
    save_weights(build_model("span-real", 4), WeightsMeta(
        arch="span-real", scale=4, recipe="srlab train (run x): 1*l1", train_seconds=60.0), a)
    save_weights(build_model("span-real", 4), WeightsMeta(
        arch="span-real", scale=4, recipe="srlab train (run y): 1*l1 + 0.3*adversarial",
        train_seconds=120.0), b)
    blend = tmp_path / "mix.safetensors"
    blend_files(a, b, 0.25, blend)
    shared = tmp_path / "shared"
    (shared / "datasets" / "benchmark").mkdir(parents=True)
    (shared / "datasets" / "benchmark" / "Tiny").symlink_to(hr_folder)
    real = shared / "datasets" / "real" / "RealSRSet"
    real.mkdir(parents=True)
    Image.fromarray(synthetic_image(10, 30, 28)).save(real / "0.png")
    monkeypatch.setenv("SRLAB_SHARED", str(shared))
    dest = tmp_path / "w"
    (dest / f"{GAN}_x4").mkdir(parents=True)
    (dest / f"{GAN}_x4" / "loss.png").write_bytes(b"the run shipped before")
    out = ship_run(blend, datasets=("Tiny",), dest=dest, name=GAN, log=lambda _: None)
    _, meta = read_weights(out)
    assert meta.arch == GAN and meta.metrics["RealSRSet"]["niqe"] > 0
    card = (dest / f"{GAN}_x4.md").read_text()
    assert "- training: blend: 0.75 x faithful.safetensors" in card
    assert "0.25 x crisp.safetensors" in card and f"srlab ship {blend} --as {GAN}`" in card
    assert "3.0 min on a 2-core CPU, the sum of the two blended" in card
    assert "of the 1 photos of RealSRSet" in card
    assert not (dest / f"{GAN}_x4" / "loss.png").exists()


@pytest.mark.parametrize("name", ["missing-run", "notes.txt"])
def test_ship_refuses_what_is_neither_a_run_nor_a_weights_file(tmp_path, capsys, name):
    (tmp_path / "notes.txt").write_text("not weights")
    code = cli.main(["ship", str(tmp_path / name)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "not a run directory or a .safetensors file" in err


def test_http_api_takes_detail(shipped_trio):
    pytest.importorskip("gradio")
    httpx = pytest.importorskip("httpx")
    from _web_server import running_server

    from srlab import web

    buf = io.BytesIO()
    Image.fromarray(photo()).save(buf, format="PNG")
    data = buf.getvalue()
    with running_server(web.Limits(concurrency=1)) as url, \
            httpx.Client(base_url=url, timeout=120) as client:
        def post(**params):
            return client.post("/api/upscale", params=params,
                               files={"file": ("in.png", data, "image/png")})

        r = post(detail=0.5)
        assert r.status_code == 200, r.text
        assert r.headers["x-srlab-detail"] == "0.5"
        assert r.headers["x-srlab-chosen"] == "span-real (detail 0.5)"
        want = load_model(scale=4, detail=0.5)(photo())
        got = np.asarray(Image.open(io.BytesIO(r.content)))
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 1  # same backend pick
        for params, needle in (({"detail": 2}, "detail must be a number from 0 to 1"),
                               ({"detail": 0.5, "scale": 2}, "cannot run at x2")):
            r = post(**params)
            assert r.status_code == 400 and needle in r.json()["error"], r.text


# --- srlab blend: weights files of your own ----------------------------------------------------


def test_blend_files_writes_the_lerp_with_both_records(shipped_trio, tmp_path, capsys):
    a, b = shipped_trio / "span-real_x4.safetensors", shipped_trio / f"{GAN}_x4.safetensors"
    out = tmp_path / "mix.safetensors"
    assert cli.main(["blend", str(a), str(b), "--alpha", "0.7", "-o", str(out)]) == 0
    assert "0.3 x span-real_x4.safetensors + 0.7 x" in capsys.readouterr().out
    (ta, ma), (tb, mb) = read_weights(a), read_weights(b)
    mixed, meta = read_weights(out)
    for k in ta:
        assert torch.allclose(mixed[k], 0.3 * ta[k] + 0.7 * tb[k], atol=1e-6), k
    assert meta.arch == "span-real" and meta.scale == 4 and meta.metrics == {}
    assert ma.recipe in meta.recipe and mb.recipe in meta.recipe
    # the file is what --detail 0.7 builds from the shipped pair, and --weights takes it
    img = photo()
    want = load_model(scale=4, detail=0.7, fuse=False, backend="torch")(img)
    got = load_model("span-real", 4, weights=out, fuse=False, backend="torch")(img)
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1


@pytest.mark.parametrize("second, argv, needle, code", [
    ("span_x2.safetensors", [], "a blend mixes one scale", 1),
    ("srcnn_x4.safetensors", [], "do not share one architecture", 1),
    ("plain.pth", [], "carries no srlab record", 1),
    ("missing.safetensors", [], "weights file not found", 1),
    (f"{GAN}_x4.safetensors", ["--alpha", "1.5"], "--alpha must be a number from 0 to 1", 2),
    (f"{GAN}_x4.safetensors", ["-o", "mix.pth"], "written as .safetensors, not mix.pth", 1),
])
def test_blend_refusals_are_one_line_and_write_nothing(shipped_trio, tmp_path, capsys, second,
                                                        argv, needle, code):
    real_dir = Path(srlab.__file__).parent / "weights"
    for name in ("span_x2", "srcnn_x4"):
        (shipped_trio / f"{name}.safetensors").write_bytes(
            (real_dir / f"{name}.safetensors").read_bytes())
    torch.save(read_weights(shipped_trio / "span-real_x4.safetensors")[0],
               shipped_trio / "plain.pth")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / (argv[1] if argv[:1] == ["-o"] else "mix.safetensors")
    extra = [] if argv[:1] == ["-o"] else argv
    code_got = cli.main(["blend", str(shipped_trio / "span-real_x4.safetensors"),
                         str(shipped_trio / second), "-o", str(out), *extra])
    err = capsys.readouterr().err
    assert code_got == code and len(err.strip().splitlines()) == 1 and needle in err, err
    assert list(out_dir.iterdir()) == []

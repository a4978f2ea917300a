"""auto and --denoise: the condition estimator, span/span-real per image, weight blending."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from conftest import synthetic_image
from PIL import Image

from srlab import cli
from srlab.api import AutoUpscaler, load_model
from srlab.image.condition import LATTICE, estimate, jpeg_lattice, jpeg_quality_of, noise_sigma
from srlab.image.degrade import jpeg
from srlab.image.resize import imresize
from srlab.zoo import weights
from srlab.zoo.weights import read_weights, save_weights


def photo(seed: int = 0, size: int = 128) -> np.ndarray:
    return imresize(synthetic_image(seed, 2 * size, 2 * size), 0.5)


@pytest.mark.parametrize("q", [50, 75, 90])
def test_quality_is_read_from_the_file_tables(tmp_path, q):
    path = tmp_path / "a.jpg"
    Image.fromarray(photo()).save(path, quality=q)
    assert abs(jpeg_quality_of(path) - q) <= 1
    assert jpeg_quality_of(tmp_path / "missing.jpg") is None


def test_png_is_not_a_jpeg_file(tmp_path):
    Image.fromarray(photo()).save(tmp_path / "a.png")
    assert jpeg_quality_of(tmp_path / "a.png") is None


def test_lattice_finds_a_jpeg_history_in_pixels_only():
    clean = photo()
    assert jpeg_lattice(clean)[0] < LATTICE
    score, q = jpeg_lattice(jpeg(clean, 70))
    assert score > LATTICE + 0.05 and abs(q - 70) <= 3


def test_noise_estimate_tracks_gray_noise():
    flat = np.full((128, 128), 120.0)
    for sigma in (3, 10):
        noisy = np.clip(flat + np.random.default_rng(0).normal(0, sigma, flat.shape), 0, 255)
        assert abs(noise_sigma(noisy.astype(np.uint8)) - sigma) < 0.2 * sigma + 0.3


def test_estimate_sends_clean_to_span_and_jpeg_or_noise_to_span_real(monkeypatch):
    monkeypatch.setenv("SRLAB_AUTO_ESTIMATOR", "hand")  # the hand cues' thresholds
    clean = photo()
    assert not estimate(clean).degraded
    assert estimate(jpeg(clean, 60)).degraded
    noisy = np.clip(clean + np.random.default_rng(1).normal(0, 15, clean.shape), 0, 255)
    assert estimate(noisy.astype(np.uint8)).degraded


@pytest.fixture
def shipped_pair(tmp_path, monkeypatch):
    """A weights dir with span x4 and a stand-in span-real x4 (span's weights x 0.5)."""
    tensors, meta = read_weights(weights.shipped_weights_path("span", 4))
    (tmp_path / "span_x4.safetensors").write_bytes(
        weights.shipped_weights_path("span", 4).read_bytes())
    net = load_model("span", 4, fuse=False).net
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(0.5)
    meta.arch = "span-real"
    save_weights(net, meta, tmp_path / "span-real_x4.safetensors")
    monkeypatch.setattr(weights, "SHIPPED_DIR", tmp_path)
    return tmp_path


def test_denoise_blends_the_two_weights(shipped_pair):
    a = load_model("span", 4, fuse=False).net.state_dict()
    b = load_model("span-real", 4, fuse=False).net.state_dict()
    mid = load_model(scale=4, fuse=False, denoise=0.25).net.state_dict()
    for k in a:
        assert torch.allclose(mid[k], 0.75 * a[k] + 0.25 * b[k], atol=1e-6)
    assert load_model(scale=4, denoise=1.0).name == "span-real"
    with pytest.raises(ValueError, match="between 0 and 1"):
        load_model(scale=4, denoise=1.5)
    with pytest.raises(ValueError, match="does not apply"):
        load_model("espcn", 4, denoise=0.5)


def test_auto_picks_per_image(shipped_pair, monkeypatch):
    # the hand cues: a synthetic drawing is no photo for the learned estimate (test_damage.py)
    monkeypatch.setenv("SRLAB_AUTO_ESTIMATOR", "hand")
    auto = load_model("auto", 4)
    assert isinstance(auto, AutoUpscaler)
    clean = photo(size=64)
    assert auto.pick(clean).name == "span"
    assert auto.pick(jpeg(clean, 50)).name == "span-real"
    out = auto(jpeg(clean, 50))
    assert out.shape == (256, 256, 3)


def test_auto_unavailable_without_span_real(tmp_path, monkeypatch):
    monkeypatch.setattr(weights, "SHIPPED_DIR", tmp_path)
    with pytest.raises(ValueError, match="auto needs"):
        load_model("auto", 4)


def test_cli_upscale_says_what_auto_detected(shipped_pair, tmp_path, capsys):
    src = tmp_path / "web.jpg"
    Image.fromarray(photo(size=48)).save(src, quality=60)
    code = cli.main([
        "upscale", str(src), "-o", str(tmp_path / "out.png"), "--backend", "torch"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "auto: JPEG file, quality ~60" in err and "-> span-real" in err
    assert Image.open(tmp_path / "out.png").size == (192, 192)


def test_cli_denoise_errors_are_one_line(shipped_pair, tmp_path, capsys):
    src = tmp_path / "a.png"
    buf = io.BytesIO()
    Image.fromarray(photo(size=32)).save(buf, format="PNG")
    src.write_bytes(buf.getvalue())
    for argv, frag in ((["--denoise", "2"], "--denoise must be a number from 0 to 1, not 2"),
                       (["--denoise", "0.5", "-m", "espcn"], "--denoise blends")):
        code = cli.main(["upscale", str(src), "-o", str(tmp_path / "o.png"), *argv])
        err = capsys.readouterr().err
        assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        assert frag in err
    assert not (tmp_path / "o.png").exists()


def test_inspect_prints_the_condition_and_the_choice(tmp_path, capsys, monkeypatch):
    jpg, png = tmp_path / "a.jpg", tmp_path / "b.png"
    Image.fromarray(photo()).save(jpg, quality=60)
    Image.fromarray(photo()).save(png)
    monkeypatch.setenv("SRLAB_AUTO_ESTIMATOR", "hand")
    assert cli.main(["inspect", str(jpg), str(png)]) == 0
    out = capsys.readouterr().out.splitlines()
    # with SRLAB_AUTO_ESTIMATOR=hand the hand cues decide and say why
    assert "JPEG file, quality ~60" in out[0] and "denoise 1 (JPEG file at quality 60" in out[0]
    assert out[0].endswith("span-real (clean it up)")
    assert "no JPEG history" in out[1] and "-> denoise 0" in out[1]


def test_inspect_with_the_learned_estimate(tmp_path, capsys, monkeypatch):
    from srlab.image import damage

    if not damage.WEIGHTS.is_file():
        pytest.skip("the damage estimator's weights are not shipped")
    monkeypatch.setenv("SRLAB_AUTO_ESTIMATOR", "learned")
    jpg = tmp_path / "a.jpg"
    Image.fromarray(photo()).save(jpg, quality=60)
    assert cli.main(["inspect", str(jpg)]) == 0
    out = capsys.readouterr().out.splitlines()
    # a file at quality 60 gets at least the floor, whatever the learned estimate says
    assert "JPEG file, quality ~60" in out[0] and "(learned estimate" in out[0]
    assert not out[0].endswith("span (faithful)")


def test_inspect_eval_writes_a_confusion_table(image_folder, tmp_path, capsys):
    doc = tmp_path / "doc.md"
    doc.write_text("<!-- srlab:estimator -->\n<!-- /srlab:estimator -->\n")
    assert cli.main(["inspect", "--eval", str(image_folder), "--limit", "2",
                     "--readme", str(doc)]) == 0
    text = doc.read_text()
    assert "| clean (MATLAB bicubic) | 2 |" in text and "Made by `srlab" in text
    assert "| JPEG q30-95 .jpg | 2 |" in text and "| halftone scan | 2 |" in text
    assert cli.main(["inspect"]) == 2


def test_auto_rows_are_cached_under_both_networks_and_the_estimator(shipped_pair, monkeypatch):
    from srlab.eval import benchmark
    from srlab.image import condition
    key = benchmark._model_identity("auto", 4, None)
    assert key is not None and key != benchmark._model_identity("span", 4, None)
    source = condition.SOURCE
    monkeypatch.setattr(condition, "SOURCE", source + b"# edited")
    assert benchmark._model_identity("auto", 4, None) != key  # other estimator code
    monkeypatch.setattr(condition, "SOURCE", source)
    (shipped_pair / "span-real_x4.safetensors").unlink()
    assert benchmark._model_identity("auto", 4, None) is None  # nothing to cache


def test_a_blend_runs_on_onnx_like_on_torch(shipped_pair, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("SRLAB_CACHE", str(tmp_path / "cache"))
    fast = load_model(scale=4, denoise=0.5, backend="onnx")
    ref = load_model(scale=4, denoise=0.5, backend="torch")
    assert fast.backend == "onnx" and ref.backend == "torch"
    img = photo(size=32)
    diff = np.abs(fast.upscale_array(img).astype(int) - ref.upscale_array(img).astype(int))
    assert diff.max() <= 1  # rounding of float32 runtimes
    assert len(list((tmp_path / "cache" / "onnx").glob("span-denoise-0.5_x4_*.onnx"))) == 1


def test_a_table_made_with_the_hand_cues_says_so(monkeypatch):
    from srlab.eval.tables import command_line

    monkeypatch.setattr("sys.argv", ["srlab", "benchmark", "-m", "auto"])
    monkeypatch.delenv("SRLAB_AUTO_ESTIMATOR", raising=False)
    assert command_line() == "srlab benchmark -m auto"
    monkeypatch.setenv("SRLAB_AUTO_ESTIMATOR", "hand")
    assert command_line() == "SRLAB_AUTO_ESTIMATOR=hand srlab benchmark -m auto"

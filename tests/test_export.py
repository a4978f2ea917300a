"""ONNX export (parity, dynamic size, metadata, cache) and the ONNX Runtime backend."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from srlab import cli
from srlab.api import load_model
from srlab.image.imageio import load_image, save_image
from srlab.runtime.backends import load_backend
from srlab.runtime.onnx import (
    PARITY_TOL,
    OnnxError,
    OnnxUpscaler,
    check_parity,
    export_net,
    export_onnx,
    export_upscaler,
    load_onnx_model,
    make_session,
)
from srlab.zoo.registry import build_model
from srlab.zoo.weights import WeightsMeta, save_weights

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SRLAB_CACHE", str(tmp_path / "cache"))


def _random_net(name: str, scale: int) -> torch.nn.Module:
    torch.manual_seed(0)
    net = build_model(name, scale).eval()
    if hasattr(net, "reparameterize"):
        net.reparameterize()
    return net


@pytest.mark.parametrize(("name", "scale"), [("span-fast", 2), ("span-fast", 4), ("span", 3)])
def test_parity_with_random_weights_at_other_sizes(tmp_path, name, scale):
    net = _random_net(name, scale)
    path = export_net(net, net.in_channels, tmp_path / "m.onnx", trace_hw=(16, 12))
    assert check_parity(path, net, net.in_channels, hw=(23, 31)) <= PARITY_TOL
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for h, w in ((9, 40), (33, 7)):  # neither is the traced size: height/width are dynamic
        x = torch.rand(1, net.in_channels, h, w)
        got = sess.run(None, {"lr": x.numpy()})[0]
        with torch.no_grad():
            ref = net(x).numpy()
        assert got.shape == (1, net.in_channels, h * scale, w * scale)
        assert np.abs(got - ref).max() <= PARITY_TOL


def test_export_onnx_reports_parity_and_writes_metadata(tmp_path, capsys):
    out = export_onnx("span-fast", 2, tmp_path / "sub" / "sf.onnx")
    assert out.path.is_file() and out.max_abs_diff <= PARITY_TOL
    assert "max abs diff" in capsys.readouterr().out
    meta = {p.key: p.value for p in onnx.load(str(out.path)).metadata_props}
    assert meta["srlab.arch"] == "span-fast" and meta["srlab.scale"] == "2"
    assert meta["srlab.in_channels"] == "1"


def test_parity_failure_is_an_error(tmp_path):
    net = _random_net("span-fast", 2)
    path = export_net(net, 1, tmp_path / "m.onnx")
    with torch.no_grad():
        net.tail.bias.add_(0.01)  # PyTorch now disagrees with the file
    with pytest.raises(OnnxError, match="parity"):
        check_parity(path, net, 1)


@pytest.mark.parametrize("name", ["span-fast", "span"])
def test_onnx_upscaler_matches_torch(tmp_path, name, smooth_rgb):
    torch.manual_seed(1)
    up = load_model(name, 2, backend="torch")
    done = export_upscaler(up, tmp_path / "m.onnx", opset=17, log=None)  # these weights
    onx = OnnxUpscaler(make_session(done.path), like=up)
    img = smooth_rgb[:21, :17]
    a, b = onx.upscale_array(img), up.upscale_array(img)
    assert a.shape == b.shape == (42, 34, 3) and a.dtype == np.uint8
    assert np.abs(a.astype(int) - b).max() <= 1
    np.testing.assert_array_equal(onx.upscale_array(img, tile=8), a)  # tiling is shared
    assert onx.upscale_array(img[..., 0]).shape == (42, 34)  # gray
    rgba = np.dstack([img, img[..., :1]])
    assert onx.upscale_array(rgba).shape == (42, 34, 4)  # alpha
    assert onx.trained == up.trained and onx.params == up.params


def test_trained_model_is_exported_once_into_the_cache(tmp_path, monkeypatch):
    torch.manual_seed(2)
    net = build_model("span-fast", 2)
    wpath = tmp_path / "w.safetensors"
    save_weights(net, WeightsMeta(arch="span-fast", scale=2, trained=True), wpath)
    first = load_onnx_model("span-fast", 2, weights=wpath)
    files = list((tmp_path / "cache" / "onnx").glob("span-fast_x2_*.onnx"))
    assert len(files) == 1 and first.trained
    import srlab.runtime.onnx as ex

    def boom(*a, **k):
        raise AssertionError("exported again")

    monkeypatch.setattr(ex, "export_upscaler", boom)
    again = load_onnx_model("span-fast", 2, weights=wpath)
    img = np.full((10, 12, 3), 120, np.uint8)
    np.testing.assert_array_equal(again.upscale_array(img), first.upscale_array(img))


def test_missing_onnxruntime_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import now raises ImportError
    with pytest.raises(OnnxError, match=r"pip install 'srlab\[onnx\]'"):
        load_onnx_model("span-fast", 2)
    assert not isinstance(load_backend("span-fast", 2, backend="auto"), OnnxUpscaler)


def test_auto_uses_the_measured_default(monkeypatch):
    import srlab.runtime.backends as be

    monkeypatch.setattr(be, "pick_backend", lambda name, scale, **k: "onnx"
                        if name == "span-fast" else "torch")
    assert isinstance(load_backend("span-fast", 2, backend="auto"), OnnxUpscaler)
    assert not isinstance(load_backend("bicubic", 2, backend="auto"), OnnxUpscaler)
    with pytest.raises(ValueError):
        load_backend("span-fast", 2, backend="tpu")  # type: ignore[arg-type]


def test_cli_upscale_backend_onnx_and_export(tmp_path, capsys, smooth_rgb):
    src = tmp_path / "a.png"
    save_image(smooth_rgb[:20, :24], src)
    code = cli.main(["upscale", str(src), "--backend", "onnx", "-m", "span-fast", "-s", "4",
                     "-o", str(tmp_path / "b.png")])
    assert code == 0, capsys.readouterr().err
    assert load_image(tmp_path / "b.png").array.shape == (80, 96, 3)
    code = cli.main(["export", "span", "-s", "2", "--onnx", str(tmp_path / "s.onnx")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "max abs diff" in out and (tmp_path / "s.onnx").is_file()
    code = cli.main(["export", "nope", "--onnx", str(tmp_path / "x.onnx")])
    assert code == 2

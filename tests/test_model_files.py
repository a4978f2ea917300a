"""Your own model files (.safetensors / .pth) through spandrel: recognised, described, run on
srlab's one Upscaler path (tiles, alpha, gray, 16-bit) and on ONNX, and refused in one line
when they are not what they claim (hostile pickle, truncated, unknown, wrong scale).

The files are built here with spandrel's own architecture classes at tiny sizes and random
weights (speed and correctness of the path, not image quality, are what is tested).
"""

from __future__ import annotations

import hashlib
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import needs_shared

import srlab
from srlab import cli
from srlab.image.imageio import load_image, save_image
from srlab.zoo import foreign
from srlab.zoo.foreign import ForeignModelError, load_model_file

# pytest.importorskip("spandrel") would import it without the torchvision stand-in (and fail
# where torchvision is absent, which is always beside srlab's torch): import it as srlab does
try:
    foreign.import_spandrel()
except ForeignModelError as exc:
    pytest.skip(f"model files need the spandrel extra ({exc})", allow_module_level=True)


def _nets() -> dict[str, tuple[torch.nn.Module, str, int]]:
    """name -> (network, spandrel's architecture name, scale): tiny sizes, random weights."""
    foreign.import_spandrel()  # as srlab imports it (the torchvision stand-in)
    from spandrel.architectures.Compact import Compact
    from spandrel.architectures.ESRGAN import ESRGAN
    from spandrel.architectures.SPAN import SPAN
    from spandrel.architectures.SwinIR import SwinIR

    torch.manual_seed(0)
    return {
        "span": (SPAN(num_in_ch=3, num_out_ch=3, feature_channels=8, upscale=4), "SPAN", 4),
        "compact": (Compact(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=2),
                    "RealESRGAN Compact", 2),
        "rrdb": (ESRGAN(in_nc=3, out_nc=3, num_filters=8, num_blocks=2, scale=4), "ESRGAN", 4),
        "swinir": (SwinIR(img_size=16, in_chans=3, embed_dim=12, depths=[1], num_heads=[2],
                          window_size=4, mlp_ratio=2, upscale=2,
                          upsampler="pixelshuffledirect"), "SwinIR", 2),
    }


ARCHS = ("span", "compact", "rrdb", "swinir")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, dict]:
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("model-files")
    out = {}
    for name, (net, arch, scale) in _nets().items():
        state = {k: v.contiguous() for k, v in net.state_dict().items()}
        st, pth = root / f"{scale}x-{name}.safetensors", root / f"{scale}x-{name}.pth"
        save_file(state, str(st), {"license": "CC0-1.0"} if name == "span" else None)
        torch.save(net.state_dict(), pth)
        out[name] = {"safetensors": st, "pth": pth, "arch": arch, "scale": scale,
                     "params": sum(p.numel() for p in net.parameters())}
    return out


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    """ONNX exports and measured backends go to a fresh cache, never the user's."""
    monkeypatch.setenv("SRLAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def photo(tmp_path, smooth_rgb) -> Path:
    path = tmp_path / "photo.png"
    save_image(smooth_rgb[:30, :34], path)
    return path


def run(capsys, *argv: str | Path) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_refused(code: int, err: str, *fragments: str) -> None:
    """Exit 2 and exactly one line on stderr, naming what was wrong."""
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("srlab: error: "), err
    assert "Traceback" not in err
    for frag in fragments:
        assert frag in lines[0], (frag, err)


# ------------------------------------------------------------------ recognised and described


@pytest.mark.parametrize("name", ARCHS)
@pytest.mark.parametrize("kind", ["safetensors", "pth"])
def test_descriptor(files, name, kind):
    f = files[name]
    info = load_model_file(f[kind]).info
    assert info.architecture == f["arch"]
    assert info.scale == f["scale"]
    assert info.params == f["params"]
    assert info.in_channels == 3
    assert info.sha256 == hashlib.sha256(f[kind].read_bytes()).hexdigest()
    assert info.tiling in ("supported", "discouraged")
    assert info.context >= foreign.DEFAULT_CONTEXT and info.context % info.align == 0
    assert info.align % 16 == 0 and info.align % info.window == 0


def test_licence_is_read_from_the_file(files):
    assert load_model_file(files["span"]["safetensors"]).info.license == "CC0-1.0"
    assert load_model_file(files["rrdb"]["safetensors"]).info.license is None


def test_swinir_window_is_found(files):
    assert load_model_file(files["swinir"]["pth"]).info.window == 4


def test_torchvision_stand_in_does_not_outlive_the_import():
    foreign.import_spandrel()
    import importlib.util

    if importlib.util.find_spec("torchvision") is None:
        assert "torchvision" not in sys.modules
        assert "torchvision.transforms.functional" not in sys.modules


def test_models_file_cli(capsys, files):
    code, out, err = run(capsys, "models", "--file", files["span"]["safetensors"])
    assert code == 0, err
    assert "SPAN" in out and "x4" in out and f"{files['span']['params']:,}" in out
    assert "CC0-1.0" in out
    assert hashlib.sha256(files["span"]["safetensors"].read_bytes()).hexdigest() in out


# ------------------------------------------------------------------ one path through Upscaler


@pytest.mark.parametrize("name", ARCHS)
def test_tiled_equals_untiled(files, name, rng):
    up = srlab.load_model(files[name]["safetensors"], backend="torch")
    assert up.scale == files[name]["scale"] and up.trained
    img = rng.integers(0, 256, (45, 62, 3), dtype=np.uint8)
    whole = up.upscale_array(img)
    tiled = up.upscale_array(img, tile=16)  # 16 < the image: 3 x 4 tiles, default context
    assert whole.shape == (45 * up.scale, 62 * up.scale, 3)
    assert int(np.abs(whole.astype(int) - tiled.astype(int)).max()) <= 2


def test_alpha_gray_and_16_bit(files, rng):
    up = srlab.load_model(files["compact"]["pth"], backend="torch")
    rgba = rng.integers(0, 256, (20, 24, 4), dtype=np.uint8)
    out = up.upscale_array(rgba)
    assert out.shape == (40, 48, 4) and out.dtype == np.uint8
    gray = rng.integers(0, 256, (20, 24), dtype=np.uint8)
    assert up.upscale_array(gray).shape == (40, 48)
    deep = rng.integers(0, 65536, (20, 24, 3), dtype=np.uint16)
    out16 = up.upscale_array(deep)
    assert out16.dtype == np.uint16 and out16.shape == (40, 48, 3)
    # 16-bit is the same network: its output, scaled to 8 bits, matches the 8-bit run
    out8 = up.upscale_array((deep // 257).astype(np.uint8))
    assert np.abs(out16 / 257.0 - out8).max() <= 3


def test_pil_in_pil_out(files, smooth_rgb):
    from PIL import Image

    up = srlab.load_model(str(files["span"]["pth"]), backend="torch")
    out = up(Image.fromarray(smooth_rgb))
    assert isinstance(out, Image.Image) and out.size == (36 * 4, 40 * 4)


def test_onnx_parity_and_cache_per_sha256(files, rng, cache):
    path = files["span"]["safetensors"]
    torch_up = srlab.load_model(path, backend="torch")
    onnx_up = srlab.load_model(path, backend="onnx")
    assert onnx_up.backend == "onnx"
    img = rng.integers(0, 256, (27, 31, 3), dtype=np.uint8)
    assert int(np.abs(torch_up.upscale_array(img).astype(int)
                      - onnx_up.upscale_array(img).astype(int)).max()) <= 1
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    exported = list((cache / "onnx").glob(f"file-{sha[:20]}*.onnx"))
    assert len(exported) == 1
    stamp = exported[0].stat().st_mtime_ns
    srlab.load_model(path, backend="onnx")  # a second load reuses the export
    assert exported[0].stat().st_mtime_ns == stamp


def test_swinir_onnx_pads_to_its_window(files, rng):
    """A window model's graph gets inputs padded to its window, as the network pads itself."""
    path = files["swinir"]["pth"]
    up = srlab.load_model(path, backend="onnx")
    ref = srlab.load_model(path, backend="torch")
    img = rng.integers(0, 256, (19, 23, 3), dtype=np.uint8)  # not a multiple of 4
    if up.backend == "onnx":  # else the export was refused by parity and torch runs it
        assert int(np.abs(up.upscale_array(img).astype(int)
                          - ref.upscale_array(img).astype(int)).max()) <= 1


def test_cli_upscale_tiled_untiled_and_onnx(capsys, tmp_path, files, photo):
    """The issue's bar: a random-weight SPAN file upscales through ``srlab upscale -m FILE``
    with tiled == untiled and on onnx; its sha256 is printed once."""
    f = files["span"]["safetensors"]
    outs = {}
    for tag, extra in (("whole", []), ("tiled", ["--tile", "16"]),
                       ("onnx", ["--backend", "onnx"])):
        outs[tag] = tmp_path / f"{tag}.png"
        code, _, err = run(capsys, "upscale", photo, "-m", f, "-o", outs[tag], *extra)
        assert code == 0, err
        assert err.count(hashlib.sha256(f.read_bytes()).hexdigest()) == 1
    whole, tiled, onnx = (load_image(outs[k]).array.astype(int) for k in
                          ("whole", "tiled", "onnx"))
    assert whole.shape == (120, 136, 3)
    assert np.abs(whole - tiled).max() <= 2
    assert np.abs(whole - onnx).max() <= 1


def test_batch_over_a_folder(capsys, tmp_path, files, smooth_rgb):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(2):
        save_image(smooth_rgb[: 16 + i, :20], folder / f"{i}.png")
    code, _, err = run(capsys, "upscale", folder, "-m", files["compact"]["pth"], "-o",
                       tmp_path / "out", "--backend", "torch", "-q")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["0.png", "1.png"]
    assert load_image(tmp_path / "out" / "1.png").array.shape == (34, 40, 3)


# ------------------------------------------------------------------ refused in one line


class _Payload:
    """Unpickling this would create ``marker`` (a harmless stand-in for running code)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


@pytest.mark.parametrize("how", ["torch.save", "pickle"])
def test_hostile_pickle_is_refused_before_it_runs(capsys, tmp_path, photo, how):
    marker = tmp_path / "payload-ran"
    evil = tmp_path / "4x-evil.pth"
    payload = {"conv.weight": torch.zeros(1), "x": _Payload(marker)}
    if how == "torch.save":
        torch.save(payload, evil)
    else:
        evil.write_bytes(pickle.dumps(payload))
    code, _, err = run(capsys, "upscale", photo, "-m", evil, "-o", tmp_path / "o.png")
    assert_refused(code, err, "4x-evil.pth", "refused")
    assert not marker.exists()
    with pytest.raises(ForeignModelError):
        srlab.load_model(evil)
    assert not marker.exists()
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("kind", ["safetensors", "pth"])
def test_truncated_file(capsys, tmp_path, files, photo, kind):
    src = files["rrdb"][kind]
    cut = tmp_path / f"cut.{kind}"
    cut.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    code, _, err = run(capsys, "upscale", photo, "-m", cut, "-o", tmp_path / "o.png")
    assert_refused(code, err, cut.name, "truncated")


def test_not_a_model(capsys, tmp_path, photo):
    fake = tmp_path / "photo.pth"
    fake.write_bytes(photo.read_bytes())
    code, _, err = run(capsys, "upscale", photo, "-m", fake, "-o", tmp_path / "o.png")
    assert_refused(code, err, "photo.pth")


def test_unknown_architecture_names_the_nearest(capsys, tmp_path, photo, files):
    from safetensors.torch import save_file

    from srlab.zoo.foreign import supported_architectures

    state = {k: v for k, v in torch.load(files["span"]["pth"]).items()
             if not k.startswith("conv_1.")}  # SPAN without its first conv
    odd = tmp_path / "odd.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(odd))
    code, _, err = run(capsys, "upscale", photo, "-m", odd, "-o", tmp_path / "o.png")
    assert_refused(code, err, "odd.safetensors", "unknown architecture", "nearest supported")
    near = err.split("nearest supported: ")[1].split(";")[0].split(", ")
    assert "SPAN" in near and set(near) <= set(supported_architectures())


def test_wrong_scale(capsys, tmp_path, files, photo):
    code, _, err = run(capsys, "upscale", photo, "-m", files["span"]["pth"], "-s", "2",
                       "-o", tmp_path / "o.png")
    assert_refused(code, err, "x4", "not x2")


@pytest.mark.parametrize("suffix", [".pt", ".onnx", ".ckpt"])
def test_other_formats_are_refused(capsys, tmp_path, photo, suffix):
    other = tmp_path / f"model{suffix}"
    other.write_bytes(b"\0" * 64)
    code, _, err = run(capsys, "upscale", photo, "-m", other, "-o", tmp_path / "o.png")
    assert_refused(code, err, other.name, ".safetensors and .pth")


def test_size_cap(files):
    with pytest.raises(ForeignModelError, match="limit"):
        load_model_file(files["span"]["pth"], max_bytes=1000)


def test_a_registered_name_is_not_shadowed_by_a_file(tmp_path, monkeypatch):
    (tmp_path / "span").write_bytes(b"not a model")
    monkeypatch.chdir(tmp_path)
    assert not foreign.looks_like_file("span")
    assert foreign.looks_like_file("4x-foo.pth") and foreign.looks_like_file("models/foo")


# ------------------------------------------------------------------ served and benched


def test_registered_file_is_offered_by_name(files):
    from srlab.zoo import catalog

    f = files["compact"]["safetensors"]
    try:
        info = foreign.register_file(f)
        assert catalog.resolve(f.name, 2) == f.name
        with pytest.raises(ValueError, match="x2"):
            catalog.resolve(f.name, 4)
        assert f.name in [n for _, n in catalog.ui_models()]
        assert catalog.default_choice() == (f.name, 2)
        assert info.sha256 in catalog.model_card(f.name, 2)
        up = srlab.load_model(f.name, 2, backend="torch")  # by name, wherever the cwd is
        assert up.upscale_array(np.zeros((8, 8, 3), np.uint8)).shape == (16, 16, 3)
    finally:
        foreign.unregister_all()
    assert f.name not in [n for _, n in catalog.ui_models()]


def test_bench_file_beside_span(capsys, tmp_path, files):
    f = files["span"]["safetensors"]
    code, out, err = run(capsys, "bench", "--file", f, "--backend", "torch", "--repeats", "1",
                         "--size", "16x12", "-o", tmp_path / "bench")
    assert code == 0, err
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    assert any(r.startswith(f"| {f.name} | torch |") for r in rows), out
    assert any(r.startswith("| span | torch |") for r in rows), out


def test_auto_takes_the_stored_choice(files):
    from srlab.runtime.backends import Measurement, load_store, record_measurements, save_store
    from srlab.runtime.cpu import cpu_model
    from srlab.runtime.foreign import file_key, file_store_path, stored_backend

    info = load_model_file(files["span"]["pth"]).info
    assert stored_backend(info) == "torch"  # nothing measured: torch
    store = load_store(file_store_path())
    record_measurements(store, cpu_model(), file_key(info), 4, {
        "torch": Measurement(1.0, {"parity": 0.0}), "onnx": Measurement(2.0, {"parity": 0.0})})
    save_store(store, file_store_path())
    assert stored_backend(info) == "onnx"
    assert srlab.load_model(files["span"]["pth"]).backend == "onnx"


def test_served_file_through_the_http_api(files, smooth_rgb):
    """``srlab serve --model-file F``: the API lists F by its file name and upscales with it
    (the demo's dropdown reads the same catalogue: ``test_registered_file_is_offered...``)."""
    pytest.importorskip("gradio", reason="the web extra is not installed")
    httpx = pytest.importorskip("httpx")
    import io

    from _web_server import running_server
    from PIL import Image

    f = files["compact"]["pth"]
    buf = io.BytesIO()
    Image.fromarray(smooth_rgb[:12, :14]).save(buf, format="PNG")
    try:
        foreign.register_file(f)
        with running_server() as url, httpx.Client(base_url=url, timeout=120) as client:
            listed = {m["name"]: m for m in client.get("/api/models").json()}
            assert listed[f.name]["scales"] == [2] and listed[f.name]["trained"]
            r = client.post("/api/upscale", params={"model": f.name, "scale": 2},
                            files={"file": ("in.png", buf.getvalue(), "image/png")})
            assert r.status_code == 200, r.text
            assert r.headers["X-Srlab-Chosen"] == f.name
            assert Image.open(io.BytesIO(r.content)).size == (28, 24)
            # a larger factor runs the file's x2 and resizes, as for a zoo model, and says so
            big = client.post("/api/upscale", params={"model": f.name, "scale": 4},
                              files={"file": ("in.png", buf.getvalue(), "image/png")})
            assert big.status_code == 200, big.text
            assert Image.open(io.BytesIO(big.content)).size == (56, 48)
            assert "x2" in big.headers["X-Srlab-Ran"] and "4x" in big.headers["X-Srlab-Ran"]
    finally:
        foreign.unregister_all()


def test_a_failed_export_runs_on_torch_said_once_and_cached(files, monkeypatch, cache):
    """An architecture whose export fails the parity check runs on torch; the reason is
    cached under the file's sha256, so the next load does not export again."""
    from srlab.runtime import foreign as rf
    from srlab.runtime import onnx as ro

    calls = []

    def failing_parity(*_a, **_k):
        calls.append(1)
        raise ro.OnnxError("ONNX parity check failed: max abs diff 0.5 > 0.001")

    monkeypatch.setattr(ro, "check_parity", failing_parity)
    said: list[str] = []
    up = rf.load_file_model(files["compact"]["safetensors"], backend="onnx", log=said.append)
    assert up.backend == "torch" and calls == [1]
    assert sum("parity" in line and "running on torch" in line for line in said) == 1
    assert len(list((cache / "onnx").glob("*.failed"))) == 1
    said.clear()
    up = rf.load_file_model(files["compact"]["safetensors"], backend="onnx", log=said.append)
    assert up.backend == "torch" and calls == [1]  # not exported again
    assert any("running on torch" in line for line in said)
    with pytest.raises(ro.OnnxError):  # srlab bench asks for no fallback: the row is skipped
        rf.load_file_model(files["compact"]["safetensors"], backend="onnx", fallback=False)


@needs_shared("datasets/benchmark/Urban100")
def test_bench_file_store_keeps_the_choice_for_auto(capsys, tmp_path, files):
    """``srlab bench --file F --store`` stores F's Mpx/s and PSNR cost per backend under its
    sha256 in the user cache (never in the package's backends.json); auto then runs on it."""
    from srlab.runtime.backends import STORE_PATH
    from srlab.runtime.foreign import file_store_path, stored_backend

    f = files["compact"]["safetensors"]
    shipped = STORE_PATH.read_bytes()
    code, _, err = run(capsys, "bench", "--file", f, "--backend", "torch", "--backend", "onnx",
                       "--repeats", "1", "--size", "16x12", "--store", "--store-images", "1",
                       "-o", tmp_path / "bench")
    assert code == 0, err
    assert STORE_PATH.read_bytes() == shipped
    assert file_store_path().is_file()
    info = load_model_file(f).info
    from srlab.runtime.backends import load_store
    from srlab.runtime.cpu import cpu_model
    from srlab.runtime.foreign import file_key

    measured = load_store(file_store_path())[cpu_model()][file_key(info)]["2"]
    assert set(measured) == {"torch", "onnx"}
    assert set(measured["onnx"].psnr_delta) == {"Set5", "Urban100"}
    assert abs(measured["onnx"].psnr_delta["Set5"]) < 0.01  # parity-checked: same numbers
    assert srlab.load_model(f).backend == stored_backend(info)

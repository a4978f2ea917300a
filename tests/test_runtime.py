"""runtime: the CPU probe's flag parsing and bf16 decision, the measured-backend store and
auto's choice, and the int8 backend on a tiny model (no timing asserted anywhere)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from srlab.runtime import backends as be
from srlab.runtime import cpu
from srlab.runtime import measured as ms
from srlab.runtime.backends import Measurement

CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9R14
flags\t\t: fpu sse avx2 avx512f avx512_bf16 avx512_vnni
processor\t: 1
model name\t: AMD EPYC 9R14
flags\t\t: fpu
"""


def test_cpuinfo_flags_are_read_from_the_first_processor():
    info = cpu.parse_cpuinfo(CPUINFO)
    assert info.model == "AMD EPYC 9R14"
    assert info.bf16_flags == ("avx512_bf16",) and info.vnni_flags == ("avx512_vnni",)
    assert info.describe() == "AMD EPYC 9R14: bf16 avx512_bf16, int8 avx512_vnni"
    bare = cpu.parse_cpuinfo("garbage\n")
    assert bare.flags == frozenset() and bare.describe() == "unknown CPU: bf16 none, int8 none"
    amx = cpu.parse_cpuinfo("model name: X\nflags: amx_bf16 amx_int8 avx_vnni\n")
    assert amx.bf16_flags == ("amx_bf16",) and amx.vnni_flags == ("avx_vnni", "amx_int8")


def test_measurements_are_keyed_by_the_model_name_and_the_widest_instructions(monkeypatch):
    # one cloud name covers AVX2 and AVX512-BF16 machines: their stored picks must not mix
    zen4 = cpu.parse_cpuinfo(CPUINFO)
    zen2 = cpu.parse_cpuinfo("model name: AMD EPYC 9R14\nflags: fpu sse avx avx2\n")
    assert (zen4.isa, zen2.isa, cpu.parse_cpuinfo("x\n").isa) == \
        ("avx512_bf16", "avx2", "baseline")
    monkeypatch.setattr(cpu, "cpu_info", lambda: zen2)
    assert cpu.cpu_model() == "AMD EPYC 9R14 [avx2]"
    store = {"AMD EPYC 9R14 [avx512_bf16]": {"span": {"4": {
        "torch-bf16": Measurement(9.0, {}), "torch": Measurement(1.0, {})}}}}
    assert be.pick_backend("span", 4, store=store, available=lambda: ["torch", "torch-bf16"]) \
        == "torch"  # nothing measured on this kind of CPU


@pytest.mark.parametrize("flags, fp32, bf16, native", [
    (("avx512_bf16",), 1.0, 0.5, True),  # listed and measured faster
    (("avx512_bf16",), 1.0, 0.95, False),  # listed, but not faster by the margin
    (("avx512_bf16",), 1.0, 14.7, False),  # listed and emulated (this project's EPYC)
    ((), 1.0, 0.5, False),  # fast but not listed: never trusted
    (("amx_bf16",), None, None, False),  # listed, but bf16 did not run
])
def test_bf16_is_native_only_when_listed_and_measured_faster(flags, fp32, bf16, native):
    assert cpu.bf16_verdict(flags, fp32, bf16) is native
    probe = cpu.Bf16Probe(flags, fp32, bf16, native)
    assert probe.describe().startswith("yes" if native else "no")


def test_native_bf16_follows_the_probe(monkeypatch):
    monkeypatch.setattr(cpu, "probe_bf16", lambda: cpu.Bf16Probe(("avx512_bf16",), 1.0, 3.0,
                                                                  False))
    assert cpu.native_bf16() is False
    monkeypatch.setattr(cpu, "probe_bf16", lambda: cpu.Bf16Probe(("amx_bf16",), 1.0, 0.3, True))
    assert cpu.native_bf16() is True


def _m(mpx: float, **delta: float) -> Measurement:
    return Measurement(mpx, delta)


def test_auto_picks_the_fastest_backend_within_the_accuracy_bound():
    measured = {"torch": _m(1.0, Set5=0.0), "onnx": _m(1.4, Set5=0.0, Urban100=-0.001),
                "onnx-int8": _m(3.0, Set5=-0.14, Urban100=-0.05),  # fast but too lossy
                "torch-bf16": _m(0.2, Set5=-0.001)}
    allowed = list(measured)
    assert be.choose(measured, allowed=allowed) == "onnx"
    assert be.choose(measured, allowed=allowed, bound=0.2) == "onnx-int8"
    assert be.choose(measured, allowed=["torch", "onnx-int8"]) == "torch"  # onnx missing
    no_accuracy = {"torch": _m(1.0), "onnx-int8": _m(3.0)}  # speed alone never qualifies
    assert be.choose(no_accuracy, allowed=list(no_accuracy)) == "torch"


def test_store_round_trips_and_pick_falls_back_to_torch(tmp_path):
    path = tmp_path / "backends.json"
    store = be.record_measurements({}, "CPU A", "span", 4,
                                   {"torch": _m(1.0, Set5=0.0), "onnx": _m(2.0, Set5=0.0)})
    be.save_store(store, path, command="srlab bench --store")
    loaded = be.load_store(path)
    assert loaded == store
    assert json.loads(path.read_text())["commands"] == {"CPU A": {"span": "srlab bench --store"}}
    everything = lambda: ["torch", "onnx", "onnx-int8", "torch-bf16"]  # noqa: E731
    assert be.pick_backend("span", 4, store=loaded, cpu="CPU A", available=everything) == "onnx"
    # unmeasured model, scale or CPU: torch, whatever is installed
    assert be.pick_backend("span", 2, store=loaded, cpu="CPU A", available=everything) == "torch"
    assert be.pick_backend("span", 4, store=loaded, cpu="CPU B", available=everything) == "torch"
    assert be.pick_backend("span", 4, store=loaded, cpu="CPU A",
                           available=lambda: ["torch"]) == "torch"
    assert be.load_store(tmp_path / "missing.json") == {}


def test_each_entry_keeps_the_command_that_measured_it(tmp_path):
    """Measuring another model or CPU must not lose the first one's provenance. A file from
    before commands were kept per entry had one command for everything, the last run's:
    it is not spread over entries other runs made."""
    path = tmp_path / "backends.json"
    torch_a = {"torch": {"mpx_per_s": 1.0, "psnr_delta": {"Set5": 0.0}}}
    path.write_text(json.dumps({"command": "bench on A",  # the old format: one command
                                "cpus": {"CPU A": {"span": {"4": torch_a}}}}))
    store = be.record_measurements(be.load_store(path), "CPU B", "span", 4,
                                   {"torch": _m(2.0, Set5=0.0)})
    be.save_store(store, path, command="bench span on B", cpu="CPU B", models=["span"])
    store = be.record_measurements(store, "CPU B", "span-fast", 2, {"torch": _m(3.0, Set5=0.0)})
    be.save_store(store, path, command="bench span-fast on B", cpu="CPU B",
                  models=["span-fast"])
    assert json.loads(path.read_text())["commands"] == {
        "CPU B": {"span": "bench span on B", "span-fast": "bench span-fast on B"}}
    assert be.load_store(path) == store


def test_custom_weights_only_get_exact_backends():
    store = be.record_measurements({}, "C", "span", 4, {"torch": _m(1.0, Set5=0.0),
                                                        "torch-bf16": _m(9.0, Set5=-0.001)})
    every = lambda: ["torch", "onnx", "onnx-int8", "torch-bf16"]  # noqa: E731
    assert be.pick_backend("span", 4, store=store, cpu="C", available=every) == "torch-bf16"
    assert be.pick_backend("span", 4, exact=True, store=store, cpu="C", available=every) \
        == "torch"


def test_shipped_store_is_readable():
    store = be.load_store()  # the file bench --store wrote, or empty: never an error
    for models in store.values():
        for scales in models.values():
            for measured in scales.values():
                assert "torch" in measured and all(m.mpx_per_s > 0 for m in measured.values())


def test_int8_backend_on_a_tiny_model(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    import torch

    from srlab.api import load_model
    from srlab.runtime.int8 import load_int8_model
    from srlab.zoo.registry import build_model
    from srlab.zoo.weights import WeightsMeta, save_weights

    monkeypatch.setenv("SRLAB_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    wpath = tmp_path / "w.safetensors"
    save_weights(build_model("span-fast", 2).eval(), WeightsMeta(arch="span-fast", scale=2,
                                                                 trained=True), wpath)
    rng = np.random.default_rng(0)
    patches = [rng.random((1, 1, 16, 16), dtype=np.float32) for _ in range(4)]
    up = load_int8_model("span-fast", 2, weights=wpath, patches=patches)
    assert up.backend == "onnx-int8" and up.trained
    assert list((tmp_path / "cache" / "onnx").glob("span-fast_x2_*_int8_*.onnx"))
    img = (rng.random((12, 10, 3)) * 255).astype(np.uint8)
    out = up.upscale_array(img)
    ref = load_model("span-fast", 2, weights=wpath).upscale_array(img)
    assert out.shape == ref.shape == (24, 20, 3)
    assert np.abs(out.astype(int) - ref.astype(int)).mean() < 8  # int8 noise, not garbage


def test_calibration_patches_come_from_training_images(tmp_path):
    from PIL import Image

    from srlab.runtime.int8 import Int8Recipe, calibration_patches

    folder = tmp_path / "T91"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(3):
        Image.fromarray((rng.random((40, 48, 3)) * 255).astype(np.uint8)).save(
            folder / f"{i}.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "small.png")  # skipped
    recipe = Int8Recipe(folders=("T91",), patches=3, patch=8)
    got = calibration_patches(2, 1, recipe, root=tmp_path)
    again = calibration_patches(2, 1, recipe, root=tmp_path)
    assert len(got) == 3 and all(p.shape == (1, 1, 8, 8) for p in got)
    assert all(np.array_equal(a, b) for a, b in zip(got, again, strict=True))  # seeded
    assert all(0 <= p.min() and p.max() <= 1 for p in got)
    from srlab.runtime.onnx import OnnxError

    with pytest.raises(OnnxError, match="training images"):
        calibration_patches(2, 1, recipe, root=tmp_path / "none")


def test_bf16_needs_inference_and_training_to_be_faster(monkeypatch):
    """This project's EPYC: bf16 inference measured faster, its backward pass slower."""
    times = {False: (1.0, 0.55), True: (1.0, 1.2)}  # train? -> (fp32 s, bf16 s), injected
    monkeypatch.setattr(cpu, "_time_conv", lambda *a, train=False, **k: times[train])
    monkeypatch.setattr(cpu, "cpu_info", lambda: cpu.parse_cpuinfo(CPUINFO))
    cpu.probe_bf16.cache_clear()
    try:
        probe = cpu.probe_bf16()
        assert not probe.native and "training 0.83x" in probe.describe()
        times[True] = (1.0, 0.6)
        cpu.probe_bf16.cache_clear()
        assert cpu.probe_bf16().native
    finally:
        cpu.probe_bf16.cache_clear()


def _store_for_here(backend: str) -> be.Store:
    """A store in which ``backend`` is the fastest within the bound for span-fast x2 here."""
    measured = {"torch": _m(1.0, Set5=0.0), backend: _m(5.0, Set5=-0.001)}
    return be.record_measurements({}, cpu.cpu_model(), "span-fast", 2, measured)


def test_load_model_runs_on_the_backend_auto_picks(monkeypatch):
    from srlab.api import load_model

    # the store pick_backend reads (runtime.measured; backends re-exports it)
    monkeypatch.setattr(ms, "load_store", lambda path=None: _store_for_here("torch-bf16"))
    assert load_model("span-fast", 2).backend == "torch-bf16"  # the default is auto
    assert load_model("span-fast", 2, backend="torch").backend == "torch"
    assert load_model("span-fast", 2, fuse=False).backend == "torch"  # unfused = as trained
    assert load_model("span-fast", 4).backend == "torch"  # nothing measured at x4
    auto = load_model("auto", 2)
    assert auto.pick(np.zeros((16, 16, 3), np.uint8)).backend in ("torch", "torch-bf16")


def test_bf16_backend_stays_close_to_float32_and_ensembles_keep_the_contract():
    from srlab.api import load_model

    img = (np.random.default_rng(0).random((20, 24, 3)) * 255).astype(np.uint8)
    fp32 = load_model("span-fast", 2, backend="torch")
    bf16 = load_model("span-fast", 2, backend="torch-bf16")
    assert bf16.backend == "torch-bf16" and bf16.params == fp32.params
    assert np.abs(bf16(img).astype(int) - fp32(img)).max() <= 8
    ens = bf16.self_ensembled()
    assert (ens.backend, ens.in_channels, ens.receptive_field) == \
        ("torch-bf16", fp32.in_channels, fp32.receptive_field)


def test_export_refuses_a_model_not_on_torch_float32(tmp_path):
    pytest.importorskip("onnx")
    from srlab.api import load_model
    from srlab.runtime.onnx import OnnxError, export_upscaler

    with pytest.raises(OnnxError, match="torch float32"):
        export_upscaler(load_model("span-fast", 2, backend="torch-bf16"), tmp_path / "m.onnx")


def test_openvino_backend_runs_the_exported_network_close_to_torch():
    pytest.importorskip("openvino")
    pytest.importorskip("onnxruntime")
    from srlab.api import load_model

    img = (np.random.default_rng(1).random((21, 17, 3)) * 255).astype(np.uint8)
    fp32 = load_model("span-fast", 2, backend="torch")
    ov = load_model("span-fast", 2, backend="openvino")
    assert ov.backend == "openvino" and ov.params == fp32.params and ov.trained
    a, b = ov(img), fp32(img)
    assert a.shape == b.shape == (42, 34, 3)
    assert np.abs(a.astype(int) - b).max() <= 8  # bfloat16 on CPUs that have it
    np.testing.assert_array_equal(ov.upscale_array(img, tile=8), a)  # one shared tiling
    assert ov.upscale_array(img[..., 0]).shape == (42, 34)  # gray, different input shape


def test_auto_only_offers_installed_backends(monkeypatch):
    import srlab.runtime.ncnn as ncnn_mod
    import srlab.runtime.onnx as onnx_mod
    import srlab.runtime.openvino as ov_mod

    monkeypatch.setattr(onnx_mod, "onnx_available", lambda **_: False)
    monkeypatch.setattr(ov_mod, "openvino_available", lambda **_: False)
    monkeypatch.setattr(ncnn_mod, "ncnn_available", lambda: False)
    assert be.available_backends() == ["torch", "torch-bf16"]
    assert be.available_backends(imports=False) == ["torch", "torch-bf16"]
    assert "openvino" in be.BACKENDS and "auto" in be.BACKENDS


def test_the_web_card_finds_runtimes_without_importing_them(monkeypatch):
    """One list of installed backends for auto and the card; the card's asks without imports
    (OpenVINO takes seconds to import on page load), and a runtime not found is not
    offered."""
    import importlib.util
    import subprocess
    import sys

    probe = ("import sys; from srlab.runtime.measured import available_backends as a; "
             "print(a(imports=False)); print(sorted(m for m in ('onnxruntime', 'openvino') "
             "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out[0] == str(be.available_backends()) and out[1] == "[]", out
    real_find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "openvino" else real_find(name, *a))
    assert "openvino" not in be.available_backends(imports=False)


def test_span_keeps_its_most_sensitive_convs_float_in_int8():
    from srlab.runtime.int8 import INT8_RECIPE, recipe_for

    assert recipe_for("span").keep_convs and recipe_for("span").key() != INT8_RECIPE.key()
    assert recipe_for("span-real") == recipe_for("span")  # one network, two weight sets
    assert recipe_for("espcn") is INT8_RECIPE


def test_auto_falls_back_when_its_pick_cannot_be_built(monkeypatch):
    from srlab.api import load_model
    from srlab.runtime import int8
    from srlab.runtime.onnx import OnnxError

    measured = {"torch": _m(1.0, Set5=0.0), "onnx-int8": _m(9.0, Set5=-0.001),
                "torch-bf16": _m(5.0, Set5=-0.001)}
    store = be.record_measurements({}, cpu.cpu_model(), "span-fast", 2, measured)
    monkeypatch.setattr(ms, "load_store", lambda path=None: store)
    monkeypatch.setattr(be, "available_backends",
                        lambda: ["torch", "torch-bf16", "onnx", "onnx-int8"])

    def no_calibration(*a, **k):
        raise OnnxError("int8 calibration needs the training images")

    monkeypatch.setattr(int8, "load_int8_model", no_calibration)
    assert load_model("span-fast", 2).backend == "torch-bf16"  # the next fastest, no error


def test_what_moved_below_api_and_backends_is_still_exported_there():
    """Upscaler and the tile policy live in runtime.upscaler, the torch loading in
    runtime.torch_model, the measured store in runtime.measured (no import circles): the
    public homes re-export the very same objects."""
    import srlab
    from srlab import api
    from srlab.runtime import upscaler
    from srlab.runtime.torch_model import load_torch_model

    assert api.__all__ == ["Upscaler", "AutoUpscaler", "load_model", "upscale", "TilePolicy",
                           "TILE_POLICY"]
    assert (api.Upscaler, api.TilePolicy, api.TILE_POLICY) == \
        (upscaler.Upscaler, upscaler.TilePolicy, upscaler.TILE_POLICY)
    assert srlab.load_model is api.load_model
    assert all(getattr(be, n) is getattr(ms, n) for n in ms.__all__)
    up, ref = load_torch_model("span-fast", 2), api.load_model("span-fast", 2, backend="torch")
    assert type(up) is type(ref) is upscaler.Upscaler
    assert (up.name, up.scale, up.params, up.trained) == (ref.name, ref.scale, ref.params,
                                                          ref.trained)

"""The speed benchmark (structure only: no timing assertions), the fast inference path's
equivalences, and streaming tiles without full-size float arrays."""

from __future__ import annotations

import json
import tracemalloc
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from srlab import cli
from srlab.api import load_model
from srlab.eval import speed
from srlab.image import tiling
from srlab.image.color import rgb_to_ycbcr, ycbcr_to_rgb
from srlab.image.resize import upscale_bicubic as _bicubic

# ------------------------------------------------------------------ fast path == textbook path


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_conv_bicubic_equals_torch_bicubic(scale):
    x = torch.rand(2, 3, 13, 9)
    ref = F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)
    torch.testing.assert_close(_bicubic(x, scale), ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("scale", [2, 4])
def test_luma_path_equals_ycbcr_recipe(scale):
    """g * net(Y) + bicubic(RGB - g * Y) == ycbcr_to_rgb(cat(net(Y), bicubic(CbCr)))."""
    up = load_model("span-fast", scale)
    x = torch.rand(1, 3, 15, 11)
    with torch.no_grad():
        ycc = rgb_to_ycbcr(x)
        chroma = F.interpolate(ycc[:, 1:], scale_factor=scale, mode="bicubic",
                               align_corners=False)
        ref = ycbcr_to_rgb(torch.cat([up.net(ycc[:, :1]), chroma], 1)).clamp(0, 1)
        torch.testing.assert_close(up._forward(x), ref, atol=1e-5, rtol=0)


# ------------------------------------------------------------------ streaming tiles


def test_tiled_path_never_makes_a_full_size_float_array(monkeypatch):
    """numpy allocations are visible to tracemalloc, torch's are not: so also spy on every
    tensor the tiles produce. A full-size float output would be 1.5 MB; the untiled run is
    the positive control that the measurement would see one."""
    up = load_model("span-fast", 2)
    img = speed.procedural_image(192, 160)
    full_float = 192 * 2 * 160 * 2 * 3 * 4
    largest = []
    real_from_float = tiling.from_float

    def spy(t, dtype):
        largest.append(t.numel())
        return real_from_float(t, dtype)

    monkeypatch.setattr(tiling, "from_float", spy)
    up.upscale_array(img[:40, :40], tile=16)  # warm-up: first-call allocations
    tracemalloc.start()
    try:
        tiled = up.upscale_array(img, tile=32)
        _, peak_tiled = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        whole = up.upscale_array(img, tile=0)
        _, peak_whole = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert np.abs(tiled.astype(int) - whole).max() <= 1  # float rounding at .5 only
    tile_out = (32 + 2 * up.receptive_field) ** 2 * 4 * 3
    assert max(largest[:-1]) <= tile_out < full_float / 4  # the last call is the untiled one
    assert largest[-1] * 4 >= full_float
    out_bytes = tiled.nbytes
    assert peak_tiled < out_bytes + full_float / 4, (peak_tiled, full_float)
    assert peak_whole > full_float, (peak_whole, full_float)


def test_procedural_image_and_huge_run_in_a_subprocess():
    img = speed.procedural_image(70, 90, block=16)
    assert img.shape == (70, 90, 3) and img.dtype == np.uint8 and img.std() > 10
    res = speed.huge_run("bicubic", scale=2, size=(90, 70), tile=32, timeout=120)
    assert res["out_shape"] == [140, 180, 3]
    assert 0 < res["peak_rss_gib"] < 2.5
    assert res["output_gib"] == pytest.approx(140 * 180 * 3 / 2**30)


# ------------------------------------------------------------------ the benchmark


def test_run_speed_end_to_end_on_tiny_inputs(tmp_path, monkeypatch):
    monkeypatch.setenv("SRLAB_CACHE", str(tmp_path / "cache"))
    lines = []
    backends = ["torch", "onnx"] if speed_onnx() else ["torch"]
    rows = speed.run_speed(["span-fast"], [2, 4], backends=backends, lr_size=(16, 12),
                           repeats=1, thread_counts=(1, 2), log=lines.append)
    sections = {r.section for r in rows}
    assert sections == {"main", "sizes", "threads"}
    main = [r for r in rows if r.section == "main"]
    assert {(r.model, r.scale) for r in main} >= {("span-fast", 2), ("span-fast", 4),
                                                   ("bicubic-pil", 4)}
    assert {r.backend for r in main if r.model == "span-fast"} == set(backends)
    assert all(r.mpx_per_s > 0 and r.repeats == 1 for r in rows)
    if any(r.model == speed.REFERENCE for r in main):
        assert all(r.ratio_to_espcn is not None for r in main)
    assert {r.threads for r in rows if r.section == "threads"} == {1, 2}
    md = speed.write_speed(rows, tmp_path / "bench", command="srlab bench --test")
    data = json.loads((tmp_path / "bench" / "speed.json").read_text())
    assert data["command"] == "srlab bench --test" and len(data["rows"]) == len(rows)
    assert set(data["suggested_backends"]) == {"span-fast"}
    text = md.read_text()
    assert "| model | backend | params (x4) | x2 Mpx/s | x2 vs ESPCN | x4 Mpx/s |" in text
    assert "Time vs input size" in text and "Threads" in text
    assert "Made by `srlab bench --test`" in text
    assert ("native bfloat16 yes" in text) == speed.native_bf16()
    assert data["machine"]["native_bf16"] == speed.native_bf16()


def speed_onnx() -> bool:
    from srlab.runtime.onnx import onnx_available

    return onnx_available()


def test_cli_bench_writes_the_readme_section(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SRLAB_CACHE", str(tmp_path / "cache"))
    readme = tmp_path / "README.md"
    readme.write_text("# x\n<!-- srlab:performance -->\nold\n<!-- /srlab:performance -->\nend\n")
    code = cli.main(["bench", "-m", "span-fast", "-s", "2", "--backend", "torch", "--size",
                     "16x12", "--repeats", "1", "--no-sizes", "--no-threads", "-o",
                     str(tmp_path / "out"), "--readme", str(readme)])
    out, err = capsys.readouterr()
    assert code == 0, err
    text = readme.read_text()
    assert "old" not in text and text.endswith("<!-- /srlab:performance -->\nend\n")
    assert "| span-fast" in text and "Made by `srlab " in text
    assert (tmp_path / "out" / "speed.md").is_file()
    assert cli.main(["bench", "-m", "nope"]) == 2


def test_from_float_maps_nan_to_black_without_warning():
    t = torch.tensor([[[[float("nan"), 0.5], [2.0, -1.0]]]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = tiling.from_float(t, np.dtype(np.uint8))
    assert out[..., 0].tolist() == [[0, 128], [255, 0]]


@pytest.mark.parametrize("native, backends, says", [
    (True, ["torch"], "native bfloat16 yes,"),
    (False, ["torch"], "native bfloat16 no (no torch-bf16 rows),"),
    (False, ["torch", "torch-bf16"], "native bfloat16 no (torch-bf16 rows are emulated),"),
])
def test_speed_footer_says_whether_bfloat16_was_native(monkeypatch, native, backends, says):
    """The footer, not README prose, says why a table has or lacks torch-bf16 rows."""
    from types import SimpleNamespace

    monkeypatch.setattr(speed, "native_bf16", lambda: native)
    rows = [SimpleNamespace(section="other", backend=b) for b in backends]
    assert says in speed.speed_markdown(rows)


def test_cli_bench_store_and_pareto(tmp_path, capsys, monkeypatch):
    """--store writes Mpx/s and PSNR cost per backend for auto; --pareto draws the chart."""
    from srlab.image.datasets import shared_dir
    from srlab.runtime.backends import load_store
    from srlab.runtime.cpu import cpu_model

    if not (shared_dir() / "datasets" / "benchmark" / "Urban100").is_dir():
        pytest.skip(f"benchmark sets not found under {shared_dir()} (set SRLAB_SHARED)")
    monkeypatch.setenv("SRLAB_CACHE", str(tmp_path / "cache"))
    store, png = tmp_path / "backends.json", tmp_path / "pareto.png"
    code = cli.main(["bench", "-m", "bicubic", "-s", "4", "--backend", "torch", "--size",
                     "16x12", "--repeats", "1", "--no-sizes", "--no-threads", "-o",
                     str(tmp_path / "out"), "--store", str(store), "--store-images", "1",
                     "--pareto", str(png)])
    _, err = capsys.readouterr()
    assert code == 0, err
    measured = load_store(store)[cpu_model()]["bicubic"]["4"]
    assert set(measured) == {"torch"} and measured["torch"].psnr_delta == {
        "Set5": 0.0, "Urban100": 0.0}
    assert png.is_file() and png.stat().st_size > 1000
    assert "CPU " in err and "native bfloat16" in err and "auto would pick (x4)" in err


def test_peak_lines_follow_the_flags():
    from srlab.eval.pareto import conv_flops_per_output_px, cpu_peaks

    vnni = cpu_peaks("model name: X\ncpu MHz: 2500.0\nflags: avx512f avx512_bf16 avx512_vnni\n",
                     cores=2)
    assert (vnni.fp32, vnni.bf16, vnni.int8) == (160.0, 320.0, 640.0)
    avx2 = cpu_peaks("model name: Y\ncpu MHz: 2000\nflags: avx2 fma\n", cores=1)
    assert (avx2.fp32, avx2.bf16, avx2.int8) == (32.0, None, None)
    # span-fast x4: conv multiply-adds per output pixel, in FLOPs (inference form)
    assert 1000 < conv_flops_per_output_px("span-fast", 4) < 5000

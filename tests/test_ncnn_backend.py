"""The ncnn backend: srlab's networks written as ncnn graphs give torch's numbers, through the
one Upscaler (tiling, colour, alpha), and anything it cannot run fails cleanly."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from conftest import registry_cases

from srlab.runtime import backends as be
from srlab.runtime.upscaler import Upscaler
from srlab.zoo.registry import build_model
from srlab.zoo.span import FAST, QUALITY, SPAN

pytest.importorskip("ncnn")

from srlab.runtime.ncnn import (  # noqa: E402 - after the skip: the module needs ncnn to run
    WRITERS,
    NcnnError,
    NcnnGraph,
    graph_for,
    ncnn_upscaler,
)

CASES = registry_cases()
# the registry's networks ncnn must run (every SPAN variant and ESPCN); the rest must refuse
RUNS_ON_NCNN = {"span", "span-fast", "span-real", "span-real-gan", "espcn"}


def _random(net: torch.nn.Module, seed: int = 0) -> Upscaler:
    """``net`` with random weights (away from PyTorch's init, so every term matters), fused."""
    g = torch.Generator().manual_seed(seed)
    for p in net.parameters():
        p.data = torch.randn(p.shape, generator=g) * 0.05
    if hasattr(net, "reparameterize"):
        net.reparameterize()
    return Upscaler(net.eval(), name="t", scale=net.scale, meta=None)


def _max_diff(up: Upscaler, h: int = 23, w: int = 31) -> float:
    nc = ncnn_upscaler(up, threads=1)
    x = torch.rand(1, up.in_channels, h, w, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        return float((nc.net(x) - up.net(x)).abs().max())


@pytest.mark.parametrize(("name", "scale"), CASES)
def test_every_registered_network_runs_exactly_or_is_refused(name: str, scale: int) -> None:
    torch.manual_seed(0)
    up = _random(build_model(name, scale))
    if name in RUNS_ON_NCNN:
        assert _max_diff(up) < 1e-4
    else:
        with pytest.raises(NcnnError, match="ncnn backend runs .*ESPCN.*SPAN"):
            ncnn_upscaler(up)


VARIANTS = {
    "fast": FAST,
    "quality": QUALITY,
    "dilated": dict(QUALITY, dilation=3),
    "rgb": dict(FAST, in_channels=3),
    "no-skip": dict(FAST, skip="none"),
    "silu-gated-rep": dict(QUALITY, act="silu", attention=True, rep=True, blocks=3),
}


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("variant", VARIANTS)
def test_span_variants_match_torch(variant: str, scale: int) -> None:
    up = _random(SPAN(scale=scale, **VARIANTS[variant]))
    assert _max_diff(up) < 1e-4


def test_a_bicubic_skip_is_refused_not_approximated() -> None:
    with pytest.raises(NcnnError, match="bicubic skip"):
        graph_for(_random(SPAN(scale=2, **dict(FAST, skip="bicubic"))).net)


def test_the_parity_check_rejects_a_wrong_graph(monkeypatch) -> None:
    """A writer that drops the global skip builds a graph ncnn runs happily; the load-time
    comparison with torch is what refuses it."""
    def no_skip(g: NcnnGraph, net: SPAN, x: str) -> str:
        net.skip = "none"
        try:
            return real(g, net, x)
        finally:
            net.skip = "repeat"

    real = WRITERS[SPAN]
    monkeypatch.setitem(WRITERS, SPAN, no_skip)
    with pytest.raises(NcnnError, match="differs from torch"):
        ncnn_upscaler(_random(SPAN(scale=2, **FAST)))


def test_graph_files_count_layers_and_blobs() -> None:
    g = graph_for(_random(SPAN(scale=2, **FAST)).net)
    lines = g.param_text().splitlines()
    assert lines[0] == "7767517"
    n_layers, n_blobs = map(int, lines[1].split())
    assert n_layers == len(lines) - 2 == len(g.layers)
    outputs = [b for line in lines[2:] for b in line.split()[4 + int(line.split()[2]):][
        :int(line.split()[3])]]
    assert n_blobs == len(outputs) == len(set(outputs))
    assert outputs[0] == "in" and outputs[-1] == "out"


def test_shipped_model_through_the_upscaler_equals_torch(smooth_rgb) -> None:
    """Colour (span-real's guided chroma), gray, alpha and tiles all go through Upscaler."""
    torch_up = be.load_backend("span-real", 2, backend="torch")
    up = be.load_backend("span-real", 2, backend="ncnn", threads=1)
    assert up.backend == "ncnn" and up.trained and up.params == torch_up.params
    assert up.chroma == torch_up.chroma is not None
    a, b = up(smooth_rgb), torch_up(smooth_rgb)
    assert a.shape == (80, 72, 3) and np.abs(a.astype(int) - b).max() <= 1
    np.testing.assert_array_equal(up.upscale_array(smooth_rgb, tile=16), a)
    assert up(smooth_rgb[..., 0]).shape == (80, 72)
    rgba = np.dstack([smooth_rgb, np.full(smooth_rgb.shape[:2], 200, np.uint8)])
    assert up(rgba).shape == (80, 72, 4)
    small = smooth_rgb[:12, :10]  # the 8 flips and rotations call the net with strided views
    ens, ref = up.self_ensembled(), torch_up.self_ensembled()
    assert ens.backend == "ncnn" and np.abs(ens(small).astype(int) - ref(small)).max() <= 1


def test_blends_run_on_ncnn_when_asked() -> None:
    from srlab.api import load_model

    blend = load_model("span", 2, denoise=0.5, backend="ncnn")
    assert blend.backend == "ncnn"
    img = (np.random.default_rng(0).random((12, 10, 3)) * 255).astype(np.uint8)
    ref = load_model("span", 2, denoise=0.5, backend="torch")
    assert np.abs(blend(img).astype(int) - ref(img)).max() <= 1


def test_auto_falls_back_where_ncnn_cannot_write_the_network(monkeypatch) -> None:
    """A store that says ncnn is fastest for srcnn: auto tries it, gets NcnnError, and runs
    the next backend measured instead of failing."""
    store = be.record_measurements({}, "C", "srcnn", 2, {
        "torch": be.Measurement(1.0, {"Set5": 0.0}),
        "ncnn": be.Measurement(5.0, {"parity": 0.0})})
    monkeypatch.setattr("srlab.runtime.measured.load_store", lambda path=None: store)
    monkeypatch.setattr("srlab.runtime.cpu.cpu_model", lambda: "C")
    assert be.pick_backend("srcnn", 2) == "ncnn"
    assert be.load_backend("srcnn", 2, backend="auto").backend == "torch"


def test_missing_ncnn_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ncnn", None)  # import ncnn now raises ImportError
    with pytest.raises(NcnnError, match=r"pip install 'srlab\[peers\]'"):
        be.load_backend("span-fast", 2, backend="ncnn")


def test_cli_upscale_on_ncnn_and_a_one_line_error_where_it_cannot(tmp_path, smooth_rgb,
                                                                   capsys) -> None:
    from srlab import cli
    from srlab.image.imageio import load_image, save_image

    src, out = tmp_path / "in.png", tmp_path / "out.png"
    save_image(smooth_rgb, src)
    args = ["upscale", str(src), "-s", "2", "--backend", "ncnn", "-o"]
    assert cli.main([*args, str(out), "-m", "span-fast"]) == 0
    assert load_image(out).array.shape == (80, 72, 3)
    capsys.readouterr()
    code = cli.main([*args, str(tmp_path / "no.png"), "-m", "srcnn"])
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err and not (tmp_path / "no.png").exists()
    assert err.strip().splitlines() == [err.strip()] and "ncnn backend runs" in err

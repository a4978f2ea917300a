"""The srlab command line: upscale / models / demo, output naming, and one-line errors."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from srlab import cli
from srlab.image.imageio import load_image, save_image

SRLAB = Path(sys.executable).parent / "srlab"


def run(capsys, *argv: str | Path) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, expected_code: int, *fragments: str) -> None:
    assert code == expected_code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("srlab: error: "), err
    assert "Traceback" not in err
    for frag in fragments:
        assert frag in lines[0], (frag, err)


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture
def img(smooth_rgb) -> np.ndarray:
    return smooth_rgb[:20, :24]  # 24 x 20


@pytest.fixture
def photo(tmp_path, img) -> Path:
    path = tmp_path / "photo.png"
    save_image(img, path)
    return path


# ------------------------------------------------------------------ output naming


def test_single_file_next_to_input(capsys, photo):
    code, out, err = run(capsys, "upscale", photo, "-m", "bicubic")
    assert code == 0, err
    result = load_image(photo.parent / "photo_x4.png").array
    assert result.shape == (80, 96, 3)
    assert "photo_x4.png" in out and err == ""


def test_single_file_to_named_output(capsys, photo, tmp_path):
    code, _, err = run(capsys, "upscale", photo, "-o", tmp_path / "sub" / "big.jpg",
                       "-m", "nearest", "--scale", "2")
    assert code == 0, err
    out = load_image(tmp_path / "sub" / "big.jpg")
    assert out.source_format == "JPEG" and out.array.shape == (40, 48, 3)


@pytest.mark.parametrize("scale", [2, 3])
def test_folder_to_folder_keeps_names(capsys, tmp_path, rng, scale):
    src = tmp_path / "lr"
    src.mkdir()
    sizes = {"a.png": (20, 24), "b.jpg": (17, 13), "c.bmp": (9, 30), "d.gif": (12, 12)}
    for name, (h, w) in sizes.items():
        Image.fromarray(rng.integers(0, 255, (h, w, 3)).astype(np.uint8)).save(src / name)
    (src / "notes.txt").write_text("not an image")
    (src / "nested").mkdir()
    code, out, err = run(capsys, "upscale", src, "-o", tmp_path / "sr", "-m", "bicubic",
                         "-s", str(scale))
    assert code == 0, err
    written = sorted(p.name for p in (tmp_path / "sr").iterdir())
    assert written == ["a.png", "b.jpg", "c.bmp", "d.png"]  # GIF output becomes PNG
    for name, (h, w) in sizes.items():
        out_name = name.replace(".gif", ".png")
        res = load_image(tmp_path / "sr" / out_name)
        assert res.array.shape[:2] == (h * scale, w * scale), name
    assert sorted(p.name for p in src.iterdir()) == sorted([*sizes, "notes.txt", "nested"])


def test_output_file_edge_cases(capsys, tmp_path, photo):
    code, _, err = run(capsys, "upscale", tmp_path / "gone.png", "-o", tmp_path / "o.png",
                       "-m", "nearest")
    assert_one_line_error(code, err, 1, "gone.png", "no such file")
    one = tmp_path / "one"
    one.mkdir()
    photo.rename(one / "photo.png")
    code, _, err = run(capsys, "upscale", one, one / "photo.png", "-o", tmp_path / "o.png",
                       "-m", "nearest")  # a folder holding the one image given twice
    assert code == 0, err
    assert load_image(tmp_path / "o.png").array.shape == (80, 96, 3)
    code, _, err = run(capsys, "upscale", one, "-o", tmp_path / "new-dir", "-m", "nearest")
    assert code == 0 and (tmp_path / "new-dir" / "photo.png").is_file()


def test_ext_option(capsys, tmp_path, photo):
    code, _, err = run(capsys, "upscale", photo, "-m", "nearest", "--ext", "webp")
    assert code == 0, err
    assert load_image(tmp_path / "photo_x4.webp").source_format == "WEBP"


def test_never_overwrites_input_without_force(capsys, tmp_path, photo):
    original = photo.read_bytes()
    code, _, err = run(capsys, "upscale", photo, "-o", photo, "-m", "nearest")
    assert_one_line_error(code, err, 1, "refusing to overwrite", "--force")
    code, _, err = run(capsys, "upscale", tmp_path, "-o", tmp_path, "-m", "nearest")
    assert_one_line_error(code, err, 1, "refusing to overwrite")
    assert photo.read_bytes() == original
    assert listing(tmp_path) == ["photo.png"]
    code, _, err = run(capsys, "upscale", photo, "-o", photo, "-m", "nearest", "--force")
    assert code == 0, err
    assert load_image(photo).array.shape == (80, 96, 3)


def test_existing_output_is_replaced(capsys, photo):
    target = photo.with_name("photo_x4.png")
    target.write_bytes(b"old")
    assert run(capsys, "upscale", photo, "-m", "nearest")[0] == 0
    assert load_image(target).array.shape == (80, 96, 3)


def test_batch_with_one_bad_file(capsys, tmp_path, img):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.png", "c.png"):
        save_image(img, src / name)
    (src / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    code, out, err = run(capsys, "upscale", src, "-o", tmp_path / "out", "-m", "bicubic")
    assert code == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "c.png"]
    lines = err.strip().splitlines()
    assert lines[0].startswith("srlab: error: ") and "b.png" in lines[0]
    assert lines[-1] == "srlab: 1 of 3 images failed" and "Traceback" not in err
    assert len(out.strip().splitlines()) == 2  # one line per image written


def test_tiling_gives_identical_output(capsys, tmp_path, photo):
    assert run(capsys, "upscale", photo, "-o", tmp_path / "whole.png", "-m", "bicubic")[0] == 0
    assert run(capsys, "upscale", photo, "-o", tmp_path / "tiled.png", "-m", "bicubic",
               "--tile", "8")[0] == 0
    np.testing.assert_array_equal(load_image(tmp_path / "whole.png").array,
                                  load_image(tmp_path / "tiled.png").array)


# ------------------------------------------------------------------ image kinds through the CLI


def test_16bit_in_16bit_out(capsys, tmp_path, rng):
    a = rng.integers(0, 65536, (10, 12, 3)).astype(np.uint16)
    save_image(a, tmp_path / "deep.png")
    code, _, err = run(capsys, "upscale", tmp_path / "deep.png", "-m", "nearest", "-s", "2")
    assert code == 0, err
    out = load_image(tmp_path / "deep_x2.png").array
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, a.repeat(2, axis=0).repeat(2, axis=1))  # every bit kept
    code, _, err = run(capsys, "upscale", tmp_path / "deep.png", "-o", tmp_path / "d.tif",
                       "-m", "bicubic")
    assert code == 0, err
    assert load_image(tmp_path / "d.tif").array.dtype == np.uint16


def test_grayscale_stays_grayscale(capsys, tmp_path, img):
    save_image(img[..., 0], tmp_path / "g.png")
    assert run(capsys, "upscale", tmp_path / "g.png", "-m", "bicubic")[0] == 0
    out = load_image(tmp_path / "g_x4.png")
    assert out.array.shape == (80, 96) and out.channels == 1


def test_alpha_reattached(capsys, tmp_path, img):
    rgba = np.dstack([img, np.full((20, 24), 255, np.uint8)])
    rgba[:, :12, 3] = 0  # left half transparent
    save_image(rgba, tmp_path / "t.png")
    assert run(capsys, "upscale", tmp_path / "t.png", "-m", "bicubic")[0] == 0
    out = load_image(tmp_path / "t_x4.png").array
    assert out.shape == (80, 96, 4)
    assert (out[:, :40, 3] == 0).all()  # transparent region stays transparent
    assert (out[:, 56:, 3] == 255).all()


def test_palette_with_transparency(capsys, tmp_path):
    idx = np.zeros((20, 24), np.uint8)
    idx[:, 12:] = 1
    p = Image.frombytes("P", (24, 20), idx.tobytes())
    p.putpalette([0, 0, 0, 30, 200, 90] + [0] * 762)
    p.save(tmp_path / "pal.png", transparency=0)
    assert run(capsys, "upscale", tmp_path / "pal.png", "-m", "nearest")[0] == 0
    out = load_image(tmp_path / "pal_x4.png").array
    assert out.shape == (80, 96, 4)
    # alpha is resampled bicubically, so only the 2 LR pixels at the edge are in between
    assert (out[:, :40, 3] == 0).all() and (out[:, 56:, 3] == 255).all()
    np.testing.assert_array_equal(out[0, -1], [30, 200, 90, 255])


def test_exif_rotated_jpeg_comes_out_rotated(capsys, tmp_path):
    a = np.zeros((20, 24, 3), np.uint8)
    a[:6, :6] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(a).save(tmp_path / "cam.jpg", exif=exif, quality=95)
    assert run(capsys, "upscale", tmp_path / "cam.jpg", "-m", "nearest")[0] == 0
    out = Image.open(tmp_path / "cam_x4.png")
    assert out.size == (80, 96)  # displayed orientation: 20 wide, 24 tall, times 4
    assert out.getexif().get(0x0112) in (None, 1)  # applied, so reset to upright
    arr = np.asarray(out)
    assert arr[:20, -20:].mean() > 200 and arr[-20:, :20].mean() < 50


def test_icc_profile_kept(capsys, tmp_path, img):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(img).save(tmp_path / "c.jpg", icc_profile=icc)
    assert run(capsys, "upscale", tmp_path / "c.jpg", "-m", "nearest")[0] == 0
    assert Image.open(tmp_path / "c_x4.png").info.get("icc_profile") == icc


def test_pixel_limit_and_override(capsys, photo):
    code, _, err = run(capsys, "upscale", photo, "-m", "nearest", "--max-pixels", "400")
    assert_one_line_error(code, err, 1, "24 x 20 = 480 pixels", "--max-pixels")
    assert not photo.with_name("photo_x4.png").exists()
    assert run(capsys, "upscale", photo, "-m", "nearest", "--max-pixels", "1K")[0] == 0
    assert photo.with_name("photo_x4.png").exists()


def test_default_model(capsys, tmp_path, img):
    """The flagship runs end to end (on random weights until trained ones ship)."""
    save_image(img[:12, :10], tmp_path / "s.png")
    code, out, err = run(capsys, "upscale", tmp_path / "s.png", "--threads", "1")
    assert code == 0, err
    assert load_image(tmp_path / "s_x4.png").array.shape == (48, 40, 3)
    from srlab.api import load_model

    if not load_model(None, 4).trained:
        assert err.count("\n") == 1 and "srlab: warning:" in err and "random" in err


# ------------------------------------------------------------------ errors: one line each


def _weights_file(tmp_path: Path) -> Path:
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    return path


ERROR_CASES = {
    # name: (argv after "upscale", expected exit code, fragments of the message)
    "missing file": (["missing.png"], 1, ["missing.png", "no such file"]),
    "truncated image": (["trunc.png"], 1, ["trunc.png"]),
    "not an image": (["notes.png"], 1, ["notes.png", "not an image"]),
    "empty file": (["empty.png"], 1, ["empty.png", "empty"]),
    "unsupported mode": (["float.tif"], 1, ["32-bit float"]),
    "too many pixels": (["photo.png", "--max-pixels", "10"], 1, ["above the limit of 10"]),
    "bad scale": (["photo.png", "--scale", "0.5"], 2, ["--scale", "at least 1"]),
    "unknown model": (["photo.png", "-m", "nope"], 2, ["unknown model 'nope'"]),
    # any factor runs (x4 + resize), but a weights file holds one scale
    "scale not supported": (["photo.png", "-m", "fcn-multi", "-s", "3", "--weights",
                             "w.safetensors"], 2, ["scales"]),
    "bad weights file": (["photo.png", "-m", "span-fast", "--weights", "w.safetensors"], 1,
                         ["w.safetensors"]),
    "missing weights file": (["photo.png", "-m", "span-fast", "--weights", "no.safetensors"],
                             1, ["no.safetensors"]),
    "unknown output format": (["photo.png", "-o", "out.xyz"], 2, ["out.xyz"]),
    "one output file, two inputs": (["photo.png", "trunc.png", "-o", "o.png"], 2, ["folder"]),
    "bad tile": (["photo.png", "--tile", "-3"], 2, ["--tile"]),
    "bad max-pixels": (["photo.png", "--max-pixels", "lots"], 2, ["--max-pixels"]),
    "no inputs": ([], 2, ["INPUT"]),
    "bad quality": (["photo.png", "--quality", "101"], 2, ["--quality"]),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_error_is_one_line(capsys, tmp_path, img, monkeypatch, case):
    argv, expected, fragments = ERROR_CASES[case]
    save_image(img, tmp_path / "photo.png")
    data = (tmp_path / "photo.png").read_bytes()
    (tmp_path / "trunc.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "notes.png").write_text("hello")
    (tmp_path / "empty.png").write_bytes(b"")
    Image.fromarray(img[..., 0].astype(np.float32)).save(tmp_path / "float.tif")
    _weights_file(tmp_path)
    before = listing(tmp_path)
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "upscale", *argv, *([] if "-m" in argv else ["-m", "nearest"]))
    assert_one_line_error(code, err, expected, *fragments)
    assert listing(tmp_path) == before  # nothing written, no temp file left


def test_unexpected_error_hint_and_debug(capsys, monkeypatch, photo):
    import srlab.batch as task

    def boom(*args, **kwargs):
        raise TypeError("something broke\nsecond line")

    monkeypatch.setattr(task, "upscale_files", boom)
    monkeypatch.delenv("SRLAB_DEBUG", raising=False)
    code, _, err = run(capsys, "upscale", photo, "-m", "nearest")
    assert_one_line_error(code, err, 1, "unexpected TypeError: something broke second line",
                          "SRLAB_DEBUG=1")
    monkeypatch.setenv("SRLAB_DEBUG", "1")
    code, _, err = run(capsys, "upscale", photo, "-m", "nearest")
    assert code == 1 and "Traceback" in err and "boom" in err


def test_ctrl_c_exits_130(capsys, monkeypatch, photo):
    import srlab.batch as task

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(task, "upscale_files", interrupted)
    code, _, err = run(capsys, "upscale", photo, "-m", "nearest")
    assert code == 130 and "interrupted" in err and "Traceback" not in err


def test_cli_default_limit_matches_library():
    from srlab.image.imageio import DEFAULT_MAX_PIXELS

    assert cli._DEFAULT_MAX_PIXELS == DEFAULT_MAX_PIXELS  # duplicated to keep --help fast


def test_help_and_version(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "upscale" in out and "models" in out and "demo" in out
    code, out, _ = run(capsys, "upscale", "--help")
    assert code == 0 and "--max-pixels" in out and "--force" in out
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith("srlab ")
    code, _, err = run(capsys, "frobnicate")
    assert_one_line_error(code, err, 2, "invalid choice")


# ------------------------------------------------------------------ models, demo


def test_models_table(capsys):
    code, out, err = run(capsys, "models")
    assert code == 0, err
    header, *rows = out.splitlines()
    for col in ("model", "family", "scales", "params", "weights", "Set5 PSNR", "status"):
        assert col in header
    names = [r.split()[0] for r in rows]
    assert "bicubic" in names and "span" in names
    span = next(r for r in rows if r.startswith("span "))
    assert "*" in span.split()[:2]  # the default model is marked
    assert any(r.startswith("bicubic ") and "classical" in r for r in rows)


def test_models_table_reads_shipped_metadata(capsys, tmp_path, monkeypatch):
    import srlab.zoo.weights as weights
    from srlab.zoo.registry import build_model

    monkeypatch.setattr(weights, "SHIPPED_DIR", tmp_path)
    net = build_model("span-fast", 4)
    meta = weights.WeightsMeta(arch="span-fast", scale=4, metrics={"Set5": {"psnr": 30.5}})
    weights.save_weights(net, meta, weights.shipped_weights_path("span-fast", 4))
    weights.shipped_weights_path("span-fast", 2).write_bytes(b"junk")
    code, out, err = run(capsys, "models")
    assert code == 0, err
    row = next(r for r in out.splitlines() if r.startswith("span-fast "))
    assert "x2(corrupt) x4" in row and "x4 30.50" in row and row.split()[-1] == "trained"
    assert f"{meta.params / 1e3:.1f}K" in row


def test_ship_cards_rewrites_shipped_card_headers(capsys, tmp_path, monkeypatch):
    import srlab.zoo.weights as weights
    from srlab.zoo.registry import build_model

    monkeypatch.setattr(weights, "SHIPPED_DIR", tmp_path)
    meta = weights.WeightsMeta(arch="span-fast", scale=4, kwargs={"feat": 8}, recipe="r")
    path = weights.shipped_weights_path("span-fast", 4)
    weights.save_weights(build_model("span-fast", 4, feat=8), meta, path)
    measured = "## Measured (standard protocol)\n\n| a table |\n"
    path.with_suffix(".md").write_text("# span-fast x4\n\n- old header\n\n" + measured)
    code, _, err = run(capsys, "ship", "--cards")
    assert code == 0 and err.strip() == f"rewrote {path.with_suffix('.md')}"
    card = path.with_suffix(".md").read_text()
    assert "`srlab upscale` rebuilds this exact net): feat=8" in card
    assert card.endswith("\n\n" + measured) and "- old header" not in card
    for argv in (["ship"], ["ship", "--cards", str(tmp_path)]):
        code, _, err = run(capsys, *argv)
        assert code == 2 and len(err.strip().splitlines()) == 1, err


def test_demo(capsys, tmp_path):
    code, out, err = run(capsys, "demo", "--model", "bicubic", "--out", tmp_path / "d",
                         "--scale", "4")
    assert code == 0, err
    sr = load_image(tmp_path / "d" / "sample_x4.png").array
    hr = load_image(cli.SAMPLE_IMAGE).array
    assert sr.shape == hr.shape
    compare = load_image(tmp_path / "d" / "compare_x4.png").array
    assert compare.shape[1] > 4 * hr.shape[1] and compare.shape[0] > hr.shape[0]
    assert "PSNR (Y)" in out and "bicubic (MATLAB)" in out
    rows = [re.match(r"^bicubic( \(MATLAB\))?\s+([\d.]+)\s+([\d.]+)$", line)
            for line in out.splitlines()]
    psnrs = [float(m.group(2)) for m in rows if m]
    assert len(psnrs) == 2 and all(20 < p < 40 for p in psnrs)


def test_sample_asset_is_shipped():
    hr = load_image(cli.SAMPLE_IMAGE)
    assert hr.array.shape == (256, 256, 3) and hr.array.dtype == np.uint8
    assert hr.array.std() > 30  # a real picture, not a flat fill


# ------------------------------------------------------------------ the real console script


@pytest.mark.skipif(not SRLAB.exists(), reason="console script not installed")
def test_console_script(tmp_path, photo):
    env = {**os.environ, "SRLAB_DEBUG": ""}
    proc = subprocess.run([str(SRLAB), "upscale", str(tmp_path / "missing.png"),
                           "-m", "nearest"], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"srlab: error: {tmp_path / 'missing.png'}: no such file or folder"]
    proc = subprocess.run([str(SRLAB), "upscale", str(photo), "-m", "nearest", "-s", "2",
                           "--threads", "1"], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert load_image(photo.with_name("photo_x2.png")).array.shape == (40, 48, 3)


def test_help_does_not_import_torch():
    code = ("import sys, srlab.cli\n"
            "try:\n    srlab.cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "sys.exit(3 if 'torch' in sys.modules else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert proc.returncode == 0, "srlab --help imported torch"


def test_models_says_what_an_untrainable_offline_model_needs(capsys):
    code, out, _ = run(capsys, "models")
    line = next(row for row in out.splitlines() if row.startswith("fcn-vgg "))
    assert code == 0 and line.rstrip().endswith("needs VGG16 weights")

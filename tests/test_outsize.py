"""Any output size (image.outsize), metadata kept (image.metadata) and animated frames
(image.animation), through the core, ``srlab upscale``, the Python API and the HTTP API."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageCms

import srlab
from srlab import cli
from srlab.image.imageio import load_image, save_image
from srlab.image.outsize import OutputSize, SizeError, choose_scale, finish, plan_size
from srlab.image.resize import imresize

XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
       b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
       b'xmlns:tiff="http://ns.adobe.com/tiff/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/" '
       b'tiff:Orientation="6"><dc:creator>srlab-test-creator</dc:creator></rdf:Description>'
       b'</rdf:RDF></x:xmpmeta>')


def noise(h: int, w: int, c: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8)


def run(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# --- the plan ---------------------------------------------------------------------------


def test_plan_picks_the_nearest_shipped_scale_at_or_above():
    assert choose_scale(1.5, [2, 3, 4]) == 2
    assert choose_scale(3, [2, 4]) == 4
    assert choose_scale(2.0, [2, 4]) == 2
    assert choose_scale(7, [2, 4]) == 4  # beyond every scale: the largest, then enlarged
    p = plan_size(OutputSize(scale=3), 20, 10, [2, 4])
    assert (p.model_scale, p.out_size, p.resize) == (4, (60, 30), True)
    assert p.describe("span-real") == "span-real x4 -> resize to 3x (60x30)"
    native = plan_size(OutputSize(scale=3), 20, 10, [2, 3, 4])
    assert (native.model_scale, native.resize, native.describe("span")) == (3, False, "span x3")


@pytest.mark.parametrize("size,expected", [
    (OutputSize(scale=1.5), (768, 513)),
    (OutputSize(fit=(1920, 1080)), (1617, 1080)),
    (OutputSize(fit=(1000, 1000)), (1000, 668)),
    (OutputSize(width=1024), (1024, 684)),
    (OutputSize(height=684), (1024, 684)),
    (OutputSize(width=600, height=700), (600, 700)),
])
def test_target_sizes(size, expected):
    assert plan_size(size, 512, 342, [2, 4]).out_size == expected


@pytest.mark.parametrize("kwargs", [
    {"scale": 0}, {"scale": -2}, {"scale": 0.5}, {"scale": float("nan")},
    {"width": 0}, {"height": -1}, {"scale": 2, "width": 10}, {"fit": (10, 10), "width": 3},
    {"fit": (0, 10)}, {},
])
def test_bad_sizes_are_refused_when_made(kwargs):
    with pytest.raises(SizeError):
        OutputSize(**kwargs)


def test_a_target_smaller_than_the_input_is_refused():
    with pytest.raises(SizeError, match="only enlarges"):
        plan_size(OutputSize(fit=(10, 10)), 40, 20, [2, 4])


def test_an_output_far_above_the_pixel_limit_is_refused(tmp_path, capsys):
    with pytest.raises(SizeError, match="input limit"):
        plan_size(OutputSize(fit=(100_000, 100_000)), 40, 20, [2, 4], max_pixels=10_000)
    assert plan_size(OutputSize(scale=4), 50, 50, [4], max_pixels=2500).out_size == (200, 200)
    src = tmp_path / "a.png"
    save_image(noise(4, 4), src)
    code, _, err = run(capsys, "upscale", src, "-m", "nearest", "--fit", "100000x100000")
    assert code == 1 and "input limit" in err and len(err.strip().splitlines()) == 1


def test_finish_is_matlab_imresize_for_every_dtype_and_layout():
    plan = plan_size(OutputSize(scale=3), 23, 17, [4])
    plan = type(plan)(plan.size, (92, 68), 1, plan.out_size)  # resize a 92x68 "network out"
    big = noise(68, 92, seed=1)
    ref = imresize(big, size=(51, 69))
    assert np.array_equal(finish(big, plan), ref)
    assert finish(big[..., 0], plan).shape == (51, 69)
    assert finish(noise(68, 92, 4), plan).shape == (51, 69, 4)
    deep = finish(big.astype(np.uint16) * 257, plan)
    assert deep.dtype == np.uint16 and np.abs(deep / 257.0 - ref).max() <= 1


# --- the CLI ------------------------------------------------------------------------------


def test_cli_scale_1_5_gives_exactly_that_size(tmp_path, capsys):
    src = tmp_path / "a.png"
    save_image(noise(10, 14), src)
    code, out, _ = run(capsys, "upscale", src, "-m", "bicubic", "--scale", "1.5", "-o",
                       tmp_path / "o.png")
    assert code == 0
    assert Image.open(tmp_path / "o.png").size == (21, 15)
    assert "bicubic x2 -> resize to 1.5x (21x15)" in out


def test_cli_scale_3_with_a_x4_only_model_runs_x4_and_shrinks(tmp_path, capsys):
    src = tmp_path / "a.png"
    save_image(noise(8, 6), src)
    code, out, err = run(capsys, "upscale", src, "-m", "span-real", "--scale", "3",
                         "--backend", "torch")
    assert code == 0, err
    assert Image.open(tmp_path / "a_x3.png").size == (18, 24)
    assert "span-real x4 -> resize to 3x (18x24)" in out


def test_cli_fit_1920x1080(tmp_path, capsys):
    src = tmp_path / "a.png"
    save_image(noise(9, 16), src)  # 16:9 exactly: the box is filled
    code, out, err = run(capsys, "upscale", src, "-m", "nearest", "--fit", "1920x1080")
    assert code == 0, err
    assert Image.open(tmp_path / "a_fit1920x1080.png").size == (1920, 1080)
    assert "nearest x4 -> resize to fit 1920x1080 (1920x1080)" in out
    save_image(noise(10, 10), tmp_path / "sq.png")
    assert run(capsys, "upscale", tmp_path / "sq.png", "-m", "nearest", "--width", "25",
               "-o", tmp_path / "w.png")[0] == 0
    assert Image.open(tmp_path / "w.png").size == (25, 25)


@pytest.mark.parametrize("args,fragment", [
    (["--scale", "0"], "at least 1"),
    (["--scale", "-3"], "at least 1"),
    (["--scale", "0.9"], "at least 1"),
    (["--scale", "x"], "at least 1"),
    (["--width", "0"], "--width"),
    (["--fit", "1920"], "WIDTHxHEIGHT"),
    (["--scale", "2", "--width", "10"], "not both"),
    (["-s", "4", "--fit", "10x10"], "not both"),
    (["--fit", "10x10", "--height", "4"], "not both"),
])
def test_cli_bad_sizes_are_one_line_exit_2(tmp_path, capsys, args, fragment):
    src = tmp_path / "a.png"
    save_image(noise(4, 4), src)
    code, _, err = run(capsys, "upscale", src, "-m", "nearest", *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("srlab: error: ") and fragment in lines[0]
    assert list(tmp_path.iterdir()) == [src]


def test_cli_box_smaller_than_the_image_fails_that_image(tmp_path, capsys):
    src = tmp_path / "a.png"
    save_image(noise(20, 20), src)
    code, _, err = run(capsys, "upscale", src, "-m", "nearest", "--fit", "10x10")
    assert code == 1 and "only enlarges" in err and len(err.strip().splitlines()) == 1


# --- the Python API -------------------------------------------------------------------------


def test_python_api_any_size():
    a = noise(10, 14)
    assert srlab.upscale(a, 1.5, model="bicubic").shape == (15, 21, 3)
    assert srlab.upscale(a, 3, model="span-real").shape == (30, 42, 3)
    pil = srlab.upscale(Image.fromarray(a), model="nearest", fit=(100, 50))
    assert pil.size == (70, 50)
    up = srlab.load_model("nearest", 4)
    assert up(a, size=srlab.OutputSize(scale=2.5)).shape == (25, 35, 3)
    assert up(a, size=OutputSize(width=20, height=11)).shape == (11, 20, 3)


# --- metadata ------------------------------------------------------------------------------


def _photo_with_metadata(path, fmt: str = "JPEG") -> bytes:
    """A 8 wide x 6 tall photo stored sideways (EXIF orientation 6), with a camera make, the
    pixel sizes, XMP and an ICC profile."""
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "SrlabCam"
    exif.get_ifd(0x8769)[0xA002] = 8
    exif.get_ifd(0x8769)[0xA003] = 6
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    kw = {"xmp": XMP} if fmt == "JPEG" else {}
    Image.fromarray(noise(6, 8)).save(path, format=fmt, exif=exif.tobytes(), icc_profile=icc,
                                      **kw)
    return icc


def _xmp_of(im: Image.Image) -> bytes:
    x = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp") or b""
    return x.encode() if isinstance(x, str) else x


@pytest.mark.parametrize("ext", ["png", "jpg", "webp", "tif"])
def test_exif_xmp_and_icc_survive(tmp_path, capsys, ext):
    src = tmp_path / "cam.jpg"
    icc = _photo_with_metadata(src)
    out = tmp_path / f"o.{ext}"
    code, _, err = run(capsys, "upscale", src, "-m", "nearest", "-s", "2", "-o", out)
    assert code == 0, err
    with Image.open(out) as im:
        assert im.size == (12, 16)  # upright: 6 wide, 8 tall, times 2
        exif = im.getexif()
        assert exif.get(0x010F) == "SrlabCam"
        assert exif.get(0x0112) in (None, 1)  # applied to the pixels, so upright now
        sub = exif.get_ifd(0x8769)
        assert (sub.get(0xA002), sub.get(0xA003)) == (12, 16)  # the output's pixel sizes
        xmp = _xmp_of(im)
        assert b"srlab-test-creator" in xmp and b'tiff:Orientation="1"' in xmp
        assert im.info.get("icc_profile") == icc


def test_16bit_png_keeps_exif_and_xmp(tmp_path):
    src = tmp_path / "cam.jpg"
    _photo_with_metadata(src)
    img = load_image(src)
    save_image(img.array.astype(np.uint16) * 257, tmp_path / "deep.png", exif=img.exif,
               xmp=img.xmp, icc_profile=img.icc_profile)
    back = load_image(tmp_path / "deep.png")
    assert back.bit_depth == 16 and b"srlab-test-creator" in (back.xmp or b"")
    with Image.open(tmp_path / "deep.png") as im:
        assert im.getexif().get(0x010F) == "SrlabCam"


def test_strip_metadata_drops_it(tmp_path, capsys):
    src = tmp_path / "cam.jpg"
    _photo_with_metadata(src)
    for ext in ("png", "jpg"):
        out = tmp_path / f"o.{ext}"
        assert run(capsys, "upscale", src, "-m", "nearest", "-s", "2", "--strip-metadata",
                   "-o", out)[0] == 0
        with Image.open(out) as im:
            assert im.getexif().get(0x010F) is None
            assert not _xmp_of(im) and not im.info.get("icc_profile")
            assert im.size == (12, 16)  # still upright


# --- animations -------------------------------------------------------------------------------


def _gif(path, n: int = 5, size: tuple[int, int] = (12, 10)) -> list[int]:
    durations = [40 * (i + 1) for i in range(n)]
    frames = [Image.fromarray(noise(size[1], size[0], seed=i)).convert("P") for i in range(n)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=durations, loop=0,
                   disposal=2)
    return durations


def _frames(path) -> tuple[list[tuple[int, int]], list[int], object]:
    with Image.open(path) as im:
        sizes, durations = [], []
        for i in range(im.n_frames):
            im.seek(i)
            im.load()  # WebP reads a frame's duration when it decodes it
            sizes.append(im.size)
            durations.append(im.info.get("duration"))
        return sizes, durations, im.info.get("loop")


def test_animated_gif_comes_back_with_every_frame_upscaled(tmp_path, capsys):
    src = tmp_path / "anim.gif"
    durations = _gif(src)
    code, out, err = run(capsys, "upscale", src, "-m", "nearest", "-s", "2")
    assert code == 0, err
    target = tmp_path / "anim_x2.gif"  # stays a GIF, and animated
    sizes, got, loop = _frames(target)
    assert sizes == [(24, 20)] * 5 and got == durations and loop == 0
    assert "5 frames" in out
    # the frames are the frames, upscaled: frame 3 of the output is frame 3 of the input x2
    with Image.open(src) as a, Image.open(target) as b:
        a.seek(3)
        b.seek(3)
        lr = np.asarray(a.convert("RGB")).astype(int)
        sr = np.asarray(b.convert("RGB")).astype(int)
        assert np.abs(sr[::2, ::2] - lr).mean() < 8  # GIF re-quantises; nearest repeats


@pytest.mark.parametrize("ext", ["png", "webp"])
def test_animation_written_as_apng_or_webp(tmp_path, capsys, ext):
    src = tmp_path / "anim.gif"
    durations = _gif(src)
    out = tmp_path / f"o.{ext}"
    assert run(capsys, "upscale", src, "-m", "nearest", "--scale", "1.5", "-o", out)[0] == 0
    sizes, got, _ = _frames(out)
    assert sizes == [(18, 15)] * 5 and got == durations


def test_animation_into_a_single_frame_format_fails_clearly(tmp_path, capsys):
    src = tmp_path / "anim.gif"
    _gif(src)
    code, _, err = run(capsys, "upscale", src, "-m", "nearest", "-s", "2", "-o",
                       tmp_path / "o.jpg")
    assert code == 1 and "animated" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o.jpg").exists()


def test_animation_frames_count_against_the_pixel_limit(tmp_path, capsys):
    src = tmp_path / "anim.gif"
    _gif(src)  # 5 frames of 12 x 10 = 600 pixels
    code, _, err = run(capsys, "upscale", src, "-m", "nearest", "-s", "2", "--max-pixels",
                       "500")
    assert code == 1 and "5 frames" in err


# --- the HTTP API -----------------------------------------------------------------------------


def test_http_api_takes_size_parameters_and_keeps_metadata(tmp_path):
    pytest.importorskip("gradio", reason="the web extra is not installed")
    httpx = pytest.importorskip("httpx")
    from _web_server import running_server

    from srlab import web

    buf = io.BytesIO()
    Image.fromarray(noise(10, 14)).save(buf, format="PNG")
    data = buf.getvalue()
    limits = web.Limits(max_upload_bytes=150_000, max_pixels=200 * 200, concurrency=1,
                        queue_size=2)
    with running_server(limits) as url, httpx.Client(base_url=url, timeout=120) as c:
        def post(**params):
            return c.post("/api/upscale", params=params,
                          files={"file": ("in.png", data, "image/png")})

        r = post(model="bicubic", scale=1.5)
        assert r.status_code == 200, r.text
        assert Image.open(io.BytesIO(r.content)).size == (21, 15)
        assert r.headers["X-Srlab-Ran"] == "bicubic x2 -> resize to 1.5x (21x15)"
        assert r.headers["X-Srlab-Output-Size"] == "21x15"
        r = post(model="span-real", scale=3)
        assert r.status_code == 200, r.text
        assert Image.open(io.BytesIO(r.content)).size == (42, 30)
        r = post(model="bicubic", fit="100x50")
        assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).size == (70, 50)
        r = post(model="bicubic", width=28)
        assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).size == (28, 20)
        r = post(model="bicubic", scale=2)  # a scale the model ships: no resize
        assert r.status_code == 200 and "X-Srlab-Ran" not in r.headers
        for bad in ({"scale": 0.5}, {"scale": "x"}, {"width": 0}, {"fit": "12"},
                    {"scale": 2, "width": 10}, {"fit": "5x5"}):
            r = post(model="bicubic", **bad)
            assert r.status_code == 400, (bad, r.text)
            assert r.json()["status"] == 400 and r.json()["error"]
        r = post(model="bicubic", fit="90000x90000")  # far above 16 x the server's limit
        assert r.status_code == 413 and "input limit" in r.json()["error"], r.text
        # metadata: kept by default, dropped with strip_metadata
        jpg = tmp_path / "cam.jpg"
        _photo_with_metadata(jpg)
        for strip in (False, True):
            r = c.post("/api/upscale", params={"model": "nearest", "scale": 2,
                                               "strip_metadata": str(strip).lower()},
                       files={"file": ("cam.jpg", jpg.read_bytes(), "image/jpeg")})
            assert r.status_code == 200, r.text
            with Image.open(io.BytesIO(r.content)) as im:
                assert im.size == (12, 16)
                assert (im.getexif().get(0x010F) == "SrlabCam") is not strip
                assert (b"srlab-test-creator" in _xmp_of(im)) is not strip


@pytest.mark.parametrize("fmt,ext", [("WEBP", ".webp"), ("PNG", ".png")])
def test_animated_webp_and_apng_stay_animated_in_their_format(tmp_path, capsys, fmt, ext):
    src = tmp_path / f"anim{ext}"
    durations = [50, 100, 150, 200, 250]
    frames = [Image.fromarray(noise(10, 12, seed=i)) for i in range(5)]
    frames[0].save(src, format=fmt, save_all=True, append_images=frames[1:],
                   duration=durations, loop=0)
    code, out, err = run(capsys, "upscale", src, "-m", "nearest", "-s", "2")
    assert code == 0, err
    target = tmp_path / f"anim_x2{ext}"
    with Image.open(target) as im:
        assert im.format == fmt and im.n_frames == 5
    sizes, got, loop = _frames(target)
    assert sizes == [(24, 20)] * 5 and got == durations and loop == 0


def test_gif_disposal_is_kept(tmp_path, capsys):
    src = tmp_path / "anim.gif"
    frames = [Image.fromarray(noise(10, 12, seed=i)).convert("P") for i in range(3)]
    frames[0].save(src, save_all=True, append_images=frames[1:], duration=[60, 70, 80],
                   loop=2, disposal=[1, 2, 3])
    assert run(capsys, "upscale", src, "-m", "nearest", "-s", "2")[0] == 0

    def disposal(path) -> list:
        with Image.open(path) as im:
            out = []
            for i in range(im.n_frames):
                im.seek(i)
                out.append(im.disposal_method)
            return out

    assert disposal(tmp_path / "anim_x2.gif") == disposal(src)
    assert _frames(tmp_path / "anim_x2.gif")[1:] == ([60, 70, 80], 2)

"""Image I/O: every file layout users bring, and every way a file can be bad."""

from __future__ import annotations

import io
import os
import stat
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps

from srlab.image.imageio import (
    DEFAULT_MAX_PIXELS,
    ImageError,
    LoadedImage,
    from_pil,
    load_image,
    save_image,
    to_pil,
)


@pytest.fixture(scope="module")
def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.fixture
def rgb(smooth_rgb) -> np.ndarray:
    return smooth_rgb[:20, :24]


def _rand16(rng, channels: int) -> np.ndarray:
    shape = (20, 24) if channels == 1 else (20, 24, channels)
    return rng.integers(0, 65536, shape).astype(np.uint16)


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + \
        struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


# ------------------------------------------------------------------ round trips, 8 bit


@pytest.mark.parametrize("ext", [".png", ".bmp", ".tif", ".tiff"])
def test_lossless_round_trip(tmp_path, rgb, ext):
    path = tmp_path / f"img{ext}"
    save_image(rgb, path)
    img = load_image(path)
    assert isinstance(img, LoadedImage)
    assert img.array.dtype == np.uint8 and img.array.shape == rgb.shape
    np.testing.assert_array_equal(img.array, rgb)
    assert img.source_format in ("PNG", "BMP", "TIFF")


@pytest.mark.parametrize("ext, fmt", [(".jpg", "JPEG"), (".jpeg", "JPEG"), (".webp", "WEBP")])
def test_lossy_round_trip(tmp_path, rgb, ext, fmt):
    path = tmp_path / f"img{ext}"
    save_image(rgb, path, quality=95)
    img = load_image(path)
    assert img.source_format == fmt and img.array.shape == rgb.shape
    assert np.abs(img.array.astype(int) - rgb).mean() < 8  # noise fixture: hard for codecs


def test_gif_first_frame(tmp_path, rgb):
    frames = [Image.fromarray(rgb).quantize(64), Image.new("RGB", (24, 20), "red").quantize(8)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    img = load_image(tmp_path / "a.gif")
    assert img.array.shape == (20, 24, 3) and img.source_format == "GIF"
    np.testing.assert_array_equal(img.array, np.asarray(frames[0].convert("RGB")))


# ------------------------------------------------------------------ 16 bit


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_round_trip_is_exact(tmp_path, rng, channels, ext):
    a = _rand16(rng, channels)
    path = tmp_path / f"deep{ext}"
    save_image(a, path)
    img = load_image(path)
    assert img.array.dtype == np.uint16 and img.bit_depth == 16
    if ext == ".tif" and channels == 2:  # gray+alpha TIFF is written as RGBA (Pillow limit)
        expected = np.concatenate([np.repeat(a[..., :1], 3, axis=2), a[..., 1:]], axis=2)
    else:
        expected = a
    np.testing.assert_array_equal(img.array, expected)


def test_16bit_png_agrees_with_opencv(tmp_path, rng):
    """An independent codec reads what we write, and we read what it writes."""
    cv2 = pytest.importorskip("cv2")
    a = _rand16(rng, 3)
    save_image(a, tmp_path / "ours.png")
    theirs = cv2.imread(str(tmp_path / "ours.png"), cv2.IMREAD_UNCHANGED)[..., ::-1]
    np.testing.assert_array_equal(theirs, a)
    cv2.imwrite(str(tmp_path / "cv.png"), np.ascontiguousarray(a[..., ::-1]))
    cv2.imwrite(str(tmp_path / "cv.tif"), np.ascontiguousarray(a[..., ::-1]))
    np.testing.assert_array_equal(load_image(tmp_path / "cv.png").array, a)
    np.testing.assert_array_equal(load_image(tmp_path / "cv.tif").array, a)


def test_16bit_gray_png_from_pillow(tmp_path, rng):
    a = _rand16(rng, 1)
    Image.fromarray(a).save(tmp_path / "g.png")  # Pillow writes I;16 as 16-bit gray
    img = load_image(tmp_path / "g.png")
    assert img.array.ndim == 2 and img.array.dtype == np.uint16
    np.testing.assert_array_equal(img.array, a)


@pytest.mark.parametrize("ext", [".jpg", ".webp", ".bmp"])
def test_16bit_to_8bit_formats(tmp_path, ext):
    a = np.full((8, 8, 3), 65535, np.uint16)
    a[:4] = 257 * 100
    save_image(a, tmp_path / f"x{ext}")
    out = load_image(tmp_path / f"x{ext}").array
    assert out.dtype == np.uint8
    assert abs(int(out[0, 0, 0]) - 100) <= 3 and out[-1, -1, 0] >= 250


# ------------------------------------------------------------------ modes


def test_grayscale_stays_single_channel(tmp_path, rgb):
    gray = rgb[..., 1]
    save_image(gray, tmp_path / "g.png")
    img = load_image(tmp_path / "g.png")
    assert img.array.shape == gray.shape and img.channels == 1
    np.testing.assert_array_equal(img.array, gray)


def test_alpha_kept(tmp_path, rgb):
    rgba = np.dstack([rgb, np.linspace(0, 255, 24, dtype=np.uint8)[None].repeat(20, 0)])
    save_image(rgba, tmp_path / "a.png")
    np.testing.assert_array_equal(load_image(tmp_path / "a.png").array, rgba)
    la = rgba[..., [0, 3]]
    save_image(la, tmp_path / "la.png")
    np.testing.assert_array_equal(load_image(tmp_path / "la.png").array, la)


def test_palette_without_and_with_transparency(tmp_path, rgb):
    pal = Image.fromarray(rgb).quantize(16)
    pal.save(tmp_path / "p.png")
    img = load_image(tmp_path / "p.png")
    assert img.array.shape == (20, 24, 3)
    np.testing.assert_array_equal(img.array, np.asarray(pal.convert("RGB")))

    idx = np.zeros((20, 24), np.uint8)
    idx[:, 12:] = 1
    p = Image.frombytes("P", (24, 20), idx.tobytes())
    p.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    p.save(tmp_path / "pt.png", transparency=0)
    img = load_image(tmp_path / "pt.png")
    assert img.array.shape == (20, 24, 4)
    assert (img.array[:, :12, 3] == 0).all() and (img.array[:, 12:, 3] == 255).all()
    np.testing.assert_array_equal(img.array[0, 20, :3], [0, 0, 255])


def test_one_bit_and_cmyk(tmp_path, rgb):
    Image.fromarray(rgb[..., 0] > 128).save(tmp_path / "bw.png")
    bw = load_image(tmp_path / "bw.png").array
    assert bw.dtype == np.uint8 and set(np.unique(bw)) <= {0, 255}
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    img = load_image(tmp_path / "cmyk.jpg")
    assert img.array.shape == (20, 24, 3) and "CMYK" in img.mode
    assert np.abs(img.array.astype(int) - rgb).mean() < 12


def test_exif_orientation_matches_pillow(tmp_path, rng):
    base = Image.fromarray(rng.integers(0, 255, (5, 7, 3)).astype(np.uint8))
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        path = tmp_path / f"o{orientation}.png"
        base.save(path, exif=exif)
        expected = np.asarray(ImageOps.exif_transpose(Image.open(path)))
        np.testing.assert_array_equal(load_image(path).array, expected, err_msg=str(orientation))


def test_exif_rotated_jpeg(tmp_path):
    a = np.zeros((20, 24, 3), np.uint8)
    a[:6, :6] = 255  # white block top-left of the stored pixels
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(a).save(tmp_path / "r.jpg", exif=exif, quality=95)
    img = load_image(tmp_path / "r.jpg").array
    assert img.shape == (24, 20, 3)
    assert img[:5, -5:].mean() > 200 and img[-5:, :5].mean() < 50  # now top-right


def test_icc_profile_loaded_and_saved(tmp_path, rgb, rng, srgb_icc):
    Image.fromarray(rgb).save(tmp_path / "in.png", icc_profile=srgb_icc)
    img = load_image(tmp_path / "in.png")
    assert img.icc_profile == srgb_icc
    for name, arr in [("o.png", rgb), ("o.jpg", rgb), ("o.webp", rgb), ("o.tif", rgb),
                      ("o16.png", _rand16(rng, 3)), ("o16.tif", _rand16(rng, 3))]:
        save_image(arr, tmp_path / name, icc_profile=srgb_icc)
        assert load_image(tmp_path / name).icc_profile == srgb_icc, name
    save_image(rgb, tmp_path / "plain.png")
    assert load_image(tmp_path / "plain.png").icc_profile is None


# ------------------------------------------------------------------ bad files


def test_pixel_limit_checked_from_header(tmp_path):
    """A 200-byte file claiming 100000 x 100000 pixels is refused without decoding."""
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + \
        _png_chunk(b"IDAT", zlib.compress(b"\0" * 100)) + _png_chunk(b"IEND", b"")
    (tmp_path / "bomb.png").write_bytes(data)
    pil_limit = Image.MAX_IMAGE_PIXELS
    with pytest.raises(ImageError) as err:
        load_image(tmp_path / "bomb.png")
    msg = str(err.value)
    assert "100000 x 100000 = 10,000,000,000 pixels" in msg
    assert f"limit of {DEFAULT_MAX_PIXELS:,}" in msg and "--max-pixels" in msg
    assert Image.MAX_IMAGE_PIXELS == pil_limit  # Pillow's global guard is restored


def test_pixel_limit_override(tmp_path, rgb):
    save_image(rgb, tmp_path / "a.png")
    with pytest.raises(ImageError, match="24 x 20 = 480 pixels, above the limit of 100"):
        load_image(tmp_path / "a.png", max_pixels=100)
    assert load_image(tmp_path / "a.png", max_pixels=480).array.shape == rgb.shape
    assert load_image(tmp_path / "a.png", max_pixels=None).array.shape == rgb.shape


def _bad_files(tmp_path: Path, rgb: np.ndarray) -> dict[str, Path]:
    files = {}
    for ext in ("png", "jpg", "bmp", "tif", "webp", "gif"):
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format={"jpg": "JPEG", "tif": "TIFF"}.get(ext, ext.upper()))
        data = buf.getvalue()
        files[f"truncated {ext}"] = tmp_path / f"trunc.{ext}"
        files[f"truncated {ext}"].write_bytes(data[: len(data) // 2])
    files["empty"] = tmp_path / "empty.png"
    files["empty"].write_bytes(b"")
    files["text"] = tmp_path / "notes.png"
    files["text"].write_text("not an image\n")
    files["missing"] = tmp_path / "missing.png"
    files["directory"] = tmp_path / "folder.png"
    files["directory"].mkdir()
    files["float"] = tmp_path / "float.tif"
    Image.fromarray(rgb[..., 0].astype(np.float32)).save(files["float"])
    files["psd-like"] = tmp_path / "x.psd"
    files["psd-like"].write_bytes(b"8BPS" + b"\0" * 40)
    return files


def test_every_bad_file_is_one_image_error(tmp_path, rgb):
    for what, path in _bad_files(tmp_path, rgb).items():
        with pytest.raises(ImageError) as err:
            load_image(path)
        msg = str(err.value)
        assert "\n" not in msg and str(path.name) in msg, (what, msg)
        assert type(err.value) is ImageError, what


def test_unsupported_mode_message(tmp_path, rgb):
    Image.fromarray(rgb[..., 0].astype(np.float32)).save(tmp_path / "f.tif")
    with pytest.raises(ImageError, match="32-bit float images are not supported"):
        load_image(tmp_path / "f.tif")


# ------------------------------------------------------------------ saving


def test_unknown_extension(tmp_path, rgb):
    for name in ("x.xyz", "noext", "x.gif"):
        with pytest.raises(ImageError, match="cannot tell the image format"):
            save_image(rgb, tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_save_is_atomic(tmp_path, rgb, monkeypatch):
    target = tmp_path / "out.png"
    save_image(rgb, target)
    before = target.read_bytes()

    def broken_save(self, fp, *args, **kwargs):
        Path(fp).write_bytes(b"half an image")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(ImageError, match="cannot write .*out.png: disk full"):
        save_image(rgb[::-1], target)
    with pytest.raises(ImageError):
        save_image(rgb, tmp_path / "new.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]  # no temp left over
    assert target.read_bytes() == before  # the old file is intact

    def interrupted(self, fp, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_image(rgb, tmp_path / "new.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_saved_file_has_normal_permissions(tmp_path, rgb):
    save_image(rgb, tmp_path / "p.png")
    mode = stat.S_IMODE(os.stat(tmp_path / "p.png").st_mode)
    assert mode & 0o044  # readable by others, not mkstemp's 0600


def test_save_into_missing_folder(tmp_path, rgb):
    with pytest.raises(ImageError, match="cannot write"):
        save_image(rgb, tmp_path / "nope" / "a.png")


def test_jpeg_flattens_alpha_over_white(tmp_path):
    rgba = np.zeros((16, 16, 4), np.uint8)
    save_image(rgba, tmp_path / "a.jpg")
    assert load_image(tmp_path / "a.jpg").array.min() >= 250


def test_bad_arrays(tmp_path):
    for arr in (np.zeros((4, 4, 5), np.uint8), np.zeros((0, 4), np.uint8),
                np.zeros((4, 4), np.int32), np.zeros(4, np.uint8)):
        with pytest.raises(ImageError):
            save_image(arr, tmp_path / "x.png")
    save_image(np.full((4, 4), 0.5), tmp_path / "f.png")  # floats in [0, 1] are fine
    assert load_image(tmp_path / "f.png").array[0, 0] == 128


# ------------------------------------------------------------------ PIL bridge


@pytest.mark.parametrize("mode, shape, dtype", [
    ("RGB", (20, 24, 3), np.uint8), ("RGBA", (20, 24, 4), np.uint8), ("L", (20, 24), np.uint8),
    ("LA", (20, 24, 2), np.uint8), ("P", (20, 24, 3), np.uint8), ("I;16", (20, 24), np.uint16),
    ("CMYK", (20, 24, 3), np.uint8), ("1", (20, 24), np.uint8),
])
def test_from_pil(rgb, mode, shape, dtype):
    im = Image.fromarray(rgb)
    im = im.convert("I;16") if mode == "I;16" else im.convert(mode)
    arr = from_pil(im)
    assert arr.shape == shape and arr.dtype == dtype


def test_to_pil_modes(rng):
    assert to_pil(np.zeros((4, 5), np.uint8)).mode == "L"
    assert to_pil(np.zeros((4, 5, 2), np.uint8)).mode == "LA"
    assert to_pil(np.zeros((4, 5, 3), np.uint8)).mode == "RGB"
    assert to_pil(np.zeros((4, 5, 4), np.uint8)).mode == "RGBA"
    assert to_pil(np.zeros((4, 5), np.uint16)).mode == "I;16"
    im = to_pil(np.full((4, 5, 3), 65535, np.uint16))  # no 16-bit colour in PIL: 8 bit
    assert im.mode == "RGB" and im.getpixel((0, 0)) == (255, 255, 255)
    assert to_pil(np.zeros((4, 5, 1), np.uint8)).size == (5, 4)


def test_upscaler_accepts_pil_images(rgb):
    from srlab import load_model

    up = load_model("nearest", 2)
    for mode in ("RGB", "L", "RGBA", "P"):
        out = up(Image.fromarray(rgb).convert(mode))
        assert isinstance(out, Image.Image) and out.size == (48, 40)
        assert out.mode == {"P": "RGB"}.get(mode, mode)
    out16 = up(Image.fromarray(rgb[..., 0].astype(np.uint16) * 257))
    assert out16.mode == "I;16" and out16.size == (48, 40)

"""Property-based tests: image I/O and upscaling over random sizes, modes and bit depths.

test_imageio.py pins down chosen examples; these let hypothesis pick sizes from 1 to 40 px
(1 x N images and odd sizes break resamplers and encoders more often than anything else),
every layout srlab reads (L, LA, RGB, RGBA, palette, Pillow's I;16) in 8 and 16 bit, and
pixel values including all-zero and all-max. Two properties:

* a lossless save (PNG, TIFF; BMP for 8 bit) followed by ``load_image`` gives back exactly
  the pixels (a palette comes back as its RGB/RGBA colours; BMP has no alpha, so transparent
  pixels come back white — the writer used to drop the alpha and show whatever colour hid
  under it);
* ``srlab upscale`` with the nearest model writes exactly scale x the size, with the same
  channels and bit depth, and every colour pixel repeated scale x scale times.

Examples are few (25) and there is no deadline: the machine is shared with training jobs.
No example database is written (the tree should not grow a .hypothesis folder).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from srlab.api import Upscaler, load_model
from srlab.batch import upscale_files
from srlab.image.imageio import load_image, save_image

MODES = ("L", "LA", "RGB", "RGBA", "P", "I;16")
CHANNELS = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}
SETTINGS = settings(max_examples=25, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@dataclass
class Sample:
    """One generated image: ``mode``, ``array`` in srlab's layout (the palette's colours for
    P), and, for P and I;16, the PIL image to write (srlab never writes those modes)."""

    mode: str
    array: np.ndarray
    pil: Image.Image | None = None

    def __repr__(self) -> str:  # what hypothesis prints for a failing example
        return f"Sample({self.mode}, {self.array.dtype}, shape={self.array.shape})"


@st.composite
def samples(draw: st.DrawFn) -> Sample:
    mode = draw(st.sampled_from(MODES))
    if mode == "P":
        dtype = np.uint8
    elif mode == "I;16":
        dtype = np.uint16
    else:
        dtype = draw(st.sampled_from([np.uint8, np.uint16]))
    h, w = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    fill = draw(st.sampled_from(["random", "zeros", "max", "ramp"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    top = int(np.iinfo(dtype).max)
    c = CHANNELS.get(mode, 1)
    shape = (h, w) if c == 1 else (h, w, c)
    if fill == "random":
        arr = rng.integers(0, top + 1, shape, dtype=np.int64)
    elif fill == "zeros":
        arr = np.zeros(shape, np.int64)
    elif fill == "max":
        arr = np.full(shape, top, np.int64)
    else:
        arr = (np.arange(h * w * c).reshape(shape) * 7919) % (top + 1)
    arr = arr.astype(dtype)
    if mode == "P":
        pil = Image.fromarray(arr, mode="L").convert("P")
        pil.putpalette(rng.integers(0, 256, 768, dtype=np.int64).astype(np.uint8).tobytes())
        if draw(st.booleans()):
            pil.info["transparency"] = int(arr.flat[0])
        colours = pil.convert("RGBA" if "transparency" in pil.info else "RGB")
        return Sample(mode, np.asarray(colours), pil)
    if mode == "I;16":
        return Sample(mode, arr, Image.fromarray(arr))
    return Sample(mode, arr)


def _write(sample: Sample, path: Path) -> None:
    if sample.pil is None:
        save_image(sample.array, path)
    else:
        kwargs = {}
        if "transparency" in sample.pil.info:
            kwargs["transparency"] = sample.pil.info["transparency"]
        sample.pil.save(path, **kwargs)


def _expected_after_save(sample: Sample, ext: str) -> np.ndarray:
    arr = sample.array
    if ext == ".tif" and arr.dtype == np.uint16 and arr.ndim == 3 and arr.shape[2] == 2:
        # Pillow cannot read 16-bit gray+alpha TIFF, so srlab writes it as RGBA
        return np.concatenate([np.repeat(arr[..., :1], 3, axis=2), arr[..., 1:]], axis=2)
    return arr


def _formats(sample: Sample) -> list[str]:
    if sample.pil is not None and "transparency" in sample.pil.info:
        return [".png"]  # Pillow's TIFF writer drops a palette's transparency
    exts = [".png", ".tif"]
    if sample.array.dtype == np.uint8 and sample.pil is None:
        exts.append(".bmp")
    return exts


@given(sample=samples())
@SETTINGS
def test_save_load_round_trip(sample: Sample, record_property) -> None:
    record_property("reliability", {"property_examples": 1, "property": "round_trip"})
    with tempfile.TemporaryDirectory() as tmp:
        for ext in _formats(sample):
            path = Path(tmp) / f"img{ext}"
            _write(sample, path)
            got = load_image(path).array
            if ext == ".bmp" and sample.array.ndim == 3 and sample.array.shape[2] in (2, 4):
                _check_bmp_flattened(sample.array, got)
                continue
            want = _expected_after_save(sample, ext)
            assert got.dtype == want.dtype and got.shape == want.shape, (ext, got.shape)
            np.testing.assert_array_equal(got, want, err_msg=ext)


def _check_bmp_flattened(src: np.ndarray, got: np.ndarray) -> None:
    """BMP holds no alpha: opaque pixels keep their colour, transparent ones become white."""
    colour, alpha = src[..., :-1], src[..., -1]
    assert got.shape == (src.shape[:2] if colour.shape[2] == 1 else colour.shape)
    got3 = got.reshape(*src.shape[:2], -1)
    np.testing.assert_array_equal(got3[alpha == 255], colour[alpha == 255])
    assert (got3[alpha == 0] == 255).all()


@cache
def _nearest(scale: int) -> Upscaler:
    return load_model("nearest", scale)


@given(sample=samples(), scale=st.sampled_from([2, 3, 4]))
@SETTINGS
def test_nearest_upscale_is_exactly_scale_times(sample: Sample, scale: int,
                                                 record_property) -> None:
    record_property("reliability", {"property_examples": 1, "property": "nearest_upscale"})
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.png", Path(tmp) / "out.png"
        _write(sample, src)
        result = upscale_files([src], output=dst, upscaler=_nearest(scale))
        assert result.ok, result.failed
        before, after = load_image(src), load_image(dst)
        h, w = before.array.shape[:2]
        assert after.array.shape[:2] == (scale * h, scale * w)
        assert after.channels == before.channels and after.array.dtype == before.array.dtype
        colour = before.array if before.channels in (1, 3) else before.array[..., :-1]
        out_colour = after.array if after.channels in (1, 3) else after.array[..., :-1]
        # nearest repeats every colour pixel; alpha is resampled separately (bicubic)
        np.testing.assert_array_equal(
            out_colour, np.repeat(np.repeat(colour, scale, axis=0), scale, axis=1))

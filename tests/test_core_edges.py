"""Edges of the core modules (metrics, resize, tiling) that mutation testing (``make mutate``,
mutmut) found untested: each test here kills mutants that survived the rest of the suite.
Tiny arrays only."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity
from test_metrics import _gmsd_by_the_matlab_recipe

from srlab.image.metrics import evaluate, gmsd, mae, mse, psnr, rgb_to_y, ssim
from srlab.image.resize import imresize, imresize_torch, resize_matrix
from srlab.image.tiling import from_float, tiled_apply, to_float

# --- metrics ------------------------------------------------------------------------------


@pytest.mark.parametrize(("rgb", "y"), [((255, 0, 0), 16 + 65.481), ((0, 255, 0), 16 + 128.553),
                                        ((0, 0, 255), 16 + 24.966)])
def test_y_weights_each_channel_by_bt601(rgb, y):
    assert rgb_to_y(np.array([[rgb]], np.uint8))[0, 0] == pytest.approx(y, abs=1e-12)


def _pair(seed: int = 0, h: int = 24, w: int = 22) -> tuple[np.ndarray, np.ndarray]:
    """Two RGB images whose Y and RGB errors differ (the error is mostly chroma)."""
    r = np.random.default_rng(seed)
    a = r.integers(40, 216, (h, w, 3)).astype(np.uint8)
    b = a.astype(np.int16) + r.integers(-30, 31, (h, w, 3))
    return a, np.clip(b, 0, 255).astype(np.uint8)


def test_a_one_pixel_crop_drops_exactly_the_outer_frame():
    a, _ = _pair()
    b = a.copy()
    b[0], b[-1], b[:, 0], b[:, -1] = 0, 0, 0, 0
    for y in (True, False):
        assert psnr(b, a, crop_border=1, y_channel=y) == float("inf")
        assert mse(b, a, crop_border=1, y_channel=y) == 0.0
        assert mae(b, a, crop_border=1, y_channel=y) == 0.0
        assert psnr(b, a, crop_border=0, y_channel=y) < 20


def test_mse_and_mae_default_to_every_rgb_value_uncropped():
    a, b = _pair()
    d = a.astype(np.float64) - b
    assert mse(a, b) == pytest.approx(np.mean(d**2), rel=1e-12)
    assert mae(a, b) == pytest.approx(np.mean(np.abs(d)), rel=1e-12)
    ya, yb = rgb_to_y(a), rgb_to_y(b)
    assert mse(a, b, y_channel=True) == pytest.approx(np.mean((ya - yb) ** 2), rel=1e-12)
    assert mae(a, b, y_channel=True) == pytest.approx(np.mean(np.abs(ya - yb)), rel=1e-12)
    assert abs(mse(a, b) - mse(a, b, y_channel=True)) > 1


def test_psnr_ssim_and_gmsd_default_to_y():
    a, b = _pair()
    assert psnr(a, b) == psnr(a, b, y_channel=True) != psnr(a, b, y_channel=False)
    assert ssim(a, b) == ssim(a, b, y_channel=True) != ssim(a, b, y_channel=False)
    assert gmsd(a, b) == pytest.approx(gmsd(rgb_to_y(a), rgb_to_y(b), y_channel=False),
                                       rel=1e-12)


@pytest.mark.parametrize("scale", [2, 4])
def test_evaluate_scores_every_metric_on_y_with_the_scale_border(scale):
    a, b = _pair(1)
    s = evaluate(a, b, scale=scale)
    kw = {"crop_border": scale, "y_channel": True}
    assert s.psnr == psnr(a, b, **kw) and s.ssim == ssim(a, b, **kw)
    assert s.mse == mse(a, b, **kw) and s.mae == mae(a, b, **kw) and s.gmsd == gmsd(a, b, **kw)
    rgb = {"crop_border": scale, "y_channel": False}  # the test can tell Y from RGB
    assert s.mse != mse(a, b, **rgb) and s.mae != mae(a, b, **rgb) and s.ssim != ssim(a, b, **rgb)


def test_ssim_constants_hold_on_dark_images():
    """Near black, C1 = (0.01 * 255)^2 dominates the luminance term; scikit-image agrees."""
    r = np.random.default_rng(3)
    a = r.uniform(0, 6, (30, 28))
    b = np.clip(a + r.normal(0, 1.5, a.shape), 0, None)
    ref = structural_similarity(a, b, gaussian_weights=True, sigma=1.5, data_range=255,
                                use_sample_covariance=False)
    assert ssim(a, b, y_channel=False) == pytest.approx(ref, abs=1e-9)


def test_ssim_takes_11x11_after_cropping_and_refuses_smaller():
    r = np.random.default_rng(4)
    a = r.uniform(0, 255, (13, 13))
    b = np.clip(a + r.normal(0, 10, a.shape), 0, 255)
    assert 0 < ssim(a, b, crop_border=1, y_channel=False) < 1  # 11x11 left: one window
    with pytest.raises(ValueError, match=r"got \(10, 10\)$"):
        ssim(a[:12, :12], b[:12, :12], crop_border=1, y_channel=False)
    rgb = np.zeros((12, 12, 3), np.uint8)
    with pytest.raises(ValueError, match=r"got \(10, 10\)$"):
        ssim(rgb, rgb, crop_border=1, y_channel=False)


@pytest.mark.parametrize(("h", "w"), [(24, 30), (23, 30), (24, 31)])
def test_gmsd_follows_the_matlab_recipe_at_even_and_odd_sizes(h, w):
    r = np.random.default_rng(h * w)
    ref = r.uniform(0, 255, (h, w))
    dist = np.clip(ref + r.normal(0, 20, ref.shape), 0, 255)
    assert gmsd(dist, ref, y_channel=False) == pytest.approx(
        _gmsd_by_the_matlab_recipe(ref, dist), rel=1e-12)


# --- resize -------------------------------------------------------------------------------


def _rand_u8(shape: tuple[int, ...], seed: int = 5) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape).astype(np.uint8)


@pytest.mark.parametrize("size", [(7, 20), (28, 5)])  # rows shrink, columns grow; and back
def test_imresize_to_a_size_resizes_each_axis_by_its_own_factor(size):
    img = _rand_u8((14, 10, 3)).astype(np.float64)
    oh, ow = size
    mh, mw = resize_matrix(14, oh, oh / 14), resize_matrix(10, ow, ow / 10)
    expected = np.einsum("ih,hwc,jw->ijc", mh, img, mw)
    np.testing.assert_allclose(imresize(img, 99.0, size=size), expected, atol=1e-9)
    t = torch.from_numpy(img / 255).permute(2, 0, 1)
    out = imresize_torch(t, 99.0, size=size).permute(1, 2, 0).numpy() * 255
    np.testing.assert_allclose(out, expected, atol=1e-9)


@pytest.mark.parametrize(("dtype", "out"), [(np.uint8, np.uint8), (np.float32, np.float32),
                                            (np.float64, np.float64), (np.uint16, np.float64),
                                            (np.int16, np.float64)])
def test_imresize_keeps_uint8_and_float_types_and_gives_float64_otherwise(dtype, out):
    img = _rand_u8((12, 10)).astype(dtype) * (3 if dtype in (np.uint16, np.int16) else 1)
    res = imresize(img, 0.5)
    assert res.dtype == out
    exact = np.einsum("ih,hw,jw->ij", resize_matrix(12, 6, 0.5), img.astype(np.float64),
                      resize_matrix(10, 5, 0.5))
    if out == np.uint8:
        np.testing.assert_array_equal(res, np.clip(np.round(exact), 0, 255))
    else:  # not rounded
        np.testing.assert_allclose(res, exact, rtol=1e-6 if dtype == np.float32 else 1e-12)
        assert not np.array_equal(res, np.round(res))


@pytest.mark.parametrize("scale", [0, -0.5, None])
def test_imresize_without_a_positive_scale_or_a_size_is_refused(scale):
    msg = r"^imresize needs a positive scale or an output size$"
    with pytest.raises(ValueError, match=msg):
        imresize(np.zeros((4, 4), np.uint8), scale)
    with pytest.raises(ValueError, match=msg):
        imresize_torch(torch.zeros(4, 4), scale)


def test_imresize_refuses_arrays_that_are_not_images():
    with pytest.raises(ValueError, match=r"expects HxW or HxWxC, got shape \(2, 2, 2, 2\)$"):
        imresize(np.zeros((2, 2, 2, 2)), 2)


@pytest.mark.parametrize("shape", [(13, 17), (3, 13, 17), (2, 3, 13, 17)])
@pytest.mark.parametrize("antialias", [True, False])
def test_imresize_torch_is_imresize_on_any_leading_dims(shape, antialias):
    x = torch.from_numpy(_rand_u8(shape).astype(np.float64) / 255)
    out = imresize_torch(x, 0.5, antialias=antialias)
    flat = x.reshape(-1, 13, 17).numpy()
    ref = np.stack([imresize(p, 0.5, antialias=antialias) for p in flat])
    np.testing.assert_allclose(out.reshape(ref.shape).numpy(), ref, atol=1e-12)
    if not antialias:  # the option reaches both axes: plain cubic differs from antialiased
        assert not np.allclose(ref, np.stack([imresize(p, 0.5) for p in flat]), atol=1e-3)


@pytest.mark.parametrize("scale", [0.5, 1 / 3, 0.25, 2, 3])
def test_imresize_torch_round_uint8_is_matlab_uint8_output(scale):
    img = _rand_u8((24, 26, 3))
    img[:, :12] = 255  # a saturated edge: the cubic overshoots above 1 and below 0
    img[:, 12:20] = 0
    t = torch.from_numpy(img.astype(np.float64) / 255).permute(2, 0, 1)
    raw = imresize_torch(t, scale)
    assert raw.max() > 1 and raw.min() < 0
    q = imresize_torch(t, scale, round_uint8=True).permute(1, 2, 0).numpy() * 255
    np.testing.assert_array_equal(np.round(q, 6), imresize(img, scale).astype(np.float64))


# --- tiling -------------------------------------------------------------------------------


@pytest.mark.parametrize(("dtype", "peak"), [(np.uint8, 255), (np.uint16, 65535)])
def test_to_float_and_from_float_use_the_dtype_peak(dtype, peak):
    arr = np.array([[[0, 1, peak]], [[peak // 2, 7, peak - 1]]], dtype=dtype)  # 2x1x3
    t = to_float(arr)
    assert t.shape == (1, 3, 2, 1) and t.dtype == torch.float32
    np.testing.assert_allclose(t[0].permute(1, 2, 0).numpy(), arr / peak, rtol=1e-6)
    back = from_float(t, np.dtype(dtype))
    assert back.dtype == dtype and np.array_equal(back, arr)


def test_from_float_rounds_clips_and_zeroes_nan():
    vals = torch.tensor([-0.3, 0.5 / 255, 1.5 / 255, 2.5 / 255, 100.4 / 255, 1.7, float("nan")])
    t = vals.view(1, 1, 1, -1)
    with warnings.catch_warnings():  # NaN is zeroed before the cast, which would warn
        warnings.simplefilter("error")
        assert from_float(t, np.dtype(np.uint8)).ravel().tolist() == [0, 0, 2, 2, 100, 255, 0]
    u16 = from_float(t, np.dtype(np.uint16)).ravel().tolist()
    assert u16[0] == 0 and u16[5] == 65535 and u16[6] == 0
    f = from_float(t, np.dtype(np.float32)).ravel()
    assert f.dtype == np.float32 and np.array_equal(f[:6], vals[:6].numpy())


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("tile", [0, 4, 100])
def test_tiled_apply_keeps_the_dtype_and_equals_one_pass(dtype, tile):
    peak = 1.0 if dtype == np.float32 else np.iinfo(dtype).max
    img = (np.random.default_rng(6).random((9, 7, 3)) * peak).astype(dtype)
    calls = []

    def fn(t: torch.Tensor) -> torch.Tensor:  # nearest x2, slightly darkened
        calls.append(t.shape)
        return 0.9 * t.repeat_interleave(2, -2).repeat_interleave(2, -1)

    out = tiled_apply(fn, img, scale=2, tile=tile, overlap=1)
    assert out.dtype == dtype and out.shape == (18, 14, 3)
    expected = from_float(fn(to_float(img)), np.dtype(dtype))
    np.testing.assert_array_equal(out, expected)
    assert len(calls) == (1 if tile in (0, 100) else 3 * 2) + 1


def test_tiled_apply_defaults_to_one_pass_without_overlap_and_takes_one_pixel_tiles():
    img = np.random.default_rng(7).random((5, 6, 3), dtype=np.float32)
    calls: list = []

    def fn(t: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(t.shape[-2:]))
        return t.repeat_interleave(2, -2).repeat_interleave(2, -1)

    whole = tiled_apply(fn, img, scale=2)
    assert calls == [(5, 6)]
    calls.clear()
    np.testing.assert_array_equal(tiled_apply(fn, img, scale=2, tile=3), whole)
    assert calls == [(3, 3), (3, 3), (2, 3), (2, 3)]  # no overlap unless asked
    calls.clear()
    np.testing.assert_array_equal(tiled_apply(fn, img, scale=2, tile=1), whole)
    assert calls == [(1, 1)] * 30

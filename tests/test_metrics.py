"""Metrics against scikit-image (an independent implementation) and by hand."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from srlab.image.metrics import evaluate, mae, mse, psnr, rgb_to_y, ssim


@pytest.fixture
def pair(smooth_rgb, rng):
    noisy = np.clip(smooth_rgb + rng.normal(0, 6, smooth_rgb.shape), 0, 255).astype(np.uint8)
    return smooth_rgb, noisy


def test_y_channel_is_bt601_studio_range():
    white = np.full((1, 1, 3), 255, np.uint8)
    black = np.zeros((1, 1, 3), np.uint8)
    assert rgb_to_y(white)[0, 0] == pytest.approx(235.0)
    assert rgb_to_y(black)[0, 0] == pytest.approx(16.0)


def test_psnr_matches_skimage_on_y_and_rgb(pair):
    a, b = pair
    ya, yb = rgb_to_y(a)[3:-3, 3:-3], rgb_to_y(b)[3:-3, 3:-3]
    assert psnr(a, b, crop_border=3) == pytest.approx(
        peak_signal_noise_ratio(ya, yb, data_range=255), abs=1e-9)
    assert psnr(a, b, y_channel=False) == pytest.approx(
        peak_signal_noise_ratio(a, b, data_range=255), abs=1e-9)


def test_ssim_matches_skimage_gaussian_window(pair):
    a, b = pair
    ya, yb = rgb_to_y(a)[2:-2, 2:-2], rgb_to_y(b)[2:-2, 2:-2]
    ref = structural_similarity(ya, yb, gaussian_weights=True, sigma=1.5,
                                use_sample_covariance=False, data_range=255)
    assert ssim(a, b, crop_border=2) == pytest.approx(ref, abs=1e-6)
    ref_rgb = structural_similarity(a, b, gaussian_weights=True, sigma=1.5, channel_axis=2,
                                    use_sample_covariance=False, data_range=255)
    assert ssim(a, b, y_channel=False) == pytest.approx(ref_rgb, abs=1e-6)


def test_mse_mae_by_hand():
    a = np.zeros((4, 4), np.uint8)
    b = np.full((4, 4), 3, np.uint8)
    assert mse(a, b) == 9.0 and mae(a, b) == 3.0
    assert psnr(a, a) == float("inf")
    assert psnr(a, b, y_channel=False) == pytest.approx(10 * np.log10(255**2 / 9))


def test_identical_images_score_perfect(smooth_rgb):
    s = evaluate(smooth_rgb, smooth_rgb, scale=2)
    assert s.ssim == pytest.approx(1.0) and s.mse == 0.0 and s.mae == 0.0


def test_shape_mismatch_and_tiny_images_raise(smooth_rgb):
    with pytest.raises(ValueError, match="differ in shape"):
        psnr(smooth_rgb, smooth_rgb[:-1])
    with pytest.raises(ValueError, match="11x11"):
        ssim(smooth_rgb[:12, :12], smooth_rgb[:12, :12], crop_border=2)


def _conv2_same(img, k):
    """MATLAB conv2(img, k, 'same') by definition: full 2-D convolution, centre part."""
    kh, kw = k.shape
    h, w = img.shape
    full = np.zeros((h + kh - 1, w + kw - 1))
    for i in range(kh):
        for j in range(kw):
            full[i:i + h, j:j + w] += k[i, j] * img
    r0, c0 = kh // 2, kw // 2  # MATLAB: rows floor(kh/2)+1 .. in 1-based
    return full[r0:r0 + h, c0:c0 + w]


def _gmsd_by_the_matlab_recipe(ref, dist):
    dx = np.array([[1, 0, -1]] * 3) / 3
    ave = np.ones((2, 2)) / 4
    maps = []
    for y in (ref, dist):
        y = _conv2_same(y, ave)[::2, ::2]
        maps.append(np.sqrt(_conv2_same(y, dx) ** 2 + _conv2_same(y, dx.T) ** 2))
    q = (2 * maps[0] * maps[1] + 170) / (maps[0] ** 2 + maps[1] ** 2 + 170)
    return np.std(q, ddof=1)


def test_gmsd_matches_the_authors_matlab_recipe_and_ranks_sensibly(rng):
    from srlab.image.metrics import gmsd

    ref = rng.uniform(0, 255, (23, 30))
    dist = np.clip(ref + rng.normal(0, 20, ref.shape), 0, 255)
    assert gmsd(dist, ref, y_channel=False) == pytest.approx(
        _gmsd_by_the_matlab_recipe(ref, dist), rel=1e-12)
    assert gmsd(ref, ref, y_channel=False) == 0.0
    worse = np.clip(ref + rng.normal(0, 60, ref.shape), 0, 255)
    assert gmsd(worse, ref, y_channel=False) > gmsd(dist, ref, y_channel=False)

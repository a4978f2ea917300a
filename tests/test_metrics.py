"""Metrics against scikit-image (an independent implementation) and by hand."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from srlab.metrics import evaluate, mae, mse, psnr, rgb_to_y, ssim


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

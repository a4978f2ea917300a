"""MATLAB-exact bicubic: kernel weights, edge handling, numpy/torch agreement, published figures."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import BENCH, needs_shared

from srlab.image.resize import imresize, imresize_torch, modcrop, resize_matrix


def _cubic(x: float) -> float:  # written out independently of srlab.image.resize
    x = abs(x)
    if x <= 1:
        return 1.5 * x**3 - 2.5 * x**2 + 1
    if x <= 2:
        return -0.5 * x**3 + 2.5 * x**2 - 4 * x + 2
    return 0.0


def test_downscale_x2_interior_weights_are_antialiased_cubic():
    mat = resize_matrix(40, 20, 0.5)
    row = mat[10]  # output 10 is centred between inputs 20 and 21 (0-based)
    dists = np.arange(40) - 20.5
    expected = np.array([0.5 * _cubic(0.5 * d) for d in dists])
    np.testing.assert_allclose(row, expected / expected.sum(), atol=1e-12)


def test_upscale_x2_interior_weights_are_plain_cubic():
    mat = resize_matrix(10, 20, 2.0)
    row = mat[9]  # centre at input coordinate 4.25 (0-based)
    expected = np.array([_cubic(4.25 - j) for j in range(10)])
    np.testing.assert_allclose(row, expected / expected.sum(), atol=1e-12)


def test_symmetric_padding_folds_weights_at_the_edge():
    mat = resize_matrix(8, 16, 2.0)
    # MATLAB mirrors index -1 onto 0 (symmetric, edge repeated): weights stay normalised
    np.testing.assert_allclose(mat.sum(axis=1), 1.0, atol=1e-12)
    # output 0 sits at input coordinate -0.25: taps -2, -1 mirror onto 1, 0
    assert mat[0, 0] == pytest.approx(_cubic(0.25) + _cubic(0.75))
    assert mat[0, 1] == pytest.approx(_cubic(1.25) + _cubic(1.75))
    assert mat[0, 2:].sum() == 0


def test_constant_image_stays_constant_and_uint8_rounds(smooth_rgb):
    flat = np.full((17, 13, 3), 77, np.uint8)
    for s in (0.25, 1 / 3, 0.5, 2, 3, 4):
        out = imresize(flat, s)
        assert out.dtype == np.uint8 and (out == 77).all()
    out = imresize(smooth_rgb, 0.5)
    assert out.shape == (20, 18, 3) and out.dtype == np.uint8


def test_numpy_and_torch_agree(smooth_rgb):
    x = smooth_rgb.astype(np.float64) / 255
    t = torch.from_numpy(x).permute(2, 0, 1)[None]
    for s in (0.25, 0.5, 2, 3):
        a = imresize(x, s)
        b = imresize_torch(t, s)[0].permute(1, 2, 0).numpy()
        np.testing.assert_allclose(a, b, atol=1e-9)
    q = imresize_torch(t.float(), 0.5, round_uint8=True)
    ref = imresize(smooth_rgb, 0.5).astype(np.float32) / 255
    np.testing.assert_allclose(q[0].permute(1, 2, 0).numpy(), ref, atol=1 / 255 + 1e-6)


def test_modcrop():
    assert modcrop(np.zeros((13, 10, 3)), 4).shape == (12, 8, 3)


@needs_shared()
@pytest.mark.parametrize("scale,expected", [(2, 33.66), (3, 30.39), (4, 28.42)])
def test_bicubic_matches_published_set5(scale, expected):
    from srlab.image.datasets import load_hr
    from srlab.image.metrics import psnr

    vals = []
    for f in sorted((BENCH / "Set5").glob("*.png")):
        hr = modcrop(load_hr(f), scale)
        vals.append(psnr(imresize(imresize(hr, 1 / scale), scale), hr, crop_border=scale))
    assert abs(np.mean(vals) - expected) <= 0.05

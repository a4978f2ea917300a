"""tools/ab_stats.py: the colour and contrast numbers read beside a blind A/B."""

from __future__ import annotations

import numpy as np
from conftest import load_tool

from srlab.image.metrics import psnr, ycbcr_psnr


def test_ycbcr_psnr_separates_luma_from_colour_and_agrees_with_the_protocol():
    rng = np.random.default_rng(0)
    ref = rng.integers(40, 200, (24, 20, 3)).astype(np.uint8)
    gray_shift = (ref.astype(int) + 6).astype(np.uint8)  # equal in R, G, B: luma only
    y, cb, cr = ycbcr_psnr(gray_shift, ref, crop_border=4)
    assert abs(y - psnr(gray_shift, ref, crop_border=4)) < 1e-9  # the protocol's Y PSNR
    assert cb > 100 and cr > 100  # colour untouched
    tinted = ref.copy()
    tinted[..., 2] = np.clip(ref[..., 2].astype(int) + 12, 0, 255)  # bluer
    y2, cb2, cr2 = ycbcr_psnr(tinted, ref, crop_border=4)
    assert cb2 < y2 and cb2 < 40


def test_contrast_rises_with_texture():
    tool = load_tool("ab_stats")
    flat = np.full((32, 32, 3), 128, np.uint8)
    stripes = flat.copy()
    stripes[:, ::2] = 160
    assert max(tool.contrast(flat)) < 1e-9
    std, hp = tool.contrast(stripes)
    assert std > 10 and hp > 10

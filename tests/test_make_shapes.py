"""tools/make_shapes.py: the synthetic clean-edge training images are seeded, flat where
they are flat, and sharp at their edges (no staircase, no blur)."""

from __future__ import annotations

import numpy as np
from conftest import load_tool


def test_same_seed_same_image_other_seed_other_image():
    tool = load_tool("make_shapes")
    a = tool.shapes_image(np.random.default_rng([0, 1]), 96)
    b = tool.shapes_image(np.random.default_rng([0, 1]), 96)
    c = tool.shapes_image(np.random.default_rng([0, 2]), 96)
    assert a.shape == (96, 96, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_flat_areas_and_one_pixel_edges():
    tool = load_tool("make_shapes")
    img = tool.shapes_image(np.random.default_rng([0, 3]), 128).astype(int)
    step = np.abs(np.diff(img, axis=1)).max(axis=2)
    assert (step <= 2).mean() > 0.45  # flat colour or a smooth gradient
    assert (step > 60).mean() > 0.05  # colour changes in a pixel: no blur over the edges
    # the same image blurred loses those jumps: the check above can fail
    blurred = (img[:, :-2] + img[:, 1:-1] + img[:, 2:]) / 3
    assert (np.abs(np.diff(blurred, axis=1)).max(axis=2) > 60).mean() < 0.5 * (step > 60).mean()

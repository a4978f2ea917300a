"""Shared test fixtures. Tests use tiny images and tiny models; ../shared is optional."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

SHARED = Path(os.environ.get("SRLAB_SHARED", Path(__file__).resolve().parents[1] / ".." / "shared"))
BENCH = SHARED / "datasets" / "benchmark"

torch.set_num_threads(1)  # tests run beside training jobs; many tiny ops gain nothing from 2


def load_tool(name: str):
    """A script of tools/ as a module, so its functions can be tested (tools are not a package)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "tools" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"srlab_tool_{name}", path)
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = tool  # dataclasses look their module up there
    spec.loader.exec_module(tool)
    return tool


def registry_cases() -> list:
    """One pytest param per registered model and scale it ships at (id ``name-xS``): the
    tests that must hold for the whole registry run over these."""
    from srlab.zoo.registry import MODELS

    return [pytest.param(name, s, id=f"{name}-x{s}")
            for name, spec in MODELS.items() for s in spec.scales]


def needs_shared(sub: str = "datasets/benchmark/Set5"):
    return pytest.mark.skipif(not (SHARED / sub).is_dir(),
                              reason=f"{SHARED / sub} not found (set SRLAB_SHARED)")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def smooth_rgb(rng) -> np.ndarray:
    """A 40x36 uint8 RGB image with structure (gradients + noise), not pure noise."""
    y, x = np.mgrid[0:40, 0:36]
    base = np.stack([x * 6, y * 5, (x + y) * 3], axis=-1).astype(np.float64)
    return np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)


def synthetic_image(seed: int, h: int = 64, w: int = 64) -> np.ndarray:
    """A textured, structured uint8 RGB image (stripes, blobs, an edge) — learnable, not noise."""
    r = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    f1, f2 = r.uniform(0.1, 0.6, 2)
    img = np.stack([
        128 + 90 * np.sin(f1 * x + r.uniform(0, 6)),
        128 + 90 * np.cos(f2 * y + r.uniform(0, 6)),
        255 * ((x + r.uniform(-20, 20)) > y),
    ], axis=-1)
    img += r.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture
def image_folder(tmp_path) -> Path:
    """Six synthetic 64x64 PNG training images."""
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(6):
        Image.fromarray(synthetic_image(i)).save(folder / f"img{i}.png")
    return folder


@pytest.fixture
def hr_folder(tmp_path: Path) -> Path:
    """Two small synthetic HR images: a benchmark folder for the peer tests."""
    folder = tmp_path / "hr"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(synthetic_image(i, 24, 20)).save(folder / f"{i}.png")
    return folder


def smooth_images(folder: Path, n: int, seed: int, size: int = 64) -> Path:
    """Smooth gradients + sinusoidal texture + a little noise: learnable, not pure noise."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    for i in range(n):
        f = rng.uniform(0.1, 0.5, 3)
        base = np.stack([x * 2 + 60 * np.sin(f[0] * x + i),
                         y * 2 + 60 * np.sin(f[1] * y),
                         (x + y) + 50 * np.sin(f[2] * (x + y))], axis=-1) + 60
        img = np.clip(base + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"img{i}.png")
    return folder


@pytest.fixture
def srv():
    """The web demo's server state with small limits (web tests)."""
    from srlab.web import state

    return state.ServerState(state.Limits(max_pixels=300 * 300, max_upload_bytes=400_000))


def save_png(path: Path, arr: np.ndarray) -> str:
    """``arr`` written as a PNG at ``path``; the path as the demo's file inputs give it."""
    from PIL import Image

    Image.fromarray(arr).save(path)
    return str(path)

"""Geometric self-ensemble: the 8 transforms, exact equivariance, and its CLI faces."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from conftest import synthetic_image
from PIL import Image
from torch import nn

from srlab.api import load_model
from srlab.cli import main
from srlab.runtime.ensemble import SelfEnsemble, dihedral, undo_dihedral


def test_the_8_transforms_are_distinct_and_undone_exactly():
    x = torch.arange(2 * 3 * 5, dtype=torch.float32).view(1, 2, 3, 5)  # not square
    seen = []
    for k in range(8):
        y = dihedral(x, k)
        assert torch.equal(undo_dihedral(y, k), x)
        seen.append(y.flatten().tolist() + list(y.shape))
    assert len({tuple(s) for s in seen}) == 8


def _lopsided_net(scale: int = 2) -> nn.Module:
    """A conv with an asymmetric kernel, then nearest upsampling: not flip/rotation
    equivariant, so its ensemble differs from it."""
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[[0.0, 0.0, 0.0], [0.0, 0.5, 1.0], [0.0, 0.0, 0.2]]]]))
    return nn.Sequential(conv, nn.Upsample(scale_factor=scale, mode="nearest"))


@pytest.mark.parametrize("k", range(8))
def test_the_ensemble_is_exactly_equivariant_though_its_network_is_not(k):
    net = _lopsided_net()
    ens = SelfEnsemble(net)
    x = torch.rand(1, 1, 6, 9)
    with torch.no_grad():
        if k:
            assert not torch.allclose(net(dihedral(x, k)), dihedral(net(x), k), atol=1e-3)
        assert torch.allclose(ens(dihedral(x, k)), dihedral(ens(x), k), atol=1e-6)


def test_an_equivariant_network_is_left_unchanged():
    net = nn.Upsample(scale_factor=3, mode="nearest")
    x = torch.rand(1, 3, 5, 7)
    assert torch.allclose(SelfEnsemble(net)(x), net(x), atol=1e-6)


def test_upscaler_self_ensembled_keeps_shape_channels_and_dtype():
    up = load_model("span-fast", 2)
    ens = up.self_ensembled()
    assert (ens.in_channels, ens.receptive_field, ens.params) == (up.in_channels,
                                                                   up.receptive_field, up.params)
    img = synthetic_image(3, 20, 28)
    a, b = up(img), ens(img)
    assert a.shape == b.shape == (40, 56, 3) and b.dtype == np.uint8
    assert np.abs(a.astype(int) - b.astype(int)).max() > 0  # it did something


def test_cli_upscale_with_self_ensemble_writes_the_image(tmp_path):
    src = tmp_path / "in.png"
    Image.fromarray(synthetic_image(1, 16, 20)).save(src)
    out = tmp_path / "out.png"
    assert main(["upscale", str(src), "-o", str(out), "-s", "2", "--model", "bicubic",
                 "--self-ensemble", "-q"]) == 0
    with Image.open(out) as im:
        assert im.size == (40, 32)


def test_benchmark_plus_suffix_adds_a_row_scored_with_the_ensemble(tmp_path):
    folder = tmp_path / "hr"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(synthetic_image(i, 40, 36)).save(folder / f"{i}.png")
    assert main(["benchmark", "-m", "span-fast", "-m", "span-fast+", "-m", "bicubic-matlab+",
                 "-s", "2", "-d", str(folder), "-o", str(tmp_path / "o"), "--no-cache"]) == 0
    rows = {r["model"]: float(r["psnr"]) for r in csv.DictReader(open(tmp_path / "o" /
                                                                      "benchmark.csv"))}
    assert set(rows) == {"span-fast", "span-fast+", "bicubic-matlab+"}
    assert rows["span-fast+"] != rows["span-fast"]
    assert main(["benchmark", "-m", "no-such+", "-d", str(folder)]) == 2

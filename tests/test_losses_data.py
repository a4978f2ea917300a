"""Losses, degradations and patch sampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from srlab.image.degrade import LEVELS, degrade
from srlab.image.metrics import ssim
from srlab.train.data import BatchSampler, ImageSet
from srlab.train.losses import LOSSES, build_loss, ssim_torch


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_loss_is_finite_differentiable_and_zero_error_is_its_minimum(name):
    torch.manual_seed(0)
    hr = torch.rand(2, 3, 24, 24)
    sr = (hr + 0.1 * torch.randn_like(hr)).clamp(0, 1).requires_grad_(True)
    loss = build_loss({name: 1.0})
    value = loss(sr, hr)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(sr.grad).all()
    better = loss((hr + 0.01 * torch.randn_like(hr)).clamp(0, 1), hr)
    assert better < value


def test_ssim_torch_matches_the_metric():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (32, 30)).astype(np.float64)
    b = np.clip(a + rng.normal(0, 20, a.shape), 0, 255)
    t = lambda x: torch.from_numpy(x / 255)[None, None]  # noqa: E731
    assert float(ssim_torch(t(a), t(b))) == pytest.approx(ssim(a, b), abs=1e-6)


def test_vgg_loss_needs_a_local_file_unless_random_is_allowed():
    with pytest.raises(ValueError, match="vgg_weights"):
        build_loss({"vgg": 1.0})
    loss = build_loss({"l1": 1.0, "vgg": 0.1}, allow_random_vgg=True)
    x = torch.rand(1, 3, 16, 16)
    assert float(loss(x, x)) == 0.0
    with pytest.raises(ValueError, match="unknown loss"):
        build_loss({"l3": 1.0})


def test_degradation_levels_are_graded(smooth_rgb):
    hr = np.tile(smooth_rgb, (2, 2, 1))  # 80 x 72
    rng = np.random.default_rng(0)
    clean = degrade(hr, 4, LEVELS["clean"], rng)
    moderate = degrade(hr, 4, LEVELS["moderate"], rng)
    severe = degrade(hr, 4, LEVELS["severe"], rng)
    assert clean.shape == moderate.shape == severe.shape == (20, 18, 3)
    assert clean.dtype == severe.dtype == np.uint8
    err = [np.abs(x.astype(float) - clean).mean() for x in (moderate, severe)]
    assert 0 < err[0] and 0 < err[1]


def test_batches_are_a_pure_function_of_the_iteration(image_folder):
    data = ImageSet.from_folders([image_folder], scale=2, degradation="severe")
    a = BatchSampler(data, patch=8, batch=3, seed=5, rotate_deg=30, prefetch=True)
    b = BatchSampler(data, patch=8, batch=3, seed=5, rotate_deg=30, prefetch=False)
    for it in (0, 1, 7):
        (la, ha), (lb, hb) = a.get(it), b.get(it)
        assert torch.equal(la, lb) and torch.equal(ha, hb)
        assert la.shape == (3, 3, 8, 8) and ha.shape == (3, 3, 16, 16)
    assert not torch.equal(a.get(2)[0], a.get(3)[0])
    a.close()


def test_rescale_adds_smaller_copies_of_each_image(image_folder):
    from srlab.image.datasets import load_rgb
    from srlab.image.resize import imresize, modcrop

    plain = ImageSet.from_folders([image_folder], scale=2)
    pyramid = ImageSet.from_folders([image_folder], scale=2, rescale=(1.0, 0.75, 0.5),
                                    min_lr_size=12)
    assert len(plain) == 6 and len(pyramid) == 18
    src = load_rgb(sorted(image_folder.iterdir())[0])
    sizes = []
    for i in range(3):  # the first image's three levels
        hr, lr = pyramid.images(i)
        sizes.append(hr.shape[:2])
        want = modcrop(imresize(src, (1.0, 0.75, 0.5)[i]) if i else src, 2)
        np.testing.assert_array_equal(hr, want)
        np.testing.assert_array_equal(lr, imresize(hr, 0.5))  # LR made from the smaller HR
    assert sizes == [(64, 64), (48, 48), (32, 32)]
    # a level smaller than a patch is dropped, not cropped out of bounds
    tight = ImageSet.from_folders([image_folder], scale=2, rescale=(1.0, 0.5), min_lr_size=20)
    assert len(tight) == 6
    sampler = BatchSampler(pyramid, patch=12, batch=4, seed=0, prefetch=False)
    lr, hr = sampler.get(3)
    assert lr.shape == (4, 3, 12, 12) and hr.shape == (4, 3, 24, 24)


def test_phases_sample_other_lr_grids_and_keep_pairs_aligned(image_folder):
    from srlab.image.resize import imresize, modcrop

    data = ImageSet.from_folders([image_folder], scale=4, min_lr_size=8)
    hr, lr = data.images(0)
    shifted = data.shifted_lr(0, 1, 3)
    np.testing.assert_array_equal(shifted, imresize(modcrop(hr[1:, 3:], 4), 0.25))
    assert shifted.shape == (15, 15, 3) and not np.array_equal(shifted, lr[:15, :15])
    assert data.shifted_lr(0, 0, 0) is lr and data.shifted_lr(0, 1, 3) is shifted  # cached

    seen = []
    original = data.shifted_lr
    data.shifted_lr = lambda i, dy, dx: seen.append((dy, dx)) or original(i, dy, dx)
    sampler = BatchSampler(data, patch=8, batch=4, seed=1, augment=False, phases=True,
                           prefetch=False)
    for it in range(6):
        lrs, hrs = sampler.get(it)
        for lr_p, hr_p in zip(lrs, hrs, strict=True):
            lr_u8 = (lr_p.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            hr_u8 = (hr_p.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            remade = imresize(hr_u8, 0.25)  # the LR patch is this HR patch's LR, away from
            inner = np.s_[2:-2, 2:-2]       # the patch border the kernel reaches across
            assert np.abs(remade[inner].astype(int) - lr_u8[inner]).max() <= 1
    assert len(set(seen)) > 4  # many of the 16 grids, not only (0, 0)
    plain = BatchSampler(data, patch=8, batch=4, seed=1, augment=False, prefetch=False)
    assert not torch.equal(plain.get(0)[0], sampler.get(0)[0])


@pytest.mark.parametrize("factors", [(), (1.0, 1.5), (0.0,), (-0.5,)])
def test_rescale_factors_outside_0_1_are_refused(image_folder, factors):
    with pytest.raises(ValueError, match="rescale"):
        ImageSet.from_folders([image_folder], scale=2, rescale=factors)


def test_candidates_keep_the_most_detailed_of_their_draws(tmp_path):
    from PIL import Image

    from srlab.train.data import _detail

    # half flat grey, half random texture: uniform positions land on both halves
    rng = np.random.default_rng(0)
    img = np.full((64, 128, 3), 128, np.uint8)
    img[:, 64:] = rng.integers(0, 256, (64, 64, 3))
    folder = tmp_path / "half"
    folder.mkdir()
    Image.fromarray(img).save(folder / "half.png")
    data = ImageSet.from_folders([folder], scale=2)

    uniform = BatchSampler(data, patch=8, batch=32, seed=3, augment=False, prefetch=False)
    picky = BatchSampler(data, patch=8, batch=32, seed=3, augment=False, candidates=3,
                         prefetch=False)
    draws: list[float] = []
    one = picky._one_patch

    def recorded(i, g):
        pair = one(i, g)
        draws.append(_detail(pair[1], 2))
        return pair

    picky._one_patch = recorded
    _, hrs = picky.get(0)
    assert len(draws) == 3 * 32
    for hr_p, trio in zip(hrs, np.reshape(draws, (32, 3)), strict=True):
        hr_u8 = (hr_p.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        assert _detail(hr_u8, 2) == pytest.approx(max(trio))

    def mean_detail(sampler):
        return np.mean([_detail((h.permute(1, 2, 0).numpy() * 255), 2) for h in sampler.get(1)[1]])

    assert mean_detail(picky) > 1.5 * mean_detail(uniform)
    with pytest.raises(ValueError, match="candidates"):
        BatchSampler(data, patch=8, batch=4, seed=0, candidates=0)

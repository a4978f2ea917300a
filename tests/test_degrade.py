"""The realistic degradation level and the seeded benchmark tracks."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import synthetic_image

from srlab.image.degrade import LEVELS, TRACKS, RealDegradation, degrade, track_lr
from srlab.image.metrics import psnr
from srlab.image.resize import imresize
from srlab.train.data import ImageSet


@pytest.fixture
def hr() -> np.ndarray:
    return synthetic_image(3, 96, 96)


@pytest.mark.parametrize("scale", [2, 4])
def test_real_level_gives_uint8_lr_of_the_protocol_size(hr, scale):
    rng = np.random.default_rng(0)
    for _ in range(30):  # every branch (two-stage, one-pass, clean) is drawn in 30 samples
        lr = degrade(hr, scale, LEVELS["real"], rng)
        assert lr.dtype == np.uint8 and lr.shape == imresize(hr, 1 / scale).shape


def test_real_level_is_seeded_and_varies_per_sample(hr):
    a = degrade(hr, 4, LEVELS["real"], np.random.default_rng([1, 2]))
    b = degrade(hr, 4, LEVELS["real"], np.random.default_rng([1, 2]))
    assert np.array_equal(a, b)
    draws = [degrade(hr, 4, LEVELS["real"], np.random.default_rng(s)) for s in range(8)]
    assert len({d.tobytes() for d in draws}) >= 6  # a few draws may be plain bicubic


def test_real_level_damages_more_than_clean_on_average(hr):
    clean = imresize(hr, 1 / 4)
    rng = np.random.default_rng(0)
    errs = [np.abs(degrade(hr, 4, LEVELS["real"], rng).astype(float) - clean).mean()
            for _ in range(20)]
    assert np.mean(errs) > 3.0  # 0..255 units; a no-op chain would give 0


def test_only_clean_branch_is_the_protocol(hr):
    only_clean = RealDegradation(high_order_prob=0.0, simple_prob=0.0)
    assert np.array_equal(degrade(hr, 4, only_clean, np.random.default_rng(0)),
                          imresize(hr, 1 / 4))


def test_tracks_are_graded_by_jpeg_quality(hr):
    clean = imresize(hr, 1 / 2)
    score = {t: psnr(track_lr(hr, 2, t, "a.png"), clean)
             for t in ("jpeg90", "jpeg75", "jpeg50")}
    assert score["jpeg90"] > score["jpeg75"] > score["jpeg50"]


@pytest.mark.parametrize("track", list(TRACKS))
def test_track_is_a_pure_function_of_image_name(hr, track):
    a, b = track_lr(hr, 4, track, "x.png"), track_lr(hr, 4, track, "x.png")
    assert np.array_equal(a, b) and a.shape == imresize(hr, 1 / 4).shape
    if track in ("noise10", "real"):  # the random tracks draw per image name
        assert not np.array_equal(a, track_lr(hr, 4, track, "y.png"))


@pytest.mark.parametrize("track", sorted(TRACKS))
def test_track_keeps_grayscale_single_channel(hr, track):
    # several names: the real track's chain takes a different path per seeded draw
    gray = hr[..., 0]
    for k in range(6):
        assert track_lr(gray, 4, track, f"g{k}.png").shape == imresize(gray, 1 / 4).shape


def test_noise10_track_has_sigma_10(hr):
    lr = track_lr(hr, 2, "noise10", "n.png").astype(float)
    resid = lr - imresize(hr, 1 / 2).astype(float)
    assert 9.0 < resid.std() < 11.0


def test_degraded_validation_is_fixed_across_calls_and_instances(image_folder):
    a = ImageSet.from_folders([image_folder], scale=2, degradation="real")
    b = ImageSet.from_folders([image_folder], scale=2, degradation="real")
    assert np.array_equal(a.full_pair(0)[0], a.full_pair(0)[0])
    assert np.array_equal(a.full_pair(0)[0], b.full_pair(0)[0])
    clean = ImageSet.from_folders([image_folder], scale=2)
    assert not np.array_equal(a.full_pair(0)[0], clean.full_pair(0)[0])


def test_a_level_takes_overrides_and_refuses_unknown_fields():
    from srlab.image.degrade import level

    lvl = level("real", {"simple_prob": 0.85, "jpeg_quality": [40, 92]})
    assert isinstance(lvl, RealDegradation)
    assert (lvl.simple_prob, lvl.jpeg_quality) == (0.85, (40, 92))
    assert lvl.high_order_prob == LEVELS["real"].high_order_prob  # the rest unchanged
    assert level("real") is LEVELS["real"]
    with pytest.raises(ValueError, match="no field"):
        level("real", {"simple_porb": 0.5})
    with pytest.raises(ValueError, match="unknown degradation"):
        level("reel")


def test_config_degradation_args_reach_the_training_and_validation_sets(image_folder):
    from srlab.train.config import ConfigError, load_config
    from srlab.train.data import datasets_for

    cfg = load_config(None, [f"data.train=[{image_folder}]", "data.degradation=real",
                             "data.degradation_args={simple_prob: 0.9, high_order_prob: 0.05}",
                             "data.val_fraction=0.5", "model.scale=2"])
    train, val = datasets_for(cfg)
    assert train.level.simple_prob == val.level.simple_prob == 0.9
    assert train.level != LEVELS["real"]
    with pytest.raises(ConfigError, match="no field"):
        load_config(None, ["data.degradation=real", "data.degradation_args={nope: 1}"])
    with pytest.raises(ConfigError, match="unknown degradation"):
        load_config(None, ["data.degradation=reel"])


def test_alias_and_sharpen_damage_is_off_in_the_shipped_level_and_draws_when_asked(hr):
    """The shipped `real` level (and so the `real` track) draws the same LR as before the two
    fields existed; asked for, each gives its damage: staircase edges, overshoot."""
    assert LEVELS["real"].alias_prob == LEVELS["real"].sharpen_prob == 0.0
    one_pass = dict(high_order_prob=0.0, simple_prob=1.0, simple_blur_prob=0.0,
                    simple_noise_prob=0.0, simple_jpeg_prob=0.0)
    plain = degrade(hr, 4, RealDegradation(**one_pass), np.random.default_rng(0))
    assert np.array_equal(plain, imresize(hr, 1 / 4))
    aliased = degrade(hr, 4, RealDegradation(**one_pass, alias_prob=1.0),
                      np.random.default_rng(0))
    assert aliased.shape == plain.shape and not np.array_equal(aliased, plain)
    # point sampling keeps HR pixels: every LR value is one the HR holds at that channel
    assert all(np.isin(aliased[..., c], hr[..., c]).all() for c in range(hr.shape[2]))
    sharp = degrade(hr, 4, RealDegradation(**one_pass, sharpen_prob=1.0),
                    np.random.default_rng(0))
    lap = lambda a: np.abs(np.diff(a.astype(float), axis=1)).mean()  # noqa: E731
    assert lap(sharp) > 1.1 * lap(plain)  # 1.15 on this image (clipping at 0 and 255)

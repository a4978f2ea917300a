"""auto's damage reading (issue 50): the damage generators, the learned estimator and the
strength it picks per class on a small seeded labelled set, and the thresholds of ``choose``.

The labelled set here is srlab's own procedural sample (assets/sample.png, free to ship) at
half size (at full size its rendered noise and flat areas read as damage: 0.96), in four
orientations, through one seeded draw of each labelled class at x2: moving a threshold or
shipping other estimator weights that change a class's strength fails here.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import load_tool

from srlab.eval.inspect import CLASSES, LabelledClass, gray_rgb, make_sample
from srlab.image import color, condition, damage
from srlab.image.condition import JPEG_CLEAN, JPEG_FLOOR, NOISY, STEPS, choose, estimate
from srlab.image.datasets import load_rgb
from srlab.image.degrade import Damage, degrade, halftone, jpeg, sensor_noise, track_lr
from srlab.image.imageio import SAMPLE_IMAGE as SAMPLE
from srlab.image.resize import imresize

needs_weights = pytest.mark.skipif(not damage.WEIGHTS.is_file(),
                                   reason="the damage estimator's weights are not shipped")


def _hr_views() -> list[np.ndarray]:
    hr = imresize(load_rgb(SAMPLE), 0.5)
    return [np.ascontiguousarray(np.rot90(hr, k)) for k in range(4)]


@pytest.fixture(scope="module")
def labelled(tmp_path_factory) -> dict[str, list[float]]:
    """Class label -> the strength auto picks on each of the four views."""
    tmp = tmp_path_factory.mktemp("labelled")
    out: dict[str, list[float]] = {}
    for i, hr in enumerate(_hr_views()):
        for c, cls in enumerate(CLASSES):
            lr, path = make_sample(hr, cls, [i, c], tmp, f"v{i}_{c}")
            out.setdefault(cls.label, []).append(estimate(lr, path, learned=True).denoise)
    return out


# ---- the generators ------------------------------------------------------------------------

def test_sensor_noise_grows_with_brightness():
    rng = np.random.default_rng(0)
    dark, mid = np.full((200, 200, 3), 10.0), np.full((200, 200, 3), 128.0)
    s_dark = (sensor_noise(dark, 6, rng) - dark).std()
    s_mid = (sensor_noise(mid, 6, rng) - mid).std()
    assert abs(s_mid - 6) < 0.2 and s_dark < s_mid - 1
    gray = sensor_noise(mid, 6, rng, gray=True) - mid
    assert np.allclose(gray[..., 0], gray[..., 1])  # one draw in every channel


def test_halftone_leaves_a_periodic_pattern():
    flat = np.full((64, 64, 3), 128.0)
    dots = halftone(flat, 4.0, np.random.default_rng(0))
    assert dots.std() > 5  # a flat gray becomes dots (noise alone: 1.5)
    assert abs(dots.mean() - 128) < 20


def test_jpeg_then_resize_hides_the_grid_and_double_jpeg_keeps_the_last_tables(tmp_path):
    hr = load_rgb(SAMPLE)
    from srlab.image.condition import LATTICE, jpeg_lattice

    once = degrade(hr, 2, Damage(jpeg_quality=(50, 50)), np.random.default_rng(0))
    moved = degrade(hr, 2, Damage(jpeg_quality=(50, 50), resize=(0.75, 0.75)),
                    np.random.default_rng(0))
    assert moved.shape == once.shape == imresize(hr, 0.5).shape
    assert jpeg_lattice(once)[0] > LATTICE > jpeg_lattice(moved)[0]
    lr, path = make_sample(hr, CLASSES[4], [0, 4], tmp_path, "dj")
    assert path is not None and condition.jpeg_quality_of(path) >= 90  # the last save


@pytest.mark.parametrize("track", ["jpeg60+99", "jpeg50+resize0.75", "camnoise5"])
def test_new_tracks_are_seeded_and_damage_the_image(track):
    hr = load_rgb(SAMPLE)
    a, b = track_lr(hr, 4, track, "x.png"), track_lr(hr, 4, track, "x.png")
    clean = imresize(hr, 0.25)
    assert np.array_equal(a, b) and a.shape == clean.shape
    assert not np.array_equal(a, clean)


# ---- the decision rule ---------------------------------------------------------------------

def test_choose_rounds_the_expected_strength_to_a_step():
    p = np.zeros(len(STEPS))
    p[[1, 3]] = 0.5  # expected 0.5
    assert choose(None, 0.0, None, 0.0, 0.0, p)[0] == 0.5
    p = np.array([0.7, 0.3, 0, 0, 0])  # expected 0.075 -> 0
    assert choose(None, 0.0, None, 0.0, 0.0, p)[0] == 0.0


def test_a_jpeg_file_at_or_below_the_clean_quality_gets_the_floor():
    clean = np.array([1.0, 0, 0, 0, 0])
    assert JPEG_FLOOR == 0.5
    assert choose(80, 0.0, None, 0.0, 0.0, clean)[0] == JPEG_FLOOR
    assert choose(JPEG_CLEAN, 0.0, None, 0.0, 0.0, clean)[0] == JPEG_FLOOR
    assert choose(JPEG_CLEAN + 5, 0.0, None, 0.0, 0.0, clean)[0] == 0.0
    assert choose(75, 0.0, None, 0.0, 0.0, np.array([0, 0, 0, 0, 1.0]))[0] == 1.0


def test_without_the_estimator_the_hand_cues_decide(monkeypatch):
    monkeypatch.setattr(damage, "load_estimator", lambda path=None: None)
    assert choose(None, 0.0, None, 12.0, 0.0)[0] == 1.0  # noise 12 > NOISY
    assert choose(None, 0.0, None, NOISY - 0.5, 0.0)[0] == 0.0
    assert choose(80, 0.0, None, 0.0, 0.0)[0] == 1.0
    img = load_rgb(SAMPLE)
    assert estimate(img, learned=True).probs is None and estimate(img, learned=True).reason


# ---- the learned estimate on the labelled set ---------------------------------------------

@needs_weights
def test_clean_gets_at_most_a_quarter(labelled):
    assert max(labelled[CLASSES[0].label]) <= 0.25


@needs_weights
@pytest.mark.parametrize("cls", [c for c in CLASSES if c.kind == "damaged"],
                         ids=lambda c: c.label)
def test_every_damaged_class_gets_at_least_half(labelled, cls: LabelledClass):
    # three of the four views at least (the class bar is 85% of images)
    assert sum(s >= 0.5 for s in labelled[cls.label]) >= 3, labelled[cls.label]


@needs_weights
def test_a_light_and_a_heavy_jpeg_both_read_as_damage_and_clean_does_not():
    """The strength follows the kind of damage (each class's step), not its severity inside
    a class: a quality-90 and a quality-35 JPEG both get at least the floor, heavy no less."""
    lr = imresize(load_rgb(SAMPLE), 0.25)
    clean = estimate(lr, learned=True)
    light = estimate(jpeg(lr, 90), learned=True)
    heavy = estimate(jpeg(lr, 35), learned=True)
    assert clean.denoise <= 0.25 < JPEG_FLOOR <= light.denoise <= heavy.denoise, (
        clean.denoise, light.denoise, heavy.denoise)


@needs_weights
def test_the_estimator_is_small_and_its_weights_are_plain_tensors():
    net = damage.load_estimator()
    assert net is not None and sum(p.numel() for p in net.parameters()) < 20_000
    from safetensors import safe_open

    with safe_open(str(damage.WEIGHTS), "pt") as f:
        assert set(f.keys()) == set(net.state_dict())


def test_the_learned_estimate_is_the_default_and_the_hand_cues_one_switch_away(monkeypatch):
    """auto decides by the learned estimate; SRLAB_AUTO_ESTIMATOR=hand gives the first
    auto's hand cues (0 or 1), e.g. to rerun an old table."""
    lr = imresize(_hr_views()[0], 0.5)
    monkeypatch.setenv("SRLAB_AUTO_ESTIMATOR", "hand")
    assert not condition.learned_enabled()
    hand = estimate(jpeg(lr, 35))
    assert hand.probs is None and hand.denoise == 1.0 and "JPEG" in hand.reason
    assert estimate(lr).denoise == 0.0
    monkeypatch.delenv("SRLAB_AUTO_ESTIMATOR")
    assert condition.learned_enabled()
    if damage.WEIGHTS.is_file():
        learned = estimate(jpeg(lr, 35))
        assert learned.probs is not None and learned.denoise >= JPEG_FLOOR
        assert "learned estimate" in learned.reason


def test_a_heavy_jpeg_gets_span_real_whatever_the_learned_step():
    """The learned step follows the kind of damage (a JPEG class's step is 0.75); at quality
    <= JPEG_HEAVY full denoise scored best on training crops, so the tables raise it to 1."""
    mid = np.array([0, 0, 0, 1.0, 0])  # a learned 0.75
    assert choose(condition.JPEG_HEAVY, 0.0, None, 0.0, 0.0, mid)[0] == 1.0
    assert choose(None, 0.8, 40, 0.0, 0.0, mid) == (
        1.0, "learned estimate 0.75, raised: JPEG at quality ~40 <= 50")
    assert choose(condition.JPEG_HEAVY + 10, 0.0, None, 0.0, 0.0, mid)[0] == 0.75
    assert choose(None, 0.2, 40, 0.0, 0.0, mid)[0] == 0.75  # no lattice: no JPEG history


def test_a_hand_cue_raises_the_learned_step_to_the_floor():
    clean = np.array([1.0, 0, 0, 0, 0])
    assert choose(None, 0.8, 60, 0.0, 0.0, clean) == (
        JPEG_FLOOR, "learned estimate 0.00, raised: JPEG history at quality ~60 <= 90")
    assert choose(None, 0.0, None, 0.0, condition.CHROMA_NOISY + 1, clean) == (
        JPEG_FLOOR, "learned estimate 0.00, raised: noise above the threshold")
    assert choose(None, 0.0, None, NOISY - 1, 0.0, clean)[0] == 0.0


def test_heavy_luma_noise_gets_span_real_whatever_the_learned_step():
    """Sensor noise's class step is 0.75; from a read sigma of 6.6-6.7 full denoise scored
    best on training crops at x2 and x4 (tools/severity_steps.py noise), so a damaged image
    is raised to 1 above 6.7; an image read as clean only above 8.5 (clean photos read up
    to 6.5)."""
    mid, clean = np.array([0, 0, 0, 1.0, 0]), np.array([1.0, 0, 0, 0, 0])
    assert choose(None, 0.0, None, 7.0, 0.0, mid) == (  # read 6.8-6.9: 1 won by 0.02-0.03 dB
        1.0, "learned estimate 0.75, raised: noise sigma ~7.0 > 6.7")
    assert choose(None, 0.0, None, 6.5, 0.0, mid)[0] == 0.75  # below: the class step
    assert choose(None, 0.0, None, 7.0, 0.0, clean)[0] == 0.0  # clean: no raise below 8.5
    assert choose(None, 0.0, None, 9.0, 0.0, clean) == (
        1.0, "learned estimate 0.00, raised: noise sigma ~9.0 > 8.5")



def test_a_soft_jpeg_gets_span_real_whatever_the_learned_step():
    """Blur before a JPEG q60-75 makes full denoise beat the JPEG class's 0.75 on training
    crops below a top-band share of ~0.035 (tools/severity_steps.py blur)."""
    mid = np.array([0, 0, 0, 1.0, 0])
    assert choose(None, 0.8, 74, 0.0, 0.0, mid, 0.03) == (
        1.0, "learned estimate 0.75, raised: a soft JPEG (quality ~74, top-band share 0.030 "
        "< 0.035)")
    assert choose(75, 0.0, None, 0.0, 0.0, mid, 0.03)[0] == 1.0  # the file's tables count
    assert choose(None, 0.8, 74, 0.0, 0.0, mid, 0.04)[0] == 0.75  # sharp enough
    assert choose(None, 0.8, 76, 0.0, 0.0, mid, 0.03)[0] == 0.75  # a light JPEG
    assert choose(None, 0.2, 74, 0.0, 0.0, mid, 0.03)[0] == 0.75  # no JPEG history
    assert choose(None, 0.8, 74, 0.0, 0.0, mid)[0] == 0.75  # no share read
    assert choose(None, 0.0, None, 0.0, 0.0, np.array([1.0, 0, 0, 0, 0]), 0.01)[0] == 0.0


def test_the_condition_carries_the_share_the_rule_read():
    img = imresize(load_rgb(SAMPLE), 0.25)
    cond = estimate(img, learned=True)
    if damage.WEIGHTS.is_file():
        f = damage.features(img, None, cond.lattice, cond.lattice_quality, cond.noise,
                            cond.chroma)
        assert cond.top_share == pytest.approx(float(f[damage.FEATURES.index("high-band share")]))
    assert estimate(img, learned=False).top_share is None

# ---- the artefact CNN ----------------------------------------------------------------------

def test_the_artefact_cnn_scores_a_small_image_whole_and_a_large_one_by_nine_tiles():
    import torch

    torch.manual_seed(0)
    cnn = damage.ArtifactCNN(4).eval()
    y = np.random.default_rng(0).uniform(0, 255, (700, 520)).astype(np.float32)
    t = cnn.TILE
    tiles = [y[a : a + t, b : b + t] for a in np.linspace(0, 700 - t, 3).astype(int)
             for b in np.linspace(0, 520 - t, 3).astype(int)]
    assert cnn.score(y) == pytest.approx(np.mean([cnn.score(tile) for tile in tiles]),
                                         rel=1e-5)
    small = y[:150, :90]
    with torch.inference_mode():
        whole = float(cnn(torch.from_numpy(np.ascontiguousarray(small))[None, None]))
    assert cnn.score(small) == pytest.approx(whole, rel=1e-5)
    assert cnn.score(y[:12, :300]) == 0.0  # too small for its 19 px receptive field
    f = damage.features(np.repeat(small[..., None], 3, axis=2).astype(np.uint8), None, 0.0,
                        None, 0.0, 0.0, cnn)
    assert len(f) == len(damage.FEATURES) and f[-1] == pytest.approx(
        cnn.score(color.luma(np.repeat(small[..., None], 3, axis=2).astype(np.uint8))))


@needs_weights
def test_the_shipped_artefact_cnn_scores_jpeg_then_resize_above_clean(tmp_path):
    """The cue the hand-made features lacked: a JPEG resized after saving (its grid gone)
    against the same views clean (docs/real-world.md)."""
    net = damage.load_estimator()
    assert net is not None and net.cnn is not None
    jtr = next(c for c in CLASSES if "then resize" in c.label)
    clean, moved = [], []
    for i, hr in enumerate(_hr_views()):
        for cls, out in ((CLASSES[0], clean), (jtr, moved)):
            lr, _ = make_sample(hr, cls, [i, 5], tmp_path, f"a{i}")
            out.append(net.cnn.score(color.luma(lr)))
    assert min(moved) > max(clean), (moved, clean)


# ---- gray photos ---------------------------------------------------------------------------

def test_colourless_tells_gray_photos_from_colour_ones():
    rgb = load_rgb(SAMPLE)
    gray = gray_rgb(rgb)
    assert damage.colourless(gray) and not damage.colourless(rgb)
    saved = gray.astype(np.int16) + np.random.default_rng(0).integers(-1, 2, gray.shape)
    assert damage.colourless(saved.clip(0, 255).astype(np.uint8))  # a gray colour JPEG
    assert damage.colourless(gray[..., 0])
    f = damage.features(gray, None, 0.0, None, 1.0, 0.0)
    assert np.isnan(f[damage.FEATURES.index("colour noise")])


@needs_weights
def test_a_gray_photo_s_missing_colour_noise_reads_as_the_training_mean():
    net = damage.load_estimator()
    f = net.mean.numpy().copy()
    f[damage.FEATURES.index("colour noise")] = np.nan
    assert np.allclose(damage.strength_probs(f, net), damage.strength_probs(net.mean.numpy(), net))


@needs_weights
def test_a_flat_image_reads_as_missing_spectrum_cues_not_minus_infinity():
    """A flat tile has no spectrum: its log ratios were -inf, which made the head's output
    arbitrary; they are missing (NaN) now, read as the training mean."""
    flat = np.full((200, 200, 3), 128, np.uint8)
    f = damage.features(flat, None, 0.0, None, 0.0, 0.0)
    assert not np.isinf(f).any()
    assert np.isnan(f[damage.FEATURES.index("ring peak")])
    probs = estimate(flat, learned=True).probs
    assert probs is not None and np.isfinite(probs).all() and abs(sum(probs) - 1) < 1e-6


def test_train_damage_takes_a_class_target_from_the_eye():
    """``tools/train_damage.py --eye``: a blind A/B's step replaces PSNR's for that class only."""
    from pathlib import Path

    tool = load_tool("train_damage")
    psnr = np.zeros((2, len(CLASSES), len(STEPS)))
    psnr[..., STEPS.index(0.75)] = 1.0  # PSNR's best step: 0.75 for every damaged class
    labels = [c.label for c in CLASSES]
    plain = tool.class_targets(psnr, "best", 0.1)
    eyed = tool.class_targets(psnr, "best", 0.1, {"halftone scan": 1.0})
    ht = labels.index("halftone scan")
    assert (eyed[:, ht] == STEPS.index(1.0)).all() and (plain[:, ht] == STEPS.index(0.75)).all()
    others = [i for i in range(len(CLASSES)) if i != ht]
    assert (eyed[:, others] == plain[:, others]).all()
    with pytest.raises(SystemExit, match="no labelled class"):
        tool.class_targets(psnr, "best", 0.1, {"halftone": 1.0})
    with pytest.raises(SystemExit, match="one of"):
        tool.class_targets(psnr, "best", 0.1, {"halftone scan": 0.6})
    # the model card names the --eye flags, so the command it prints rebuilds the same head
    import argparse
    args = argparse.Namespace(
        images=2, regret_images=1, epochs=1, hidden=4, weight_decay=0.0, camera="best",
        camera_margin=0.1, clean_extra=[], eye=["halftone scan=1"], gray_every=0, cnn_steps=1,
        cnn_width=2, cnn_patch=8, cnn_from=None, train_dir=Path("BSDS500-train"))
    stats = {"per_class": {}, "class_psnr_per_step": {}, "heldout_images": 1,
             "inputs_heldout": 1, "inputs_train": 1, "heldout_accuracy": 1.0}
    card = tool._card(args, 10, stats)
    assert "--eye 'halftone scan=1'" in card and "halftone scan 1 at both scales" in card
    assert "--eye" not in tool._card(argparse.Namespace(**{**vars(args), "eye": []}), 10, stats)

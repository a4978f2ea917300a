"""Tests that fail under the deliberate small bugs of issue 42 (each was applied to a scratch
copy of src/ to check that the test named beside it fails):

1. ``metrics.evaluate`` without the border crop   -> test_evaluate_ignores_exactly_the_scale_border
2. benchmark LR made by PIL bicubic, not MATLAB's  -> test_benchmark_lr_inputs_are_matlab_imresize
   (both also fail every end-to-end figure of test_reference.py)
3. tiling's one-pass shortcut ``and`` -> ``or``     -> test_narrow_and_short_images_are_still_tiled
   (and test_deep_nets_tile_exactly_with_far_reaching_weights), a tile overlap one row short
   -> test_every_tile_gets_overlap_pixels_of_context, test_far_taps_*, test_deep_nets_*
4. "severe" degradation milder than "moderate"     -> test_severe_damages_more_than_moderate
5. paired ``low_res/`` files ignored               -> test_paired_low_res_files_are_the_lr_inputs
6. the generator's adversarial target flipped      -> test_gan_generator_moves_toward_real

Images are tiny; nothing here needs ../shared.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import smooth_images, synthetic_image
from PIL import Image
from torch import nn

from srlab.api import Upscaler, load_model
from srlab.image.datasets import load_pairs
from srlab.image.degrade import LEVELS, degrade
from srlab.image.metrics import evaluate, psnr, ssim
from srlab.image.resize import imresize, modcrop
from srlab.image.tiling import tile_grid, tiled_apply
from srlab.train.data import BatchSampler, ImageSet

# --- 1. the border crop of the protocol --------------------------------------------------


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_evaluate_ignores_exactly_the_scale_border(smooth_rgb, scale):
    hr = smooth_rgb
    sr = hr.copy()
    band = np.ones(hr.shape[:2], bool)
    band[scale:-scale, scale:-scale] = False
    sr[band] = 255 - sr[band]  # garbage in the border band only
    s = evaluate(sr, hr, scale=scale)
    assert s.psnr == math.inf and s.mse == 0.0 and s.mae == 0.0
    assert s.ssim == pytest.approx(1.0, abs=1e-12) and s.gmsd == pytest.approx(0.0, abs=1e-12)
    # ... and the first pixel inside the band is scored, by every metric
    for y, x in ((scale, scale), (-scale - 1, -scale - 1)):
        inner = hr.copy()
        inner[y, x] = 255 - inner[y, x]
        t = evaluate(inner, hr, scale=scale)
        assert t.psnr < math.inf and t.mse > 0 and t.mae > 0 and t.ssim < 1 and t.gmsd > 0


def test_psnr_and_ssim_score_y_by_default_and_rgb_when_asked(smooth_rgb):
    hr = smooth_rgb
    # a change that leaves BT.601 luma (nearly) unchanged: +G, -R, -B in luma proportion
    sr = hr.astype(np.int16)
    sr[..., 1] += 4
    sr[..., 0] -= 4
    sr[..., 2] -= 12
    sr = np.clip(sr, 0, 255).astype(np.uint8)
    assert evaluate(sr, hr, scale=2).psnr == psnr(sr, hr, crop_border=2, y_channel=True)
    assert psnr(sr, hr) > psnr(sr, hr, y_channel=False) + 3
    assert ssim(sr, hr) > ssim(sr, hr, y_channel=False)


# --- 2. the benchmark's LR inputs ---------------------------------------------------------


def test_benchmark_lr_inputs_are_matlab_imresize(tmp_path):
    folder = tmp_path / "hr"
    folder.mkdir()
    Image.fromarray(synthetic_image(0, 37, 30)).save(folder / "a.png")
    Image.fromarray(synthetic_image(1, 26, 41)[..., 1]).save(folder / "b.png")  # mode L
    for scale in (2, 3, 4):
        pairs = load_pairs(folder, scale)
        assert [name for name, _, _ in pairs] == ["a.png", "b.png"]
        for name, lr, hr in pairs:
            with Image.open(folder / name) as im:
                full = np.asarray(im)
            assert np.array_equal(hr, modcrop(full, scale))
            assert np.array_equal(lr, imresize(hr, 1 / scale)), (name, scale)
            pil = np.asarray(Image.fromarray(hr).resize(
                (hr.shape[1] // scale, hr.shape[0] // scale), Image.BICUBIC))
            assert not np.array_equal(lr, pil)  # the test can tell the two apart


# --- 3. tiling ----------------------------------------------------------------------------

TILE = 8


def _recording(scale: int, calls: list):
    def fn(t: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(t.shape[-2:]))
        return t.repeat_interleave(scale, dim=-2).repeat_interleave(scale, dim=-1)
    return fn


@pytest.mark.parametrize(("h", "w", "tiles"), [(20, 5, 3), (5, 20, 3), (20, 20, 9),
                                               (8, 20, 3), (20, 8, 3), (8, 8, 0), (5, 7, 0)])
def test_narrow_and_short_images_are_still_tiled(h, w, tiles):
    """One pass only when the tile covers the image both ways; a narrow or a short image
    whose long side exceeds the tile is cut into tiles along that side."""
    img = np.random.default_rng(0).random((h, w, 3), dtype=np.float32)
    calls: list = []
    count = []
    out = tiled_apply(_recording(2, calls), img, scale=2, tile=TILE, overlap=2,
                      on_tile=lambda: count.append(1))
    assert len(count) == tiles
    assert len(calls) == max(tiles, 1)
    assert np.array_equal(out, img.repeat(2, 0).repeat(2, 1))


@pytest.mark.parametrize("overlap", [0, 1, 3, 7])
@pytest.mark.parametrize(("h", "w"), [(29, 6), (6, 29), (21, 19)])
def test_every_tile_gets_overlap_pixels_of_context(h, w, overlap):
    img = np.random.default_rng(1).random((h, w, 3), dtype=np.float32)
    calls: list = []
    tiled_apply(_recording(3, calls), img, scale=3, tile=TILE, overlap=overlap)
    expected = [(min(h, y1 + overlap) - max(0, y0 - overlap),
                 min(w, x1 + overlap) - max(0, x0 - overlap))
                for y0, y1 in tile_grid(h, TILE) for x0, x1 in tile_grid(w, TILE)]
    assert calls == expected


def test_tile_grid_covers_the_length_in_cores_of_at_most_tile():
    assert list(tile_grid(20, 8)) == [(0, 8), (8, 16), (16, 20)]
    assert list(tile_grid(16, 8)) == [(0, 8), (8, 16)]
    assert list(tile_grid(3, 8)) == [(0, 3)]


class _FarTaps(nn.Module):
    """A net whose receptive field is all that matters: each output pixel is the mean of the
    four LR pixels exactly ``rf`` away (zero padded), upsampled by nearest neighbour."""

    in_channels = 3

    def __init__(self, rf: int, scale: int) -> None:
        super().__init__()
        self.receptive_field, self.scale = rf, scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.receptive_field
        p = F.pad(x, (r, r, r, r))
        h, w = x.shape[-2:]
        out = 0.25 * (p[..., : h, r : r + w] + p[..., 2 * r :, r : r + w]
                      + p[..., r : r + h, : w] + p[..., r : r + h, 2 * r :])
        return out.repeat_interleave(self.scale, -2).repeat_interleave(self.scale, -1)


def _shape(kind: str, rf: int) -> tuple[int, int]:
    long = 2 * TILE + rf + 3
    return {"narrow": (long, TILE - 2), "short": (TILE - 2, long), "grid": (long, long)}[kind]


@pytest.mark.parametrize("kind", ["narrow", "short", "grid"])
@pytest.mark.parametrize("rf", [1, 4, 12, 31])
def test_far_taps_tile_exactly_at_the_receptive_field_and_not_one_short(kind, rf):
    img = np.random.default_rng(rf).random((*_shape(kind, rf), 3), dtype=np.float32)
    up = Upscaler(_FarTaps(rf, 2), name="far", scale=2, meta=None)
    whole = up.upscale_array(img)
    np.testing.assert_allclose(up.upscale_array(img, tile=TILE), whole, atol=1e-6, rtol=0)
    short = up.upscale_array(img, tile=TILE, overlap=rf - 1)
    assert np.abs(short - whole).max() > 0.05


# Deep nets: their trained (or random) far taps are far below float32 resolution (span x4:
# the gradient 31 LR pixels away is ~1e-15 of the centre's), so an overlap one short is
# invisible in their outputs. With far-reaching weights every conv of the shipped
# architecture is a positive average over input channels placed on one off-centre tap, with
# gain 8: the longest path through the net, which is what sets the receptive field,
# dominates the output.
DEEP = [("span", 4), ("span-fast", 4), ("srgan", 4), ("vdsr", 4), ("vdsr-10", 2),
        ("fcn-multi", 4), ("fcn-residual", 4), ("espcn", 4)]


@torch.no_grad()
def _far_reaching(net: nn.Module, axis: int, side: int, gain: float = 8.0) -> nn.Module:
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            w = m.weight
            cin = w.shape[1]
            w.zero_()
            kh, kw = w.shape[-2:]
            tap = [kh // 2, kw // 2]
            tap[axis] = 0 if side < 0 else w.shape[-2 + axis] - 1
            w[:, :, tap[0], tap[1]] = (gain if w.shape[-2 + axis] > 1 else 1.0) / cin
            if m.bias is not None:
                m.bias.zero_()
        elif isinstance(m, nn.BatchNorm2d):
            m.running_mean.zero_()
            m.running_var.fill_(1 - m.eps)
            m.weight.fill_(1.0)
            m.bias.zero_()
    return net


class _Scaled(nn.Module):
    """``net`` times a constant that brings its mean output to 0.5 on ``img`` (a constant
    factor changes no output pixel's dependencies)."""

    def __init__(self, net: nn.Module, img: np.ndarray) -> None:
        super().__init__()
        self.net, self.in_channels = net, net.in_channels
        self.receptive_field = net.receptive_field
        x = torch.from_numpy(img).permute(2, 0, 1)[None]
        if net.in_channels == 1:
            x = x.mean(dim=1, keepdim=True)
        with torch.no_grad():
            self.gain = 0.5 / float(net(x).abs().mean())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) * self.gain


@pytest.mark.parametrize("kind", ["narrow", "short"])
@pytest.mark.parametrize(("name", "scale"), DEEP, ids=[f"{n}-x{s}" for n, s in DEEP])
def test_deep_nets_tile_exactly_with_far_reaching_weights(name, scale, kind):
    axis = 0 if kind == "narrow" else 1  # a narrow image is cut in rows, a short one in columns
    short_by_one = []
    for side in (-1, 1):
        net = load_model(name, scale, backend="torch").net  # shipped, re-parameterised
        rf = net.receptive_field
        h, w = (TILE + rf + 3, TILE - 2) if kind == "narrow" else (TILE - 2, TILE + rf + 3)
        img = synthetic_image(3, h, w).astype(np.float32) / 255
        up = Upscaler(_Scaled(_far_reaching(net, axis, side), img), name=name, scale=scale,
                      meta=None)
        whole = up.upscale_array(img)
        assert np.isfinite(whole).all()
        np.testing.assert_allclose(up.upscale_array(img, tile=TILE), whole, atol=1e-5, rtol=0)
        short = up.upscale_array(img, tile=TILE, overlap=rf - 1)
        short_by_one.append(float(np.abs(short - whole).max()))
    assert max(short_by_one) > 1e-3, short_by_one  # the test can see one missing row


# --- 4. degradation levels ----------------------------------------------------------------


def _damage_db(hr: np.ndarray, level: str, draws: int = 24) -> float:
    """Mean PSNR of the level's LR against the clean (protocol) LR: lower = more damage."""
    clean = imresize(hr, 1 / 2)
    return float(np.mean([psnr(degrade(hr, 2, LEVELS[level], np.random.default_rng(i)),
                               clean, y_channel=False) for i in range(draws)]))


def test_severe_damages_more_than_moderate(tmp_path):
    folder = smooth_images(tmp_path / "smooth", 1, seed=3, size=48)
    with Image.open(folder / "img0.png") as im:
        hr = np.asarray(im)
    moderate, severe = _damage_db(hr, "moderate"), _damage_db(hr, "severe")
    assert degrade(hr, 2, LEVELS["clean"], np.random.default_rng(0)).tobytes() == \
        imresize(hr, 1 / 2).tobytes()
    assert severe < moderate - 2.0, (moderate, severe)
    mod, sev = LEVELS["moderate"], LEVELS["severe"]
    assert sev.blur_sigma[1] >= mod.blur_sigma[1] and sev.noise_sigma[1] >= mod.noise_sigma[1]
    assert sev.jpeg_quality is not None


# --- 5. paired high_res/ + low_res/ folders -----------------------------------------------


def test_paired_low_res_files_are_the_lr_inputs(tmp_path):
    """The LR of a pair is its file's content, not a bicubic of the HR: here the LR files
    are other images altogether, so any LR made from HR shows."""
    root = tmp_path / "isr"
    (root / "high_res").mkdir(parents=True)
    (root / "low_res").mkdir()
    lrs = {}
    for i in range(3):
        Image.fromarray(synthetic_image(i, 32, 32)).save(root / "high_res" / f"{i}.png")
        lrs[f"{i}"] = synthetic_image(50 + i, 16, 16)
        Image.fromarray(lrs[f"{i}"]).save(root / "low_res" / f"{i}.png")
    Image.fromarray(synthetic_image(9, 32, 32)).save(root / "high_res" / "alone.png")
    data = ImageSet.from_folders([root], scale=2)
    names = [pair.hr.stem for pair, _ in data.entries]
    assert names == ["0", "1", "2", "alone"]
    for i, stem in enumerate(names):
        hr, lr = data.images(i)
        if stem == "alone":  # no LR file: made by the protocol
            assert np.array_equal(lr, imresize(hr, 1 / 2))
            continue
        assert np.array_equal(lr, lrs[stem])
        assert np.array_equal(data.full_pair(i)[0], lrs[stem])
    # training patches: an LR window of the file and the HR window under it
    pairs_only = ImageSet([pair for pair, _ in data.entries if pair.lr is not None], scale=2)
    sampler = BatchSampler(pairs_only, patch=6, batch=8, seed=0, augment=False, prefetch=False)
    hrs = {stem: np.asarray(Image.open(root / "high_res" / f"{stem}.png")) for stem in lrs}
    lr_b, hr_b = sampler.make(0)
    for lr_p, hr_p in zip(_u8(lr_b), _u8(hr_b), strict=True):
        assert any(np.array_equal(full[y:y + 6, x:x + 6], lr_p)
                   and np.array_equal(hrs[stem][2 * y:2 * y + 12, 2 * x:2 * x + 12], hr_p)
                   for stem, full in lrs.items() for y in range(11) for x in range(11))


def _u8(batch: torch.Tensor) -> list[np.ndarray]:
    return [(t.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8) for t in batch]


# --- 6. the adversarial term --------------------------------------------------------------


class _BrightCritic(nn.Module):
    """A fixed discriminator (``gan.d_lr=0``) that calls bright images real: its logit is
    the mean intensity minus one half, times 20. A generator trained against it must get
    brighter; one trained without the term must not."""

    def __init__(self, *, in_channels: int = 3, feat: int = 64) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.tensor(20.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gain * (x.mean(dim=(1, 2, 3)) - 0.5)[:, None]


def test_gan_generator_moves_toward_real(image_folder, tmp_path, monkeypatch):
    from srlab.train.config import load_config
    from srlab.train.loop import train
    from srlab.zoo.registry import build_model

    monkeypatch.setattr("srlab.zoo.srgan.Discriminator", _BrightCritic)
    base = ["model.name=srgan", "model.scale=2", "model.kwargs={feat: 8, blocks: 1}",
            "data.patch=12", "data.batch=2", "data.val_max=2", "data.val_fraction=0.34",
            "run.epochs=2", "run.iters_per_epoch=3", "run.progress=false", "run.threads=1",
            "run.bf16=false", f"data.train=[{image_folder}]", "optim.lr=2e-3",
            "gan.enabled=true", "gan.pretrain_iters=0", "gan.d_lr=0.0"]
    lr = torch.stack([torch.from_numpy(imresize(synthetic_image(i), 0.5)).permute(2, 0, 1)
                      for i in range(6)]).float() / 255
    brightness = {}
    for tag, weight in (("adversarial", 1.0), ("content-only", 0.0)):
        out = tmp_path / tag
        train(load_config(None, [*base, f"run.out_dir={out}", f"gan.adv_weight={weight}"]),
              log=lambda _: None)
        ck = torch.load(out / "run" / "checkpoint.pt", weights_only=True)
        assert float(ck["disc"]["gain"]) == 20.0  # the critic stayed fixed
        g = build_model("srgan", 2, feat=8, blocks=1)
        g.load_state_dict(ck["model"])
        with torch.no_grad():
            brightness[tag] = float(g.eval()(lr).mean())
    assert brightness["adversarial"] > brightness["content-only"] + 0.02, brightness

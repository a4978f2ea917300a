"""The VGG-free GAN stage: U-Net discriminator, random-CNN perceptual loss, LDL, sharpened GT."""

from __future__ import annotations

import pytest
import torch

from srlab.train.discriminators import UNetDiscriminator, build_discriminator
from srlab.train.losses import RandomCNNLoss, TextureLoss, build_loss, ldl_loss, usm_sharpen


@pytest.mark.parametrize("size", [(32, 32), (40, 24)])
def test_unet_discriminator_gives_one_logit_per_pixel(size):
    d = UNetDiscriminator(in_channels=1, feat=4)
    out = d(torch.rand(2, 1, *size))
    assert out.shape == (2, 1, *size)


def test_unet_discriminator_is_spectrally_normalised():
    d = UNetDiscriminator(in_channels=3, feat=4)
    names = [n for n, _ in d.named_parameters()]
    assert any("parametrizations.weight.original" in n for n in names)
    d(torch.rand(1, 3, 16, 16))  # a power iteration runs in training mode
    w = d.down[0].weight.detach().flatten(1)
    assert torch.linalg.matrix_norm(w, ord=2) < 1.5  # ~1 after normalisation


def test_unknown_discriminator_is_refused():
    with pytest.raises(ValueError, match="unknown discriminator"):
        build_discriminator("patchgan", in_channels=3, feat=8)


def test_random_cnn_loss_is_fixed_and_measures_structure():
    a, b = RandomCNNLoss(1), RandomCNNLoss(1)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)  # seeded: a resumed run sees the same extractor
    assert not any(p.requires_grad for p in a.parameters())
    torch.manual_seed(0)
    hr = torch.rand(1, 1, 24, 24)
    assert float(a(hr, hr)) == 0.0
    small, large = hr + 0.01 * torch.randn_like(hr), hr + 0.1 * torch.randn_like(hr)
    assert 0 < float(a(small, hr)) < float(a(large, hr))


def test_texture_loss_matches_statistics_not_positions():
    """Grain of the target's strength anywhere is close in Gram terms (a feature loss calls
    it far: other positions); a flat patch, or grain three times too strong, is far."""
    tex, feat = TextureLoss(1), RandomCNNLoss(1)
    torch.manual_seed(0)
    base = torch.full((2, 1, 64, 64), 0.5)
    hr, other = base + 0.05 * torch.randn_like(base), base + 0.05 * torch.randn_like(base)
    strong = base + 0.15 * torch.randn_like(base)
    assert float(tex(hr, hr)) == 0.0
    same_stats, flat, too_strong = float(tex(other, hr)), float(tex(base, hr)), \
        float(tex(strong, hr))
    assert same_stats * 3 < flat and same_stats * 3 < too_strong
    # the feature loss ranks the other grain no closer than the flat patch
    assert float(feat(other, hr)) >= float(feat(base, hr))
    # and through the build_loss term, it gives the generator a gradient
    x = base.clone().requires_grad_(True)
    build_loss({"texture": 1.0}, in_channels=1)(x, hr).backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


def test_ldl_penalises_only_where_the_ema_is_closer():
    torch.manual_seed(0)
    hr = torch.rand(1, 1, 16, 16)
    sr = hr + 0.2 * torch.randn_like(hr)
    # the EMA generator equals HR: every noisy pixel is an artifact, the loss is positive
    assert float(ldl_loss(sr, hr, hr)) > 0
    # the EMA generator is worse everywhere: nothing is called an artifact
    assert float(ldl_loss(sr, hr, hr + 1.0)) == 0.0


def test_usm_sharpens_edges_and_leaves_flat_areas():
    img = torch.full((1, 1, 64, 64), 0.3)
    img[..., 32:] = 0.7
    out = usm_sharpen(img)
    assert out[..., 10, 5] == pytest.approx(0.3, abs=1e-6)  # flat: unchanged
    assert float(out[..., 10, 31]) < 0.3 - 0.01  # dark side of the edge gets darker
    assert float(out[..., 10, 32]) > 0.7 + 0.01
    assert float(out.min()) >= 0 and float(out.max()) <= 1


def test_ldl_needs_the_ema_output():
    loss = build_loss({"l1": 1.0, "ldl": 1.0}, in_channels=1)
    assert loss.needs_ema
    x = torch.rand(1, 1, 8, 8)
    with pytest.raises(ValueError, match="EMA"):
        loss(x, x)


def _grid(img: torch.Tensor, period: int = 4, amp: float = 0.08) -> torch.Tensor:
    """``img`` plus a pixel-shuffle-like grid: one sub-pixel position of each cell lifted."""
    g = torch.zeros_like(img)
    g[..., ::period, ::period] = amp
    return img + g


def _smooth(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """Smooth random images: upsampled noise, nothing periodic."""
    gen = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 1, size // 8, size // 8, generator=gen)
    return torch.nn.functional.interpolate(low, size=(size, size), mode="bicubic",
                                           align_corners=False).clamp(0, 1)


def test_lattice_loss_sees_a_painted_grid_and_pushes_it_out():
    from srlab.train.losses import lattice_loss

    hr = _smooth(2, 64)
    assert float(lattice_loss(hr, hr)) == 0.0
    noisy = hr + 0.05 * torch.randn_like(hr)  # broadband: little at the lattice bins
    gridded = _grid(hr).requires_grad_(True)
    assert float(lattice_loss(gridded.detach(), hr)) > 5 * float(lattice_loss(noisy, hr))
    lattice_loss(gridded, hr).backward()
    stepped = (gridded - 50 * gridded.grad).detach()
    assert float(lattice_loss(stepped, hr)) < 0.5 * float(lattice_loss(gridded.detach(), hr))


def test_lattice_ratio_tells_a_gridded_upscale_from_a_smooth_one():
    from srlab.eval.noref import lattice_ratio

    img = _smooth(1, 128)[0, 0].numpy() * 255
    gridded = _grid(torch.from_numpy(img)[None, None], amp=6.0)[0, 0].numpy()
    assert lattice_ratio(img) < 3 < 30 < lattice_ratio(gridded)
    assert lattice_ratio(gridded, period=3) < 3  # another upscale factor's lattice: nothing


def test_frequency_discriminator_learns_to_spot_a_grid():
    from srlab.train.discriminators import FrequencyDiscriminator

    torch.manual_seed(0)
    d = FrequencyDiscriminator(in_channels=1, feat=4)
    opt = torch.optim.Adam(d.parameters(), lr=3e-3)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    for step in range(40):
        real = _smooth(4, 32, seed=step)
        fake = _grid(_smooth(4, 32, seed=1000 + step), amp=0.03)
        lr_, lf = d(real), d(fake)
        loss = bce(lr_, torch.ones_like(lr_)) + bce(lf, torch.zeros_like(lf))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        real, fake = d(_smooth(8, 32, seed=99)), d(_grid(_smooth(8, 32, seed=98), amp=0.03))
    assert float(real.min()) > float(fake.max())


def test_gan_guards_change_the_training_and_resume_exactly(image_folder, tmp_path):
    """d_shift, r1 and the frequency discriminator: they take part (weights differ from a run
    without them), are checkpointed (an interrupted run resumes bit-exact)."""
    from srlab.train.config import load_config
    from srlab.train.loop import train
    from srlab.zoo.weights import read_weights

    base = ["model.name=span-real", "model.scale=2",
            "model.kwargs={feat: 8, blocks: 1}", "data.patch=12", "data.batch=2",
            "data.val_max=1", "data.val_fraction=0.34", "data.degradation=real",
            "run.iters_per_epoch=2", "run.epochs=2", "run.progress=false", "run.threads=1",
            "run.bf16=false", f"data.train=[{image_folder}]", f"run.out_dir={tmp_path}",
            "optim.ema=0", "loss.terms={l1: 1.0, lattice: 1.0}", "gan.enabled=true",
            "gan.discriminator=unet", "gan.d_features=4", "gan.adv_weight=0.1"]
    guards = ["gan.d_shift=4", "gan.r1=1.0", "gan.freq_weight=0.1"]
    plain = train(load_config(None, base + ["run.name=plain"]), log=lambda _: None)
    whole = train(load_config(None, base + guards + ["run.name=whole"]), log=lambda _: None)
    train(load_config(None, base + guards + ["run.name=parts"]), log=lambda _: None,
          on_epoch=lambda epoch, _: epoch == 1)
    ck = torch.load(tmp_path / "parts" / "checkpoint.pt", weights_only=True)
    assert {"disc_freq", "d_opt_freq"} <= set(ck)
    parts = train(load_config(None, base + guards + ["run.name=parts"]), resume=True,
                  log=lambda _: None)
    a, _ = read_weights(whole.run_dir / "last.safetensors")
    b, _ = read_weights(parts.run_dir / "last.safetensors")
    p, _ = read_weights(plain.run_dir / "last.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], p[k]) for k in a)


def test_gan_stage_trains_and_resumes_exactly(image_folder, tmp_path):
    from srlab.train.config import load_config
    from srlab.train.loop import train
    from srlab.zoo.weights import read_weights

    base = ["model.name=span-real", "model.scale=2",
            "model.kwargs={feat: 8, blocks: 1}", "data.patch=12", "data.batch=2",
            "data.val_max=1", "data.val_fraction=0.34", "data.degradation=real",
            "run.iters_per_epoch=2", "run.epochs=2", "run.progress=false", "run.threads=1",
            "run.bf16=false",
            f"data.train=[{image_folder}]", f"run.out_dir={tmp_path}", "optim.ema=0.9",
            "loss.terms={l1: 1.0, randcnn: 1.0, fft: 0.05, ldl: 1.0}", "loss.sharpen_gt=true",
            "gan.enabled=true", "gan.discriminator=unet", "gan.d_features=4",
            "gan.adv_weight=0.1"]
    whole = train(load_config(None, base + ["run.name=whole"]), log=lambda _: None)
    train(load_config(None, base + ["run.name=parts"]), log=lambda _: None,
          on_epoch=lambda epoch, _: epoch == 1)  # interrupted after its first checkpoint
    parts = train(load_config(None, base + ["run.name=parts"]), resume=True, log=lambda _: None)
    a, _ = read_weights(whole.run_dir / "last.safetensors")
    b, _ = read_weights(parts.run_dir / "last.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k

"""The VGG-free GAN stage: U-Net discriminator, random-CNN perceptual loss, LDL, sharpened GT."""

from __future__ import annotations

import pytest
import torch

from srlab.train.discriminators import UNetDiscriminator, build_discriminator
from srlab.train.losses import RandomCNNLoss, build_loss, ldl_loss, usm_sharpen


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

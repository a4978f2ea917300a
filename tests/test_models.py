"""The model contract, checked for every registry entry at every scale it supports.

Shapes (odd sizes too), gradients, exact save/load round trips, tiled == untiled (which is
what checks each declared ``receptive_field``), and re-parameterisation. Sizes are tiny so
the whole file runs in well under a minute on one thread.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import registry_cases

import srlab
from srlab.api import Upscaler, load_model
from srlab.runtime.torch_model import chroma_for
from srlab.zoo.registry import MODELS, build_model
from srlab.zoo.span import FAST, SPAN
from srlab.zoo.srcnn import SRCNN
from srlab.zoo.srgan import Discriminator
from srlab.zoo.upsampling import UpsamplingNet, checkerboard_score
from srlab.zoo.vdsr import VDSR
from srlab.zoo.vgg import VGGFeatures
from srlab.zoo.weights import (
    WeightsError,
    WeightsMeta,
    count_params,
    read_weights,
    save_weights,
    shipped_weights_path,
)

CASES = registry_cases()
TRAINABLE = [p for p in CASES if MODELS[p.values[0]].trainable]
TILE = 8
# networks that run many convolutions at HR: the tiling test uses a narrow image for them
HEAVY = {"vdsr", "vdsr-15", "vdsr-10", "autoencoder", "fcn-vgg"}


def _net(name: str, scale: int, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(name, scale)


def _lr(net: torch.nn.Module, h: int = 13, w: int = 11) -> torch.Tensor:
    return torch.rand(1, net.in_channels, h, w, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize(("name", "scale"), CASES)
def test_contract_and_shape(name: str, scale: int) -> None:
    net = _net(name, scale).eval()
    assert net.scale == scale
    assert net.in_channels in (1, 3)
    assert isinstance(net.receptive_field, int) and net.receptive_field >= 1
    for h, w in ((13, 11), (6, 7)):
        with torch.no_grad():
            out = net(_lr(net, h, w))
        assert out.shape == (1, net.in_channels, h * scale, w * scale)
        assert torch.isfinite(out).all()


@pytest.mark.parametrize(("name", "scale"), TRAINABLE)
def test_backward_gives_finite_gradients(name: str, scale: int) -> None:
    net = _net(name, scale).train()
    x = _lr(net, 9, 7)
    # a multi-head net's forward uses one head; forward_all trains them all
    outs = net.forward_all(x).values() if hasattr(net, "forward_all") else [net(x)]
    sum(out.square().mean() for out in outs).backward()
    trainable = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
    assert trainable
    for pname, p in trainable:
        assert p.grad is not None, f"{pname} got no gradient"
        assert torch.isfinite(p.grad).all(), pname
    assert any(p.grad.abs().sum() > 0 for _, p in trainable)


@pytest.mark.parametrize(("name", "scale"), TRAINABLE)
def test_save_load_round_trip_is_exact(name: str, scale: int, tmp_path) -> None:
    net = _net(name, scale)
    with torch.no_grad():  # one training-mode pass so BatchNorm running stats are not defaults
        net.train()(_lr(net, 9, 7))
    net.eval()
    path = tmp_path / f"{name}_x{scale}.safetensors"
    save_weights(net, WeightsMeta(arch=name, scale=scale, trained=False), path)
    _, meta = read_weights(path)
    assert meta is not None and meta.params == count_params(net)
    up = load_model(name, scale, weights=path, fuse=False)
    x = _lr(net)
    with torch.no_grad():
        assert torch.equal(net(x), up.net(x))


def _tiling_image(name: str, rf: int) -> np.ndarray:
    # The first tile's context (TILE + rf rows) must stop short of the image, or tiling
    # would run every tile on the whole image and prove nothing about the receptive field.
    h = max(23, TILE + rf + 3)
    w = 7 if name in HEAVY or rf > 12 else max(19, TILE + rf + 3)
    rng = np.random.default_rng(2)
    return rng.random((h, w, 3), dtype=np.float32)


class _Centred(torch.nn.Module):
    """``net`` plus a constant that puts its mean output at 0.5.

    Random-init nets without a bicubic skip output values near 0, which the Upscaler clamps:
    that would hide tile seams. A constant changes no output pixel's dependencies.
    """

    def __init__(self, net: torch.nn.Module, img: np.ndarray) -> None:
        super().__init__()
        self.net = net.eval()
        self.in_channels = net.in_channels
        self.receptive_field = net.receptive_field
        x = torch.from_numpy(img).permute(2, 0, 1)[None]
        if net.in_channels == 1:
            x = x.mean(dim=1, keepdim=True)
        with torch.no_grad():
            self.offset = 0.5 - float(net(x).mean())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) + self.offset


@pytest.mark.parametrize(("name", "scale"), CASES)
def test_tiled_equals_untiled(name: str, scale: int) -> None:
    net = _net(name, scale)
    chroma = chroma_for([name])  # the colour the loader gives it (guided for real photos)
    reach = net.receptive_field + (chroma.reach if chroma and net.in_channels == 1 else 0)
    img = _tiling_image(name, reach)
    up = Upscaler(_Centred(net, img), name=name, scale=scale, meta=None)
    up.chroma = chroma
    assert up.receptive_field == net.receptive_field and up.context == reach
    assert img.shape[0] > TILE + reach
    whole = up.upscale_array(img, tile=0)
    tiled = up.upscale_array(img, tile=TILE)
    assert whole.shape == (img.shape[0] * scale, img.shape[1] * scale, 3)
    # clamping to [0, 1] must not hide the comparison: most pixels are inside the range
    assert ((whole > 0) & (whole < 1)).mean() > 0.5
    np.testing.assert_allclose(tiled, whole, atol=1e-4, rtol=0)


@pytest.mark.parametrize(("name", "scale"), CASES)
def test_receptive_field_bounds_the_dependencies(name: str, scale: int) -> None:
    """No output pixel depends on an LR pixel farther than ``receptive_field`` (gradients).

    Sharper than the tiling test for deep nets, whose far taps are too weak at random init
    to show above its tolerance. Measured along each axis on a thin strip, to stay cheap.
    """
    net = _net(name, scale).eval()
    rf = net.receptive_field
    n, c = 2 * rf + 5, rf + 2  # room to see dependencies up to rf + 2 away from centre c
    for shape in ((n, 3), (3, n)):
        x = torch.rand(1, net.in_channels, *shape, requires_grad=True)
        out = net(x)
        cy, cx = (c, 1) if shape[0] == n else (1, c)
        out[..., cy * scale : (cy + 1) * scale, cx * scale : (cx + 1) * scale].sum().backward()
        g = x.grad.abs().sum(dim=(0, 1)).sum(dim=1 if shape[0] == n else 0)
        reach = (torch.nonzero(g).flatten() - c).abs().max()
        assert reach <= rf, f"depends on LR pixels {int(reach)} away, declares {rf}"


REPARAM = [p for p in CASES if hasattr(MODELS[p.values[0]].builder, "reparameterize")]


@pytest.mark.parametrize(("name", "scale"), REPARAM)
def test_reparameterize_keeps_outputs(name: str, scale: int) -> None:
    net = _net(name, scale).eval()
    x = _lr(net)
    with torch.no_grad():
        before = net(x)
        net.reparameterize()
        after = net(x)
    torch.testing.assert_close(after, before, atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", list(MODELS))
def test_untrained_network_reports_untrained(name: str) -> None:
    scale = MODELS[name].scales[0]
    up = srlab.load_model(name, scale)
    if not MODELS[name].trainable:
        assert up.trained
    elif not shipped_weights_path(name, scale).is_file():
        assert up.trained is False


# --- architecture specifics -------------------------------------------------------------


def test_srcnn_parameter_count() -> None:
    assert count_params(SRCNN(scale=2)) == 15_616 + 2_080 + 2_403 == 20_099


@pytest.mark.parametrize(("depth", "params"),
                         [(5, 114_307), (10, 298_947), (15, 483_587), (20, 668_227)])
def test_vdsr_depth_parameter_counts(depth: int, params: int) -> None:
    assert count_params(VDSR(scale=3, depth=depth)) == params == 1_792 + (depth - 2) * 36_928 \
        + 1_731
    assert MODELS["vdsr" if depth == 20 else f"vdsr-{depth}"].kwargs == {"depth": depth}


def test_vdsr_20_passes_gradient_to_its_first_layer_at_init() -> None:
    # PyTorch's default init silenced the 20-layer body (first/last gradient ratio 1.7e-7 by
    # tools/probes.py vdsr-init); He's init, as in the paper, keeps it trainable
    torch.manual_seed(0)
    net = VDSR(scale=2, in_channels=1, depth=20)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    x, y = torch.rand(4, 1, 24, 24), torch.rand(4, 1, 48, 48)
    (net(x) - y).abs().mean().backward()
    assert convs[0].weight.grad.norm() > 1e-4 * convs[-1].weight.grad.norm()
    # and it starts at (close to) its bicubic input
    up = torch.nn.functional.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False)
    assert (net(x) - up).abs().max() < 0.05


def test_autoencoder_parameter_count_and_dropout_only_in_training() -> None:
    net = _net("autoencoder", 2)
    assert count_params(net) == 1_110_403
    x = _lr(net, 6, 6)
    with torch.no_grad():
        assert torch.equal(net.eval()(x), net(x))
        assert not torch.equal(net.train()(x), net(x))


def test_fcn_multi_heads() -> None:
    net = _net("fcn-multi", 4).eval()
    x = _lr(net, 5, 6)
    with torch.no_grad():
        outs = net.forward_all(x)
        assert set(outs) == {2, 4}
        assert outs[2].shape[-2:] == (10, 12) and outs[4].shape[-2:] == (20, 24)
        assert torch.equal(net(x), outs[4])
        x2 = build_model("fcn-multi", 2)
        x2.load_state_dict(net.state_dict())  # one weights file serves both scales
        assert torch.equal(x2.eval()(x), outs[2])


def test_vgg_features_load_torchvision_keys(tmp_path) -> None:
    from safetensors.torch import save_file

    ref = VGGFeatures(layers=9)
    assert ref.out_channels == 128
    state = {k: torch.randn_like(v) for k, v in ref.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # a full vgg16 file has more keys
    save_file(state, str(tmp_path / "vgg.safetensors"))
    torch.save({k: v for k, v in state.items() if k.startswith("features.")},
               tmp_path / "vgg.pth")
    for fname in ("vgg.safetensors", "vgg.pth"):
        vgg = VGGFeatures(layers=4, weights=str(tmp_path / fname))
        assert torch.equal(vgg.features[2].weight, state["features.2.weight"])
        assert not any(p.requires_grad for p in vgg.parameters())
    net = build_model("fcn-vgg", 2, vgg_weights=str(tmp_path / "vgg.safetensors"))
    assert torch.equal(net.vgg.features[0].bias, state["features.0.bias"])
    save_file({"features.0.weight": torch.zeros(1)}, str(tmp_path / "bad.safetensors"))
    with pytest.raises(WeightsError):
        VGGFeatures(weights=str(tmp_path / "bad.safetensors"))


def test_srgan_discriminator_any_patch_size() -> None:
    torch.manual_seed(0)
    disc = Discriminator()
    for size in (24, 33):
        logits = disc(torch.rand(2, 3, size, size))
        assert logits.shape == (2, 1)
    torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.ones_like(logits)) \
        .backward()
    assert all(torch.isfinite(p.grad).all() for p in disc.parameters())


def test_transposed_conv_has_more_checkerboard_than_resize_conv() -> None:
    """Odena et al.: on a flat input a random transposed conv prints a period-s pattern."""
    flat = torch.full((1, 3, 24, 24), 0.5)
    for scale in (2, 3, 4):
        scores = {}
        for upsampler in ("transposed", "resize-nearest", "resize-bilinear"):
            torch.manual_seed(0)
            net = UpsamplingNet(scale=scale, upsampler=upsampler).eval()
            with torch.no_grad():
                out = net(flat)
            scores[upsampler] = checkerboard_score(out, scale,
                                                   border=(net.receptive_field + 1) * scale)
        assert scores["transposed"] > 1e-6
        assert scores["transposed"] > 100 * max(scores["resize-nearest"],
                                                scores["resize-bilinear"])


def test_checkerboard_score_inputs() -> None:
    y, x = np.mgrid[0:24, 0:24]
    pattern = ((x + y) % 2).astype(np.float32)  # a pure period-2 checkerboard
    smooth = (x / 24.0).astype(np.float32)
    assert checkerboard_score(pattern, 2) == pytest.approx(0.25)
    assert checkerboard_score(smooth, 2) < 1e-12
    assert checkerboard_score(np.stack([pattern] * 3, -1), 2) == pytest.approx(0.25)
    assert checkerboard_score(torch.from_numpy(pattern), 2) == pytest.approx(0.25)


@pytest.mark.parametrize("dilation", [1, 3])
def test_span_dilation_widens_the_declared_field_exactly(dilation: int) -> None:
    """The declared field is the real one (not only a bound): tiling overlaps rely on it."""
    torch.manual_seed(0)
    net = SPAN(scale=2, in_channels=1, feat=4, blocks=4, convs=2, skip="repeat",
               attention=False, act="relu", dilation=dilation).eval()
    with torch.no_grad():  # positive weights: no tap cancels, so the gradient shows the reach
        for p in net.parameters():
            p.uniform_(0.01, 0.1)
    rf = net.receptive_field
    assert rf == 1 + 4 * 2 + 2 * (dilation - 1) + 2
    x = torch.rand(1, 1, 2 * rf + 5, 3, requires_grad=True)
    net(x)[..., 2 * (rf + 2), 2].sum().backward()
    g = x.grad.abs().sum(dim=(0, 1, 3))
    assert int((torch.nonzero(g).flatten() - (rf + 2)).abs().max()) == rf


def test_span_dilated_rep_branches_fuse_into_one_dilated_conv() -> None:
    torch.manual_seed(0)
    net = SPAN(scale=2, in_channels=1, feat=4, blocks=2, rep=True, dilation=2).eval()
    x = torch.rand(1, 1, 13, 11)
    with torch.no_grad():
        before = net(x)
        net.reparameterize()
        after = net(x)
    torch.testing.assert_close(after, before, atol=1e-5, rtol=0)
    assert net.blocks[1].convs[1].fused.dilation == (2, 2)


def test_span_refuses_a_dilation_below_one() -> None:
    with pytest.raises(ValueError, match="dilation"):
        SPAN(scale=2, dilation=0)


@pytest.mark.parametrize("arch", [
    {"feat": 8, "blocks": 1, "attention": False, "act": "relu", "skip": "repeat"},  # span's
    FAST,  # a RepConv head (3x3 + 1x1 branches): both branches are lifted
], ids=["plain", "rep"])
def test_luma_to_rgb_computes_the_same_luma_and_carries_the_colour(arch: dict) -> None:
    """The lifted RGB net is the luma net on Y, its residual written with gain g to each
    colour and the colour carried by the repeat skip: rgb(x) = g * luma(Y) + nearest(x - g*Y),
    away from the zero-padded border."""
    from srlab.image.color import luma_terms
    from srlab.zoo.span import is_luma, luma_to_rgb

    torch.manual_seed(0)
    luma = SPAN(scale=2, **{**arch, "in_channels": 1})
    tensors = luma.state_dict()
    assert is_luma(tensors)
    rgb = SPAN(scale=2, **{**arch, "in_channels": 3})
    lifted = luma_to_rgb(tensors)
    assert not is_luma(lifted)
    rgb.load_state_dict(lifted)
    x = torch.rand(1, 3, 20, 18, generator=torch.Generator().manual_seed(1))
    row, off, g = luma_terms()
    y = (x * row).sum(1, keepdim=True) + off
    with torch.no_grad():
        want = g * luma(y) + torch.nn.functional.interpolate(x - g * y, scale_factor=2)
        got = rgb(x)
        assert not torch.allclose(got, rgb(x.flip(1)), atol=1e-3)  # it does see colour
    b = 2 * luma.receptive_field  # output pixels that can see the padding differ
    assert torch.allclose(got[..., b:-b, b:-b], want[..., b:-b, b:-b], atol=1e-5)

"""A luma model's colour: the guided filter (image.guided) and the real-photo models' guided
chroma (runtime.upscaler.ChromaPolicy): colour edges follow the luma, colour noise goes,
luma is untouched, and every backend and blend keeps the policy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from srlab.api import load_model
from srlab.image.color import rgb_to_ycbcr
from srlab.image.guided import guided_upsample
from srlab.image.metrics import rgb_to_y
from srlab.image.resize import upscale_bicubic
from srlab.runtime.upscaler import GUIDED_CHROMA
from srlab.zoo.registry import MODELS


def _step(h: int, w: int, at: int) -> torch.Tensor:
    x = torch.zeros(1, 1, h, w)
    x[..., at:] = 1.0
    return x


def test_colour_edge_follows_the_guide_edge_where_bicubic_bleeds():
    s = 4
    guide = _step(32, 64, 32) * 0.6 + 0.2  # a sharp luma edge between HR columns 31 and 32
    lr = F.avg_pool2d(guide, s)  # the LR colour has the same edge, at LR resolution
    guided = guided_upsample(guide, lr, s, 1, 1e-4)
    bicubic = upscale_bicubic(lr, s)
    # columns 26..37 straddle the edge: guided chroma is a step there, bicubic a ramp
    def soft(x: torch.Tensor) -> int:
        row = x[0, 0, 16, 24:40]
        return int(((row > 0.3) & (row < 0.7)).sum())
    assert soft(guided) == 0 and soft(bicubic) >= 2
    assert (guided - guide).abs().max() < 0.1 < (bicubic - guide).abs().max()


def test_colour_noise_the_luma_does_not_carry_is_averaged_away():
    g = torch.Generator().manual_seed(0)
    lr = 0.5 + 0.05 * torch.randn(1, 2, 24, 24, generator=g)  # speckled chroma
    flat = torch.full((1, 1, 96, 96), 0.4)  # a flat luma
    guided = guided_upsample(flat, lr, 4, 1, 1e-4)
    assert guided.std() < 0.5 * upscale_bicubic(lr, 4).std()


def test_a_constant_stays_constant_and_a_sliver_still_gets_colour():
    const = torch.full((1, 2, 10, 12), 0.3)
    guide = torch.rand(1, 1, 40, 48, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(guided_upsample(guide, const, 4, 1, 1e-4),
                               torch.full((1, 2, 40, 48), 0.3), atol=1e-5, rtol=0)
    tiny = torch.rand(1, 2, 1, 3)  # a sliver of a tile: no window fits, colour still comes
    assert guided_upsample(torch.rand(1, 1, 4, 12), tiny, 4, 1, 1e-4).shape == (1, 2, 4, 12)


def test_real_photo_models_and_only_they_get_guided_chroma():
    guided = {n for n, spec in MODELS.items() if spec.guided_chroma}
    assert guided == {"span-real", "span-real-gan"}
    assert all(MODELS[n].kwargs.get("in_channels", 1) == 1 for n in guided)  # luma models
    assert load_model("span-real", 4).chroma == GUIDED_CHROMA
    assert load_model("span", 4).chroma is None  # the protocol models keep bicubic colour
    assert load_model("span-real", 4, denoise=0.5).chroma == GUIDED_CHROMA  # a blend too
    assert load_model("span-real", 4, denoise=0.0).chroma is None  # that is span


@pytest.mark.parametrize("backend", ["onnx", "torch-bf16"])
def test_every_backend_keeps_the_policy(backend):
    assert load_model("span-real", 4, backend=backend).chroma == GUIDED_CHROMA


def test_guided_chroma_changes_the_colour_and_leaves_the_luma():
    rng = np.random.default_rng(3)
    img = (rng.random((24, 20, 3)) * 120 + 60).astype(np.uint8)  # mid-range: no clipping
    up = load_model("span-real", 4, backend="torch")
    guided = up.upscale_array(img)
    up.chroma = None
    bicubic = up.upscale_array(img)
    assert np.abs(rgb_to_y(guided) - rgb_to_y(bicubic)).max() <= 1.0  # rounding only
    x = lambda a: torch.from_numpy(a.astype(np.float64) / 255).permute(2, 0, 1)[None]  # noqa: E731
    cbcr = (rgb_to_ycbcr(x(guided)) - rgb_to_ycbcr(x(bicubic)))[:, 1:]
    assert cbcr.abs().max() * 255 > 5  # the colour did change


def test_the_score_cache_tells_the_colour_policy_apart(monkeypatch):
    from srlab.eval import benchmark
    from srlab.runtime import upscaler

    key, span_key = (benchmark._model_identity(n, 4, None) for n in ("span-real", "span"))
    monkeypatch.setattr(upscaler, "GUIDED_CHROMA", upscaler.ChromaPolicy(radius=2))
    assert benchmark._model_identity("span-real", 4, None) not in (key, None)
    assert benchmark._model_identity("span", 4, None) == span_key  # bicubic colour: as before

"""srlab's flagship: a SPAN-style network of re-parameterisable 3x3 convolutions.

Papers:
- SPAN: Wan et al., "Swift Parameter-free Attention Network for Efficient Super-Resolution",
  CVPR-W 2024 (winner of the NTIRE 2024 efficient-SR runtime track).
- ECBSR: Zhang et al., "Edge-oriented Convolution Block for Real-time Super Resolution on
  Mobile Devices", ACM MM 2021 (training-time multi-branch convs fused into one 3x3).
- RepVGG: Ding et al., CVPR 2021 (3x3 + 1x1 + identity branches fused at inference).

Why this design for a CPU: among the efficient-SR line (IMDN, RFDN, RLFN, SAFMN, SPAN) it is
the one made only of dense 3x3 convolutions and element-wise ops — no channel splits, no
pooling, no attention maps computed from global statistics — so every FLOP runs in oneDNN's
fastest kernel and the runtime per output pixel is the lowest at a given PSNR. SPAN's
attention is parameter-free (``sigmoid(h) - 0.5`` gating), and its training-time branches
fold into single 3x3 convs for inference (``reparameterize``). We keep the branches cheap
(3x3 + 1x1 + identity, not SPAN's 2x channel expansion), because on a CPU the *training*
cost decides how good the shipped weights get.

Both shipped variants work on luma (Y, BT.601) like ESPCN/FSRCNN, with chroma by bicubic:
the protocol scores Y only, and a luma net costs a third of an RGB one. Their global skip is
the input repeated s^2 times before the pixel shuffle (nearest upsampling for free).

Measured, not assumed — why the quality variant uses ReLU in plain residual blocks: with
SiLU (SPAN's choice) in plain residual blocks and PyTorch's default init, the body's signals
are small and SiLU is nearly linear there (silu(x) ~ x/2 near 0), so the whole net is
close to a linear filter. Every such net — luma or RGB, 48 channels, any learning rate
tried — sat at the best *linear* upsampler's PSNR (+0.57 dB over bicubic on our validation
images) for thousands of CPU iterations: a Y and an RGB run gave outputs 55 dB apart from
each other. ReLU is scale-free, so the same net left that plateau in the first 500
iterations (29.45 dB vs 28.92 at iteration 500). SPAN's gate ``sigmoid(h) - 0.5`` is
nonlinear at any scale, which is why the gated small variants trained fine with SiLU; the
open "RGB stalls" question of the first training session was this, not colour.

Variants (registry names; parameter counts in training form, x4):
=========  ========  ====  ======  =====  ==========================  ===========
name       channels  feat  blocks  convs  skip / rep / block           params (x4)
=========  ========  ====  ======  =====  ==========================  ===========
span-fast  Y (1)     16    2       2      repeat / yes / SPAN gate     16,000
span       Y (1)     48    14      2      repeat / no / residual ReLU  614,800
=========  ========  ====  ======  =====  ==========================  ===========

Why the quality variant grew from 32x4 (99,824 parameters, Set5 x4 31.09 dB after 26 CPU
minutes) to 64x8: the quality bar is CARN-M's level (31.92 dB, 412K parameters), and a net
of plain 3x3 convolutions gets its capacity from width and depth alone. Measured on this
CPU with bf16 autocast, a 64x8 step (batch 16 of 48 px patches) costs 0.69 s on one
thread (``python tools/probes.py train-speed --threads 1``), so tens of thousands of steps
fit in a few CPU-hours, resumed across sessions from the run's committed checkpoint.
Without the SPAN gate or re-parameterised branches it is EDSR-baseline's block at half the
depth, on luma. It plateaued short of the bar: validation 30.58 -> 30.60 dB and Set5 31.52
-> 31.50 from iteration 13,500 to 18,000 while the learning rate fell from 42% to 15% of
its peak (runs/span64_x4/metrics.csv; ``srlab benchmark --weights``). Growing it to 16
blocks (``configs/span_x4_grow16.yaml``: the new blocks zeroed by ``model.zero``, 7,500
iterations, 2.6 h wall clock) bought +0.01 to +0.02 dB on the four benchmark sets for twice
the runtime, and ``python tools/probes.py overfit configs/span_x4_grow16.yaml`` finds no
memorisation by the 64x8 (gain over bicubic 2.24 dB on held-out images, 1.74 on training
images), so the 64x8 stayed and the open question was the recipe, not the width or
depth. The recipe change that did move it is scale augmentation (``data.rescale``: each
training image also at 0.9 ... 0.6 of its size): 4,000 more
iterations with it (``configs/span_x4_rescale.yaml``) raised validation 30.60 -> 30.65 and
every benchmark set by 0.03-0.06 dB, where 7,500 iterations without it (the 64x16 run) gave
0.01-0.02. Each shipped weights file carries its own architecture in its metadata,
so weights trained with an earlier variant (see their model cards) still load.

Registry ``span`` is 48 channels x 14 blocks (614,800 parameters at x4), the 64x8's cost
per step with a deeper receptive field. Trained the same way (``configs/span48x14_x4.yaml``
then ``configs/span48x14_x4_rescale.yaml``) it ended 0.08 dB of validation above the 64x8
(30.731 vs 30.653) and 0.02-0.06 dB above it on every benchmark set. x2 and x3 followed
(``configs/span48x14_x2.yaml``, ``configs/span48x14_x3.yaml``: one scale-augmented cycle
each from the x4's trunk), each ending above the validation of the 64x8 weights they
replaced (which had two cycles each) and above them on every benchmark set but x2 Set14
(-0.009 dB). Every shipped scale is now this body, and a fresh ``srlab train`` builds it.
A further x4 cycle on 64 px LR patches (``configs/span48x14_x4_patch64.yaml``; x4 had only
seen 48 px) left validation flat (30.730 vs 30.731) but raised all four benchmark sets by
0.004-0.017 dB, so it shipped. One long cycle at a higher rate
(``configs/span48x14_x4_long.yaml``, 14,000 iterations in bf16 on an AVX512-BF16 CPU, as
many as a session holds there) raised validation 30.730 -> 30.775 and every set by
0.01-0.05 dB (Urban100 most), but went flat with the rate at 30% of its peak. The same
cycle again with LR drawn from all 16 sampling grids of each HR image
(``configs/span48x14_x4_phases.yaml``, ``data.phases``) moved that plateau up (validation
30.775 -> 30.802) and every set by 0.02-0.06 dB: that plateau was at least partly the
data's, not only the body's. A second phases cycle with twice the scale levels
(``configs/span48x14_x4_phases2.yaml``, 18,000 iterations over two sessions) added less:
validation 30.802 -> 30.811, Urban100 and Set14 +0.03 dB, Set5 and BSD100 +0.01 or less.
Growing that net to 48x20 (``configs/span48x20_x4_grow.yaml``: blocks 14-19 new and zeroed,
the same phases recipe, 14,000 iterations over two sessions) raised validation 30.811 ->
30.832 but Set5 and Urban100 only 0.007 and 0.012 dB, for 1.41x the parameters (864,208; every
conv runs on the LR grid, so about 1.4x the work per pixel too), much as the 64x16 grow had:
the 48x14 stays the shipped body. Drawing each patch as the most detailed of three random
positions (``data.candidates``, ``configs/span48x14_x4_detail.yaml``) left validation and
Set5/Urban100 where they were (best 30.809 vs 30.811; 31.686 / 25.461 vs 31.690 / 25.465).
The shipped x4 is the phases2 weights distilled from their own 8-way self-ensemble
(``configs/span48x14_x4_distill.yaml``, ``distill.py``: an L1 term toward the ensemble's
output beside the one toward HR, 4,000 iterations at a third of the rate): every set rose,
Set5 +0.030, Set14 +0.016, BSD100 +0.008, Urban100 +0.002 dB, about a fifth of the
ensemble's own Set5 gain (31.83) carried into one pass.

``dilation`` widens the receptive field at no cost in parameters or time: every second
block's last 3x3 conv is dilated, so a 48x14 body sees 91 LR pixels instead of 63 at
``dilation=3``. Trained from scratch beside an undilated control on the same recipe
(``configs/span48x14_x4_ctx_d3.yaml`` and ``_d1.yaml``, 5,000 iterations each), it was
behind at every validation point (by 0.07-0.09 dB) and at 5,000 on Set5 and Urban100 (31.10
/ 24.87 against 31.20 / 24.94), so the shipped body stays undilated. Nor does the shipped x4
memorise its training set: ``python tools/probes.py overfit configs/span48x14_x4_distill.yaml
--weights runs/span48x14_x4_distill/best.safetensors --n 100`` gives a gain over bicubic of
2.46 dB on the held-out images and 1.56 on training images, against 2.31 and 1.46 for the
first 48x14 stage (``--weights runs/span48x14_x4/best.safetensors``): 58,000 iterations
later the held-out gain rose by 0.15 dB and the training gain by 0.11, so what it lacks for
Urban100 is not more images of the same kind.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SPAN", "RepConv", "FAST", "QUALITY"]

FAST: dict = {"in_channels": 1, "feat": 16, "blocks": 2, "convs": 2, "skip": "repeat",
              "rep": True, "attention": True}
QUALITY: dict = {"in_channels": 1, "feat": 48, "blocks": 14, "convs": 2, "skip": "repeat",
                 "rep": False, "attention": False, "act": "relu"}


class RepConv(nn.Module):
    """3x3 conv trained as 3x3 + 1x1 (+ identity) branches, fusable into one 3x3 conv."""

    def __init__(self, *, cin: int, cout: int, dilation: int = 1) -> None:
        super().__init__()
        self.conv3 = nn.Conv2d(cin, cout, 3, padding=dilation, dilation=dilation)
        self.conv1 = nn.Conv2d(cin, cout, 1)
        self.identity = cin == cout
        self.fused: nn.Conv2d | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused is not None:
            return self.fused(x)
        out = self.conv3(x) + self.conv1(x)
        return out + x if self.identity else out

    @torch.no_grad()
    def fuse(self) -> None:
        w = self.conv3.weight.clone()
        w += F.pad(self.conv1.weight, [1, 1, 1, 1])
        if self.identity:
            idx = torch.arange(w.shape[0])
            w[idx, idx, 1, 1] += 1.0
        d = self.conv3.dilation[0]  # the 1x1 and identity sit on the centre tap at any dilation
        conv = nn.Conv2d(w.shape[1], w.shape[0], 3, padding=d, dilation=d).to(w.device, w.dtype)
        conv.weight.copy_(w)
        conv.bias.copy_(self.conv3.bias + self.conv1.bias)
        self.fused = conv
        del self.conv3, self.conv1


def _conv3(cin: int, cout: int, rep: bool, dilation: int = 1) -> nn.Module:
    if rep:
        return RepConv(cin=cin, cout=cout, dilation=dilation)
    return nn.Conv2d(cin, cout, 3, padding=dilation, dilation=dilation)


class _Block(nn.Module):
    """Convs with SiLU (or ReLU) between, then either SPAN's gate
    ``(h + x) * (sigmoid(h) - 0.5)`` or a plain residual ``x + h``.

    The gate scales the signal by less than 0.5 per block; with 2 blocks (span-fast) that is
    harmless, but in an 8-block trunk it starved the body of signal and a CPU-length run
    stalled near bicubic (measured: val PSNR flat at +0.46 dB over bicubic for 1,750
    iterations while span-fast kept improving). The quality variant therefore uses plain
    residual blocks, as EDSR-baseline does.
    """

    def __init__(self, *, feat: int, convs: int, rep: bool, attention: bool,
                 act: Literal["silu", "relu"], dilation: int = 1) -> None:
        super().__init__()
        # only the last conv is dilated: after an undilated 3x3, a dilation of up to 3 still
        # leaves no pixel of the block's window unseen (larger ones leave gaps)
        self.convs = nn.ModuleList(
            _conv3(feat, feat, rep, dilation if i == convs - 1 else 1) for i in range(convs)
        )
        self.attention = attention
        self.act = F.silu if act == "silu" else F.relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for i, conv in enumerate(self.convs):
            h = conv(h)
            if i < len(self.convs) - 1:
                h = self.act(h)
        if self.attention:
            return (h + x) * (torch.sigmoid(h) - 0.5)
        return x + h


class SPAN(nn.Module):
    """LR -> SR: head conv, gated blocks, feature fusion, pixel-shuffle tail, global skip."""

    def __init__(
        self,
        *,
        scale: int,
        in_channels: int = 3,
        feat: int = 48,
        blocks: int = 8,
        convs: int = 2,
        skip: Literal["bicubic", "repeat", "none"] = "bicubic",
        rep: bool = False,
        attention: bool = True,
        act: Literal["silu", "relu"] = "silu",
        dilation: int = 1,
    ) -> None:
        super().__init__()
        if skip not in ("bicubic", "repeat", "none"):
            raise ValueError(f"skip must be bicubic, repeat or none, not {skip!r}")
        if act not in ("silu", "relu"):
            raise ValueError(f"act must be silu or relu, not {act!r}")
        if dilation < 1:
            raise ValueError(f"dilation must be at least 1, not {dilation}")
        self.scale = scale
        self.in_channels = in_channels
        self.skip = skip
        self.head = _conv3(in_channels, feat, rep)
        # every second block ends in a conv of this dilation; the field below is their sum
        dilations = [dilation if i % 2 else 1 for i in range(blocks)]
        self.blocks = nn.ModuleList(
            _Block(feat=feat, convs=convs, rep=rep, attention=attention, act=act, dilation=d)
            for d in dilations
        )
        self.body_tail = _conv3(feat, feat, rep)
        self.fusion = nn.Conv2d(2 * feat, feat, 1)
        self.tail = nn.Conv2d(feat, in_channels * scale * scale, 3, padding=1)
        self.receptive_field = (1 + sum(convs - 1 + d for d in dilations) + 1 + 1
                                + (2 if skip == "bicubic" else 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        head = self.head(x)
        h = head
        for block in self.blocks:
            h = block(h)
        h = self.fusion(torch.cat([head, self.body_tail(h)], dim=1))
        h = self.tail(h)
        if self.skip == "repeat":  # nearest upsampling of the input, added before the shuffle
            h = h + x.repeat_interleave(self.scale * self.scale, dim=1)
        out = F.pixel_shuffle(h, self.scale)
        if self.skip == "bicubic":
            out = out + F.interpolate(x, scale_factor=self.scale, mode="bicubic",
                                      align_corners=False)
        return out

    def reparameterize(self) -> None:
        """Fold every RepConv's branches into one 3x3 conv (inference only; irreversible)."""
        for m in self.modules():
            if isinstance(m, RepConv) and m.fused is None:
                m.fuse()

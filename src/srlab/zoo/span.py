"""SPAN: srlab's flagship, a network of re-parameterisable 3x3 convolutions on luma.

Papers:
- SPAN: Wan et al., "Swift Parameter-free Attention Network for Efficient Super-Resolution",
  CVPR-W 2024 (winner of the NTIRE 2024 efficient-SR runtime track).
- ECBSR (Zhang et al., ACM MM 2021) and RepVGG (Ding et al., CVPR 2021): training-time
  multi-branch convs (3x3 + 1x1 + identity) fused into one 3x3 for inference.

Why this design for a CPU: of the efficient-SR line (IMDN, RFDN, RLFN, SAFMN, SPAN) it is the
one made only of dense 3x3 convolutions and element-wise ops, so every FLOP runs in oneDNN's
fastest kernel. SPAN's attention is parameter-free (``sigmoid(h) - 0.5`` gating) and the
branches fold into single 3x3 convs (``reparameterize``); we keep the branches cheap, not
SPAN's 2x channel expansion, because on a CPU the training cost decides how good the shipped
weights get. Both variants work on luma (Y, BT.601) with chroma by bicubic, as ESPCN/FSRCNN
do (the protocol scores Y only; a luma net costs a third of an RGB one), and their global
skip is the input repeated s^2 times before the pixel shuffle. The quality variant uses
plain residual blocks with ReLU: with SiLU there and PyTorch's default init the net stays
close to a linear filter and trains no better than one. ``dilation`` dilates every second
block's last conv (a wider receptive field at the same cost).

Variants (registry names; parameter counts in training form, x4):
=========  ========  ====  ======  =====  ==========================  ===========
name       channels  feat  blocks  convs  skip / rep / block           params (x4)
=========  ========  ====  ======  =====  ==========================  ===========
span-fast  Y (1)     16    2       2      repeat / yes / SPAN gate     16,000
span       Y (1)     48    14      2      repeat / no / residual ReLU  614,800
=========  ========  ====  ======  =====  ==========================  ===========

Each weights file carries its architecture in its metadata, so weights of earlier variants
still load. How the body was chosen and the shipped weights trained: docs/training-history.md.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SPAN", "RepConv", "FAST", "QUALITY", "is_luma", "luma_to_rgb"]

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


def is_luma(tensors: dict[str, torch.Tensor]) -> bool:
    """Whether SPAN weights read one channel (luma): their head's convs take one input."""
    return any(k.startswith("head.") and v.ndim == 4 and v.shape[1] == 1
               for k, v in tensors.items())


def luma_to_rgb(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A luma SPAN's weights as those of the same SPAN on RGB that computes the same luma: the
    head reads Y from R, G, B (BT.601, color.py) and the tail writes the luma residual, times
    g = 255/219, to each colour; the global skip carries each pixel's colour (nearest for
    ``repeat``, as span's; bicubic for ``bicubic``). An RGB run started from these only has to
    learn the chroma instead of everything. Tensors of other modules are returned as they
    are."""
    from srlab.image.color import luma_terms

    row, off, gain = luma_terms()
    out = dict(tensors)
    for name, w in tensors.items():
        if not name.endswith("weight") or w.ndim != 4:
            continue
        bias = name[: -len("weight")] + "bias"
        if name.startswith("head.") and w.shape[1] == 1:
            # conv(Y) = conv(row . RGB + off): the offset moves into the bias
            out[name] = w * row
            if bias in tensors:
                out[bias] = tensors[bias] + w.sum(dim=(1, 2, 3)) * off
        elif name == "tail.weight":
            out[name] = gain * w.repeat(3, 1, 1, 1)
            if bias in tensors:
                out[bias] = gain * tensors[bias].repeat(3)
    return out

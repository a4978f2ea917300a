"""``torch-bf16``: the PyTorch network under CPU autocast to bfloat16.

Faster only on CPUs with AVX512-BF16 or AMX, and there only where measured (``runtime.cpu``,
``srlab bench``); weights stay float32, so the model is the trained one run at lower
precision (its PSNR cost is what ``srlab bench --store`` records for ``auto``).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from srlab.runtime.torch_model import load_torch_model
from srlab.runtime.upscaler import Upscaler

__all__ = ["Bf16Net", "load_bf16_model"]


class _Bf16Net(nn.Module):
    """The wrapped network under CPU autocast to bfloat16, returning float32.

    An ``nn.Module`` (not a bare callable) so the Upscaler still sees the parameters, and
    with the model contract's attributes copied from the network."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.scale = getattr(net, "scale", None)
        self.in_channels = getattr(net, "in_channels", 3)
        self.receptive_field = getattr(net, "receptive_field", 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = self.net(x)
        return out.float()


Bf16Net = _Bf16Net  # public name: model files (runtime.foreign) wrap their network too


def load_bf16_model(name: str, scale: int = 4, *, weights: str | Path | None = None,
                    fuse: bool = True) -> Upscaler:
    """The model with its network in bfloat16 (CPU autocast)."""
    up = load_torch_model(name, scale, weights=weights, fuse=fuse)
    assert isinstance(up.net, nn.Module)
    out = Upscaler(_Bf16Net(up.net), name=up.name, scale=up.scale, meta=up.meta,
                   params=up.params)
    out.backend, out.chroma = "torch-bf16", up.chroma
    return out

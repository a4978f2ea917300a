"""Geometric self-ensemble: average a network's outputs over the 8 flips and rotations.

Timofte, Rothe and Van Gool, "Seven ways to improve example-based single image super
resolution" (CVPR 2016), and EDSR+ (Lim et al. 2017) use it: SR networks are not exactly
equivariant to the dihedral group, so averaging the 8 transformed predictions (each mapped
back) removes part of the error at no training cost. It costs 8 forward passes, so it is an
option (``srlab upscale --self-ensemble``), never the default, and scores measured with it are
labelled as such, apart from the single-pass figures the quality bars are about.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = ["SelfEnsemble", "dihedral", "undo_dihedral"]


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """The k-th of the 8 dihedral transforms (k in 0..7) of an NCHW tensor: k % 4 quarter
    turns, then a horizontal flip when k >= 4."""
    y = torch.rot90(x, k % 4, dims=(2, 3))
    return torch.flip(y, dims=(3,)) if k >= 4 else y


def undo_dihedral(y: torch.Tensor, k: int) -> torch.Tensor:
    """The inverse of ``dihedral(., k)``."""
    if k >= 4:
        y = torch.flip(y, dims=(3,))
    return torch.rot90(y, -(k % 4), dims=(2, 3))


class SelfEnsemble(nn.Module):
    """``net`` averaged over the 8 dihedral transforms of its input.

    ``net`` is a module or any callable on NCHW tensors (an ONNX Runtime session wrapper).
    Keeps ``net``'s ``in_channels`` and ``receptive_field`` so ``Upscaler`` treats it as the
    network it wraps (colour handling, tile overlap).
    """

    def __init__(self, net: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.net = net
        self.in_channels: int = getattr(net, "in_channels", 3)
        self.receptive_field: int = getattr(net, "receptive_field", 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)  # k = 0 first: also sets the output's dtype and layout
        for k in range(1, 8):
            out = out + undo_dihedral(self.net(dihedral(x, k)), k)
        return out / 8

"""Frozen VGG16 feature extractor, for the fcn-vgg branch and the VGG perceptual loss.

Paper: Simonyan, Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", ICLR 2015; used as a perceptual loss by Johnson et al. (ECCV 2016) and SRGAN
(Ledig et al., CVPR 2017).

The module mirrors ``torchvision.models.vgg16().features[:layers]`` exactly (same indices), so
a torchvision-style state dict (``features.0.weight``, ...) loads by name. srlab never
downloads anything: pass the path of a local file (safetensors, or a tensors-only
``.pth`` read with ``torch.load(weights_only=True)``); with no path the weights are random,
which is only useful for tests. Inputs are RGB in [0, 1]; the ImageNet mean/std
normalisation happens inside. Parameters are frozen (``requires_grad=False``).

``layers`` counts modules of torchvision's ``features`` list: 4 ends at relu1_2 (64 ch), 9 at
relu2_2 (128 ch), 16 at relu3_3, 23 at relu4_3, 30 at relu5_3 (see ``LAYERS``).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from srlab.zoo.weights import WeightsError, read_weights

__all__ = ["VGGFeatures", "LAYERS"]

# torchvision's VGG16 configuration "D": channels per conv, "M" = 2x2 max-pool
_CFG: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
                         512, 512, 512, "M", 512, 512, 512, "M"]
LAYERS = {"relu1_2": 4, "relu2_2": 9, "relu3_3": 16, "relu4_3": 23, "relu5_3": 30}
_N_MODULES = sum(1 if v == "M" else 2 for v in _CFG)  # 31
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _vgg16_features(layers: int) -> list[nn.Module]:
    """The first ``layers`` modules of torchvision's ``vgg16().features`` (31 in all)."""
    mods: list[nn.Module] = []
    cin = 3
    for v in _CFG:
        if len(mods) >= layers:
            break
        if v == "M":
            mods.append(nn.MaxPool2d(2, 2))
        else:
            assert isinstance(v, int)
            mods += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=False)]
            cin = v
    return mods


class VGGFeatures(nn.Module):
    """``vgg16.features[:layers]`` with ImageNet normalisation; frozen; local weights only."""

    def __init__(self, *, layers: int = 4, weights: str | Path | None = None) -> None:
        super().__init__()
        if not 1 <= layers <= _N_MODULES:
            raise ValueError(f"layers must be in 1..{_N_MODULES}, not {layers}")
        self.features = nn.Sequential(*_vgg16_features(layers)[:layers])
        self.out_channels = next(m.out_channels for m in reversed(self.features)
                                 if isinstance(m, nn.Conv2d))
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1),
                             persistent=False)
        self.requires_grad_(False)
        if weights is not None:
            self.load(weights)

    def load(self, path: str | Path) -> None:
        """Load torchvision-style keys (``features.N.weight``); extra keys are ignored."""
        tensors, _ = read_weights(path)
        tensors = {k.removeprefix("module."): v for k, v in tensors.items()}
        own = self.state_dict()
        picked: dict[str, torch.Tensor] = {}
        for key, ref in own.items():
            src = tensors.get(key, tensors.get(key.removeprefix("features.")))
            if src is None:
                raise WeightsError(f"{Path(path).name} has no VGG16 tensor '{key}'")
            if src.shape != ref.shape:
                raise WeightsError(f"{Path(path).name}: '{key}' has shape "
                                   f"{tuple(src.shape)}, VGG16 needs {tuple(ref.shape)}")
            picked[key] = src.to(ref.dtype)
        self.load_state_dict(picked)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features((x - self.mean) / self.std)

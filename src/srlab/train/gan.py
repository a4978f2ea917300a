"""The GAN phase of a run (``gan.enabled``): a discriminator trained beside the generator.

The generator trains alone for ``gan.pretrain_iters`` iterations (a content loss first, so
the discriminator does not learn to reject noise); after that every step adds the weighted
adversarial term to the generator's loss and then takes one discriminator step on HR (real)
against the detached SR output (fake). The discriminator and its optimiser are saved in the
run's checkpoint, so a resumed GAN run ends bit-exact too. ``gan.discriminator`` picks
SRGAN's image-level classifier or Real-ESRGAN's per-pixel U-Net (``discriminators``); the
binary cross-entropy below averages over whatever logits it returns.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import torch
import torch.nn.functional as F

from srlab.train.config import GanConfig

__all__ = ["Adversary"]


class Adversary:
    """The discriminator, its optimiser and the adversarial loss of one run."""

    def __init__(self, cfg: GanConfig, *, in_channels: int,
                 autocast: Callable[[], AbstractContextManager[Any]]) -> None:
        from srlab.train.discriminators import build_discriminator

        self.cfg = cfg
        self.autocast = autocast  # the run's precision, shared with the generator
        self.disc = build_discriminator(cfg.discriminator, in_channels=in_channels,
                                        feat=cfg.d_features)
        self.opt = torch.optim.Adam(self.disc.parameters(), lr=cfg.d_lr, betas=(0.9, 0.999))

    def active(self, it: int) -> bool:
        """Whether iteration ``it`` is past the generator-only warm-up."""
        return it >= self.cfg.pretrain_iters

    def generator_term(self, sr: torch.Tensor) -> torch.Tensor:
        """The weighted adversarial loss: how far the discriminator is from calling ``sr`` real."""
        with self.autocast():
            logits = self.disc(sr).float()
        return self.cfg.adv_weight * F.binary_cross_entropy_with_logits(
            logits, torch.ones_like(logits))

    def step(self, hr: torch.Tensor, sr: torch.Tensor) -> None:
        """One discriminator update: ``hr`` is real, ``sr`` (detached) fake."""
        with self.autocast():
            real, fake = self.disc(hr).float(), self.disc(sr.detach()).float()
        d_loss = F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) + \
            F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
        self.opt.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt.step()

    def parts(self) -> dict[str, Any]:
        """Its part of the checkpoint, under the keys checkpoints have always used."""
        return {"disc": self.disc, "d_opt": self.opt}

"""The GAN phase of a run (``gan.enabled``): a discriminator trained beside the generator.

The generator trains alone for ``gan.pretrain_iters`` iterations (a content loss first, so
the discriminator does not learn to reject noise); after that every step adds the weighted
adversarial term to the generator's loss and then takes one discriminator step on HR (real)
against the detached SR output (fake). The discriminator and its optimiser are saved in the
run's checkpoint, so a resumed GAN run ends bit-exact too. ``gan.discriminator`` picks
SRGAN's image-level classifier or Real-ESRGAN's per-pixel U-Net (``discriminators``); the
binary cross-entropy below averages over whatever logits it returns.

Two guards against a generator that wins by fooling the discriminator instead of making
texture (seen in span-real-gan's first 4,500 iterations: a faint 4-px grid at the pixel
shuffle's phase that the discriminator called real, which EMA averaged into flat output):
``gan.d_shift`` shows the discriminator every image at a random sub-period offset, and
``gan.r1`` penalises its gradient on real images so it cannot swing from one blind spot to
the next.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

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
        self.freq: nn.Module | None = None
        if cfg.freq_weight > 0:
            from srlab.train.discriminators import FrequencyDiscriminator

            self.freq = FrequencyDiscriminator(in_channels=in_channels, feat=cfg.d_features)
            self.freq_opt = torch.optim.Adam(self.freq.parameters(), lr=cfg.d_lr,
                                             betas=(0.9, 0.999))

    def active(self, it: int) -> bool:
        """Whether iteration ``it`` is past the generator-only warm-up."""
        return it >= self.cfg.pretrain_iters

    def _shift(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` translated by a random 0..d_shift-1 pixels per sample (reflect-padded)."""
        k = self.cfg.d_shift
        if k <= 1:
            return x
        n, _, h, w = x.shape
        padded = F.pad(x, (0, k - 1, 0, k - 1), mode="reflect")
        dy, dx = torch.randint(0, k, (2, n)).tolist()
        return torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])

    def generator_term(self, sr: torch.Tensor) -> torch.Tensor:
        """The weighted adversarial loss: how far the discriminator is from calling ``sr`` real."""
        with self.autocast():
            logits = self.disc(self._shift(sr)).float()
        term = self.cfg.adv_weight * _bce(logits, True)
        if self.freq is not None:  # float32 throughout: an FFT under bf16 loses the spikes
            term = term + self.cfg.freq_weight * _bce(self.freq(sr), True)
        return term

    def step(self, hr: torch.Tensor, sr: torch.Tensor) -> None:
        """One discriminator update: ``hr`` is real, ``sr`` (detached) fake."""
        hr = self._shift(hr)
        if self.cfg.r1 > 0:
            hr = hr.detach().requires_grad_(True)
        with self.autocast():
            real, fake = self.disc(hr).float(), self.disc(self._shift(sr.detach())).float()
        d_loss = _bce(real, True) + _bce(fake, False)
        if self.cfg.r1 > 0:  # gamma/2 * E||grad_x D(x)||^2, D(x) = an image's mean logit
            (grad,) = torch.autograd.grad(real.flatten(1).mean(1).sum(), hr, create_graph=True)
            d_loss = d_loss + self.cfg.r1 / 2 * grad.pow(2).flatten(1).sum(1).mean()
        self.opt.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt.step()
        if self.freq is not None:
            f_loss = _bce(self.freq(hr.detach()), True) + _bce(self.freq(sr.detach()), False)
            self.freq_opt.zero_grad(set_to_none=True)
            f_loss.backward()
            self.freq_opt.step()

    def parts(self) -> dict[str, Any]:
        """Its part of the checkpoint, under the keys checkpoints have always used."""
        parts: dict[str, Any] = {"disc": self.disc, "d_opt": self.opt}
        if self.freq is not None:  # new keys, so older checkpoints still load
            parts |= {"disc_freq": self.freq, "d_opt_freq": self.freq_opt}
        return parts


def _bce(logits: torch.Tensor, real: bool) -> torch.Tensor:
    """Binary cross-entropy of ``logits`` against all-real or all-fake labels."""
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)

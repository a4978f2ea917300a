"""Knowledge distillation: a trained network's output as a second training target.

Why srlab has it: srlab's x4 net averaged over the 8 flips and rotations of its input
(``ensemble.SelfEnsemble``, ``span+``) scores above the same weights in one pass (README,
self-ensemble table), so a better function than the one-pass net exists at the same size.
Training the net toward that ensemble's outputs as well as toward HR (Hinton et al.,
"Distilling the Knowledge in a Neural Network", 2015; an ensemble of the student itself as
the teacher is the "born-again" setting of Furlanello et al., ICML 2018) asks the one-pass
net to absorb part of the ensemble's gain (what it gave the shipped x4:
docs/training-history.md).

The teacher runs without gradients in the training loop (``train``), on the same LR batch
as the student; with ``ensemble`` it costs 8 forward passes per step, so a step takes about
3x as long. Only srlab weights files with metadata are accepted: the architecture
comes from the file, and nothing is unpickled (``weights.read_weights``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from torch import nn

from srlab.api import load_model
from srlab.runtime.ensemble import SelfEnsemble
from srlab.train.config import ConfigError, LossConfig, expand_path
from srlab.zoo.weights import WeightsError, read_weights

__all__ = ["load_teacher", "teacher_for"]


def load_teacher(path: str | Path, *, scale: int, in_channels: int, ensemble: bool) -> nn.Module:
    """The frozen teacher network in ``path`` (optionally its self-ensemble), in eval mode."""
    _, meta = read_weights(path)
    if meta is None:
        raise WeightsError(f"{Path(path).name} has no srlab metadata: a teacher's "
                           "architecture must come from its file")
    if meta.scale != scale:
        raise WeightsError(f"teacher {Path(path).name} is x{meta.scale}, the run is x{scale}")
    net = load_model(meta.arch, scale, weights=path, backend="torch").net
    takes = getattr(net, "in_channels", 3)
    if takes != in_channels:
        raise WeightsError(f"teacher {Path(path).name} takes {takes} input channels, "
                           f"the student {in_channels}")
    teacher = SelfEnsemble(net) if ensemble else net
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def teacher_for(cfg: LossConfig, *, scale: int, in_channels: int,
                log: Callable[[str], None]) -> nn.Module | None:
    """The run's teacher (``loss.teacher``), or None for a run without one."""
    if not cfg.teacher:
        return None
    if cfg.teacher_weight <= 0:
        raise ConfigError(f"loss.teacher_weight must be > 0, not {cfg.teacher_weight}")
    teacher = load_teacher(expand_path(cfg.teacher), scale=scale, in_channels=in_channels,
                           ensemble=cfg.teacher_ensemble)
    log(f"distilling from {cfg.teacher}" + (" (self-ensemble)" if cfg.teacher_ensemble else ""))
    return teacher

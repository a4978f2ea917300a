"""Typed training configuration, read from YAML with unknown keys rejected.

A config file mirrors these dataclasses section by section (see ``configs/``). ``--set
optim.lr=1e-3`` style overrides are parsed with YAML scalar rules and applied before
validation, so a typo in a key fails loudly instead of being silently ignored.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from srlab.image.datasets import shared_dir
from srlab.image.degrade import level

__all__ = ["Config", "DataConfig", "ModelConfig", "OptimConfig", "LossConfig", "RunConfig",
           "GanConfig", "load_config", "ConfigError", "expand_path"]


class ConfigError(ValueError):
    pass


def expand_path(p: str) -> str:
    """Expand ``${SRLAB_SHARED}`` (default ``../shared``) and ``~`` in a config path."""
    return os.path.expanduser(p.replace("${SRLAB_SHARED}", str(shared_dir())))


@dataclass
class ModelConfig:
    name: str = "span"
    scale: int = 4
    kwargs: dict[str, Any] = field(default_factory=dict)  # architecture overrides
    init: str | None = None  # weights file to start from (e.g. x4 weights for an x2 model)
    # parameter-name prefixes kept fixed, e.g. [trunk, heads.4] to fit a new head of a
    # multi-scale model on a trunk trained at another scale without disturbing it
    freeze: list[str] = field(default_factory=list)
    # parameter-name prefixes set to zero after init, e.g. the last conv of residual blocks
    # that ``init`` did not supply: a deeper net then starts computing exactly what the
    # shallower one it grew from computes (its new blocks are identities), instead of
    # starting from a random perturbation of it
    zero: list[str] = field(default_factory=list)


@dataclass
class DataConfig:
    train: list[str] = field(default_factory=lambda: ["${SRLAB_SHARED}/datasets/train/T91"])
    val: list[str] = field(default_factory=list)  # separate folders; empty = split from train
    val_fraction: float = 0.2
    val_max: int = 20  # validate on at most this many images (speed)
    patch: int = 32  # LR patch size
    batch: int = 16
    degradation: str = "clean"  # clean | moderate | severe | real (degrade.LEVELS)
    # fields of that level replaced for this run, e.g. {simple_prob: 0.85} (degrade.level)
    degradation_args: dict[str, Any] = field(default_factory=dict)
    augment: bool = True
    rotate_deg: float = 0.0  # arbitrary-angle rotation range, reflect-padded
    rescale: list[float] = field(default_factory=lambda: [1.0])  # HR pyramid (data.ImageSet)
    phases: bool = False  # LR from all scale**2 sampling grids of each HR (data.BatchSampler)
    candidates: int = 1  # draws per patch, the most detailed kept (data.BatchSampler)
    cache: bool = True
    prefetch: bool = True


@dataclass
class OptimConfig:
    name: str = "adam"  # adam | adamw | sgd
    lr: float = 5e-4
    weight_decay: float = 0.0
    momentum: float = 0.9  # sgd only
    schedule: str = "cosine"  # cosine | step | constant
    warmup_iters: int = 0
    step_every: int = 10_000  # step schedule: iterations between decays
    gamma: float = 0.5
    min_lr: float = 1e-6
    grad_clip: float = 0.0  # max grad norm, 0 = off
    ema: float = 0.0  # EMA decay of weights, 0 = off (e.g. 0.999)


@dataclass
class LossConfig:
    terms: dict[str, float] = field(default_factory=lambda: {"l1": 1.0})
    vgg_weights: str | None = None
    # knowledge distillation (distill.py): a trained weights file whose output (averaged over
    # the 8 flips and rotations with teacher_ensemble) is a second L1 target, weighted
    teacher: str | None = None
    teacher_weight: float = 1.0
    teacher_ensemble: bool = True
    # Real-ESRGAN's "sharpen GT": the content terms (not the GAN) compare with an unsharp-
    # masked HR, so the generator learns crisper edges than the (soft) training photos have
    sharpen_gt: bool = False


@dataclass
class GanConfig:
    enabled: bool = False
    pretrain_iters: int = 0  # generator-only (content loss) iterations before adversarial
    adv_weight: float = 1e-3
    d_lr: float = 1e-4
    discriminator: str = "vgg"  # vgg (SRGAN, one logit per image) | unet (Real-ESRGAN, per pixel)
    d_features: int = 64  # the discriminator's width (its first conv's channels)
    # the discriminator sees real and fake shifted by a random 0..d_shift-1 pixels per sample
    # (DiffAugment's translation, Zhao et al. 2020), so no blind spot of its stride-2 lattice
    # can be fooled by a grid at the generator's pixel-shuffle phase; 0 = off
    d_shift: int = 0
    r1: float = 0.0  # R1 gradient penalty on real images (Mescheder et al. 2018); 0 = off
    # weight of a second, Fourier-space discriminator's term (discriminators.
    # FrequencyDiscriminator, Fuoli et al. 2021) beside adv_weight's; 0 = none
    freq_weight: float = 0.0


@dataclass
class RunConfig:
    name: str = "run"
    out_dir: str = "runs"
    seed: int = 0
    epochs: int = 10
    iters_per_epoch: int = 200
    threads: int = 0  # 0 = torch default (all cores)
    snapshots: int = 3  # validation images saved as predictions every epoch
    guard_factor: float = 4.0  # loss > factor x running mean counts as a spike
    guard_every: int = 50  # iterations between in-memory good states for rollback
    channels_last: bool = True
    # bfloat16 autocast for the generator's forward pass (weights, loss and optimiser stay
    # float32): about 2x faster steps on CPUs with AVX512-BF16 or AMX (0.21 vs 0.44 s per
    # step here for a 365K-parameter net, by `python tools/probes.py train-speed`); on other
    # CPUs autocast is emulated and ~10x slower, so training falls back to float32 and says so
    bf16: bool = False
    progress: bool = True


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    gan: GanConfig = field(default_factory=GanConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _check_type(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _check_type(value, inner[0], where)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):  # YAML 1.1 reads "1e4" as a string
        try:
            return float(value)
        except ValueError:
            pass
    if tp in (int, float, str, bool):
        if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
            raise ConfigError(f"{where}: expected {tp.__name__}, got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_check_type(v, args[0], f"{where}[]") for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return {k: (_check_type(v, args[1], f"{where}.{k}") if args[1] is not Any else v)
                for k, v in value.items()}
    return value


def _build(cls: type, raw: dict[str, Any], where: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ConfigError(f"unknown config key(s) {', '.join(where + k for k in unknown)}; "
                          f"known in this section: {', '.join(sorted(names))}")
    kwargs = {}
    for name, value in raw.items():
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            kwargs[name] = _build(tp, value, f"{where}{name}.")
        else:
            kwargs[name] = _check_type(value, tp, f"{where}{name}")
    return cls(**kwargs)


def _apply_override(raw: dict[str, Any], assignment: str) -> None:
    if "=" not in assignment:
        raise ConfigError(f"--set expects key=value, got {assignment!r}")
    key, text = assignment.split("=", 1)
    value = yaml.safe_load(text) if text else ""
    node = raw
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {key}: {part} is not a section")
    node[parts[-1]] = value


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Config from a YAML file (or defaults) plus ``key=value`` overrides, validated."""
    raw: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    for assignment in overrides or []:
        _apply_override(raw, assignment)
    cfg = _build(Config, raw, "")
    try:
        level(cfg.data.degradation, cfg.data.degradation_args)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"data.degradation: {exc}") from None
    return cfg

"""``srlab train``: the training loop, as one readable function of plain steps.

``train`` reads top to bottom: set-up (config, data, model, optimiser, resume), the
iteration loop (batch, forward, loss, guard, backward, step, EMA) and the epoch end
(validate, report, checkpoint). What it leans on lives beside it, one concept per module:
``data`` (images, batches), ``model`` (the network, optimiser, EMA), ``guard`` (divergence
rollback, atomic checkpoints, resume), ``gan`` (the discriminator), ``distill`` (the
teacher), ``report`` (everything written for people), ``dist`` (DDP).

The learning rate is a pure function of the iteration (``lr_at``) and batches a pure
function of (seed, iteration) (``data.BatchSampler``), so an interrupted run resumes from
the checkpoint alone and ends with the weights of an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from srlab.image.metrics import evaluate
from srlab.runtime.upscaler import Upscaler
from srlab.train.config import Config
from srlab.train.data import BatchSampler, ImageSet, clean_twin, datasets_for, sampler_for
from srlab.train.dist import distributed, finish, mean_across, wrap
from srlab.train.distill import teacher_for
from srlab.train.gan import Adversary
from srlab.train.guard import (
    CHECKPOINT,
    Guard,
    RunState,
    clear_interrupted_writes,
    load_checkpoint,
    refuse_to_overwrite,
    save_checkpoint,
)
from srlab.train.losses import build_loss, usm_sharpen
from srlab.train.model import build_student, ema_copy, optimizer, update_ema
from srlab.train.report import (
    ProgressBar,
    RunSummary,
    epoch_line,
    summarise,
    weights_meta,
    write_config,
    write_epoch,
)
from srlab.zoo.weights import save_weights

__all__ = ["train", "lr_at", "RunSummary", "validate"]


def train(
    cfg: Config,
    *,
    resume: bool = False,
    log: Callable[[str], None] = print,
    on_epoch: Callable[[int, float], bool] | None = None,
) -> RunSummary:
    """Train ``cfg.model`` on ``cfg.data``; artifacts go to ``runs/<name>/``.

    ``on_epoch(epoch, val_psnr)`` is called after each validation; returning True stops the
    run early (hyperparameter search prunes trials with it). Under ``torchrun`` the model is
    wrapped in DistributedDataParallel; rank 0 validates and writes every artifact.
    """
    rank, world = distributed()
    main = rank == 0
    if not main:
        log = _quiet
    cfg = _resolve_bf16(cfg, log)  # after the rank is known: one fallback line, not one per rank
    r, s = cfg.run, cfg.model.scale
    if r.threads > 0:
        torch.set_num_threads(r.threads)
    run_dir = Path(r.out_dir) / r.name
    refuse_to_overwrite(run_dir, resume)
    if main:
        clear_interrupted_writes(run_dir)
        write_config(run_dir, cfg)

    # 1. data: each DDP replica draws its own batches
    train_set, val_set = datasets_for(cfg)
    val_clean = clean_twin(val_set)
    sampler = sampler_for(cfg, train_set, seed=r.seed if world == 1 else r.seed * 1000 + rank)

    # 2. model, optimiser, losses (seeded: same init for the same seed; keep this order)
    torch.manual_seed(r.seed)
    model, init_seconds = build_student(cfg, log)
    in_ch = getattr(model, "in_channels", 3)
    ema = ema_copy(model, cfg.optim.ema)
    net = wrap(model, world)
    opt = optimizer([p for p in model.parameters() if p.requires_grad], cfg)
    loss_fn = build_loss(cfg.loss.terms, vgg_weights=cfg.loss.vgg_weights, in_channels=in_ch)
    if loss_fn.needs_ema and ema is None:
        raise ValueError("loss term ldl compares with the EMA generator: set optim.ema > 0")
    teacher = teacher_for(cfg.loss, scale=s, in_channels=in_ch, log=log)

    def autocast() -> torch.autocast:  # bf16 forward passes (G and D); weights stay float32
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=r.bf16)

    gan = Adversary(cfg.gan, in_channels=in_ch, autocast=autocast) if cfg.gan.enabled else None
    # what the checkpoint saves beside RunState, under the keys it has always used
    parts = {"model": model, "opt": opt, **({"ema": ema} if ema is not None else {}),
             **(gan.parts() if gan is not None else {})}

    # 3. resume
    total = r.epochs * r.iters_per_epoch
    setting = {"bf16": r.bf16, "threads": r.threads}
    ckpt_path = run_dir / CHECKPOINT
    state = RunState(segments=[{"from": 0, **setting}])
    if resume and ckpt_path.exists():
        state = load_checkpoint(ckpt_path, parts)
        state.continue_with(setting)
        log(f"resumed {run_dir} at iteration {state.iteration}/{total}")
    bicubic = state.rows[0]["bicubic_psnr"] if state.rows else (
        _bicubic_psnr(val_set, s, cfg.data.val_max) if main else float("nan"))
    guard = Guard(model, opt, state, factor=r.guard_factor, every=r.guard_every, log=log)

    # 4. the loop
    bar = ProgressBar(r.progress and main, total, state.iteration)
    epoch_loss, epoch_n, t0, it = 0.0, 0, time.perf_counter(), state.iteration
    model.train()
    while it < total:
        lr_now = lr_at(it, cfg, total) * state.lr_scale
        for g in opt.param_groups:
            g["lr"] = lr_now
        lr_b, hr_b = _batch(sampler, it, in_ch, r.channels_last)
        with autocast():
            sr = net(lr_b)
        sr = sr.float()
        content_hr = usm_sharpen(hr_b) if cfg.loss.sharpen_gt else hr_b  # not the GAN's
        sr_ema = None
        if loss_fn.needs_ema:
            with torch.no_grad(), autocast():
                sr_ema = ema(lr_b).float()
        loss = loss_fn(sr, content_hr, sr_ema)
        if teacher is not None:
            with torch.no_grad(), autocast():
                target = teacher(lr_b).float()
            loss = loss + cfg.loss.teacher_weight * F.l1_loss(sr, target)
        adversarial = gan is not None and gan.active(it)
        if adversarial:
            loss = loss + gan.generator_term(sr)
        value = mean_across(float(loss.detach()), world)
        if not guard.rolled_back(value, it):
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.optim.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
            opt.step()
            if adversarial:
                gan.step(hr_b, sr)
            if ema is not None:
                update_ema(ema, model, it, cfg.optim.ema)
            guard.stepped(value, it)
            epoch_loss, epoch_n = epoch_loss + value, epoch_n + 1
        it += 1
        bar.step(state.loss_avg, lr_now)
        if (it % r.iters_per_epoch and it < total) or not main:
            continue

        # 5. end of epoch: validate, report, keep the best, checkpoint
        guard.check_weights(it)  # the last step blew up: never save that
        epoch, state.iteration = math.ceil(it / r.iters_per_epoch), it
        elapsed = time.perf_counter() - t0
        state.seconds, t0 = state.seconds + elapsed, time.perf_counter()
        eval_model = ema if ema is not None else model
        v_psnr, v_ssim, outputs = validate(eval_model, val_set, s, cfg.data.val_max)
        row = {"epoch": epoch, "iteration": it, "loss": epoch_loss / max(epoch_n, 1),
               "lr": lr_now, "val_psnr": v_psnr, "val_ssim": v_ssim, "bicubic_psnr": bicubic,
               "patches_per_s": epoch_n * cfg.data.batch / max(elapsed, 1e-9),
               "seconds": state.seconds}
        if val_clean is not None:
            row["val_psnr_clean"] = validate(eval_model, val_clean, s, cfg.data.val_max)[0]
        state.rows.append(row)
        log(epoch_line(row))
        epoch_loss, epoch_n = 0.0, 0
        meta = weights_meta(cfg, state, init_seconds, v_psnr, v_ssim)
        if v_psnr > state.best[0]:
            state.best = (v_psnr, v_ssim, epoch)
            save_weights(eval_model, meta, run_dir / "best.safetensors")
        save_weights(eval_model, meta, run_dir / "last.safetensors")
        write_epoch(run_dir, state.rows, outputs[: r.snapshots], epoch)
        save_checkpoint(ckpt_path, state, parts)
        if on_epoch is not None and on_epoch(epoch, v_psnr):
            log(f"stopped after epoch {epoch} by the on_epoch hook")
            break

    # 6. the end
    bar.close()
    sampler.close()
    finish(model, rank, world)
    if not main:
        return RunSummary(run_dir, float("nan"), float("nan"), 0, bicubic, it, 0.0, 0.0,
                          state.rollbacks)
    return summarise(run_dir, cfg, state, bicubic, it)


def lr_at(it: int, cfg: Config, total: int) -> float:
    """Learning rate at iteration ``it``: linear warmup, then cosine / step / constant."""
    o = cfg.optim
    if o.warmup_iters and it < o.warmup_iters:
        return o.lr * (it + 1) / o.warmup_iters
    if o.schedule == "cosine":
        t = (it - o.warmup_iters) / max(1, total - o.warmup_iters)
        return o.min_lr + 0.5 * (o.lr - o.min_lr) * (1 + math.cos(math.pi * min(1.0, t)))
    if o.schedule == "step":
        return o.lr * o.gamma ** ((it - o.warmup_iters) // o.step_every)
    if o.schedule == "constant":
        return o.lr
    raise ValueError(f"unknown schedule {o.schedule!r} (cosine, step, constant)")


@torch.no_grad()
def validate(model: nn.Module, val: ImageSet, scale: int, n: int) -> tuple[float, float, list]:
    """Mean Y-PSNR/SSIM by the standard protocol on up to ``n`` validation images."""
    up = Upscaler(model, name="val", scale=scale, meta=None)
    model.eval()
    psnrs, ssims, outputs = [], [], []
    for i in range(min(n, len(val))):
        lr, hr = val.full_pair(i)
        sr = up.upscale_array(lr)
        s = evaluate(sr, hr, scale=scale)
        psnrs.append(s.psnr)
        ssims.append(s.ssim)
        outputs.append((lr, sr, hr))
    model.train()
    return float(np.mean(psnrs)), float(np.mean(ssims)), outputs


def _batch(sampler: BatchSampler, it: int, in_channels: int,
           channels_last: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Iteration ``it``'s (LR, HR) batch as the model eats it (Y for luma-only models)."""
    lr_b, hr_b = sampler.get(it)
    lr_b, hr_b = _to_input(lr_b, in_channels), _to_input(hr_b, in_channels)
    if channels_last:
        lr_b = lr_b.contiguous(memory_format=torch.channels_last)
    return lr_b, hr_b


def _to_input(x: torch.Tensor, in_channels: int) -> torch.Tensor:
    """RGB batch -> what the model eats (Y for luma-only models)."""
    if in_channels == 3:
        return x
    from srlab.image.color import rgb_to_ycbcr

    return rgb_to_ycbcr(x)[:, :1]


def _bicubic_psnr(val: ImageSet, scale: int, n: int) -> float:
    from srlab.image.resize import imresize

    vals = []
    for i in range(min(n, len(val))):
        lr, hr = val.full_pair(i)
        vals.append(evaluate(imresize(lr, scale), hr, scale=scale).psnr)
    return float(np.mean(vals))


def _resolve_bf16(cfg: Config, log: Callable[[str], None]) -> Config:
    """Train in float32 where bfloat16 would be emulated: on a CPU without AVX512-BF16 or
    AMX, autocast runs a step about 10x slower (61 vs 6.3 s measured on an AVX2 EPYC), so a
    config written on a bf16 machine would otherwise crawl elsewhere. The run's config.yaml
    and recipe record the precision actually used."""
    from srlab.runtime import cpu

    if not cfg.run.bf16 or cpu.native_bf16():
        return cfg
    log("run.bf16: this CPU has no native bfloat16 (AVX512-BF16 or AMX), where autocast is "
        "emulated and about 10x slower; training in float32")
    return dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, bf16=False))


def _quiet(_: str) -> None:
    pass

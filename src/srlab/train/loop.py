"""``srlab train``: the training loop, as one readable function of plain steps.

Design choices, each for a reason:
- the learning rate is a pure function of the iteration (``lr_at``), and batches are a pure
  function of (seed, iteration) (``data.BatchSampler``), so resuming needs only the model,
  optimiser, EMA and RNG state — and an interrupted run ends with the weights of an
  uninterrupted one;
- checkpoints are written atomically after every epoch, so a kill at any moment leaves the
  previous one intact;
- a divergence guard keeps an in-memory copy of the last good state; on a NaN/Inf loss or a
  spike far above the running mean it rolls back, halves the learning rate and carries on
  (the reports saw 0.02 -> 0.84 -> 1.74 jumps and cut the rate by hand).
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from srlab.api import Upscaler
from srlab.image.datasets import pairs_in
from srlab.image.degrade import LEVELS
from srlab.image.metrics import evaluate
from srlab.train.config import Config, ConfigError, expand_path
from srlab.train.data import BatchSampler, ImageSet, split_paths
from srlab.train.distill import load_teacher
from srlab.train.losses import build_loss
from srlab.train.report import compact_plot, evenly, save_progress_gif
from srlab.zoo.registry import build_model, get_spec
from srlab.zoo.weights import (
    WeightsMeta,
    apply_state_dict,
    atomic_replace,
    read_weights,
    save_weights,
)

__all__ = ["train", "lr_at", "RunSummary", "validate"]


@dataclass
class RunSummary:
    run_dir: Path
    best_psnr: float
    best_ssim: float
    best_epoch: int
    bicubic_psnr: float
    iterations: int
    seconds: float
    patches_per_second: float
    rollbacks: int


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


def _optimizer(params, cfg: Config) -> torch.optim.Optimizer:
    o = cfg.optim
    if o.name == "adam":
        return torch.optim.Adam(params, lr=o.lr, weight_decay=o.weight_decay)
    if o.name == "adamw":
        return torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay)
    if o.name == "sgd":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
    raise ValueError(f"unknown optimizer {o.name!r} (adam, adamw, sgd)")


def _to_input(x: torch.Tensor, in_channels: int) -> torch.Tensor:
    """RGB batch -> what the model eats (Y for luma-only models)."""
    if in_channels == 3:
        return x
    from srlab.image.color import rgb_to_ycbcr

    return rgb_to_ycbcr(x)[:, :1]


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


def _bicubic_psnr(val: ImageSet, scale: int, n: int) -> float:
    from srlab.image.resize import imresize

    vals = []
    for i in range(min(n, len(val))):
        lr, hr = val.full_pair(i)
        vals.append(evaluate(imresize(lr, scale), hr, scale=scale).psnr)
    return float(np.mean(vals))


def _datasets(cfg: Config) -> tuple[ImageSet, ImageSet]:
    d, s = cfg.data, cfg.model.scale
    pairs = [p for f in d.train for p in pairs_in(Path(expand_path(f)))]
    if d.val:
        train_pairs = pairs
        val_pairs = [p for f in d.val for p in pairs_in(Path(expand_path(f)))]
    else:
        train_pairs, val_pairs = split_paths(pairs, d.val_fraction, cfg.run.seed)
    margin = 2 if d.rotate_deg > 0 else 1
    train_set = ImageSet(train_pairs, scale=s, degradation=d.degradation, cache=d.cache,
                         min_lr_size=int(d.patch * 1.5) if margin == 2 else d.patch,
                         rescale=tuple(d.rescale))
    # validation follows the task: a run on a degradation picks ``best`` on degraded inputs
    val_set = ImageSet(val_pairs[: d.val_max], scale=s, degradation=d.degradation, cache=True,
                       min_lr_size=12)
    if len(val_set) == 0:
        raise ValueError("no validation images (set data.val or a val_fraction > 0)")
    return train_set, val_set


def _clean_twin(val: ImageSet) -> ImageSet | None:
    """The same validation images by the benchmark protocol, when ``val`` is degraded."""
    if val.level == LEVELS["clean"]:
        return None
    return ImageSet([p for p, _ in val.entries], scale=val.scale, cache=True, min_lr_size=12)


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    atomic_replace(path, lambda tmp: torch.save(state, tmp))


def _load_checkpoint(path: Path) -> dict[str, Any]:
    """Our own checkpoint, still read with weights_only=True: a planted file cannot run code."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure means "not a checkpoint we wrote"
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ValueError(f"cannot resume: {path} is not a readable srlab checkpoint ({first})") \
            from None


def _snapshot(outputs: list, epoch: int, out: Path, size: int = 96) -> Path:
    """One strip per epoch: (bicubic | model | HR) centre crops of the fixed val images."""
    from PIL import Image

    from srlab.image.resize import imresize

    rows = []
    for lr, sr, hr in outputs:
        h, w = hr.shape[:2]
        c = min(size, h, w)
        y, x = (h - c) // 2, (w - c) // 2
        bic = imresize(lr, sr.shape[0] // lr.shape[0])
        rows.append(np.concatenate([a[y : y + c, x : x + c] for a in (bic, sr, hr)], axis=1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]
    path = out / f"epoch_{epoch:04d}.png"
    Image.fromarray(np.concatenate(rows, axis=0)).save(path)
    return path


def _plots(rows: list[dict[str, Any]], run_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [r["epoch"] for r in rows]
    for key, fname, label in (("loss", "loss.png", "training loss"),
                              ("val_psnr", "psnr.png", "validation PSNR (dB, Y)"),
                              ("val_ssim", "ssim.png", "validation SSIM (Y)")):
        fig, ax = plt.subplots(figsize=(5, 3.2))
        ax.plot(ep, [r[key] for r in rows], marker="o")
        if key == "val_psnr":
            ax.axhline(rows[0]["bicubic_psnr"], color="gray", ls="--", label="bicubic")
            ax.legend()
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(run_dir / fname, dpi=90)
        plt.close(fig)
        compact_plot(run_dir / fname)  # shipped beside the weights: keep it small


GIF_FRAMES = 12


def _gif(pred_dir: Path, run_dir: Path) -> None:
    from PIL import Image

    paths = sorted(pred_dir.glob("epoch_*.png"))
    # at most GIF_FRAMES frames, spread evenly and always ending on the last epoch, with one
    # shared palette (artifacts.py), so a long run's GIF stays small enough to ship
    frames = []
    for i in evenly(len(paths), GIF_FRAMES):
        with Image.open(paths[i]) as im:
            frames.append(im.convert("RGB"))
    save_progress_gif(frames, run_dir / "progress.gif")


def _roll_back(model: nn.Module, opt: torch.optim.Optimizer, good: dict[str, Any],
               lr_scale: float, rollbacks: int) -> tuple[float, int]:
    """Divergence guard: restore the last good weights and optimiser, halve the rate."""
    model.load_state_dict(good["model"])
    opt.load_state_dict(good["opt"])
    return lr_scale * 0.5, rollbacks + 1


def _distributed() -> tuple[int, int]:
    """(rank, world size); joins the process group when started by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), world


def _mean_across(value: float, world: int) -> float:
    """Average a scalar over DDP ranks, so every rank takes the same guard decision."""
    if world == 1:
        return value
    import torch.distributed as dist

    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item()) / world


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
    rank, world = _distributed()
    main = rank == 0
    if not main:
        log = _quiet
    cfg = _resolve_bf16(cfg, log)  # after the rank is known: one fallback line, not one per rank
    r, s = cfg.run, cfg.model.scale
    if r.threads > 0:
        torch.set_num_threads(r.threads)
    run_dir = Path(r.out_dir) / r.name
    pred_dir = run_dir / "predictions"
    ckpt_path = run_dir / "checkpoint.pt"
    if not resume and ckpt_path.exists():
        raise FileExistsError(f"{run_dir} already holds a run; pass --resume to continue it "
                              "or choose another run.name")
    if main:
        pred_dir.mkdir(parents=True, exist_ok=True)
        for stale in run_dir.glob(".*.tmp"):  # left by a kill during an atomic write
            stale.unlink(missing_ok=True)
        text = yaml.safe_dump(cfg.to_dict(), sort_keys=False)
        atomic_replace(run_dir / "config.yaml", lambda tmp: Path(tmp).write_text(text))

    # 1. data
    train_set, val_set = _datasets(cfg)
    val_clean = _clean_twin(val_set)
    seed = r.seed if world == 1 else r.seed * 1000 + rank  # each replica its own batches
    sampler = BatchSampler(train_set, patch=cfg.data.patch, batch=cfg.data.batch, seed=seed,
                           augment=cfg.data.augment, rotate_deg=cfg.data.rotate_deg,
                           phases=cfg.data.phases, candidates=cfg.data.candidates,
                           prefetch=cfg.data.prefetch)
    # 2. model, optimiser, loss (seeded: same init for the same seed)
    torch.manual_seed(r.seed)
    spec = get_spec(cfg.model.name)
    if not spec.trainable:
        raise ValueError(f"model '{spec.name}' has no parameters to train")
    model = build_model(cfg.model.name, s, **cfg.model.kwargs)
    init_seconds = 0.0
    if cfg.model.init:
        tensors, init_meta = read_weights(expand_path(cfg.model.init))
        if init_meta is not None:
            init_seconds = init_meta.total_seconds
        own = model.state_dict()  # start from another scale's weights: take what fits
        fit = {k: v for k, v in tensors.items() if k in own and own[k].shape == v.shape}
        apply_state_dict(model, {**own, **fit}, cfg.model.init)
        log(f"initialised {len(fit)}/{len(own)} tensors from {cfg.model.init}")
    if cfg.model.zero:
        zeroed = _named_parameters(model, cfg.model.zero, "model.zero", cfg.model.name)
        with torch.no_grad():
            for p in zeroed.values():
                p.zero_()
        log(f"zeroed {len(zeroed)} parameter tensors ({', '.join(cfg.model.zero)})")
    if cfg.model.freeze:
        frozen = _named_parameters(model, cfg.model.freeze, "model.freeze", cfg.model.name)
        for n, p in model.named_parameters():
            p.requires_grad_(n not in frozen)
        log(f"froze {len(frozen)} parameter tensors ({', '.join(cfg.model.freeze)})")
    in_ch = getattr(model, "in_channels", 3)
    if r.channels_last:
        model = model.to(memory_format=torch.channels_last)
    ema = copy.deepcopy(model).eval() if cfg.optim.ema > 0 else None
    net: nn.Module = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model)
    opt = _optimizer([p for p in model.parameters() if p.requires_grad], cfg)
    loss_fn = build_loss(cfg.loss.terms, vgg_weights=cfg.loss.vgg_weights)
    teacher = None
    if cfg.loss.teacher:
        if cfg.loss.teacher_weight <= 0:
            raise ConfigError(f"loss.teacher_weight must be > 0, not {cfg.loss.teacher_weight}")
        teacher = load_teacher(expand_path(cfg.loss.teacher), scale=s, in_channels=in_ch,
                               ensemble=cfg.loss.teacher_ensemble)
        log(f"distilling from {cfg.loss.teacher}"
            + (" (self-ensemble)" if cfg.loss.teacher_ensemble else ""))
    disc = d_opt = None
    if cfg.gan.enabled:
        from srlab.zoo.srgan import Discriminator

        disc = Discriminator(in_channels=in_ch)
        d_opt = torch.optim.Adam(disc.parameters(), lr=cfg.gan.d_lr, betas=(0.9, 0.999))
    total = r.epochs * r.iters_per_epoch
    start_it, rows, best, lr_scale, rollbacks, spent = 0, [], (-1.0, 0.0, 0), 1.0, 0, 0.0
    loss_avg: float | None = None
    setting = {"bf16": cfg.run.bf16, "threads": cfg.run.threads}
    segments: list[dict[str, Any]] = [{"from": 0, **setting}]
    # 3. resume
    if resume and ckpt_path.exists():
        ck = _load_checkpoint(ckpt_path)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        if ema is not None:
            ema.load_state_dict(ck["ema"])
        if disc is not None:
            disc.load_state_dict(ck["disc"])
            d_opt.load_state_dict(ck["d_opt"])
        torch.set_rng_state(ck["torch_rng"])
        start_it, lr_scale, rollbacks = ck["iteration"], ck["lr_scale"], ck["rollbacks"]
        rows, spent = json.loads(ck["rows"]), ck["seconds"]
        best, loss_avg = tuple(ck["best"]), ck["loss_avg"]
        # checkpoints from before segments were recorded: the earlier part is unknown
        segments = (json.loads(ck.get("segments", "null"))
                    or [{"from": 0, "bf16": None, "threads": None}])
        if {k: segments[-1][k] for k in setting} != setting:
            segments.append({"from": start_it, **setting})
        log(f"resumed {run_dir} at iteration {start_it}/{total}")
    bicubic = rows[0]["bicubic_psnr"] if rows else (
        _bicubic_psnr(val_set, s, cfg.data.val_max) if main else float("nan"))

    good = {"model": copy.deepcopy(model.state_dict()), "opt": copy.deepcopy(opt.state_dict())}
    epoch_loss, epoch_n, t0, it = 0.0, 0, time.perf_counter(), start_it
    bar = None
    if r.progress and main:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=start_it, unit="it", dynamic_ncols=True, mininterval=2)
    def autocast() -> torch.autocast:  # bf16 forward passes (G and D); weights stay float32
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=r.bf16)

    model.train()
    while it < total:
        # one step
        lr_now = lr_at(it, cfg, total) * lr_scale
        for g in opt.param_groups:
            g["lr"] = lr_now
        lr_b, hr_b = sampler.get(it)
        lr_b, hr_b = _to_input(lr_b, in_ch), _to_input(hr_b, in_ch)
        if r.channels_last:
            lr_b = lr_b.contiguous(memory_format=torch.channels_last)
        with autocast():
            sr = net(lr_b)
        sr = sr.float()
        loss = loss_fn(sr, hr_b)
        if teacher is not None:
            with torch.no_grad(), autocast():
                target = teacher(lr_b).float()
            loss = loss + cfg.loss.teacher_weight * F.l1_loss(sr, target)
        if disc is not None and it >= cfg.gan.pretrain_iters:
            with autocast():
                logits = disc(sr).float()
            loss = loss + cfg.gan.adv_weight * F.binary_cross_entropy_with_logits(
                logits, torch.ones_like(logits))
        value = _mean_across(float(loss.detach()), world)
        # divergence guard: roll back to the last good state, halve the rate, continue
        spike = loss_avg is not None and value > r.guard_factor * loss_avg and it > 20
        diverged = not math.isfinite(value) or spike
        if diverged:
            lr_scale, rollbacks = _roll_back(model, opt, good, lr_scale, rollbacks)
            log(f"divergence guard: loss {value:.4g} at iteration {it} (running mean "
                f"{loss_avg if loss_avg is not None else float('nan'):.4g}); rolled back, "
                f"learning rate x{lr_scale:g}")
        else:
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.optim.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
            opt.step()
            if disc is not None and it >= cfg.gan.pretrain_iters:
                with autocast():
                    real, fake = disc(hr_b).float(), disc(sr.detach()).float()
                d_loss = F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) + \
                    F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
                d_opt.zero_grad(set_to_none=True)
                d_loss.backward()
                d_opt.step()
            if ema is not None:  # decay warms up so early validation is not the random init
                decay = min(cfg.optim.ema, (1 + it) / (10 + it))
                with torch.no_grad():
                    for pe, pm in zip(ema.parameters(), model.parameters(), strict=True):
                        pe.lerp_(pm, 1 - decay)
                    for be, bm in zip(ema.buffers(), model.buffers(), strict=True):
                        be.copy_(bm)
            loss_avg = value if loss_avg is None else 0.98 * loss_avg + 0.02 * value
            epoch_loss, epoch_n = epoch_loss + value, epoch_n + 1
        it += 1
        if not diverged and it % r.guard_every == 0:
            good = {"model": copy.deepcopy(model.state_dict()),
                    "opt": copy.deepcopy(opt.state_dict())}
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss_avg or 0:.4f}", lr=f"{lr_now:.2e}", refresh=False)
        if it % r.iters_per_epoch and it < total:
            continue
        if not main:
            continue
        # end of epoch: validate, log, snapshot, checkpoint
        if not all(torch.isfinite(p).all() for p in model.parameters()):
            # the last step blew up: never save that
            lr_scale, rollbacks = _roll_back(model, opt, good, lr_scale, rollbacks)
            log(f"divergence guard: non-finite weights at iteration {it}; rolled back, "
                f"learning rate x{lr_scale:g}")
        epoch = math.ceil(it / r.iters_per_epoch)
        elapsed = time.perf_counter() - t0
        spent, t0 = spent + elapsed, time.perf_counter()
        eval_model = ema if ema is not None else model
        v_psnr, v_ssim, outputs = validate(eval_model, val_set, s, cfg.data.val_max)
        pps = epoch_n * cfg.data.batch / max(elapsed, 1e-9)
        rows.append({"epoch": epoch, "iteration": it, "loss": epoch_loss / max(epoch_n, 1),
                     "lr": lr_now, "val_psnr": v_psnr, "val_ssim": v_ssim,
                     "bicubic_psnr": bicubic, "patches_per_s": pps, "seconds": spent})
        clean_note = ""
        if val_clean is not None:
            rows[-1]["val_psnr_clean"] = validate(eval_model, val_clean, s, cfg.data.val_max)[0]
            clean_note = f"  clean {rows[-1]['val_psnr_clean']:.3f}"
        log(f"epoch {epoch}: loss {rows[-1]['loss']:.4f}  val PSNR {v_psnr:.3f} dB "
            f"(bicubic {bicubic:.3f}){clean_note}  SSIM {v_ssim:.4f}  {pps:.1f} patches/s")
        epoch_loss, epoch_n = 0.0, 0
        # the full architecture (variant defaults + overrides), so the file still loads if
        # the registry's defaults for this name change later
        meta = WeightsMeta(arch=cfg.model.name, scale=s, kwargs={**spec.kwargs, **cfg.model.kwargs},
                           recipe=_recipe(cfg, it, segments),
                           train_seconds=round(spent, 1), init_seconds=round(init_seconds, 1),
                           metrics={"val": {"psnr": round(v_psnr, 4), "ssim": round(v_ssim, 5)}})
        if v_psnr > best[0]:
            best = (v_psnr, v_ssim, epoch)
            save_weights(eval_model, meta, run_dir / "best.safetensors")
        save_weights(eval_model, meta, run_dir / "last.safetensors")
        with open(run_dir / "metrics.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        _snapshot(outputs[: r.snapshots], epoch, pred_dir)
        _plots(rows, run_dir)
        ck = {"model": model.state_dict(), "opt": opt.state_dict(),
              "torch_rng": torch.get_rng_state(), "iteration": it, "lr_scale": lr_scale,
              "rollbacks": rollbacks, "rows": json.dumps(rows), "seconds": spent,
              "best": list(best), "loss_avg": loss_avg, "segments": json.dumps(segments)}
        if ema is not None:
            ck["ema"] = ema.state_dict()
        if disc is not None:
            ck["disc"], ck["d_opt"] = disc.state_dict(), d_opt.state_dict()
        _save_checkpoint(ckpt_path, ck)
        if on_epoch is not None and on_epoch(epoch, v_psnr):
            log(f"stopped after epoch {epoch} by the on_epoch hook")
            break
    if bar is not None:
        bar.close()
    sampler.close()
    if world > 1:
        checksum = sum(float(p.double().sum()) for p in model.parameters())
        print(f"rank {rank} parameter checksum {checksum:.12e}", flush=True)
        import torch.distributed as dist

        dist.barrier()
        # leave the group explicitly: a rank that exits with its gloo context alive can
        # abort in the context's destructor ("terminate called without an active
        # exception", seen once in the DDP test on a loaded machine)
        dist.destroy_process_group()
        if not main:
            return RunSummary(run_dir, float("nan"), float("nan"), 0, bicubic, it, 0.0, 0.0,
                              rollbacks)
    _gif(pred_dir, run_dir)
    summary = RunSummary(run_dir=run_dir, best_psnr=best[0], best_ssim=best[1],
                         best_epoch=best[2], bicubic_psnr=bicubic, iterations=it, seconds=spent,
                         patches_per_second=float(np.mean([x["patches_per_s"] for x in rows])),
                         rollbacks=rollbacks)
    _write_summary(summary, cfg)
    return summary


def _named_parameters(model: nn.Module, prefixes: list[str], key: str,
                      arch: str) -> dict[str, nn.Parameter]:
    """The parameters named by ``prefixes`` (a name or a module path), for ``model.zero`` and
    ``model.freeze``; a list that matches nothing is a config error, not a silent no-op."""
    found = {n: p for n, p in model.named_parameters()
             if any(n == f or n.startswith(f + ".") for f in prefixes)}
    if not found:
        raise ValueError(f"{key} {prefixes} matches no parameter of {arch}")
    return found


def _hardware(segments: list[dict[str, Any]], it: int) -> str:
    """Precision and threads, per segment when a resumed run changed them (e.g. bf16 on one
    machine, float32 on the next), so a card does not credit the whole run to the last one."""
    def one(seg: dict[str, Any]) -> str:
        if seg["bf16"] is None:
            return "precision and threads not recorded"
        return (("bf16 autocast" if seg["bf16"] else "float32")
                + f", {seg['threads'] or 'all'} CPU thread(s)")

    if len(segments) == 1:
        return one(segments[0])
    ends = [seg["from"] for seg in segments[1:]] + [it]
    return "; ".join(f"iterations {seg['from']}-{end}: {one(seg)}"
                     for seg, end in zip(segments, ends, strict=True))


def _recipe(cfg: Config, it: int, segments: list[dict[str, Any]]) -> str:
    d, o = cfg.data, cfg.optim
    data = ", ".join(Path(f).name for f in d.train)
    loss = " + ".join(f"{w:g}*{n}" for n, w in cfg.loss.terms.items())
    if cfg.loss.teacher:
        loss += (f" + {cfg.loss.teacher_weight:g}*l1 to {cfg.loss.teacher}"
                 + ("'s self-ensemble" if cfg.loss.teacher_ensemble else ""))
    if cfg.gan.enabled:
        loss += (f" + {cfg.gan.adv_weight:g}*adversarial after {cfg.gan.pretrain_iters} "
                 f"generator-only iterations (discriminator lr {cfg.gan.d_lr:g})")
    return (f"srlab train (run {cfg.run.name}): {it:,} iterations of batch {d.batch} x "
            f"{d.patch}px LR patches from {data}, {d.degradation} degradation; loss {loss}; "
            f"{o.name} lr {o.lr:g} {o.schedule}, EMA {o.ema:g}; {_hardware(segments, it)}"
            + (f"; initialised from {cfg.model.init}" if cfg.model.init else ""))


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


def _write_summary(sm: RunSummary, cfg: Config) -> None:
    d = {k: (str(v) if isinstance(v, Path) else v) for k, v in sm.__dict__.items()}
    (sm.run_dir / "summary.json").write_text(json.dumps(d, indent=2))
    (sm.run_dir / "summary.md").write_text(
        f"# Run {cfg.run.name}\n\n"
        f"model `{cfg.model.name}` x{cfg.model.scale}, {sm.iterations} iterations, "
        f"{sm.seconds / 60:.1f} CPU-minutes, {sm.patches_per_second:.1f} patches/s\n\n"
        f"| | PSNR (Y) | SSIM |\n|---|---|---|\n"
        f"| best (epoch {sm.best_epoch}) | {sm.best_psnr:.3f} | {sm.best_ssim:.4f} |\n"
        f"| bicubic | {sm.bicubic_psnr:.3f} | |\n\n"
        f"divergence-guard rollbacks: {sm.rollbacks}\n"
    )

"""K-fold cross-validation of a training config: how much of a PSNR gain is the split's luck?

One validation split says little on small data (T91 has 91 images; a 0.5 dB difference can
come from which 10 images were held out). ``kfold`` splits the training images (every folder
in ``cfg.data.train``) into K folds, deterministically by ``cfg.run.seed``, trains once per
fold with that fold as validation, and reports the mean and standard deviation of the best
validation PSNR/SSIM across folds.

Each fold's split is made concrete as folders of symlinks (``runs/<name>/fold_i/train`` and
``.../val``), so ``train()`` runs unchanged on plain folders and the fold's ``config.yaml``
records exactly what it saw. Paired ``high_res/``+``low_res/`` datasets keep their pairing.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import yaml

from srlab.image.datasets import Pair, pairs_in
from srlab.train.config import Config, expand_path

__all__ = ["kfold", "KFoldResult", "FoldResult", "fold_indices"]


@dataclass
class FoldResult:
    fold: int
    run_dir: str
    train_images: int
    val_images: int  # images validated on: min(fold size, data.val_max)
    best_psnr: float
    best_ssim: float
    best_epoch: int
    bicubic_psnr: float
    seconds: float


@dataclass
class KFoldResult:
    run_dir: Path
    k: int
    folds: list[FoldResult]
    mean_psnr: float
    std_psnr: float  # sample standard deviation (ddof=1) across folds
    mean_ssim: float
    std_ssim: float
    mean_gain: float  # mean of (best PSNR - bicubic PSNR) per fold
    std_gain: float


def fold_indices(n: int, k: int, seed: int) -> list[list[int]]:
    """K disjoint, sorted index lists covering range(n), sizes differing by at most one."""
    if not 2 <= k <= n:
        raise ValueError(f"k-fold needs 2 <= K <= number of images ({n}), got K={k}")
    order = np.random.default_rng(seed).permutation(n)
    return [sorted(int(i) for i in part) for part in np.array_split(order, k)]


def _link(src: Path, dst: Path) -> None:
    try:
        os.symlink(src.resolve(), dst)
    except OSError:  # no symlinks (e.g. Windows without developer mode): copy
        shutil.copy2(src, dst)


def _materialise(pairs: list[tuple[int, Pair]], folder: Path) -> None:
    """A folder train() reads as exactly these pairs (names prefixed: sources may collide)."""
    if folder.exists():
        shutil.rmtree(folder)
    paired = any(p.lr is not None for _, p in pairs)
    hr_dir = folder / "high_res" if paired else folder
    hr_dir.mkdir(parents=True)
    if paired:
        (folder / "low_res").mkdir()
    for i, p in pairs:
        _link(p.hr, hr_dir / f"{i:05d}_{p.hr.name}")
        if p.lr is not None:
            _link(p.lr, folder / "low_res" / f"{i:05d}_{p.lr.name}")


def _std(x: list[float]) -> float:
    return float(np.std(x, ddof=1)) if len(x) > 1 else 0.0


def kfold(cfg: Config, k: int, *, resume: bool = False,
          log: Callable[[str], None] = print) -> KFoldResult:
    """Train ``cfg`` K times, each fold of ``cfg.data.train`` once as validation.

    Runs go to ``runs/<name>/fold_i``; ``runs/<name>/kfold.md`` and ``kfold.json`` hold the
    per-fold figures and their mean and standard deviation. ``resume`` resumes (or re-reads)
    folds that already hold a checkpoint.
    """
    from srlab.train.loop import train

    pairs = [p for f in cfg.data.train for p in pairs_in(Path(expand_path(f)))]
    folds = fold_indices(len(pairs), k, cfg.run.seed)
    root = Path(cfg.run.out_dir) / cfg.run.name
    if not resume:
        taken = [f"fold_{i}" for i in range(k) if (root / f"fold_{i}" / "checkpoint.pt").exists()]
        if taken:
            raise FileExistsError(f"{root} already holds k-fold runs ({', '.join(taken)}); "
                                  "pass --resume to continue them or choose another run.name")
    if cfg.data.val:
        log("k-fold: ignoring data.val; each fold of data.train is the validation set in turn")
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    results: list[FoldResult] = []
    for i, val_idx in enumerate(folds):
        held = set(val_idx)
        fold_dir = root / f"fold_{i}"
        train_dir, val_dir = fold_dir / "train", fold_dir / "val"
        _materialise([(j, pairs[j]) for j in range(len(pairs)) if j not in held], train_dir)
        _materialise([(j, pairs[j]) for j in val_idx], val_dir)
        fcfg = copy.deepcopy(cfg)
        fcfg.data.train, fcfg.data.val = [str(train_dir)], [str(val_dir)]
        fcfg.run.name = f"{cfg.run.name}/fold_{i}"
        n_val = min(len(val_idx), cfg.data.val_max)
        log(f"k-fold {i + 1}/{k}: {len(pairs) - len(val_idx)} train / {len(val_idx)} val "
            f"images (validating on {n_val})")
        sm = train(fcfg, resume=resume, log=log)
        results.append(FoldResult(fold=i, run_dir=str(sm.run_dir),
                                  train_images=len(pairs) - len(val_idx), val_images=n_val,
                                  best_psnr=sm.best_psnr, best_ssim=sm.best_ssim,
                                  best_epoch=sm.best_epoch, bicubic_psnr=sm.bicubic_psnr,
                                  seconds=sm.seconds))
    ps = [f.best_psnr for f in results]
    ss = [f.best_ssim for f in results]
    gains = [f.best_psnr - f.bicubic_psnr for f in results]
    res = KFoldResult(run_dir=root, k=k, folds=results,
                      mean_psnr=float(np.mean(ps)), std_psnr=_std(ps),
                      mean_ssim=float(np.mean(ss)), std_ssim=_std(ss),
                      mean_gain=float(np.mean(gains)), std_gain=_std(gains))
    _write(res, cfg)
    log(f"k-fold x{k}: val PSNR {res.mean_psnr:.3f} ± {res.std_psnr:.3f} dB, "
        f"SSIM {res.mean_ssim:.4f} ± {res.std_ssim:.4f} -> {root / 'kfold.md'}")
    return res


def _write(res: KFoldResult, cfg: Config) -> None:
    d = asdict(res)
    d["run_dir"] = str(res.run_dir)
    d["seed"] = cfg.run.seed
    (res.run_dir / "kfold.json").write_text(json.dumps(d, indent=2))
    lines = [f"# K-fold cross-validation: {cfg.run.name}", "",
             f"model `{cfg.model.name}` x{cfg.model.scale}, K = {res.k}, folds drawn with seed "
             f"{cfg.run.seed} from {', '.join(f'`{f}`' for f in cfg.data.train)}; "
             f"{cfg.run.epochs} x {cfg.run.iters_per_epoch} iterations per fold.", "",
             "| fold | train | val | best PSNR (dB) | SSIM | bicubic PSNR | gain | best epoch |",
             "|---|---|---|---|---|---|---|---|"]
    for f in res.folds:
        lines.append(f"| {f.fold} | {f.train_images} | {f.val_images} | {f.best_psnr:.3f} | "
                     f"{f.best_ssim:.4f} | {f.bicubic_psnr:.3f} | "
                     f"{f.best_psnr - f.bicubic_psnr:+.3f} | {f.best_epoch} |")
    lines += [f"| **mean ± std** | | | **{res.mean_psnr:.3f} ± {res.std_psnr:.3f}** | "
              f"**{res.mean_ssim:.4f} ± {res.std_ssim:.4f}** | | "
              f"**{res.mean_gain:+.3f} ± {res.std_gain:.3f}** | |", "",
              "PSNR/SSIM on Y by the standard protocol, best epoch per fold; std is the sample "
              "standard deviation across folds. Each fold validates on at most data.val_max "
              "images of its held-out fold."]
    (res.run_dir / "kfold.md").write_text("\n".join(lines) + "\n")

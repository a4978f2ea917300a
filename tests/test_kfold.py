"""srlab.train.kfold on 6 tiny images: K=2 gives 2 disjoint folds and a mean/std report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import smooth_images

from srlab.image.datasets import Pair, find_images, pairs_in
from srlab.train.config import load_config
from srlab.train.kfold import _materialise, fold_indices, kfold


def test_fold_indices_partition_deterministic() -> None:
    folds = fold_indices(7, 3, seed=5)
    assert sorted(i for f in folds for i in f) == list(range(7))
    assert sorted(len(f) for f in folds) == [2, 2, 3]
    assert folds == fold_indices(7, 3, seed=5) and folds != fold_indices(7, 3, seed=6)
    with pytest.raises(ValueError, match="2 <= K"):
        fold_indices(3, 4, seed=0)


def test_materialise_keeps_lr_pairing(tmp_path: Path) -> None:
    src = smooth_images(tmp_path / "hr", 2, seed=0)
    lr = smooth_images(tmp_path / "lr", 2, seed=1, size=32)
    pairs = [Pair(src / "img0.png", lr / "img0.png"), Pair(src / "img1.png", None)]
    _materialise(list(enumerate(pairs)), tmp_path / "fold")
    got = pairs_in(tmp_path / "fold")
    assert [p.hr.resolve() for p in got] == [p.hr.resolve() for p in pairs]
    assert got[0].lr is not None and got[0].lr.resolve() == pairs[0].lr.resolve()
    assert got[1].lr is None


def test_kfold_two_folds(tmp_path: Path) -> None:
    data = smooth_images(tmp_path / "train", 6, seed=0)
    cfg = load_config(None, [
        "model.name=span", "model.scale=2", "model.kwargs={feat: 8, blocks: 1}",
        f"data.train=[{data}]", "data.val_max=2", "data.patch=8", "data.batch=2",
        "data.prefetch=false", "run.epochs=2", "run.iters_per_epoch=3", "run.progress=false",
        f"run.out_dir={tmp_path / 'runs'}", "run.name=kf", "run.snapshots=1",
    ])
    res = kfold(cfg, 2, log=lambda s: None)
    root = tmp_path / "runs" / "kf"
    assert res.k == 2 and len(res.folds) == 2
    vals = [{p.name for p in find_images(root / f"fold_{i}" / "val")} for i in range(2)]
    trains = [{p.name for p in find_images(root / f"fold_{i}" / "train")} for i in range(2)]
    assert len(vals[0]) == len(vals[1]) == 3 and not vals[0] & vals[1]
    assert trains[0] == vals[1] and trains[1] == vals[0]
    for i in range(2):
        assert (root / f"fold_{i}" / "best.safetensors").is_file()
        assert load_config(root / f"fold_{i}" / "config.yaml").data.val == [
            str(root / f"fold_{i}" / "val")]
    ps = [f.best_psnr for f in res.folds]
    assert res.mean_psnr == pytest.approx(np.mean(ps))
    assert res.std_psnr == pytest.approx(np.std(ps, ddof=1))
    saved = json.loads((root / "kfold.json").read_text())
    assert len(saved["folds"]) == 2 and saved["mean_psnr"] == pytest.approx(res.mean_psnr)
    md = (root / "kfold.md").read_text()
    assert "mean ± std" in md and md.count("\n| 0 |") == 1 and md.count("\n| 1 |") == 1
    # a second run refuses to overwrite; --resume re-reads the finished folds
    with pytest.raises(FileExistsError, match="k-fold runs"):
        kfold(cfg, 2, log=lambda s: None)
    again = kfold(cfg, 2, resume=True, log=lambda s: None)
    assert [f.best_psnr for f in again.folds] == ps

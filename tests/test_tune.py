"""srlab.train.tune: 2 tiny Optuna trials, search space, the --set overrides and the epoch hook."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
from conftest import smooth_images

from srlab.train.config import load_config
from srlab.train.tune import MISSING, _apply, _train_with_reports, overrides_for, search_space, tune

optuna = pytest.importorskip("optuna")


def test_search_space_follows_the_constructor() -> None:
    from srlab.zoo.registry import get_spec

    span = search_space(load_config(None, ["model.name=span", "model.kwargs={feat: 8}"]))
    blocks = get_spec("span").kwargs["blocks"]  # the variant's own value when not overridden
    assert span["feat"] == (4, 8, 16)
    assert span["blocks"] == tuple(sorted({max(1, blocks // 2), blocks, 2 * blocks}))
    assert set(span) == {"lr", "weight_decay", "loss", "optimizer", "feat", "blocks"}
    vdsr = search_space(load_config(None, ["model.name=vdsr-5"]))
    assert vdsr["depth"] == (2, 5, 10) and "blocks" not in vdsr
    assert "feat" not in search_space(load_config(None, ["model.name=srcnn"]))


def test_overrides_round_trip() -> None:
    cfg = load_config(None, ["model.name=span"])
    params = {"lr": 3.2e-4, "weight_decay": 1e-6, "loss": "charbonnier", "optimizer": "adamw",
              "feat": 16, "blocks": 2}
    via_set = load_config(None, ["model.name=span", *overrides_for(params)])
    assert via_set == _apply(cfg, params)


def test_epoch_hook_is_passed_to_train(monkeypatch) -> None:
    import srlab.train.loop

    def fake(cfg, *, resume=False, log=print, on_epoch=None):
        return [on_epoch(e, 30.0) for e in (1, 2)]

    monkeypatch.setattr(srlab.train.loop, "train", fake)
    assert _train_with_reports(None, lambda e, p: e == 2, print) == [False, True]


def test_missing_optuna_message(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(ImportError, match=r"pip install 'srlab\[tune\]'"):
        tune(load_config(None), 1)
    assert "srlab[tune]" in MISSING


def test_tune_two_trials(tmp_path: Path) -> None:
    data = smooth_images(tmp_path / "train", 6, seed=0)
    cfg = load_config(None, [
        "model.name=span", "model.scale=2", "model.kwargs={feat: 8, blocks: 1}",
        f"data.train=[{data}]", "data.val_fraction=0.34", "data.val_max=2", "data.patch=8",
        "data.batch=2", "data.prefetch=false", "run.epochs=2", "run.iters_per_epoch=3",
        "run.progress=false", f"run.out_dir={tmp_path / 'runs'}", "run.name=tn",
        "run.snapshots=1",
    ])
    res = tune(cfg, 2, log=lambda s: None)
    root = tmp_path / "runs" / "tn"
    assert len(res.trials) == 2 and all(t.state == "COMPLETE" for t in res.trials)
    assert res.best_psnr == max(t.best_psnr for t in res.trials)
    md = (root / "tune.md").read_text()
    assert md.count("| COMPLETE |") == 2 and "--set" in md
    with open(root / "tune.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 and {"lr", "loss", "optimizer", "feat", "blocks"} <= set(rows[0])
    info = json.loads((root / "tune.json").read_text())
    assert info["overrides"] == res.overrides
    assert (root / "trial_000" / "best.safetensors").is_file()
    assert (root / "trial_001" / "best.safetensors").is_file()
    with pytest.raises(FileExistsError):
        tune(cfg, 1, log=lambda s: None)


def test_median_pruning_stops_poor_trials(monkeypatch, tmp_path: Path) -> None:
    import srlab.train.loop
    from srlab.train.loop import RunSummary

    calls = []

    def fake(cfg, *, resume=False, log=print, on_epoch=None):  # each trial worse than the last
        value = 30.0 - len(calls)
        calls.append(cfg.run.name)
        for epoch in (1, 2, 3):
            if on_epoch(epoch, value):
                break
        return RunSummary(tmp_path, value, 0.5, 3, 20.0, 6, 1.0, 1.0, 0)

    monkeypatch.setattr(srlab.train.loop, "train", fake)
    cfg = load_config(None, [f"run.out_dir={tmp_path}", "run.name=p"])
    res = tune(cfg, 5, log=lambda s: None)
    assert [(t.state, t.epochs) for t in res.trials] == [("COMPLETE", 3)] * 3 + [("PRUNED", 2)] * 2
    assert res.best_psnr == 30.0 and calls[0] == "p/trial_000"
    assert (tmp_path / "p" / "tune.md").read_text().count("| PRUNED |") == 2

"""srlab.eval.compare on tiny synthetic data: tables, charts and best/worst grids are right."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from conftest import smooth_images
from PIL import Image

from srlab.eval.benchmark import run_benchmark
from srlab.eval.compare import _worst_window, compare, resolve_item
from srlab.train.config import load_config
from srlab.train.loop import train


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("cmp")
    data = smooth_images(tmp / "train", 6, seed=0)
    cfg = load_config(None, [
        "model.name=span", "model.scale=2", "model.kwargs={feat: 8, blocks: 1}",
        f"data.train=[{data}]", "data.val_fraction=0.34", "data.val_max=2", "data.patch=8",
        "data.batch=2", "data.prefetch=false", "run.epochs=2", "run.iters_per_epoch=3",
        "run.progress=false", f"run.out_dir={tmp / 'runs'}", "run.name=tiny", "run.snapshots=1",
    ])
    train(cfg, log=lambda s: None)
    return tmp / "runs" / "tiny"


def test_compare_tables_charts_extremes(run_dir: Path, tmp_path: Path) -> None:
    ds_a = smooth_images(tmp_path / "SetA", 4, seed=1)
    ds_b = smooth_images(tmp_path / "SetB", 3, seed=2, size=48)
    out = tmp_path / "out"
    # espcn ships x2 and x4 weights only: at x3 it is untrained, which the table must say
    res = compare([str(run_dir), "bicubic-matlab", "espcn"], scales=[2, 3],
                  datasets=[ds_a, ds_b], out_dir=out, command="srlab compare test",
                  log=lambda s: None)
    # the run only at its own scale (x2); registry models at x2 and x3
    keys = {(r.model, r.scale, r.dataset) for r in res.rows}
    assert keys == {("tiny", 2, "SetA"), ("tiny", 2, "SetB")} | {
        (m, s, d) for m in ("bicubic-matlab", "espcn") for s in (2, 3)
        for d in ("SetA", "SetB")}
    assert len(res.images) == 5 * 4 + 5 * 3
    md = res.table.read_text()
    assert md.count("\n| x") == 10 and "| tiny |" in md
    assert {(r.scale, r.trained) for r in res.rows if r.model == "espcn"} == {(2, True),
                                                                               (3, False)}
    for r in res.rows:  # each untrained row is marked as such, trained ones are not
        row = f"| x{r.scale} | {r.dataset} | {r.model}"
        assert (row + " (untrained) |" in md) == (not r.trained), row
        assert (row + " |" in md) == r.trained, row
    with open(res.csv) as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 10 and {"psnr", "ssim", "mse", "mae"} <= set(rows[0])
    with open(out / "per_image.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 35
    # the same figures as srlab benchmark: one protocol
    bench = run_benchmark(["bicubic-matlab"], [2], [ds_a], log=lambda s: None)[0]
    mine = next(r for r in res.rows if (r.model, r.scale, r.dataset)
                == ("bicubic-matlab", 2, "SetA"))
    assert mine.psnr == pytest.approx(bench.psnr) and mine.ssim == pytest.approx(bench.ssim)
    # per-image MSE mean = table MSE
    per = [i.mse for i in res.images if (i.model, i.scale, i.dataset) == ("tiny", 2, "SetA")]
    tiny_a = next(r for r in res.rows if (r.model, r.dataset) == ("tiny", "SetA"))
    assert np.mean(per) == pytest.approx(tiny_a.mse)
    assert sorted(p.name for p in res.charts) == ["psnr_x2.png", "psnr_x3.png",
                                                  "ssim_x2.png", "ssim_x3.png"]
    assert sorted(p.name for p in res.extremes) == [
        "bicubic-matlab_x2.png", "bicubic-matlab_x3.png", "espcn_x2.png", "espcn_x3.png",
        "tiny_x2.png"]
    for p in res.charts + res.extremes:
        with Image.open(p) as im:
            assert im.width > 100 and im.height > 100


def test_resolve_item_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="neither a run directory nor a registered model"):
        resolve_item("no-such-model")
    with pytest.raises(FileNotFoundError, match="no best.safetensors"):
        resolve_item(str(tmp_path))
    assert resolve_item("bicubic").scale is None


def test_worst_window_finds_the_error() -> None:
    hr = np.full((40, 50), 100, np.uint8)
    sr = hr.copy()
    sr[20:28, 30:38] = 160
    assert _worst_window(sr, hr, 8) == (20, 30)

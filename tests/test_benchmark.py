"""srlab benchmark and srlab ship on tiny folders (the real sets are commands, not tests)."""

from __future__ import annotations

import csv
import json
import os
import shutil

import numpy as np
import pytest
from conftest import synthetic_image
from PIL import Image

from srlab.cli import main


@pytest.fixture
def hr_folder(tmp_path):
    folder = tmp_path / "hr"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(synthetic_image(i, 50, 46)).save(folder / f"{i}.png")
    Image.fromarray(synthetic_image(7, 40, 40)[..., 0]).save(folder / "gray.png")  # mode L
    return folder


def test_benchmark_writes_tables_and_ranks_bicubic_above_nearest(hr_folder, tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("a\n<!-- srlab:t -->\nold\n<!-- /srlab:t -->\nb\n")
    code = main(["benchmark", "-m", "bicubic-matlab", "-m", "nearest", "-s", "2", "-s", "3",
                 "-d", str(hr_folder), "-o", str(tmp_path / "out"), "--readme", str(readme),
                 "--section", "t", "--no-cache"])
    assert code == 0
    rows = list(csv.DictReader(open(tmp_path / "out" / "benchmark.csv")))
    assert len(rows) == 4
    by = {(r["model"], r["scale"]): float(r["psnr"]) for r in rows}
    assert by[("bicubic-matlab", "2")] > by[("nearest", "2")]
    assert all(float(r["mpx_per_s"]) > 0 and r["images"] == "4" for r in rows)
    data = json.loads((tmp_path / "out" / "benchmark.json").read_text())
    assert data["command"].startswith("srlab ")
    text = readme.read_text()
    assert "old" not in text and "| bicubic-matlab | x2 |" in text and text.endswith("b\n")
    assert "Made by `srlab" in capsys.readouterr().out


def test_benchmark_opencv_peer(hr_folder, tmp_path):
    pytest.importorskip("cv2")
    from srlab.image.datasets import shared_dir

    if not (shared_dir() / "peers" / "opencv-dnn-superres" / "ESPCN_x2.pb").is_file():
        pytest.skip("OpenCV peer weights not found under $SRLAB_SHARED")
    assert main(["benchmark", "-m", "opencv-espcn", "-s", "2", "-d", str(hr_folder),
                 "-o", str(tmp_path / "o"), "--no-cache"]) == 0


def test_benchmark_usage_errors(hr_folder, tmp_path, capsys):
    assert main(["benchmark", "-m", "no-such-model", "-d", str(hr_folder)]) == 2
    assert main(["benchmark", "-m", "bicubic", "-d", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("srlab: error:") for line in err)


def test_ship_measures_and_installs_a_run(image_folder, hr_folder, tmp_path, monkeypatch):
    from srlab.ship import ship_run
    from srlab.train.config import load_config
    from srlab.train.loop import train
    from srlab.zoo.weights import read_weights

    cfg = load_config(None, ["model.name=span-fast", "model.scale=2", "data.patch=8",
                             "data.batch=2", "data.val_max=2", "run.epochs=1",
                             "run.iters_per_epoch=2", "run.progress=false",
                             f"data.train=[{image_folder}]", f"run.out_dir={tmp_path}"])
    train(cfg, log=lambda _: None)
    shared = tmp_path / "shared"
    (shared / "datasets" / "benchmark").mkdir(parents=True)
    (shared / "datasets" / "benchmark" / "Tiny").symlink_to(hr_folder)
    monkeypatch.setenv("SRLAB_SHARED", str(shared))
    dest = tmp_path / "weights"
    out = ship_run(tmp_path / "run", datasets=("Tiny",), dest=dest, log=lambda _: None)
    _, meta = read_weights(out)
    assert out.name == "span-fast_x2.safetensors"
    assert set(meta.metrics) == {"Tiny"} and meta.metrics["Tiny"]["psnr"] > 10
    card = (dest / "span-fast_x2.md").read_text()
    assert "Made by `srlab ship" in card and "| span-fast | x2 |" in card
    assert (dest / "span-fast_x2" / "psnr.png").is_file()
    assert "intermediate" not in card  # the run finished its schedule

    # a card from before cards named the architecture catches up from the metadata alone,
    # its measured section kept word for word; a current card is left as it is
    from srlab.ship import rerender_card

    assert rerender_card(out) is False
    card_path = dest / "span-fast_x2.md"
    old = "\n".join(line for line in card.splitlines() if not line.startswith("- architecture"))
    card_path.write_text(old + "\n")
    assert rerender_card(out) is True and card_path.read_text() == card
    assert not list(dest.glob(".*.tmp"))


def test_ship_of_a_stopped_run_says_its_weights_are_intermediate(image_folder, hr_folder,
                                                                 tmp_path, monkeypatch):
    from srlab.ship import ship_run
    from srlab.train.config import load_config
    from srlab.train.loop import train

    cfg = load_config(None, ["model.name=span-fast", "model.scale=2", "data.patch=8",
                             "data.batch=2", "data.val_max=2", "run.epochs=3",
                             "run.iters_per_epoch=2", "run.progress=false", "run.threads=1",
                             f"data.train=[{image_folder}]", f"run.out_dir={tmp_path}"])
    train(cfg, log=lambda _: None, on_epoch=lambda epoch, _: epoch == 1)  # stopped early
    shared = tmp_path / "shared"
    (shared / "datasets" / "benchmark").mkdir(parents=True)
    (shared / "datasets" / "benchmark" / "Tiny").symlink_to(hr_folder)
    monkeypatch.setenv("SRLAB_SHARED", str(shared))
    ship_run(tmp_path / "run", datasets=("Tiny",), dest=tmp_path / "w", log=lambda _: None)
    card = (tmp_path / "w" / "span-fast_x2.md").read_text()
    assert "intermediate weights, iteration 2 of the 6 the run plans" in card
    assert "1 CPU thread(s)" in card


def test_model_cards_cite_the_published_figure_from_the_shared_file():
    from conftest import SHARED

    from srlab.ship import published

    if not (SHARED / "published-results.md").is_file():
        pytest.skip("../shared/published-results.md not found")
    assert published("srcnn", 4) == (pytest.approx(30.48), "57K")
    assert published("vdsr", 2) == (pytest.approx(37.53), "665K")
    assert published("span", 4) is None


def test_gap_note_counts_the_cpu_time_of_the_weights_a_run_started_from():
    from conftest import SHARED

    from srlab.eval.benchmark import BenchRow
    from srlab.ship import model_card
    from srlab.zoo.weights import WeightsMeta

    if not (SHARED / "published-results.md").is_file():
        pytest.skip("../shared/published-results.md not found")
    row = BenchRow(model="vdsr", scale=4, dataset="Set5", psnr=30.0, ssim=0.85, images=5,
                   params=1, mpx_per_s=0.05, trained=True)
    meta = WeightsMeta(arch="vdsr", scale=4, train_seconds=600, init_seconds=300)
    card = model_card(meta, [row], "cmd")
    assert "a gap of +1.35 dB. Why: a CPU budget of 15 minutes" in card


def test_gap_note_names_a_different_size_of_the_published_net():
    """SRCNN's published row is the 57K 9-5-5 net; the reports' 9-1-5 has 8K: the card
    must say so, not blame the whole gap on the CPU budget."""
    from conftest import SHARED

    from srlab.eval.benchmark import BenchRow
    from srlab.ship import _count, model_card
    from srlab.zoo.weights import WeightsMeta

    assert [_count(t) for t in ("57K", "~23K", "1,592K", "43.1M", "-")] == [
        57e3, 23e3, 1592e3, 43.1e6, None]
    if not (SHARED / "published-results.md").is_file():
        pytest.skip("../shared/published-results.md not found")

    def card(arch: str, params: int, psnr: float) -> str:
        row = BenchRow(model=arch, scale=4, dataset="Set5", psnr=psnr, ssim=0.85, images=5,
                       params=params, mpx_per_s=1.0, trained=True)
        return model_card(WeightsMeta(arch=arch, scale=4, params=params, train_seconds=60,
                                      kwargs={"in_channels": 1}), [row], "cmd")

    assert ("a gap of +0.56 dB. The published net has 57K parameters, this one 8,129. Why:"
            in card("srcnn", 8129, 29.92))
    near = card("espcn", 24752, 30.09)  # 25K published: the same size
    assert "Within 0.5 dB of the paper" in near and "The published net has" not in near


def test_compare_cli_on_registry_models(hr_folder, tmp_path, capsys):
    code = main(["compare", "bicubic-matlab", "nearest", "-s", "2", "-d", str(hr_folder),
                 "-o", str(tmp_path / "cmp")])
    assert code == 0
    assert (tmp_path / "cmp" / "compare.md").is_file()
    assert "bicubic-matlab" in capsys.readouterr().out


def test_tune_cli_one_trial(image_folder, tmp_path, capsys):
    pytest.importorskip("optuna")
    sets = ["model.name=span-fast", "model.scale=2", "data.patch=8", "data.batch=2",
            "data.val_max=2", "run.epochs=1", "run.iters_per_epoch=2", "run.progress=false",
            f"data.train=[{image_folder}]", f"run.out_dir={tmp_path}"]
    code = main(["tune", *[f"--set={s}" for s in sets], "--trials", "1"])
    assert code == 0
    assert "best validation PSNR" in capsys.readouterr().out


def test_gmsd_option_puts_the_measured_perceptual_score_in_each_cell(hr_folder, tmp_path):
    assert main(["benchmark", "-m", "bicubic-matlab", "-m", "nearest", "-s", "2", "-d",
                 str(hr_folder), "-o", str(tmp_path / "out"), "--gmsd", "--no-cache"]) == 0
    md = (tmp_path / "out" / "benchmark.md").read_text()
    assert "GMSD (lower is better)" in md
    measured = {r["model"]: float(r["gmsd"])
                for r in csv.DictReader(open(tmp_path / "out" / "benchmark.csv"))}
    for name, value in measured.items():
        line = next(x for x in md.splitlines() if x.startswith(f"| {name} |"))
        psnr_ssim_gmsd = line.split("|")[4].strip().split(" / ")
        assert len(psnr_ssim_gmsd) == 3 and float(psnr_ssim_gmsd[2]) == round(value, 4)


def test_score_cache_reuses_rows_only_for_the_same_tensors_and_images(hr_folder, tmp_path):
    import torch

    from srlab.eval.benchmark import run_benchmark
    from srlab.eval.tables import markdown_table
    from srlab.zoo.registry import build_model
    from srlab.zoo.weights import WeightsMeta, save_weights

    torch.manual_seed(0)
    net = build_model("span", 2, feat=8, blocks=1)
    meta = WeightsMeta(arch="span", scale=2, kwargs={"feat": 8, "blocks": 1})
    w = tmp_path / "w.safetensors"
    save_weights(net, meta, w)
    cache = tmp_path / "cache"

    def bench():
        return run_benchmark(["bicubic-matlab", "span"], [2], [hr_folder],
                             weights={"span": str(w)}, cache=cache, log=lambda _: None)

    first = bench()
    assert not any(r.cached for r in first) and len(list(cache.glob("*.json"))) == 2
    again = bench()
    assert all(r.cached for r in again)
    assert [(r.psnr, r.ssim) for r in again] == [(r.psnr, r.ssim) for r in first]
    assert "Every row came from the score cache" in markdown_table(again, "srlab benchmark")
    # the load each row was timed at travels with it through the cache
    assert [r.load for r in again] == [r.load for r in first]
    assert all(r.load >= 0 for r in first) == hasattr(os, "getloadavg")
    if hasattr(os, "getloadavg"):
        assert "rows were timed at a 1-minute load average of" in markdown_table(again)
    # refresh: measured again, and the fresh row replaces the cached one for later runs
    for entry in cache.glob("*.json"):  # mark the stored rows so a replacement shows
        entry.write_text(json.dumps({**json.loads(entry.read_text()), "load": -1.0}))
    assert all(r.load == -1.0 for r in bench())
    fresh = run_benchmark(["bicubic-matlab", "span"], [2], [hr_folder], weights={"span": str(w)},
                          cache=cache, refresh=True, log=lambda _: None)
    assert not any(r.cached for r in fresh) and all(r.load != -1.0 for r in fresh)
    assert [(r.psnr, r.ssim) for r in fresh] == [(r.psnr, r.ssim) for r in first]
    assert all(r.cached and r.load != -1.0 for r in bench())
    # new metadata only (what srlab ship adds): same tensors, still a hit
    meta.metrics = {"Set5": {"psnr": 1.0}}
    save_weights(net, meta, w)
    assert all(r.cached for r in bench())
    # other tensor values: measured again
    with torch.no_grad():
        next(net.parameters()).add_(0.1)
    save_weights(net, meta, w)
    rows = bench()
    assert [r.cached for r in rows] == [True, False]
    assert "Rows of bicubic-matlab x2 came from the score cache" in markdown_table(rows)
    # other images: measured again; an unreadable entry is measured again, not an error
    Image.fromarray(synthetic_image(9, 30, 30)).save(hr_folder / "new.png")
    for entry in cache.glob("*.json"):
        entry.write_text("{not json")
    assert not any(r.cached for r in bench())


def test_refresh_flag_measures_again_and_keeps_the_fresh_rows(hr_folder, tmp_path, capsys):
    args = ["benchmark", "-m", "bicubic-matlab", "-s", "2", "-d", str(hr_folder),
            "-o", str(tmp_path / "o"), "--cache", str(tmp_path / "c")]
    assert main(args) == 0 and main(args) == 0
    assert "(cached)" in capsys.readouterr().err
    assert main([*args, "--refresh"]) == 0
    assert "(cached)" not in capsys.readouterr().err
    assert len(list((tmp_path / "c").glob("*.json"))) == 1  # replaced, not added


def test_benchmark_shipped_expands_to_the_weights_in_the_package(hr_folder, tmp_path):
    from srlab.zoo.weights import SHIPPED_DIR

    assert main(["benchmark", "-m", "bicubic-matlab", "-m", "shipped", "-s", "2",
                 "-d", str(hr_folder), "-o", str(tmp_path / "o"), "--no-cache"]) == 0
    rows = list(csv.DictReader(open(tmp_path / "o" / "benchmark.csv")))
    on_disk = {p.name.removesuffix("_x2.safetensors") for p in SHIPPED_DIR.glob("*_x2.safetensors")}
    assert on_disk, "the package ships x2 weights"
    assert [r["model"] for r in rows][0] == "bicubic-matlab"
    assert {r["model"] for r in rows[1:]} == on_disk
    assert all(r["trained"] == "True" for r in rows)


def test_a_run_started_from_weights_counts_their_cpu_time(image_folder, hr_folder, tmp_path,
                                                          monkeypatch):
    """A fine-tuned or grown net's card states its parents' CPU time as well as its own."""
    from srlab.ship import inherited_seconds, ship_run
    from srlab.train.config import load_config
    from srlab.train.loop import train
    from srlab.zoo.registry import build_model
    from srlab.zoo.weights import WeightsMeta, read_weights, save_weights

    parent = tmp_path / "parent.safetensors"
    save_weights(build_model("span-fast", 2),
                 WeightsMeta(arch="span-fast", scale=2, recipe="parent run", train_seconds=600,
                             init_seconds=300), parent)
    cfg = load_config(None, ["model.name=span-fast", "model.scale=2", "data.patch=8",
                             "data.batch=2", "data.val_max=2", "run.epochs=1",
                             "run.iters_per_epoch=2", "run.progress=false", "run.threads=1",
                             f"model.init={parent}", f"data.train=[{image_folder}]",
                             f"run.out_dir={tmp_path}"])
    train(cfg, log=lambda _: None)
    _, child = read_weights(tmp_path / "run" / "best.safetensors")
    assert child.init_seconds == 900  # the parent's own 600 s and its inherited 300 s
    shared = tmp_path / "shared"
    (shared / "datasets" / "benchmark").mkdir(parents=True)
    (shared / "datasets" / "benchmark" / "Tiny").symlink_to(hr_folder)
    monkeypatch.setenv("SRLAB_SHARED", str(shared))
    out = ship_run(tmp_path / "run", datasets=("Tiny",), dest=tmp_path / "w", log=lambda _: None)
    assert read_weights(out)[1].init_seconds == 900
    card = (tmp_path / "w" / "span-fast_x2.md").read_text()
    assert "for this run" in card and "the 15.0 min of the weights it started from" in card
    assert "which these replaced" not in card

    # shipped over the very file it started from: the card says the path now names these
    init_dir = tmp_path / "pkg"
    init_dir.mkdir()
    shutil.copy2(parent, init_dir / "span-fast_x2.safetensors")
    cfg_file = tmp_path / "run" / "config.yaml"
    cfg_file.write_text(cfg_file.read_text().replace(str(parent),
                                                     str(init_dir / "span-fast_x2.safetensors")))
    ship_run(tmp_path / "run", datasets=("Tiny",), dest=init_dir, log=lambda _: None)
    card = (init_dir / "span-fast_x2.md").read_text()
    assert "(the weights shipped there before, which these replaced)" in card
    assert "scale augmentation" not in card

    # weights from before runs recorded it: read from the run config's model.init file ...
    old = WeightsMeta(arch="span-fast", scale=2, recipe="child run")
    config = {"model": {"init": str(parent)}}
    assert inherited_seconds(old, config) == 900
    # ... unless that file is now this run's own shipped output (a re-ship after replacing it)
    save_weights(build_model("span-fast", 2),
                 WeightsMeta(arch="span-fast", scale=2, recipe="child run", train_seconds=60,
                             init_seconds=900), parent)
    assert inherited_seconds(old, config) == 900
    assert inherited_seconds(old, {"model": {"init": str(tmp_path / "gone.safetensors")}}) == 0
    assert inherited_seconds(old, {}) == 0


def test_card_states_the_scale_augmentation_from_the_run_config():
    from srlab.ship import model_card, run_rescale
    from srlab.zoo.weights import WeightsMeta

    assert run_rescale({}) is None and run_rescale({"data": {"rescale": [1.0]}}) is None
    said = run_rescale({"data": {"rescale": [1.0, 0.9, 0.6]}})
    assert said == "each training image also at 0.9, 0.6 of its size (MATLAB bicubic)"
    card = model_card(WeightsMeta(arch="span", scale=4), [], "cmd",
                      config={"data": {"rescale": [1.0, 0.9, 0.6]}})
    assert f"- scale augmentation (run config): {said}" in card.splitlines()


def test_card_states_the_sampling_phase_augmentation_from_the_run_config():
    from srlab.ship import model_card, run_phases
    from srlab.zoo.weights import WeightsMeta

    assert run_phases({}) is None and run_phases({"data": {"phases": False}}) is None
    said = run_phases({"model": {"scale": 4}, "data": {"phases": True}})
    assert said is not None and "16 LR sampling grids" in said
    card = model_card(WeightsMeta(arch="span", scale=4), [], "cmd",
                      config={"model": {"scale": 4}, "data": {"phases": True}})
    assert f"- sampling-phase augmentation (run config): {said}" in card.splitlines()
    assert not any("sampling-phase" in line for line in model_card(
        WeightsMeta(arch="span", scale=4), [], "cmd").splitlines())


def test_card_states_detail_weighted_patch_sampling_from_the_run_config():
    from srlab.ship import model_card, run_candidates
    from srlab.zoo.weights import WeightsMeta

    assert run_candidates({}) is None and run_candidates({"data": {"candidates": 1}}) is None
    said = run_candidates({"data": {"candidates": 3}})
    assert said is not None and "most detailed of 3" in said
    card = model_card(WeightsMeta(arch="span", scale=4), [], "cmd",
                      config={"data": {"candidates": 3}})
    assert f"- patch sampling (run config): {said}" in card.splitlines()


def test_card_names_the_architecture_arguments_the_weights_carry():
    """A 48x14 span and a 64x8 span share a registry name; the card must tell them apart."""
    from srlab.ship import model_card
    from srlab.zoo.weights import WeightsMeta

    card = model_card(WeightsMeta(arch="span", scale=4, kwargs={"channels": 48, "blocks": 14}),
                      [], "cmd").splitlines()
    assert [line for line in card if line.startswith("- architecture")] == [
        "- architecture (constructor arguments, kept in the weights' metadata so "
        "`srlab upscale` rebuilds this exact net): blocks=14, channels=48"]
    plain = model_card(WeightsMeta(arch="span", scale=4), [], "cmd")
    assert "- architecture" not in plain


@pytest.mark.parametrize("progress, says", [
    ((2500, 2500, 3000), "intermediate weights, iteration 2,500 of the 3,000"),
    ((2500, 3000, 3000), "iteration 2,500, the best validation PSNR of the run's completed 3,000"),
    ((3000, 3000, 3000), None),
    (None, None),
])
def test_card_status_tells_a_stopped_run_from_a_finished_one(progress, says):
    """Best weights from before the end of a finished run are not 'intermediate'."""
    from srlab.ship import model_card
    from srlab.zoo.weights import WeightsMeta

    card = model_card(WeightsMeta(arch="span", scale=3), [], "cmd", progress)
    status = [line for line in card.splitlines() if line.startswith("- status:")]
    assert status == ([] if says is None else [status[0]])
    if says:
        assert says in status[0]
        assert ("unfinished" in status[0]) == ("intermediate" in says)


def test_load_average_is_nan_where_the_platform_has_none(monkeypatch):
    """Windows has no os.getloadavg: benchmark rows and the speed footer must still work."""
    from srlab.eval import speed
    from srlab.eval.speed import load_average

    monkeypatch.delattr(os, "getloadavg", raising=False)
    assert load_average() != load_average()  # NaN
    assert speed._load_note() == f"{os.cpu_count()} CPUs"


@pytest.mark.parametrize("mpx, text", [(12.34, "12.3"), (1.0, "1.0"), (0.996, "1.0"),
                                       (0.58, "0.58"), (0.0712, "0.071")])
def test_speed_cells_keep_a_decimal_point(mpx, text):
    from srlab.eval.tables import _speed

    assert _speed(mpx) == text


def test_table_speed_is_total_pixels_over_total_seconds_and_a_missing_cell_is_a_dash():
    """1 Mpx at 1 Mpx/s and 8 Mpx at 4 Mpx/s take 3 s for 9 Mpx: 3.0, where the mean of
    the two speeds says 2.5 and a big set's speed counts no more than a small one's."""
    from srlab.eval.benchmark import BenchRow
    from srlab.eval.tables import markdown_table

    def row(model: str, ds: str, mpx: float, speed: float) -> BenchRow:
        return BenchRow(model=model, scale=4, dataset=ds, psnr=30.0, ssim=0.9, images=1,
                        params=10, mpx_per_s=speed, trained=True, load=1.0, mpx=mpx)

    rows = [row("a", "Set5", 1.0, 1.0), row("a", "Urban100", 8.0, 4.0), row("b", "Set5", 1.0, 2.0)]
    table = markdown_table(rows, "cmd")
    assert "| a | x4 | 10 | 30.00 / 0.9000 | 30.00 / 0.9000 | 3.0 |" in table  # 9 Mpx in 3 s
    assert "| b | x4 | 10 | 30.00 / 0.9000 | - | 2.0 |" in table
    assert "all sets together;" in table
    old = BenchRow(model="c", scale=4, dataset="Set5", psnr=30.0, ssim=0.9, images=1,
                   params=1, mpx_per_s=2.0, trained=True)  # cached before rows had pixels
    assert "mean of per-set speeds for older cache entries" in markdown_table(rows + [old], "cmd")


def test_degraded_tracks_score_lower_than_clean_and_are_cached_apart(hr_folder, tmp_path):
    out, cache = tmp_path / "out", tmp_path / "cache"
    argv = ["benchmark", "-m", "bicubic-matlab", "-s", "2", "-d", str(hr_folder),
            "--degrade", "clean", "--degrade", "jpeg50", "--degrade", "noise10",
            "-o", str(out), "--cache", str(cache)]
    assert main(argv) == 0
    rows = list(csv.DictReader(open(out / "benchmark.csv")))
    psnr = {r["track"]: float(r["psnr"]) for r in rows}
    assert set(psnr) == {"clean", "jpeg50", "noise10"}
    assert psnr["clean"] > psnr["jpeg50"] and psnr["clean"] > psnr["noise10"]
    md = (out / "benchmark.md").read_text()
    assert "| LR input | model |" in md and "| jpeg50 | bicubic-matlab | x2 |" in md
    assert "`noise10` the seeded damage" in md
    assert main(argv) == 0  # all three from the cache now, each under its own key
    again = list(csv.DictReader(open(out / "benchmark.csv")))
    assert {r["track"]: float(r["psnr"]) for r in again} == psnr
    assert all(r["cached"] == "True" for r in again)
    assert len(list(cache.glob("*.json"))) == 3


def test_unknown_track_is_a_usage_error(hr_folder, tmp_path, capsys):
    code = main(["benchmark", "-m", "bicubic-matlab", "-d", str(hr_folder), "--degrade", "fog"])
    assert code == 2 and "invalid choice: 'fog'" in capsys.readouterr().err


def test_strip_draws_lr_each_model_and_hr_from_the_track_inputs(hr_folder, tmp_path):
    from srlab.eval.benchmark import visual_strip
    from srlab.image.datasets import load_pairs

    out = visual_strip(["bicubic-matlab", "nearest"], 2, hr_folder, tmp_path / "s.png",
                       track="jpeg50", crop=32)
    img = np.asarray(Image.open(out))
    assert img.shape == (14 + 3 * (32 + 2), 4 * (32 + 2), 3)
    # the LR column is the track's LR, pixel-doubled: its crop of the first image matches
    name, lr, hr = load_pairs(hr_folder, 2, "jpeg50")[0]
    h, w = hr.shape[:2]
    y, x = (h - 32) // 2 // 2 * 2, (w - 32) // 2 // 2 * 2
    assert np.array_equal(img[14:14 + 32:2, 0:32:2], lr[y // 2 : y // 2 + 16, x // 2 : x // 2 + 16])

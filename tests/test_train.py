"""The trainer end to end on tiny data: artifacts, exact resume, divergence guard, config, DDP."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from srlab.train.config import ConfigError, load_config
from srlab.train.loop import lr_at, train
from srlab.zoo.weights import read_weights

TINY = ["model.name=span", "model.scale=2", "model.kwargs={feat: 8, blocks: 1}",
        "data.patch=8", "data.batch=2", "data.val_max=2", "data.val_fraction=0.34",
        "run.epochs=2", "run.iters_per_epoch=3", "run.progress=false", "run.threads=1"]


def _cfg(folder: Path, out: Path, *extra: str):
    return load_config(None, [*TINY, f"data.train=[{folder}]", f"run.out_dir={out}", *extra])


def test_train_writes_every_artifact(image_folder, tmp_path):
    sm = train(_cfg(image_folder, tmp_path, "optim.ema=0.9"), log=lambda _: None)
    run = tmp_path / "run"
    for name in ("config.yaml", "metrics.csv", "loss.png", "psnr.png", "ssim.png",
                 "progress.gif", "best.safetensors", "last.safetensors", "summary.md",
                 "summary.json", "checkpoint.pt", "predictions/epoch_0001.png",
                 "predictions/epoch_0002.png"):
        assert (run / name).is_file(), name
    assert sm.iterations == 6 and np.isfinite(sm.best_psnr)
    _, meta = read_weights(run / "best.safetensors")
    assert meta.arch == "span" and meta.scale == 2 and "val" in meta.metrics
    assert len((run / "metrics.csv").read_text().strip().splitlines()) == 3


def test_resume_ends_with_the_same_weights(image_folder, tmp_path):
    extra = ("optim.ema=0.9", "run.epochs=3")
    train(_cfg(image_folder, tmp_path / "a", *extra), log=lambda _: None)
    # interrupted after epoch 1 (checkpoint written), then resumed
    train(_cfg(image_folder, tmp_path / "b", *extra), log=lambda _: None,
          on_epoch=lambda epoch, _: epoch == 1)
    with pytest.raises(FileExistsError):
        train(_cfg(image_folder, tmp_path / "b", *extra), log=lambda _: None)
    train(_cfg(image_folder, tmp_path / "b", *extra), resume=True, log=lambda _: None)
    a, _ = read_weights(tmp_path / "a" / "run" / "last.safetensors")
    b, _ = read_weights(tmp_path / "b" / "run" / "last.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_a_resumed_run_records_each_segments_threads_in_its_recipe(image_folder, tmp_path):
    extra = ("run.epochs=3", "run.threads=1")
    train(_cfg(image_folder, tmp_path, *extra), log=lambda _: None,
          on_epoch=lambda epoch, _: epoch == 1)
    train(_cfg(image_folder, tmp_path, *extra), resume=True, log=lambda _: None,
          on_epoch=lambda epoch, _: epoch == 2)  # same settings: still one segment
    _, meta = read_weights(tmp_path / "run" / "last.safetensors")
    assert "float32, 1 CPU thread(s)" in meta.recipe and "iterations 0-" not in meta.recipe
    train(_cfg(image_folder, tmp_path, "run.epochs=3", "run.threads=2"), resume=True,
          log=lambda _: None)
    _, meta = read_weights(tmp_path / "run" / "last.safetensors")
    assert "iterations 0-6: float32, 1 CPU thread(s); iterations 6-9: float32, 2 CPU thread(s)" \
        in meta.recipe


def test_resuming_a_checkpoint_without_segments_says_the_earlier_part_is_unrecorded(
        image_folder, tmp_path):
    train(_cfg(image_folder, tmp_path), log=lambda _: None, on_epoch=lambda epoch, _: epoch == 1)
    ckpt = tmp_path / "run" / "checkpoint.pt"
    ck = torch.load(ckpt, weights_only=True)
    del ck["segments"]  # as written before segments were recorded
    torch.save(ck, ckpt)
    train(_cfg(image_folder, tmp_path), resume=True, log=lambda _: None)
    _, meta = read_weights(tmp_path / "run" / "last.safetensors")
    assert ("iterations 0-3: precision and threads not recorded; "
            "iterations 3-6: float32, 1 CPU thread(s)") in meta.recipe


def test_divergence_guard_rolls_back_and_lowers_the_rate(image_folder, tmp_path):
    logs: list[str] = []
    sm = train(_cfg(image_folder, tmp_path, "optim.name=sgd", "optim.lr=1e4",
                    "optim.schedule=constant", "run.iters_per_epoch=30", "run.guard_every=5"),
               log=logs.append)
    assert sm.rollbacks >= 1
    assert any("divergence guard" in line for line in logs)
    assert np.isfinite(sm.best_psnr)
    tensors, _ = read_weights(tmp_path / "run" / "last.safetensors")
    assert all(torch.isfinite(t).all() for t in tensors.values())


def test_paired_layout_and_small_images_skipped(tmp_path):
    root = tmp_path / "isr"
    (root / "high_res").mkdir(parents=True)
    (root / "low_res").mkdir()
    from conftest import synthetic_image

    for i in range(4):
        hr = synthetic_image(i)
        Image.fromarray(hr).save(root / "high_res" / f"{i}.png")
        Image.fromarray(hr[::2, ::2]).save(root / "low_res" / f"{i}.png")
    Image.fromarray(synthetic_image(9, 10, 10)).save(root / "high_res" / "tiny.png")
    with pytest.warns(UserWarning, match="tiny.png"):
        sm = train(_cfg(root, tmp_path, "data.val_fraction=0.25"), log=lambda _: None)
    assert sm.iterations == 6


def test_rescale_reaches_the_training_set_but_not_validation(image_folder, tmp_path):
    from srlab.train.data import datasets_for as _datasets

    cfg = _cfg(image_folder, tmp_path, "data.rescale=[1.0, 0.5]")
    train_set, val_set = _datasets(cfg)
    assert len(train_set) == 2 * 4 and len(val_set) == 2  # 6 images: 4 train, 2 val
    assert {f for _, f in train_set.entries} == {1.0, 0.5}
    assert {f for _, f in val_set.entries} == {1.0}  # validation stays at full size
    sm = train(cfg, log=lambda _: None)
    assert sm.iterations == 6


def test_config_rejects_unknown_keys_and_bad_types(tmp_path):
    with pytest.raises(ConfigError, match="optim.lrr"):
        load_config(None, ["optim.lrr=1"])
    with pytest.raises(ConfigError, match="expected int"):
        load_config(None, ["run.epochs=many"])
    bad = tmp_path / "c.yaml"
    bad.write_text("model: {name: span, colour: red}\n")
    with pytest.raises(ConfigError, match="model.colour"):
        load_config(bad)


def test_every_example_config_loads():
    configs = sorted(Path(__file__).resolve().parents[1].glob("configs/*.yaml"))
    assert configs
    from srlab.zoo.registry import MODELS, build_model

    for path in configs:
        cfg = load_config(path)
        assert cfg.model.name in MODELS, path
        assert cfg.model.scale in MODELS[cfg.model.name].scales, path
        with torch.device("meta"):  # builds the architecture without memory or time
            names = [n for n, _ in build_model(cfg.model.name, cfg.model.scale,
                                               **cfg.model.kwargs).named_parameters()]
        for prefix in cfg.model.zero + cfg.model.freeze:
            assert any(n.startswith(prefix + ".") for n in names), (path, prefix)


def test_schedule_warmup_cosine_step():
    cfg = load_config(None, ["optim.lr=1.0", "optim.warmup_iters=10", "optim.min_lr=0.0"])
    assert lr_at(0, cfg, 110) == pytest.approx(0.1)
    assert lr_at(10, cfg, 110) == pytest.approx(1.0)
    assert lr_at(60, cfg, 110) == pytest.approx(0.5)
    assert lr_at(110, cfg, 110) == pytest.approx(0.0)
    step = load_config(None, ["optim.lr=1.0", "optim.schedule=step", "optim.step_every=5",
                              "optim.gamma=0.5"])
    assert lr_at(12, step, 100) == pytest.approx(0.25)


@pytest.mark.skipif(shutil.which("torchrun", path=os.path.dirname(sys.executable)) is None,
                    reason="torchrun not installed beside this Python")
def test_ddp_two_cpu_processes_keep_identical_replicas(image_folder, tmp_path):
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    cfg = tmp_path / "ddp.yaml"
    cfg.write_text("run: {iters_per_epoch: 3, epochs: 1}\n")
    args = [torchrun, "--standalone", "--nproc_per_node", "2", "-m", "srlab", "train", str(cfg)]
    args += [f"--set={s}" for s in (*TINY[:-3], "run.progress=false", "run.threads=1",
                                    f"data.train=[{image_folder}]", f"run.out_dir={tmp_path}")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(args, capture_output=True, text=True, timeout=180, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    sums = re.findall(r"rank (\d) parameter checksum (\S+)", out.stdout + out.stderr)
    assert sorted(r for r, _ in sums) == ["0", "1"]
    assert sums[0][1] == sums[1][1]
    assert (tmp_path / "run" / "last.safetensors").is_file()


def test_progress_gif_keeps_at_most_gif_frames_and_ends_on_the_last_epoch(tmp_path):
    from PIL import Image

    from srlab.train.report import GIF_FRAMES
    from srlab.train.report import progress_gif as _gif

    pred = tmp_path / "predictions"
    pred.mkdir()
    for e in range(1, 31):  # 30 epochs, each frame a distinct grey level
        Image.new("RGB", (8, 8), (e * 8,) * 3).save(pred / f"epoch_{e:03d}.png")
    _gif(pred, tmp_path)
    with Image.open(tmp_path / "progress.gif") as gif:
        assert gif.n_frames == GIF_FRAMES
        gif.seek(gif.n_frames - 1)
        assert gif.convert("RGB").getpixel((0, 0))[0] == 30 * 8


def test_freeze_fits_a_new_head_without_touching_the_trunk(image_folder, tmp_path):
    """fcn-multi: a trunk + x4 head trained at x4, then only the x2 head trained at x2."""
    tiny = ["model.name=fcn-multi", "model.kwargs={feat: 8, blocks: 1}", "optim.ema=0"]
    train(_cfg(image_folder, tmp_path / "x4", *tiny, "model.scale=4"), log=lambda _: None)
    x4 = tmp_path / "x4" / "run" / "last.safetensors"
    train(_cfg(image_folder, tmp_path / "x2", *tiny, "model.scale=2", f"model.init={x4}",
               "model.freeze=[trunk, heads.4]"), log=lambda _: None)
    before, _ = read_weights(x4)
    after, meta = read_weights(tmp_path / "x2" / "run" / "last.safetensors")
    assert meta.scale == 2
    for k in before:
        if k.startswith("heads.2"):
            assert not torch.equal(before[k], after[k]), k
        else:
            assert torch.equal(before[k], after[k]), k


def test_freeze_that_matches_nothing_is_refused(image_folder, tmp_path):
    with pytest.raises(ValueError, match="matches no parameter"):
        train(_cfg(image_folder, tmp_path, "model.freeze=[nonexistent]"), log=lambda _: None)


def test_zero_grows_a_deeper_net_that_starts_as_the_shallow_one(image_folder, tmp_path):
    """span 1 block -> 2 blocks: with the new block's last conv zeroed it is an identity, so
    the grown net computes what the trained shallow net computes (checked with lr 0)."""
    plain = "attention: false, act: relu"
    train(_cfg(image_folder, tmp_path / "small", f"model.kwargs={{feat: 8, blocks: 1, {plain}}}",
               "optim.ema=0"), log=lambda _: None)
    small = tmp_path / "small" / "run" / "last.safetensors"
    outs = {}
    for zero in ([], ["blocks.1.convs.1"]):
        out = tmp_path / f"grown{len(zero)}"
        train(_cfg(image_folder, out, f"model.kwargs={{feat: 8, blocks: 2, {plain}}}",
                   f"model.init={small}", f"model.zero=[{', '.join(zero)}]", "optim.lr=0",
                   "optim.min_lr=0", "optim.ema=0"), log=lambda _: None)
        outs[len(zero)] = read_weights(out / "run" / "last.safetensors")[0]
    from srlab.zoo.registry import build_model

    x = torch.rand(1, 1, 12, 10)
    nets = {}
    for key, (blocks, tensors) in {"small": (1, read_weights(small)[0]), 0: (2, outs[0]),
                                   1: (2, outs[1])}.items():
        nets[key] = build_model("span", 2, in_channels=1, feat=8, blocks=blocks,
                                attention=False, act="relu")
        nets[key].load_state_dict(tensors)
    with torch.no_grad():
        ref = nets["small"](x)
        assert torch.allclose(nets[1](x), ref, atol=1e-6)
        assert not torch.allclose(nets[0](x), ref, atol=1e-3)


def test_zero_that_matches_nothing_is_refused(image_folder, tmp_path):
    with pytest.raises(ValueError, match="matches no parameter"):
        train(_cfg(image_folder, tmp_path, "model.zero=[nonexistent]"), log=lambda _: None)


@pytest.fixture
def bf16_cpu(monkeypatch):
    """Pretend the CPU runs bfloat16 natively (autocast is emulated, just slower, elsewhere)."""
    monkeypatch.setattr("srlab.runtime.cpu.native_bf16", lambda: True)


def test_bf16_autocast_trains_float32_weights(image_folder, tmp_path, bf16_cpu):
    sm = train(_cfg(image_folder, tmp_path, "run.bf16=true"), log=lambda _: None)
    assert np.isfinite(sm.best_psnr)
    tensors, meta = read_weights(tmp_path / "run" / "last.safetensors")
    assert all(t.dtype == torch.float32 for t in tensors.values())
    assert "bf16 autocast" in meta.recipe


def test_bf16_falls_back_to_float32_where_the_cpu_would_emulate_it(image_folder, tmp_path,
                                                                   monkeypatch):
    monkeypatch.setattr("srlab.runtime.cpu.native_bf16", lambda: False)
    seen = []
    real = torch.autocast
    monkeypatch.setattr(torch, "autocast", lambda *a, **k: seen.append(k["enabled"]) or
                        real(*a, **k))
    lines = []
    train(_cfg(image_folder, tmp_path, "run.bf16=true"), log=lines.append)
    assert seen and not any(seen)  # every forward pass ran in float32
    assert any("no native bfloat16" in line and "float32" in line for line in lines)
    _, meta = read_weights(tmp_path / "run" / "last.safetensors")
    assert "bf16" not in meta.recipe
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["run"]["bf16"] is False


def test_gan_phase_updates_the_discriminator_and_resumes_exactly(image_folder, tmp_path,
                                                                bf16_cpu):
    extra = ("model.name=srgan", "model.kwargs={feat: 8, blocks: 1}", "data.patch=12",
             "gan.enabled=true", "gan.pretrain_iters=2", "run.bf16=true", "run.epochs=3")
    train(_cfg(image_folder, tmp_path / "a", *extra), log=lambda _: None)
    train(_cfg(image_folder, tmp_path / "b", *extra), log=lambda _: None,
          on_epoch=lambda epoch, _: epoch == 1)
    train(_cfg(image_folder, tmp_path / "b", *extra), resume=True, log=lambda _: None)
    ck = torch.load(tmp_path / "a" / "run" / "checkpoint.pt", weights_only=True)
    # 9 iterations, the first 2 generator-only: the discriminator took 7 Adam steps
    steps = {float(st["step"]) for st in ck["d_opt"]["state"].values()}
    assert steps == {7.0}
    _, meta = read_weights(tmp_path / "a" / "run" / "last.safetensors")
    assert "0.001*adversarial (vgg discriminator, width 64) after 2 generator-only " \
        "iterations" in meta.recipe
    a, _ = read_weights(tmp_path / "a" / "run" / "last.safetensors")
    b, _ = read_weights(tmp_path / "b" / "run" / "last.safetensors")
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_a_teacher_term_changes_training_and_is_recorded(image_folder, tmp_path):
    train(_cfg(image_folder, tmp_path / "t"), log=lambda _: None)
    teacher = tmp_path / "t" / "run" / "last.safetensors"
    # the student starts as the teacher: without ensembling the term is exactly zero at the
    # first step, so any difference from the plain run comes from the later steps' targets
    base = ("run.epochs=1", f"model.init={teacher}")
    train(_cfg(image_folder, tmp_path / "a", *base), log=lambda _: None)
    train(_cfg(image_folder, tmp_path / "b", *base, f"loss.teacher={teacher}",
               "loss.teacher_weight=5.0"), log=lambda _: None)
    a, _ = read_weights(tmp_path / "a" / "run" / "last.safetensors")
    b, meta = read_weights(tmp_path / "b" / "run" / "last.safetensors")
    assert any(not torch.equal(a[k], b[k]) for k in a)
    assert f"5*l1 to {teacher}'s self-ensemble" in meta.recipe


def test_a_teacher_must_be_an_srlab_file_of_the_runs_scale(image_folder, tmp_path):
    from safetensors.torch import save_file

    from srlab.train.distill import load_teacher
    from srlab.zoo.weights import WeightsError

    train(_cfg(image_folder, tmp_path), log=lambda _: None)
    x2 = tmp_path / "run" / "last.safetensors"
    with pytest.raises(WeightsError, match="x2, the run is x4"):
        load_teacher(x2, scale=4, in_channels=1, ensemble=True)
    with pytest.raises(WeightsError, match="takes 1 input channels, the student 3"):
        load_teacher(x2, scale=2, in_channels=3, ensemble=True)
    bare = tmp_path / "bare.safetensors"
    save_file(read_weights(x2)[0], str(bare))
    with pytest.raises(WeightsError, match="no srlab metadata"):
        load_teacher(bare, scale=2, in_channels=1, ensemble=True)
    with pytest.raises(ConfigError, match="teacher_weight must be > 0"):
        train(_cfg(image_folder, tmp_path / "w", f"loss.teacher={x2}", "loss.teacher_weight=0"),
              log=lambda _: None)
    teacher = load_teacher(x2, scale=2, in_channels=1, ensemble=True)
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())


def test_luma_weights_start_an_rgb_span_lifted(image_folder, tmp_path):
    """model.init of a luma SPAN's file into an RGB SPAN applies span.luma_to_rgb (whose
    arithmetic test_models checks) and says so; with lr 0 the run keeps exactly those tensors."""
    arch = "feat: 8, blocks: 1, attention: false, act: relu"
    train(_cfg(image_folder, tmp_path / "luma", f"model.kwargs={{in_channels: 1, {arch}}}",
               "optim.ema=0"), log=lambda _: None)
    luma_file = tmp_path / "luma" / "run" / "last.safetensors"
    logged: list[str] = []
    train(_cfg(image_folder, tmp_path / "rgb", f"model.kwargs={{in_channels: 3, {arch}}}",
               f"model.init={luma_file}", "optim.lr=0", "optim.min_lr=0", "optim.ema=0"),
          log=logged.append)
    assert any("lifted the luma weights" in line for line in logged)
    from srlab.zoo.span import luma_to_rgb

    want = luma_to_rgb(read_weights(luma_file)[0])
    got = read_weights(tmp_path / "rgb" / "run" / "last.safetensors")[0]
    assert want.keys() == got.keys()
    assert all(torch.equal(want[k], got[k]) for k in want)

"""Training survives SIGKILL at any moment and a full disk, and still ends bit-exact.

``srlab train`` writes its checkpoint atomically every epoch, batches are a pure function of
(seed, iteration) and the learning rate a pure function of the iteration — so a run killed
anywhere and resumed with ``--resume`` must end with exactly the weights of an uninterrupted
run. test_train.py checks a polite stop (the on_epoch hook) in-process; here the real
command runs in a subprocess and is killed with SIGKILL, which no ``finally`` survives:

1. during a checkpoint write (torch.save is slowed down by a launcher so the kill lands
   while the temp file is half written — deterministic, unlike racing a 20 ms window);
2. after an epoch's weights were written but before its checkpoint (the epoch is redone);
3. right after a checkpoint was replaced (in the next epoch's training steps);

then the console script resumes and completes. After every kill the checkpoint must load.
Disk full (ENOSPC) during a checkpoint or weights write is simulated in-process: the
previous file stays intact, no temp file is left, and resuming still ends bit-exact.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from conftest import synthetic_image
from PIL import Image

from srlab import cli
from srlab.train.config import load_config
from srlab.train.loop import train
from srlab.zoo.weights import WeightsMeta, read_weights, save_weights

EPOCHS, ITERS = 4, 3
TINY = ["model.name=span", "model.scale=2", "model.kwargs={feat: 8, blocks: 1}",
        "data.patch=8", "data.batch=2", "data.val_max=2", "data.val_fraction=0.34",
        f"run.epochs={EPOCHS}", f"run.iters_per_epoch={ITERS}", "run.progress=false",
        "run.threads=1", "run.snapshots=1", "optim.ema=0.9"]
SRLAB = Path(sys.executable).parent / "srlab"
SLOW_SAVE_SECONDS = 1.5

# `python -c` launcher: srlab's CLI with torch.save writing half the file, pausing, then the
# rest — a kill during the pause is a kill in the middle of a checkpoint write.
SLOW_SAVE_LAUNCHER = """
import io, os, sys, time, torch
_save = torch.save
def slow_save(obj, f, *args, **kwargs):
    if not isinstance(f, (str, os.PathLike)):
        return _save(obj, f, *args, **kwargs)
    buf = io.BytesIO()
    _save(obj, buf, *args, **kwargs)
    data = buf.getvalue()
    with open(f, "wb") as fh:
        fh.write(data[: len(data) // 2])
        fh.flush()
        os.fsync(fh.fileno())
        time.sleep(float(os.environ["SRLAB_TEST_SLOW_SAVE"]))
        fh.write(data[len(data) // 2 :])
torch.save = slow_save
from srlab.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _overrides(data: Path, out: Path) -> list[str]:
    return [*TINY, f"data.train=[{data}]", f"run.out_dir={out}"]


def _set_args(data: Path, out: Path) -> list[str]:
    return [a for o in _overrides(data, out) for a in ("--set", o)]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("images")
    for i in range(6):
        Image.fromarray(synthetic_image(i)).save(folder / f"img{i}.png")
    return folder


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory) -> dict[str, torch.Tensor]:
    """last.safetensors of an uninterrupted run (in-process: same code, same thread count)."""
    out = tmp_path_factory.mktemp("reference")
    train(load_config(None, _overrides(data, out)), log=lambda _: None)
    return read_weights(out / "run" / "last.safetensors")[0]


def _assert_same_weights(path: Path, reference: dict[str, torch.Tensor]) -> float:
    got, _ = read_weights(path)
    assert got.keys() == reference.keys()
    worst = max(float((got[k].double() - reference[k].double()).abs().max()) for k in got)
    for k in got:
        assert torch.equal(got[k], reference[k]), (k, worst)
    return worst


def _checkpoint_iteration(run_dir: Path) -> int:
    """The checkpoint must always load (weights_only, as --resume reads it)."""
    ck = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=True)
    return int(ck["iteration"])


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns


def _temps(run_dir: Path, stem: str = "") -> list[str]:
    return sorted(p.name for p in run_dir.glob(f".{stem}*.tmp"))


def _start(argv: list[str], log: Path, env_extra: dict[str, str] | None = None
           ) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env_extra or {})}
    with open(log, "ab") as fh:
        return subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, env=env)


def _kill_when(proc: subprocess.Popen, ready: Callable[[], bool], log: Path,
               timeout: float = 120) -> float:
    """SIGKILL ``proc`` the moment ``ready()`` holds; seconds it ran. Fails if it ends first."""
    t0 = time.monotonic()
    while not ready():
        if proc.poll() is not None:
            pytest.fail(f"training ended (exit {proc.returncode}) before the kill point:\n"
                        f"{log.read_text()[-3000:]}")
        if time.monotonic() - t0 > timeout:
            proc.kill()
            pytest.fail("kill point not reached in time")
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    return time.monotonic() - t0


def test_sigkill_anywhere_then_resume_is_bit_exact(data, reference, tmp_path,
                                                   record_property):
    out, log = tmp_path / "runs", tmp_path / "train.log"
    run_dir = out / "run"
    ckpt = run_dir / "checkpoint.pt"
    module = [sys.executable, "-m", "srlab", "train", *_set_args(data, out)]
    kills: list[dict[str, object]] = []

    # 1. during the 2nd checkpoint write (the 1st must survive it)
    proc = _start([sys.executable, "-c", SLOW_SAVE_LAUNCHER, "train", *_set_args(data, out)],
                  log, {"SRLAB_TEST_SLOW_SAVE": str(SLOW_SAVE_SECONDS)})
    first: list[tuple[int, int] | None] = []

    def second_write_half_done() -> bool:
        if not first:
            if ckpt.exists():
                first.append(_identity(ckpt))
            return False
        return any(p.stat().st_size > 0 for p in run_dir.glob(".checkpoint.pt.*.tmp"))

    secs = _kill_when(proc, second_write_half_done, log)
    stale = _temps(run_dir, "checkpoint.pt")
    assert len(stale) == 1  # the half-written temp file, left behind by the kill...
    assert _identity(ckpt) == first[0]  # ...while checkpoint.pt is the untouched 1st one
    kills.append({"point": "during checkpoint write", "after_s": round(secs, 1),
                  "checkpoint_iteration": _checkpoint_iteration(run_dir)})
    assert kills[-1]["checkpoint_iteration"] == ITERS

    # 2. after epoch 2's weights were written, before its checkpoint
    before = _identity(run_dir / "last.safetensors")
    proc = _start([*module, "--resume"], log)
    secs = _kill_when(proc, lambda: _identity(run_dir / "last.safetensors") != before, log)
    kills.append({"point": "between weights and checkpoint", "after_s": round(secs, 1),
                  "checkpoint_iteration": _checkpoint_iteration(run_dir)})
    assert kills[-1]["checkpoint_iteration"] == ITERS  # epoch 2 must be redone

    # 3. right after a checkpoint was replaced: inside the next epoch's steps
    before = _identity(ckpt)
    proc = _start([*module, "--resume"], log)
    secs = _kill_when(proc, lambda: _identity(ckpt) != before, log)
    kills.append({"point": "just after a checkpoint", "after_s": round(secs, 1),
                  "checkpoint_iteration": _checkpoint_iteration(run_dir)})
    assert kills[-1]["checkpoint_iteration"] == 2 * ITERS

    # the console script finishes the run
    exe = [str(SRLAB)] if SRLAB.exists() else [sys.executable, "-m", "srlab"]
    done = subprocess.run([*exe, "train", *_set_args(data, out), "--resume"],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert _checkpoint_iteration(run_dir) == EPOCHS * ITERS
    diff = _assert_same_weights(run_dir / "last.safetensors", reference)
    # the stale temp file of kill 1 is cleaned up when a run resumes
    assert stale and _temps(run_dir) == []
    record_property("reliability", {"kills": kills, "kills_survived": len(kills),
                                    "bit_exact": diff == 0.0, "max_abs_diff": diff,
                                    "stale_temp_files_after_kill": len(stale)})


def _half_then_enospc(real: Callable[..., object], target_arg: int) -> Callable[..., object]:
    """A writer that writes half of what ``real`` would write, then fails as a full disk."""

    def writer(*args: object, **kwargs: object) -> None:
        path = Path(str(args[target_arg]))
        scratch = path.with_name(path.name + ".scratch")
        real(*args[:target_arg], str(scratch), *args[target_arg + 1:], **kwargs)
        data = scratch.read_bytes()
        scratch.unlink()
        path.write_bytes(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    return writer


def test_disk_full_during_checkpoint(capsys, data, reference, tmp_path, monkeypatch,
                                     record_property):
    out = tmp_path / "runs"
    run_dir = out / "run"
    real_save = torch.save
    failing = _half_then_enospc(real_save, 1)
    calls = {"n": 0}

    def save(obj: object, f: object, *args: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # the 2nd checkpoint: the 1st is on disk and must stay intact
            failing(obj, f, *args, **kwargs)
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    code = cli.main(["train", *_set_args(data, out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and err[0].startswith("srlab: error: ") and \
        "No space left on device" in err[0], err
    assert _checkpoint_iteration(run_dir) == ITERS
    assert _temps(run_dir) == []  # the half-written temp file was removed
    monkeypatch.setattr(torch, "save", real_save)
    assert cli.main(["train", *_set_args(data, out), "--resume"]) == 0
    _assert_same_weights(run_dir / "last.safetensors", reference)
    record_property("reliability", {"disk_full_checkpoint_survived": True})


def test_disk_full_during_weights_write(tmp_path, monkeypatch):
    """The same for the .safetensors files the trainer and srlab ship write."""
    import safetensors.torch

    from srlab.zoo.registry import build_model

    net = build_model("span", 2, feat=8, blocks=1)
    path = tmp_path / "last.safetensors"
    save_weights(net, WeightsMeta(arch="span", scale=2, kwargs={"feat": 8, "blocks": 1}), path)
    before = path.read_bytes()
    monkeypatch.setattr(safetensors.torch, "save_file",
                        _half_then_enospc(safetensors.torch.save_file, 1))
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    with pytest.raises(OSError) as err:
        save_weights(net, WeightsMeta(arch="span", scale=2), path)
    assert err.value.errno == errno.ENOSPC
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.safetensors"]
    read_weights(path)  # still loads


def test_slow_save_launcher_writes_a_loadable_file(tmp_path, monkeypatch):
    """Guard for kill 1: the launcher's slowed torch.save must still write a valid file,
    or the kill test would pass or fail for the wrong reason."""
    monkeypatch.setattr(torch, "save", torch.save)  # restored after the exec below
    monkeypatch.setenv("SRLAB_TEST_SLOW_SAVE", "0")
    exec(SLOW_SAVE_LAUNCHER.split("from srlab.cli")[0], {})  # noqa: S102 - our own text
    path = tmp_path / "x.pt"
    torch.save({"a": torch.arange(5)}, path)
    assert torch.equal(torch.load(path, weights_only=True)["a"], torch.arange(5))

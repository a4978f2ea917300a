"""``srlab upscale`` over a corpus of hostile and awkward files (see tests/corpus.py).

The contract users rely on: each input either gives an output of exactly scale x its size
(same channels and bit depth), or exactly one ``srlab: error:`` line naming the file and a
non-zero exit; a batch goes on past bad files; and no half-written output or temp file is
ever left behind, next to the inputs or in the output folder. test_cli.py checks the naming
rules and single bad files; this file checks the contract over the whole corpus.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from corpus import OK_SIZES, WHY, build_corpus, gif_frame_bomb
from PIL import Image
from test_cli import assert_one_line_error, listing, run

from srlab.image.imageio import load_image, save_image

SCALE = 2


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    folder = tmp_path_factory.mktemp("corpus")
    return folder, build_corpus(folder)


ANIMATED = {"animated.gif"}  # stays an animated GIF (image.animation)


def _output_name(name: str) -> str:
    """What ``srlab upscale DIR -o OUT`` names the output of ``name`` (a still GIF becomes
    PNG; an animated one stays GIF)."""
    return name[:-4] + ".png" if name.endswith(".gif") and name not in ANIMATED else name


def _assert_good_output(src: Path, out: Path) -> None:
    w, h = OK_SIZES[src.name]
    got = load_image(out)
    assert (got.width, got.height) == (SCALE * w, SCALE * h), src.name
    before = load_image(src)
    if out.suffix.lower() in (".png", ".tif", ".tiff"):  # lossless formats keep the layout
        assert got.channels == before.channels and got.bit_depth == before.bit_depth, src.name


def _assert_no_debris(folder: Path, allowed: set[str]) -> None:
    names = set(listing(folder))
    assert not [n for n in names if n.endswith(".tmp") or "/." in n or n.startswith(".")], names
    assert names <= allowed, names - allowed


@pytest.mark.parametrize("name", list(WHY), ids=list(WHY))
def test_each_corpus_file(capsys, tmp_path, corpus, name, record_property):
    folder, expected = corpus
    src = folder / name
    target = tmp_path / (Path(name).stem + ".png")
    code, _, err = run(capsys, "upscale", src, "-o", target, "-m", "nearest", "-s", str(SCALE),
                       "-q")
    if expected[name] == "ok":
        assert code == 0, (WHY[name], err)
        assert err == ""
        _assert_good_output(src, target)
        _assert_no_debris(tmp_path, {target.name})
    else:
        assert_one_line_error(code, err, 1, name)
        _assert_no_debris(tmp_path, set())  # no output, not even a partial one
    _assert_no_debris(folder, set(expected))
    record_property("reliability", {"corpus_input": name, "expected": expected[name],
                                    "outcome": "ok" if code == 0 else "error"})


def test_batch_over_whole_corpus_continues(capsys, tmp_path, corpus, record_property):
    folder, expected = corpus
    out = tmp_path / "out"
    code, stdout, err = run(capsys, "upscale", folder, "-o", out, "-m", "bicubic",
                            "-s", str(SCALE))
    good = sorted(n for n, e in expected.items() if e == "ok")
    bad = sorted(n for n, e in expected.items() if e == "error")
    assert code == 1
    assert sorted(p.name for p in out.iterdir()) == sorted(_output_name(n) for n in good)
    for n in good:
        _assert_good_output(folder / n, out / _output_name(n))
    lines = err.strip().splitlines()
    assert "Traceback" not in err
    assert lines[-1] == f"srlab: {len(bad)} of {len(expected)} images failed"
    assert len(lines) == len(bad) + 1  # one line per bad file, then the summary
    for n, line in zip(bad, lines[:-1], strict=True):  # inputs are processed in name order
        assert line.startswith("srlab: error: ") and n in line, (n, line)
    assert len(stdout.strip().splitlines()) == len(good)
    _assert_no_debris(folder, set(expected))
    record_property("reliability", {"batch_inputs": len(expected), "batch_written": len(good),
                                    "batch_failed": len(bad), "batch_exit": code})


def test_batch_next_to_inputs_leaves_nothing_else(capsys, tmp_path, corpus):
    """Without -o, outputs land beside the inputs: only NAME_x2.png files may appear."""
    folder, expected = corpus
    copy = tmp_path / "in"
    copy.mkdir()
    for name in expected:
        (copy / name).write_bytes((folder / name).read_bytes())
    code, _, _ = run(capsys, "upscale", copy, "-m", "nearest", "-s", str(SCALE), "-q")
    assert code == 1
    made = {f"{Path(n).stem}_x{SCALE}{'.gif' if n in ANIMATED else '.png'}"
            for n, e in expected.items() if e == "ok"}
    _assert_no_debris(copy, set(expected) | made)
    assert {p.name for p in copy.iterdir()} == set(expected) | made


def test_write_failure_mid_batch_leaves_no_partial_file(capsys, tmp_path, corpus,
                                                         monkeypatch):
    """Disk full while writing one output: that image fails, nothing half-written stays,
    and the batch carries on with the next one."""
    folder, _ = corpus
    srcs = [folder / n for n in ("odd_37x23.png", "pixel_2x3.png", "png_named.jpg")]
    real_save = Image.Image.save

    def failing_save(self, fp, *args, **kwargs):
        if "pixel_2x3" in str(fp):
            Path(fp).write_bytes(b"\x89PNG half")
            raise OSError(28, "No space left on device")
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", failing_save)
    out = tmp_path / "out"
    code, _, err = run(capsys, "upscale", *srcs, "-o", out, "-m", "nearest", "-q")
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 2 and "pixel_2x3" in lines[0] and "No space left" in lines[0]
    assert sorted(p.name for p in out.iterdir()) == ["odd_37x23.png", "png_named.jpg"]


def _good_images(folder: Path) -> None:
    folder.mkdir()
    for i, name in enumerate(("a.png", "c.png")):
        save_image(np.full((6, 5, 3), 40 * i, np.uint8), folder / name)


def test_unreadable_file_in_folder(capsys, tmp_path):
    """chmod 000 on one file: that file fails with one line, the others are written."""
    src = tmp_path / "in"
    _good_images(src)
    locked = src / "b.png"
    save_image(np.zeros((4, 4, 3), np.uint8), locked)
    locked.chmod(0)
    try:
        try:
            with open(locked, "rb"):
                pass
        except PermissionError:
            pass
        else:
            pytest.skip("running as root (or with CAP_DAC_OVERRIDE): chmod 000 does not stop "
                        "reads, so there is no unreadable file to test with; "
                        "test_unreadable_file_simulated covers the same path")
        code, _, err = run(capsys, "upscale", src, "-o", tmp_path / "out", "-m", "nearest",
                           "-q")
    finally:
        locked.chmod(0o644)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 2 and "b.png" in lines[0] and "ermission denied" in lines[0]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "c.png"]


def test_unreadable_file_simulated(capsys, tmp_path, monkeypatch):
    """The same as above by making the open fail, so it also runs as root."""
    src = tmp_path / "in"
    _good_images(src)
    save_image(np.zeros((4, 4, 3), np.uint8), src / "b.png")
    real_open = Image.open

    def denying_open(fp, *args, **kwargs):
        if str(fp).endswith("b.png"):
            raise PermissionError(13, "Permission denied", str(fp))
        return real_open(fp, *args, **kwargs)

    monkeypatch.setattr(Image, "open", denying_open)
    code, _, err = run(capsys, "upscale", src, "-o", tmp_path / "out", "-m", "nearest", "-q")
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 2 and "b.png" in lines[0] and "Permission denied" in lines[0]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "c.png"]


def test_unlistable_folder_does_not_stop_the_batch(capsys, tmp_path, monkeypatch):
    """A folder that cannot be listed (chmod 000, or simulated as root) is one failure; the
    other inputs are still done. (It used to abort the whole batch before any work.)"""
    good = tmp_path / "good.png"
    save_image(np.zeros((5, 7, 3), np.uint8), good)
    locked = tmp_path / "locked"
    locked.mkdir()
    save_image(np.zeros((5, 7, 3), np.uint8), locked / "x.png")
    real_iterdir = pathlib.Path.iterdir

    def iterdir(self):
        if self.name == "locked":
            raise PermissionError(13, "Permission denied", str(self))
        return real_iterdir(self)

    if os.geteuid() == 0:
        monkeypatch.setattr(pathlib.Path, "iterdir", iterdir)
    else:
        locked.chmod(0)
    try:
        code, _, err = run(capsys, "upscale", good, locked, "-o", tmp_path / "out",
                           "-m", "nearest", "-q")
    finally:
        locked.chmod(0o755)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 2 and "locked" in lines[0] and "Permission denied" in lines[0]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["good.png"]


# Runs in a child with a 1.5 GB address-space cap: if the GIF guard regressed, the child gets
# a MemoryError (and a wrong message) instead of the test machine losing 4 GB.
_BOMB_CHILD = """
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (1536 << 20, 1536 << 20))
from srlab.image.imageio import ImageError, load_image
t0 = time.perf_counter()
try:
    load_image(sys.argv[1])
    message = "loaded"
except ImageError as exc:
    message = str(exc)
# VmHWM, not ru_maxrss: the latter carries the parent's (pytest's) peak across exec
hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM:")]
peak_kb = int(hwm[0].split()[1]) if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"message": message, "seconds": time.perf_counter() - t0,
                  "peak_mb": peak_kb / 1024}))
"""


def test_gif_frame_bomb_costs_no_memory(tmp_path, record_property):
    """A 50-byte GIF with a 65535 x 65535 frame used to make Pillow allocate and fill 4 GB
    while the file was merely being opened; now it is refused from the header."""
    path = tmp_path / "bomb.gif"
    path.write_bytes(gif_frame_bomb())
    out = subprocess.run([sys.executable, "-c", _BOMB_CHILD, str(path)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout)
    assert "4,294,836,225 pixels" in res["message"] and "--max-pixels" in res["message"], res
    assert res["peak_mb"] < 300, res
    record_property("reliability", {"gif_bomb_peak_mb": round(res["peak_mb"], 1),
                                    "gif_bomb_seconds": round(res["seconds"], 3)})

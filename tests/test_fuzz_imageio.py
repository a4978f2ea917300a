"""tools/fuzz_imageio.py: a short run finds nothing, and a planted bug of each kind is found.

The long runs are for humans (see the script's docstring); here ~50 iterations prove the
script works end to end, and a loader with planted bugs (an unexpected exception, a
segfault, a hang) proves every kind of finding is caught, saved and replayable — a fuzzer
that cannot report a bug would pass silently forever.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

FUZZ = Path(__file__).resolve().parents[1] / "tools" / "fuzz_imageio.py"


def _run(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          timeout=timeout)


def test_short_fuzz_run_has_no_findings(tmp_path, record_property):
    out = _run([str(FUZZ), "--iterations", "50", "--json", "--quiet", "--out", str(tmp_path)])
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["iterations"] == 50 and summary["findings"] == 0
    assert summary["outcomes"]["loaded"] + summary["outcomes"]["image_error"] == 50
    assert summary["outcomes"]["loaded"] > 0 and summary["outcomes"]["image_error"] > 0
    assert list(tmp_path.iterdir()) == []
    record_property("reliability", {"fuzz_iterations": summary["iterations"],
                                    "fuzz_findings": summary["findings"],
                                    "fuzz_outcomes": summary["outcomes"]})


# Runs in a fresh interpreter: the fuzzer forks its worker, which must not happen from a
# pytest process that may hold server or torch threads.
PLANTED = """
import hashlib, json, os, signal, sys, time
from pathlib import Path
sys.path.insert(0, {tools!r})
import fuzz_imageio as fz
import srlab.image.imageio

seeds = fz.load_seeds()
digest = lambda b: hashlib.sha1(b).hexdigest()
bugs = {{digest(fz.mutate(seeds, 0, 3)[1]): "raise",
        digest(fz.mutate(seeds, 0, 7)[1]): "segfault",
        digest(fz.mutate(seeds, 0, 12)[1]): "hang"}}
real = srlab.image.imageio.load_image

def planted(path, **kw):
    bug = bugs.get(digest(Path(path).read_bytes()))
    if bug == "raise":
        raise KeyError("planted")
    if bug == "segfault":
        os.kill(os.getpid(), signal.SIGSEGV)
    if bug == "hang":
        time.sleep(60)
    return real(path, **kw)

srlab.image.imageio.load_image = planted
s = fz.run_mutate(20, 0, Path({out!r}), 100_000_000, 1.5, 0, seeds, progress=False)
replay = [Path(f["file"]).read_bytes() == fz.mutate(seeds, 0, f["iteration"])[1]
          for f in s.findings]
print(json.dumps({{"summary": s.to_json(), "kinds": [f["kind"] for f in s.findings],
                  "iterations": [f["iteration"] for f in s.findings], "replay": replay}}))
"""


def test_planted_bugs_are_found_saved_and_replayable(tmp_path):
    code = PLANTED.format(tools=str(FUZZ.parent), out=str(tmp_path))
    out = _run(["-c", code])
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["kinds"] == ["exception", "crash", "hang"]
    assert res["iterations"] == [3, 7, 12]
    assert all(res["replay"])
    summary = res["summary"]
    assert summary["iterations"] == 20 and summary["findings"] == 3
    assert any(sig.startswith("KeyError at") for sig in summary["signatures"])
    assert len(list(tmp_path.glob("finding-*.txt"))) == 3


MEMORY = """
import json, sys
from pathlib import Path
sys.path.insert(0, {tools!r})
sys.path.insert(0, {tests!r})
import fuzz_imageio as fz
import srlab.image.imageio
from corpus import gif_frame_bomb

bomb = Path({out!r}) / "bomb.gif"
bomb.write_bytes(gif_frame_bomb())
fz._limit_memory(1536)
srlab.image.imageio._is_gif = lambda path: False  # undo the fix: Pillow's GIF bomb returns
print(json.dumps(fz.judge(bomb, 100_000_000)))
"""


def test_memory_blowup_is_a_finding(tmp_path):
    """Without the GIF guard in load_image, the 50-byte GIF bomb is reported (as the
    MemoryError it hits under the fuzzer's address-space cap), not counted as a clean
    ImageError — this is how the fuzzer found it."""
    tests = Path(__file__).resolve().parent
    code = MEMORY.format(tools=str(FUZZ.parent), tests=str(tests), out=str(tmp_path))
    out = _run(["-c", code])
    assert out.returncode == 0, out.stderr[-3000:]
    outcome, detail = json.loads(out.stdout.strip().splitlines()[-1])
    assert outcome == "finding" and "MemoryError" in detail, detail

"""The ncnn peers' figures on Set5, pinned end to end through ``srlab benchmark`` (as
test_reference.py pins bicubic's): a wrong feed (BGR, 0..255, a shifted crop, no padding)
moves them by far more than the tolerance.

- span-ch48 x4: 32.1129 dB measured here, within 0.15 dB of the SPAN paper's 32.20;
- realesrgan-x4plus x4: 26.4931 dB; a GAN, so low PSNR is expected: any correct feed lands
  between 26.0 and 27.0 dB.

Measured by ``srlab benchmark -m span-ch48 -m realesrgan-x4plus -s 4 -d
../shared/datasets/benchmark/Set5`` (ncnn 1.0.20261020 on the CPU). The tolerance, 0.01 dB,
leaves room for ncnn's CPU kernels (their summation order differs between instruction sets).
realesrgan-x4plus is RRDBNet, 16.7M parameters: a minute or more on two threads.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import BENCH, needs_shared

from srlab.cli import main

PAPER_SPAN_CH48_X4 = 32.20  # Wan et al. 2024, SPAN, Set5 x4
PINNED = {"span-ch48": 32.1129, "realesrgan-x4plus": 26.4931}
TOL = 0.01


def _peer_row(tmp_path: Path, model: str, threads: int) -> dict:
    pytest.importorskip("ncnn", reason="the 'peers' extra is not installed")
    from srlab.eval.peers import PeerUnavailable, peer_files

    try:
        peer_files(model, 4)
    except PeerUnavailable as exc:
        pytest.skip(str(exc))
    out = tmp_path / "bench"
    assert main(["benchmark", "-m", model, "-s", "4", "-d", str(BENCH / "Set5"), "-o",
                 str(out), "--no-cache", "--threads", str(threads)]) == 0
    rows = json.loads((out / "benchmark.json").read_text())["rows"]
    assert len(rows) == 1 and rows[0]["model"] == model and rows[0]["images"] == 5
    return rows[0]


@needs_shared()
def test_span_ch48_set5_x4_is_the_papers_figure(tmp_path):
    row = _peer_row(tmp_path, "span-ch48", 1)
    assert row["psnr"] == pytest.approx(PINNED["span-ch48"], abs=TOL)
    assert abs(row["psnr"] - PAPER_SPAN_CH48_X4) < 0.15
    assert row["params"] == 426_288


@needs_shared()
def test_realesrgan_x4plus_set5_x4(tmp_path):
    row = _peer_row(tmp_path, "realesrgan-x4plus", 2)  # two threads: the slowest test here
    assert row["psnr"] == pytest.approx(PINNED["realesrgan-x4plus"], abs=TOL)
    assert 26.0 < row["psnr"] < 27.0

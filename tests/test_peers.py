"""OpenCV dnn_superres peers: they run with the locked OpenCV, and an OpenCV that cannot read
their TensorFlow .pb files (OpenCV 5.x) costs one clear line in every command that uses them
(benchmark, bench, compare), never a C++ error text or a traceback.

The failing OpenCV is simulated: cv2.__version__ says 5.1.0 and the model reader raises
cv2.error with the message OpenCV 5.1 gave on these files (issue 37).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import synthetic_image

from srlab.cli import main

cv2 = pytest.importorskip("cv2")

PEER_DIR = ("peers", "opencv-dnn-superres")
OPENCV5_ERROR = ("OpenCV(5.1.0) /io/opencv/modules/dnn/src/onnx/onnx_importer2.cpp:412: error: "
                 "(-215:Assertion failed) model_proto.has_graph() in function "
                 "'parseModel'\n")
EXPECTED = ("OpenCV ESPCN peer unavailable: OpenCV 5.1.0 cannot read TensorFlow .pb models "
            "(needs opencv<5)")


@pytest.fixture
def opencv5(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An OpenCV 5.1 whose dnn cannot read the peers, with stand-in .pb files in place."""
    peers = tmp_path / "shared" / Path(*PEER_DIR)
    peers.mkdir(parents=True)
    for prefix in ("ESPCN", "FSRCNN", "FSRCNN-small"):
        for s in (2, 3, 4):
            (peers / f"{prefix}_x{s}.pb").write_bytes(b"not read")
    monkeypatch.setenv("SRLAB_SHARED", str(tmp_path / "shared"))

    class Reader:
        def readModel(self, path: str) -> None:  # noqa: N802 - OpenCV's name
            raise cv2.error(OPENCV5_ERROR)

    monkeypatch.setattr(cv2, "__version__", "5.1.0")
    monkeypatch.setattr(cv2.dnn_superres, "DnnSuperResImpl_create", Reader)


def _real_peers() -> Path:
    from srlab.image.datasets import shared_dir

    folder = shared_dir().joinpath(*PEER_DIR)
    if not (folder / "ESPCN_x2.pb").is_file():
        pytest.skip(f"OpenCV peer weights not found in {folder} (set SRLAB_SHARED)")
    return folder


def test_the_locked_opencv_runs_every_peer():
    from srlab.eval.peers import PEERS
    from srlab.eval.runners import make_upscaler

    _real_peers()
    assert int(cv2.__version__.split(".")[0]) == 4, cv2.__version__
    lr = synthetic_image(3, 12, 10)
    for name in [n for n, p in PEERS.items() if p.family == "opencv"]:  # ncnn: its own file
        fn, params, trained = make_upscaler(name, 2)
        out = fn(lr)
        assert out.shape == (24, 20, 3) and out.dtype == np.uint8 and trained
        assert fn(lr[..., 0]).shape == (24, 20)  # gray in, gray out


def test_benchmark_with_only_the_peer_stops_with_one_line(opencv5, hr_folder, tmp_path, capsys):
    code = main(["benchmark", "-m", "opencv-espcn", "-s", "2", "-d", str(hr_folder),
                 "-o", str(tmp_path / "out"), "--no-cache"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err == [f"srlab: error: {EXPECTED}"]


def test_benchmark_skips_the_peer_with_one_line_and_scores_the_rest(opencv5, hr_folder,
                                                                     tmp_path, capsys):
    code = main(["benchmark", "-m", "opencv-espcn", "-m", "bicubic", "-s", "2", "-d",
                 str(hr_folder), "-d", str(hr_folder), "-o", str(tmp_path / "out"),
                 "--no-cache"])
    out, err = capsys.readouterr()
    assert code == 0
    peer_lines = [ln for ln in err.splitlines() if "opencv" in ln.lower()]
    assert peer_lines == [f"skipped opencv-espcn x2: {EXPECTED}"]  # once, for two datasets
    assert "| bicubic | x2 |" in out and "opencv-espcn" not in out
    assert "Traceback" not in err


def test_bench_skips_the_peers_with_one_line_each(opencv5):
    from srlab.eval import speed
    lines: list[str] = []
    rows = speed.run_speed(["bicubic"], [2], backends=["torch"], lr_size=(16, 12), repeats=1,
                           thread_counts=(1, 2), peers=("opencv-espcn", "bicubic-pil"),
                           log=lines.append)
    skipped = [ln for ln in lines if "peer unavailable" in ln]
    assert skipped == [f"skipped opencv-espcn x2: {EXPECTED}"]  # main, sizes, threads: once
    assert {r.model for r in rows} == {"bicubic", "bicubic-pil"}
    assert all(r.ratio_to_espcn is None for r in rows)  # no reference, no made-up ratio


def test_compare_skips_the_peer_and_stops_on_it_when_nothing_is_left(opencv5, hr_folder,
                                                                  tmp_path):
    from srlab.eval.compare import compare

    lines: list[str] = []
    res = compare(["opencv-fsrcnn", "bicubic"], scales=[2], datasets=[hr_folder],
                  out_dir=tmp_path / "c", log=lines.append)
    assert {r.model for r in res.rows} == {"bicubic"}
    assert [ln for ln in lines if "opencv" in ln] == [
        "skipping opencv-fsrcnn at x2: OpenCV FSRCNN peer unavailable: OpenCV 5.1.0 cannot "
        "read TensorFlow .pb models (needs opencv<5)"]
    from srlab.eval.peers import PeerUnavailable

    with pytest.raises(PeerUnavailable, match=r"needs opencv<5"):
        compare(["opencv-espcn"], scales=[2], datasets=[hr_folder], out_dir=tmp_path / "d",
                log=lambda _: None)


def test_cli_compare_prints_one_line(opencv5, hr_folder, tmp_path, capsys):
    code = main(["compare", "opencv-espcn", "-s", "2", "-d", str(hr_folder), "-o",
                 str(tmp_path / "c")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err == [f"srlab: error: {EXPECTED}"]


def test_an_opencv_4_failure_is_one_line_too(opencv5, monkeypatch):
    from srlab.eval.peers import PeerUnavailable
    from srlab.eval.runners import make_upscaler

    monkeypatch.setattr(cv2, "__version__", "4.14.0")
    with pytest.raises(PeerUnavailable) as info:
        make_upscaler("opencv-espcn", 2)
    msg = str(info.value)
    assert "\n" not in msg and "needs opencv<5" not in msg
    assert msg.startswith("OpenCV ESPCN peer unavailable: OpenCV 4.14.0 could not load")

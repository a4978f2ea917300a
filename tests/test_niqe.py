"""NIQE (srlab.image.niqe): the estimator, the shipped pristine model, the score's direction on
a natural image, the fit command and the benchmark/inspect columns. Tiny images only; the
RealSRSet measurement is tools/niqe_real.py, not a test."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from conftest import synthetic_image
from PIL import Image

from srlab.cli import main
from srlab.image import niqe as nq
from srlab.image.datasets import find_images, load_hr, shared_dir
from srlab.image.degrade import gaussian_blur


@pytest.fixture(scope="module")
def natural() -> np.ndarray:
    """A 288x288 crop of a training photo (never a benchmark image): 9 blocks, as few
    blocks make the image's own covariance too rough to rank small damage."""
    folder = shared_dir() / "datasets" / "train" / "BSDS500-train"
    if not folder.is_dir():
        pytest.skip(f"needs the training images in {folder}")
    return np.ascontiguousarray(load_hr(find_images(folder)[0])[:288, :288])


def test_aggd_recovers_known_shapes():
    """The grid-search estimator on samples of known distributions: Gaussian (alpha 2,
    beta sqrt(2) sigma), Laplacian (alpha 1), and an asymmetric Gaussian (left/right)."""
    r = np.random.default_rng(0)
    g = r.normal(0, 0.5, (1, 200_000))
    alpha, bl, br = nq._aggd(g)
    assert alpha[0] == pytest.approx(2.0, abs=0.03)
    assert bl[0] == pytest.approx(0.5 * math.sqrt(2), rel=0.02)
    assert br[0] == pytest.approx(0.5 * math.sqrt(2), rel=0.02)
    alpha, _, _ = nq._aggd(r.laplace(0, 1, (1, 200_000)))
    assert alpha[0] == pytest.approx(1.0, abs=0.03)
    a = np.abs(r.normal(0, 1, 200_000))  # AGGD: each side's mass is its scale's share
    asym = np.concatenate([-a[:50_000] * 0.5, a[50_000:] * 1.5])[None]
    alpha, bl, br = nq._aggd(asym)
    assert alpha[0] == pytest.approx(2.0, abs=0.05)
    assert br[0] / bl[0] == pytest.approx(3.0, rel=0.03)


def test_features_have_the_published_layout(natural):
    feats, sharp = nq.block_features(natural)
    assert feats.shape == (9, 36) and sharp.shape == (9,)  # 3x3 blocks of 96, 18 per scale
    alphas = feats[:, [0, 2, 6, 10, 14, 18, 20, 24, 28, 32]]
    assert ((alphas >= 0.2) & (alphas <= 10)).all()  # the MATLAB grid 0.2:0.001:10
    betas = feats[:, [1, 4, 5, 8, 9, 12, 13, 16, 17]]
    assert (betas > 0).all() and (sharp > 0).all()


def test_shipped_model_loads_with_the_right_shapes():
    model = nq.load_model()
    assert model.mu.shape == (36,) and model.cov.shape == (36, 36)
    assert np.allclose(model.cov, model.cov.T)
    assert np.linalg.eigvalsh(model.cov).min() > -1e-10  # a covariance
    meta = model.meta
    assert meta["command"].startswith("srlab inspect --fit-niqe")
    assert meta["blocks"] > 1000 and len(meta["images"]) == meta["images_used"] \
        + meta["images_skipped"]
    tests = ("Set5/", "Set14/", "BSD100/", "Urban100/", "RealSRSet/")
    assert not [n for n in meta["images"] if n.startswith(tests)]


def test_noise_and_blur_raise_the_score(natural):
    """Lower is better: clear noise and blur both move the photo away from the pristine
    model (a little noise on a JPEG-smoothed photo need not: it is not asked here)."""
    clean = nq.niqe(natural)
    r = np.random.default_rng(1)
    noisy = np.clip(natural + r.normal(0, 20, natural.shape), 0, 255).astype(np.uint8)
    assert nq.niqe(noisy) > clean + 1

    def blur(sigma: float) -> float:
        out = gaussian_blur(natural.astype(np.float64), sigma)
        return nq.niqe(np.clip(np.round(out), 0, 255).astype(np.uint8))

    assert clean + 2 < blur(1.0) < blur(2.0)


def test_deterministic_and_input_unchanged(natural):
    before = natural.copy()
    a, b = nq.niqe(natural), nq.niqe(natural.copy())
    assert a == b and np.isfinite(a)
    assert np.array_equal(natural, before)
    # gray input is its own luma; RGB is read through rounded BT.601 Y
    y = nq.luma(natural)
    assert nq.niqe(y) == a


def test_too_small_and_flat_images_are_refused():
    with pytest.raises(ValueError, match="at least 96x96"):
        nq.niqe(np.zeros((95, 300, 3), np.uint8))
    with pytest.raises(ValueError, match="without texture"):
        nq.niqe(np.full((100, 100), 128, np.uint8))


def test_inspect_niqe_scores_a_folder_and_rejects_a_tiny_image(tmp_path, capsys, natural):
    Image.fromarray(natural).save(tmp_path / "a.png")
    Image.fromarray(natural[:, ::-1]).save(tmp_path / "b.png")
    assert main(["inspect", "--niqe", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3 and out[-1].startswith("mean NIQE over 2 images")
    Image.fromarray(natural[:50, :50]).save(tmp_path / "tiny.png")
    assert main(["inspect", "--niqe", str(tmp_path / "tiny.png")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "at least 96x96" in err[0] and "Traceback" not in err[0]


def test_fit_command_writes_a_loadable_model(tmp_path, capsys, monkeypatch):
    train = tmp_path / "train"
    train.mkdir()
    for i in range(3):
        Image.fromarray(synthetic_image(i, 200, 200)).save(train / f"{i}.png")
    Image.fromarray(synthetic_image(9, 40, 40)).save(train / "small.png")  # below a block
    out = tmp_path / "model.json"
    argv = ["inspect", "--fit-niqe", str(out), str(train)]
    monkeypatch.setattr("sys.argv", ["srlab", *argv])  # what the file records as its command
    assert main(argv) == 0
    assert "wrote" in capsys.readouterr().out
    model = nq.load_model(out)
    assert model.mu.shape == (36,) and model.cov.shape == (36, 36)
    assert model.meta["images_used"] == 3 and model.meta["images_skipped"] == 1
    assert model.meta["images"] == [f"train/{n}" for n in ("0.png", "1.png", "2.png",
                                                           "small.png")]
    assert model.meta["command"] == f"srlab inspect --fit-niqe {out} {train}"
    score = nq.niqe(synthetic_image(5, 200, 200), model)
    assert np.isfinite(score)
    # the same images give the same file: the fit is reproducible
    again = tmp_path / "again.json"
    assert main(["inspect", "--fit-niqe", str(again), str(train)]) == 0
    assert json.loads(again.read_text())["mu"] == json.loads(out.read_text())["mu"]


def test_fit_refuses_test_sets_and_bad_model_files(tmp_path, capsys):
    bench = tmp_path / "Set14"
    bench.mkdir()
    Image.fromarray(synthetic_image(0, 200, 200)).save(bench / "a.png")
    assert main(["inspect", "--fit-niqe", str(tmp_path / "m.json"), str(bench)]) == 1
    assert "training images only" in capsys.readouterr().err
    assert not (tmp_path / "m.json").exists()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": nq.FORMAT, "mu": [0] * 35, "cov": [[0]]}))
    with pytest.raises(ValueError, match="not a srlab-niqe-1 model"):
        nq.load_model(bad)


def test_benchmark_niqe_column(tmp_path, capsys):
    hr = tmp_path / "hr"
    hr.mkdir()
    for i in range(2):
        Image.fromarray(synthetic_image(i, 200, 200)).save(hr / f"{i}.png")
    code = main(["benchmark", "-m", "bicubic-matlab", "-s", "2", "-d", str(hr), "--niqe",
                 "-o", str(tmp_path / "out"), "--cache", str(tmp_path / "cache")])
    assert code == 0
    md = capsys.readouterr().out
    assert "/ NIQE (no-reference" in md
    rows = list(csv.DictReader(open(tmp_path / "out" / "benchmark.csv")))
    assert np.isfinite(float(rows[0]["niqe"])) and rows[0]["niqe_model"]
    # a cached row scored without NIQE is measured again when NIQE is asked for
    code = main(["benchmark", "-m", "bicubic-matlab", "-s", "2", "-d", str(hr),
                 "-o", str(tmp_path / "out2"), "--cache", str(tmp_path / "cache2")])
    code = main(["benchmark", "-m", "bicubic-matlab", "-s", "2", "-d", str(hr), "--niqe",
                 "-o", str(tmp_path / "out3"), "--cache", str(tmp_path / "cache2")])
    assert code == 0
    rows = list(csv.DictReader(open(tmp_path / "out3" / "benchmark.csv")))
    assert np.isfinite(float(rows[0]["niqe"]))

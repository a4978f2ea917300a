"""The benchmark's per-image score cache: a row computed in pieces, resumed, never recomputed."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from conftest import synthetic_image
from PIL import Image

from srlab.cli import main
from srlab.eval import benchmark as bm
from srlab.eval import imagecache


@pytest.fixture
def five_images(tmp_path):
    folder = tmp_path / "hr"
    folder.mkdir()
    for i in range(5):  # 80 px HR: the LR at x2 (40 px) is larger than the 32 px warm-up
        Image.fromarray(synthetic_image(i, 80, 80)).save(folder / f"{i}.png")
    return folder


MAKE_UPSCALER = bm.make_upscaler


class Interrupted(Exception):
    """Stands for Ctrl-C or a killed piece (pytest itself stops on a KeyboardInterrupt)."""


class Counter:
    """Wraps make_upscaler: records every image the model is called on (warm-up calls on the
    32 px corner apart), and can interrupt the run after ``stop_after`` images."""

    def __init__(self, monkeypatch, stop_after: int | None = None):
        self.images: list[bytes] = []
        self.warmups = 0
        self.stop_after = stop_after
        real = MAKE_UPSCALER  # not a Counter set up earlier in the same test

        def make(name, scale, weights=None):
            fn, params, trained = real(name, scale, weights)

            def counted(lr):
                if lr.shape[:2] == (32, 32):
                    self.warmups += 1
                    return fn(lr)
                if self.stop_after is not None and len(self.images) >= self.stop_after:
                    raise Interrupted  # what Ctrl-C or a killed piece does mid-row
                self.images.append(lr.tobytes())
                return fn(lr)

            return counted, params, trained

        monkeypatch.setattr(bm, "make_upscaler", make)


def run(folder, cache, **kw):
    return bm.run_benchmark(["bicubic-matlab"], [2], [folder], cache=cache, track="jpeg75",
                            log=lambda _: None, **kw)


def test_an_interrupted_row_resumes_without_recomputing_its_cached_images(
        five_images, tmp_path, monkeypatch):
    reference = run(five_images, None)[0]  # no cache: the whole row in one go
    cache = tmp_path / "cache"
    first = Counter(monkeypatch, stop_after=2)
    with pytest.raises(Interrupted):
        run(five_images, cache)
    assert len(first.images) == 2 and not list(cache.glob("*.json"))  # no row, two images
    assert len(list((cache / imagecache.IMAGES).glob("*.json"))) == 2

    second = Counter(monkeypatch)
    row = run(five_images, cache)[0]
    assert len(second.images) == 3 and not set(second.images) & set(first.images)
    assert second.warmups == 1
    assert not row.cached  # three of its images were measured in this run
    assert (row.psnr, row.ssim, row.gmsd, row.images) == \
        (reference.psnr, reference.ssim, reference.gmsd, reference.images)
    assert row.mpx == reference.mpx  # the pieces' pixels add up to the whole row's

    third = Counter(monkeypatch)
    assert run(five_images, cache)[0].cached and not third.images  # the row entry
    for entry in cache.glob("*.json"):
        entry.unlink()
    again = run(five_images, cache)[0]  # no row entry: assembled from the images alone
    assert again.cached and not third.images and third.warmups == 0
    assert (again.psnr, again.ssim) == (reference.psnr, reference.ssim)


def test_a_changed_image_file_is_the_only_one_measured_again(five_images, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    run(five_images, cache)
    Image.fromarray(synthetic_image(9, 80, 80)).save(five_images / "3.png")  # same name
    counter = Counter(monkeypatch)
    run(five_images, cache)
    assert len(counter.images) == 1
    # another track of the same images: other seeds, other inputs, all measured
    bm.run_benchmark(["bicubic-matlab"], [2], [five_images], cache=cache, track="noise10",
                     log=lambda _: None)
    assert len(counter.images) == 1 + 5


def test_the_deadline_stops_between_images_and_the_next_run_continues(
        five_images, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    clock = SimpleNamespace(now=0.0)
    monkeypatch.setattr(bm, "time", SimpleNamespace(monotonic=lambda: clock.now))
    counter = Counter(monkeypatch)
    counted = bm.make_upscaler

    def slow(name, scale, weights=None):  # every image "takes" 10 s of the fake clock
        fn, params, trained = counted(name, scale, weights)

        def fn10(lr):
            out = fn(lr)
            if lr.shape[:2] != (32, 32):
                clock.now += 10
            return out
        return fn10, params, trained

    monkeypatch.setattr(bm, "make_upscaler", slow)

    def piece(seconds: float, log=lambda _: None):
        return bm.run_benchmark(["bicubic-matlab"], [2], [five_images], cache=cache,
                                deadline=clock.now + seconds, log=log)

    lines: list[str] = []
    with pytest.raises(bm.BenchmarkIncomplete, match="3 of 5 images"):
        piece(25, lines.append)  # starts images at 0, 10, 20 s; not at 30
    assert any("3 of 5 images scored (3 in this run)" in line for line in lines)
    with pytest.raises(bm.BenchmarkIncomplete, match="4 of 5 images"):
        piece(5)
    assert len(counter.images) == 4
    row = piece(5)[0]
    assert row.images == 5 and len(counter.images) == 5 and not row.cached
    assert len(set(counter.images)) == 5  # no image measured twice across the pieces


def test_image_keys_differ_in_every_part():
    base = dict(version=2, model_id="m", backend="torch", image="h", name="a.png", scale=4,
                track=None)
    keys = {imagecache.image_key(**base)}
    for field, other in [("version", 3), ("model_id", "n"), ("backend", "ncnn"),
                         ("image", "g"), ("name", "b.png"), ("scale", 2), ("track", "jpeg75")]:
        keys.add(imagecache.image_key(**{**base, field: other}))
    assert len(keys) == 8


def test_budget_option_writes_no_table_and_exits_3_then_the_same_command_finishes(
        five_images, tmp_path, capsys):
    out, cache = tmp_path / "out", tmp_path / "cache"
    argv = ["benchmark", "-m", "bicubic-matlab", "-s", "2", "-d", str(five_images),
            "-o", str(out), "--cache", str(cache)]
    assert main([*argv, "--budget", "1e-9"]) == 3
    err = capsys.readouterr().err
    assert "run the same command again to continue" in err and "Traceback" not in err
    assert not (out / "benchmark.md").exists()
    assert main([*argv, "--budget", "600"]) == 0 and (out / "benchmark.md").is_file()
    assert main([*argv, "--budget", "0"]) == 2
    assert main([*argv, "--budget", "10", "--no-cache"]) == 2
    assert np.isfinite(float(next(iter(
        line for line in (out / "benchmark.md").read_text().splitlines()
        if line.startswith("| bicubic-matlab"))).split("|")[4].split(" / ")[0]))

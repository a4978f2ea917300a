"""srlab strip (photos without ground truth) and the grid it shares with benchmark --strip."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from srlab.cli import main
from srlab.eval.strips import PhotoCrop, photo_strip


@pytest.fixture
def photo(tmp_path):
    rng = np.random.default_rng(3)
    path = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)).save(path)
    return path


def nearest(scale: int, seen: list):
    def fn(a: np.ndarray) -> np.ndarray:
        seen.append(a.shape[:2])
        return np.kron(a, np.ones((scale, scale, 1), dtype=np.uint8))
    return fn


def test_each_cell_is_the_crop_the_model_made_of_a_window_around_it(photo, tmp_path):
    seen: list = []
    out = photo_strip(["a", "b"], 2, [PhotoCrop(photo, (30, 5)), PhotoCrop(photo)],
                      tmp_path / "s.png", crop=16, context=4,
                      make=lambda name, s: nearest(s, seen))
    src = np.asarray(Image.open(photo))
    grid = np.asarray(Image.open(out).convert("RGB"))
    top = grid.shape[0] - 2 * (32 + 2)  # the header: two rows of 32 px cells, 2 px gaps
    assert top > 0 and grid.shape[1] == 2 * (32 + 2)
    # the window: the crop plus 4 px each side, clipped by the image (y 5-4 = 1)
    assert seen == [(16 + 8, 16 + 8)] * 2 + [(16 + 8, 16 + 8)] * 2
    first = grid[top: top + 32, :32]  # photo 1, model a: the 16 px crop at x 30, y 5, x2
    assert np.array_equal(first, np.kron(src[5:21, 30:46], np.ones((2, 2, 1), np.uint8)))
    centre = grid[top + 34: top + 66, 34:66]  # photo 2 (centre crop), model b
    y, x = (50 - 16) // 2, (70 - 16) // 2
    assert np.array_equal(centre, np.kron(src[y:y + 16, x:x + 16], np.ones((2, 2, 1), np.uint8)))


class _Picker:
    """Decides on what it is shown (records the shape), then runs nearest on the window."""

    def __init__(self, scale: int) -> None:
        self.scale, self.decided_on, self.ran_on, self.last = scale, [], [], None

    def pick(self, arr, path=None):
        self.decided_on.append((arr.shape[:2], path))
        self.last = (type("Cond", (), {"denoise": 0.5, "reason": "test"})(), None)
        return type("Net", (), {"upscale_array": staticmethod(nearest(self.scale,
                                                                       self.ran_on))})()


def test_a_per_image_chooser_decides_on_the_whole_photo_and_runs_on_the_window(photo,
                                                                               tmp_path):
    picker, lines = _Picker(2), []
    photo_strip(["auto"], 2, [PhotoCrop(photo, (30, 5))], tmp_path / "s.png", crop=16,
                context=4, make=lambda name, s: picker, report=lines.append)
    assert picker.decided_on == [((50, 70), photo)]  # the whole photo, with its path
    assert picker.ran_on == [(24, 24)]  # the window only
    assert lines == ["photo.png: auto ran denoise 0.5 (test)"]


def test_a_crop_outside_the_photo_is_refused(photo, tmp_path):
    with pytest.raises(ValueError, match="leaves the 70x50 image"):
        photo_strip(["a"], 2, [PhotoCrop(photo, (60, 0))], tmp_path / "s.png", crop=16,
                    make=lambda name, s: nearest(s, []))
    assert not (tmp_path / "s.png").exists()


def test_strip_command_draws_models_and_refuses_bad_input_in_one_line(photo, tmp_path, capsys):
    out = tmp_path / "strip.png"
    assert main(["strip", f"{photo}@10,10", str(photo), "-m", "bicubic-matlab", "-m", "nearest",
                 "-s", "2", "--crop", "16", "-o", str(out)]) == 0
    assert Image.open(out).size[0] == 2 * (32 + 2)
    for argv in (["strip", str(tmp_path / "none.png"), "-m", "nearest", "-o", str(out)],
                 ["strip", f"{photo}@69,0", "-m", "nearest", "--crop", "16", "-o", str(out)],
                 ["strip", str(photo), "-m", "no-such-model", "-o", str(out)],
                 ["strip", str(photo), "-m", "span-ch48", "-s", "3", "-o", str(out)],
                 ["strip", str(photo), "-m", "nearest", "-o", str(tmp_path / "s.jpg")]):
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "Traceback" not in err[0], err

"""The shipped training artefacts stay small: one-palette progress GIFs, palette curve PNGs."""

from __future__ import annotations

import io

import numpy as np
from conftest import synthetic_image
from PIL import Image

from srlab.train.report import compact_plot, evenly, save_progress_gif, shrink_artifact


def _strips(n: int) -> list[Image.Image]:
    """(fixed | changing | fixed) columns, as training's bicubic | model | HR strips."""
    left, right = synthetic_image(0, 96, 96), synthetic_image(1, 96, 96)
    out = []
    for i in range(n):
        mid = np.clip(right.astype(int) * (i + 1) // n + np.random.default_rng(i).normal(
            0, 6, right.shape), 0, 255).astype(np.uint8)
        out.append(Image.fromarray(np.concatenate([left, mid, right], axis=1)))
    return out


def _per_frame_palette_bytes(frames: list[Image.Image]) -> int:
    """What training wrote before artifacts.py: an adaptive palette per frame."""
    q = [f.convert("P", palette=Image.ADAPTIVE, colors=128) for f in frames]
    buf = io.BytesIO()
    q[0].save(buf, format="GIF", save_all=True, append_images=q[1:], duration=500, loop=0)
    return len(buf.getvalue())


def test_progress_gif_is_smaller_than_per_frame_palettes_and_keeps_the_frames(tmp_path):
    frames = _strips(12)
    save_progress_gif(frames, tmp_path / "p.gif")
    size = (tmp_path / "p.gif").stat().st_size
    assert size < 0.8 * _per_frame_palette_bytes(frames)
    with Image.open(tmp_path / "p.gif") as gif:
        assert gif.n_frames == 12 and gif.info["loop"] == 0
        gif.seek(11)
        last = np.asarray(gif.convert("RGB"), dtype=float)
    assert np.abs(last - np.asarray(frames[-1], dtype=float)).mean() < 10  # still a picture


def test_compact_plot_and_shrink_artifact(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(range(10), np.sqrt(np.arange(10)), marker="o")
    ax.grid(alpha=0.3)
    fig.savefig(tmp_path / "psnr.png", dpi=90)
    plt.close(fig)
    full = (tmp_path / "psnr.png").read_bytes()
    compact_plot(tmp_path / "psnr.png")
    with Image.open(tmp_path / "psnr.png") as im:
        assert im.mode == "P" and im.size == (450, 288)
    assert (tmp_path / "psnr.png").stat().st_size < len(full) / 2
    # an old 20-frame GIF is cut to the frames training keeps now, first and last among them
    _strips(20)[0].save(tmp_path / "old.gif", save_all=True, append_images=_strips(20)[1:])
    before, after = shrink_artifact(tmp_path / "old.gif", gif_frames=8)
    assert after < before and (tmp_path / "old.gif").stat().st_size == after
    with Image.open(tmp_path / "old.gif") as gif:
        assert gif.n_frames == 8
    assert evenly(20, 8)[0] == 0 and evenly(20, 8)[-1] == 19 and len(evenly(20, 8)) == 8
    assert evenly(3, 8) == [0, 1, 2] and evenly(1, 8) == [0] and evenly(0, 8) == []
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob("*.small"))

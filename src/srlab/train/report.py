"""What a run reports: console lines, metrics.csv, plots, snapshots, the progress GIF, the
weights' recipe and the run summary. The training loop calls these; none of them changes
what is trained.

Why the artefacts are small: they ship inside the package (``src/srlab/weights/<model>_x<s>/``),
and a GIF written with an adaptive palette per frame cost 1.2 MB for 24 frames of 288x288.
One palette shared by all frames and no dithering (its noise is what LZW cannot compress)
let the GIF writer store only the pixels that changed since the previous frame (the bicubic
and HR columns of a strip never change): about a sixth of the bytes. A curve plot needs no
16 million colours; 64 keep its anti-aliased lines and make it about 4x smaller.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from srlab.train.config import Config
from srlab.zoo.registry import get_spec
from srlab.zoo.weights import WeightsMeta, atomic_replace

if TYPE_CHECKING:
    from PIL import Image

    from srlab.train.guard import RunState

__all__ = ["GIF_COLORS", "PLOT_COLORS", "GIF_FRAMES", "evenly", "save_progress_gif",
           "compact_plot", "shrink_artifact", "RunSummary", "ProgressBar", "write_config",
           "epoch_line", "weights_meta", "write_epoch", "snapshot", "plots", "progress_gif",
           "hardware", "recipe", "summarise", "write_summary"]

GIF_COLORS = 128
PLOT_COLORS = 64
GIF_FRAMES = 12  # at most, in a run's progress.gif
ADVERSARIAL = "*adversarial"  # how a recipe names the GAN term (ship reads it back)


def evenly(n: int, k: int) -> list[int]:
    """At most ``k`` of the indices 0..n-1, spread evenly, always with the first and last
    (all of them when n <= k: spacing by k, as before, dropped a short run's last epochs)."""
    m = min(n, k)
    return sorted({round(i * (n - 1) / max(m - 1, 1)) for i in range(m)})


def save_progress_gif(frames: Sequence[Image.Image], path: Path, *,
                      duration: int = 500) -> None:
    """``frames`` as a looping GIF with one shared palette (see the module docstring)."""
    from PIL import Image

    if not frames:
        return
    rgb = [f.convert("RGB") for f in frames]
    w, h = rgb[0].size
    sheet = Image.new("RGB", (w, h * len(rgb)))  # the palette is fitted to every frame at once
    for i, f in enumerate(rgb):
        sheet.paste(f.resize((w, h)) if f.size != (w, h) else f, (0, h * i))
    palette = sheet.quantize(colors=GIF_COLORS, method=Image.Quantize.MEDIANCUT,
                             dither=Image.Dither.NONE)
    q = [f.quantize(palette=palette, dither=Image.Dither.NONE) for f in rgb]
    _atomic(path, lambda tmp: q[0].save(tmp, format="GIF", save_all=True,
                                        append_images=q[1:], duration=duration, loop=0))


def compact_plot(path: Path) -> None:
    """Rewrite a matplotlib PNG in place as a ``PLOT_COLORS``-colour palette PNG."""
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        rgba = im.convert("RGBA")
    flat = Image.new("RGB", rgba.size, "white")
    flat.paste(rgba, mask=rgba.getchannel("A"))
    small = flat.quantize(colors=PLOT_COLORS, method=Image.Quantize.MEDIANCUT,
                          dither=Image.Dither.NONE)
    _atomic(path, lambda tmp: small.save(tmp, format="PNG", optimize=True))


def shrink_artifact(path: Path, *, gif_frames: int) -> tuple[int, int]:
    """Re-encode an existing progress GIF (at most ``gif_frames`` frames, spread evenly as
    training keeps them) or curve PNG the small way; the file is replaced only when the new
    one is smaller. Returns (bytes before, bytes after)."""
    from PIL import Image, ImageSequence

    path = Path(path)
    before = path.stat().st_size
    tmp = path.with_name(path.name + ".small")
    try:
        if path.suffix.lower() == ".gif":
            with Image.open(path) as im:
                frames = [f.convert("RGB") for f in ImageSequence.Iterator(im)]
            save_progress_gif([frames[i] for i in evenly(len(frames), gif_frames)], tmp,
                              duration=_gif_duration(path))
        elif path.suffix.lower() == ".png":
            tmp.write_bytes(path.read_bytes())
            compact_plot(tmp)
        else:
            return before, before
        after = tmp.stat().st_size
        if after < before:
            os.replace(tmp, path)
            return before, after
        return before, before
    finally:
        tmp.unlink(missing_ok=True)


def _gif_duration(path: Path) -> int:
    from PIL import Image

    with Image.open(path) as im:
        return int(im.info.get("duration", 500) or 500)


def _atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Write through a temp file beside ``path`` and rename: a reader never sees half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# --- a run's reports, in the order the loop writes them -----------------------------------


@dataclass
class RunSummary:
    """What ``train`` returns, and summary.json holds."""

    run_dir: Path
    best_psnr: float
    best_ssim: float
    best_epoch: int
    bicubic_psnr: float
    iterations: int
    seconds: float
    patches_per_second: float
    rollbacks: int


class ProgressBar:
    """A tqdm bar over the iterations, or nothing (``run.progress`` off, or not rank 0)."""

    def __init__(self, enabled: bool, total: int, initial: int) -> None:
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, unit="it", dynamic_ncols=True,
                            mininterval=2)

    def step(self, loss_avg: float | None, lr: float) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss_avg or 0:.4f}", lr=f"{lr:.2e}", refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def write_config(run_dir: Path, cfg: Config) -> None:
    """The run's folders and its config.yaml: the config actually used (after fallbacks)."""
    (run_dir / "predictions").mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(cfg.to_dict(), sort_keys=False)
    atomic_replace(run_dir / "config.yaml", lambda tmp: Path(tmp).write_text(text))


def epoch_line(row: dict[str, Any]) -> str:
    """The console line for one epoch's metrics row."""
    clean = f"  clean {row['val_psnr_clean']:.3f}" if "val_psnr_clean" in row else ""
    return (f"epoch {row['epoch']}: loss {row['loss']:.4f}  val PSNR {row['val_psnr']:.3f} dB "
            f"(bicubic {row['bicubic_psnr']:.3f}){clean}  SSIM {row['val_ssim']:.4f}  "
            f"{row['patches_per_s']:.1f} patches/s")


def weights_meta(cfg: Config, state: RunState, init_seconds: float, psnr: float,
                 ssim: float) -> WeightsMeta:
    """The metadata saved in best/last.safetensors after an epoch."""
    # the full architecture (variant defaults + overrides), so the file still loads if
    # the registry's defaults for this name change later
    kwargs = {**get_spec(cfg.model.name).kwargs, **cfg.model.kwargs}
    return WeightsMeta(arch=cfg.model.name, scale=cfg.model.scale, kwargs=kwargs,
                       recipe=recipe(cfg, state.iteration, state.segments),
                       train_seconds=round(state.seconds, 1),
                       init_seconds=round(init_seconds, 1),
                       metrics={"val": {"psnr": round(psnr, 4), "ssim": round(ssim, 5)}})


def write_epoch(run_dir: Path, rows: list[dict[str, Any]], outputs: list, epoch: int) -> None:
    """metrics.csv, the epoch's snapshot of ``outputs`` and the curve plots."""
    with open(run_dir / "metrics.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    snapshot(outputs, epoch, run_dir / "predictions")
    plots(rows, run_dir)


def snapshot(outputs: list, epoch: int, out: Path, size: int = 96) -> Path:
    """One strip per epoch: (bicubic | model | HR) centre crops of the fixed val images."""
    from PIL import Image

    from srlab.image.resize import imresize

    rows = []
    for lr, sr, hr in outputs:
        h, w = hr.shape[:2]
        c = min(size, h, w)
        y, x = (h - c) // 2, (w - c) // 2
        bic = imresize(lr, sr.shape[0] // lr.shape[0])
        rows.append(np.concatenate([a[y : y + c, x : x + c] for a in (bic, sr, hr)], axis=1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]
    path = out / f"epoch_{epoch:04d}.png"
    Image.fromarray(np.concatenate(rows, axis=0)).save(path)
    return path


def plots(rows: list[dict[str, Any]], run_dir: Path) -> None:
    """loss.png, psnr.png (with the bicubic line) and ssim.png over the epochs so far."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [r["epoch"] for r in rows]
    for key, fname, label in (("loss", "loss.png", "training loss"),
                              ("val_psnr", "psnr.png", "validation PSNR (dB, Y)"),
                              ("val_ssim", "ssim.png", "validation SSIM (Y)")):
        fig, ax = plt.subplots(figsize=(5, 3.2))
        ax.plot(ep, [r[key] for r in rows], marker="o")
        if key == "val_psnr":
            ax.axhline(rows[0]["bicubic_psnr"], color="gray", ls="--", label="bicubic")
            ax.legend()
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(run_dir / fname, dpi=90)
        plt.close(fig)
        compact_plot(run_dir / fname)  # shipped beside the weights: keep it small


def progress_gif(pred_dir: Path, run_dir: Path) -> None:
    """progress.gif from the epoch snapshots in ``pred_dir``."""
    from PIL import Image

    paths = sorted(pred_dir.glob("epoch_*.png"))
    # at most GIF_FRAMES frames, spread evenly and always ending on the last epoch, with one
    # shared palette (save_progress_gif), so a long run's GIF stays small enough to ship
    frames = []
    for i in evenly(len(paths), GIF_FRAMES):
        with Image.open(paths[i]) as im:
            frames.append(im.convert("RGB"))
    save_progress_gif(frames, run_dir / "progress.gif")


def hardware(segments: list[dict[str, Any]], it: int) -> str:
    """Precision and threads, per segment when a resumed run changed them (e.g. bf16 on one
    machine, float32 on the next), so a card does not credit the whole run to the last one."""
    def one(seg: dict[str, Any]) -> str:
        if seg["bf16"] is None:
            return "precision and threads not recorded"
        return (("bf16 autocast" if seg["bf16"] else "float32")
                + f", {seg['threads'] or 'all'} CPU thread(s)")

    if len(segments) == 1:
        return one(segments[0])
    ends = [seg["from"] for seg in segments[1:]] + [it]
    return "; ".join(f"iterations {seg['from']}-{end}: {one(seg)}"
                     for seg, end in zip(segments, ends, strict=True))


def recipe(cfg: Config, it: int, segments: list[dict[str, Any]]) -> str:
    """How the weights were trained, in one sentence for the model card."""
    d, o = cfg.data, cfg.optim
    data = ", ".join(Path(f).name for f in d.train)
    loss = " + ".join(f"{w:g}*{n}" for n, w in cfg.loss.terms.items())
    if cfg.loss.teacher:
        loss += (f" + {cfg.loss.teacher_weight:g}*l1 to {cfg.loss.teacher}"
                 + ("'s self-ensemble" if cfg.loss.teacher_ensemble else ""))
    if cfg.gan.enabled:
        g = cfg.gan
        guards = "".join([f", inputs shifted 0-{g.d_shift - 1} px" if g.d_shift > 1 else "",
                          f", R1 {g.r1:g}" if g.r1 > 0 else ""])
        loss += (f" + {g.adv_weight:g}{ADVERSARIAL} ({g.discriminator} discriminator, "
                 f"width {g.d_features}{guards})"
                 + (f" + {g.freq_weight:g}*Fourier-space adversarial" if g.freq_weight > 0
                    else "")
                 + f" after {g.pretrain_iters} generator-only iterations "
                 f"(discriminator lr {g.d_lr:g})")
    degradation = d.degradation + "".join(
        f" {k}={v}" for k, v in sorted(d.degradation_args.items()))
    return (f"srlab train (run {cfg.run.name}): {it:,} iterations of batch {d.batch} x "
            f"{d.patch}px LR patches from {data}, {degradation} degradation; loss {loss}; "
            f"{o.name} lr {o.lr:g} {o.schedule}, EMA {o.ema:g}; {hardware(segments, it)}"
            + (f"; initialised from {cfg.model.init}" if cfg.model.init else ""))


def summarise(run_dir: Path, cfg: Config, state: RunState, bicubic: float,
              iterations: int) -> RunSummary:
    """The finished run's summary, with progress.gif, summary.json and summary.md written."""
    progress_gif(run_dir / "predictions", run_dir)
    best_psnr, best_ssim, best_epoch = state.best
    summary = RunSummary(run_dir=run_dir, best_psnr=best_psnr, best_ssim=best_ssim,
                         best_epoch=best_epoch, bicubic_psnr=bicubic, iterations=iterations,
                         seconds=state.seconds,
                         patches_per_second=float(np.mean([x["patches_per_s"]
                                                           for x in state.rows])),
                         rollbacks=state.rollbacks)
    write_summary(summary, cfg)
    return summary


def write_summary(sm: RunSummary, cfg: Config) -> None:
    """summary.json (every field) and summary.md (the table a person reads)."""
    d = {k: (str(v) if isinstance(v, Path) else v) for k, v in sm.__dict__.items()}
    (sm.run_dir / "summary.json").write_text(json.dumps(d, indent=2))
    (sm.run_dir / "summary.md").write_text(
        f"# Run {cfg.run.name}\n\n"
        f"model `{cfg.model.name}` x{cfg.model.scale}, {sm.iterations} iterations, "
        f"{sm.seconds / 60:.1f} CPU-minutes, {sm.patches_per_second:.1f} patches/s\n\n"
        f"| | PSNR (Y) | SSIM |\n|---|---|---|\n"
        f"| best (epoch {sm.best_epoch}) | {sm.best_psnr:.3f} | {sm.best_ssim:.4f} |\n"
        f"| bicubic | {sm.bicubic_psnr:.3f} | |\n\n"
        f"divergence-guard rollbacks: {sm.rollbacks}\n"
    )

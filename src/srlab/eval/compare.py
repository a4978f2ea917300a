"""``srlab compare``: trained runs and registry models side by side, as the reports showed them.

Each item is a run directory (its ``best.safetensors``, at the arch/scale recorded in the
weights metadata) or a registry model name (with its shipped weights, if any). Every item is
scored by the standard protocol through ``srlab.eval.benchmark`` (same loading, same metrics), so
figures here equal ``srlab benchmark`` figures. Beyond the mean table the reports looked at
*where* a model fails, so we also keep per-image scores and draw, per model, the 3 best and 3
worst images by MSE as LR-bicubic | model | HR crops, cropped where the model's error is
largest.

Outputs in ``out_dir``: ``compare.md`` / ``compare.csv`` (means per model, scale, dataset),
``per_image.csv``, ``psnr_x{s}.png`` / ``ssim_x{s}.png`` (bar charts) and
``extremes/{model}_x{s}.png`` (best/worst grids, MSE in the captions).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from srlab.eval.benchmark import make_upscaler, score_pairs
from srlab.eval.peers import PEERS, PeerUnavailable
from srlab.image.datasets import load_hr, load_pairs
from srlab.image.metrics import rgb_to_y
from srlab.image.resize import imresize, modcrop

__all__ = ["compare", "CompareResult", "CompareRow", "ImageRow", "resolve_item"]

CROP = 96  # HR pixels per side of the crops in the best/worst grids


@dataclass
class CompareRow:
    model: str  # label: run directory name or registry name
    source: str  # run directory, "registry" (srlab model) or "peer" (someone else's)
    arch: str
    scale: int
    dataset: str
    images: int
    psnr: float
    ssim: float
    mse: float
    mae: float
    params: int
    trained: bool
    mpx_per_s: float


@dataclass
class ImageRow:
    model: str
    scale: int
    dataset: str
    image: str
    psnr: float
    ssim: float
    mse: float
    mae: float


@dataclass
class CompareResult:
    out_dir: Path
    rows: list[CompareRow]
    images: list[ImageRow]
    table: Path  # compare.md
    csv: Path  # compare.csv
    charts: list[Path]
    extremes: list[Path]


@dataclass
class _Item:
    label: str
    arch: str
    source: str
    weights: str | None
    scale: int | None  # fixed for runs, None = every requested scale


def resolve_item(item: str) -> _Item:
    """A run directory (with best.safetensors) or a registry/peer model name."""
    from srlab.zoo.registry import MODELS
    from srlab.zoo.weights import read_weights

    path = Path(item)
    if path.is_dir():
        best = path / "best.safetensors"
        if not best.is_file():
            raise FileNotFoundError(f"{path} is not a finished run: no best.safetensors in it")
        _, meta = read_weights(best)
        if meta is None:
            raise ValueError(f"{best} has no srlab metadata (arch/scale unknown)")
        return _Item(label=path.resolve().name, arch=meta.arch, source=str(path),
                     weights=str(best), scale=meta.scale)
    if item in PEERS:  # someone else's model: labelled as a peer in every table
        return _Item(label=item, arch=item, source="peer", weights=None, scale=None)
    if item in MODELS:
        return _Item(label=item, arch=item, source="registry", weights=None, scale=None)
    raise ValueError(f"'{item}' is neither a run directory nor a registered model "
                     "(see 'srlab models')")


def _supports(arch: str, scale: int) -> bool:
    from srlab.zoo.registry import MODELS

    if arch in PEERS:
        return scale in PEERS[arch].scales
    return scale in MODELS[arch].scales


def compare(
    items: list[str],
    *,
    scales: list[int] | None = None,
    datasets: list[str | Path],
    out_dir: str | Path,
    command: str | None = None,
    log: Callable[[str], None] = print,
) -> CompareResult:
    """Score runs and models on ``datasets``; write tables, bar charts and best/worst grids.

    Runs are scored at their own scale; registry models at each of ``scales`` (default: the
    runs' scales, or 4 when there are none).
    """
    if not items:
        raise ValueError("nothing to compare: give run directories or model names")
    if not datasets:
        raise ValueError("no datasets given")
    items = list(dict.fromkeys(items))
    resolved = [resolve_item(i) for i in items]
    labels = [r.label for r in resolved]
    for r, item in zip(resolved, items, strict=True):  # two runs named alike: use their paths
        if labels.count(r.label) > 1 and r.source not in ("registry", "peer"):
            r.label = str(Path(item)).strip("/").replace("/", "_")
    run_scales = sorted({r.scale for r in resolved if r.scale is not None})
    scales = list(scales) if scales else (run_scales or [4])
    for r in resolved:
        if r.scale is not None and r.scale not in scales:
            log(f"note: run {r.label} is x{r.scale}; it is scored at x{r.scale} only")
    out = Path(out_dir)
    (out / "extremes").mkdir(parents=True, exist_ok=True)
    rows: list[CompareRow] = []
    images: list[ImageRow] = []
    extremes: list[Path] = []
    skipped: list[str] = []  # peers that cannot run here, said once at the end
    reason: PeerUnavailable | None = None
    for scale in sorted(set(scales) | set(run_scales)):
        todo = [r for r in resolved
                if (r.scale == scale) or (r.scale is None and scale in scales)]
        fns = {}
        for r in todo:
            if not _supports(r.arch, scale):
                log(f"skipping {r.label} at x{scale}: scale not supported")
                continue
            try:
                fns[r.label] = make_upscaler(r.arch, scale, r.weights)
            except PeerUnavailable as exc:  # e.g. OpenCV 5 reads no .pb: say so, go on
                skipped.append(f"skipping {r.label} at x{scale}: {exc}")
                reason = reason or exc
                continue
            if not fns[r.label][2]:
                log(f"warning: {r.label} x{scale} runs on random weights (untrained)")
        files: dict[str, Path] = {}  # "dataset/image" -> file, to redraw the extremes
        for ds in datasets:
            ds = Path(ds)
            named = load_pairs(ds, scale)
            pairs = [(lr, hr) for _, lr, hr in named]
            files.update({f"{ds.name}/{n}": ds / n for n, _, _ in named})
            for r in todo:
                if r.label not in fns:
                    continue
                fn, params, trained = fns[r.label]
                scores, seconds, pixels = score_pairs(fn, pairs, scale)
                images += [ImageRow(model=r.label, scale=scale, dataset=ds.name, image=n,
                                    psnr=s.psnr, ssim=s.ssim, mse=s.mse, mae=s.mae)
                           for (n, _, _), s in zip(named, scores, strict=True)]
                row = CompareRow(
                    model=r.label, source=r.source, arch=r.arch, scale=scale, dataset=ds.name,
                    images=len(scores), psnr=float(np.mean([s.psnr for s in scores])),
                    ssim=float(np.mean([s.ssim for s in scores])),
                    mse=float(np.mean([s.mse for s in scores])),
                    mae=float(np.mean([s.mae for s in scores])), params=params,
                    trained=trained, mpx_per_s=pixels / 1e6 / max(seconds, 1e-9))
                rows.append(row)
                log(f"x{scale} {ds.name:<10} {r.label:<22} {row.psnr:7.3f} dB  "
                    f"{row.ssim:.4f}  MSE {row.mse:8.2f}")
        for label, (fn, _, _) in fns.items():
            mine = [i for i in images if i.model == label and i.scale == scale]
            extremes.append(_extremes_grid(mine, files, fn, scale, label,
                                           out / "extremes" / f"{_safe(label)}_x{scale}.png"))
    if not rows and reason is not None:  # only peers were asked for: the reason is the error
        raise reason
    if not rows:
        raise ValueError("no (model, scale) combination could be scored")
    for line in skipped:
        log(line)
    table, csv_path = _write_tables(rows, images, out, command)
    charts = _bar_charts(rows, out)
    (out / "compare.json").write_text(json.dumps(
        {"command": command, "rows": [asdict(r) for r in rows],
         "extremes": [str(p) for p in extremes]}, indent=2))
    return CompareResult(out_dir=out, rows=rows, images=images, table=table, csv=csv_path,
                         charts=charts, extremes=extremes)


def _safe(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label)


def markdown_table(rows: list[CompareRow], command: str | None = None) -> str:
    """One line per (scale, dataset, model), best PSNR/SSIM of each group in bold."""
    lines = ["| scale | dataset | model | images | PSNR (dB) | SSIM | MSE | MAE | params |",
             "|---|---|---|---|---|---|---|---|---|"]
    groups = list(dict.fromkeys((r.scale, r.dataset) for r in rows))
    for scale, ds in groups:
        group = sorted((r for r in rows if (r.scale, r.dataset) == (scale, ds)),
                       key=lambda r: -r.psnr)
        top_p, top_s = max(r.psnr for r in group), max(r.ssim for r in group)
        for r in group:
            p = f"**{r.psnr:.2f}**" if r.psnr == top_p and len(group) > 1 else f"{r.psnr:.2f}"
            s = f"**{r.ssim:.4f}**" if r.ssim == top_s and len(group) > 1 else f"{r.ssim:.4f}"
            name = r.model if r.trained else f"{r.model} (untrained)"
            name = f"{name} (peer)" if r.source == "peer" else name
            lines.append(f"| x{scale} | {ds} | {name} | {r.images} | {p} | {s} | {r.mse:.2f} "
                         f"| {r.mae:.2f} | {r.params:,} |")
    note = ("\n\nY channel (BT.601), border = scale cropped, LR by MATLAB bicubic; MSE/MAE in "
            "0..255 units, mean over images.")
    if command:
        note += f" Made by `{command}`."
    return "\n".join(lines) + note


def _write_tables(rows: list[CompareRow], images: list[ImageRow], out: Path,
                  command: str | None) -> tuple[Path, Path]:
    for name, data in (("compare.csv", rows), ("per_image.csv", images)):
        with open(out / name, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(asdict(data[0])))
            w.writeheader()
            w.writerows(asdict(r) for r in data)
    md = out / "compare.md"
    md.write_text(markdown_table(rows, command) + "\n")
    return md, out / "compare.csv"


def _bar_charts(rows: list[CompareRow], out: Path) -> list[Path]:
    """Grouped bars per scale: datasets on x, one bar per model, values written on the bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for scale in sorted({r.scale for r in rows}):
        sub = [r for r in rows if r.scale == scale]
        dsets = list(dict.fromkeys(r.dataset for r in sub))
        models = list(dict.fromkeys(r.model for r in sub))
        by = {(r.model, r.dataset): r for r in sub}
        width = 0.8 / len(models)
        for key, label, fmt in (("psnr", "PSNR (dB, Y)", "{:.2f}"), ("ssim", "SSIM (Y)", "{:.3f}")):
            fig, ax = plt.subplots(figsize=(max(5.0, 1.2 + len(dsets) * len(models) * 0.55), 3.6))
            vals = []
            for j, m in enumerate(models):
                xs = [i + (j - (len(models) - 1) / 2) * width
                      for i, d in enumerate(dsets) if (m, d) in by]
                ys = [getattr(by[(m, d)], key) for d in dsets if (m, d) in by]
                vals += ys
                trained = all(by[(m, d)].trained for d in dsets if (m, d) in by)
                bars = ax.bar(xs, ys, width * 0.95, label=m if trained else f"{m} (untrained)")
                ax.bar_label(bars, labels=[fmt.format(y) for y in ys], fontsize=7, rotation=90,
                             padding=2)
            lo, hi = min(vals), max(vals)
            span = max(hi - lo, 1.0 if key == "psnr" else 0.02)
            ax.set_ylim(lo - span * 0.6, hi + span * 0.6)  # differences, not zero, are the news
            ax.set_xticks(range(len(dsets)), dsets)
            ax.set_ylabel(label)
            ax.set_title(f"{key.upper()} per model and dataset, x{scale}")
            ax.grid(axis="y", alpha=0.3)
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
            fig.tight_layout()
            path = out / f"{key}_x{scale}.png"
            fig.savefig(path, dpi=90)
            plt.close(fig)
            paths.append(path)
    return paths


def _worst_window(sr: np.ndarray, hr: np.ndarray, c: int) -> tuple[int, int]:
    """Top-left corner of the c x c window with the largest squared Y error (integral image)."""
    if sr.ndim == 3:
        a, b = rgb_to_y(sr), rgb_to_y(hr)
    else:
        a, b = sr.astype(np.float64), hr.astype(np.float64)
    err = np.pad(np.cumsum(np.cumsum((a - b) ** 2, axis=0), axis=1), ((1, 0), (1, 0)))
    sums = err[c:, c:] - err[:-c, c:] - err[c:, :-c] + err[:-c, :-c]
    y, x = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(y), int(x)


def _extremes_grid(mine: list[ImageRow], files: dict[str, Path], fn, scale: int, label: str,
                   path: Path) -> Path:
    """3 best and 3 worst images by MSE: LR-bicubic | model | HR crops, MSE in each caption."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ranked = sorted(mine, key=lambda r: r.mse)
    n_best = min(3, (len(ranked) + 1) // 2)
    n_worst = min(3, len(ranked) - n_best)
    picks = [("best", i + 1, r) for i, r in enumerate(ranked[:n_best])]
    picks += [("worst", i + 1, r) for i, r in enumerate(ranked[::-1][:n_worst])]
    fig, axes = plt.subplots(len(picks), 3, figsize=(7.2, 2.6 * len(picks)), squeeze=False)
    for row, (kind, rank, r) in zip(axes, picks, strict=True):
        hr = modcrop(load_hr(files[f"{r.dataset}/{r.image}"]), scale)
        lr = imresize(hr, 1 / scale)
        sr, bic = fn(lr), imresize(lr, scale)
        c = min(CROP, hr.shape[0], hr.shape[1])
        y, x = _worst_window(sr, hr, c)
        for ax, img, title in zip(row, (bic, sr, hr), (
                f"{kind} {rank}: {r.dataset}/{r.image}\nLR-bicubic",
                f"{label}\nMSE {r.mse:.2f}  PSNR {r.psnr:.2f} dB", "HR"), strict=True):
            crop = img[y : y + c, x : x + c]
            ax.imshow(crop, cmap="gray" if crop.ndim == 2 else None, vmin=0, vmax=255,
                      interpolation="nearest")
            ax.set_title(title, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(f"{label} x{scale}: best and worst images by MSE (crop where error peaks)",
                 fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.25 / len(picks)))
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path

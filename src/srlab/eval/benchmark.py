"""``srlab benchmark``: quality by the standard protocol and CPU speed, in one run.

For every HR image: modcrop to the scale, LR by MATLAB bicubic, upscale, Y-channel (BT.601)
PSNR/SSIM with ``scale`` border pixels cropped. Grayscale images stay single-channel and are
scored on their gray values, as the published MATLAB evaluation does (this is what makes
our Set14 bicubic figure match). Speed is output megapixels per second over the same
images, timed in the same process for every model, so ratios between models are fair even
on a noisy machine. OpenCV's ``dnn_superres`` networks are available as peers.

Scores are a pure function of (model tensors, scale, images), so they can be kept in a score
cache: a row is reused only when the model's tensors and architecture, the scale, the image
files and the scoring code version all match. That lets ``srlab ship`` and the README tables
share one measurement of a slow model instead of re-running it; a reused row keeps the
speed of the run that measured it (marked in the table note).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from srlab.image.datasets import shared_dir
from srlab.image.degrade import TRACKS, track_lr
from srlab.image.metrics import Scores, evaluate
from srlab.image.resize import imresize, modcrop

__all__ = ["BenchRow", "run_benchmark", "PEERS", "PeerUnavailable", "make_upscaler", "load_hr",
           "write_tables", "shared_dir", "load_pairs", "score_pairs", "split_ensemble",
           "SCORE_VERSION"]

SCORE_VERSION = 2  # bump when the protocol or the scoring code changes: old cache rows expire

# OpenCV dnn_superres peers: registry-style name -> (algorithm, file prefix)
PEERS = {
    "opencv-espcn": ("espcn", "ESPCN"),
    "opencv-fsrcnn": ("fsrcnn", "FSRCNN"),
    "opencv-fsrcnn-small": ("fsrcnn", "FSRCNN-small"),
}

ArrayFn = Callable[[np.ndarray], np.ndarray]

ENSEMBLE_SUFFIX = "+"
"""``span+`` is ``span`` with the x8 geometric self-ensemble (``ensemble.py``), EDSR+'s naming:
its rows sit beside the single-pass ones and never stand in for them."""


def split_ensemble(name: str) -> tuple[str, bool]:
    """'span+' -> ('span', True); 'span' -> ('span', False)."""
    if name.endswith(ENSEMBLE_SUFFIX) and name not in PEERS:
        return name[: -len(ENSEMBLE_SUFFIX)], True
    return name, False


@dataclass
class BenchRow:
    model: str
    scale: int
    dataset: str
    psnr: float
    ssim: float
    images: int
    params: int
    mpx_per_s: float
    trained: bool
    gmsd: float = float("nan")  # perceptual, lower is better (in the CSV/JSON and model cards)
    cached: bool = False  # reused from the score cache: speed is from the run that measured it
    # 1-minute load average when the row was measured: Mpx/s is wall clock on a machine
    # that other jobs share, so a speed read without its load misleads by up to 5x
    load: float = float("nan")
    # output megapixels the row scored: a table's speed over several sets is their total
    # pixels over their total seconds, which a mean of per-set speeds is not
    mpx: float = float("nan")
    track: str = "clean"  # the LR inputs: the protocol, or a degraded track (degrade.TRACKS)


def load_hr(path: Path) -> np.ndarray:
    """HR image as uint8: HxW for grayscale files, HxWx3 otherwise."""
    with Image.open(path) as im:
        if im.mode in ("L", "I;16", "1"):
            return np.asarray(im.convert("L"))
        return np.asarray(im.convert("RGB"))


class PeerUnavailable(RuntimeError):
    """An OpenCV peer that cannot run here, with the one-line reason: callers skip it (or stop
    with that line) instead of failing on OpenCV's multi-line C++ error text."""


def _opencv_failure(version: str, exc: Exception) -> str:
    """Why OpenCV could not load a peer. OpenCV 5's dnn engine no longer reads TensorFlow
    graphs (its readModel of a .pb fails in the ONNX importer), hence pyproject's opencv<5."""
    if _major(version) >= 5:
        return f"OpenCV {version} cannot read TensorFlow .pb models (needs opencv<5)"
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()] or [type(exc).__name__]
    detail = lines[0].split(" error: ", 1)[-1]
    return f"OpenCV {version} could not load the model: {detail}"


def _major(version: str) -> int:
    """4 for '4.14.0', 5 for '5.1.0-dev'; 0 when unreadable (then no 'needs opencv<5' claim)."""
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else 0


def _opencv_peer(name: str, scale: int) -> ArrayFn:
    algo, prefix = PEERS[name]
    what = f"OpenCV {prefix} peer unavailable"
    try:
        import cv2
    except ImportError:
        raise PeerUnavailable(f"{what}: OpenCV is not installed "
                              "(pip install 'opencv-contrib-python-headless<5')") from None
    if not hasattr(cv2, "dnn_superres"):
        raise PeerUnavailable(f"{what}: cv2.dnn_superres is missing (needs opencv-contrib)")
    path = shared_dir() / "peers" / "opencv-dnn-superres" / f"{prefix}_x{scale}.pb"
    if not path.is_file():
        raise PeerUnavailable(f"{what}: weights not found at {path} (set SRLAB_SHARED)")
    sr = cv2.dnn_superres.DnnSuperResImpl_create()
    try:
        sr.readModel(str(path))
        sr.setModel(algo, scale)
        sr.upsample(np.zeros((8, 8, 3), np.uint8))  # a dnn may fail only at its first pass
    except cv2.error as exc:
        raise PeerUnavailable(f"{what}: {_opencv_failure(cv2.__version__, exc)}") from None

    def run(img: np.ndarray) -> np.ndarray:
        if img.ndim == 2:
            out = sr.upsample(cv2.cvtColor(img, cv2.COLOR_GRAY2BGR))
            return cv2.cvtColor(out, cv2.COLOR_BGR2GRAY)
        out = sr.upsample(np.ascontiguousarray(img[..., ::-1]))
        return np.ascontiguousarray(out[..., ::-1])

    return run


def make_upscaler(name: str, scale: int, weights: str | None = None) -> tuple[ArrayFn, int, bool]:
    """(uint8 array -> uint8 array, parameter count, trained?) for a model or a peer;
    a trailing ``+`` on a model's name adds the self-ensemble. A peer that cannot run here
    raises ``PeerUnavailable`` with the reason in one line."""
    if name in PEERS:
        return _opencv_peer(name, scale), 0, True
    from srlab.api import load_model

    base, ensemble = split_ensemble(name)
    up = load_model(base, scale, weights=weights)
    if ensemble:
        up = up.self_ensembled()
    return up.upscale_array, up.params, up.trained


def load_pairs(ds: Path, scale: int,
               track: str | None = None) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(file name, LR, HR) for each image of a folder, by the protocol: modcrop + MATLAB
    bicubic, then the seeded damage of ``track`` (``degrade.TRACKS``) if one is named."""
    files = sorted(p for p in Path(ds).iterdir()
                   if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".tif"))
    if not files:
        raise FileNotFoundError(f"no images in {ds}")
    out = []
    for f in files:
        hr = modcrop(load_hr(f), scale)
        lr = imresize(hr, 1 / scale) if track is None else track_lr(hr, scale, track, f.name)
        out.append((f.name, lr, hr))
    return out


def score_pairs(fn: ArrayFn, pairs: list[tuple[np.ndarray, np.ndarray]],
                scale: int) -> tuple[list[Scores], float, int]:
    """Per-image scores of ``fn`` on (LR, HR) pairs, seconds spent in ``fn``, output pixels."""
    fn(pairs[0][0][:32, :32])  # warm-up: first-call allocations are not speed
    scores, seconds, pixels = [], 0.0, 0
    for lr, hr in pairs:
        t = time.perf_counter()
        sr = fn(lr)
        seconds += time.perf_counter() - t
        pixels += sr.shape[0] * sr.shape[1]
        scores.append(evaluate(sr, hr, scale=scale))
    return scores, seconds, pixels


def _model_identity(name: str, scale: int, weights: str | None) -> str | None:
    """What decides a model's scores: name, scale, architecture and tensor values (not the
    weights file's bytes, which change when ``srlab ship`` adds metrics). None: don't cache
    (a trainable model without weights is a random initialisation)."""
    h = hashlib.sha256(f"{name}|x{scale}".encode())
    if name in PEERS:
        path = shared_dir() / "peers" / "opencv-dnn-superres" / f"{PEERS[name][1]}_x{scale}.pb"
        if not path.is_file():
            return None
        h.update(path.read_bytes())
        return h.hexdigest()
    from srlab.zoo.registry import AUTO, get_spec
    from srlab.zoo.weights import read_weights, shipped_weights_path

    name = split_ensemble(name)[0]  # the hash above already tells 'span+' from 'span'
    if name == AUTO:  # its choice per image: both networks and the estimator's code
        from srlab.image import condition
        from srlab.zoo.registry import DENOISE_PAIR

        parts = [_model_identity(n, scale, None) for n in DENOISE_PAIR]
        if None in parts:
            return None
        h.update("|".join(parts).encode())
        h.update(condition.SOURCE)
        return h.hexdigest()
    if not get_spec(name).trainable:
        return h.hexdigest()
    path = Path(weights) if weights else shipped_weights_path(name, scale)
    if not path.is_file():
        return None
    tensors, meta = read_weights(path)
    h.update(json.dumps(meta.kwargs if meta else {}, sort_keys=True, default=str).encode())
    for key in sorted(tensors):
        h.update(key.encode())
        h.update(tensors[key].contiguous().numpy().tobytes())
    return h.hexdigest()


def _dataset_identity(ds: Path) -> str:
    files = sorted(p for p in Path(ds).iterdir() if p.is_file())
    return hashlib.sha256(
        "|".join(f"{p.name}:{p.stat().st_size}" for p in files).encode()).hexdigest()


def _cached_row(entry: Path) -> BenchRow | None:
    """The cached row, or None when absent or unreadable (then it is measured again)."""
    try:
        return BenchRow(**{**json.loads(entry.read_text()), "cached": True})
    except (OSError, ValueError, TypeError):
        return None


def run_benchmark(
    models: list[str],
    scales: list[int],
    datasets: list[Path],
    *,
    weights: dict[str, str] | None = None,
    cache: Path | None = None,
    refresh: bool = False,
    track: str | None = None,
    log: Callable[[str], None] = print,
) -> list[BenchRow]:
    """Score every (model, scale, dataset) combination; images are loaded once per scale,
    and only when some model's row is not in ``cache`` (a folder of JSON rows).

    ``refresh`` measures every row again and stores it over the cached one, so a later
    cached run (e.g. tools/update_readme.sh) repeats the fresh figures, not older ones.
    ``track`` scores on that degraded track's LR inputs instead of the protocol's.
    """
    if track is not None and track not in TRACKS:
        raise ValueError(f"unknown degradation track '{track}' (known: {', '.join(TRACKS)})")
    rows: list[BenchRow] = []
    unavailable: dict[tuple[str, int], str] = {}  # peers this OpenCV cannot run: said once
    for scale in scales:
        for ds in datasets:
            pairs: list[tuple[np.ndarray, np.ndarray]] | None = None
            ds_id = _dataset_identity(ds) if cache is not None else ""
            for name in models:
                given = weights or {}
                w = given.get(name, given.get(split_ensemble(name)[0]))
                model_id = _model_identity(name, scale, w) if cache is not None else None
                entry = None
                if model_id is not None:
                    tag = "" if track is None else f"|{track}"  # clean keys stay as they were
                    key = hashlib.sha256(f"{SCORE_VERSION}|{model_id}|{ds_id}{tag}".encode())
                    entry = cache / f"{key.hexdigest()[:32]}.json"
                row = _cached_row(entry) if entry is not None and not refresh else None
                if row is None:
                    if (name, scale) in unavailable:
                        continue
                    try:
                        fn, params, trained = make_upscaler(name, scale, w)
                    except PeerUnavailable as exc:
                        unavailable[(name, scale)] = str(exc)
                        continue
                    if pairs is None:
                        pairs = [(lr, hr) for _, lr, hr in load_pairs(Path(ds), scale, track)]
                    scores, seconds, pixels = score_pairs(fn, pairs, scale)
                    row = BenchRow(model=name, scale=scale, dataset=Path(ds).name,
                                   psnr=float(np.mean([sc.psnr for sc in scores])),
                                   ssim=float(np.mean([sc.ssim for sc in scores])),
                                   gmsd=float(np.mean([sc.gmsd for sc in scores])),
                                   images=len(pairs), params=params,
                                   mpx_per_s=pixels / 1e6 / max(seconds, 1e-9),
                                   trained=trained, load=load_average(), mpx=pixels / 1e6,
                                   track=track or "clean")
                    if entry is not None:
                        entry.parent.mkdir(parents=True, exist_ok=True)
                        tmp = entry.with_suffix(".tmp")
                        tmp.write_text(json.dumps({**asdict(row), "cached": False}))
                        tmp.replace(entry)
                rows.append(row)
                log(f"x{scale} {row.dataset:<10} {(track or '') + ' ' * bool(track)}"
                    f"{name:<22} {row.psnr:7.3f} dB  "
                    f"{row.ssim:.4f}  {row.mpx_per_s:8.2f} Mpx/s{'  (cached)' * row.cached}")
    if not rows and unavailable:  # nothing else was asked for: the reason is the error
        raise PeerUnavailable(next(iter(unavailable.values())))
    for (name, scale), why in unavailable.items():
        log(f"skipped {name} x{scale}: {why}")
    return rows


def visual_strip(models: list[str], scale: int, dataset: Path, out: Path, *,
                 track: str | None = None, images: int = 3, crop: int = 128) -> Path:
    """A PNG grid, one row per image: LR (pixel-doubled) | each model | HR, centre crops of
    ``crop`` HR pixels. The LR inputs are the benchmark's own (``load_pairs``), so the
    strip shows exactly what the table scores."""
    from PIL import Image, ImageDraw

    pairs = load_pairs(Path(dataset), scale, track)[:images]
    fns = [make_upscaler(m, scale)[0] for m in models]
    labels = ["LR input", *models, "HR"]
    rows = []
    for _, lr, hr in pairs:
        h, w = hr.shape[:2]
        c = min(crop, h, w) // scale * scale
        y, x = (h - c) // 2 // scale * scale, (w - c) // 2 // scale * scale
        def rgb(a: np.ndarray) -> np.ndarray:
            return np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else a
        lr_c = lr[y // scale : (y + c) // scale, x // scale : (x + c) // scale]
        cells = [np.kron(rgb(lr_c), np.ones((scale, scale, 1), dtype=np.uint8))]
        cells += [rgb(fn(lr))[y : y + c, x : x + c] for fn in fns]
        cells.append(rgb(hr)[y : y + c, x : x + c])
        rows.append(np.concatenate([np.pad(a, ((0, 0), (0, 2), (0, 0)), constant_values=255)
                                    for a in cells], axis=1))
    width = max(r.shape[1] for r in rows)
    grid = np.concatenate([np.pad(r, ((0, 2), (0, width - r.shape[1]), (0, 0)),
                                  constant_values=255) for r in rows], axis=0)
    head = Image.new("RGB", (grid.shape[1], 14), "white")
    draw = ImageDraw.Draw(head)
    cell = grid.shape[1] // len(labels)
    for i, text in enumerate(labels):
        draw.text((i * cell + 2, 1), text, fill="black")
    img = Image.new("RGB", (grid.shape[1], grid.shape[0] + 14), "white")
    img.paste(head, (0, 0))
    img.paste(Image.fromarray(grid), (0, 14))
    out.parent.mkdir(parents=True, exist_ok=True)
    img.save(out, optimize=True)
    return out


def load_average() -> float:
    """The 1-minute load average, NaN where the platform has none (Windows has no
    os.getloadavg at all, hence AttributeError beside OSError)."""
    try:
        return float(os.getloadavg()[0])
    except (OSError, AttributeError):
        return float("nan")


def _speed(mpx_per_s: float) -> str:
    """One decimal, or two significant digits below 1 so slow nets do not read as 0.0
    (0.996 rounds up to 1.0, not to a bare "1")."""
    text = f"{mpx_per_s:.1f}" if mpx_per_s >= 1 else f"{mpx_per_s:.2g}"
    return text if "." in text or "e" in text else f"{text}.0"


def _counted(rows: list[BenchRow]) -> bool:
    """Whether every row carries its pixel count (rows cached before ``mpx`` have NaN)."""
    return all(r.mpx == r.mpx for r in rows)


def _overall_speed(rows: list[BenchRow]) -> float:
    """Total output megapixels over total seconds; rows cached before they carried their
    pixel count fall back to the mean of their speeds (``_speed_span`` says which)."""
    if _counted(rows):
        seconds = sum(r.mpx / r.mpx_per_s for r in rows if r.mpx_per_s > 0)
        return sum(r.mpx for r in rows) / seconds if seconds > 0 else 0.0
    return float(np.mean([r.mpx_per_s for r in rows]))


def _speed_span(rows: list[BenchRow]) -> str:
    if _counted(rows):
        return "all sets together"
    return "all sets together (the mean of per-set speeds for older cache entries)"


def markdown_table(rows: list[BenchRow], command: str | None = None, *,
                   gmsd: bool = False) -> str:
    """PSNR/SSIM (and GMSD if asked) per dataset in columns; one line per (model, scale).

    GMSD is the perceptual column a GAN needs: its PSNR drops by design, so PSNR alone
    cannot say whether the adversarial phase helped or hurt.
    """
    datasets = list(dict.fromkeys(r.dataset for r in rows))
    degraded = any(r.track != "clean" for r in rows)  # then one column says which LR input
    keys = list(dict.fromkeys((r.track, r.scale, r.model) for r in rows))
    by = {(r.track, r.scale, r.model, r.dataset): r for r in rows}
    head = ("| LR input " * degraded + "| model | scale | params | " + " | ".join(datasets)
            + " | Mpx/s |")
    lines = [head, "|" + "---|" * (4 + degraded + len(datasets))]
    for track, scale, model in keys:
        got = [by.get((track, scale, model, d)) for d in datasets]
        mine = [r for r in got if r is not None]
        cells = ["-" if r is None else f"{r.psnr:.2f} / {r.ssim:.4f}"
                 + (f" / {r.gmsd:.4f}" if gmsd else "") for r in got]
        label = model if mine[0].trained else f"{model} (untrained)"
        lines.append(f"| {track} " * degraded + f"| {label} | x{scale} | {mine[0].params:,} | "
                     + " | ".join(cells) + f" | {_speed(_overall_speed(mine))} |")
    reused = sorted({f"{r.model} x{r.scale}" for r in rows if r.cached})
    measures = "PSNR (dB) / SSIM / GMSD (lower is better)" if gmsd else "PSNR (dB) / SSIM"
    damaged = list(dict.fromkeys(r.track for r in rows if r.track != "clean"))
    lr = "MATLAB-bicubic LR" if not damaged else (
        "LR: MATLAB bicubic (`clean`), then for " + ", ".join(f"`{t}`" for t in damaged)
        + " the seeded damage of degrade.TRACKS")
    note = f"\n\n{measures} on Y, border = scale, {lr}. Made by `{command}`." if command else ""
    if reused:  # its own paragraph when there is no command line to follow
        which = "Every row" if all(r.cached for r in rows) else f"Rows of {', '.join(reused)}"
        note += (("\n\n" if not note else " ") + f"{which} came from the score cache (same "
                 "tensors, same images); their Mpx/s is from the run that measured them.")
    loads = [r.load for r in rows if r.load == r.load]  # NaN: an older cache entry
    if loads:
        band = f"{min(loads):.1f}" if min(loads) == max(loads) else \
            f"{min(loads):.1f}-{max(loads):.1f}"
        older = " (not recorded for older cache entries)" if len(loads) < len(rows) else ""
        note += (("\n\n" if not note else " ") + "Mpx/s is output megapixels over "
                 f"wall-clock seconds, {_speed_span(rows)}; rows were timed at a "
                 f"1-minute load average of {band} on {os.cpu_count()} CPUs{older} (other "
                 "work on the CPUs lowers it): for speed, compare models in one interleaved "
                 "`srlab bench` run.")
    return "\n".join(lines) + note


def write_tables(rows: list[BenchRow], out_dir: Path, command: str, *,
                 gmsd: bool = False) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "benchmark.json").write_text(
        json.dumps({"command": command, "rows": [asdict(r) for r in rows]}, indent=2))
    with open(out_dir / "benchmark.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(asdict(rows[0])))
        w.writeheader()
        w.writerows(asdict(r) for r in rows)
    md = out_dir / "benchmark.md"
    md.write_text(markdown_table(rows, command, gmsd=gmsd) + "\n")
    return md


def command_line() -> str:
    return "srlab " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def update_readme(readme: Path, section: str, text: str) -> None:
    """Replace the block between ``<!-- srlab:NAME -->`` and ``<!-- /srlab:NAME -->``."""
    begin, end = f"<!-- srlab:{section} -->", f"<!-- /srlab:{section} -->"
    content = readme.read_text()
    if begin not in content or end not in content:
        raise ValueError(f"{readme} has no '{begin}' ... '{end}' markers")
    head, rest = content.split(begin, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(f"{head}{begin}\n{text.strip()}\n{end}{tail}")

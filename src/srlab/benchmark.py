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

from .metrics import Scores, evaluate
from .resize import imresize, modcrop

__all__ = ["BenchRow", "run_benchmark", "PEERS", "make_upscaler", "load_hr", "write_tables",
           "shared_dir", "load_pairs", "score_pairs", "split_ensemble", "SCORE_VERSION"]

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


def shared_dir() -> Path:
    return Path(os.environ.get("SRLAB_SHARED", "../shared"))


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


def load_hr(path: Path) -> np.ndarray:
    """HR image as uint8: HxW for grayscale files, HxWx3 otherwise."""
    with Image.open(path) as im:
        if im.mode in ("L", "I;16", "1"):
            return np.asarray(im.convert("L"))
        return np.asarray(im.convert("RGB"))


def _opencv_peer(name: str, scale: int) -> ArrayFn:
    try:
        import cv2
    except ImportError:
        raise RuntimeError(f"{name} needs OpenCV: pip install opencv-contrib-python-headless") \
            from None
    if not hasattr(cv2, "dnn_superres"):
        raise RuntimeError(f"{name} needs opencv-contrib (cv2.dnn_superres is missing)")
    algo, prefix = PEERS[name]
    path = shared_dir() / "peers" / "opencv-dnn-superres" / f"{prefix}_x{scale}.pb"
    if not path.is_file():
        raise RuntimeError(f"{name}: weights not found at {path} (set SRLAB_SHARED)")
    sr = cv2.dnn_superres.DnnSuperResImpl_create()
    sr.readModel(str(path))
    sr.setModel(algo, scale)

    def run(img: np.ndarray) -> np.ndarray:
        if img.ndim == 2:
            out = sr.upsample(cv2.cvtColor(img, cv2.COLOR_GRAY2BGR))
            return cv2.cvtColor(out, cv2.COLOR_BGR2GRAY)
        out = sr.upsample(np.ascontiguousarray(img[..., ::-1]))
        return np.ascontiguousarray(out[..., ::-1])

    return run


def make_upscaler(name: str, scale: int, weights: str | None = None) -> tuple[ArrayFn, int, bool]:
    """(uint8 array -> uint8 array, parameter count, trained?) for a model or a peer;
    a trailing ``+`` on a model's name adds the self-ensemble."""
    if name in PEERS:
        return _opencv_peer(name, scale), 0, True
    from .upscaler import load_model

    base, ensemble = split_ensemble(name)
    up = load_model(base, scale, weights=weights)
    if ensemble:
        up = up.self_ensembled()
    return up.upscale_array, up.params, up.trained


def load_pairs(ds: Path, scale: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(file name, LR, HR) for each image of a folder, by the protocol: modcrop + MATLAB bicubic."""
    files = sorted(p for p in Path(ds).iterdir()
                   if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".tif"))
    if not files:
        raise FileNotFoundError(f"no images in {ds}")
    out = []
    for f in files:
        hr = modcrop(load_hr(f), scale)
        out.append((f.name, imresize(hr, 1 / scale), hr))
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
    from .models.registry import get_spec
    from .weights import read_weights, shipped_weights_path

    name = split_ensemble(name)[0]  # the hash above already tells 'span+' from 'span'
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
    log: Callable[[str], None] = print,
) -> list[BenchRow]:
    """Score every (model, scale, dataset) combination; images are loaded once per scale,
    and only when some model's row is not in ``cache`` (a folder of JSON rows).

    ``refresh`` measures every row again and stores it over the cached one, so a later
    cached run (e.g. tools/update_readme.sh) repeats the fresh figures, not older ones.
    """
    rows: list[BenchRow] = []
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
                    key = hashlib.sha256(f"{SCORE_VERSION}|{model_id}|{ds_id}".encode())
                    entry = cache / f"{key.hexdigest()[:32]}.json"
                row = _cached_row(entry) if entry is not None and not refresh else None
                if row is None:
                    if pairs is None:
                        pairs = [(lr, hr) for _, lr, hr in load_pairs(Path(ds), scale)]
                    fn, params, trained = make_upscaler(name, scale, w)
                    scores, seconds, pixels = score_pairs(fn, pairs, scale)
                    row = BenchRow(model=name, scale=scale, dataset=Path(ds).name,
                                   psnr=float(np.mean([sc.psnr for sc in scores])),
                                   ssim=float(np.mean([sc.ssim for sc in scores])),
                                   gmsd=float(np.mean([sc.gmsd for sc in scores])),
                                   images=len(pairs), params=params,
                                   mpx_per_s=pixels / 1e6 / max(seconds, 1e-9),
                                   trained=trained, load=load_average(), mpx=pixels / 1e6)
                    if entry is not None:
                        entry.parent.mkdir(parents=True, exist_ok=True)
                        tmp = entry.with_suffix(".tmp")
                        tmp.write_text(json.dumps({**asdict(row), "cached": False}))
                        tmp.replace(entry)
                rows.append(row)
                log(f"x{scale} {row.dataset:<10} {name:<22} {row.psnr:7.3f} dB  "
                    f"{row.ssim:.4f}  {row.mpx_per_s:8.2f} Mpx/s{'  (cached)' * row.cached}")
    return rows


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
    keys = list(dict.fromkeys((r.model, r.scale) for r in rows))
    by = {(r.model, r.scale, r.dataset): r for r in rows}
    head = "| model | scale | params | " + " | ".join(datasets) + " | Mpx/s |"
    lines = [head, "|" + "---|" * (4 + len(datasets))]
    for model, scale in keys:
        got = [by.get((model, scale, d)) for d in datasets]
        mine = [r for r in got if r is not None]
        cells = ["-" if r is None else f"{r.psnr:.2f} / {r.ssim:.4f}"
                 + (f" / {r.gmsd:.4f}" if gmsd else "") for r in got]
        label = model if mine[0].trained else f"{model} (untrained)"
        lines.append(f"| {label} | x{scale} | {mine[0].params:,} | " + " | ".join(cells)
                     + f" | {_speed(_overall_speed(mine))} |")
    reused = sorted({f"{r.model} x{r.scale}" for r in rows if r.cached})
    measures = "PSNR (dB) / SSIM / GMSD (lower is better)" if gmsd else "PSNR (dB) / SSIM"
    note = (f"\n\n{measures} on Y, border = scale, MATLAB-bicubic LR. Made by `{command}`."
            if command else "")
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

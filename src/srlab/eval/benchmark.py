"""``srlab benchmark``: quality by the standard protocol and CPU speed, in one run.

For every HR image: modcrop to the scale, LR by MATLAB bicubic, upscale, Y-channel (BT.601)
PSNR/SSIM with ``scale`` border pixels cropped. Grayscale images stay single-channel and are
scored on their gray values, as the published MATLAB evaluation does (this is what makes
our Set14 bicubic figure match). Speed is output megapixels per second over the same
images, timed in the same process for every model (``speed.timed``, ``srlab bench``'s
timer), so ratios between models are fair even on a noisy machine. Peers (OpenCV's
``dnn_superres`` networks, Real-ESRGAN and the published SPAN through ncnn) come from the
``peers`` package; the sets are loaded by
``image.datasets.load_pairs`` and the rows written by ``tables.py``.

Scores are a pure function of (model tensors, scale, images), so they can be kept in a score
cache: a row is reused only when the model's tensors and architecture, the scale, the image
files and the scoring code version all match. That lets ``srlab ship`` and the README tables
share one measurement of a slow model instead of re-running it; a reused row keeps the
speed of the run that measured it (marked in the table note). Under the rows, every image's
scores are cached too (``imagecache``), so a row of many hours (Real-ESRGAN x4plus on
Urban100) is computed in pieces: ``deadline`` (``srlab benchmark --budget``) stops starting
new images, and the same command later measures only the images still missing.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from srlab.eval import imagecache
from srlab.eval.imagecache import ImageScore
from srlab.eval.peers import PEERS, PeerUnavailable, peer_files
from srlab.eval.runners import ArrayFn, make_upscaler, split_ensemble
from srlab.eval.speed import load_average, timed
from srlab.image.datasets import benchmark_files, load_pairs
from srlab.image.degrade import TRACKS
from srlab.image.metrics import Scores, evaluate
from srlab.image.niqe import NiqeModel, niqe

__all__ = ["BenchRow", "run_benchmark", "score_pairs", "visual_strip", "SCORE_VERSION",
           "BenchmarkIncomplete", "score_one"]

SCORE_VERSION = 2  # bump when the protocol or the scoring code changes: old cache rows expire


"""``span+`` is ``span`` with the x8 geometric self-ensemble (``ensemble.py``), EDSR+'s naming:
its rows sit beside the single-pass ones and never stand in for them."""


class BenchmarkIncomplete(RuntimeError):
    """The time budget ran out before every row was scored. The images scored so far are in
    the cache; the same command, run again, continues where this one stopped."""


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
    # no-reference NIQE of the outputs (image.niqe; border = scale), only when asked, and
    # the digest of the pristine model it was scored against (a cached row needs the same)
    niqe: float = float("nan")
    niqe_model: str = ""


def score_one(fn: ArrayFn, lr: np.ndarray, hr: np.ndarray, scale: int, *,
              niqe_model: NiqeModel | None = None) -> tuple[Scores, float, int]:
    """One image: its scores (NIQE too with ``niqe_model``, outside the timing), the seconds
    spent in ``fn`` and the output pixels."""
    sr, took = timed(fn, lr)
    score = evaluate(sr, hr, scale=scale)
    if niqe_model is not None:
        score = replace(score, niqe=niqe(sr, niqe_model, crop_border=scale))
    return score, took, sr.shape[0] * sr.shape[1]


def score_pairs(fn: ArrayFn, pairs: list[tuple[np.ndarray, np.ndarray]],
                scale: int, *, niqe_model: NiqeModel | None = None,
                ) -> tuple[list[Scores], float, int]:
    """Per-image scores of ``fn`` on (LR, HR) pairs, seconds spent in ``fn``, output pixels;
    with ``niqe_model`` the scores carry the outputs' NIQE too (outside the timing)."""
    fn(pairs[0][0][:32, :32])  # warm-up: first-call allocations are not speed
    scores, seconds, pixels = [], 0.0, 0
    for lr, hr in pairs:
        score, took, px = score_one(fn, lr, hr, scale, niqe_model=niqe_model)
        seconds += took
        pixels += px
        scores.append(score)
    return scores, seconds, pixels


def _model_identity(name: str, scale: int, weights: str | None) -> str | None:
    """What decides a model's scores: name, scale, architecture and tensor values (not the
    weights file's bytes, which change when ``srlab ship`` adds metrics). None: don't cache
    (a trainable model without weights is a random initialisation)."""
    h = hashlib.sha256(f"{name}|x{scale}".encode())
    if name in PEERS:
        try:
            paths = peer_files(name, scale)
        except PeerUnavailable:
            return None
        if not all(p.is_file() for p in paths):
            return None
        for path in paths:
            h.update(path.read_bytes())
        if PEERS[name].family == "ncnn":  # how the program's feeding is reproduced
            from srlab.eval.peers.ncnn import FEED_VERSION, PREPADDING

            h.update(f"|feed{FEED_VERSION}|pad{PREPADDING}".encode())
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
        h.update(condition.SOURCE)  # the estimator's code and weights, and which one decides
        h.update(b"|learned" if condition.learned_enabled() else b"|hand")
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
    if get_spec(name).guided_chroma:  # the colour moves the RGB rounding, so Y, a little
        from srlab.runtime.upscaler import GUIDED_CHROMA

        h.update(repr(GUIDED_CHROMA).encode())
    return h.hexdigest()


def _backend(name: str) -> str:
    """What runs the model in a benchmark: torch for srlab's (``make_upscaler``), the peer's
    own runtime (OpenCV, ncnn) for a peer."""
    return PEERS[name].family if name in PEERS else "torch"


def _row_from_images(name: str, scale: int, dataset: str, track: str | None,
                     entries: list[ImageScore], niqe_model: NiqeModel | None,
                     cached: bool) -> BenchRow:
    """A row from its images' scores: means of the scores; speed = total output pixels over
    total seconds (each image timed in the run that measured it); load = the highest of
    those runs' load averages (a row measured in pieces says its worst)."""
    pixels = sum(e.pixels for e in entries)
    seconds = sum(e.seconds for e in entries)
    loads = [e.load for e in entries if not math.isnan(e.load)]
    return BenchRow(model=name, scale=scale, dataset=dataset,
                    psnr=float(np.mean([e.psnr for e in entries])),
                    ssim=float(np.mean([e.ssim for e in entries])),
                    gmsd=float(np.mean([e.gmsd for e in entries])),
                    images=len(entries), params=entries[0].params,
                    mpx_per_s=pixels / 1e6 / max(seconds, 1e-9),
                    trained=entries[0].trained, load=max(loads) if loads else float("nan"),
                    mpx=pixels / 1e6, track=track or "clean",
                    niqe=float(np.mean([e.niqe for e in entries])),
                    niqe_model=niqe_model.digest if niqe_model else "", cached=cached)


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
    niqe_model: NiqeModel | None = None,
    deadline: float | None = None,
    log: Callable[[str], None] = print,
) -> list[BenchRow]:
    """Score every (model, scale, dataset) combination; images are loaded once per scale,
    and only when some model's row is not in ``cache`` (a folder of JSON rows).

    ``refresh`` measures every row again and stores it over the cached one, so a later
    cached run (e.g. tools/update_readme.sh) repeats the fresh figures, not older ones.
    ``track`` scores on that degraded track's LR inputs instead of the protocol's.
    ``niqe_model`` adds the outputs' NIQE; a cached row without it (or scored against
    another pristine model) is measured again.

    Below the rows, every image's scores are cached as soon as they are measured
    (``imagecache``), so a row missing from the cache costs only its missing images.
    ``deadline`` (a ``time.monotonic()`` value) stops starting new images once passed: the
    rows it left unfinished raise ``BenchmarkIncomplete`` at the end (their images so far
    cached; the same call continues them).
    """
    if track is not None and track not in TRACKS:
        raise ValueError(f"unknown degradation track '{track}' (known: {', '.join(TRACKS)})")
    rows: list[BenchRow] = []
    unavailable: dict[tuple[str, int], str] = {}  # peers this OpenCV cannot run: said once
    unfinished: list[str] = []  # rows the deadline cut short: "model x4 Set14: 5 of 14"
    niqe_digest = niqe_model.digest if niqe_model is not None else None
    for scale in scales:
        for ds in datasets:
            names = [f.name for f in benchmark_files(ds)]
            loaded: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # shared by the models
            ds_id = _dataset_identity(ds) if cache is not None else ""
            digests: dict[str, str] = {}  # image file hashes, once per set
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
                if row is not None and niqe_model is not None \
                        and row.niqe_model != niqe_model.digest:
                    row = None
                if row is None:
                    if (name, scale) in unavailable:
                        continue
                    keys: dict[str, str] = {}
                    done: dict[str, ImageScore] = {}
                    if model_id is not None:  # the per-image layer of the cache
                        digests = digests or {f.name: imagecache.file_digest(f)
                                              for f in benchmark_files(ds)}
                        keys = {n: imagecache.image_key(
                            version=SCORE_VERSION, model_id=model_id, backend=_backend(name),
                            image=digests[n], name=n, scale=scale, track=track) for n in names}
                        if not refresh:
                            for n, k in keys.items():
                                if (got := imagecache.load(cache, k, niqe_digest)) is not None:
                                    done[n] = got
                    missing = [n for n in names if n not in done]
                    if missing:
                        try:
                            fn, params, trained = make_upscaler(name, scale, w)
                        except PeerUnavailable as exc:
                            unavailable[(name, scale)] = str(exc)
                            continue
                        if any(n not in loaded for n in missing):
                            loaded.update((n, (lr, hr)) for n, lr, hr in load_pairs(
                                Path(ds), scale, track,
                                names={n for n in missing if n not in loaded}))
                        warm = False
                        for n in missing:
                            if deadline is not None and time.monotonic() >= deadline:
                                break
                            lr, hr = loaded[n]
                            if not warm:  # first-call allocations are not speed
                                fn(lr[:32, :32])
                                warm = True
                            score, took, px = score_one(fn, lr, hr, scale,
                                                        niqe_model=niqe_model)
                            done[n] = ImageScore(
                                psnr=score.psnr, ssim=score.ssim, gmsd=score.gmsd,
                                seconds=took, pixels=px, load=load_average(), params=params,
                                trained=trained, niqe=score.niqe, niqe_model=niqe_digest or "")
                            if keys:
                                imagecache.store(cache, keys[n], done[n])
                    if len(done) < len(names):  # stopped by the deadline
                        fresh = sum(1 for n in missing if n in done)
                        unfinished.append(f"{name} x{scale} {Path(ds).name}"
                                          f"{' ' + track if track else ''}: "
                                          f"{len(done)} of {len(names)} images")
                        log(f"x{scale} {Path(ds).name:<10} {(track or '') + ' ' * bool(track)}"
                            f"{name:<22} {len(done)} of {len(names)} images scored "
                            f"({fresh} in this run): stopped at the time budget")
                        continue
                    row = _row_from_images(name, scale, Path(ds).name, track,
                                           [done[n] for n in names], niqe_model,
                                           cached=not missing)
                    if entry is not None:
                        entry.parent.mkdir(parents=True, exist_ok=True)
                        tmp = entry.with_suffix(".tmp")
                        tmp.write_text(json.dumps({**asdict(row), "cached": False}))
                        tmp.replace(entry)
                    reused = len(names) - len(missing) if missing else 0
                else:
                    reused = 0
                rows.append(row)
                log(f"x{scale} {row.dataset:<10} {(track or '') + ' ' * bool(track)}"
                    f"{name:<22} {row.psnr:7.3f} dB  "
                    f"{row.ssim:.4f}  {row.mpx_per_s:8.2f} Mpx/s"
                    + (f"  NIQE {row.niqe:.3f}" if niqe_model is not None else "")
                    + "  (cached)" * row.cached
                    + (f"  ({reused} of {row.images} images cached)" if reused else ""))
    if not rows and unavailable and not unfinished:  # nothing else was asked: the reason
        raise PeerUnavailable(next(iter(unavailable.values())))  # is the error
    for (name, scale), why in unavailable.items():
        log(f"skipped {name} x{scale}: {why}")
    if unfinished:
        raise BenchmarkIncomplete(
            "stopped at the time budget with " + "; ".join(unfinished) + " scored (cached): "
            "run the same command again to continue")
    return rows


def visual_strip(models: list[str], scale: int, dataset: Path, out: Path, *,
                 track: str | None = None, images: int = 3, crop: int = 128) -> Path:
    """A PNG grid, one row per image: LR (pixel-doubled) | each model | HR, centre crops of
    ``crop`` HR pixels. The LR inputs are the benchmark's own (``load_pairs``), so the
    strip shows exactly what the table scores."""
    from srlab.eval.strips import draw_grid, label

    pairs = load_pairs(Path(dataset), scale, track)[:images]
    fns = [make_upscaler(m, scale)[0] for m in models]
    labels = ["LR input", *[label(m) for m in models], "HR"]
    rows = []
    for _, lr, hr in pairs:
        h, w = hr.shape[:2]
        c = min(crop, h, w) // scale * scale
        y, x = (h - c) // 2 // scale * scale, (w - c) // 2 // scale * scale
        lr_c = lr[y // scale : (y + c) // scale, x // scale : (x + c) // scale]
        if lr_c.ndim == 2:
            lr_c = lr_c[..., None]
        cells = [np.kron(lr_c, np.ones((scale, scale, 1), dtype=np.uint8))]
        cells += [fn(lr)[y : y + c, x : x + c] for fn in fns]
        cells.append(hr[y : y + c, x : x + c])
        rows.append(cells)
    return draw_grid(rows, labels, out)

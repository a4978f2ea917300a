"""``srlab bench``: CPU throughput of srlab's models beside classical and OpenCV peers.

Why a separate speed benchmark (``srlab benchmark`` already reports Mpx/s): that figure is
a by-product of scoring small test images. This one answers "how fast on a real photo":
one realistic LR input (default 480x320), every backend (PyTorch, ONNX Runtime), and the
peers a user would otherwise reach for — bicubic in PIL and OpenCV, OpenCV's dnn_superres
ESPCN and FSRCNN — all timed **in the same run**, with the same thread count, and reported
as ratios to OpenCV ESPCN, so the ratios stay meaningful on a noisy shared machine even
when the absolute numbers drift.

Noise control: every runner is warmed up, then timed ``repeats`` times *interleaved*
(round-robin, rotating the start) so slow phases of the machine hit all runners alike;
the median is reported. Throughput is output megapixels per second.

``--store`` also scores each backend's PSNR against torch float32 (Set5 and a slice of
Urban100, evaluation only) and writes both into ``runtime.measured``' store, which is what
``--backend auto`` picks from on this CPU.

Extra sections: time vs image size (should be linear, i.e. flat Mpx/s), 1 vs 2 threads,
and (``--huge``) an 8000x6000 x2 upscale in a subprocess whose peak RSS is measured, to
prove tiles stream: the output (576 MB of uint8) is the only full-size array.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from srlab.runtime.cpu import cpu_info, native_bf16, probe_bf16

__all__ = ["PEERS_SCORED", "Runner", "SpeedRow", "default_models", "default_backends",
           "make_runners", "timed", "time_interleaved", "load_average", "native_bf16",
           "peak_rss_gib", "procedural_image", "suggested_backends", "accuracy_scores",
           "accuracy_deltas", "store_rows", "cpu_note", "run_speed", "huge_run",
           "speed_markdown", "write_speed", "lr_image"]

ArrayFn = Callable[[np.ndarray], np.ndarray]
REFERENCE = "opencv-espcn"
PEER_LABELS = {"bicubic-pil": "bicubic (PIL)", "bicubic-cv2": "bicubic (OpenCV cv2.resize)",
               "opencv-espcn": "OpenCV dnn_superres ESPCN", "opencv-fsrcnn":
               "OpenCV dnn_superres FSRCNN"}
FLAGSHIPS = ("span-fast", "span")
PEERS_SCORED = ("bicubic-pil", "opencv-espcn", "opencv-fsrcnn")  # on the Pareto chart


@dataclass
class Runner:
    label: str  # unique row label, e.g. "span-fast [onnx]"
    model: str
    backend: str  # torch | onnx | peer
    scale: int
    fn: ArrayFn = field(repr=False)
    trained: bool = True
    params: int = 0


@dataclass
class SpeedRow:
    section: str  # main | sizes | threads
    label: str
    model: str
    backend: str
    scale: int
    threads: int
    lr_size: tuple[int, int]  # width, height
    out_mpx: float
    median_s: float
    mpx_per_s: float
    trained: bool
    params: int
    repeats: int
    ratio_to_espcn: float | None = None


# --------------------------------------------------------------------------------------------
# inputs and runners
# --------------------------------------------------------------------------------------------


def lr_image(width: int, height: int) -> np.ndarray:
    """A realistic uint8 RGB LR input: the bundled photo resized to ``width`` x ``height``
    (content hardly matters for speed, but a photo avoids flat-image shortcuts)."""
    from PIL import Image

    from srlab.image.imageio import SAMPLE_IMAGE

    with Image.open(SAMPLE_IMAGE) as im:
        return np.asarray(im.convert("RGB").resize((width, height), Image.BICUBIC))


def default_models() -> list[str]:
    """The flagships plus every model that ships weights (src/srlab/weights/*.safetensors)."""
    from srlab.zoo.catalog import shipped_models

    return list(dict.fromkeys([*FLAGSHIPS, *sorted(shipped_models())]))


def default_backends() -> list[str]:
    """torch, onnx and onnx-int8 if onnxruntime is installed, torch-bf16 if the CPU lists
    a bf16 flag (timed here whether or not ``native_bf16`` measured it faster: the table is
    where a user sees the verdict), openvino if installed."""
    from srlab.runtime.measured import available_backends

    bf16 = cpu_info().bf16_flags or native_bf16()
    return [b for b in available_backends() if b != "torch-bf16" or bf16]


def cpu_note() -> str:
    """One line: the CPU, its bf16/int8 flags and the measured bf16 verdict."""
    return f"CPU {cpu_info().describe()}; native bfloat16 {probe_bf16().describe()}"


def _with_threads(fn: ArrayFn, threads: int) -> ArrayFn:
    """Set torch's and OpenCV's thread counts before every call, so interleaved runners with
    different counts do not leak their setting into each other."""
    import torch

    def run(img: np.ndarray) -> np.ndarray:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        try:
            import cv2

            cv2.setNumThreads(threads)
        except ImportError:
            pass
        return fn(img)

    return run


def _peer_fn(name: str, scale: int) -> ArrayFn:
    if name == "bicubic-pil":
        from PIL import Image

        def pil(img: np.ndarray) -> np.ndarray:
            h, w = img.shape[:2]
            return np.asarray(Image.fromarray(img).resize((w * scale, h * scale),
                                                          Image.BICUBIC))

        return pil
    if name == "bicubic-cv2":
        import cv2

        def cv(img: np.ndarray) -> np.ndarray:
            h, w = img.shape[:2]
            return cv2.resize(img, (w * scale, h * scale), interpolation=cv2.INTER_CUBIC)

        return cv
    from srlab.eval.runners import make_upscaler

    return make_upscaler(name, scale)[0]


def peer_row_label(name: str) -> str:
    """A peer's label in the tables and the chart: the classical and OpenCV ones by what they
    are, the others by name marked as a peer (``peers.peer_label``)."""
    from srlab.eval.peers import peer_label

    return PEER_LABELS.get(name) or peer_label(name)


def _peer_runtime(name: str) -> str:
    """The backend cell of a peer's row: "ncnn" for the ncnn peers, else "-"."""
    from srlab.eval.peers import PEERS

    return "ncnn" if name in PEERS and PEERS[name].family == "ncnn" else "-"


def _peer_params(name: str, scale: int) -> int:
    from srlab.eval.peers import PEERS, peer_params

    return peer_params(name, scale) if name in PEERS else 0


def make_runners(models: Sequence[str], backends: Sequence[str], scale: int, *,
                 threads: int = 1, peers: Sequence[str] = tuple(PEER_LABELS),
                 log: Callable[[str], None] = print) -> list[Runner]:
    """One runner per (model, backend) and per available peer. A peer or backend that cannot
    run here (OpenCV or its weights missing, onnxruntime missing) is skipped with a note."""
    from srlab.runtime.backends import load_backend

    runners: list[Runner] = []
    for name in models:
        for backend in backends:
            try:
                up = load_backend(name, scale, backend=backend, threads=threads)  # type: ignore[arg-type]
            except Exception as exc:  # noqa: BLE001 - report and go on with the others
                log(f"skipped {name} [{backend}] x{scale}: {exc}")
                continue
            # untrained is a property of the row, per scale; a model file shows its file name
            label = f"{up.name} [{backend}]"
            runners.append(Runner(label, name, backend, scale,
                                  _with_threads(up.upscale_array, threads), up.trained,
                                  up.params))
    for peer in peers:
        try:
            fn = _peer_fn(peer, scale)
        except Exception as exc:  # noqa: BLE001
            log(f"skipped {peer} x{scale}: {exc}")
            continue
        runners.append(Runner(peer_row_label(peer), peer, "peer", scale,
                              _with_threads(fn, threads), params=_peer_params(peer, scale)))
    return runners


def timed(fn: ArrayFn, img: np.ndarray) -> tuple[np.ndarray, float]:
    """``fn(img)`` and its wall-clock seconds: the one timer behind every Mpx/s srlab reports
    (``srlab bench`` here, ``srlab benchmark``'s column in ``benchmark.score_pairs``)."""
    t = time.perf_counter()
    out = fn(img)
    return out, time.perf_counter() - t


def load_average() -> float:
    """The 1-minute load average, NaN where the platform has none (Windows has no
    os.getloadavg at all, hence AttributeError beside OSError)."""
    try:
        return float(os.getloadavg()[0])
    except (OSError, AttributeError):
        return float("nan")


def time_interleaved(runners: Sequence[Runner], img: np.ndarray, repeats: int
                     ) -> dict[str, list[float]]:
    """Seconds per call for every runner: one warm-up each, then ``repeats`` rounds, each
    round calling every runner once, starting one further along each time."""
    for r in runners:
        r.fn(img)
    times: dict[str, list[float]] = {r.label: [] for r in runners}
    n = len(runners)
    for i in range(repeats):
        for j in range(n):
            r = runners[(i + j) % n]
            times[r.label].append(timed(r.fn, img)[1])
    return times


def _rows(section: str, runners: Sequence[Runner], times: dict[str, list[float]],
          img: np.ndarray, threads: int) -> list[SpeedRow]:
    h, w = img.shape[:2]
    rows = []
    for r in runners:
        med = statistics.median(times[r.label])
        out_mpx = h * w * r.scale * r.scale / 1e6
        rows.append(SpeedRow(section, r.label, r.model, r.backend, r.scale, threads, (w, h),
                             out_mpx, med, out_mpx / med, r.trained, r.params,
                             len(times[r.label])))
    ref = next((x for x in rows if x.model == REFERENCE), None)
    if ref is not None:
        for x in rows:
            x.ratio_to_espcn = x.mpx_per_s / ref.mpx_per_s
    return rows


# --------------------------------------------------------------------------------------------
# the benchmark
# --------------------------------------------------------------------------------------------


def run_speed(
    models: Sequence[str] | None = None,
    scales: Sequence[int] = (2, 4),
    *,
    backends: Sequence[str] | None = None,
    lr_size: tuple[int, int] = (480, 320),
    repeats: int = 7,
    threads: int = 1,
    sizes: bool = True,
    thread_counts: Sequence[int] = (1, 2),
    peers: Sequence[str] = tuple(PEER_LABELS),
    log: Callable[[str], None] = print,
) -> list[SpeedRow]:
    """Main table (every model x backend x scale, peers alongside), then time vs size for
    the flagships and ESPCN at the last scale, then ``thread_counts`` (skipped if it has
    fewer than two entries)."""
    models = list(default_models() if models is None else models)
    if backends is None:
        backends = default_backends()
    log = _once(log)  # each section asks for the peers again: say why one is missing once
    w, h = lr_size
    img = lr_image(w, h)
    rows: list[SpeedRow] = []
    for scale in scales:
        runners = make_runners(models, backends, scale, threads=threads, peers=peers, log=log)
        new = _rows("main", runners, time_interleaved(runners, img, repeats), img, threads)
        rows += new
        for r in new:
            log(f"x{scale} {w}x{h} {r.label:<34} {_fmt_small(r.mpx_per_s):>8} Mpx/s"
                + ("" if r.trained else "  (untrained)"))

    scale = scales[-1]
    flag = [m for m in models if m in FLAGSHIPS] or models[:1]
    small = [p for p in peers if p == REFERENCE]
    if sizes:
        for f in (0.25, 0.5, 1.0, 2.0):
            sw, sh = max(8, int(w * f)), max(8, int(h * f))
            simg = lr_image(sw, sh)
            fast = [m for m in flag if m != "span"] or flag  # span at 4x the pixels is slow
            runners = make_runners(fast, backends, scale, threads=threads, peers=small,
                                   log=log)
            reps = max(1, repeats // 2) if f > 1 else repeats
            new = _rows("sizes", runners, time_interleaved(runners, simg, reps), simg, threads)
            rows += new
            for r in new:
                log(f"sizes x{scale} {sw}x{sh} {r.label:<28} {r.mpx_per_s:8.2f} Mpx/s")
    if len(thread_counts) > 1:
        by_count: list[tuple[int, Runner]] = []
        for n in thread_counts:
            rs = make_runners(flag, backends, scale, threads=n, peers=small, log=log)
            for r in rs:
                r.label = f"{r.label} @{n}"  # unique while timed together
            by_count += [(n, r) for r in rs]
        times = time_interleaved([r for _, r in by_count], img, max(1, repeats // 2 + 1))
        for n in thread_counts:
            group = [r for k, r in by_count if k == n]
            new = _rows("threads", group, times, img, n)
            for r in new:
                r.label = r.label.rsplit(" @", 1)[0]
            rows += new
            for r in new:
                log(f"threads={n} x{scale} {r.label:<28} {r.mpx_per_s:8.2f} Mpx/s")
    return rows


def _once(log: Callable[[str], None]) -> Callable[[str], None]:
    """``log`` that drops a 'skipped ...' line it has already printed."""
    seen: set[str] = set()

    def once(line: str) -> None:
        if line.startswith("skipped "):
            if line in seen:
                return
            seen.add(line)
        log(line)

    return once


def _measurements(rows: Sequence[SpeedRow], deltas: dict | None = None) -> dict:
    """(model, scale) -> backend -> Measurement, from the main table (and PSNR deltas)."""
    from srlab.runtime.measured import EXACT_BACKENDS, Measurement

    out: dict[tuple[str, int], dict] = {}
    for r in rows:
        if r.section != "main" or r.backend == "peer":
            continue
        if deltas is not None:
            delta = deltas.get((r.model, r.scale), {}).get(r.backend, {})
        else:  # not scored: only the backends that keep float32's numbers count as within
            delta = {"parity": 0.0} if r.backend in EXACT_BACKENDS else {}
        out.setdefault((r.model, r.scale), {})[r.backend] = Measurement(r.mpx_per_s, delta)
    return out


def suggested_backends(rows: Sequence[SpeedRow], deltas: dict | None = None) -> dict[str, str]:
    """What ``auto`` would pick per model at the largest scale measured (``measured.choose``):
    the fastest backend within the accuracy bound; without ``deltas`` torch or onnx only."""
    from srlab.runtime.measured import choose

    meas = _measurements(rows, deltas)
    if not meas:
        return {}
    top = max(s for _, s in meas)
    return {m: choose(bes, allowed=list(bes)) for (m, s), bes in meas.items() if s == top}


def accuracy_scores(models: Sequence[str], scales: Sequence[int], backends: Sequence[str], *,
                    sets: Sequence[tuple[str, int]] = (("Set5", 5), ("Urban100", 20)),
                    peers: Sequence[str] = (), log: Callable[[str], None] = print) -> dict:
    """(model, scale) -> backend -> {set: mean PSNR (Y)} on the first n images of each
    benchmark set (evaluation only: nothing is tuned on these); peers under backend "peer".
    torch is always scored: it is the reference the deltas are taken against."""
    from srlab.image.datasets import load_pairs, shared_dir
    from srlab.image.metrics import psnr
    from srlab.runtime.backends import load_backend

    out: dict = {}
    for scale in scales:
        pairs = {ds: load_pairs(shared_dir() / "datasets" / "benchmark" / ds, scale)[:n]
                 for ds, n in sets}
        todo = [(m, b) for m in models for b in dict.fromkeys(["torch", *backends])]
        for model, backend in todo + [(p, "peer") for p in peers]:
            try:
                fn = _peer_fn(model, scale) if backend == "peer" else load_backend(
                    model, scale, backend=backend).upscale_array  # type: ignore[arg-type]
            except Exception as exc:  # noqa: BLE001 - as make_runners: note and go on
                log(f"skipped accuracy of {model} [{backend}] x{scale}: {exc}")
                continue
            out.setdefault((model, scale), {})[backend] = {ds: float(np.mean([
                psnr(fn(lr), hr, crop_border=scale) for _, lr, hr in p]))
                for ds, p in pairs.items()}
            log(f"accuracy x{scale} {model} [{backend}]: " + ", ".join(
                f"{ds} {v:.4f} dB" for ds, v in out[(model, scale)][backend].items()))
    return out


def accuracy_deltas(scores: dict) -> dict:
    """``accuracy_scores`` as PSNR minus torch float32's, per (model, scale) and backend."""
    out: dict = {}
    for key, by_backend in scores.items():
        ref = by_backend.get("torch")
        if ref is not None:
            out[key] = {b: {ds: v - ref[ds] for ds, v in sc.items() if ds in ref}
                        for b, sc in by_backend.items()}
    return out


def store_rows(rows: Sequence[SpeedRow], deltas: dict, *, path: Path | None = None,
               command: str = "") -> Path:
    """Merge this run's Mpx/s and PSNR deltas into the store ``--backend auto`` reads, under
    this CPU's model name."""
    from srlab.runtime.cpu import cpu_model
    from srlab.runtime.measured import load_store, record_measurements, save_store

    store, cpu = load_store(path), cpu_model()
    measurements = _measurements(rows, deltas)
    for (model, scale), measured in measurements.items():
        record_measurements(store, cpu, model, scale, measured)
    return save_store(store, path, command=command, cpu=cpu,
                      models=sorted({model for model, _ in measurements}))


# --------------------------------------------------------------------------------------------
# huge images: streaming tiles, peak RSS in a subprocess
# --------------------------------------------------------------------------------------------


def procedural_image(height: int, width: int, *, block: int = 256) -> np.ndarray:
    """A structured uint8 RGB image built in row blocks: no full-size float array, ever."""
    out = np.empty((height, width, 3), dtype=np.uint8)
    x = np.arange(width, dtype=np.float32)[None, :]
    for y0 in range(0, height, block):
        y = np.arange(y0, min(y0 + block, height), dtype=np.float32)[:, None]
        out[y0 : y0 + len(y), :, 0] = 127.5 + 127 * np.sin(x * 0.013 + y * 0.007)
        out[y0 : y0 + len(y), :, 1] = 127.5 + 127 * np.cos(x * 0.002 - y * 0.031)
        out[y0 : y0 + len(y), :, 2] = ((x // 64 + y // 64) % 2) * 200 + 20
    return out


def peak_rss_gib() -> float:
    """This process's peak resident memory in GiB: ``VmHWM`` from /proc/self/status, else
    ``ru_maxrss``.

    Why not just ``ru_maxrss``: Linux carries it across fork + exec, so a child started by a
    big parent reports the *parent's* peak (measured: a 2 GiB parent made an 8 MiB child
    report 2.0 GiB). VmHWM belongs to the process's own address space.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**20  # kB
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def _huge_child(model: str, backend: str, scale: int, height: int, width: int,
                tile: int, threads: int) -> None:
    """Runs in the subprocess: prints one JSON line with timings and peak RSS."""
    import torch

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    img = procedural_image(height, width)
    t_gen = time.perf_counter() - t0
    from srlab.runtime.backends import load_backend
    from srlab.runtime.upscaler import TILE_POLICY

    up = load_backend(model, scale, backend=backend, threads=threads)  # type: ignore[arg-type]

    tile = TILE_POLICY.tile_for(height, width, tile)  # 0: automatic, as srlab upscale does
    rss_before = peak_rss_gib()
    t1 = time.perf_counter()
    sr = up.upscale_array(img, tile=tile)
    seconds = time.perf_counter() - t1
    peak = peak_rss_gib()
    print(json.dumps({
        "model": model, "backend": backend, "scale": scale, "lr_size": [width, height],
        "out_shape": list(sr.shape), "tile": tile, "threads": threads,
        "seconds": seconds, "generate_seconds": t_gen,
        "out_mpx_per_s": sr.shape[0] * sr.shape[1] / 1e6 / seconds,
        "peak_rss_gib": peak, "peak_rss_before_upscale_gib": rss_before,
        "input_gib": img.nbytes / 2**30, "output_gib": sr.nbytes / 2**30,
        "trained": up.trained,
    }))


def huge_run(model: str = "span-fast", *, backend: str = "torch", scale: int = 2,
             size: tuple[int, int] = (8000, 6000), tile: int = 0, threads: int = 1,
             timeout: float | None = None) -> dict:
    """Upscale a procedural ``size`` (width, height) image in a fresh subprocess and return
    its timings and peak RSS (see ``peak_rss_gib``): a subprocess, so nothing this process
    already allocated counts. ``tile`` 0 is ``runtime.upscaler.TILE_POLICY`` (512 at the
    default size)."""
    w, h = size
    code = (f"from srlab.eval.speed import _huge_child; _huge_child({model!r}, {backend!r}, "
            f"{scale}, {h}, {w}, {tile}, {threads})")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=timeout, check=False)
    if res.returncode != 0:
        tail = (res.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"huge-image run failed ({model} [{backend}]): {tail}")
    return json.loads(res.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------
# reports
# --------------------------------------------------------------------------------------------


def _load_note() -> str:
    la = load_average()
    return f"{os.cpu_count()} CPUs" if la != la else \
        f"load average {la:.1f} on {os.cpu_count()} CPUs"


def _fmt_small(x: float) -> str:
    """Two decimals, or two significant digits below 0.1: a 16.7M-parameter peer at
    0.0026 Mpx/s must not read as 0.00."""
    return f"{x:.2f}" if x >= 0.1 else f"{x:.2g}"


def _fmt_ratio(x: float | None) -> str:
    return "-" if x is None else f"{_fmt_small(x)}x"


def speed_markdown(rows: Sequence[SpeedRow], *, command: str | None = None,
                   huge: Sequence[dict] = (), notes: Sequence[str] = ()) -> str:
    """Main table (Mpx/s and ratio to OpenCV ESPCN per scale), then size and thread tables."""
    out: list[str] = []
    main = [r for r in rows if r.section == "main"]
    if main:
        scales = sorted({r.scale for r in main})
        labels = list(dict.fromkeys(r.label for r in main))
        by = {(r.label, r.scale): r for r in main}
        first = main[0]
        out.append(f"Output megapixels per second, LR input {first.lr_size[0]}x"
                   f"{first.lr_size[1]} RGB uint8, {first.threads} thread(s), median of "
                   f"{first.repeats} interleaved runs; ratio = throughput / OpenCV ESPCN's "
                   "in the same run.\n")
        head = f"| model | backend | params (x{scales[-1]}) | " + " | ".join(
            f"x{s} Mpx/s | x{s} vs ESPCN" for s in scales) + " |"
        out += [head, "|" + "---|" * (3 + 2 * len(scales))]
        for label in labels:
            r0 = next(by[(label, s)] for s in reversed(scales) if (label, s) in by)
            name = label.split(" [")[0] if r0.backend != "peer" else label
            untrained = [s for s in scales if (label, s) in by and not by[(label, s)].trained]
            cells = []
            for s in scales:
                r = by.get((label, s))
                cells += [_fmt_small(r.mpx_per_s), _fmt_ratio(r.ratio_to_espcn)] if r \
                    else ["-", "-"]
            params = f"{r0.params:,}" if r0.params else "-"
            tag = "" if not untrained else " (untrained)" if len(untrained) == len(
                [s for s in scales if (label, s) in by]) else \
                " (untrained at " + ", ".join(f"x{s}" for s in untrained) + ")"
            backend = r0.backend if r0.backend != "peer" else _peer_runtime(r0.model)
            out.append(f"| {name}{tag} | {backend} | {params} | " + " | ".join(cells) + " |")
    sizes = [r for r in rows if r.section == "sizes"]
    if sizes:
        dims = list(dict.fromkeys(r.lr_size for r in sizes))
        labels = list(dict.fromkeys(r.label for r in sizes))
        by_s = {(r.label, r.lr_size): r for r in sizes}
        out.append(f"\nTime vs input size (x{sizes[0].scale}; ms per image / Mpx/s — flat "
                   "Mpx/s means linear time):\n")
        out += ["| model | " + " | ".join(f"{w}x{h}" for w, h in dims) + " |",
                "|" + "---|" * (1 + len(dims))]
        for label in labels:
            cells = [f"{by_s[(label, d)].median_s * 1e3:.0f} ms / "
                     f"{by_s[(label, d)].mpx_per_s:.1f}" if (label, d) in by_s else "-"
                     for d in dims]
            out.append(f"| {label} | " + " | ".join(cells) + " |")
    thr = [r for r in rows if r.section == "threads"]
    if thr:
        counts = sorted({r.threads for r in thr})
        labels = list(dict.fromkeys(r.label for r in thr))
        by_t = {(r.label, r.threads): r for r in thr}
        out.append(f"\nThreads (x{thr[0].scale}, {thr[0].lr_size[0]}x{thr[0].lr_size[1]}; "
                   "Mpx/s):\n")
        out += ["| model | " + " | ".join(f"{n} thread(s)" for n in counts)
                + f" | {counts[-1]} vs {counts[0]} |", "|" + "---|" * (2 + len(counts))]
        for label in labels:
            vals = [by_t.get((label, n)) for n in counts]
            cells = [f"{v.mpx_per_s:.2f}" if v else "-" for v in vals]
            ratio = f"{vals[-1].mpx_per_s / vals[0].mpx_per_s:.2f}x" \
                if vals[0] and vals[-1] else "-"
            out.append(f"| {label} | " + " | ".join(cells) + f" | {ratio} |")
    if huge:
        out.append(f"\nHuge image (procedural, tiles of {huge[0]['tile']}, fresh process; "
                   "peak RSS = the process's VmHWM, all included: Python, torch, input and "
                   "output):\n")
        out += ["| model | input | output | seconds | Mpx/s | peak RSS |",
                "|---|---|---|---|---|---|"]
        for hrow in huge:
            w, h = hrow["lr_size"]
            oh, ow = hrow["out_shape"][:2]
            out.append(f"| {hrow['model']} [{hrow['backend']}] x{hrow['scale']} | {w}x{h} | "
                       f"{ow}x{oh} | {hrow['seconds']:.1f} | {hrow['out_mpx_per_s']:.2f} | "
                       f"{hrow['peak_rss_gib']:.2f} GiB |")
    emulated = any(r.backend == "torch-bf16" for r in rows)  # asked for with --backend
    bf16 = "yes" if native_bf16() else \
        "no (torch-bf16 rows are emulated)" if emulated else "no (no torch-bf16 rows)"
    foot = [f"Machine: {platform.processor() or platform.machine()}, native bfloat16 {bf16}, "
            f"{_load_note()} at the end of the run (absolute numbers vary with the machine and "
            "with what else runs on it; same-run ratios are the figures to compare)."]
    foot.append(f"{cpu_note()}.")
    foot += list(notes)
    if command:
        foot.append(f"Made by `{command}`.")
    return "\n".join(out) + "\n\n" + " ".join(foot)


def write_speed(rows: Sequence[SpeedRow], out_dir: Path, *, command: str,
                huge: Sequence[dict] = (), notes: Sequence[str] = ()) -> Path:
    """out_dir/speed.md and speed.json (rows, suggested backends, huge runs, command)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "speed.json").write_text(json.dumps({
        "command": command, "machine": {"cpus": os.cpu_count(), "load": _load_note(),
                                        "processor": platform.processor(),
                                        "native_bf16": native_bf16(),
                                        "cpu": cpu_info().describe(),
                                        "bf16_probe": probe_bf16().describe()},
        "rows": [asdict(r) for r in rows], "suggested_backends": suggested_backends(rows),
        "huge": list(huge)}, indent=2))
    md = out_dir / "speed.md"
    md.write_text(speed_markdown(rows, command=command, huge=huge, notes=notes) + "\n")
    return md

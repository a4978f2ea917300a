"""Many images: the batch as independent tasks, on a Dask cluster or in this process.

Why Dask: the same code runs on a laptop (``LocalCluster``), on one big machine and on a
cluster (``tcp://scheduler:8786``, Kubernetes, HPC queues), it reschedules the tasks of a
worker that dies, and it needs no network to test. Pass paths, not pixels: each task reads
its input, upscales it, writes its output atomically (``save_image``: temporary name, then
rename; URLs: upload under a temporary name, then move) and returns a small row for the
manifest. A task carries a chunk of files, not one: on small photos one scheduler round trip
per file costs a good part of the file's own time, so the driver sizes chunks to about
``CHUNK_SECONDS`` of work from the seconds the first files took (``--chunk N`` fixes it).
Retries and faults stay per file (``upscale_chunk``). A worker loads the model once per
(model, scale, backend, ...) and keeps it; its torch threads are its share of its machine's
cores. Tiling and memory bounds are those of
``srlab upscale`` (``batch.upscale_one``), so a 100 Mpx image is no worse here.

Faults: a killed worker's chunks run again elsewhere, and the files it had already finished
are verified, not redone (``upscale_chunk``); a chunk whose workers died three times is split
into one-file tasks, so only a file that kills its worker is recorded as failed (after
three deaths of its own); its temporary files are
removed at the end; a bad input is a ``failed`` row and the batch goes on; Ctrl-C cancels
what is queued, keeps every finished row, and ``resume`` continues from there.

Without a cluster (``cluster=None``) the same tasks run here, one after another: that is the
path of ``manifest``, ``resume`` and URLs on one machine; it imports no Dask.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from srlab.batch import (
    BatchHooks,
    BatchResult,
    Job,
    ModelSet,
    UpscaleOptions,
    UsageError,
    Written,
    plan_jobs,
    resolve_choice,
    storage,
    upscale_one,
)
from srlab.batch import manifest as mf

if TYPE_CHECKING:
    from srlab.api import AutoUpscaler
    from srlab.runtime.upscaler import Upscaler

__all__ = ["CHUNK_SECONDS", "MAX_CHUNK", "TaskSpec", "connect", "run_many", "upscale_chunk",
           "upscale_task"]

log = logging.getLogger(__name__)

CHUNK_SECONDS = 1.5  # work per task when the chunk size is automatic: round trips ~1% of it
MAX_CHUNK = 64  # files per task at most (a lost worker redoes at most this much unverified)


@dataclass(frozen=True)
class TaskSpec:
    """What every task needs besides its two paths (small: it travels with each task)."""

    options: UpscaleOptions
    model: str  # resolved once by the driver (resolve_choice)
    workers_per_host: dict[str, int] = field(default_factory=dict)  # for the thread share
    since: float = 0.0  # when the batch began (time.time()): outputs newer than this that
    # are complete were finished by an earlier attempt of their chunk; 0: never trust one


_MODELS: dict[tuple, Any] = {}  # per worker process: loaded once, kept for every task
_LOCK = threading.Lock()


def _worker() -> Any:
    if "distributed" not in sys.modules:  # not inside a Dask worker: nothing to ask
        return None
    from distributed import get_worker

    try:
        return get_worker()
    except ValueError:
        return None


def _worker_name() -> str:
    w = _worker()
    return str(w.address) if w is not None else f"local:{os.getpid()}"


def _thread_share(spec: TaskSpec) -> int | None:
    """Torch threads for this worker: its cores split among the worker processes of its
    machine and their task threads (``--threads`` wins). None outside a Dask worker."""
    if spec.options.threads:
        return spec.options.threads
    w = _worker()
    if w is None:
        return None
    host = str(w.address).rsplit(":", 1)[0]
    procs = spec.workers_per_host.get(host, 1)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // (procs * max(1, int(w.state.nthreads))))


def _models(spec: TaskSpec) -> ModelSet:
    """This worker's networks for ``spec`` (one per model scale an output size needs),
    loaded on first use and kept for every later task of the batch."""
    o = spec.options
    key = (spec.model, o.scale, o.backend, str(o.weights), o.denoise, o.detail, o.threads,
           o.self_ensemble, o.size)
    with _LOCK:
        models = _MODELS.get(key)
        if models is None:
            threads = _thread_share(spec)
            if threads:
                import torch

                torch.set_num_threads(threads)
            models = ModelSet(o, None, spec.model, BatchHooks())
            _MODELS[key] = models
    return models


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _blank_row(source: str, target: str | None, spec: TaskSpec, *, worker: str | None = "",
               error: str | None = None) -> dict[str, Any]:
    """A failed row with every manifest column (``worker`` "" = this process)."""
    return {"input": source, "output": target, "status": "failed", "in_size": None,
            "out_size": None, "bytes": None, "sha256": None, "model": spec.model,
            "choice": None, "backend": None, "scale": spec.options.scale, "seconds": None,
            "worker": _worker_name() if worker == "" else worker, "error": error}


def upscale_chunk(pairs: Sequence[tuple[str, str]], spec: TaskSpec) -> list[dict[str, Any]]:
    """Several files in one task, one row each (``upscale_task``: a bad file is its own
    failed row, the others go on). Dask runs a chunk again when its worker dies; a file the
    dead attempt had already finished (written since the batch began, and complete by the
    manifest's check) is then verified and returned as done, not upscaled twice."""
    return [_finished_earlier(src, dst, spec) or upscale_task(src, dst, spec)
            for src, dst in pairs]


def _finished_earlier(source: str, target: str, spec: TaskSpec) -> dict[str, Any] | None:
    """The row of an output an earlier attempt of this chunk wrote, or None to do the file."""
    if not spec.since or spec.options.size is not None:  # --width/--fit: no size check
        return None
    written = storage.mtime(target)
    if written is None or written < spec.since:
        return None
    start = time.perf_counter()
    sizes = mf.complete_sizes(source, target, spec.options.scale)
    if sizes is None:
        return None
    size, sha = storage.digest(target)
    row = _blank_row(source, target, spec)
    row.update(status="ok", in_size=list(sizes[0]), out_size=list(sizes[1]), bytes=size,
               sha256=sha, choice=None if spec.model == "auto" else spec.model,
               read=None, note="written by an earlier attempt whose worker died; verified",
               seconds=round(time.perf_counter() - start, 4),
               time=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    return row


def upscale_task(source: str, target: str, spec: TaskSpec,
                 models: ModelSet | None = None) -> dict[str, Any]:
    """One file, start to finish, on whichever worker runs it; never raises for a bad file:
    the returned row says what happened (``manifest`` module docstring)."""
    from srlab.image.imageio import ImageError

    o = spec.options
    start = time.perf_counter()
    row = _blank_row(source, target, spec)
    local = source  # the path the image functions see (a temporary copy for a URL)
    try:
        models = models if models is not None else _models(spec)
        with storage.local_copy(source) as src, storage.local_target(target) as dst:
            local = str(src)
            w = upscale_one(Job(src, dst), models, tile=o.tile, overlap=o.overlap,
                            max_pixels=o.max_pixels, quality=o.quality, tile_bar=False,
                            on_choice=lambda _p, cond, _n: row.update(
                                read=cond.describe(), reason=cond.reason),
                            strip_metadata=o.strip_metadata)
        size, sha = storage.digest(target)
        row.update(status="ok", in_size=list(w.in_size), out_size=list(w.out_size), bytes=size,
                   sha256=sha, choice=w.model, backend=w.backend)
    except ImageError as exc:  # its message names the file (the local copy, for a URL)
        row["error"] = str(exc).replace(local, source)
    except (ValueError, OSError, RuntimeError, MemoryError) as exc:
        row["error"] = f"{source}: {_first_line(exc)}"
    row.setdefault("read", None)  # what auto read in the image (auto only)
    row["seconds"] = round(time.perf_counter() - start, 4)
    row["time"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return row


@contextmanager
def connect(cluster: object) -> Iterator[Any]:
    """A ``distributed.Client`` for ``cluster``: ``local:N`` (a LocalCluster of N
    single-threaded worker processes, closed afterwards; ``local`` = one per core), a
    scheduler address (``tcp://host:8786``), or a Client/Cluster object the caller owns."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise UsageError("--cluster needs Dask: pip install 'srlab[cluster]' "
                         "(dask and distributed)") from None
    if isinstance(cluster, Client):
        yield cluster
        return
    if hasattr(cluster, "scheduler_address"):  # a Cluster object
        with Client(cluster) as client:
            yield client
        return
    text = str(cluster)
    if text == "local" or text.startswith("local:"):
        n_text = text.partition(":")[2] or str(os.cpu_count() or 1)
        if not n_text.isdigit() or int(n_text) < 1:
            raise UsageError(f"--cluster {text}: expected local:N with N >= 1 workers")
        # Ctrl-C reaches every process of the terminal: the driver stops the batch; its
        # workers ignore it (else each prints a traceback) and are closed by the driver
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            with _local_worker_settings():
                lc = LocalCluster(n_workers=int(n_text), threads_per_worker=1,
                                  processes=True, dashboard_address=None,
                                  silence_logs=logging.CRITICAL)
        finally:
            signal.signal(signal.SIGINT, old)
        with lc, Client(lc) as client:
            client.register_plugin(_ignore_interrupt_plugin(), name="srlab-ignore-sigint")
            yield client
        return
    if "://" not in text and ":" not in text:
        raise UsageError(f"--cluster {text}: expected local:N or a scheduler address "
                         "such as tcp://host:8786")
    try:
        client = Client(text, timeout="20s")
    except OSError as exc:
        raise ValueError(f"--cluster {text}: cannot reach the scheduler "
                         f"({_first_line(exc)})") from None
    with client:
        yield client


# What local:N changes in Dask's defaults for its processes, and why (measured with span x4
# on small photos, 2 cores): the workers' statistical profiler samples every thread's stack
# every 10 ms (~5% of a core per worker, idle or busy); the event-loop watchdog and system
# monitor wake the scheduler's process 50 times a second (~4% of a core while it waits, 1%
# after). Nothing srlab shows needs them; the dashboard is off already.
_LOCAL_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "500ms",
    "distributed.admin.system-monitor.interval": "2s",
}


@contextmanager
def _local_worker_settings() -> Iterator[None]:
    """``local:N``'s processes without the costs above, and without Dask's
    ``MALLOC_TRIM_THRESHOLD_=65536``: that setting turns off glibc's adaptive mmap threshold,
    so every large tensor of every tile is a fresh mmap and a storm of page faults (measured:
    ~15x the page faults and ~20% more time per image). The nanny also puts the variable into
    this process's environment, so it is restored afterwards. Remote workers:
    docs/many-images.md."""
    import dask

    key = "MALLOC_TRIM_THRESHOLD_"
    before = os.environ.get(key)
    if before == "65536":  # Dask's value, left here by an earlier LocalCluster of this process
        os.environ.pop(key)
    try:
        with dask.config.set({**_LOCAL_CONFIG,
                              f"distributed.nanny.pre-spawn-environ.{key}": None}):
            yield
    finally:
        if before is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = before


def _ignore_interrupt_plugin() -> Any:
    """A plugin: worker processes of ``local:N`` (also those restarted after a death) ignore
    SIGINT. Built on demand so that importing this module imports no Dask."""
    from distributed import WorkerPlugin

    class IgnoreInterrupt(WorkerPlugin):
        def setup(self, worker: Any) -> None:
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGINT, signal.SIG_IGN)

    return IgnoreInterrupt()


def _workers_per_host(client: Any) -> tuple[dict[str, int], int]:
    workers = client.scheduler_info().get("workers", {})
    per_host: dict[str, int] = {}
    for addr in workers:
        host = str(addr).rsplit(":", 1)[0]
        per_host[host] = per_host.get(host, 0) + 1
    threads = sum(int(w.get("nthreads", 1)) for w in workers.values())
    return per_host, threads


@dataclass
class _Chunks:
    """How many files the next task gets: ``fixed`` (``--chunk N``), or about
    ``CHUNK_SECONDS`` of work by the median seconds per file seen so far (1 until a file has
    come back), and never so many that the last tasks leave workers idle."""

    fixed: int
    threads: int
    seconds: deque[float] = field(default_factory=lambda: deque(maxlen=64))

    def saw(self, row: dict[str, Any]) -> None:
        if row.get("status") == "ok" and row.get("seconds") and not row.get("note"):
            self.seconds.append(float(row["seconds"]))

    def size(self, remaining: int) -> int:
        if self.fixed:
            return self.fixed
        if not self.seconds:
            return 1
        per_file = sorted(self.seconds)[len(self.seconds) // 2]
        n = round(CHUNK_SECONDS / max(per_file, 1e-3))
        return max(1, min(n, MAX_CHUNK, -(-remaining // (2 * self.threads))))


def _on_dask(client: Any, todo: Sequence[tuple[str, str]], spec: TaskSpec, chunk: int = 0
             ) -> Iterator[dict[str, Any]]:
    """Rows as chunks finish. Two chunks per worker thread are queued at a time (one running,
    one ready), so a million files cost the scheduler a window of futures, not a million. A
    chunk that failed as a whole (its workers died: ``KilledWorker``) comes back as one-file
    tasks, so only a file that kills its worker ends as a failed row."""
    from distributed import as_completed

    run = uuid.uuid4().hex[:8]
    _, threads = _workers_per_host(client)
    sizing = _Chunks(max(0, chunk), max(1, threads))
    queue = deque(todo)
    singles: deque[tuple[str, str]] = deque()  # files of a chunk that failed as a whole
    pending: dict[Any, list[tuple[str, str]]] = {}
    ac = as_completed()
    seq = 0

    def top_up() -> None:
        nonlocal seq
        while len(pending) < 2 * sizing.threads and (singles or queue):
            if singles:
                items = [singles.popleft()]
            else:
                n = min(sizing.size(len(queue)), len(queue))
                items = [queue.popleft() for _ in range(n)]
            seq += 1
            fut = client.submit(upscale_chunk, items, spec, key=f"srlab-upscale-{run}-{seq}")
            pending[fut] = items
            ac.add(fut)

    try:
        top_up()
        for done in ac.batches():
            for fut in done:
                items = pending.pop(fut)
                try:
                    rows = fut.result()
                except Exception as exc:  # noqa: BLE001 - e.g. KilledWorker
                    if len(items) > 1:  # find the culprit: one task per file
                        singles.extend(items)
                        continue
                    src, dst = items[0]
                    rows = [_blank_row(src, dst, spec, worker=None, error=(
                        f"{src}: {type(exc).__name__}: {_first_line(exc)}"))]
                for row in rows:
                    sizing.saw(row)
                    yield row
            top_up()
    finally:
        if pending:  # Ctrl-C or an error: nothing queued keeps running for nobody
            client.cancel(list(pending), force=True)


def _plan(inputs: Sequence[Path | str], opts: UpscaleOptions
          ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    if any(storage.is_url(p) for p in [*inputs, opts.output or ""]):
        return storage.plan_urls([str(p) for p in inputs],
                                 output=None if opts.output is None else str(opts.output),
                                 scale=opts.scale, ext=opts.ext, recursive=opts.recursive)
    out = opts.output
    if out is not None and str(out).startswith("file://"):
        out = str(out)[len("file://"):]  # a str, so plan_jobs still sees a trailing /
    jobs, refused = plan_jobs([storage.local_path(p) for p in inputs], output=out,
                              scale=opts.scale, ext=opts.ext, force=opts.force,
                              recursive=opts.recursive,
                              label=opts.size.label() if opts.size else None)
    return ([(str(j.source), str(j.target)) for j in jobs],
            [(str(p), m) for p, m in refused])


def run_many(inputs: Sequence[Path | str], opts: UpscaleOptions, *,
             upscaler: Upscaler | AutoUpscaler | None = None,
             hooks: BatchHooks | None = None) -> BatchResult:
    """``batch.upscale_files`` for many images: plan, skip what is complete (``resume``),
    run the rest as tasks (on ``opts.cluster`` or here), record every row in the manifest.
    Returns the same ``BatchResult`` (plus ``skipped`` and a ``summary`` line)."""
    hooks = hooks or BatchHooks()
    if opts.chunk < 0:
        raise UsageError(f"--chunk {opts.chunk}: expected a number of files >= 1 (0: auto)")
    if upscaler is not None:
        if opts.cluster is not None:
            raise UsageError("a loaded upscaler cannot travel to a cluster; name the model "
                             "(model=..., scale=..., backend=...) instead")
        opts = replace(opts, scale=upscaler.scale)
        model = upscaler.name
    else:
        model = resolve_choice(opts)
    pairs, refused = _plan(inputs, opts)
    path = Path(opts.manifest) if opts.manifest is not None else \
        mf.default_path(opts.output, [t for _, t in pairs])
    spec = TaskSpec(replace(opts, cluster=None, manifest=None, progress=False), model,
                    since=time.time())
    run = _Run(BatchResult(), hooks)
    start = time.perf_counter()
    try:
        with mf.ManifestWriter(path) as writer:
            run.writer = writer
            for src, message in refused:
                run.record(_blank_row(src, None, spec, worker=None, error=message))
            todo = _resume(pairs, opts, model, path, writer, run.result) if opts.resume \
                else pairs
            run.targets = [dst for _, dst in todo]
            if todo:
                run.execute(todo, opts, spec, upscaler)
    finally:
        storage.remove(storage.leftover_temps(run.targets))  # from workers killed mid-write
    seconds = time.perf_counter() - start
    r = run.result
    rate = f"{len(r.written) / seconds:.3g} img/s, {run.mpx / seconds:.3g} Mpx/s in"
    r.summary = (f"{len(r.written)} written, {len(r.skipped)} already complete, "
                 f"{len(r.failed)} failed in {seconds:.1f} s ({rate}) on {run.where}; "
                 f"manifest: {path}")
    return r


def _as_path(loc: str) -> Path | str:
    return loc if storage.is_url(loc) else Path(loc)


def _resume(pairs: list[tuple[str, str]], opts: UpscaleOptions, model: str, path: Path,
            writer: mf.ManifestWriter, result: BatchResult) -> list[tuple[str, str]]:
    """The pairs still to do; a complete output found without its row gets one now."""
    done = mf.read_manifest(path)
    todo = []
    for src, dst in pairs:
        if not mf.is_complete(src, dst, done.get(dst), model=model, scale=opts.scale):
            todo.append((src, dst))
            continue
        result.skipped.append(_as_path(src))  # type: ignore[arg-type]
        if dst not in done:  # complete but unrecorded (e.g. killed before its row)
            size, sha = storage.digest(dst)
            writer.write({"input": src, "output": dst, "status": "verified", "bytes": size,
                          "sha256": sha, "model": model, "scale": opts.scale})
    return todo


@dataclass(frozen=True)
class _Read:
    """What auto read in an image and why it chose, as text (a worker sends the text, not the
    Condition): what ``BatchHooks.on_choice`` reads of a Condition."""

    text: str
    reason: str = ""

    def describe(self) -> str:
        return self.text


@dataclass
class _Run:
    """The driver's side of one batch: rows in, manifest, result, hooks and the bar out."""

    result: BatchResult
    hooks: BatchHooks
    writer: mf.ManifestWriter | None = None
    targets: list[str] = field(default_factory=list)
    mpx: float = 0.0
    where: str = "this process"

    def record(self, row: dict[str, Any]) -> None:
        assert self.writer is not None
        self.writer.write(row)
        src = _as_path(row["input"])
        if row["status"] == "ok":
            w = Written(src, _as_path(row["output"]), tuple(row["in_size"]),  # type: ignore
                        tuple(row["out_size"]), row["seconds"], model=row["choice"] or "",
                        backend=row["backend"] or "")
            self.result.written.append(w)
            self.mpx += w.in_size[0] * w.in_size[1] / 1e6
            if self.hooks.on_choice is not None and row.get("read"):  # auto's line, as ever
                name = w.model if w.backend in ("torch", "") else f"{w.model} [{w.backend}]"
                read = _Read(row["read"], row.get("reason") or "")
                self.hooks.on_choice(src, read, name)  # type: ignore[arg-type]
            if self.hooks.on_written is not None:
                self.hooks.on_written(w)
        else:
            self.result.failed.append((src, row["error"]))  # type: ignore[arg-type]
            if self.hooks.on_error is not None:
                self.hooks.on_error(src, row["error"])  # type: ignore[arg-type]

    def execute(self, todo: list[tuple[str, str]], opts: UpscaleOptions, spec: TaskSpec,
                upscaler: Upscaler | AutoUpscaler | None) -> None:
        from tqdm import tqdm

        with ExitStack() as stack:  # closed in reverse: tasks cancelled, then the cluster
            if opts.cluster is None:
                models = ModelSet(opts, upscaler, None if upscaler else spec.model,
                                 BatchHooks(on_model=self.hooks.on_model))
                models.preload()  # announced (on_model) and checked before the first file
                rows: Iterator[dict[str, Any]] = (upscale_task(s, d, spec, models)
                                                  for s, d in todo)
            else:
                client = stack.enter_context(connect(opts.cluster))
                per_host, threads = _workers_per_host(client)
                n = sum(per_host.values())
                self.where = (f"{n} worker{'s' if n != 1 else ''}, "
                              f"{threads} thread{'s' if threads != 1 else ''}")
                rows = stack.enter_context(closing(
                    _on_dask(client, todo, replace(spec, workers_per_host=per_host),
                             chunk=opts.chunk)))
            bar = stack.enter_context(tqdm(total=len(todo), unit="img", file=sys.stderr,
                                           dynamic_ncols=True,
                                           disable=None if opts.progress else True))
            for row in rows:
                self.record(row)
                bar.set_postfix_str(f"{self.mpx:.3g} Mpx", refresh=False)
                bar.update(1)

"""Images per second of ``srlab upscale`` with 1, 2, ... Dask workers against the plain
single-process command, on N small photos (issue 52's scaling bar; docs/many-images.md).

Each run is the real command in a fresh process (``python -m srlab upscale LR -o OUT ...``
with and without ``--cluster local:K``), timed from start to exit. Every configuration runs
twice, on the first ``--warm`` photos and on all N: the difference cancels what does not
grow with the batch (interpreter, imports, model load, cluster start-up), so
``marginal img/s = (N - warm) / (T_N - T_warm)`` is the rate a long batch settles at, and
``end-to-end img/s = N / T_N`` is what this batch cost. Repeats run interleaved and the
fastest time of each counts.

The inputs: the first N photos of ImageNet-sample400 (sorted by name), reduced by the scale
with srlab's MATLAB bicubic and stored as PNG under ``--work`` (made once, reused). This
measures speed only; no image is scored.

    nice -n 10 .venv/bin/python tools/cluster_scaling.py -n 200 --workers 1 2 \\
        --readme docs/many-images.md --figure docs/cluster-scaling.png

After the runs it measures what one Dask task costs by itself (no-op tasks on ``local:1``:
round trip and the client + scheduler's CPU) and writes, under the table, the
back-of-envelope for a million such images: every number in it comes from this run (the
per-image seconds, bytes in and out, manifest line length, chosen chunk size and per-task
cost), none is typed.

The load average of the machine at start and end is printed with the table: another busy
process (a training run) on a core depresses the multi-worker figures. On 2 cores the whole
command takes about 4 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECTION = "cluster-scaling"


def default_images() -> Path:
    shared = Path(os.environ.get("SRLAB_SHARED", ROOT / ".." / "shared"))
    return shared / "datasets" / "train" / "ImageNet-sample400"


def make_lr(images: Path, n: int, scale: int, work: Path) -> list[Path]:
    """The first ``n`` photos reduced by ``scale`` (MATLAB bicubic), as PNG, made once."""
    from srlab.image.imageio import is_image_file, load_image, save_image
    from srlab.image.resize import imresize, modcrop

    lr_dir = work / f"lr-x{scale}"
    lr_dir.mkdir(parents=True, exist_ok=True)
    photos = sorted(p for p in images.iterdir() if is_image_file(p))[:n]
    if len(photos) < n:
        sys.exit(f"cluster_scaling: {images} has {len(photos)} images, fewer than -n {n}")
    out = []
    for p in photos:
        target = lr_dir / f"{p.stem}.png"
        if not target.exists():
            arr = modcrop(load_image(p).array, scale)
            save_image(imresize(arr, 1 / scale), target)
        out.append(target)
    return out


def subset(lr: list[Path], n: int, work: Path) -> Path:
    """A folder holding (links to) the first ``n`` LR files."""
    d = work / f"in-{n}"
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    for p in lr[:n]:
        (d / p.name).symlink_to(p.resolve())
    return d


def run_once(inputs: Path, out: Path, args: argparse.Namespace, workers: int
             ) -> tuple[float, list[dict]]:
    if out.exists():
        shutil.rmtree(out)
    cmd = [sys.executable, "-m", "srlab", "upscale", str(inputs), "-o", str(out), "-q",
           "-m", args.model, "-s", str(args.scale), "--backend", args.backend]
    if workers:
        cmd += ["--cluster", f"local:{workers}"]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"),
                                                        os.environ.get("PYTHONPATH", "")])}
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"cluster_scaling: {shlex.join(cmd)} failed:\n{done.stderr[-2000:]}")
    n_out = len([p for p in out.iterdir() if p.suffix == ".png"])
    if n_out != len(list(inputs.iterdir())):
        sys.exit(f"cluster_scaling: {out} has {n_out} outputs, expected {inputs}")
    manifest = out / "srlab-manifest.jsonl"
    rows = [json.loads(line) for line in manifest.read_text().splitlines()] \
        if manifest.exists() else []
    if rows:
        rows[0]["_line_bytes"] = manifest.stat().st_size / len(rows)
    return seconds, rows


def _noop(i: int) -> dict:
    return {"input": f"in/{i}.png", "status": "ok"}  # a row-sized result


def task_overhead(n: int = 300) -> tuple[float, float]:
    """(seconds of wall time, seconds of client + scheduler CPU) per Dask task, from ``n``
    no-op tasks on ``local:1`` through srlab's own ``connect``, windowed like a batch."""
    import resource

    from distributed import as_completed

    from srlab.batch.cluster import connect

    def cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)  # the scheduler runs in this process
        return r.ru_utime + r.ru_stime

    with connect("local:1") as client:
        client.submit(_noop, -1, pure=False).result()
        todo = iter(range(n))
        ac = as_completed()

        def submit() -> None:
            i = next(todo, None)
            if i is not None:
                ac.add(client.submit(_noop, i, key=f"noop-{i}"))

        c0, t0 = cpu(), time.perf_counter()
        for _ in range(4):
            submit()
        for fut in ac:
            fut.result()
            submit()
        return (time.perf_counter() - t0) / n, (cpu() - c0) / n


def envelope(rows: list[dict], inputs: Path, outputs_bytes: float, fewest: dict,
             cores: int, overhead: tuple[float, float], threads: int = 0) -> str:
    """The million-image back-of-envelope from this run's measurements."""
    from srlab.batch.cluster import CHUNK_SECONDS, MAX_CHUNK

    ok = [r for r in rows if r.get("status") == "ok"]
    per_file = sorted(r["seconds"] for r in ok)[len(ok) // 2]  # a worker's median s/file
    chunk = max(1, min(MAX_CHUNK, round(CHUNK_SECONDS / max(per_file, 1e-3))))
    in_b = sum(p.stat().st_size for p in inputs.iterdir()) / len(list(inputs.iterdir()))
    out_b = outputs_bytes
    line = rows[0].get("_line_bytes", 0.0)
    rt, sched = overhead
    t, k = 1 / fewest["marginal"], fewest["workers"]
    busy = k * threads if threads else cores  # the cores this run's workers kept busy
    m = 1e6
    gb = m * (in_b + out_b) / 1e9
    return "\n".join([
        "Back-of-envelope for 1M images like these, each figure from this run:",
        "",
        f"- **Compute**: {t:.3g} s per image on this {cores}-core machine with {k} "
        f"worker{'s' if k > 1 else ''} "
        f"({busy * t:.3g} core-seconds): 1M images take {m * t / 3600:.0f} hours here, that "
        "divided by K on K such machines.",
        f"- **Scheduler**: one task costs {rt * 1e3:.1f} ms of round trip and {sched * 1e3:.1f} "
        "ms of client + scheduler CPU (no-op tasks on `local:1`). One file per task, 1M tasks "
        f"would use {m * sched / 3600:.1f} hours of scheduler CPU and the scheduler would "
        f"saturate near {per_file / sched:.0f} busy worker threads ({per_file:.3g} s of work "
        f"per task). srlab's automatic chunks of {chunk} files (about {CHUNK_SECONDS} s of "
        f"work) make that {m / chunk:,.0f} tasks, {m / chunk * sched / 60:.1f} minutes of "
        f"scheduler CPU, saturating near {chunk * per_file / sched:,.0f} worker threads.",
        f"- **I/O**: {in_b / 1e3:.0f} KB in and {out_b / 1e3:.0f} KB out per image: 1M images "
        f"move {gb:.0f} GB, {gb * 1e3 / 100 / 3600:.1f} hours at an assumed 100 MB/s, which a "
        "parallel file system or object store serves to many workers at once and one NFS "
        "server may not.",
        f"- **Resume**: the client reads every existing output again for its SHA-256: "
        f"{m * out_b / 1e9:.0f} GB at the start of resuming a nearly finished batch.",
        f"- **Manifest**: {line:.0f} bytes a line, {m * line / 1e6:.0f} MB for 1M files, "
        "written by the client.",
    ])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=Path, default=default_images(),
                    help="photo folder (default: ImageNet-sample400 in ../shared)")
    ap.add_argument("-n", type=int, default=200, help="photos in the batch (default: 200)")
    ap.add_argument("--warm", type=int, default=10,
                    help="photos of the short run that cancels fixed costs (default: 10)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                    help="Dask worker counts to run (default: 1 2)")
    ap.add_argument("-m", "--model", default="span")
    ap.add_argument("-s", "--scale", type=int, default=4)
    ap.add_argument("--backend", default="torch")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch threads of the plain run and of every worker (default: srlab's "
                         "choice: all cores for plain, the cores shared among workers)")
    ap.add_argument("--repeats", type=int, default=1, help="interleaved; fastest counts")
    ap.add_argument("--work", type=Path, default=ROOT / "out" / "cluster-scaling")
    ap.add_argument("--readme", type=Path, default=None,
                    help="markdown file whose <!-- srlab:cluster-scaling --> markers get the "
                         "table")
    ap.add_argument("--section", default=SECTION, help=f"marker name (default: {SECTION})")
    ap.add_argument("--figure", type=Path, default=None, help="PNG: img/s against workers")
    args = ap.parse_args(argv)
    if not 0 < args.warm < args.n:
        ap.error("need 0 < --warm < -n")

    load_start = os.getloadavg()
    lr = make_lr(args.images, args.n, args.scale, args.work)
    sets = {args.warm: subset(lr, args.warm, args.work), args.n: subset(lr, args.n, args.work)}
    configs = [0, *args.workers]  # 0 = plain srlab upscale, no cluster
    best: dict[tuple[int, int], float] = {}
    one_rows: list[dict] = []  # the manifest of the 1-worker run on all N
    out_bytes = 0.0
    for rep in range(args.repeats):
        for k in configs:
            for n, folder in sets.items():
                t, manifest = run_once(folder, args.work / "out", args, k)
                best[(k, n)] = min(best.get((k, n), t), t)
                if n == args.n and k == min(args.workers):
                    one_rows = manifest
                if n == args.n and k == 0:
                    outs = list((args.work / "out").glob("*.png"))
                    out_bytes = sum(p.stat().st_size for p in outs) / len(outs)
                print(f"[{rep + 1}/{args.repeats}] {'plain' if k == 0 else f'local:{k}'} "
                      f"n={n}: {t:.1f} s", file=sys.stderr)
    overhead = task_overhead()
    load_end = os.getloadavg()

    rows = []
    for k in configs:
        t_n, t_w = best[(k, args.n)], best[(k, args.warm)]
        marginal = (args.n - args.warm) / (t_n - t_w) if t_n > t_w else float("nan")
        rows.append({"run": "plain srlab upscale" if k == 0 else f"--cluster local:{k}",
                     "workers": k, "seconds": t_n, "end_to_end": args.n / t_n,
                     "marginal": marginal})
    plain = rows[0]["marginal"]
    one = next((r["marginal"] for r in rows if r["workers"] == 1), float("nan"))
    command = "python tools/cluster_scaling.py " + shlex.join(
        sys.argv[1:] if argv is None else argv)
    lines = [f"| run | {args.n} images, s | end-to-end img/s | marginal img/s | vs plain | "
             "vs 1 worker |", "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        vs_one = f"{r['marginal'] / one:.2f}x" if r["workers"] else ""
        lines.append(f"| {r['run']} | {r['seconds']:.1f} | {r['end_to_end']:.2f} | "
                     f"{r['marginal']:.2f} | {r['marginal'] / plain:.2f}x | {vs_one} |")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    note = (f"{args.model} x{args.scale} on {args.backend}, {args.n} ImageNet-sample400 photos "
            f"reduced x{args.scale} (marginal = ({args.n} - {args.warm}) images over the "
            f"time difference of the {args.n}- and {args.warm}-image runs), {cores} cores, "
            f"torch threads {args.threads or 'by srlab (plain: all cores; a worker: its share)'}, "
            f"fastest of {args.repeats}; load average {load_start[0]:.1f} at start, "
            f"{load_end[0]:.1f} at end. Made by: `{command}`")
    text = "\n".join(lines) + "\n\n" + note + "\n"
    if one_rows:
        fewest = next(r for r in rows if r["workers"] == min(args.workers))
        text += "\n" + envelope(one_rows, sets[args.n], out_bytes, fewest, cores,
                                overhead, args.threads) + "\n"
    print(text)
    args.work.mkdir(parents=True, exist_ok=True)
    (args.work / "cluster-scaling.json").write_text(json.dumps(
        {"command": command, "rows": rows, "load_start": load_start, "load_end": load_end,
         "task_overhead_s": overhead},
        indent=2))
    if args.readme is not None:
        from srlab.eval.tables import update_readme

        update_readme(args.readme, args.section, text)
    if args.figure is not None:
        draw(rows, args, args.figure, note_short=f"load avg {load_start[0]:.1f}")
    return 0


def draw(rows: list[dict], args: argparse.Namespace, path: Path, note_short: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cl = [r for r in rows if r["workers"]]
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=120)
    ax.plot([r["workers"] for r in cl], [r["marginal"] for r in cl], "o-",
            label="--cluster local:K")
    ax.axhline(rows[0]["marginal"], color="gray", ls="--", label="plain srlab upscale")
    ax.set_xlabel("Dask workers on this machine")
    ax.set_ylabel("images / s (marginal)")
    ax.set_xticks([r["workers"] for r in cl])
    ax.set_ylim(bottom=0)
    ax.set_title(f"{args.model} x{args.scale}, {args.n} photos ({note_short})", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())

"""Peak memory and time of one phone photo through the web demo's job, as ``srlab serve``
runs it: the upload check (header, full decode, thumbnail), then the UI's batch job
(decode, tiled upscale, PNG/JPEG/WebP result, comparison previews).

Each case runs in a fresh child process, and the figure is that child's peak resident set
(``ru_maxrss``) minus its resident set before the job (imports and the model loaded), so one
case's pages do not count in the next. The photo is synthetic (smooth gradients, texture and
noise, saved as a quality-90 JPEG as a phone would) so the run needs no data folder.

    .venv/bin/python tools/web_memory.py                     # 4000x3000 and 6000x4000, x2
    .venv/bin/python tools/web_memory.py --size 6000x4000 -m span-fast -s 2 --format jpg

What the server's limits (srlab.web.state: DEFAULT_MAX_PIXELS, DEFAULT_MAX_OUTPUT_PIXELS)
promise is read from this: the peak grows with the output (held whole, it is encoded as one
file), not with the network, which only ever sees one tile.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from pathlib import Path


def _photo(path: Path, w: int, h: int) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    y = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    x = np.linspace(0, 1, w, dtype=np.float32)[None, :]
    img = np.empty((h, w, 3), np.uint8)
    for c, f in enumerate((7.0, 11.0, 17.0)):
        band = 128 + 80 * np.sin(f * x + 3 * y * (c + 1)) * np.cos(f * y)
        band += rng.normal(0, 6, (h, w)).astype(np.float32)
        img[..., c] = np.clip(band, 0, 255)
    Image.fromarray(img).save(path, quality=90)


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


def _case(size: tuple[int, int], model: str, scale: int, fmt: str, out: mp.Queue) -> None:
    from srlab.web import app, state

    srv = state.ServerState(state.Limits())
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "phone.jpg"
        _photo(src, *size)
        srv.models.get(model, scale)  # loaded before the baseline: the job's cost only
        opts = state.Options(model, scale, fmt=fmt).checked()
        base = _rss_mb()
        t0 = time.perf_counter()
        item = app._check_upload(srv, str(src))
        state.check_output(srv.limits, src.name, *item["size"], scale)
        job = state.Job(state.tiles_of(*item["size"], opts.tile), 1)
        res = app._ui_batch(srv, [item], opts, job)[0]
        seconds = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        out.put({"input": "{}x{}".format(*size), "model": model, "scale": scale,
                 "format": fmt, "output": "{}x{}".format(*res["out_size"]),
                 "tiles": job.total, "seconds": round(seconds, 1),
                 "peak_over_baseline_mb": round(peak - base), "baseline_mb": round(base)})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", action="append", help="WxH (repeatable; default 4000x3000 "
                                                   "and 6000x4000)")
    ap.add_argument("-m", "--model", default="bicubic")
    ap.add_argument("-s", "--scale", type=int, default=2)
    ap.add_argument("--format", default="png", choices=["png", "jpg", "webp"])
    args = ap.parse_args(argv)
    sizes = [tuple(int(v) for v in s.lower().split("x")) for s in
             (args.size or ["4000x3000", "6000x4000"])]
    ctx = mp.get_context("spawn")
    for size in sizes:
        q: mp.Queue = ctx.Queue()
        p = ctx.Process(target=_case, args=(size, args.model, args.scale, args.format, q))
        p.start()
        p.join()
        if p.exitcode != 0:
            print(f"error: the {size[0]}x{size[1]} case failed (exit {p.exitcode})",
                  file=sys.stderr)
            return 1
        print(json.dumps(q.get()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

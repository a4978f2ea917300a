"""Fuzz ``srlab.image.imageio.load_image``: the allowed outcomes are an image or ``ImageError``.

Every file srlab reads (CLI, web demo, training data) goes through ``load_image``, so a
malformed file that makes it raise anything else — or crash, hang, or return an array that is
not one of srlab's layouts — is a bug users would meet as a traceback or a dead server. This
script feeds it mutated files and records every such case as a *finding*, with the input
that reproduces it saved to a file.

Two engines:

* ``mutate`` (default; no extra dependency, deterministic): seeds are the files of
  tests/corpus.py (good and broken PNG, JPEG, GIF, 16-bit, CMYK, ...). Iteration ``i``
  applies 1-4 random edits chosen from ``Random(f"{seed}:{i}")`` — bit flips, interesting
  byte values, insertions, deletions, truncation, splicing two seeds, rewriting a PNG IHDR
  or JPEG SOF size field, and re-computing PNG chunk CRCs so that the mutation reaches the
  decoders instead of being rejected by the checksum. The loads run in a child process: a
  segfault or a hang (``--timeout``) costs the child, not the run; the parent records the
  input and restarts the child at the next iteration. Same ``--seed`` -> same inputs.
* ``atheris`` (``pip install atheris``): coverage-guided libFuzzer over the same seeds,
  for long runs; it stops at the first finding and writes it as ``crash-*`` in ``--out``.

    .venv/bin/python tools/fuzz_imageio.py --iterations 5000
    .venv/bin/python tools/fuzz_imageio.py --iterations 200000 --engine atheris

Exit status 0 when there were no findings, 1 otherwise. ``--json`` prints the summary as one
JSON object on the last line (tools/reliability_report.py reads it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import random
import resource
import struct
import sys
import tempfile
import time
import traceback
import zlib
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # tests/corpus.py builds the seed files
sys.path.insert(0, str(ROOT / "src"))

INTERESTING_BYTES = (0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF)
INTERESTING_U32 = (0, 1, 0x7FFF, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)


# --------------------------------------------------------------------------------------------
# seeds and mutations
# --------------------------------------------------------------------------------------------


def load_seeds(extra: Path | None = None) -> list[tuple[str, bytes]]:
    """(name, bytes) of every corpus file (built in a temp folder), plus files in ``extra``."""
    from corpus import build_corpus

    seeds: list[tuple[str, bytes]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in sorted(build_corpus(tmp)):
            seeds.append((name, (Path(tmp) / name).read_bytes()))
    if extra is not None:
        seeds += [(p.name, p.read_bytes()) for p in sorted(extra.iterdir()) if p.is_file()]
    return [(n, d) for n, d in seeds if d]  # the empty file has nothing to mutate


def _fix_png_crcs(data: bytearray) -> bytearray:
    """Recompute the CRC of every complete PNG chunk (a no-op for anything else)."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return data
    pos = 8
    while pos + 12 <= len(data):
        length = struct.unpack(">I", data[pos:pos + 4])[0]
        end = pos + 8 + length
        if end + 4 > len(data):
            break
        data[end:end + 4] = struct.pack(">I", zlib.crc32(bytes(data[pos + 4:end])) & 0xFFFFFFFF)
        pos = end + 4
    return data


def _size_field(data: bytearray, rnd: random.Random) -> bytearray:
    """Overwrite a width/height: PNG IHDR (u32) or JPEG SOF (u16), else a random u32."""
    if data.startswith(b"\x89PNG") and len(data) >= 24:
        at = rnd.choice((16, 20))
        data[at:at + 4] = struct.pack(">I", rnd.choice(INTERESTING_U32 + (rnd.getrandbits(16),)))
        return data
    for marker in (b"\xff\xc0", b"\xff\xc2", b"\xff\xc1"):
        at = data.find(marker)
        if at >= 0 and at + 9 <= len(data):
            off = at + 5 + 2 * rnd.randint(0, 1)
            data[off:off + 2] = struct.pack(">H", rnd.choice((0, 1, 0xFFFF, rnd.getrandbits(16))))
            return data
    if len(data) >= 4:
        at = rnd.randrange(len(data) - 3)
        data[at:at + 4] = struct.pack("<I", rnd.choice(INTERESTING_U32))
    return data


def mutate(seeds: list[tuple[str, bytes]], seed: int, i: int) -> tuple[str, bytes]:
    """Input number ``i``: a pure function of (seeds, seed, i), so any finding replays."""
    rnd = random.Random(f"{seed}:{i}")
    name, base = rnd.choice(seeds)
    data = bytearray(base)
    for _ in range(rnd.randint(1, 4)):
        op = rnd.randrange(9)
        n = len(data)
        if n == 0:
            data = bytearray(rnd.randbytes(rnd.randint(1, 64)))
            continue
        at = rnd.randrange(n)
        if op == 0:  # flip one bit
            data[at] ^= 1 << rnd.randrange(8)
        elif op == 1:  # an interesting byte
            data[at] = rnd.choice(INTERESTING_BYTES)
        elif op == 2:  # random bytes over a short run
            k = min(rnd.randint(1, 16), n - at)
            data[at:at + k] = rnd.randbytes(k)
        elif op == 3:  # insert
            data[at:at] = rnd.randbytes(rnd.randint(1, 32))
        elif op == 4:  # delete a run
            del data[at:at + rnd.randint(1, 64)]
        elif op == 5:  # truncate
            del data[max(1, at):]
        elif op == 6:  # splice: our head, another seed's tail
            other = rnd.choice(seeds)[1]
            data = data[:at] + other[rnd.randrange(len(other)):]
        elif op == 7:  # duplicate a run (repeated chunks / markers)
            k = rnd.randint(1, 256)
            data[at:at] = data[at:at + k]
        else:
            data = _size_field(data, rnd)
    if rnd.random() < 0.6:
        data = _fix_png_crcs(data)
    return name, bytes(data)


# --------------------------------------------------------------------------------------------
# one load, judged
# --------------------------------------------------------------------------------------------


def check_array(img: object, max_pixels: int | None) -> str | None:
    """Why a successfully loaded image is not a valid srlab image, or None if it is."""
    import numpy as np

    arr = getattr(img, "array", None)
    if not isinstance(arr, np.ndarray):
        return f"array is {type(arr).__name__}"
    if arr.dtype not in (np.uint8, np.uint16):
        return f"dtype {arr.dtype}"
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (2, 3, 4)):
        return f"shape {arr.shape}"
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        return f"empty shape {arr.shape}"
    if max_pixels and arr.shape[0] * arr.shape[1] > max_pixels:
        return f"{arr.shape[1]} x {arr.shape[0]} is above max_pixels {max_pixels}"
    if not arr.flags.c_contiguous:
        return "array not C-contiguous"
    return None


def judge(path: Path, max_pixels: int | None) -> tuple[str, str]:
    """('loaded' | 'image_error', '') or ('finding', signature + traceback)."""
    from srlab.image.imageio import ImageError, load_image

    try:
        img = load_image(path, max_pixels=max_pixels)
    except ImageError as exc:
        if "\n" in str(exc):
            return "finding", f"ImageError message spans lines: {str(exc)[:200]!r}"
        cause: BaseException | None = exc if max_pixels else None
        while cause is not None:  # under a pixel limit, no file may need > --memory-mb
            if isinstance(cause, MemoryError):
                return "finding", f"MemoryError behind ImageError: {str(exc)[:200]}"
            cause = cause.__context__
        return "image_error", ""
    except BaseException as exc:  # noqa: BLE001 - exactly what we are looking for
        if isinstance(exc, KeyboardInterrupt):
            raise
        tb = traceback.extract_tb(exc.__traceback__)
        where = f"{Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else "?"
        return "finding", f"{type(exc).__name__} at {where}: {str(exc)[:200]}\n" + \
            "".join(traceback.format_exception(exc))
    problem = check_array(img, max_pixels)
    if problem is not None:
        return "finding", f"bad image returned: {problem}"
    return "loaded", ""


# --------------------------------------------------------------------------------------------
# the mutate engine: a worker process, watched by the parent
# --------------------------------------------------------------------------------------------


@dataclass
class Summary:
    engine: str
    iterations: int = 0
    seconds: float = 0.0
    outcomes: dict[str, int] = field(default_factory=lambda: {"loaded": 0, "image_error": 0})
    findings: list[dict[str, object]] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        signatures: dict[str, int] = {}
        for f in self.findings:
            signatures[str(f["signature"])] = signatures.get(str(f["signature"]), 0) + 1
        return {"engine": self.engine, "iterations": self.iterations,
                "seconds": round(self.seconds, 2), "outcomes": self.outcomes,
                "findings": len(self.findings), "unique_findings": len(signatures),
                "signatures": signatures,
                "reproducers": [str(f["file"]) for f in self.findings if f.get("file")]}


def _limit_memory(mb: int) -> None:
    if mb > 0:
        limit = mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def _worker(conn: Connection, seeds: list[tuple[str, bytes]], seed: int, start: int, stop: int,
            workdir: str, max_pixels: int | None, memory_mb: int, max_rss_mb: int) -> None:
    """Load inputs start..stop-1, reporting (outcome, i, detail) for each. The input is on
    disk (``workdir/input.<ext>``) before it is loaded, so the parent can save it if we die.

    An input that pushes this process's peak memory above ``max_rss_mb`` is a finding; the
    worker then exits so that its successor starts with a fresh peak."""
    _limit_memory(memory_mb)
    import warnings

    warnings.simplefilter("ignore")  # Pillow warns about odd files; only outcomes matter
    for i in range(start, stop):
        name, data = mutate(seeds, seed, i)
        path = Path(workdir) / f"input{Path(name).suffix}"
        path.write_bytes(data)
        conn.send(("start", i, name))
        outcome, detail = judge(path, max_pixels)
        peak = _peak_rss_mb()
        if outcome != "finding" and max_rss_mb and peak > max_rss_mb:
            conn.send(("finding", i, f"memory: peak RSS {peak:.0f} MB loading a "
                                     f"{len(data)}-byte file ({outcome})"))
            conn.close()
            return
        conn.send((outcome, i, detail))
    conn.send(("done", stop, ""))
    conn.close()


def _save_finding(out: Path, i: int, name: str, data: bytes, kind: str, detail: str,
                  summary: Summary, seen: set[str]) -> None:
    # what identifies a distinct bug: "KeyError at PngImagePlugin.py:123", "hang", "memory",
    # "crash: worker died with exit code -11" (not the file path or sizes in the message)
    signature = detail.splitlines()[0] if detail else kind
    if kind != "crash":
        signature = signature.split(": ", 1)[0]
    entry: dict[str, object] = {"iteration": i, "seed_file": name, "kind": kind,
                                "signature": signature, "detail": detail[:4000], "file": ""}
    if signature not in seen:  # keep the first reproducer of each distinct failure
        seen.add(signature)
        out.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha1(data).hexdigest()[:12]
        path = out / f"finding-{i:07d}-{digest}{Path(name).suffix}"
        path.write_bytes(data)
        (path.with_suffix(path.suffix + ".txt")).write_text(
            f"iteration {i} (mutated from {name})\n{detail}\n")
        entry["file"] = str(path)
        print(f"FINDING at iteration {i} ({kind}): {signature}\n  reproducer: {path}",
              flush=True)
    summary.findings.append(entry)


def run_mutate(iterations: int, seed: int, out: Path, max_pixels: int | None, timeout: float,
               memory_mb: int, seeds: list[tuple[str, bytes]], progress: bool,
               max_rss_mb: int = 1024) -> Summary:
    summary = Summary("mutate")
    seen: set[str] = set()
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
    t0 = time.perf_counter()
    next_i = 0
    with tempfile.TemporaryDirectory(prefix="srlab-fuzz-") as workdir:
        while next_i < iterations:
            parent, child = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_worker, args=(child, seeds, seed, next_i, iterations,
                                                     workdir, max_pixels, memory_mb,
                                                     max_rss_mb),
                               daemon=True)
            proc.start()
            child.close()
            current: tuple[int, str] | None = None
            while True:
                if not parent.poll(timeout):
                    kind, detail = "hang", f"hang: no result within {timeout:g} s"
                    proc.kill()
                    break
                try:
                    tag, i, detail = parent.recv()
                except EOFError:
                    proc.join(5)
                    kind = "crash"
                    detail = f"crash: worker died with exit code {proc.exitcode}"
                    break
                if tag == "start":
                    current = (i, detail)
                    continue
                if tag == "done":
                    kind = "done"
                    break
                current = None
                summary.iterations += 1
                next_i = i + 1
                if tag == "finding":
                    name, data = mutate(seeds, seed, i)
                    kind = "memory" if detail.startswith("memory:") else "exception"
                    _save_finding(out, i, name, data, kind, detail, summary, seen)
                else:
                    summary.outcomes[tag] += 1
                if progress and summary.iterations % 1000 == 0:
                    print(f"{summary.iterations} iterations, {len(summary.findings)} findings",
                          flush=True)
            proc.join(5)
            parent.close()
            if kind == "done":
                break
            if current is None:  # died between inputs: nothing to blame, move on
                continue
            i, name = current
            _, data = mutate(seeds, seed, i)
            _save_finding(out, i, name, data, kind, detail, summary, seen)
            summary.iterations += 1
            next_i = i + 1
    summary.seconds = time.perf_counter() - t0
    return summary


# --------------------------------------------------------------------------------------------
# the atheris engine
# --------------------------------------------------------------------------------------------


def run_atheris(iterations: int, out: Path, max_pixels: int | None, timeout: float,
                memory_mb: int, seeds: list[tuple[str, bytes]]) -> int:
    """libFuzzer via atheris; returns its exit status (it stops at the first finding)."""
    try:
        import atheris
    except ImportError:
        print("atheris is not installed: pip install atheris (or use --engine mutate)",
              file=sys.stderr)
        return 2
    import warnings

    warnings.simplefilter("ignore")  # Pillow warns about odd files; only outcomes matter
    import srlab.image.imageio  # noqa: F401 - loaded before instrument_all, so it is instrumented

    atheris.instrument_all()  # PIL's plugins and srlab.image.imageio are Python: coverage-guided
    out.mkdir(parents=True, exist_ok=True)
    corpus_dir = Path(tempfile.mkdtemp(prefix="srlab-atheris-corpus-"))
    for name, data in seeds:
        (corpus_dir / name).write_bytes(data)
    work = Path(tempfile.mkdtemp(prefix="srlab-atheris-")) / "input"

    def one_input(data: bytes) -> None:
        work.write_bytes(data)
        outcome, detail = judge(work, max_pixels)
        if outcome == "finding":
            raise AssertionError(detail)  # libFuzzer saves the input as crash-<sha1>

    args = [sys.argv[0], f"-runs={iterations}", f"-timeout={int(max(timeout, 1))}",
            f"-rss_limit_mb={memory_mb or 0}", f"-artifact_prefix={out}/", str(corpus_dir)]
    atheris.Setup(args, one_input)
    atheris.Fuzz()  # exits the process
    return 0


# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--iterations", type=int, default=2000, help="inputs to try (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="mutation seed (default 0)")
    p.add_argument("--engine", choices=("mutate", "atheris"), default="mutate")
    p.add_argument("--out", type=Path, default=ROOT / "out" / "fuzz",
                   help="where reproducers of findings go (default: out/fuzz)")
    p.add_argument("--seeds", type=Path, default=None, metavar="DIR",
                   help="extra seed files besides tests/corpus.py's")
    p.add_argument("--max-pixels", type=int, default=None,
                   help="load_image's pixel limit (default: the library default, 100 M)")
    p.add_argument("--timeout", type=float, default=20.0,
                   help="seconds one input may take before it counts as a hang (default 20)")
    p.add_argument("--memory-mb", type=int, default=8192,
                   help="address-space cap of the loader process, 0 = none; a MemoryError "
                        "under it is a finding. Default 8192: Pillow's PNG reader reads a "
                        "chunk's claimed length (up to 4 GB) in one read(), a transient "
                        "virtual allocation that costs no RSS; real memory is judged by "
                        "--max-rss-mb")
    p.add_argument("--max-rss-mb", type=int, default=1024,
                   help="an input that pushes the loader's peak RSS above this is a finding "
                        "(default 1024; the seeds are a few KB)")
    p.add_argument("--json", action="store_true", help="end with a JSON summary line")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    args = p.parse_args(argv)
    from srlab.image.imageio import DEFAULT_MAX_PIXELS

    max_pixels = DEFAULT_MAX_PIXELS if args.max_pixels is None else (args.max_pixels or None)
    seeds = load_seeds(args.seeds)
    if args.engine == "atheris":
        return run_atheris(args.iterations, args.out, max_pixels, args.timeout,
                           args.memory_mb, seeds)
    summary = run_mutate(args.iterations, args.seed, args.out, max_pixels, args.timeout,
                         args.memory_mb, seeds, progress=not args.quiet,
                         max_rss_mb=args.max_rss_mb)
    s = summary.to_json()
    print(f"fuzzed load_image with {s['iterations']} inputs from {len(seeds)} seeds in "
          f"{s['seconds']} s: {s['outcomes']['loaded']} loaded, "
          f"{s['outcomes']['image_error']} ImageError, {s['findings']} findings "
          f"({s['unique_findings']} distinct)")
    for sig, n in dict(s["signatures"]).items():  # type: ignore[call-overload]
        print(f"  {n} x {sig}")
    if args.json:
        print(json.dumps(s))
    return 1 if summary.findings else 0


if __name__ == "__main__":
    sys.exit(main())

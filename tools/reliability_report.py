"""Run srlab's reliability tests and print the "Reliability" section (docs/benchmarks.md).

The figures (corpus outcomes, hypothesis examples, fuzz iterations and findings, kills
survived, web requests served / busy / rejected, server memory) are never typed: each test
records what it measured with pytest's ``record_property("reliability", {...})``, a small
plugin collects those records while the tests run in this process, and a fuzz run of
``--fuzz-iterations`` inputs adds its own summary. Failing or skipped tests show up as such.

    .venv/bin/python tools/reliability_report.py                      # print the section
    .venv/bin/python tools/reliability_report.py --readme docs/benchmarks.md   # and write it
        between <!-- srlab:reliability --> and <!-- /srlab:reliability --> (any markdown file)

Exit status 0 when every test passed (skips allowed) and the fuzz run had no findings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TEST_FILES = [
    "tests/test_bad_inputs.py",
    "tests/test_properties.py",
    "tests/test_fuzz_imageio.py",
    "tests/test_weights_security.py",
    "tests/test_crash_safety.py",
    "tests/test_web_load.py",
]
SECTION = "reliability"


@dataclass
class Collector:
    """pytest plugin: outcome and duration of every test, and its "reliability" records."""

    outcomes: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    skip_reasons: dict[str, str] = field(default_factory=dict)
    records: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def pytest_runtest_logreport(self, report: Any) -> None:
        node = report.nodeid
        self.seconds[node] += report.duration
        if report.failed:
            self.outcomes[node] = "failed"
        elif report.skipped and self.outcomes.get(node) != "failed":
            self.outcomes[node] = "skipped"
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
            self.skip_reasons[node] = str(reason).removeprefix("Skipped: ")
        elif report.when == "call" and node not in self.outcomes:
            self.outcomes[node] = "passed"
        if report.when == "teardown":  # carries every property recorded during the test
            self.records += [(node, v) for k, v in report.user_properties if k == SECTION]


def run_tests(files: list[str], extra: list[str]) -> tuple[Collector, int, float]:
    import pytest

    collector = Collector()
    t0 = time.perf_counter()
    os.chdir(ROOT)
    code = pytest.main(["-q", "-p", "no:cacheprovider", *extra, *files], plugins=[collector])
    return collector, int(code), time.perf_counter() - t0


def run_fuzz(iterations: int, seed: int) -> dict[str, Any] | None:
    if iterations <= 0:
        return None
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "fuzz_imageio.py"),
                          "--iterations", str(iterations), "--seed", str(seed), "--json",
                          "--quiet", "--out", str(ROOT / "out" / "fuzz")],
                         capture_output=True, text=True, cwd=ROOT)
    try:
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        print(out.stdout[-2000:] + out.stderr[-2000:], file=sys.stderr)
        return {"iterations": 0, "findings": -1, "outcomes": {}, "signatures": {}}


def _file_of(node: str) -> str:
    return node.split("::", 1)[0]


def _records(col: Collector, key: str) -> list[dict[str, Any]]:
    return [r for _, r in col.records if key in r]


def render(col: Collector, code: int, seconds: float, fuzz: dict[str, Any] | None,
           fuzz_seed: int) -> str:
    """The markdown section: one row per reliability property, then the per-file tally."""
    import PIL
    import torch

    tally = Counter(col.outcomes.values())
    rows: list[tuple[str, str]] = []
    missing = "not measured (test failed or skipped)"

    corpus = _records(col, "corpus_input")
    if corpus:
        ok = sum(r["outcome"] == "ok" for r in corpus)
        agree = sum(r["outcome"] == r["expected"] for r in corpus)
        text = (f"{len(corpus)} hostile or awkward files through `srlab upscale`: {ok} upscaled "
                f"to the right size, {len(corpus) - ok} refused with one error line "
                f"({agree}/{len(corpus)} as expected)")
        batch = _records(col, "batch_inputs")
        if batch:
            b = batch[0]
            text += (f"; one batch over all {b['batch_inputs']}: exit {b['batch_exit']}, "
                     f"{b['batch_written']} written, {b['batch_failed']} failed, no partial "
                     "or temp file left")
        bomb = _records(col, "gif_bomb_peak_mb")
        if bomb:
            text += (f"; a 50-byte GIF claiming a 4-gigapixel frame is refused in "
                     f"{bomb[0]['gif_bomb_seconds']:.2f} s at {bomb[0]['gif_bomb_peak_mb']:.0f} "
                     "MB peak")
        rows.append(("Bad-input corpus (`tests/corpus.py`)", text))
    else:
        rows.append(("Bad-input corpus (`tests/corpus.py`)", missing))

    props = Counter(r["property"] for r in _records(col, "property_examples"))
    rows.append(("Property tests (hypothesis)",
                 f"{sum(props.values())} generated examples ("
                 + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(props.items()))
                 + "): sizes 1-40 px, L/LA/RGB/RGBA/P/I;16, 8 and 16 bit"
                 if props else missing))

    fuzz_parts = []
    for r in _records(col, "fuzz_iterations"):
        fuzz_parts.append(f"{r['fuzz_iterations']} in the test suite, {r['fuzz_findings']} "
                          "findings")
    if fuzz is not None:
        outc = fuzz.get("outcomes", {})
        fuzz_parts.append(
            f"{fuzz['iterations']} mutated files (seed {fuzz_seed}, {fuzz.get('seconds', 0)} s): "
            f"{outc.get('loaded', 0)} loaded, {outc.get('image_error', 0)} `ImageError`, "
            f"{fuzz['findings']} findings"
            + ("" if not fuzz.get("signatures") else
               " — " + "; ".join(f"{n} x {s}" for s, n in fuzz["signatures"].items())))
    rows.append(("Fuzzing `load_image` (`tools/fuzz_imageio.py`)",
                 "; ".join(fuzz_parts) if fuzz_parts else missing))

    pickles = [r for r in _records(col, "weights_case") if r["weights_case"].startswith("pickle")]
    lying = [r for r in _records(col, "weights_case")
             if not r["weights_case"].startswith("pickle")]
    trunc = _records(col, "weights_truncations")
    flips = _records(col, "weights_header_flips")
    if pickles or lying or flips:
        text = (f"{sum(r['refused'] for r in pickles)}/{len(pickles)} code-executing pickles "
                "(.pth/.pt/.ckpt/.safetensors) refused without running; "
                f"{trunc[0]['weights_truncations'] if trunc else 0} truncations and "
                f"{sum(r['refused'] for r in lying)}/{len(lying)} lying-metadata files refused "
                "with one line")
        if flips:
            f = flips[0]
            text += (f"; {f['weights_header_flips']} header byte flips: "
                     f"{f['weights_header_flips_refused']} refused, "
                     f"{f['weights_header_flips_harmless']} harmless (same tensors)")
        rows.append(("Hostile weights files", text))
    else:
        rows.append(("Hostile weights files", missing))

    crash = _records(col, "kills_survived")
    if crash:
        c = crash[0]
        points = ", ".join(f"{k['point']} (checkpoint at iteration "
                           f"{k['checkpoint_iteration']})" for k in c["kills"])
        exact = "bit-exact" if c["bit_exact"] else f"max abs diff {c['max_abs_diff']:.2e}"
        text = (f"{c['kills_survived']} SIGKILLs survived — {points}; the resumed run's "
                f"weights equal an uninterrupted run's: {exact}")
        if _records(col, "disk_full_checkpoint_survived"):
            text += ("; disk full during a checkpoint write: previous checkpoint intact, "
                     "no temp file, resume still bit-exact")
        rows.append(("Crash safety of `srlab train`", text))
    else:
        rows.append(("Crash safety of `srlab train`", missing))

    web = _records(col, "web")
    if web:
        w = web[0]["web"]
        rss = w["rss_mb"]
        rows.append((
            "Web demo under load",
            f"{w['valid_requests']} valid uploads in {w['rounds']} bursts of "
            f"{w['valid_requests'] // w['rounds']} (+{w['bad_requests']} oversized/malformed), "
            f"{w['limits']['concurrency']} worker + {w['limits']['queue_size']} queue slots: "
            f"{w['served']} served, {w['busy']} told \"busy\" (503), {w['rejected']} rejected "
            f"(400/413); healthy after; server RSS {rss[0]:.0f} -> {rss[-1]:.0f} MB "
            f"(max growth {w['rss_growth_mb']:+.0f} MB); latency p50 {w['latency_p50_s']} s, "
            f"max {w['latency_max_s']} s"))
    else:
        rows.append(("Web demo under load", missing))

    lines = [
        f"Measured by `tools/reliability_report.py` on {time.strftime('%Y-%m-%d')}: "
        f"{tally['passed']} tests passed, {tally['failed']} failed, {tally['skipped']} skipped "
        f"in {seconds:.0f} s ({os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"torch {torch.__version__}, Pillow {PIL.__version__}).",
        "",
        "| property | measured |",
        "|---|---|",
        *[f"| {name} | {text} |" for name, text in rows],
    ]
    skipped = sorted(set(col.skip_reasons.values()))
    if skipped:
        lines += ["", "Skipped: " + "; ".join(skipped)]
    failed = sorted(n for n, o in col.outcomes.items() if o == "failed")
    if failed or code not in (0, 5):
        lines += ["", f"**Failing (pytest exit {code}):** " + ", ".join(f"`{n}`" for n in failed)]
    per_file: dict[str, Counter] = defaultdict(Counter)
    per_file_s: dict[str, float] = defaultdict(float)
    for node, outcome in col.outcomes.items():
        per_file[_file_of(node)][outcome] += 1
        per_file_s[_file_of(node)] += col.seconds[node]
    lines += ["", "| test file | passed | failed | skipped | seconds |", "|---|---|---|---|---|"]
    for f in sorted(per_file):
        c = per_file[f]
        lines.append(f"| `{f}` | {c['passed']} | {c['failed']} | {c['skipped']} | "
                     f"{per_file_s[f]:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--readme", type=Path, default=None, metavar="FILE",
                   help=f"write the section between '<!-- srlab:{SECTION} -->' and "
                        f"'<!-- /srlab:{SECTION} -->' in FILE")
    p.add_argument("--fuzz-iterations", type=int, default=3000, metavar="N",
                   help="inputs for the separate fuzz run; 0 = only the test suite's "
                        "(default 3000)")
    p.add_argument("--fuzz-seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None, metavar="FILE",
                   help="also write the raw records as JSON")
    p.add_argument("--force", action="store_true",
                   help="write --readme even when a test failed")
    p.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = p.parse_args(argv)
    for name in ("readme", "json"):  # resolved before the tests run from the repo root
        if getattr(args, name) is not None:
            setattr(args, name, getattr(args, name).resolve())
    col, code, seconds = run_tests(TEST_FILES, args.pytest_args)
    fuzz = run_fuzz(args.fuzz_iterations, args.fuzz_seed)
    text = render(col, code, seconds, fuzz, args.fuzz_seed)
    print(text)
    if args.json is not None:
        args.json.write_text(json.dumps({"pytest_exit": code, "seconds": seconds,
                                         "outcomes": col.outcomes, "fuzz": fuzz,
                                         "records": col.records}, indent=1, default=str))
    ok = code == 0 and (fuzz is None or fuzz.get("findings") == 0)
    if args.readme is not None:
        if not ok and not args.force:
            print(f"not updating {args.readme}: something failed (use --force)",
                  file=sys.stderr)
        else:
            sys.path.insert(0, str(ROOT / "src"))
            from srlab.eval.tables import update_readme

            update_readme(args.readme, SECTION, text)
            print(f"updated section '{SECTION}' of {args.readme}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

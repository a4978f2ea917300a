"""auto's margin per benchmark cell: auto's Y PSNR minus the better of span and span-real (and
minus span on clean), from the CSV ``srlab benchmark -o DIR`` writes. Issue 50's bar: every
margin >= -0.05 dB, and >= -0.02 dB against span on clean.

Usage: python tools/auto_margin.py out/h50-x2/benchmark.csv [more CSVs]
"""

from __future__ import annotations

import csv
import sys


def margins(rows: list[dict[str, str]]) -> list[tuple[str, float, float | None]]:
    """(cell, auto - max(span, span-real), auto - span on clean else None) per auto cell."""
    psnr = {(r["model"], r["scale"], r["dataset"], r["track"]): float(r["psnr"]) for r in rows}
    out = []
    for (model, sc, ds, track), a in sorted(psnr.items(), key=lambda kv: kv[0][1:]):
        if model != "auto":
            continue
        peers = [psnr[k] for m in ("span", "span-real") if (k := (m, sc, ds, track)) in psnr]
        if not peers:
            continue
        span = psnr.get(("span", sc, ds, track)) if track == "clean" else None
        out.append((f"x{sc} {ds} {track}", a - max(peers), None if span is None else a - span))
    return out


def main(paths: list[str]) -> int:
    rows = []
    for p in paths:
        with open(p, newline="") as f:
            rows += csv.DictReader(f)
    found = margins(rows)
    for cell, m, vs_span in found:
        extra = f"   vs span {vs_span:+.3f}" if vs_span is not None else ""
        print(f"{cell:36s} {m:+.3f}{extra}")
    if found:
        print(f"worst {min(m for _, m, _ in found):+.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

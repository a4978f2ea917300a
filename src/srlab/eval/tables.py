"""Benchmark rows as tables: markdown (with the note that says how they were measured), CSV
and JSON files, and the generated sections of README.md and docs/*.md, which are only ever
written between their ``<!-- srlab:NAME -->`` markers, never typed."""

from __future__ import annotations

import csv
import json
import os
import shlex
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from srlab.eval.benchmark import BenchRow

__all__ = ["markdown_table", "write_tables", "command_line", "update_readme"]


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


def _gmsd(value: float) -> str:
    """GMSD to 4 places; "-" for rows cached before GMSD was stored (NaN)."""
    return f"{value:.4f}" if value == value else "-"


def markdown_table(rows: list[BenchRow], command: str | None = None, *,
                   gmsd: bool = False, niqe: bool = False) -> str:
    """PSNR/SSIM (and GMSD, NIQE if asked) per dataset in columns; one line per (model, scale).

    GMSD is the perceptual column a GAN needs: its PSNR drops by design, so PSNR alone
    cannot say whether the adversarial phase helped or hurt. The real-world (degraded-track)
    tables always carry it: their rows include GAN peers such as Real-ESRGAN. Peers are
    labelled as such (``peers.peer_label``). NIQE (no-reference) reads the outputs alone, so
    it also ranks models on photos that have no ground truth.
    """
    from srlab.eval.peers import PEERS, peer_label

    datasets = list(dict.fromkeys(r.dataset for r in rows))
    degraded = any(r.track != "clean" for r in rows)  # then one column says which LR input
    gmsd = gmsd or degraded
    keys = list(dict.fromkeys((r.track, r.scale, r.model) for r in rows))
    by = {(r.track, r.scale, r.model, r.dataset): r for r in rows}
    head = ("| LR input " * degraded + "| model | scale | params | " + " | ".join(datasets)
            + " | Mpx/s |")
    lines = [head, "|" + "---|" * (4 + degraded + len(datasets))]
    for track, scale, model in keys:
        got = [by.get((track, scale, model, d)) for d in datasets]
        mine = [r for r in got if r is not None]
        cells = ["-" if r is None else f"{r.psnr:.2f} / {r.ssim:.4f}"
                 + (f" / {_gmsd(r.gmsd)}" if gmsd else "")
                 + (f" / {r.niqe:.2f}" if niqe else "") for r in got]
        label = model if mine[0].trained else f"{model} (untrained)"
        label = peer_label(model) if model in PEERS else label
        lines.append(f"| {track} " * degraded + f"| {label} | x{scale} | {mine[0].params:,} | "
                     + " | ".join(cells) + f" | {_speed(_overall_speed(mine))} |")
    reused = sorted({f"{r.model} x{r.scale}" for r in rows if r.cached})
    measures = "PSNR (dB) / SSIM" + " / GMSD (lower is better)" * gmsd + (
        " / NIQE (no-reference, lower is better; srlab's pristine model, "
        "docs/benchmarks.md#niqe)" if niqe else "")
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
                 gmsd: bool = False, niqe: bool = False) -> Path:
    """out_dir/benchmark.json, .csv and .md; returns the .md."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "benchmark.json").write_text(
        json.dumps({"command": command, "rows": [asdict(r) for r in rows]}, indent=2))
    with open(out_dir / "benchmark.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(asdict(rows[0])))
        w.writeheader()
        w.writerows(asdict(r) for r in rows)
    md = out_dir / "benchmark.md"
    md.write_text(markdown_table(rows, command, gmsd=gmsd, niqe=niqe) + "\n")
    return md


RESULT_ENV = ("SRLAB_AUTO_ESTIMATOR",)  # environment variables that change a table's figures


def command_line() -> str:
    """This process's command as a user would type it, for a table's "Made by" note, with
    the ``RESULT_ENV`` variables that are set in front (they change what auto runs)."""
    import os

    env = "".join(f"{k}={shlex.quote(os.environ[k])} " for k in RESULT_ENV if os.environ.get(k))
    return env + "srlab " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def update_readme(readme: Path, section: str, text: str) -> None:
    """Replace the block between ``<!-- srlab:NAME -->`` and ``<!-- /srlab:NAME -->``."""
    begin, end = f"<!-- srlab:{section} -->", f"<!-- /srlab:{section} -->"
    content = readme.read_text()
    if begin not in content or end not in content:
        raise ValueError(f"{readme} has no '{begin}' ... '{end}' markers")
    head, rest = content.split(begin, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(f"{head}{begin}\n{text.strip()}\n{end}{tail}")

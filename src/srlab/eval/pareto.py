"""``srlab bench --pareto``: PSNR against throughput for every model, backend and peer.

Why peak lines: "is this fast?" has a hardware answer. A network of convolutions needs a
fixed number of multiply-adds per output pixel, so the CPU's peak arithmetic rate in a
precision caps its Mpx/s in that precision: ``peak FLOP/s / FLOP per output pixel``. The
lines are drawn for the flagship (the most expensive shipped network), so its points show
how close each backend runs to what the silicon allows.

Peak model (an estimate, stated so it can be checked): cores x clock x FLOP per cycle, with
fp32 = 32 FLOP/cycle/core with AVX-512 (two 256-bit FMA pipes, as on AMD Zen 4; 16 with
AVX2 only), bf16 = 2x fp32 where avx512_bf16/amx_bf16 is listed (VDPBF16PS), int8 = 4x
fp32 where VNNI is listed (VPDPBUSD), at the clock /proc/cpuinfo reports. The FLOP are those
of direct convolution: runtimes that compute 3x3 convolutions by Winograd (oneDNN, ONNX
Runtime, OpenVINO) do fewer multiplications, and a turbo clock runs above the nominal one,
so a point can pass its line (span on ONNX Runtime float32 does here).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Peaks", "conv_flops_per_output_px", "cpu_peaks", "pareto_chart"]


@dataclass(frozen=True)
class Peaks:
    """Peak arithmetic rate of this machine in GFLOP/s (GOP/s for int8); None: not listed."""

    fp32: float
    bf16: float | None
    int8: float | None
    clock_ghz: float
    cores: int


def _clock_ghz(text: str) -> float:
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "cpu MHz":
            try:
                return float(value) / 1000
            except ValueError:
                break
    return 2.5  # unknown: a typical server clock, said in the legend


def cpu_peaks(cpuinfo: str | None = None, cores: int | None = None) -> Peaks:
    """``Peaks`` from /proc/cpuinfo's flags and clock (see the module docstring)."""
    from srlab.runtime.cpu import CPUINFO, parse_cpuinfo

    if cpuinfo is None:
        try:
            cpuinfo = CPUINFO.read_text()
        except OSError:
            cpuinfo = ""
    info = parse_cpuinfo(cpuinfo)
    ghz = _clock_ghz(cpuinfo)
    n = cores or os.cpu_count() or 1
    per_cycle = 32 if "avx512f" in info.flags else 16
    fp32 = n * ghz * per_cycle
    return Peaks(fp32=fp32, bf16=2 * fp32 if info.bf16_flags else None,
                 int8=4 * fp32 if info.vnni_flags else None, clock_ghz=ghz, cores=n)


def conv_flops_per_output_px(name: str, scale: int) -> float:
    """2 x the multiply-adds of every convolution per output pixel (inference form), counted
    with forward hooks on a small input."""
    import torch

    from srlab.api import load_model

    up = load_model(name, scale, backend="torch")
    net = up.net
    assert isinstance(net, torch.nn.Module)
    macs = 0

    def hook(mod: torch.nn.Module, _inp: object, out: torch.Tensor) -> None:
        nonlocal macs
        assert isinstance(mod, torch.nn.Conv2d)
        k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
        macs += out.numel() * k

    handles = [m.register_forward_hook(hook) for m in net.modules()
               if isinstance(m, torch.nn.Conv2d)]
    h = w = 16
    with torch.inference_mode():
        net(torch.rand(1, up.in_channels, h, w))
    for handle in handles:
        handle.remove()
    return 2 * macs / (h * w * scale * scale)


def pareto_chart(rows: Sequence, scores: dict, out: str | Path, *, dataset: str = "Urban100",
                 command: str = "", flagship: str = "span", images: int | None = None) -> Path:
    """PSNR on ``dataset`` (``speed.accuracy_scores``) against the main table's Mpx/s, log
    x axis, at the largest scale measured, with this CPU's peak lines for ``flagship``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    main = [r for r in rows if r.section == "main"]
    scale = max(r.scale for r in main)
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=110)
    style = {"torch": ("o", "C0"), "onnx": ("s", "C1"), "onnx-int8": ("D", "C2"),
             "torch-bf16": ("^", "C3"), "openvino": ("v", "C5"), "peer": ("x", "k")}
    named: set[str] = set()
    peers_named = 0
    for r in main:
        if r.scale != scale:
            continue
        psnr = scores.get((r.model, scale), {}).get(r.backend, {}).get(dataset)
        if psnr is None:
            continue
        marker, colour = style.get(r.backend, ("o", "C4"))
        ax.scatter(r.mpx_per_s, psnr, marker=marker, color=colour,
                   label="peer" if r.backend == "peer" else r.backend)
        name = r.label if r.backend == "peer" else r.model  # each model named once
        if name not in named:
            named.add(name)
            # peers sit close together: stagger their labels so they do not overprint
            dy = -10 - 9 * peers_named if r.backend == "peer" else -10
            peers_named += r.backend == "peer"
            ax.annotate(name, (r.mpx_per_s, psnr), fontsize=7, xytext=(4, dy),
                        textcoords="offset points")
    flagship_rows = [r for r in main if r.model == flagship and r.scale == scale]
    if flagship_rows:
        peaks = cpu_peaks()
        flops = conv_flops_per_output_px(flagship, scale)
        for name, gflops, style in (("fp32", peaks.fp32, "-"), ("bf16", peaks.bf16, "--"),
                                    ("int8", peaks.int8, ":")):
            if gflops:
                ax.axvline(gflops * 1e9 / flops / 1e6, color="grey", linestyle=style,
                           linewidth=1)
                ax.text(gflops * 1e9 / flops / 1e6, ax.get_ylim()[0], f" {flagship} {name} "
                        f"peak, direct conv", rotation=90, fontsize=7, va="bottom",
                        color="grey")
    handles, labels = ax.get_legend_handles_labels()
    uniq = dict(zip(labels, handles, strict=True))
    ax.legend(uniq.values(), uniq.keys(), fontsize=8, loc="lower left")
    ax.set_xscale("log")
    ax.set_xlabel(f"output Mpx/s (x{scale}, {main[0].lr_size[0]}x{main[0].lr_size[1]} input, "
                  f"{main[0].threads} thread(s), log scale)")
    which = f"first {images} images" if images else "all images"
    ax.set_ylabel(f"PSNR (Y) on {dataset} x{scale} ({which}), dB")
    ax.set_title("Quality against CPU speed, one run (x: peers, not srlab models)",
                 fontsize=9)
    if command:
        import textwrap

        fig.text(0.01, 0.005, "\n".join(textwrap.wrap(f"made by `{command}`", 190)),
                 fontsize=6, color="grey", va="bottom")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    if command:
        fig.subplots_adjust(bottom=0.16)  # room for the footer under the x label
    fig.savefig(out)
    plt.close(fig)
    return out

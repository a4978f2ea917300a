"""What this CPU can run fast: the feature probe the training loop and the benchmarks share.

Why flags *and* a measurement: a flag says the instructions exist, not that the stack uses
them well. On this project's AMD EPYC, /proc/cpuinfo lists avx512_bf16 and oneDNN reports
bf16 as supported, yet a bf16-autocast training step took 18.1 s against 1.23 s in float32
(``python tools/probes.py train-speed --net 48x14``). So ``native_bf16()`` is true only when
the flags are there *and* a short bf16 convolution measured faster than float32 in this
process, both forward (inference) and forward + backward (training), timed once, then cached.
On that EPYC the two disagree: inference on photo-sized activations is faster in bf16, the
backward pass is not, so the verdict is "no" and ``srlab bench`` still times torch-bf16.
"""

from __future__ import annotations

import functools
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CpuInfo", "Bf16Probe", "BF16_MARGIN", "bf16_verdict", "cpu_info", "cpu_model",
           "native_bf16", "parse_cpuinfo", "probe_bf16"]

CPUINFO = Path("/proc/cpuinfo")
# bf16 must beat float32 by this factor to count as native: a tie is not worth the rounding
BF16_MARGIN = 0.9
_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
_VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


@dataclass(frozen=True)
class CpuInfo:
    """The CPU's model name and the feature flags that decide bf16 and int8 speed."""

    model: str
    flags: frozenset[str]

    @property
    def bf16_flags(self) -> tuple[str, ...]:
        return tuple(f for f in _BF16_FLAGS if f in self.flags)

    @property
    def vnni_flags(self) -> tuple[str, ...]:
        return tuple(f for f in _VNNI_FLAGS if f in self.flags)

    @property
    def isa(self) -> str:
        """The widest of the vector instruction sets that change which backend is fastest."""
        return next((f for f in _ISA_ORDER if f in self.flags), "baseline")

    def describe(self) -> str:
        """'AMD EPYC: bf16 avx512_bf16, int8 avx512_vnni' (or 'none')."""
        return (f"{self.model}: bf16 {' '.join(self.bf16_flags) or 'none'}, "
                f"int8 {' '.join(self.vnni_flags) or 'none'}")


# widest first: bf16 matrix/vector units, then int8 dot products, AVX-512, AVX2
_ISA_ORDER = ("amx_bf16", "avx512_bf16", "avx512_vnni", "avx512f", "avx2")


def parse_cpuinfo(text: str) -> CpuInfo:
    """The first processor's ``model name`` and ``flags`` lines (x86 /proc/cpuinfo); an
    unknown layout gives an empty flag set, i.e. "nothing special"."""
    model, flags = "", frozenset[str]()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key == "model name" and not model:
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = frozenset(value.split())
        if model and flags:
            break
    return CpuInfo(model=model or "unknown CPU", flags=flags)


@functools.cache
def cpu_info() -> CpuInfo:
    """This machine's ``CpuInfo`` (from /proc/cpuinfo; platform's name where that is absent)."""
    try:
        return parse_cpuinfo(CPUINFO.read_text())
    except OSError:
        import platform

        return CpuInfo(model=platform.processor() or platform.machine() or "unknown CPU",
                       flags=frozenset())


def cpu_model() -> str:
    """The key measurements are stored under (``runtime.backends``): the model name and the
    widest vector instructions, because one name covers CPUs that differ where it matters (a
    cloud's "AMD EPYC" is Zen 2 with AVX2 on one machine and Zen 4 with AVX512-BF16 on the
    next, where bf16 is native on one and ~10x slower, emulated, on the other)."""
    info = cpu_info()
    return f"{info.model} [{info.isa}]"


@dataclass(frozen=True)
class Bf16Probe:
    """What decided ``native_bf16``: the flags, and seconds per conv in float32 / bf16."""

    flags: tuple[str, ...]
    fp32_s: float | None  # None: not timed (no bf16 flag, or bf16 failed to run)
    bf16_s: float | None
    native: bool
    train_fp32_s: float | None = None  # forward + backward, as a training step runs
    train_bf16_s: float | None = None

    def describe(self) -> str:
        if not self.flags:
            return "no (no avx512_bf16/amx_bf16 flag)"
        if self.fp32_s is None or self.bf16_s is None:
            return f"no ({', '.join(self.flags)} listed, but bf16 did not run)"
        ratio = self.fp32_s / self.bf16_s
        verdict = "yes" if self.native else "no"
        train = "" if not (self.train_fp32_s and self.train_bf16_s) else \
            f", training {self.train_fp32_s / self.train_bf16_s:.2f}x"
        return (f"{verdict} ({', '.join(self.flags)} listed; measured bf16 conv "
                f"{ratio:.2f}x float32's speed{train})")


def bf16_verdict(flags: tuple[str, ...], fp32_s: float | None, bf16_s: float | None, *,
                 margin: float = BF16_MARGIN) -> bool:
    """Native only with a flag and bf16 measured at most ``margin`` x float32's time."""
    return bool(flags) and fp32_s is not None and bf16_s is not None \
        and bf16_s <= margin * fp32_s


def _time_conv(repeats: int = 3, side: int = 256, *, train: bool = False
               ) -> tuple[float, float]:
    """Median seconds of one span block (48-channel 3x3 conv, ReLU, 3x3 conv) in float32 and
    under bf16 autocast, interleaved so a busy machine slows both alike.

    The input is photo-sized on purpose: at 96x96 the activations fit in cache and bf16
    measured 0.8-1.0x float32, while whole-network runs on a 480x320 input measured 1.7-1.9x
    (``srlab bench``): half the bytes per activation is where bf16 wins on this CPU."""
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(48, 48, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(48, 48, 3, padding=1)).eval()
    net = net.to(memory_format=torch.channels_last)
    x = torch.rand(1, 48, side, side).to(memory_format=torch.channels_last)

    if train:  # a training step's shape: a batch of small patches, forward and backward
        x = torch.rand(4, 48, 48, 48).to(memory_format=torch.channels_last)

    def fp32() -> None:
        out = net(x)
        if train:
            out.float().mean().backward()

    def bf16() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = net(x)
        if train:
            out.float().mean().backward()

    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    with torch.inference_mode(not train):
        fp32(), bf16()  # warm-up: oneDNN builds its kernels on the first call
        for i in range(repeats):
            for key, fn in (("fp32", fp32), ("bf16", bf16))[:: 1 if i % 2 else -1]:
                t = time.perf_counter()
                fn()
                times[key].append(time.perf_counter() - t)
    return statistics.median(times["fp32"]), statistics.median(times["bf16"])


@functools.cache
def probe_bf16() -> Bf16Probe:
    """Flags from /proc/cpuinfo, then (only if a bf16 flag is listed) the timed conv."""
    flags = cpu_info().bf16_flags
    fp32_s = bf16_s = tf = tb = None
    if flags:
        try:
            fp32_s, bf16_s = _time_conv()
            if bf16_verdict(flags, fp32_s, bf16_s):  # only then is training worth timing
                tf, tb = _time_conv(train=True)
        except RuntimeError:  # bf16 kernels missing in this torch build
            pass
    native = bf16_verdict(flags, fp32_s, bf16_s) and bf16_verdict(flags, tf, tb)
    return Bf16Probe(flags, fp32_s, bf16_s, native, tf, tb)


def native_bf16() -> bool:
    """True when bfloat16 is listed by the CPU *and* measured faster than float32 here, for
    inference and for training (the training loop's bf16 switch relies on it)."""
    return probe_bf16().native

"""The ncnn backend (``--backend ncnn``): srlab's own networks written as an ncnn graph and run
by Tencent's ncnn on the CPU, in float32.

Why beside ONNX Runtime and OpenVINO: ncnn runs stride-1 3x3 convolutions as Winograd
transforms with packed AVX2/AVX512 kernels, where the other two run them directly, so SPAN, a
stack of 3x3 convolutions, runs 1.4-1.6x faster on it on a CPU without native bf16
(docs/benchmarks.md, the peers-speed table ``srlab bench`` made, and the measured store).
It is the runtime the Real-ESRGAN peers already run on, so it costs no new package: the
``peers`` extra installs it, and it is imported only here.

The graph is written from the torch module, not converted from the ONNX export: SPAN and
ESPCN need only a handful of ncnn layers (Convolution with its activation, Split, BinaryOp,
Concat, Sigmoid, Swish, TanH, PixelShuffle), so the writer stays small and exact. ``WRITERS``
maps an architecture to its writer: the one place that says what ncnn can run; any other
network raises ``NcnnError`` (``--backend auto`` then takes the next backend measured). Every
graph is checked against torch on a random input before it is used (``PARITY_TOL``, the
ONNX export's bound). Tiling, colour and alpha stay in ``Upscaler``.
"""

from __future__ import annotations

import importlib.util
import struct
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from srlab.runtime.onnx import PARITY_TOL, OnnxError, SessionNet
from srlab.runtime.torch_model import load_torch_model
from srlab.runtime.upscaler import StandInUpscaler, Upscaler
from srlab.zoo.espcn import ESPCN
from srlab.zoo.span import SPAN

__all__ = ["NCNN_HINT", "NcnnError", "NcnnGraph", "NcnnUpscaler", "WRITERS", "graph_for",
           "ncnn_available", "ncnn_upscaler", "load_ncnn_model"]

NCNN_HINT = "pip install 'srlab[peers]'"

_RELU = 1  # ncnn Convolution's activation_type for ReLU (param 9)


class NcnnError(OnnxError):
    """The ncnn backend cannot run this network here (a subclass of ``OnnxError``, the
    backends' one failure type, so ``--backend auto`` falls back past it)."""


def ncnn_available() -> bool:
    """The ncnn package is installed (found, not imported)."""
    return importlib.util.find_spec("ncnn") is not None


@dataclass
class NcnnGraph:
    """An ncnn network being written: the layers of its text ``.param`` file and the float32
    weights of its ``.bin`` file, in layer order (ncnn's file formats, version 7767517)."""

    # (type, inputs, outputs, params) per layer
    layers: list[tuple[str, list[str], list[str], str]] = field(default_factory=list)
    weights: list[bytes] = field(default_factory=list)
    _uses: int = 0

    def layer(self, kind: str, inputs: list[str], outputs: list[str], params: str = "") -> None:
        self.layers.append((kind, inputs, outputs, params))

    def blob(self, stem: str) -> str:
        self._uses += 1
        return f"{stem}{self._uses}"

    def split(self, x: str, n: int = 2) -> list[str]:
        """ncnn needs a Split where a blob is read by more than one layer."""
        outs = [self.blob(f"{x}_") for _ in range(n)]
        self.layer("Split", [x], outs)
        return outs

    def conv(self, x: str, weight: torch.Tensor, bias: torch.Tensor | None, *,
             dilation: int = 1, relu: bool = False) -> str:
        """A same-padded, stride-1 convolution (ReLU fused when asked)."""
        w = weight.detach().float().cpu().numpy()
        cout, _cin, kh, kw = w.shape
        if kh != kw or kh % 2 == 0:
            raise NcnnError(f"ncnn graph: a {kh}x{kw} convolution is not written here")
        params = (f"0={cout} 1={kw} 2={dilation} 4={dilation * (kw // 2)} "
                  f"5={int(bias is not None)} 6={w.size}" + (f" 9={_RELU}" if relu else ""))
        out = self.blob("conv")
        self.layer("Convolution", [x], [out], params)
        # weights: a 4-byte tag (0 = raw float32), then the data; the bias has no tag
        self.weights.append(struct.pack("<I", 0) + w.astype("<f4").tobytes())
        if bias is not None:
            self.weights.append(bias.detach().float().cpu().numpy().astype("<f4").tobytes())
        return out

    def op(self, kind: str, inputs: list[str], params: str = "") -> str:
        out = self.blob(kind.lower())
        self.layer(kind, inputs, [out], params)
        return out

    def rename_output(self, blob: str, name: str) -> None:
        """Give the last layer's output ``blob`` the public ``name`` the caller extracts."""
        kind, inputs, outputs, params = self.layers[-1]
        if outputs != [blob]:
            raise NcnnError(f"ncnn graph: {blob} is not the last layer's output")
        self.layers[-1] = (kind, inputs, [name], params)

    def param_text(self) -> str:
        lines = [" ".join([kind, f"{kind.lower()}{i}", str(len(ins)), str(len(outs)), *ins,
                           *outs, params]).rstrip()
                 for i, (kind, ins, outs, params) in enumerate(self.layers)]
        blobs = sum(len(outs) for _, _, outs, _ in self.layers)
        return f"7767517\n{len(lines)} {blobs}\n" + "\n".join(lines) + "\n"

    def bin_bytes(self) -> bytes:
        return b"".join(self.weights)


# BinaryOp's op_type (param 0), and param 1=1 2=v for "with the scalar v"
_ADD, _SUB, _MUL = 0, 1, 2


def _conv_of(m: nn.Module) -> nn.Conv2d:
    """The one 3x3 conv a (fused) SPAN conv runs as."""
    fused = getattr(m, "fused", None)
    if isinstance(fused, nn.Conv2d):
        return fused
    if isinstance(m, nn.Conv2d):
        return m
    raise NcnnError("ncnn graph: re-parameterise the network first (load it with fuse=True)")


def _span(g: NcnnGraph, net: SPAN, x: str) -> str:
    if net.skip == "bicubic":
        raise NcnnError("ncnn graph: SPAN with a bicubic skip is not written here")
    x_net, x_skip = g.split(x) if net.skip == "repeat" else (x, "")
    c = _conv_of(net.head)
    head_fuse, h = g.split(g.conv(x_net, c.weight, c.bias))
    for block in net.blocks:
        t, h_res = g.split(h)
        relu = block.act is F.relu  # fused into the conv; SiLU is ncnn's Swish layer
        for i, m in enumerate(block.convs):
            c = _conv_of(m)
            act = i < len(block.convs) - 1
            t = g.conv(t, c.weight, c.bias, dilation=c.dilation[0], relu=act and relu)
            if act and not relu:
                t = g.op("Swish", [t])
        if block.attention:  # (t + x) * (sigmoid(t) - 0.5)
            t_sum, t_gate = g.split(t)
            gate = g.op("BinaryOp", [g.op("Sigmoid", [t_gate])], f"0={_SUB} 1=1 2=0.5")
            h = g.op("BinaryOp", [g.op("BinaryOp", [t_sum, h_res], f"0={_ADD}"), gate],
                     f"0={_MUL}")
        else:
            h = g.op("BinaryOp", [h_res, t], f"0={_ADD}")
    c = _conv_of(net.body_tail)
    h = g.op("Concat", [head_fuse, g.conv(h, c.weight, c.bias)], "0=0")
    h = g.conv(h, net.fusion.weight, net.fusion.bias)
    h = g.conv(h, net.tail.weight, net.tail.bias)
    if net.skip == "repeat":  # x.repeat_interleave(s^2, dim=1) as an exact 1x1 convolution
        c_in, s2 = net.in_channels, net.scale * net.scale
        repeat = torch.eye(c_in).repeat_interleave(s2, dim=0).view(c_in * s2, c_in, 1, 1)
        h = g.op("BinaryOp", [h, g.conv(x_skip, repeat, None)], f"0={_ADD}")
    return g.op("PixelShuffle", [h], f"0={net.scale}")


def _espcn(g: NcnnGraph, net: ESPCN, x: str) -> str:
    h = g.op("TanH", [g.conv(x, net.conv1.weight, net.conv1.bias)])
    h = g.op("TanH", [g.conv(h, net.conv2.weight, net.conv2.bias)])
    return g.op("PixelShuffle", [g.conv(h, net.conv3.weight, net.conv3.bias)],
                f"0={net.scale}")


WRITERS: dict[type[nn.Module], Callable[[NcnnGraph, Any, str], str]] = {
    SPAN: _span,
    ESPCN: _espcn,
}
"""Architecture -> the writer of its ncnn graph (input blob in, output blob out)."""


def graph_for(net: nn.Module) -> NcnnGraph:
    """``net`` (on torch, fused) as an ncnn graph with input blob ``in`` and output ``out``."""
    writer = WRITERS.get(type(net))
    if writer is None:
        names = ", ".join(sorted(t.__name__ for t in WRITERS))
        raise NcnnError(f"the ncnn backend runs {names} networks, not {type(net).__name__}")
    g = NcnnGraph()
    g.layer("Input", [], ["in"])
    g.rename_output(writer(g, net, "in"), "out")
    return g


def _ncnn() -> Any:
    try:
        import ncnn
    except ImportError:
        raise NcnnError(f"the ncnn backend needs ncnn: {NCNN_HINT}") from None
    return ncnn


class _NcnnSession:
    """A loaded ncnn network behind the ``session.run(None, {"lr": x})`` call of
    ``runtime.onnx.SessionNet`` (as OpenVINO's compiled model is): one tensor wrapper for
    every runtime that takes arrays."""

    def __init__(self, graph: NcnnGraph, threads: int | None) -> None:
        ncnn = _ncnn()
        net = ncnn.Net()
        opt = net.opt
        opt.use_vulkan_compute = False
        opt.num_threads = threads or torch.get_num_threads()
        # float32 throughout: the trained numbers (ncnn would store fp16/bf16 where it can)
        opt.use_fp16_packed = opt.use_fp16_storage = opt.use_fp16_arithmetic = False
        opt.use_bf16_storage = opt.use_bf16_packed = False
        # from files, not load_model_mem: ncnn reads weights from memory in place, so a
        # Python buffer would have to outlive the net; read from a file, ncnn owns its copy
        with tempfile.TemporaryDirectory() as tmp:
            param, weights = Path(tmp) / "net.param", Path(tmp) / "net.bin"
            param.write_text(graph.param_text())
            weights.write_bytes(graph.bin_bytes())
            if net.load_param(str(param)) != 0 or net.load_model(str(weights)) != 0:
                raise NcnnError("ncnn refused the written graph")
        self.net = net
        self._ncnn = ncnn

    def run(self, _outputs: object, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        x = feeds["lr"]
        if x.shape[0] != 1:
            raise ValueError(f"the ncnn backend runs one image at a time, not {x.shape[0]}")
        ex = self.net.create_extractor()
        ex.input("in", self._ncnn.Mat(np.ascontiguousarray(x[0])))
        ret, out = ex.extract("out")
        if ret != 0:
            raise NcnnError(f"ncnn failed to run the network (code {ret})")
        return [np.array(out)[None]]


class NcnnUpscaler(StandInUpscaler):
    """An ``Upscaler`` whose network runs in ncnn (tiling, colour and alpha inherited)."""

    backend = "ncnn"

    def __init__(self, session: _NcnnSession, *, like: Upscaler) -> None:
        super().__init__(SessionNet(session), like=like)


def ncnn_upscaler(up: Upscaler, *, threads: int | None = None) -> NcnnUpscaler:
    """A torch ``Upscaler`` (a registered model or a span/span-real blend) on ncnn, checked
    against torch on a random 37x29 input (odd sizes: no shape is special-cased)."""
    if up.backend != "torch" or not isinstance(up.net, nn.Module):
        raise NcnnError(f"the ncnn graph is written from a model on torch, not {up.backend}")
    out = NcnnUpscaler(_NcnnSession(graph_for(up.net), threads), like=up)
    x = torch.rand(1, up.in_channels, 29, 37, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        diff = float((out.net(x) - up.net(x)).abs().max())
    if not diff <= PARITY_TOL:
        raise NcnnError(f"ncnn graph of {up.name} differs from torch by {diff:.2e} "
                        f"(limit {PARITY_TOL:g})")
    return out


def load_ncnn_model(name: str, scale: int = 4, *, weights: str | Path | None = None,
                    threads: int | None = None) -> NcnnUpscaler:
    """The model on ncnn (written from its fused torch network, nothing cached on disk:
    writing the graph takes milliseconds)."""
    _ncnn()  # the missing-package error before the network is loaded
    return ncnn_upscaler(load_torch_model(name, scale, weights=weights), threads=threads)

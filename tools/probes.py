"""Small measurements quoted in docstrings and the README, rerunnable.

    python tools/probes.py train-speed [--threads N] [--patch P ...]  # s/step, bf16 vs fp32
    python tools/probes.py vdsr-init                    # VDSR-20 gradient reach at init

train-speed: one Adam step (forward, L1, backward) of luma span nets on a batch of 16
LR patches (48 px unless --patch), minimum over 4 timed steps after 2 warm-up steps; with
several --patch values it shows what a smaller patch buys in steps per CPU-second.
vdsr-init: the first conv's gradient norm over the last conv's for PyTorch's default init
and for VDSR's own (He) init, on a random batch.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from srlab.models.registry import build_model
from srlab.models.vdsr import VDSR


def train_speed(threads: int, patches: list[int]) -> None:
    torch.set_num_threads(threads)
    for (feat, blocks), patch in ((fb, p) for fb in ((48, 8), (64, 8)) for p in patches):
        for bf16 in (True, False):
            torch.manual_seed(0)
            net = build_model("span", 4, in_channels=1, feat=feat, blocks=blocks, convs=2,
                              skip="repeat", rep=False, attention=False, act="relu")
            net = net.to(memory_format=torch.channels_last)
            opt = torch.optim.Adam(net.parameters(), 1e-4)
            x = torch.rand(16, 1, patch, patch).contiguous(memory_format=torch.channels_last)
            y = torch.rand(16, 1, 4 * patch, 4 * patch)
            times = []
            for _ in range(6):
                t = time.perf_counter()
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    out = net(x)
                loss = (out.float() - y).abs().mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                times.append(time.perf_counter() - t)
            params = sum(p.numel() for p in net.parameters())
            print(f"{feat}x{blocks} ({params:,} params) patch {patch} {threads} thread(s) "
                  f"{'bf16' if bf16 else 'fp32'}: {min(times[2:]):.3f} s/step")


def vdsr_init() -> None:
    for init in ("default", "vdsr"):
        torch.manual_seed(0)
        net = VDSR(scale=2, in_channels=1, depth=20)
        convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
        if init == "default":
            for conv in convs:
                conv.reset_parameters()  # PyTorch's own init, as before VDSR set He's
        x, y = torch.rand(4, 1, 24, 24), torch.rand(4, 1, 48, 48)
        (net(x) - y).abs().mean().backward()
        ratio = float(convs[0].weight.grad.norm() / convs[-1].weight.grad.norm())
        print(f"{init} init: first/last conv gradient norm {ratio:.1e}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="probe", required=True)
    sp = sub.add_parser("train-speed")
    sp.add_argument("--threads", type=int, default=2)
    sp.add_argument("--patch", type=int, action="append", default=None,
                    help="LR patch edge (repeatable; default 48)")
    sub.add_parser("vdsr-init")
    args = ap.parse_args()
    if args.probe == "train-speed":
        train_speed(args.threads, args.patch or [48])
    else:
        vdsr_init()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

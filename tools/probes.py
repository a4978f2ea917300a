"""Small measurements quoted in docstrings and the README, rerunnable.

    python tools/probes.py train-speed [--threads N] [--patch P ...] [--net FxB ...] [--fp32]
    python tools/probes.py vdsr-init                    # VDSR-20 gradient reach at init
    python tools/probes.py overfit CONFIG [--model M] [--weights FILE] [--n N]

train-speed: one Adam step (forward, L1, backward) of luma span nets on a batch of 16
LR patches (48 px unless --patch), minimum over 4 timed steps after 2 warm-up steps; with
several --patch values it shows what a smaller patch buys in steps per CPU-second; --net
64x8 (features x blocks, repeatable; default 48x8 and 64x8) compares body shapes at a cost.
vdsr-init: the first conv's gradient norm over the last conv's for PyTorch's default init
and for VDSR's own (He) init, on a random batch.
overfit: is a model data-limited? Its PSNR gain over bicubic (standard protocol, whole
images) on the run's held-out validation images against N of its training images. A clearly
larger gain on training images means memorisation, so more data or augmentation would help;
equal gains mean capacity or optimisation is the limit.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from srlab.zoo.registry import build_model
from srlab.zoo.vdsr import VDSR


def _net_shape(text: str) -> tuple[int, int]:
    """argparse type for --net, so a typo is a one-line usage error, not a traceback."""
    feat, sep, blocks = text.partition("x")
    if not (sep and feat.isdigit() and blocks.isdigit() and int(feat) > 0 and int(blocks) > 0):
        raise argparse.ArgumentTypeError(f"expected FEATxBLOCKS such as 64x8, got {text!r}")
    return int(feat), int(blocks)


def train_speed(threads: int, patches: list[int], nets: list[tuple[int, int]],
                fp32_only: bool) -> None:
    torch.set_num_threads(threads)
    for (feat, blocks), patch in ((fb, p) for fb in nets for p in patches):
        for bf16 in (False,) if fp32_only else (True, False):
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


def overfit(config: str, model: str, weights: str | None, n: int) -> None:
    import numpy as np

    from srlab.api import load_model
    from srlab.image.metrics import evaluate
    from srlab.image.resize import imresize
    from srlab.train.config import load_config
    from srlab.train.data import datasets_for as _datasets

    torch.set_num_threads(1)
    cfg = load_config(config)
    s = cfg.model.scale
    train_set, val_set = _datasets(cfg)
    up = load_model(model, s, weights=weights)

    def gains(data, idx) -> np.ndarray:
        out = []
        for i in idx:
            lr, hr = data.full_pair(int(i))
            bic = evaluate(imresize(lr, s), hr, scale=s).psnr
            out.append(evaluate(up.upscale_array(lr), hr, scale=s).psnr - bic)
        return np.array(out)

    pick = np.random.default_rng(0).choice(len(train_set), min(n, len(train_set)), replace=False)
    for label, g in (("held-out", gains(val_set, range(len(val_set)))),
                     ("training", gains(train_set, pick))):
        print(f"{label}: {len(g)} images, gain over bicubic {g.mean():.3f} dB "
              f"(standard error {g.std(ddof=1) / np.sqrt(len(g)):.3f})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="probe", required=True)
    sp = sub.add_parser("train-speed")
    sp.add_argument("--threads", type=int, default=2)
    sp.add_argument("--patch", type=int, action="append", default=None,
                    help="LR patch edge (repeatable; default 48)")
    sp.add_argument("--net", type=_net_shape, action="append", default=None,
                    help="FEATxBLOCKS body shape (repeatable; default 48x8 and 64x8)")
    sp.add_argument("--fp32", action="store_true", help="skip the bf16 timings")
    sub.add_parser("vdsr-init")
    op = sub.add_parser("overfit")
    op.add_argument("config", help="the run's config (its data and validation split)")
    op.add_argument("--model", default="span")
    op.add_argument("--weights", default=None, help="default: the shipped weights")
    op.add_argument("--n", type=int, default=30, help="training images to measure")
    args = ap.parse_args()
    if args.probe == "train-speed":
        train_speed(args.threads, args.patch or [48], args.net or [(48, 8), (64, 8)], args.fp32)
    elif args.probe == "overfit":
        overfit(args.config, args.model, args.weights, args.n)
    else:
        vdsr_init()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Train auto's damage estimator (``srlab.image.damage``) on training images only.

Two phases, both seeded:

1. ``targets``: each of the first ``--images`` training images (default BSDS500-train, never a
   benchmark set nor the labelled set's BSDS500-test / ImageNet-sample400) gets a seeded crop
   and one draw of every labelled class (``eval.inspect.CLASSES``, the .jpg ones through their
   file) plus one ``real`` chain, at x2. Every input is upscaled at each strength step (the
   span/span-real blend, torch float32), and for each 32x32 LR patch on the 8x8 grid the
   regret of each step (Y PSNR of its HR patch below the best step's, clipped at 3 dB) is
   kept. Cached as an .npz (minutes of CPU).
2. ``fit``: the features (``damage.features``) of every input, made again from the same
   seeds (with the .jpg files' tables), and DamageHead on them; per input the regret of a step
   is the mean over its patches, the loss the expected regret under the softmax; the last fifth
   of the images is held out. Writes the weights (safetensors, plain tensors) and the card,
   with the held-out regret beside always 0, always 1, the best constant and the oracle.

Usage: nice -n 10 python tools/train_damage.py [--images 40] [--epochs 3000]
           [--out src/srlab/weights/damage.safetensors]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from srlab.eval.inspect import CLASSES, SCALE, LabelledClass, make_sample
from srlab.image.damage import FEATURES, STEPS, DamageHead, features
from srlab.image.datasets import find_images, load_rgb, shared_dir
from srlab.image.degrade import RealDegradation, degrade
from srlab.image.metrics import rgb_to_y

LR_SIDE = 96  # LR crop: 3 x 3 patches of 32
PATCH = 32
CLIP_DB = 3.0
SEED = 5050


def _samples(folder: Path, n_images: int, tmp: Path):
    """(image index, class index, HR crop, LR, .jpg path or None) for every training input,
    seeded: the class chains of the labelled set, then one ``real`` chain."""
    classes: list[LabelledClass | None] = [*CLASSES, None]
    side = LR_SIDE * SCALE
    for i, path in enumerate(find_images(folder)[:n_images]):
        full = load_rgb(path)
        rng = np.random.default_rng([SEED, i])
        if min(full.shape[:2]) < side:
            continue
        y0 = int(rng.integers(0, full.shape[0] - side + 1))
        x0 = int(rng.integers(0, full.shape[1] - side + 1))
        hr = np.ascontiguousarray(full[y0 : y0 + side, x0 : x0 + side])
        for c, cls in enumerate(classes):
            if cls is None:
                lr = degrade(hr, SCALE, RealDegradation(), np.random.default_rng([SEED, i, c]))
                file = None
            else:
                lr, file = make_sample(hr, cls, [SEED, i, c], tmp, f"t{i}_{c}")
            yield i, c, hr, lr, file


def _targets(folder: Path, n_images: int, log) -> dict[str, np.ndarray]:
    """Per 32x32 LR patch (3 x 3 per input) the regret of each step, clipped at CLIP_DB."""
    from srlab.api import load_model

    torch.manual_seed(SEED)
    nets = {s: load_model(scale=SCALE, denoise=s, backend="torch") for s in STEPS}
    corners = [(y, x) for y in range(0, LR_SIDE, PATCH) for x in range(0, LR_SIDE, PATCH)]
    regrets, image_ids, class_ids = [], [], []
    t0 = time.time()
    by_image: dict[int, list] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, c, hr, lr, _ in _samples(folder, n_images, Path(tmp)):
            by_image.setdefault(i, []).append((c, hr, lr))
            if c < len(CLASSES):
                continue
            items = by_image.pop(i)
            batch = torch.from_numpy(np.stack([it[2] for it in items]).astype(np.float32)
                                     / 255).permute(0, 3, 1, 2)
            hy = rgb_to_y(hr)
            psnrs = []  # steps x inputs x patches
            for s in STEPS:
                with torch.inference_mode():
                    out = nets[s]._forward(batch.contiguous())  # luma net + bicubic colour
                srs = (out * 255).round().permute(0, 2, 3, 1).numpy().astype(np.uint8)
                per = []
                for sr in srs:
                    sy = rgb_to_y(sr)
                    row = []
                    for y, x in corners:
                        a = sy[2 * y : 2 * (y + PATCH), 2 * x : 2 * (x + PATCH)]
                        b = hy[2 * y : 2 * (y + PATCH), 2 * x : 2 * (x + PATCH)]
                        row.append(10 * np.log10(255.0**2 / max(np.mean((a - b) ** 2), 1e-3)))
                    per.append(row)
                psnrs.append(per)
            p_all = np.array(psnrs).transpose(1, 2, 0)  # inputs x patches x steps
            for (c2, _, _), p in zip(items, p_all, strict=True):
                regrets.append(np.minimum(p.max(axis=1, keepdims=True) - p, CLIP_DB))
                image_ids += [i] * len(corners)
                class_ids += [c2] * len(corners)
            log(f"image {i + 1}/{n_images}: {time.time() - t0:.0f} s")
    return {"regret": np.concatenate(regrets).astype(np.float32),
            "image": np.array(image_ids), "cls": np.array(class_ids)}


def _features(folder: Path, n_images: int) -> np.ndarray:
    """The estimator's features of every training input, in ``_samples`` order."""
    from srlab.image.condition import chroma_noise, jpeg_lattice, jpeg_quality_of, noise_sigma

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for _, _, _, lr, file in _samples(folder, n_images, Path(tmp)):
            q = jpeg_quality_of(file) if file is not None else None
            lat, lat_q = jpeg_lattice(lr)
            rows.append(features(lr, q, lat, lat_q, noise_sigma(lr), chroma_noise(lr)))
    return np.stack(rows)


def _per_input(data: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(regret per input and step: the mean over its patches, image ids, class ids), in the
    order the inputs were made."""
    key = data["image"] * 100 + data["cls"]
    _, first = np.unique(key, return_index=True)
    order = np.sort(first)
    keys = key[order]
    regret = np.stack([data["regret"][key == k].mean(axis=0) for k in keys])
    return regret, keys // 100, keys % 100


def _fit(f: np.ndarray, regret: np.ndarray, images: np.ndarray, hidden: int, epochs: int,
         weight_decay: float, log) -> tuple[DamageHead, dict]:
    torch.manual_seed(SEED)
    uniq = np.unique(images)
    held = images >= uniq[int(0.8 * len(uniq))]
    x, r = torch.from_numpy(f).float(), torch.from_numpy(regret).float()
    net = DamageHead(n_features=f.shape[1], hidden=hidden)
    net.mean.copy_(x[~held].mean(dim=0))
    net.std.copy_(x[~held].std(dim=0).clamp_min(1e-3))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2, weight_decay=weight_decay)
    for epoch in range(epochs):
        p = torch.softmax(net(x[~held]), dim=1)
        loss = (p * r[~held]).sum(dim=1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if epoch % 500 == 499:
            log(f"epoch {epoch + 1}: train regret {loss.item():.3f} dB")
    net.eval()
    steps = torch.tensor(STEPS)
    with torch.inference_mode():
        pv = torch.softmax(net(x[held]), dim=1)
    pick = torch.round((pv * steps).sum(dim=1) * (len(STEPS) - 1)).long()
    rv = r[held]
    stats = {
        "inputs_train": int((~held).sum()), "inputs_heldout": int(held.sum()),
        "heldout_images": int(len(np.unique(images[held]))),
        "heldout_regret_db": float(rv[torch.arange(len(rv)), pick].mean()),
        "heldout_regret_always_0_db": float(rv[:, 0].mean()),
        "heldout_regret_always_1_db": float(rv[:, -1].mean()),
        "heldout_regret_best_constant_db": float(rv.mean(dim=0).min()),
        "heldout_regret_oracle_db": float(rv.min(dim=1).values.mean()),
    }
    return net, stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-dir", type=Path,
                    default=shared_dir() / "datasets" / "train" / "BSDS500-train")
    ap.add_argument("--images", type=int, default=40)
    ap.add_argument("--epochs", type=int, default=3000)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--cache", type=Path, default=Path("out/damage_targets.npz"))
    ap.add_argument("--out", type=Path, default=Path("src/srlab/weights/damage.safetensors"))
    args = ap.parse_args()
    torch.set_num_threads(1)

    def log(msg: str) -> None:
        print(msg, flush=True)

    if args.cache.is_file():
        data = dict(np.load(args.cache))
        log(f"targets from {args.cache} ({len(data['regret'])} patches)")
    else:
        data = _targets(args.train_dir, args.images, log)
        args.cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(args.cache, **data)
    regret, images, _ = _per_input(data)
    fcache = args.cache.with_name(args.cache.stem + "_features.npy")
    if fcache.is_file():
        f = np.load(fcache)
    else:
        f = _features(args.train_dir, args.images)
        np.save(fcache, f)
    net, stats = _fit(f, regret, images, args.hidden, args.epochs, args.weight_decay, log)
    from safetensors.torch import save_file

    from srlab.zoo.weights import atomic_replace

    meta = {"arch": "DamageHead", "hidden": str(args.hidden), "features": json.dumps(FEATURES),
            "steps": json.dumps(STEPS),
            "train_dir": args.train_dir.name, "images": str(args.images),
            "epochs": str(args.epochs), "classes": json.dumps([c.label for c in CLASSES]
                                                              + ["real chain"]),
            "stats": json.dumps(stats)}
    state = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    atomic_replace(args.out, lambda tmp: save_file(state, tmp, meta))
    params = sum(p.numel() for p in net.parameters())
    card = args.out.with_suffix(".md")
    atomic_replace(card, lambda tmp: Path(tmp).write_text(_card(args, params, stats)))
    log(f"wrote {args.out} ({params} parameters) and {card}")
    log(json.dumps(stats, indent=1))


def _card(args: argparse.Namespace, params: int, stats: dict) -> str:
    classes = "; ".join(c.label for c in CLASSES)
    return f"""# damage estimator (auto's strength)

- what: `srlab.image.damage.DamageHead`, {params:,} parameters: the features
  {", ".join(FEATURES)} (`damage.features`), normalised, one hidden layer of {args.hidden}, the
  probabilities of the denoise strengths {", ".join(f"{s:g}" for s in STEPS)} of the
  span/span-real blend; `srlab.image.condition.choose` rounds their expectation to a step.
- training: `python tools/train_damage.py --images {args.images} --epochs {args.epochs}
  --hidden {args.hidden} --weight-decay {args.weight_decay:g}` (seed {SEED}): {args.images}
  images of {args.train_dir.name} (training images only),
  a {LR_SIDE * SCALE} px seeded crop each, one draw of every labelled class
  ({classes}) and one `real` chain, at x{SCALE}. Target per input: the regret of each strength
  (Y PSNR of the upscaled 32x32 patches against the HR below the best strength's, clipped at
  {CLIP_DB:g} dB, averaged over its 9 patches); loss: the expected regret under the softmax.
- held out: the last fifth of the images ({stats["heldout_images"]} images,
  {stats["inputs_heldout"]} inputs; trained on {stats["inputs_train"]}). Mean regret per input:
  this estimator's step {stats["heldout_regret_db"]:.3f} dB; always strength 0 (span)
  {stats["heldout_regret_always_0_db"]:.3f} dB; always 1 (span-real)
  {stats["heldout_regret_always_1_db"]:.3f} dB; the best single strength
  {stats["heldout_regret_best_constant_db"]:.3f} dB; the best strength per input (an oracle)
  {stats["heldout_regret_oracle_db"]:.3f} dB.
- measured on the labelled set (BSDS500-test, never trained on): docs/real-world.md, made by
  `srlab inspect --eval`.
- licence: MIT (trained on BSDS500-train, research use).
"""


if __name__ == "__main__":
    main()

"""Train auto's damage estimator (``srlab.image.damage``) on training images only.

Four phases, all seeded, each cached under ``out/`` so the work can run in pieces (each
phase stops after ``--max-minutes`` and the next call continues where it stopped):

1. ``regret``: the first ``--regret-images`` training images (default BSDS500-train, never a
   benchmark set nor the labelled set's BSDS500-test), a seeded 96 px LR crop each, through
   one draw of every labelled class (``eval.inspect.CLASSES``, the .jpg ones through their
   file) at x2 and at x4. Each input is upscaled at every strength step (the span/span-real
   blend, torch float32); per class and scale, the mean Y PSNR of each step against the HR.
2. ``features``: every labelled class at x2 and x4 on each of the first ``--images``
   training images (the whole image, at most 512 px, as ``srlab inspect --eval`` crops), and
   ``damage.features`` of each input (with the .jpg files' tables).
3. ``cnn``: the same inputs (and the ``--clean-extra`` ones) as luma; ``ArtifactCNN`` learns
   damaged (every damaged class) against clean and camera-like clean on random
   ``--cnn-patch`` px patches of the training images' inputs (``--cnn-steps`` batches of 64),
   and its score of every input becomes the last feature. Not resumable: about 20-30 min on
   one core at the defaults, cached once done.
4. ``fit``: the target step of an input is its class's: for clean 0; for a damaged class the
   step >= 0.5 (issue 50's bar) that scored best in phase 1 at that scale; for camera-like
   clean the step that scored best (``--camera skip`` leaves that class out). DamageHead
   learns them (cross-entropy, full batch, Adam); the last fifth of the images is held out
   and reported per class. Writes the weights (safetensors, plain tensors) and the card.

Usage: nice -n 10 python tools/train_damage.py [--images 200] [--regret-images 12]
           [--epochs 3000] [--out src/srlab/weights/damage.safetensors]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from srlab.eval.inspect import CLASSES, SIDE, gray_rgb, make_sample
from srlab.eval.noref import FORBIDDEN_FIT_FOLDERS
from srlab.image.damage import FEATURES, STEPS, ArtifactCNN, DamageHead, features
from srlab.image.datasets import find_images, load_rgb, shared_dir
from srlab.image.metrics import psnr

SCALES = (2, 4)
REGRET_LR = 96  # LR side of the regret crops
SEED = 5050


def _crop(full: np.ndarray, side: int, scale: int, rng: np.random.Generator) -> np.ndarray:
    """A seeded crop of at most ``side`` px, a multiple of ``scale``."""
    h, w = (min(n, side) // scale * scale for n in full.shape[:2])
    y0 = int(rng.integers(0, full.shape[0] - h + 1))
    x0 = int(rng.integers(0, full.shape[1] - w + 1))
    return np.ascontiguousarray(full[y0 : y0 + h, x0 : x0 + w])


def _regret(folder: Path, n_images: int, cache: Path, deadline: float, log) -> bool:
    """Phase 1, resumable: mean PSNR per (class, scale, step) over the regret images."""
    from srlab.api import load_model

    done = dict(np.load(cache)) if cache.is_file() else {}
    psnrs = done.get("psnr", np.zeros((0, len(SCALES), len(CLASSES), len(STEPS))))
    paths = find_images(folder)[:n_images]
    if len(psnrs) >= len(paths):
        return True
    torch.manual_seed(SEED)
    nets = {(sc, s): load_model(scale=sc, denoise=s, backend="torch")
            for sc in SCALES for s in STEPS}
    rows = list(psnrs)
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(len(rows), len(paths)):
            full = load_rgb(paths[i])
            row = np.zeros((len(SCALES), len(CLASSES), len(STEPS)))
            for a, sc in enumerate(SCALES):
                hr = _crop(full, REGRET_LR * sc, sc, np.random.default_rng([SEED, 1, i, sc]))
                for c, cls in enumerate(CLASSES):
                    lr, _ = make_sample(hr, cls, [SEED, 1, i, sc, c], Path(tmp), f"r{i}",
                                        scale=sc)
                    for k, s in enumerate(STEPS):
                        sr = nets[(sc, s)].upscale_array(lr)
                        row[a, c, k] = psnr(sr, hr, crop_border=sc)
            rows.append(row)
            np.savez(cache, psnr=np.stack(rows))
            log(f"regret: image {i + 1}/{len(paths)}")
            if time.time() > deadline and i + 1 < len(paths):
                return False
    return True


def _input_features(lr: np.ndarray, file: Path | None) -> np.ndarray:
    """``damage.features`` of one labelled input, with its file's JPEG tables if it has one."""
    from srlab.image.condition import chroma_noise, jpeg_lattice, jpeg_quality_of, noise_sigma

    q = jpeg_quality_of(file) if file is not None else None
    lat, lat_q = jpeg_lattice(lr)
    return features(lr, q, lat, lat_q, noise_sigma(lr), chroma_noise(lr))[:-1]  # CNN: phase 3


def _load(path: Path, i: int, gray_every: int) -> np.ndarray:
    """Training image ``i``, in gray (luma in all three channels) every ``gray_every``th
    (``--gray-every``; 0: never)."""
    full = load_rgb(path)
    return gray_rgb(full) if gray_every and i % gray_every == gray_every - 1 else full


def _labelled_inputs(paths: list[Path], start: int, tmp: Path, gray_every: int):
    """(image index, scale, class, LR, .jpg file or None) of every labelled class at every
    scale of each image from ``start``, seeded: the features and the CNN see the same
    inputs."""
    for i in range(start, len(paths)):
        full = _load(paths[i], i, gray_every)
        for sc in SCALES:
            hr = _crop(full, 2 * SIDE, sc, np.random.default_rng([SEED, 2, i, sc]))
            for c, cls in enumerate(CLASSES):
                lr, file = make_sample(hr, cls, [SEED, 2, i, sc, c], tmp, f"f{i}", scale=sc)
                yield i, sc, c, lr, file


def _clean_inputs(paths: list[Path], tmp: Path, gray_every: int):
    """The same for the clean class only, on the extra HR folders (index -1 - i)."""
    c0 = next(c for c, cls in enumerate(CLASSES) if cls.kind == "clean")
    for i, path in enumerate(paths):
        full = _load(path, i, gray_every)
        for sc in SCALES:
            if min(full.shape[:2]) < 32 * sc:
                continue
            hr = _crop(full, 2 * SIDE, sc, np.random.default_rng([SEED, 3, i, sc]))
            lr, file = make_sample(hr, CLASSES[c0], [SEED, 3, i, sc, c0], tmp, f"c{i}",
                                   scale=sc)
            yield -1 - i, sc, c0, lr, file


def _features(folder: Path, n_images: int, gray_every: int, cache: Path, deadline: float,
              log) -> bool:
    """Phase 2, resumable: the hand-made features of every class at every scale of each
    image (the CNN's score is added in phase 3)."""
    done = dict(np.load(cache)) if cache.is_file() else {}
    f = list(done.get("f", np.zeros((0, len(FEATURES) - 1), np.float32)))
    meta = list(done.get("meta", np.zeros((0, 3), np.int64)))  # image, scale, class
    paths = find_images(folder)[:n_images]
    start = int(meta[-1][0]) + 1 if meta else 0
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for i, sc, c, lr, file in _labelled_inputs(paths, start, Path(tmp), gray_every):
            f.append(_input_features(lr, file))
            meta.append(np.array([i, sc, c]))
            if sc != SCALES[-1] or c != len(CLASSES) - 1:
                continue  # save once an image is whole
            if i % 10 == 9 or i + 1 == len(paths) or time.time() > deadline:
                np.savez(cache, f=np.stack(f), meta=np.stack(meta))
                log(f"features: image {i + 1}/{len(paths)} ({time.time() - t0:.0f} s)")
            if time.time() > deadline and i + 1 < len(paths):
                return False
    return True


def _clean_features(folder: Path, n_images: int, gray_every: int, cache: Path,
                    log) -> tuple[np.ndarray, np.ndarray]:
    """Features of the clean class only (MATLAB bicubic) on more HR sources, cached: the
    photos people call clean come from many cameras and web pipelines, not one dataset."""
    if cache.is_file():
        z = np.load(cache)
        return z["f"], z["meta"]
    f, meta = [], []
    with tempfile.TemporaryDirectory() as tmp:
        paths = find_images(folder)[:n_images]
        for i, sc, c, lr, file in _clean_inputs(paths, Path(tmp), gray_every):
            f.append(_input_features(lr, file))
            meta.append(np.array([i, sc, c]))  # negative: never held out
    np.savez(cache, f=np.stack(f), meta=np.stack(meta))
    log(f"clean features: {len(f)} inputs from {folder.name}")
    return np.stack(f), np.stack(meta)


def _file_tag(path: Path | None) -> str:
    """'' or '_from' + the first hex digits of the file's sha256 (cache names)."""
    import hashlib

    return "" if path is None else "_from" + hashlib.sha256(path.read_bytes()).hexdigest()[:8]


def _held_out(meta: np.ndarray) -> np.ndarray:
    """The last fifth of the labelled images (the extra clean ones, index < 0, never)."""
    images = meta[:, 0]
    uniq = np.unique(images[images >= 0])
    return images >= uniq[int(0.8 * len(uniq))]


def _train_cnn(lumas: list[np.ndarray], damaged: np.ndarray, width: int, steps: int,
               patch: int, log) -> ArtifactCNN:
    """ArtifactCNN on random ``patch`` px luma patches of the given inputs, label damaged (1)
    or not (0), classes balanced by the loss's weight; Adam, the rate lowered for the last
    third."""
    torch.manual_seed(SEED)
    rng = np.random.default_rng([SEED, 4])
    cnn = ArtifactCNN(width)
    ok = np.flatnonzero([min(y.shape) >= patch for y in lumas])
    pos = float(damaged[ok].mean())
    pos_weight = torch.tensor((1 - pos) / pos)
    opt = torch.optim.Adam(cnn.parameters(), lr=2e-3)
    t0 = time.time()
    for step in range(steps):
        if step == 2 * steps // 3:
            for group in opt.param_groups:
                group["lr"] = 5e-4
        ids = rng.choice(ok, 64)
        x = np.stack([_patch(lumas[j], patch, rng) for j in ids])
        logits = cnn(torch.from_numpy(x)[:, None])
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            logits, torch.from_numpy(damaged[ids].astype(np.float32)), pos_weight=pos_weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 1000 == 999:
            log(f"cnn: step {step + 1}/{steps}: loss {loss.item():.3f} "
                f"({time.time() - t0:.0f} s)")
    return cnn.eval()


def _patch(y: np.ndarray, side: int, rng: np.random.Generator) -> np.ndarray:
    a = int(rng.integers(0, y.shape[0] - side + 1))
    b = int(rng.integers(0, y.shape[1] - side + 1))
    return y[a : a + side, b : b + side]


def _cnn_of(path: Path) -> ArtifactCNN:
    """The artefact CNN inside an estimator's weights file (plain tensors, never unpickled)."""
    from safetensors.torch import load_file

    state = {k[len("cnn."):]: v for k, v in load_file(str(path)).items() if k.startswith("cnn.")}
    if not state:
        sys.exit(f"train_damage: {path} holds no artefact CNN")
    cnn = ArtifactCNN(int(state["body.0.weight"].shape[0]))
    cnn.load_state_dict(state)
    return cnn.eval()


def _cnn_scores(folder: Path, n_images: int, extras: list[Path], meta: np.ndarray,
                args: argparse.Namespace, cache: Path, log) -> tuple[ArtifactCNN, np.ndarray]:
    """Phase 3, cached: the inputs of phases 2 and the extra clean folders again (as luma),
    ArtifactCNN trained on those of the training images, and its score of every input."""
    from safetensors.torch import load_file, save_file

    from srlab.image.color import luma

    scores_file = cache.with_suffix(".npz")
    if cache.is_file() and scores_file.is_file():
        cnn = ArtifactCNN(args.cnn_width)
        cnn.load_state_dict(load_file(str(cache)))
        return cnn.eval(), np.load(scores_file)["scores"]
    lumas, got = [], []
    with tempfile.TemporaryDirectory() as tmp:
        inputs = [_labelled_inputs(find_images(folder)[:n_images], 0, Path(tmp),
                                   args.gray_every)]
        inputs += [_clean_inputs(find_images(d)[: 2 * n_images], Path(tmp), args.gray_every)
                   for d in extras]
        for source in inputs:
            for i, sc, c, lr, _ in source:
                lumas.append(luma(lr).astype(np.float32))
                got.append((i, sc, c))
    if not np.array_equal(np.array(got), meta):
        sys.exit("train_damage: the CNN's inputs differ from the cached features' (delete "
                 f"{cache.parent} and rerun)")
    damaged = np.array([CLASSES[c].kind == "damaged" for c in meta[:, 2]])
    train = ~_held_out(meta)
    if args.cnn_from is not None:
        cnn = _cnn_of(args.cnn_from)
        log(f"cnn: {len(lumas)} inputs, the CNN of {args.cnn_from} (not trained here)")
    else:
        log(f"cnn: {len(lumas)} inputs, training on {int(train.sum())}")
        cnn = _train_cnn([y for y, t in zip(lumas, train, strict=True) if t], damaged[train],
                         args.cnn_width, args.cnn_steps, args.cnn_patch, log)
    scores = np.array([cnn.score(y) for y in lumas], dtype=np.float32)
    save_file({k: v.contiguous() for k, v in cnn.state_dict().items()}, str(cache))
    np.savez(scores_file, scores=scores)
    return cnn, scores


def parse_eye(specs: list[str]) -> dict[str, float]:
    """``--eye CLASS=STEP`` flags -> {class label: step}, the one reading of them (the
    targets and the model card both use it)."""
    try:
        return {k: float(v) for k, v in (e.rsplit("=", 1) for e in specs)}
    except ValueError:
        sys.exit("train_damage: --eye takes CLASS=STEP, e.g. 'halftone scan=1'")


def class_targets(psnr_mean: np.ndarray, camera: str, margin: float = 0.0,
                  eye: dict[str, float] | None = None) -> np.ndarray:
    """(scale, class) -> target step index, from the mean PSNR per step (phase 1): clean 0,
    damaged the best step >= 0.5, camera-like the best step when it beats step 0 by at least
    ``margin`` dB, else 0 (-1: left out); ``eye`` (class label -> step) overrides a class's
    target at both scales with the step a blind A/B preferred."""
    out = np.zeros(psnr_mean.shape[:2], dtype=np.int64)
    eye = eye or {}
    unknown = set(eye) - {cls.label for cls in CLASSES}
    if unknown:
        raise SystemExit(f"train_damage: --eye names no labelled class: {', '.join(unknown)}")
    if any(v not in STEPS for v in eye.values()):
        raise SystemExit(f"train_damage: an --eye step must be one of {STEPS}")
    allowed_damaged = [k for k, s in enumerate(STEPS) if s >= 0.5]
    for a in range(psnr_mean.shape[0]):
        for c, cls in enumerate(CLASSES):
            p = psnr_mean[a, c]
            if cls.kind == "clean":
                out[a, c] = 0
            elif cls.kind == "damaged":
                out[a, c] = max(allowed_damaged, key=lambda k, p=p: p[k])
            else:
                best = int(np.argmax(p)) if p.max() - p[0] >= margin else 0
                out[a, c] = {"skip": -1, "clean": 0}.get(camera, best)
            if cls.label in eye:
                out[a, c] = STEPS.index(eye[cls.label])
    return out


def _fit(f: np.ndarray, meta: np.ndarray, targets: np.ndarray, hidden: int, epochs: int,
         weight_decay: float, cnn: ArtifactCNN, log) -> tuple[DamageHead, dict]:
    torch.manual_seed(SEED)
    images = meta[:, 0]
    scale_idx = np.searchsorted(SCALES, meta[:, 1])
    y = targets[scale_idx, meta[:, 2]]
    keep = y >= 0
    held = _held_out(meta)
    tr, ho = keep & ~held, keep & held
    x, yt = torch.from_numpy(f).float(), torch.from_numpy(np.maximum(y, 0))
    net = DamageHead(n_features=f.shape[1], hidden=hidden)
    net.cnn = cnn
    xt = x[tr].numpy()  # NaN: a cue the input cannot have (gray images' colour noise)
    net.mean.copy_(torch.from_numpy(np.nanmean(xt, axis=0)))
    net.std.copy_(torch.from_numpy(np.nanstd(xt, axis=0, ddof=1)).clamp_min(1e-3))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2, weight_decay=weight_decay)
    loss_fn = torch.nn.CrossEntropyLoss()
    for epoch in range(epochs):
        loss = loss_fn(net(x[tr]), yt[tr])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if epoch % 500 == 499:
            log(f"epoch {epoch + 1}: train loss {loss.item():.3f}")
    net.eval()
    with torch.inference_mode():
        probs = torch.softmax(net(x), dim=1).numpy()
    chosen = np.array([min(STEPS, key=lambda s, e=e: abs(s - e)) for e in probs @ STEPS])
    per_class = {}
    for a, sc in enumerate(SCALES):
        for c, cls in enumerate(CLASSES):
            m = held & (meta[:, 1] == sc) & (meta[:, 2] == c)
            if not m.any():
                continue
            ch = chosen[m]
            share = (ch <= 0.25).mean() if cls.kind == "clean" else (ch >= 0.5).mean()
            per_class[f"x{sc} {cls.label}"] = {
                "target": STEPS[targets[a, c]] if targets[a, c] >= 0 else None,
                "heldout_inputs": int(m.sum()),
                "heldout_mean_step": round(float(ch.mean()), 3),
                ("heldout_share_<=0.25" if cls.kind == "clean" else "heldout_share_>=0.5"):
                    round(float(share), 3)}
    stats = {"inputs_train": int(tr.sum()), "inputs_heldout": int(ho.sum()),
             "heldout_images": int(len(np.unique(images[held]))),
             "heldout_accuracy": round(float((chosen[ho] == np.array(STEPS)[y[ho]]).mean()), 3),
             "per_class": per_class}
    return net, stats


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-dir", type=Path,
                    default=shared_dir() / "datasets" / "train" / "BSDS500-train")
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--regret-images", type=int, default=12)
    ap.add_argument("--epochs", type=int, default=3000)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--camera", choices=("best", "skip", "clean"), default="best",
                    help="camera-like clean: train on its best step, leave it out, or as clean (0)")
    ap.add_argument("--camera-margin", type=float, default=0.1, metavar="DB",
                    help="camera-like clean (with --camera best) gets a blend as its target only "
                         "when the blend beats step 0 by this much on the training crops: a "
                         "soft photo is also what the clean protocol scores, and a blend that "
                         "gains less than crop-to-crop noise costs more on sharp ones")
    ap.add_argument("--eye", action="append", default=[], metavar="CLASS=STEP",
                    help="a class's target from a blind A/B instead of PSNR, e.g. 'halftone "
                         "scan=1' (the label as in srlab inspect --eval; STEP one of the steps)")
    ap.add_argument("--clean-extra", type=Path, action="append", default=[], metavar="DIR",
                    help="more HR folders whose MATLAB-bicubic LR train the clean class only "
                         "(training images only, e.g. ImageNet-sample400 and T91)")
    ap.add_argument("--cnn-steps", type=int, default=18000,
                    help="training steps of the artefact CNN (batches of 64 patches)")
    ap.add_argument("--cnn-from", type=Path, default=None, metavar="WEIGHTS",
                    help="take the artefact CNN from an estimator's weights (e.g. the shipped "
                         "one, trained by this command at the same settings) and train only "
                         "the head: minutes instead of half an hour")
    ap.add_argument("--cnn-width", type=int, default=16)
    ap.add_argument("--cnn-patch", type=int, default=48)
    ap.add_argument("--gray-every", type=int, default=0, metavar="N",
                    help="every Nth training image in gray (0: none). Old photos are often "
                         "gray and a gray image's colour cues lie outside what colour photos "
                         "teach; tried with 5, it lowered JPEG-then-resize recall on the "
                         "labelled set to 76%% (docs/real-world.md)")
    ap.add_argument("--max-minutes", type=float, default=9.0,
                    help="stop a phase after this long (rerun to continue)")
    ap.add_argument("--cache", type=Path, default=Path("out/damage"))
    ap.add_argument("--out", type=Path, default=Path("src/srlab/weights/damage.safetensors"))
    args = ap.parse_args()
    gray = f"_gray{args.gray_every}" if args.gray_every else ""
    torch.set_num_threads(1)
    deadline = time.time() + 60 * args.max_minutes

    def log(msg: str) -> None:
        print(msg, flush=True)

    args.cache.mkdir(parents=True, exist_ok=True)
    tag = f"{args.train_dir.name}"
    if not _regret(args.train_dir, args.regret_images, args.cache / f"{tag}_regret.npz",
                   deadline, log):
        log("regret phase not finished: run again to continue")
        return 3
    features_cache = args.cache / f"{tag}{gray}_features.npz"
    if not _features(args.train_dir, args.images, args.gray_every, features_cache, deadline,
                     log):
        log("features phase not finished: run again to continue")
        return 3
    ps = np.load(args.cache / f"{tag}_regret.npz")["psnr"][: args.regret_images]
    fz = np.load(features_cache)
    meta = fz["meta"]
    sel = meta[:, 0] < args.images
    feats, meta = fz["f"][sel], meta[sel]
    for extra in args.clean_extra:
        if extra.name in FORBIDDEN_FIT_FOLDERS:
            sys.exit(f"train_damage: {extra} is a test set; train on training images only")
        ef, em = _clean_features(
            extra, args.images * 2, args.gray_every,
            args.cache / f"{extra.name}{gray}_clean_features.npz", log)
        feats, meta = np.concatenate([feats, ef]), np.concatenate([meta, em])
    name = f"{tag}{gray}_{'+'.join(d.name for d in args.clean_extra) or 'no-extra'}"
    cnn, scores = _cnn_scores(
        args.train_dir, args.images, args.clean_extra, meta, args,
        args.cache / (f"{name}_cnn{args.cnn_width}_{args.cnn_steps}_{args.cnn_patch}"
                      f"{_file_tag(args.cnn_from)}.safetensors"),
        log)
    feats = np.concatenate([feats, scores[:, None]], axis=1)
    psnr_mean = ps.mean(axis=0)
    eye = parse_eye(args.eye)
    targets = class_targets(psnr_mean, args.camera, args.camera_margin, eye)
    for a, sc in enumerate(SCALES):
        for c, cls in enumerate(CLASSES):
            cells = " ".join(f"{v:.2f}" for v in psnr_mean[a, c])
            t = targets[a, c]
            log(f"x{sc} {cls.label}: PSNR per step {cells} -> target "
                f"{STEPS[t] if t >= 0 else 'left out'}")
    net, stats = _fit(feats, meta, targets, args.hidden, args.epochs, args.weight_decay, cnn,
                      log)
    stats["class_psnr_per_step"] = {f"x{sc} {cls.label}": [round(float(v), 3)
                                                           for v in psnr_mean[a, c]]
                                    for a, sc in enumerate(SCALES)
                                    for c, cls in enumerate(CLASSES)}
    from safetensors.torch import save_file

    from srlab.zoo.weights import atomic_replace

    meta_s = {"arch": "DamageHead", "hidden": str(args.hidden), "features": json.dumps(FEATURES),
              "steps": json.dumps(STEPS), "train_dir": args.train_dir.name,
              "images": str(args.images), "regret_images": str(args.regret_images),
              "epochs": str(args.epochs), "camera": args.camera,
              "camera_margin": str(args.camera_margin), "eye": json.dumps(eye),
              "cnn": json.dumps({"width": args.cnn_width, "steps": args.cnn_steps,
                                 "patch": args.cnn_patch,
                                 "from": _file_tag(args.cnn_from)[len("_from"):] or None}),
              "clean_extra": json.dumps([d.name for d in args.clean_extra]),
              "classes": json.dumps([c.label for c in CLASSES]), "stats": json.dumps(stats)}
    state = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    atomic_replace(args.out, lambda tmp: save_file(state, tmp, meta_s))
    params = sum(p.numel() for p in net.parameters())
    card = args.out.with_suffix(".md")
    atomic_replace(card, lambda tmp: Path(tmp).write_text(_card(args, params, stats)))
    log(f"wrote {args.out} ({params} parameters) and {card}")
    log(json.dumps(stats, indent=1))
    return 0


_CAMERA = {"best": "the step that scored best when it beat step 0 by at least "
                   "--camera-margin dB, else 0", "skip": "left out",
           "clean": "0, as clean (a wrong blend of a clean photo costs more than the best "
                    "step gains on a soft one)"}

_HEAD = ("| scale, class | mean PSNR of steps 0 / 0.25 / 0.5 / 0.75 / 1 (training crops) | "
         "target | held-out mean step | held-out share meeting the bar |\n|---|---|---|---|---|")


def _card(args: argparse.Namespace, params: int, stats: dict) -> str:
    rows = "\n".join(
        f"| {k} | {' / '.join(f'{v:.2f}' for v in stats['class_psnr_per_step'][k])} | "
        f"{'left out' if c['target'] is None else format(c['target'], 'g')} | "
        f"{c['heldout_mean_step']:g} | "
        f"{100 * c.get('heldout_share_<=0.25', c.get('heldout_share_>=0.5', 0)):.0f}% |"
        for k, c in stats["per_class"].items())
    cnn_from = "" if args.cnn_from is None else f" --cnn-from {args.cnn_from}"
    cnn_note = "" if args.cnn_from is None else (
        f"\n- the CNN was taken from the estimator before (sha256 "
        f"{_file_tag(args.cnn_from)[len('_from'):]}...), which this command without "
        f"`--cnn-from` trained (seeded: the same tensors); only the head was fitted here.")
    extra_flags = "".join(f" --clean-extra {d}" for d in args.clean_extra)
    eye_flags = "".join(f" --eye '{e}'" for e in args.eye)
    eye = parse_eye(args.eye)
    eye_text = "" if not eye else (
        "; " + ", ".join(f"{label} {step:g}" for label, step in eye.items())
        + " at both scales, the step a blind A/B of outputs preferred (`--eye`)")
    extra_text = "".join(
        f"; the clean class also on the first {2 * args.images} images of {d.name}"
        for d in args.clean_extra)
    return f"""# damage estimator (auto's strength)

- what: `srlab.image.damage.DamageHead`, {params:,} parameters: the features
  {", ".join(FEATURES)} (`damage.features`; the last is the score of
  `damage.ArtifactCNN`, width {args.cnn_width}, trained for {args.cnn_steps} batches of 64
  {args.cnn_patch} px luma patches to tell the damaged classes from clean and camera-like
  clean on the training images' inputs), normalised, one hidden layer of {args.hidden}, the
  probabilities of the denoise strengths {", ".join(f"{s:g}" for s in STEPS)} of the
  span/span-real blend; `srlab.image.condition.choose` rounds their expectation to a step.
- training: `python tools/train_damage.py --images {args.images} --regret-images
  {args.regret_images} --epochs {args.epochs} --hidden {args.hidden} --weight-decay
  {args.weight_decay:g} --camera {args.camera} --camera-margin {args.camera_margin:g}
  {extra_flags}{eye_flags} --gray-every {args.gray_every}
  --cnn-steps {args.cnn_steps}
  --cnn-width {args.cnn_width} --cnn-patch {args.cnn_patch}{cnn_from}` (seed {SEED}), on
  {args.train_dir.name} (training images only): every labelled class of `srlab inspect --eval`
  at x2 and x4 on each of the first {args.images} images{extra_text}. Target of an input:
  its class's step, clean 0, a damaged class the step >= 0.5 that scored best (mean Y PSNR
  against the HR over {REGRET_LR} px LR crops of the first {args.regret_images} images, the
  blends actually run), camera-like clean
  {_CAMERA[args.camera]}{eye_text}. Loss: cross-entropy.
- held out: the last fifth of the images ({stats["heldout_images"]} images,
  {stats["inputs_heldout"]} inputs; trained on {stats["inputs_train"]}); step accuracy
  {stats["heldout_accuracy"]:.3f}.{cnn_note}

{_HEAD}
{rows}

- measured on the labelled set (BSDS500-test, never trained on): docs/real-world.md, made by
  `srlab inspect --eval`.
- licence: MIT (trained on BSDS500-train, research use).
"""


if __name__ == "__main__":
    sys.exit(main())

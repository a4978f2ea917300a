"""``srlab ship RUN``: turn a finished training run into weights that srlab ships.

Shipping is measuring: the run's best weights are benchmarked by the standard protocol on
the benchmark sets, and those figures — never typed by hand — go into the weights file's
metadata and into a generated model card beside it. The run's curves and progress GIF are
copied along so ``srlab serve`` can show how the model learned.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from srlab.eval.benchmark import BenchRow, run_benchmark
from srlab.eval.tables import markdown_table
from srlab.image.datasets import shared_dir
from srlab.train.config import expand_path
from srlab.train.report import ADVERSARIAL, GIF_FRAMES, shrink_artifact
from srlab.zoo import blend
from srlab.zoo.weights import (
    SHIPPED_DIR,
    WeightsError,
    WeightsMeta,
    atomic_replace,
    read_weights,
    save_weights,
)

__all__ = ["ship_run", "model_card", "rerender_card", "DEFAULT_SETS", "renamed", "realsr_niqe",
           "NoRef"]

DEFAULT_SETS = ("Set5", "Set14", "BSD100", "Urban100")
ARTIFACTS = ("loss.png", "psnr.png", "ssim.png", "progress.gif", "metrics.csv", "config.yaml",
             "summary.md")


PAPER_NAMES = {"srcnn": "SRCNN", "espcn": "ESPCN", "vdsr": "VDSR", "fsrcnn": "FSRCNN"}


def published(arch: str, scale: int) -> tuple[float, str] | None:
    """The paper's Set5 PSNR and its parameter count as written (e.g. "57K") from
    ../shared/published-results.md; None if not listed."""
    name = PAPER_NAMES.get(arch)
    path = shared_dir() / "published-results.md"
    if name is None or not path.is_file():
        return None
    section = None
    for line in path.read_text().splitlines():
        if line.startswith("## x"):
            section = line[4:].strip()
        cells = [c.strip() for c in line.split("|")]
        if section == str(scale) and len(cells) > 3 and cells[1] == name:
            return float(cells[3].split("/")[0]), cells[2]
    return None


def _count(text: str) -> float | None:
    """"57K" -> 57000, "~23K" -> 23000, "1,592K" -> 1592000; None for "-"."""
    text = text.strip("~ ").replace(",", "")
    unit = {"K": 1e3, "M": 1e6}.get(text[-1:], 1.0)
    try:
        return float(text.rstrip("KM")) * unit
    except ValueError:
        return None


def _gap_note(meta: WeightsMeta, rows: list[BenchRow]) -> list[str]:
    paper_row = published(meta.arch, meta.scale)
    ours = next((r.psnr for r in rows if r.dataset == "Set5"), None)
    if paper_row is None or ours is None:
        return []
    paper, paper_params = paper_row
    gap = paper - ours
    colour = ("on luma (Y), as the paper did" if meta.kwargs.get("in_channels") == 1 else
              "on RGB, as the reports built it, where the paper trained on luma")
    head = (f"Published Set5 x{meta.scale} for {PAPER_NAMES[meta.arch]}: {paper:.2f} dB "
            f"(../shared/published-results.md); measured here: {ours:.2f} dB, a gap of "
            f"{gap:+.2f} dB.")
    # a different size of the same design is part of a gap: SRCNN's table row is its
    # 57K-parameter 9-5-5 net, where the reports built the 8K 9-1-5
    count = _count(paper_params)
    size = (f" The published net has {paper_params} parameters, this one {meta.params:,}."
            if count and meta.params and abs(count - meta.params) > 0.2 * count else "")
    if gap <= 0.5:
        return ["", head + f" Within 0.5 dB of the paper; trained {colour}." + size]
    # the budget is all the CPU time in the weights, the runs they started from included
    return ["", head + size + f" Why: a CPU budget of {meta.total_seconds / 60:.0f} minutes "
            "(the papers trained for 10^5-10^6+ iterations on GPUs, with larger training "
            f"sets); trained {colour}."]


def _run_config(run_dir: Path) -> dict:
    """The run's own config.yaml as written by ``srlab train`` ({} when it left none)."""
    import yaml

    path = run_dir / "config.yaml"
    return (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}


def run_progress(run_dir: Path, which: str, config: dict) -> tuple[int, int, int] | None:
    """(iteration of the shipped weights, iteration the run reached, iterations it plans),
    from the run's config and metrics.csv; None when the run left no such record.

    Threads are not taken from here: a resumed run's config.yaml records the last
    invocation's, while the weights' recipe (written by the process that saved them) is right.
    """
    import csv

    run, csv_path = config.get("run", {}), run_dir / "metrics.csv"
    if not csv_path.is_file() or "epochs" not in run or "iters_per_epoch" not in run:
        return None
    with open(csv_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return None
    row = max(rows, key=lambda r: float(r["val_psnr"])) if which == "best" else rows[-1]
    return (int(row["iteration"]), int(rows[-1]["iteration"]),
            int(run["epochs"]) * int(run["iters_per_epoch"]))


def run_gan(config: dict) -> str | None:
    """The adversarial phase of a run (None for a content-loss run). Recipes written before
    they named it carry no word of it, so the card states it from the run's config."""
    gan = config.get("gan", {})
    if not gan.get("enabled"):
        return None
    disc = gan.get("discriminator")
    width = f" ({gan['d_features']} features)" if "d_features" in gan else ""
    return (f"{gan['adv_weight']:g} x adversarial loss added after {gan['pretrain_iters']:,} "
            f"generator-only iterations, discriminator lr {gan['d_lr']:g}"
            + (f", {disc} discriminator{width}" if disc else ""))


def run_sharpen(config: dict) -> str | None:
    """Real-ESRGAN's sharpened targets (``loss.sharpen_gt``), None without them."""
    if not config.get("loss", {}).get("sharpen_gt"):
        return None
    return "content losses against an unsharp-masked target (Real-ESRGAN's sharpened GT)"


def run_rescale(config: dict) -> str | None:
    """The scale augmentation (``data.rescale``) of a run, None without one. The recipe
    string does not name it, so the card states it from the run's config."""
    factors = [f for f in config.get("data", {}).get("rescale") or [] if f != 1]
    if not factors:
        return None
    return ("each training image also at " + ", ".join(f"{f:g}" for f in factors)
            + " of its size (MATLAB bicubic)")


def run_phases(config: dict) -> str | None:
    """The sampling-phase augmentation (``data.phases``) of a run, None without it; the
    recipe string does not name it either."""
    if not config.get("data", {}).get("phases"):
        return None
    s = int(config.get("model", {}).get("scale", 1))
    return (f"each patch's LR cut from a random one of the {s * s} LR sampling grids of its "
            "HR image, not only the grid at pixel 0")


def run_candidates(config: dict) -> str | None:
    """The detail-weighted patch sampling (``data.candidates``) of a run, None without it."""
    k = int(config.get("data", {}).get("candidates") or 1)
    if k <= 1:
        return None
    return (f"each patch the most detailed of {k} random positions (HR variance within its "
            "LR sampling cells)")


def run_degradation(config: dict) -> str | None:
    level = config.get("data", {}).get("degradation", "clean")
    if level == "clean":
        return None
    return (f"LR made by the '{level}' degradation (srlab.image.degrade.LEVELS), validated on the "
            "same degradation; scores on the degraded benchmark tracks (srlab benchmark "
            "--degrade) are in docs/real-world.md")


def run_config_lines(config: dict) -> list[str]:
    """The card lines for what a run's config did that its recipe string does not name."""
    said = [("training degradation", run_degradation(config)),
            ("scale augmentation", run_rescale(config)),
            ("sampling-phase augmentation", run_phases(config)),
            ("patch sampling", run_candidates(config)),
            ("adversarial training", run_gan(config)),
            ("sharpened targets", run_sharpen(config))]
    return [f"- {what} (run config): {text}" for what, text in said if text]


def run_init(config: dict) -> Path | None:
    """The weights file a run started from (``model.init``), None for a fresh start."""
    init = config.get("model", {}).get("init")
    return Path(expand_path(init)) if init else None


def inherited_seconds(meta: WeightsMeta, config: dict) -> float:
    """CPU seconds in the weights the run started from. Runs record it themselves
    (``WeightsMeta.init_seconds``); for runs from before that, read the ``model.init`` file
    named in the run's config, unless that file is this run's own shipped output (a re-ship
    after the run replaced its parent), whose record already holds the answer."""
    if meta.init_seconds:
        return meta.init_seconds
    path = run_init(config)
    if path is None:
        return 0.0
    try:
        _, parent = read_weights(path)
    except (OSError, WeightsError):
        return 0.0
    if parent is None:
        return 0.0
    if parent.recipe == meta.recipe:
        return parent.init_seconds
    return parent.total_seconds


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


MEASURED = "## Measured (standard protocol)"
REPLACED = "(the weights shipped there before, which these replaced)"


ITERATIONS = "- iterations:"


def _status(progress: tuple[int, int, int] | None) -> list[str]:
    shipped, reached, planned = progress or (0, 0, 0)
    if reached < planned:
        return [f"- status: intermediate weights, iteration {shipped:,} of the "
                f"{planned:,} the run plans (its learning-rate schedule unfinished); "
                "training continues from the run's checkpoint with "
                "`srlab train CONFIG --resume`"]
    if shipped < reached:
        return [f"- status: the weights of iteration {shipped:,}, the best validation "
                f"PSNR of the run's completed {planned:,} iterations"]
    return []


def _cpu_time(meta: WeightsMeta) -> str:
    """The card's CPU-time line: a run's own minutes and its parents', or a blend's sum."""
    if not meta.total_seconds:
        return ("- CPU training time: not recorded in the weights; the run's metrics.csv has it "
                "(column `seconds`, cumulative, at each epoch's iteration)")
    if meta.recipe.startswith(blend.RECIPE):
        return (f"- CPU training time: {_minutes(meta.total_seconds)} on a 2-core CPU, the sum "
                "of the two blended files' records (history they share, such as a common "
                "parent, counted in each)")
    return (f"- CPU training time: {meta.train_seconds / 60:.1f} min wall clock on a 2-core CPU"
            + (f" for this run, {_minutes(meta.total_seconds)} in all with "
               f"the {_minutes(meta.init_seconds)} of the weights it started from"
               if meta.init_seconds else ""))


def card_header(meta: WeightsMeta, *, status: list[str], config: dict,
                init_replaced: bool = False) -> list[str]:
    """The card's description of the weights, everything above the measured section."""
    lines = [
        f"# {meta.arch} x{meta.scale}",
        "",
        f"- parameters: {meta.params:,}",
        *(["- architecture (constructor arguments, kept in the weights' metadata so "
           "`srlab upscale` rebuilds this exact net): "
           + ", ".join(f"{k}={v}" for k, v in sorted(meta.kwargs.items()))]
          if meta.kwargs else []),
        f"- training: {meta.recipe}"
        + (f" {REPLACED}" if init_replaced else ""),
        _cpu_time(meta),
    ]
    return lines + run_config_lines(config) + status + [f"- licence: {meta.license}", ""]


def model_card(meta: WeightsMeta, rows: list[BenchRow], command: str,
               progress: tuple[int, int, int] | None = None, *, config: dict | None = None,
               init_replaced: bool = False, noref: NoRef | None = None) -> str:
    """Markdown card: what the model is, how it was trained, what it measures.

    ``progress`` (from ``run_progress``) makes an intermediate checkpoint say so: a card
    must not read as a finished recipe when the run's schedule is only partly done.
    ``init_replaced``: the run started from the very file this ship overwrites, so the
    recipe's "initialised from" path now names these weights; the card says so.
    ``config``: the run's config, for what it did that the recipe does not name.
    ``noref``: NIQE on real photos (``realsr_niqe``), measured for adversarial runs.
    """
    status = _status(progress)
    if progress is not None and not status:  # a finished run's card says it finished
        status = [f"{ITERATIONS} {progress[0]:,} of the {progress[2]:,} the run plans "
                  "(its schedule complete)"]
    lines = card_header(meta, status=status, config=config or {},
                        init_replaced=init_replaced)
    lines += [
        MEASURED,
        "",
        markdown_table(rows, command),
        "",
        "Perceptual: GMSD (Xue et al. 2014; Y, border = scale; lower is better) "
        + ", ".join(f"{r.dataset} {r.gmsd:.4f}" for r in rows) + ".",
        *_gap_note(meta, rows),
        *_noref_note(noref),
        "",
    ]
    return "\n".join(lines)


REAL_SET = "RealSRSet"  # real degraded photos without ground truth (../shared/datasets/real)


def _noref_note(noref: NoRef | None) -> list[str]:
    if noref is None:
        return []
    ref = (f"; the weights it started from ({noref.reference}): {noref.reference_niqe:.3f}"
           if noref.reference else "")
    return ["", f"No-reference: NIQE (Mittal et al. 2013; srlab's pristine model "
                f"{noref.digest}, fitted on its training images; lower looks more natural) "
                f"of the x{noref.scale} outputs of the {noref.images} photos of {REAL_SET} "
                f"(real degraded photos, no ground truth): {noref.niqe:.3f}{ref}."]


def rerender_card(weights: Path) -> bool:
    """Rewrite the header of a shipped model card from the weights' metadata and the run
    config shipped beside them; True when the card changed.

    Why: a card shipped before cards said something (e.g. the architecture line) catches up
    without the run folder, which is not kept, and without re-measuring. The measured
    section is kept word for word: it is the record of the run that measured it. So is a
    status line, which needs the run's choice of best or last weights to recompute.
    """
    _, meta = read_weights(weights)
    if meta is None:
        raise WeightsError(f"{weights} has no srlab metadata")
    card_path = weights.with_suffix(".md")
    if not card_path.is_file():
        raise WeightsError(f"{card_path} not found: `srlab ship RUN` writes it")
    old = card_path.read_text()
    if MEASURED not in old:
        raise WeightsError(f"{card_path} has no '{MEASURED}' section to keep")
    head, measured = old.split(MEASURED, 1)
    config = _run_config(weights.with_suffix(""))
    status = [line for line in head.splitlines()
              if line.startswith(("- status:", ITERATIONS))]
    lines = card_header(meta, status=status, config=config, init_replaced=REPLACED in head)
    new = "\n".join(lines) + "\n" + MEASURED + measured
    if new == old:
        return False
    atomic_replace(card_path, lambda tmp: Path(tmp).write_text(new))
    return True


@dataclass(frozen=True)
class NoRef:
    """NIQE of a model's outputs on the real photos of ``REAL_SET`` (and of the weights its
    run started from, for reference), as the card states it."""

    scale: int
    images: int
    niqe: float
    digest: str  # the pristine model scored against
    reference: str = ""  # the file the run started from, "" when it was not at hand
    reference_niqe: float = float("nan")


def realsr_niqe(arch: str, scale: int, weights: Path, init: Path | None, *,
                log=print) -> NoRef | None:
    """NIQE of ``weights`` (an ``arch`` x``scale`` file) on ``REAL_SET``, and of ``init``
    when that file exists; None when the set is not in ../shared. Torch float32 (the
    trained numbers), as the benchmark scores."""
    from srlab.eval.noref import expand, upscaled_niqe
    from srlab.eval.runners import make_upscaler
    from srlab.image.niqe import load_model as load_pristine

    folder = shared_dir() / "datasets" / "real" / REAL_SET
    files = expand([folder]) if folder.is_dir() else []
    if not files:
        log(f"no {folder}: the card carries no NIQE on real photos")
        return None
    pristine = load_pristine()

    def mean(path: Path) -> float:
        _, parent = read_weights(path)
        fn, _, _ = make_upscaler(parent.arch if parent else arch, scale, str(path))
        return float(np.mean(upscaled_niqe(fn, files, pristine)))

    score = mean(weights)
    log(f"x{scale} {REAL_SET} NIQE {score:.3f}")
    if init is None or not init.is_file():
        return NoRef(scale, len(files), score, pristine.digest)
    ref = mean(init)
    log(f"x{scale} {REAL_SET} NIQE {ref:.3f} ({init.name}, the weights the run started from)")
    return NoRef(scale, len(files), score, pristine.digest, init.name, ref)


def renamed(meta: WeightsMeta, name: str) -> WeightsMeta:
    """``meta`` shipped under the registered ``name`` (``srlab ship --as``): a run is named by
    the model it trained (a GAN stage started from span-real is a span-real run), the weights
    are another model. Refused (``ChoiceError``, one sentence) unless ``name`` runs at the
    weights' scale (``catalog.resolve``) and builds the very architecture they hold (same
    builder and registry arguments), so the file loads as ``name`` exactly as it trained."""
    from srlab.zoo.catalog import resolve
    from srlab.zoo.registry import ChoiceError, get_spec

    resolve(name, meta.scale, allow_auto=False)
    target, source = get_spec(name), get_spec(meta.arch)
    if target.builder is not source.builder or target.kwargs != source.kwargs:
        raise ChoiceError(f"cannot ship {meta.arch} weights as {name}: {name} is another "
                          f"architecture ({target.builder.__name__} {target.kwargs or '{}'}, "
                          f"not {source.builder.__name__} {source.kwargs or '{}'})")
    return replace(meta, arch=name)


def is_weights_file(path: Path) -> bool:
    """What ships from a file instead of a run directory (a blend)."""
    return path.suffix == ".safetensors" and path.is_file()


def ship_run(
    run_dir: Path,
    *,
    datasets: tuple[str, ...] = DEFAULT_SETS,
    dest: Path = SHIPPED_DIR,
    which: str = "best",
    cache: Path | None = None,
    refresh: bool = False,
    name: str | None = None,
    log=print,
) -> Path:
    """Benchmark ``run_dir/<which>.safetensors`` and install it as the shipped weights, under
    the run's model name or ``name`` (``renamed``). ``run_dir`` may instead be a weights file
    that no single run made (a blend from ``srlab blend``): its card then has only the file's
    record to say how it was made. A card of weights with an adversarial stage in their
    history adds NIQE on real photos (``realsr_niqe``): PSNR alone rewards the blur a GAN
    stage removes."""
    weights_file = is_weights_file(run_dir)
    src = run_dir if weights_file else run_dir / f"{which}.safetensors"
    tensors, meta = read_weights(src)
    if meta is None:
        raise ValueError(f"{src} has no srlab metadata")
    trained_as = meta.arch
    if name is not None and name != meta.arch:
        meta = renamed(meta, name)  # before any measuring: a refusal costs nothing
    config = {} if weights_file else _run_config(run_dir)
    init = run_init(config)
    out = dest / f"{meta.arch}_x{meta.scale}.safetensors"
    init_replaced = init is not None and init.resolve() == out.resolve()
    if init_replaced and run_gan(config) is not None and name is None:
        raise ValueError(f"this adversarial run started from {out.name}; shipped under its "
                         f"model name it would replace those weights: ship it --as another "
                         "registered name (span-real-gan)")
    sets = [shared_dir() / "datasets" / "benchmark" / d for d in datasets]
    missing = [str(p) for p in sets if not p.is_dir()]
    if missing:
        raise FileNotFoundError(f"benchmark sets not found: {', '.join(missing)}")
    # measured under the name the file's metadata holds (the file loads only as that); the
    # scores are the tensors', so the rows are the shipped name's
    rows = run_benchmark([trained_as], [meta.scale], sets, weights={trained_as: str(src)},
                         cache=cache, refresh=refresh, log=log)
    rows = [replace(r, model=meta.arch) for r in rows]
    meta.metrics = {r.dataset: {"psnr": round(r.psnr, 3), "ssim": round(r.ssim, 4),
                                "gmsd": round(r.gmsd, 4), "mpx_per_s": round(r.mpx_per_s, 2)}
                    for r in rows}
    noref = None
    if run_gan(config) is not None or ADVERSARIAL in meta.recipe:
        noref = realsr_niqe(trained_as, meta.scale, src, init, log=log)
        if noref is not None:
            meta.metrics[REAL_SET] = {"niqe": round(noref.niqe, 3)}
    from srlab.zoo.registry import build_model
    from srlab.zoo.weights import apply_state_dict

    net = build_model(meta.arch, meta.scale, **meta.kwargs)
    apply_state_dict(net, tensors, src.name)
    meta.init_seconds = round(inherited_seconds(meta, config), 1)
    save_weights(net, meta, out)
    art = dest / f"{meta.arch}_x{meta.scale}"
    art.mkdir(parents=True, exist_ok=True)
    for artifact in ARTIFACTS:
        if not weights_file and (run_dir / artifact).is_file():
            shutil.copy2(run_dir / artifact, art / artifact)
            if artifact.endswith((".png", ".gif")):  # a run from before artifacts.py: shrink
                shrink_artifact(art / artifact, gif_frames=GIF_FRAMES)
        else:  # none left from the weights shipped before under this name
            (art / artifact).unlink(missing_ok=True)
    command = (f"srlab ship {run_dir}" + (" --which last" if which == "last" and not weights_file
                                          else "")
               + (f" --as {meta.arch}" if meta.arch != trained_as else ""))
    progress = None if weights_file else run_progress(run_dir, which, config)
    card = model_card(meta, rows, command, progress, config=config,
                      init_replaced=init_replaced, noref=noref)
    card_path = dest / f"{meta.arch}_x{meta.scale}.md"
    atomic_replace(card_path, lambda tmp: Path(tmp).write_text(card))
    log(f"shipped {out} ({meta.params:,} parameters)")
    return out

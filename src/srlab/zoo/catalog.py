"""The zoo as shipped: registry x shipped weights -> what can run, with which weights.

One place answers "what can I run": a uniform ``Variant`` per (model, scale) (kind, trained,
weights file and its metadata, channels, what it supports), the default model and scale, and
``resolve``, the one name/scale check every face and task calls (CLI, API, web, batch).

The CLI lists everything (``srlab models``); the web UI offers only trained combinations (a
network on random weights is a study tool, not a result) and its API serves the rest only
when asked with ``allow_untrained=true``. All read the same catalogue, built from the shipped
weights' headers, so they can never disagree.
"""

from __future__ import annotations

import html
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from srlab.zoo import foreign
from srlab.zoo import weights as _weights
from srlab.zoo.registry import (
    AUTO,
    DEFAULT_MODEL,
    DENOISE_PAIR,
    DETAIL_PAIR,
    MODELS,
    ChoiceError,
    auto_available,
    auto_scales,
    build_model,
    default_model,
    detail_available,
    get_spec,
)
from srlab.zoo.weights import WeightsError, WeightsMeta, count_params, read_weights

__all__ = ["DEFAULT_SCALE", "Supports", "Variant", "ModelEntry", "model_catalog", "entry",
           "variant", "shipped_models", "ui_models", "trained_scales", "default_choice",
           "default_name", "pick_scale", "resolve", "run_scales", "ChoiceError", "model_card",
           "training_artifacts", "ARTIFACT_FILES", "MAIN_MODELS", "KIND"]

DEFAULT_SCALE = 4  # one default for the UI, the API and the CLI
ARTIFACT_FILES = ("loss.png", "psnr.png", "ssim.png", "progress.gif", "metrics.csv")
# where training curves are looked up; None = beside the shipped weights (tests point it away)
ARTIFACTS_DIR: Path | None = None

# the models a newcomer should pick from, in order, with one line on what each is for
MAIN_MODELS: dict[str, str] = {
    AUTO: "reads each image (JPEG history, noise) and picks span or span-real",
    "span": "best quality on clean images",
    "span-real": "photos from the web or a phone: removes JPEG blocks, noise and blur",
    "span-real-gan": "crisp texture for real photos (GAN stage); may invent detail",
    "span-fast": "fastest; slightly softer than span",
}
AUTO_SUMMARY = "automatic: " + MAIN_MODELS[AUTO]
# what the model picker shows: short enough for a 390 px phone (the card has the long line)
MAIN_LABELS: dict[str, str] = {AUTO: "picks per image", "span": "best on clean images",
                               "span-real": "for phone photos",
                               "span-real-gan": "crisp texture", "span-fast": "fastest"}

# registry family -> what the model is for a user: run it, compare with it, or study it
KIND = {"classical": "baseline", "report": "study", "flagship": "main", "file": "yours"}


@dataclass(frozen=True)
class Supports:
    """What can be asked of a (model, scale) beyond running it."""

    denoise: bool = False  # a span/span-real blend strength (--denoise) applies
    detail: bool = False  # a span-real/span-real-gan blend strength (--detail) applies
    ensemble: bool = True  # x8 flip/rotation self-ensemble: any network, any backend
    tiling: bool = True  # tiled output equals untiled (overlap = receptive field)


@dataclass
class Variant:
    """One (model, scale) pair, the same for ``srlab models``, the UI and ``/api/models``."""

    name: str
    scale: int
    trained: bool
    params: int
    meta: WeightsMeta | None
    classical: bool
    kind: str = "study"  # main / baseline / study (KIND)
    path: Path | None = None  # the shipped weights file, when one ships
    corrupt: bool = False  # a file ships but its header cannot be read
    in_channels: int = 3  # 3 = RGB network, 1 = luma-only (colour by bicubic)
    supports: Supports = field(default_factory=Supports)

    @property
    def set5_psnr(self) -> float | None:
        """Set5 PSNR (Y) recorded in the weights header by ``srlab ship``, if any."""
        for key, vals in (self.meta.metrics if self.meta else {}).items():
            if key.lower() == "set5" and isinstance(vals, dict):
                value = vals.get("psnr", vals.get("PSNR"))
                if isinstance(value, (int, float)):
                    return float(value)
        return None

    def to_json(self) -> dict[str, Any]:
        m = self.meta
        return {
            "scale": self.scale,
            "trained": self.trained,
            "params": self.params,
            "metrics": dict(m.metrics) if m else {},
            "recipe": m.recipe if m else "",
            "train_seconds": m.train_seconds if m else 0.0,
            "artifacts": sorted(training_artifacts(self.name, self.scale)),
        }


@dataclass
class ModelEntry:
    """A model with all its scales; ``auto`` is one too (trained where both weights ship)."""

    name: str
    summary: str
    family: str
    variants: dict[int, Variant] = field(default_factory=dict)

    @property
    def scales(self) -> list[int]:
        return sorted(self.variants)

    @property
    def trained_scales(self) -> list[int]:
        return [s for s in self.scales if self.variants[s].trained]

    @property
    def trained(self) -> bool:
        return bool(self.trained_scales)

    @property
    def classical(self) -> bool:
        return any(v.classical for v in self.variants.values())

    def headline_scale(self) -> int:
        """The scale whose numbers stand for the model: the default scale when trained
        there, else its first trained scale, else its first scale."""
        for s in (DEFAULT_SCALE, *self.trained_scales, *self.scales):
            if s in self.variants and (self.variants[s].trained or not self.trained):
                return s
        raise AssertionError(self.name)

    def to_json(self) -> dict[str, Any]:
        head = self.variants[self.headline_scale()]
        return {
            "name": self.name,
            "summary": self.summary,
            "family": self.family,
            "scales": self.scales,
            "trained_scales": self.trained_scales,
            "trained": self.trained,
            "params": head.params,  # at params_scale; every scale's count is in params_by_scale
            "params_scale": head.scale,
            "params_by_scale": {str(s): v.params for s, v in sorted(self.variants.items())},
            "metrics": {str(s): v.meta.metrics for s, v in sorted(self.variants.items())
                        if v.meta and v.meta.metrics},
            "variants": [self.variants[s].to_json() for s in self.scales],
        }


_CATALOG: tuple[tuple, list[ModelEntry]] | None = None
_CATALOG_LOCK = threading.Lock()


def _shipped_state() -> tuple:
    """What the catalogue depends on: the weights folder and its files' names and times, so
    weights that appear while the server runs (a training run shipping) are picked up."""
    root = Path(_weights.SHIPPED_DIR)
    try:
        files = tuple(sorted((p.name, p.stat().st_mtime_ns)
                             for p in root.glob("*.safetensors")))
    except OSError:
        files = ()
    return str(root), files, tuple((i.name, i.sha256) for i in foreign.registered_files())


def _build(name: str, scale: int, kwargs: dict[str, Any]) -> Any:
    """The architecture without memory: on the meta device, CPU for constructors that
    compute on real tensors."""
    import torch

    try:
        with torch.device("meta"):
            return build_model(name, scale, **kwargs)
    except Exception:  # noqa: BLE001 - some constructors compute on real tensors
        return build_model(name, scale, **kwargs)


def _variant(name: str, scale: int) -> Variant:
    """Describe one pair from its shipped weights header, without keeping any network."""
    spec = get_spec(name)
    meta: WeightsMeta | None = None
    corrupt = False
    path: Path | None = _weights.shipped_weights_path(name, scale)
    if path.is_file():
        try:
            _, meta = read_weights(path)
        except WeightsError:
            corrupt = True  # a broken file: load_model will report it if someone picks it
    else:
        path = None
    net = _build(name, scale, meta.kwargs if meta else {})
    params = meta.params if meta and meta.params else count_params(net)
    classical = not spec.trainable and params == 0
    trained = classical or (meta is not None and meta.trained)
    denoise = name == DENOISE_PAIR[0] and auto_available(scale)
    detail = name in DETAIL_PAIR and detail_available(scale)
    return Variant(name, scale, trained, params, meta, classical, KIND[spec.family], path,
                   corrupt, int(getattr(net, "in_channels", 3)),
                   Supports(denoise=denoise, detail=detail))


def _auto_entry(by_name: dict[str, ModelEntry]) -> ModelEntry:
    """``auto`` as a model: at the scales both of span and span-real register, trained where
    both weights ship; its numbers are span's (what it runs on clean input)."""
    faithful = by_name[DENOISE_PAIR[0]]
    e = ModelEntry(AUTO, AUTO_SUMMARY, "flagship")
    for s in auto_scales():
        base = faithful.variants[s]
        e.variants[s] = Variant(AUTO, s, auto_available(s), base.params, base.meta, False,
                                "main", None, False, base.in_channels,
                                Supports(denoise=auto_available(s)))
    return e


def _file_entry(i: foreign.ForeignInfo) -> ModelEntry:
    """A registered model file (``zoo.foreign.register_file``) as a catalogue entry: one
    trained variant at its own scale, its sha256 and licence in the card."""
    meta = WeightsMeta(arch=i.architecture, scale=i.scale, params=i.params,
                       recipe=f"your model file {i.name} (sha256 {i.sha256})",
                       license=i.license or "not stated in the file")
    e = ModelEntry(i.name, f"your model file: {i.architecture} x{i.scale}", "file")
    e.variants[i.scale] = Variant(i.name, i.scale, True, i.params, meta, False, KIND["file"],
                                  i.path, False, i.in_channels,
                                  Supports(tiling=i.tiling == "supported"))
    return e


def model_catalog() -> list[ModelEntry]:
    """Every registered model plus ``auto``: trained learned models first, then the classical
    baselines, then networks that only have random weights.

    Built once per state of the weights folder (it builds each untrained network once to
    count parameters, ~2 s).
    """
    global _CATALOG
    key = _shipped_state()
    with _CATALOG_LOCK:
        if _CATALOG is None or _CATALOG[0] != key:
            entries = []
            for name, spec in MODELS.items():
                entry_ = ModelEntry(name, spec.summary, spec.family)
                for s in spec.scales:
                    entry_.variants[s] = _variant(name, s)
                entries.append(entry_)
            entries.insert(0, _auto_entry({e.name: e for e in entries}))
            entries += [_file_entry(i) for i in foreign.registered_files()]

            main = list(MAIN_MODELS)

            def rank(e: ModelEntry) -> tuple[int, int]:
                group = 0 if e.trained and not e.classical else 1 if e.classical else 2
                group = -1 if e.family == "file" else group  # served with --model-file
                return group, main.index(e.name) if e.name in main else len(main)

            _CATALOG = (key, sorted(entries, key=rank))  # stable: registry order within
        return _CATALOG[1]


def entry(name: str) -> ModelEntry:
    """The catalogue entry of ``name``; UnknownModelError (with the names) if none."""
    for e in model_catalog():
        if e.name == name:
            return e
    get_spec(name)  # raises UnknownModelError with the list of names
    raise AssertionError(name)


def shipped_models(scale: int | None = None) -> list[str]:
    """Registered models with weights shipped at ``scale`` (None: at any scale), in registry
    order, from file names alone (no header read, no catalogue built)."""
    return [n for n, spec in MODELS.items()
            if any(_weights.shipped_weights_path(n, s).is_file()
                   for s in spec.scales if scale is None or s == scale)]


def variant(name: str, scale: int) -> Variant:
    """The descriptor of ``name`` at ``scale`` (after ``resolve`` said it exists)."""
    return entry(name).variants[scale]


def ui_models() -> list[tuple[str, str]]:
    """(label, name) of what the UI offers: trained combinations only, main models first,
    then the classical baselines, then the study networks; labels short enough for a phone
    (what each is for is on its card)."""
    cat = {e.name: e for e in model_catalog() if e.trained}
    out = [(f"{KIND['file']} · {e.name} — {e.summary}", e.name) for e in cat.values()
           if e.family == "file"]  # model files the server was started with, first
    out += [(f"{n} — {MAIN_LABELS[n]}", n) for n in MAIN_MODELS if n in cat]
    for group in ("classical", "report"):
        for e in cat.values():
            if e.family == group and e.name not in MAIN_MODELS:
                out.append((f"{KIND[group]} · {e.name}", e.name))
    return out


def trained_scales(name: str) -> list[int]:
    return entry(name).trained_scales


def pick_scale(name: str, wanted: int | None) -> int:
    """``wanted`` if ``name`` is trained there, else the default scale, else its first
    trained scale: switching model never lands on random weights."""
    scales = trained_scales(name) or entry(name).scales
    for s in (wanted, DEFAULT_SCALE):
        if s in scales:
            return int(s)
    return scales[0]


def default_choice() -> tuple[str, int]:
    """The UI's first selection: the model file the server was started with, else auto at
    the default scale when both of its weights ship, else the flagship, else the first
    trained network — never random weights."""
    offered = [n for _, n in ui_models()]
    for i in foreign.registered_files():
        return i.name, i.scale
    for name in (AUTO, DEFAULT_MODEL, *offered):
        if name in offered and DEFAULT_SCALE in trained_scales(name):
            return name, DEFAULT_SCALE
    name = offered[0] if offered else "bicubic"
    return name, pick_scale(name, DEFAULT_SCALE)


def default_name(scale: int, *, allow_auto: bool = True) -> str:
    """What runs when no model is named: ``auto`` where it is allowed and both its networks
    ship at ``scale``, else srlab's default network (``registry.default_model``)."""
    if allow_auto and auto_available(scale):
        return AUTO
    return default_model(scale)


def resolve(name: str | None, scale: int, *, allow_auto: bool = True,
            trained_only: bool = False) -> str:
    """The one name/scale check, before any work: the model to run, or ``ChoiceError`` (one
    sentence; ``UnknownModelError`` for a name not registered).

    ``None`` means the default (``default_name``). ``allow_auto`` is False where one network
    must be named (a weights file, an export). ``trained_only`` refuses random weights (the
    web server unless ``allow_untrained``); the CLI runs them with a warning.
    """
    name = name if name is not None else default_name(scale, allow_auto=allow_auto)
    if name == AUTO:
        if not allow_auto:
            raise ChoiceError("'auto' chooses a network per image; name one network here")
        if scale not in auto_scales():
            raise ChoiceError(f"auto works at scales {auto_scales()}, not {scale}")
        if not auto_available(scale):
            raise ChoiceError(f"auto needs the {' and '.join(DENOISE_PAIR)} weights at "
                              f"x{scale}, which are not shipped; name a model instead")
        return AUTO
    own = foreign.registered(name)  # a model file offered by name (--model-file)
    if own is not None:
        if scale != own.scale:
            raise ChoiceError(f"{name} is an x{own.scale} model, not x{scale}")
        return name
    spec = get_spec(name)  # UnknownModelError with the list of names
    if scale not in spec.scales:
        raise ChoiceError(f"model '{name}' supports scales {list(spec.scales)}, not {scale}")
    if trained_only:
        e = entry(name)
        if not e.variants[scale].trained:
            where = (f"trained at {', '.join(f'x{s}' for s in e.trained_scales)}"
                     if e.trained else "no trained weights at any scale")
            raise ChoiceError(f"{name} x{scale} has no trained weights ({where}); add "
                              "allow_untrained=true to run it on random weights")
    return name


def run_scales(name: str | None) -> list[int]:
    """The scales an output size other than the model's may run ``name`` at
    (``image.outsize.plan_size``): where its weights ship (every scale for a classical model;
    for ``auto`` where both of its networks ship; for None where the default ``resolve``
    picks there is trained), else every scale it registers (random weights, which ``resolve``
    allows and the CLI warns about). From file names alone: no catalogue is built."""
    if name is None:
        return [s for s in (2, 3, 4) if run_scales(default_name(s)).count(s)] or [DEFAULT_SCALE]
    if name == AUTO:
        # where none ships, its scales: resolve then refuses in the catalogue's words
        return [s for s in auto_scales() if auto_available(s)] or auto_scales()
    served = foreign.registered(name)  # srlab serve --model-file: the file's one scale
    if served is not None:
        return [served.scale]
    spec = get_spec(name)  # UnknownModelError with the list of names
    if not spec.trainable:
        return list(spec.scales)
    shipped = [s for s in spec.scales if _weights.shipped_weights_path(name, s).is_file()]
    return shipped or list(spec.scales)


def training_artifacts(name: str, scale: int) -> dict[str, Path]:
    """The training curves/GIF/CSV shipped beside a model's weights, by file name."""
    root = ARTIFACTS_DIR if ARTIFACTS_DIR is not None else Path(_weights.SHIPPED_DIR)
    folder = root / f"{name}_x{scale}"
    return {f: folder / f for f in ARTIFACT_FILES if (folder / f).is_file()}


_METRIC_LABELS = {"psnr": "PSNR (dB)", "ssim": "SSIM", "gmsd": "GMSD", "lpips": "LPIPS"}
_FOUR_DECIMALS = {"ssim", "gmsd", "lpips"}  # values below 1 whose differences are small
# timings recorded in weights headers: srlab ship's scoring pass on the day of shipping, under
# whatever load the machine had (span and span-real, one network, differ 3-5x there), so they
# are not shown as the model's speed; the web shows srlab bench's stored figures instead
_TIMINGS = {"mpx_per_s", "cpu_mpx_per_s", "seconds"}
_RECIPE = re.compile(r"([\d,]+) iterations of batch (\d+) x (\d+)px LR patches from (.+?), "
                     r"(\w[\w+-]*) degradation")
_DEGRADATION = {"clean": "downscaled copies",
                "real": "copies downscaled and damaged as real photos are (JPEG blocks, noise, "
                        "blur)"}


def _fmt(value: Any, key: str) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if key in _FOUR_DECIMALS else f"{value:.2f}"
    return html.escape(str(value))


def _text(s: str) -> str:
    """Free text from a weights header shown literally: no Markdown (``1*l1 + 1*l1`` is a
    loss, not italics) and no HTML."""
    return html.escape(s).replace("*", "&#42;").replace("_", "&#95;").replace("`", "&#96;")


def _training_words(m: WeightsMeta) -> str:
    """How the weights were made, in a sentence a newcomer reads: the recorded recipe's
    steps, data and degradation, without the loss formula and run paths."""
    found = _RECIPE.search(m.recipe or "")
    hours = ""
    if m.train_seconds:
        hours = f", {m.total_seconds / 3600:.1f} h of CPU time"
        if m.init_seconds:
            hours += (f" ({m.init_seconds / 3600:.1f} h of it in the weights it started "
                      "from)")
    if found is None:
        return (f"Trained by srlab{hours}. Recorded recipe: {_text(m.recipe)}" if m.recipe
                else f"Trained by srlab{hours}.")
    steps, _, px, data, deg = found.groups()
    sets = ", ".join(_text(d.strip()) for d in data.split(","))
    what = _DEGRADATION.get(deg, f"downscaled copies with {_text(deg)} damage")
    return (f"On {px} × {px} px pieces of photos ({sets}): given {what}, it learned to "
            f"restore the original; {steps} steps{hours}.")


def model_card(name: str, scale: int, *, speed: str = "") -> str:
    """Markdown card of one (model, scale) in plain words: what it is, ``speed`` (a sentence
    from the caller, which knows the measured figures), how close it gets to the original on
    the standard test sets, how it was trained. Text from weights headers is escaped, so it
    reads as written."""
    e = entry(name)
    v = e.variants.get(scale) or e.variants[e.headline_scale()]
    summary = MAIN_MODELS.get(name, e.summary)
    lines = [f"### {name} ×{v.scale}", "", _text(summary), ""]
    if name == AUTO:
        lines += [f"Looks at each image: clean ones go to **{DENOISE_PAIR[0]}**, JPEGs and "
                  f"noisy photos to **{DENOISE_PAIR[1]}**; the result says what it saw and "
                  f"chose. The figures below are {DENOISE_PAIR[0]}'s.", ""]
    if v.classical:
        lines.append("**Classical resampling**: a fixed formula, nothing learned, no "
                     "parameters.")
    elif v.trained:
        lines.append(f"**A trained network** of {v.params:,} parameters; its weights ship "
                     "with srlab.")
    else:
        lines.append(f"**Untrained**: a network of {v.params:,} parameters with no weights "
                     "for this scale; it runs on random weights (for tests only).")
    if speed:
        lines += ["", speed]
    m = v.meta
    quality = {ds: {k: x for k, x in row.items() if k not in _TIMINGS}
               for ds, row in (m.metrics if m else {}).items()}
    quality = {ds: row for ds, row in quality.items() if row}
    # no-reference scores of real photos (srlab ship adds NIQE on RealSRSet for a GAN
    # stage): no original to be close to, so said apart from the table below
    noref = {ds: row.pop("niqe") for ds, row in quality.items() if set(row) == {"niqe"}}
    quality = {ds: row for ds, row in quality.items() if row}
    if quality:
        keys: list[str] = []
        for row in quality.values():
            keys += [k for k in row if k not in keys]
        keys = sorted(keys, key=lambda k: {"psnr": 0, "ssim": 1, "gmsd": 2}.get(k, 3))
        lines += ["", f"**How close to the original** on the standard test sets at ×{v.scale} "
                      "(higher PSNR and SSIM are better, lower GMSD is better):"]
        head = ["dataset"] + [_METRIC_LABELS.get(k, k) for k in keys]
        lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for ds, row in sorted(quality.items()):
            cells = [_text(ds)] + [_fmt(row[k], k) if k in row else "–" for k in keys]
            lines.append("| " + " | ".join(cells) + " |")
    elif not v.classical:
        lines += ["", "No measured quality recorded for this model."]
    for ds, score in noref.items():
        lines += ["", f"**How natural it looks** on {_text(ds)} (real photos, no original): "
                      f"NIQE {_fmt(score, 'niqe')} (lower is better)."]
    if m is not None and (m.recipe or m.train_seconds):
        lines += ["", f"**How it was trained:** {_training_words(m)}"]
    if m is not None and m.license:
        lines += ["", f"**Weights licence:** {_text(m.license)}"]
    return "\n".join(lines)

"""Weight blends: one network whose weights are a weighted mean of shipped networks of one
architecture (network interpolation, Wang et al. 2018; Real-ESRGAN's ``-dn``).

Two controls place a blend on the path span -> span-real -> span-real-gan, all one
architecture (span.QUALITY), so every blend is a network of that architecture too and runs
on the same backends:

- ``denoise`` S: span (0, faithful) towards span-real (1, removes JPEG, noise and blur);
- ``detail`` D: span-real (0) towards span-real-gan (1, crisp GAN texture, may invent detail).

Together: ``theta = (1 - S) * span + S * ((1 - D) * span-real + D * span-real-gan)``. Detail
given alone means the real side (S = 1): detail is texture for damaged photos, built on
span-real. Neither given: no blend. ``auto`` only ever chooses S (it keeps the faithful
models); detail is always the user's choice.

This module is the one place that turns the two controls into coefficients, checks they can
run at a scale (through ``catalog.resolve``, the one name/scale check) and names the result;
``api`` builds the network from the coefficients. ``mix`` is the one weighted mean of weight
sets: the shipped blends use it, and so does ``blend_files`` (``srlab blend``), which mixes
weights files of your own (two runs of one architecture, say) into a file any ``--weights``
takes, so a blend judged or benchmarked is one command to remake.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from srlab.zoo.catalog import resolve
from srlab.zoo.registry import DENOISE_PAIR, DETAIL_PAIR, MODELS, ChoiceError
from srlab.zoo.weights import (
    WeightsError,
    WeightsMeta,
    read_weights,
    save_tensors,
    shipped_weights_path,
)

__all__ = ["Blend", "DETAIL_PAIR", "CHAIN", "BlendError", "mix", "blend_files"]

Tensors = dict[str, torch.Tensor]

# every network a blend is made of, faithful to crisp (a named one of them may take a blend)
CHAIN = (*DENOISE_PAIR, DETAIL_PAIR[1])
RECIPE = "blend: "  # how the record of a file ``blend_files`` writes begins


class BlendError(ChoiceError):
    """A blend that cannot run: a strength outside 0..1, or a member missing at the scale."""


def strength(what: str, value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    if not 0 <= value <= 1:  # also refuses NaN
        raise BlendError(f"{what} must be between 0 and 1, not {value:g}")
    return value


@dataclass(frozen=True)
class Blend:
    """A point on span -> span-real -> span-real-gan given by ``denoise`` and ``detail``
    (either may be None: see the module docstring for how they combine)."""

    denoise: float | None = None
    detail: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "denoise", strength("denoise", self.denoise))
        object.__setattr__(self, "detail", strength("detail", self.detail))

    @property
    def given(self) -> bool:
        """Whether any control was given (else nothing is blended: auto or a named model)."""
        return self.denoise is not None or self.detail is not None

    def coefficients(self) -> dict[str, float]:
        """Model name -> weight of its parameters (positive, summing to 1); empty when no
        control was given."""
        if not self.given:
            return {}
        s = self.denoise if self.denoise is not None else 1.0
        d = self.detail or 0.0
        faithful, real = DENOISE_PAIR
        gan = DETAIL_PAIR[1]
        raw = {faithful: 1 - s, real: s * (1 - d), gan: s * d}
        return {name: c for name, c in raw.items() if c > 0}

    def whole(self) -> str | None:
        """The one shipped network this blend is (an end point), else None."""
        coef = self.coefficients()
        return next(iter(coef)) if len(coef) == 1 else None

    def _base(self) -> str:
        """The model a label or tag starts from: span when denoise is below 1, else span-real
        (S = 1: the detail pair alone)."""
        return DENOISE_PAIR[0] if self.denoise is not None and self.denoise < 1 \
            else DETAIL_PAIR[0]

    def label(self) -> str:
        """What ran, in words: ``span (denoise 0.5)``, ``span-real (detail 0.7)``,
        ``span (denoise 0.5, detail 0.7)``; an end point is its model's name."""
        whole = self.whole()
        if whole is not None:
            return whole
        base = self._base()
        parts = [f"denoise {self.denoise:g}"] if base == DENOISE_PAIR[0] else []
        if self.detail:
            parts.append(f"detail {self.detail:g}")
        return f"{base} ({', '.join(parts)})"

    def tag(self) -> str:
        """The label in file names: ``span-dn0.5``, ``span-real-dt0.7``, ``span-dn0.5-dt0.7``."""
        whole = self.whole()
        if whole is not None:
            return whole
        base = self._base()
        out = base + (f"-dn{self.denoise:g}" if base == DENOISE_PAIR[0] else "")
        return out + (f"-dt{self.detail:g}" if self.detail else "")

    def check(self, scale: int) -> None:
        """``BlendError`` (one sentence) unless every member registers and ships at ``scale``.
        The registered-scale check is ``catalog.resolve``'s; the sentence says which control
        needs the missing network."""
        for name in sorted(self.coefficients(), key=lambda n: n != DETAIL_PAIR[1]):
            need = "detail" if name == DETAIL_PAIR[1] else "denoise"
            try:
                resolve(name, scale, allow_auto=False)
            except ChoiceError as exc:
                raise BlendError(f"{need} needs {name}, which cannot run at x{scale} "
                                 f"({exc})") from None
            if not shipped_weights_path(name, scale).is_file():
                raise BlendError(f"{need} needs the {name} weights at x{scale}, which are "
                                 "not shipped (`srlab models` lists what ships)")

    def scales(self) -> list[int]:
        """The scales every member ships at (an output size plans among them)."""
        from srlab.zoo.catalog import run_scales

        common: set[int] | None = None
        for name in self.coefficients():
            shipped = set(run_scales(name))
            common = shipped if common is None else common & shipped
        return sorted(common or ())


def _architecture(meta: WeightsMeta) -> tuple[object, dict]:
    """What makes two weight records one network: the registry's builder and every
    constructor argument (span, span-real and span-real-gan are one architecture)."""
    spec = MODELS.get(meta.arch)
    if spec is None:
        return meta.arch, meta.kwargs
    return spec.builder, {**spec.kwargs, **meta.kwargs}


def mix(sets: Mapping[str, tuple[Tensors, WeightsMeta | None]],
        coef: Mapping[str, float]) -> Tensors:
    """The weighted mean of weight sets (name -> (tensors, meta)) by ``coef`` (name ->
    weight, summing to 1), after checking they are one architecture: same builder and
    constructor arguments (``_architecture``), same tensor names and shapes. Two sets mix
    as ``torch.lerp``, the very tensors (and so the cached exports) the denoise blend has
    always given."""
    first, (t0, m0) = next(iter(sets.items()))
    for name, (t, m) in sets.items():
        if m0 is None or m is None or _architecture(m) != _architecture(m0) \
                or t.keys() != t0.keys():
            raise WeightsError(f"{first} and {name} do not share one architecture")
        bad = next((k for k in t0 if t[k].shape != t0[k].shape), None)
        if bad is not None:
            raise WeightsError(f"{first} and {name} differ in the shape of {bad}")
    if len(coef) == 2:
        (a, _), (b, cb) = coef.items()
        return {k: torch.lerp(sets[a][0][k].float(), sets[b][0][k].float(), cb) for k in t0}
    return {k: sum(c * sets[n][0][k].float() for n, c in coef.items()) for k in t0}


def blend_files(a: str | Path, b: str | Path, alpha: float, out: str | Path) -> WeightsMeta:
    """Write ``(1 - alpha) * a + alpha * b`` (two srlab weights files of one architecture and
    scale) to ``out`` as a safetensors file with its own record: ESRGAN's network
    interpolation for weights that are not shipped. Returns the record written."""
    alpha = strength("alpha", alpha)
    assert alpha is not None
    out = Path(out)
    if out.suffix != ".safetensors":
        raise WeightsError(f"the blend is written as .safetensors, not {out.name}")
    sets = {str(a): read_weights(a), str(b): read_weights(b)}
    for path, (_, meta) in sets.items():
        if meta is None:
            raise WeightsError(f"{Path(path).name} carries no srlab record (architecture, "
                               "scale): blend mixes srlab weights files")
    (_, ma), (_, mb) = sets.values()
    assert ma is not None and mb is not None
    if ma.scale != mb.scale:
        raise WeightsError(f"{Path(a).name} is x{ma.scale} and {Path(b).name} x{mb.scale}: "
                           "a blend mixes one scale")
    mixed = mix(sets, {str(a): 1 - alpha, str(b): alpha})
    meta = replace(ma, recipe=f"{RECIPE}{1 - alpha:g} x {Path(a).name} ({ma.recipe}) + "
                              f"{alpha:g} x {Path(b).name} ({mb.recipe})",
                   train_seconds=ma.total_seconds + mb.total_seconds, init_seconds=0.0,
                   metrics={}, trained=ma.trained and mb.trained)
    save_tensors(mixed, meta, out)
    return meta

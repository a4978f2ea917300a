"""Output sizes other than a model's scale in ``srlab serve``: one path for the HTTP API's
``scale=1.5`` / ``width`` / ``height`` / ``fit`` and the demo's "Output size" control.

Both faces hand the request to ``Sized`` (the model's shipped scales, ``zoo.catalog``), which
plans each image with ``image.outsize.plan_size`` once its size is known, checks the request
again at the model scale the plan runs (``Options.checked``: the one name/scale check), and
``finish_result`` resizes the network's output with srlab's one bicubic. The demo only adds
``from_ui``: its text box read as the API's query parameters, with the API's wording for a
bad value, so a mistake reads the same in the browser and in a script's 400.
"""

# No ``from __future__ import annotations``: the quoted names below are for type checkers,
# as in api.py, and nothing here is read by FastAPI or Gradio at run time.
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from srlab.web.state import Options, WebError
from srlab.zoo.catalog import DEFAULT_SCALE, default_name, run_scales
from srlab.zoo.registry import AUTO

if TYPE_CHECKING:
    from srlab.image.outsize import SizePlan
    from srlab.web.state import Result

__all__ = ["SIZE_MODES", "Sized", "finish_result", "from_ui"]

# the demo's choices: (label, mode); "scale" is the model's own scale (the Scale radio)
SIZE_MODES = [("Model's scale", "scale"), ("Factor", "factor"), ("Width", "width"),
              ("Height", "height"), ("Fit in box", "fit")]


class Sized:
    """A request's output size other than the model's (``image.outsize``): the model's
    shipped scales, and after ``with_options`` the request's other choices, so the job can
    plan the model scale once the image's size is known and check that choice again."""

    def __init__(self, size: Any, model: str | None, denoise: float | None,
                 opts: "Options | None" = None, max_pixels: int | None = None, *,
                 detail: float | None = None) -> None:
        self.size, self.model, self.denoise, self.opts = size, model, denoise, opts
        self.detail = detail
        self.max_pixels = max_pixels  # the server's input limit (outsize.MAX_ENLARGEMENT)
        self.scales = _run_scales(model, denoise, detail)

    @classmethod
    def of(cls, model: str | None, scale: float | None, width: int | None,
           height: int | None, fit: str | None, denoise: float | None, *,
           detail: float | None = None) -> "Sized | None":
        """None when the request is a plain x2/x3/x4 the model ships (the old path)."""
        from srlab.image.outsize import OutputSize

        sized = width is not None or height is not None or fit is not None
        if sized and scale == DEFAULT_SCALE:
            scale = None  # the default gives way to a size
        size = OutputSize.of(scale, width, height, fit)
        assert size is not None
        whole = size.integer_scale
        # a whole factor with detail names the network's scale: checked there (x4 only),
        # never planned from another
        if not sized and whole in (2, 3, 4) and \
                (detail is not None or whole in _run_scales(model, denoise, detail)):
            return None
        return cls(size, model, denoise, detail=detail)

    def first_scale(self) -> int:
        """The model scale for a factor (any image), else the largest one shipped."""
        from srlab.image.outsize import choose_scale

        if self.size.scale is not None:
            return choose_scale(self.size.scale, self.scales)
        return max(self.scales)

    def with_options(self, opts: "Options", max_pixels: int) -> "Sized":
        return Sized(self.size, self.model, self.denoise, opts, max_pixels, detail=self.detail)

    def plan(self, width: int, height: int) -> "tuple[SizePlan, Options]":
        """(SizePlan, the request's options at its model scale, checked); WebError(400)."""
        from srlab.image.outsize import SizeError, SizeLimitError, plan_size

        try:
            plan = plan_size(self.size, width, height, self.scales, max_pixels=self.max_pixels)
        except SizeError as exc:
            raise WebError(413 if isinstance(exc, SizeLimitError) else 400, str(exc)) from None
        if self.opts is None:
            return plan, None  # type: ignore[return-value]
        s = plan.model_scale
        model = self.model if self.model is not None else \
            (AUTO if self.denoise is not None or self.detail is not None else default_name(s))
        return plan, replace(self.opts, model=model, scale=s).checked()


def _run_scales(model: str | None, denoise: float | None, detail: float | None) -> list[int]:
    """The scales a request may run at: a blend's where all its networks ship
    (``zoo.blend``), else the model's (auto's for a denoise blend)."""
    if detail is not None:
        from srlab.zoo.blend import Blend

        return Blend(denoise, detail).scales()
    return run_scales(AUTO if denoise is not None else model)


def finish_result(res: "Result", plan: "SizePlan | None") -> str:
    """Resize ``res`` (not yet written) to the plan's size when the plan resizes, and say
    what ran ('span x4 -> resize to 1.5x (768x512)', the CLI's words); '' otherwise."""
    if plan is None or not plan.resize:
        return ""
    from srlab.image.outsize import finish

    assert res.array is not None
    res.array = finish(res.array, plan)
    res.out_size = plan.out_size
    return plan.describe(res.chosen)


def _number(text: str, kind: type, help_: str) -> Any:
    """``text`` as an int or float, else ``SizeError`` in the API's words for that query
    parameter ("width must be a whole number of at least 1, not 'abc'"); a float below 1,
    nan or inf is left to ``OutputSize``, which words it as the API does."""
    from srlab.image.outsize import SizeError

    try:
        value = kind(text)
    except ValueError:
        raise SizeError(f"{help_}, not '{text}'") from None
    if kind is int and value < 1:  # the API refuses these in its parameter check
        raise SizeError(f"{help_}, not '{text}'")
    return value


def from_ui(model: str, mode: str, text: str | None, denoise: float | None,
            detail: float | None = None) -> "tuple[int | None, Sized | None]":
    """The demo's Output size control as the API would take it: (the model scale to check the
    request at, or None to keep the Scale radio's; the ``Sized`` planner, or None for a plain
    shipped x2/x3/x4). ``SizeError`` (a ``ValueError``) with one sentence for a bad value."""
    from srlab.image.outsize import SizeError

    if mode in (None, "", "scale"):
        return None, None
    text = (text or "").strip()
    examples = {"factor": "1.5", "width": "1920", "height": "1080", "fit": "1920x1080"}
    if mode not in examples:
        raise SizeError(f"output size is one of {', '.join(examples)}, not '{mode}'")
    if not text:
        raise SizeError(f"type the output {'box' if mode == 'fit' else mode} first, "
                        f"e.g. {examples[mode]}")
    scale = width = height = fit = None
    if mode == "factor":
        scale = _number(text, float, "scale must be a number of at least 1")
    elif mode == "width":
        width = _number(text, int, "width must be a whole number of at least 1")
    elif mode == "height":
        height = _number(text, int, "height must be a whole number of at least 1")
    else:
        fit = text
    sized = Sized.of(model, scale, width, height, fit, denoise, detail=detail)
    if sized is None:  # a whole factor the model ships: that scale, no resize
        assert scale is not None
        return int(scale), None
    return sized.first_scale(), sized

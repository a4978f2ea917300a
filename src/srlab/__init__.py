"""srlab — a super-resolution lab that works on a CPU.

``import srlab`` is cheap: torch and the models load on first use of the API below.

    >>> import srlab
    >>> up = srlab.load_model("span", scale=4)     # flagship with its shipped weights
    >>> sr = up(lr_image)                          # numpy array or PIL image
    >>> sr = srlab.upscale(lr_image, scale=2)      # default model in one call
    >>> sr = srlab.upscale(lr_image, fit=(1920, 1080))  # any size: x4 run, then resized
    >>> sr = up(lr_image, size=srlab.OutputSize(scale=1.5))
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["load_model", "upscale", "OutputSize", "__version__"]


def __getattr__(name: str) -> Any:
    if name in ("load_model", "upscale"):
        from srlab import api

        return getattr(api, name)
    if name == "OutputSize":
        from srlab.image.outsize import OutputSize

        return OutputSize
    raise AttributeError(f"module 'srlab' has no attribute {name!r}")

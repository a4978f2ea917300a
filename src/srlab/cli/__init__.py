"""The ``srlab`` command line (entry point ``srlab.cli:main``); see ``srlab.cli.main``."""

from __future__ import annotations

from srlab.cli.common import DEFAULT_MAX_PIXELS as _DEFAULT_MAX_PIXELS  # noqa: F401
from srlab.cli.common import UsageError
from srlab.cli.main import build_parser, main
from srlab.image.imageio import SAMPLE_IMAGE

__all__ = ["main", "build_parser", "UsageError", "SAMPLE_IMAGE"]

"""The manifest of a batch: one JSON line per input, so a batch of a million files can be
audited (what failed, which model auto chose, on which worker, how long) and resumed.

Only the process that drives the batch writes it (workers return small rows), one line per
finished input, flushed as it comes: an interrupted run leaves every finished row behind
and at worst no half line that matters (a torn last line is ignored when read back).

A row: ``input``, ``output``, ``status`` (``ok``, ``failed``, or ``verified`` for an output a
resume found complete without a row), ``in_size`` and ``out_size`` ([width, height]),
``bytes`` and ``sha256`` of the output, ``model`` (as asked: ``auto`` or a name), ``choice``
(the network that ran), ``read`` (what auto read in the image) and ``reason`` (why it chose
that strength), ``backend``, ``scale``,
``seconds``, ``worker``, ``error``, ``time``.

Complete, for ``--resume``: the output exists and its size and SHA-256 match its ``ok`` row
for the same model and scale; an output without a row counts only if it decodes to the
input's size times the scale. save_image writes atomically, so a torn output never has the
final name, but a file from elsewhere or a damaged disk is caught by the check all the same.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, TextIO

from srlab.batch import storage

__all__ = ["MANIFEST_NAME", "ManifestWriter", "read_manifest", "is_complete", "default_path",
           "complete_sizes"]

MANIFEST_NAME = "srlab-manifest.jsonl"


def default_path(output: str | Path | None, targets: list[str]) -> Path:
    """Beside the outputs: in ``-o`` when it names a folder, else in the targets' common
    folder; for URL outputs, in the current folder (the manifest is a local file)."""
    from srlab.image.imageio import WRITE_EXTENSIONS

    if output is not None and storage.is_url(output):
        return Path(MANIFEST_NAME)
    if output is not None and Path(str(output)).suffix.lower() not in WRITE_EXTENSIONS:
        return storage.local_path(output) / MANIFEST_NAME
    local = [str(storage.local_path(t).parent.absolute()) for t in targets
             if not storage.is_url(t)]
    return Path(os.path.commonpath(local)) / MANIFEST_NAME if local else Path(MANIFEST_NAME)


def read_manifest(path: Path) -> dict[str, dict[str, Any]]:
    """The last row for each output (a torn last line, from a killed run, is skipped)."""
    rows: dict[str, dict[str, Any]] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return rows
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and "output" in row:
            rows[str(row["output"])] = row
    return rows


class ManifestWriter:
    """Appends rows to the manifest; flushed per row, synced to disk every few seconds."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: TextIO = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close
        self._synced = time.monotonic()

    def write(self, row: dict[str, Any]) -> None:
        self._fh.write(json.dumps(row, sort_keys=False) + "\n")
        self._fh.flush()
        if time.monotonic() - self._synced > 5:
            os.fsync(self._fh.fileno())
            self._synced = time.monotonic()

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()

    def __enter__(self) -> ManifestWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _decoded_size(loc: str) -> tuple[int, int] | None:
    from srlab.image.imageio import ImageError, load_image

    try:
        with storage.local_copy(loc) as p:
            img = load_image(p, max_pixels=None)
    except (ImageError, OSError, ValueError):
        return None
    return img.width, img.height


def _header_size(loc: str) -> tuple[int, int] | None:
    from PIL import Image

    try:
        with storage.local_copy(loc) as p, Image.open(p) as im:
            w, h = im.size
            rotated = int(im.getexif().get(0x0112, 1)) in (5, 6, 7, 8)  # EXIF orientation
    except Exception:  # noqa: BLE001 - any unreadable input: not resumable, redo it
        return None
    return (h, w) if rotated else (w, h)


def is_complete(source: str, target: str, row: dict[str, Any] | None, *, model: str,
                scale: int) -> bool:
    """Whether ``target`` is a finished output of ``source`` (rules in the module docstring)."""
    if not storage.exists(target):
        return False
    if row is not None and row.get("status") in ("ok", "verified"):
        if row.get("model") != model or row.get("scale") != scale:
            return False
        try:
            return storage.digest(target) == (row.get("bytes"), row.get("sha256"))
        except OSError:
            return False
    return complete_sizes(source, target, scale) is not None


def complete_sizes(source: str, target: str, scale: int
                   ) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """(input size, output size) when ``target`` decodes to ``source``'s size times
    ``scale`` (the check for an output without a row), else None."""
    size_in = _header_size(source)
    size_out = _decoded_size(target)
    if size_in is None or size_out != (size_in[0] * scale, size_in[1] * scale):
        return None
    return size_in, size_out

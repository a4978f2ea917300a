"""Where many images live: local paths or fsspec URLs (``s3://``, ``gs://``, ``memory://``,
``file://``), because large collections sit in object stores, not on the machine that runs.

A location is a string. Local paths (and ``file://`` URLs) go through ``batch.plan_jobs`` and
the local file functions unchanged; any other URL is listed and planned here with fsspec (the
same naming rules as ``plan_jobs``) and each task copies its input to a local temporary file,
upscales it, and uploads the result under a temporary name before moving it into place, so a
reader never sees half an output. fsspec is imported only when a URL is given.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from srlab.image.imageio import IMAGE_EXTENSIONS, WRITE_EXTENSIONS

__all__ = ["is_url", "local_path", "plan_urls", "local_copy", "upload_atomic", "digest",
           "exists", "leftover_temps", "local_target", "mtime", "remove"]

TEMP_SUFFIX = ".tmp"  # save_image's temporary files are .NAME.XXXX.tmp beside the target


def is_url(loc: object) -> bool:
    """True for a URL with a scheme (``memory://x``); local paths and ``file://`` are local."""
    s = str(loc)
    return "://" in s and not s.startswith("file://")


def local_path(loc: str | Path) -> Path:
    s = str(loc)
    return Path(s[len("file://"):]) if s.startswith("file://") else Path(s)


def _fs(url: str) -> tuple[Any, str]:
    try:
        import fsspec
    except ImportError:  # pragma: no cover - fsspec comes with dask
        raise ValueError(f"{url}: URLs need fsspec (pip install fsspec)") from None
    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:  # e.g. s3:// without s3fs installed
        raise ValueError(f"{url}: {str(exc).splitlines()[0]}") from None


def _is_image_name(name: str) -> bool:
    return posixpath.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def plan_urls(inputs: Sequence[str], *, output: str | None, scale: int, ext: str | None,
              recursive: bool) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(source, target) URL pairs by ``plan_jobs``'s rules, and the inputs refused."""
    out_ext = None if ext is None else (ext.lower() if ext.startswith(".") else f".{ext.lower()}")
    files: list[tuple[str, str]] = []  # url, sub-folder under output
    failed: list[tuple[str, str]] = []
    for loc in inputs:
        fs, path = _fs(str(loc))
        try:
            if fs.isdir(path):
                found = sorted(fs.find(path) if recursive else fs.ls(path, detail=False))
                found = [f for f in found if _is_image_name(f) and fs.isfile(f)]
                if not found:
                    failed.append((str(loc), f"{loc}: no image files in this folder"))
                for f in found:
                    rel = posixpath.relpath(posixpath.dirname(f), path.rstrip("/"))
                    files.append((fs.unstrip_protocol(f), "" if rel == "." else rel))
            elif fs.exists(path):
                files.append((str(loc), ""))
            else:
                failed.append((str(loc), f"{loc}: no such file or folder"))
        except OSError as exc:
            failed.append((str(loc), f"{loc}: cannot read ({exc})"))
    single = len(files) == 1 and len(inputs) == 1
    pairs: list[tuple[str, str]] = []
    taken: dict[str, str] = {}
    for src, rel in files:
        stem, suffix = posixpath.splitext(posixpath.basename(src))
        if output is None:
            target = posixpath.join(posixpath.dirname(src), f"{stem}_x{scale}{out_ext or '.png'}")
        elif single and posixpath.splitext(output)[1].lower() in WRITE_EXTENSIONS:
            target = output
        else:
            keep = suffix if suffix.lower() in WRITE_EXTENSIONS else ".png"
            target = posixpath.join(output.rstrip("/"), rel, stem + (out_ext or keep))
        if target in taken or target == src:
            failed.append((src, f"{src}: its output {target} is taken; skipped"))
            continue
        taken[target] = src
        pairs.append((src, target))
    return pairs, failed


@contextmanager
def local_copy(loc: str) -> Iterator[Path]:
    """A local path holding ``loc``'s bytes (the path itself when it is local)."""
    if not is_url(loc):
        yield local_path(loc)
        return
    fs, path = _fs(loc)
    with tempfile.TemporaryDirectory(prefix="srlab-in-") as d:
        tmp = Path(d) / posixpath.basename(path)
        fs.get_file(path, str(tmp))
        yield tmp


@contextmanager
def local_target(loc: str) -> Iterator[Path]:
    """Where to write ``loc`` locally; for a URL, a temporary file uploaded on success."""
    if not is_url(loc):
        yield local_path(loc)
        return
    with tempfile.TemporaryDirectory(prefix="srlab-out-") as d:
        tmp = Path(d) / posixpath.basename(loc)
        yield tmp
        upload_atomic(tmp, loc)


def upload_atomic(local: Path, loc: str) -> None:
    """Put ``local`` at ``loc``: under a temporary name first, then moved into place."""
    fs, path = _fs(loc)
    parent, name = posixpath.split(path)
    tmp = posixpath.join(parent, f".{name}.{os.getpid()}{TEMP_SUFFIX}")
    fs.makedirs(parent, exist_ok=True)
    fs.put_file(str(local), tmp)
    fs.mv(tmp, path)


def exists(loc: str) -> bool:
    if not is_url(loc):
        return local_path(loc).is_file()
    fs, path = _fs(loc)
    return bool(fs.isfile(path))


def mtime(loc: str) -> float | None:
    """When ``loc`` was last written (seconds since the epoch), or None when the file system
    cannot say (then a retried chunk redoes the file instead of trusting it)."""
    try:
        if not is_url(loc):
            return local_path(loc).stat().st_mtime
        fs, path = _fs(loc)
        return fs.modified(path).timestamp()
    except (OSError, NotImplementedError, ValueError, AttributeError):
        return None


def digest(loc: str) -> tuple[int, str]:
    """(bytes, sha256) of a file: what the manifest records to tell a complete output."""
    h = hashlib.sha256()
    n = 0
    if is_url(loc):
        fs, path = _fs(loc)
        opener: Any = fs.open(path, "rb")
    else:
        opener = open(local_path(loc), "rb")
    with opener as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
            n += len(chunk)
    return n, h.hexdigest()


def leftover_temps(targets: Sequence[str]) -> list[Path]:
    """Temporary files a killed worker left beside local ``targets`` (``.NAME.*.tmp``)."""
    found: list[Path] = []
    by_dir: dict[Path, set[str]] = {}
    for t in targets:
        if not is_url(t):
            p = local_path(t)
            by_dir.setdefault(p.parent, set()).add(p.name)
    for d, names in by_dir.items():
        try:
            entries = list(d.iterdir())
        except OSError:
            continue
        for e in entries:
            n = e.name
            if n.startswith(".") and n.endswith(TEMP_SUFFIX) and \
                    n[1:].rsplit(".", 2)[0] in names:
                found.append(e)
    return found


def remove(paths: Sequence[Path]) -> None:
    for p in paths:
        try:
            p.unlink()
        except FileNotFoundError:
            pass


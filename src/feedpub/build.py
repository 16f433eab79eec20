"""Writing a rendered site to a directory, safely and incrementally.

Each file is written to a temporary name and renamed into place, so a reader
(or a killed build) only ever sees a whole old or whole new file. Unchanged
files keep their bytes and mtime; each file's mtime is its feed's newest entry,
so a plain web server sends a meaningful Last-Modified. Only files a previous
build listed in its manifest are ever removed.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .site import Site

MANIFEST = ".feedpub-manifest.json"
TMP_SUFFIX = ".feedpub-tmp"
_LEFTOVER = re.compile(r"^\..+\.[a-z0-9_]{8}" + re.escape(TMP_SUFFIX) + "$")


@dataclass(frozen=True)
class BuildReport:
    written: int
    unchanged: int
    removed: int


def write_site(site: Site, out_dir: Path) -> BuildReport:
    out_dir.mkdir(parents=True, exist_ok=True)
    root = out_dir.resolve()
    previous = _read_manifest(out_dir)
    _remove_leftovers(root)
    # List everything this build may leave behind before touching it, so a
    # build killed half-way is cleaned up by the next one.
    _write_manifest(out_dir, sorted(previous | set(site.outputs)))
    written = unchanged = 0
    for name, output in site.outputs.items():
        target = (root / name).resolve()
        if os.path.commonpath([root, target]) != str(root):
            raise ValueError(f"refusing to write outside {out_dir}: {name}")
        mtime = output.last_modified.timestamp()
        if _same_bytes(target, output.body):
            unchanged += 1
        else:
            _atomic_write(target, output.body)
            written += 1
        if target.stat().st_mtime != mtime:
            os.utime(target, (mtime, mtime))
    removed = 0
    for name in sorted(previous - set(site.outputs)):
        target = (root / name).resolve()
        if os.path.commonpath([root, target]) == str(root) and target.is_file():
            target.unlink()
            removed += 1
            _prune_empty_dirs(target.parent, root)
    _write_manifest(out_dir, sorted(site.outputs))
    return BuildReport(written, unchanged, removed)


def _same_bytes(path: Path, body: bytes) -> bool:
    try:
        if path.stat().st_size != len(body):
            return False
        return path.read_bytes() == body
    except OSError:
        return False


def _atomic_write(path: Path, body: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(body)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _remove_leftovers(root: Path) -> None:
    """Delete temporary files a killed build left behind (only names this module makes)."""
    for directory, _dirs, files in os.walk(root):
        for name in files:
            if _LEFTOVER.match(name):
                os.unlink(os.path.join(directory, name))


def _read_manifest(out_dir: Path) -> set[str]:
    try:
        names = json.loads((out_dir / MANIFEST).read_text("utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return set()
    return {name for name in names if isinstance(name, str)}


def _write_manifest(out_dir: Path, names: list[str]) -> None:
    body = json.dumps({"generator": "feedpub", "files": names}, indent=1).encode() + b"\n"
    if not _same_bytes(out_dir / MANIFEST, body):
        _atomic_write(out_dir / MANIFEST, body)


def _prune_empty_dirs(directory: Path, root: Path) -> None:
    while directory != root and directory.is_dir() and not any(directory.iterdir()):
        directory.rmdir()
        directory = directory.parent

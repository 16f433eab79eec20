"""Which files count as articles: finding them, noticing which changed, reading one.

Parsing is per file (:mod:`feedpub.ingest.validate`), combining the results
is :mod:`feedpub.ingest.assemble`'s job and loading fast is
:mod:`feedpub.ingest.loader`'s.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path

from ..model import Problem, printable
from ..walk import walk
from .validate import ParseResult, parse_bytes

SUFFIXES = frozenset({".md", ".markdown", ".txt"})


def scan(root: Path) -> dict[str, tuple[int, int]]:
    """Each article file under ``root`` with its (size, mtime_ns), from one pass of ``os.scandir``.

    Directories that are links are not entered; a file that is a link is
    read only when it points inside the seeds directory.
    """
    found: dict[str, tuple[int, int]] = {}
    real_root = os.path.realpath(root)
    for rel, entry in walk(root, skip=_hidden):
        if not _article_name(entry.name):
            continue
        try:
            if entry.is_symlink() and _leaves(real_root, entry.path):
                continue
            info = entry.stat()
            if entry.is_file():
                found[rel] = (info.st_size, info.st_mtime_ns)
        except OSError:
            continue  # gone while we looked, or unreadable: not there
    return found


def rescan(root: Path, known: Mapping[str, tuple[int, int]], paths: Iterable[str]) -> dict[str, tuple[int, int]]:
    """``known`` (a previous :func:`scan`) brought up to date for the files at ``paths`` only.

    For a reload after a file-system event: stating a handful of files instead
    of every file, by :func:`scan`'s rules. Returned in path order, as
    :func:`scan`'s result is used.
    """
    stamps = dict(known)
    real_root = os.path.realpath(root)
    added = False
    for path in paths:
        rel = os.path.relpath(path, root)
        if rel.startswith("..") or os.path.isabs(rel):
            continue
        rel = rel.replace(os.sep, "/")
        stamp = _stamp_one(root, rel, real_root)
        if stamp is None:
            stamps.pop(rel, None)
        else:
            added = added or rel not in stamps
            stamps[rel] = stamp
    return dict(sorted(stamps.items())) if added else stamps


def _hidden(name: str) -> bool:
    return name.startswith(".")


_ENDINGS = tuple(SUFFIXES)


def _article_name(name: str) -> bool:
    # Called for every file of every scan: str.endswith rather than splitext, with splitext's answer
    # for a name that is only a suffix (".md" has no extension).
    return name.lower().endswith(_ENDINGS) and not name.startswith(".")


def _leaves(real_root: str, path: str) -> bool:
    """A link that leads out of the seeds directory is never read."""
    return os.path.commonpath([real_root, os.path.realpath(path)]) != real_root


def _stamp_one(root: Path, rel: str, real_root: str) -> tuple[int, int] | None:
    parts = rel.split("/")
    if any(_hidden(part) or not part for part in parts) or not _article_name(parts[-1]):
        return None
    try:
        directory = os.fspath(root)
        for part in parts[:-1]:  # scan does not enter linked directories
            directory = os.path.join(directory, part)
            if os.path.islink(directory) or not os.path.isdir(directory):
                return None
        target = os.path.join(directory, parts[-1])
        if os.path.islink(target) and _leaves(real_root, target):
            return None
        info = os.stat(target)
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return (info.st_size, info.st_mtime_ns)


def display_path(root: Path, relpath: str) -> str:
    """How a file is named in problems and logs: printable, whatever bytes its name holds.

    A name that is not UTF-8 reaches Python with surrogates, which no UTF-8
    output (a terminal, a log, SQLite, JSON) accepts; such bytes are shown as
    ``\\xe9``, control characters (a newline could forge a line of output) likewise.
    """
    return printable((root / relpath).as_posix())


def read_file(root: Path, relpath: str, max_bytes: int) -> ParseResult:
    """Read and parse one file; I/O errors and a file over ``max_bytes`` become problems like any other.

    The size limit is checked here, and only here, because it bounds what is read.
    """
    display = display_path(root, relpath)
    try:
        with open(root / relpath, "rb") as handle:
            raw = handle.read(max_bytes + 1)
    except OSError as exc:
        return ParseResult(display, None, (Problem(display, None, "error", f"cannot read: {exc.strerror}"),))
    if len(raw) > max_bytes:
        size = os.path.getsize(root / relpath)
        message = f"file is {size:,} bytes, over the limit of {max_bytes:,} (FEEDPUB_MAX_FILE_BYTES)"
        return ParseResult(display, None, (Problem(display, None, "error", message),))
    return parse_bytes(display, raw)

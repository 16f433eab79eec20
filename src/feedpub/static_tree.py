"""The rules of writing a site to a directory, safely and incrementally (the writing: :mod:`feedpub.tree_writer`).

Each file is written to a temporary name and renamed into place, so a reader
(or a killed or failed build) only ever sees a whole old or whole new file.
Unchanged files keep their bytes and mtime. Each file's mtime is the later of
its feed's newest entry and the time its current bytes were first written (kept
per file in the manifest, see :mod:`feedpub.first_published`): a plain web server's
``Last-Modified``, and nginx's ETag (mtime and size), move whenever the bytes
do. Only files a previous build listed in its manifest are ever removed. One
build at a time writes a directory (:func:`locked`).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import stat
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .first_published import Dated
from .model import EPOCH, MICROSECOND
from .walk import walk

if TYPE_CHECKING:  # a build with nothing to do imports no renderer (see feedpub.last_build)
    from .catalog.feeds import Feed
    from .render.formats import Format

MANIFEST = ".feedpub-manifest.json"
# Files a running build wrote beyond what its manifest lists, one JSON line each: [name, version, time].
# Gone when the build ends; left behind by a killed one, whose files the next build can then remove.
JOURNAL = ".feedpub-journal"
TMP_SUFFIX = ".feedpub-tmp"
_LEFTOVER = re.compile(r"^\..+\.[a-z0-9_]{8}" + re.escape(TMP_SUFFIX) + "$")


@dataclass(frozen=True)
class BuildReport:
    written: int
    unchanged: int
    removed: int
    changed: tuple[str, ...] = ()  # names of the files written
    versions: Mapping[str, str] = field(default_factory=dict)  # each written file's version (its body hash)
    gone: tuple[str, ...] = ()  # names of the files removed


class OutputError(Exception):
    """The output directory could not be written: one line naming the path and the reason."""

    def __init__(self, path: str | Path, error: OSError) -> None:
        super().__init__(f"cannot write {path}: {error.strerror or error}")


class OutputBusy(Exception):
    """Another build held the output directory's lock for longer than we would wait."""


@contextmanager
def locked(out_dir: Path, wait: float, on_wait: Callable[[], None] = lambda: None) -> Iterator[None]:
    """Hold ``out_dir``'s build lock, waiting up to ``wait`` seconds (calling ``on_wait`` once) if it is held.

    A build removes the temporary files a killed build left, which would include
    those of a build still running; so builds into one directory take turns. The
    lock is ``flock`` on the directory itself: nothing is added to a tree a web
    server publishes whole, and the kernel releases it when its holder exits,
    however it exits, so it is never stale.
    """
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(out_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise OutputError(exc.filename or out_dir, exc) from None
    try:
        deadline = time.monotonic() + wait
        while not _try_lock(fd):
            if time.monotonic() >= deadline:
                raise OutputBusy(f"another feedpub build is writing to {out_dir}; gave up waiting after {wait:g} s")
            on_wait()
            on_wait = _nothing
            time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # releases the lock


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _nothing() -> None:
    pass


def remove_stale(root: Path, inside: Resolver, stale: list[str]) -> list[str]:
    """Delete the files at ``stale`` (names a manifest listed), and directories left empty; the names that went."""
    removed = []
    for name in stale:
        target = inside(name, strict=False)
        if target is not None and os.path.isfile(target):
            os.unlink(target)
            removed.append(name)
            _prune_empty_dirs(Path(target).parent, root)
    return removed


def on_disk(path: str) -> Dated | None:
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return Dated("", EPOCH + info.st_mtime_ns // 1000 * MICROSECOND) if stat.S_ISREG(info.st_mode) else None


class Resolver:
    """``root/name`` as text, refusing any name that would lead outside ``root``.

    Directories are checked once each, parent first: a plain directory (or one
    not made yet) under a checked parent is inside; only a symbolic link is
    resolved, following it as the kernel will. Tens of thousands of outputs
    share a few thousand directories, so this costs one ``lstat`` per directory
    rather than resolving every path (and pathlib's per-path overhead).
    """

    def __init__(self, root: Path) -> None:
        self.root = str(root)  # resolved by the caller
        self._dirs: dict[str, str | None] = {"": self.root}

    def __call__(self, name: str, strict: bool = True) -> str:
        head, _, tail = name.rpartition("/")
        directory = self._dirs.get(head, False)
        if directory is False:
            directory = self._directory(head)
        if directory is None or not _plain(tail) or name.startswith("/"):
            if not strict:
                return None  # type: ignore[return-value]
            raise ValueError(f"refusing to write outside {self.root}: {name}")
        return f"{directory}/{tail}"

    def _directory(self, head: str) -> str | None:
        if head in self._dirs:
            return self._dirs[head]
        parent_head, _, last = head.rpartition("/")
        parent = self._directory(parent_head)
        found: str | None = None
        if parent is not None and _plain(last):
            found = f"{parent}/{last}"
            try:
                is_link = stat.S_ISLNK(os.lstat(found).st_mode)
            except OSError:  # not there yet: made under its checked parent
                is_link = False
            if is_link:
                target = os.path.realpath(found)
                found = target if os.path.commonpath([self.root, target]) == self.root else None
        self._dirs[head] = found
        return found


def mtime_ns(moment: datetime) -> int:
    """A file time for ``moment``, exact to the microsecond (a float of seconds is not, so it would never match)."""
    return (moment - EPOCH) // MICROSECOND * 1000


def _plain(part: str) -> bool:
    return part not in ("", ".", "..") and "\0" not in part


def same_bytes(path: str | Path, body: bytes) -> bool:
    """Whether ``path`` is a regular file holding ``body`` (a link is replaced, never written through)."""
    try:
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode) or info.st_size != len(body):
            return False
        with open(path, "rb") as handle:
            return handle.read() == body
    except OSError:
        return False


def atomic_write(path: Path, body: bytes, mtime_ns: int) -> None:
    """Write ``body`` to ``path`` by renaming a whole, already dated file into place."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    except OSError as exc:
        raise OutputError(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(body)
        os.chmod(tmp, 0o644)
        os.utime(tmp, ns=(mtime_ns, mtime_ns))
        os.replace(tmp, path)
    except BaseException as exc:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError):  # a full disk names no file: name the one we were writing
            raise OutputError(path, exc) from None
        raise


def sweep(out_dir: Path) -> None:
    """Delete temporary files in the root of ``out_dir``, as every build does (see feedpub.tree_writer)."""
    try:
        remove_leftovers(out_dir.resolve(), everywhere=False)
    except OSError as exc:
        raise OutputError(exc.filename or out_dir, exc) from None


def remove_leftovers(root: Path, everywhere: bool) -> None:
    """Delete temporary files a killed build left behind (only names this module makes)."""
    paths = ([entry.path for _, entry in walk(root)] if everywhere
             else [os.path.join(root, name) for name in os.listdir(root)])
    for path in paths:
        if _LEFTOVER.match(os.path.basename(path)):
            os.unlink(path)


def read_manifest(out_dir: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((out_dir / MANIFEST).read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def listed_files(manifest: Mapping[str, Any]) -> set[str]:
    names = manifest.get("files")
    return {name for name in names if isinstance(name, str)} if isinstance(names, list) else set()


def published_times(manifest: Mapping[str, Any]) -> dict[str, Dated]:
    """The version and time of each output as the manifest records them (see :mod:`feedpub.first_published`)."""
    records = manifest.get("published")
    if not isinstance(records, dict):
        return {}
    published = {}
    for name, record in records.items():
        try:
            version, moment = record
            when = datetime.fromisoformat(moment)
        except (TypeError, ValueError):
            continue  # damaged by hand: that output is dated afresh
        if isinstance(version, str) and when.tzinfo is not None:
            published[name] = Dated(version, when)
    return published


class OutputMemo:
    """The feeds a previous build wrote, found by fingerprint, so only changed feeds are rendered again."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        manifest = read_manifest(out_dir)
        feeds = manifest.get("feeds")
        self.fingerprints: dict[str, str] = feeds if isinstance(feeds, dict) else {}
        self.published = published_times(manifest)
        self._root = str(out_dir)

    def bodies(self, feed: Feed, fingerprint: str,
               formats: Sequence[Format]) -> Mapping[str, bytes | None] | None:
        spec = feed.spec
        if self.fingerprints.get(spec.path) != fingerprint:
            return None
        for fmt in formats:
            name = fmt.output_name(spec)
            dated = self.published.get(name)
            try:
                info = os.lstat(f"{self._root}/{name}")
            except OSError:
                return None  # deleted by hand since: render it again
            if dated is None or not stat.S_ISREG(info.st_mode) or info.st_mtime_ns != mtime_ns(dated.time):
                return None  # replaced or touched since: render again (same bytes: only its mtime is set)
        # On disk already, whole and dated: not even read, and the tree writer leaves it alone.
        return dict.fromkeys((fmt.name for fmt in formats), None)


def write_manifest(out_dir: Path, names: list[str], dates: Mapping[str, Dated],
                    fingerprints: Mapping[str, str] | None = None) -> None:
    document: dict[str, Any] = {"generator": "feedpub", "files": names}
    if fingerprints is not None:
        document["feeds"] = dict(sorted(fingerprints.items()))
    document["published"] = {name: [dates[name].version, dates[name].time.isoformat()]
                             for name in sorted(dates)}
    body = json.dumps(document, indent=1).encode() + b"\n"
    if not same_bytes(out_dir / MANIFEST, body):
        atomic_write(out_dir / MANIFEST, body, time.time_ns())


def read_journal(out_dir: Path) -> dict[str, Dated]:
    """What a killed build noted in its journal (see :data:`JOURNAL`); a torn last line is skipped."""
    try:
        lines = (out_dir / JOURNAL).read_bytes().splitlines()
    except OSError:
        return {}
    noted = {}
    for line in lines:
        try:
            name, version, moment = json.loads(line)
            noted[name] = Dated(version, datetime.fromisoformat(moment))
        except (TypeError, ValueError):
            continue
    return {name: dated for name, dated in noted.items() if isinstance(name, str) and dated.time.tzinfo}


def note_in_journal(out_dir: Path, dates: Mapping[str, Dated]) -> None:
    """Add files about to be written to the journal: each line whole before any of them is written."""
    lines = b"".join(json.dumps([name, dated.version, dated.time.isoformat()]).encode() + b"\n"
                     for name, dated in dates.items())
    with open(out_dir / JOURNAL, "ab") as journal:
        journal.write(lines)


def close_journal(out_dir: Path) -> None:
    with suppress(FileNotFoundError):
        os.unlink(out_dir / JOURNAL)


def _prune_empty_dirs(directory: Path, root: Path) -> None:
    while directory != root and directory.is_dir() and not any(directory.iterdir()):
        directory.rmdir()
        directory = directory.parent

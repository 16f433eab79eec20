"""Loading a seeds directory fast: in memory, from the parse cache, or on every core.

A file is parsed only when nothing already knows it: the loader's own memory
(between server reloads), then the persistent cache (between runs, checked by
size and mtime, then by content hash), and only then the parser, on a process
pool when there are many files. A one-shot load (the CLI) can pause the GC
and freeze the result (``pause_gc``), so a large corpus is not scanned again and again.
"""

from __future__ import annotations

import gc
import logging
import os
import sqlite3
import traceback
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager, nullcontext
from multiprocessing import get_all_start_methods, get_context
from multiprocessing.context import BaseContext
from pathlib import Path

from ..model import Corpus, Problem
from .assemble import assemble
from .codec import CodecError, Decoder, encode
from .parse_cache import ParseCache, Row
from .scan import display_path, read_file, rescan, scan
from .validate import ParseResult, content_digest

log = logging.getLogger(__name__)

POOL_THRESHOLD = 1000  # fewer files than this are parsed in-process: a pool costs more to start
CHUNK = 250
WHERE_FRAMES = 6  # innermost frames named when one file meets a bug
Stamp = tuple[int, int]
Progress = Callable[[int, int], None]  # (files just done, files in all)


class SeedsUnavailable(OSError):
    """The seeds directory is missing or unreadable."""


def load(root: Path, max_bytes: int, cache_dir: Path | None = None) -> Corpus:
    """Parse every article file under ``root`` once."""
    return CorpusLoader(root, max_bytes, cache_dir=cache_dir).load()


class CorpusLoader:
    """Loads one seeds directory again and again, parsing only what changed.

    With ``keep_last_good`` (the server), a file that turns bad, say one caught
    half-written, keeps its last good article until it is fixed. ``pause_gc`` is
    for a process that loads once and exits (see :func:`_bulk`), never for the
    server: its reloads run while requests are served.
    """

    def __init__(self, root: Path, max_bytes: int, *, keep_last_good: bool = False, cache_dir: Path | None = None,
                 workers: int | None = None, pause_gc: bool = False) -> None:
        self.root = root
        self._real_root = os.fsencode(os.path.realpath(root))
        self.max_bytes = max_bytes
        self.keep_last_good = keep_last_good
        self.cache_dir = cache_dir
        self.workers = workers if workers is not None else (os.cpu_count() or 1)
        self.pause_gc = pause_gc
        self.parsed = 0
        self.from_cache = 0
        self._results: dict[str, tuple[Stamp, ParseResult]] = {}
        self._decoder = Decoder()
        self._cache: ParseCache | None = None
        self._cache_pid = 0
        self._hits: list[str] = []  # files this load took from the cache, in case it must be rebuilt

    def scan(self) -> dict[str, Stamp]:
        """Every article file with its (size, mtime_ns), in path order: what ``load`` would look at."""
        self._require_root()
        try:
            stamps = scan(self.root)
        except OSError:
            stamps = None
        # Gone while it was walked: what was seen is part of it, not all of it.
        if stamps is None or not self.available():
            raise SeedsUnavailable(f"seeds directory {display_path(self.root, '')} is missing or unreadable")
        return {rel: stamps[rel] for rel in sorted(stamps)}

    def rescan(self, stamps: dict[str, Stamp], paths: Iterable[str]) -> dict[str, Stamp]:
        """``stamps`` (a previous :meth:`scan`) updated for the files at ``paths`` only (file-system events)."""
        self._require_root()
        fresh = rescan(self.root, stamps, paths)
        self._require_root()  # gone meanwhile: its files were not deleted one by one
        return fresh

    def available(self) -> bool:
        """Whether the seeds directory is there and readable now (a stat and an access check)."""
        return self.root.is_dir() and os.access(self.root, os.R_OK | os.X_OK)

    def _require_root(self) -> None:
        if not self.available():
            raise SeedsUnavailable(f"seeds directory {display_path(self.root, '')} is missing or unreadable")

    def load(self, progress: Progress | None = None, stamps: dict[str, Stamp] | None = None) -> Corpus:
        """The corpus now; ``stamps`` from a :meth:`scan` just made saves scanning twice."""
        if stamps is None:
            stamps = self.scan()
        self.parsed = self.from_cache = 0
        self._hits = []
        with _bulk() if self.pause_gc else nullcontext():
            fresh = {rel: known for rel, known in self._results.items() if stamps.get(rel) == known[0]}
            missing = [rel for rel in stamps if rel not in fresh]
            total = len(stamps)
            step = (lambda done: progress(done, total)) if progress else None
            if step and fresh:
                step(len(fresh))
            new_rows: list[Row] = []
            if missing and self.cache_dir is not None:
                missing = self._from_cache(missing, stamps, fresh, new_rows, step)
            for rel, stamp, row_digest, blob, result in self._parse(missing, step):
                self.parsed += 1
                if row_digest:  # a file that could not be read is tried again next time
                    new_rows.append((self._key(rel), stamp[0], stamp[1], row_digest, blob))
                fresh[rel] = (stamp, self._keep_good(rel, result))
            if self.cache_dir is not None and (cache := self._open_cache()) is not None:
                if new_rows or self._results.keys() - stamps.keys() or cache.rebuilt:
                    cache.store(new_rows, [self._key(rel) for rel in self._results.keys() - stamps.keys()])
                if cache.rebuilt:  # found damaged, reading or writing: what it gave goes into the new file
                    cache.store(self._rows(fresh, self._hits))
                    cache.rebuilt = False
            self._results = {rel: fresh[rel] for rel in stamps if rel in fresh}
            return assemble(result for _, result in self._results.values())

    def _rows(self, fresh: dict[str, tuple[Stamp, ParseResult]], rels: Iterable[str]) -> Iterator[Row]:
        for rel in rels:
            stamp, result = fresh[rel]
            yield (self._key(rel), stamp[0], stamp[1], result.digest, encode(result))

    def close(self) -> None:
        """Close the parse cache (it reopens on the next load)."""
        if self._cache is not None:
            self._cache.close()
            self._cache = None
        self._cache_pid = 0

    def _key(self, rel: str) -> bytes:
        """The cache key: the file's absolute path as the file system has it (a cache serves many seeds directories)."""
        return self._real_root + b"/" + os.fsencode(rel)

    def _display(self, rel: str) -> str:
        return display_path(self.root, rel)

    def cache(self) -> ParseCache | None:
        """This process's parse cache (also where a build keeps entry fragments), if it can be used."""
        return self._open_cache() if self.cache_dir is not None else None

    def _open_cache(self) -> ParseCache | None:
        """This process's cache connection, or None (once warned) when the cache cannot be used."""
        # A connection must not cross a fork (gunicorn --preload): each process opens its own.
        if self._cache_pid != os.getpid():
            assert self.cache_dir is not None
            self._cache_pid = os.getpid()
            try:
                self._cache = ParseCache(self.cache_dir, self.max_bytes)
            except (OSError, sqlite3.Error) as exc:
                log.warning("parse cache in %s unavailable (%s); loading without it", self.cache_dir, exc)
                self._cache = None
        return self._cache

    def _from_cache(self, missing: list[str], stamps: dict[str, Stamp],
                    fresh: dict[str, tuple[Stamp, ParseResult]], new_rows: list[Row],
                    progress: Callable[[int], None] | None) -> list[str]:
        """Fill ``fresh`` from cached rows; return the files still to parse."""
        wanted = {self._key(rel): rel for rel in missing}
        hits = 0
        cache = self._open_cache()
        for key, size, mtime_ns, row_digest, blob in cache.rows(list(wanted)) if cache is not None else ():
            rel = wanted.get(key)
            if rel is None:
                continue
            stamp = stamps[rel]
            if (size, mtime_ns) != stamp and not self._unchanged(rel, row_digest):
                continue
            try:
                result = self._decoder.decode(blob, self._display(rel))
            except CodecError:
                continue  # never trusted blindly: parse the file again
            if result.digest != row_digest:
                continue
            kept = fresh[rel] = (stamp, self._keep_good(rel, result))
            del wanted[key]
            if kept[1] is result:  # not a last good version standing in: what the file holds now
                self._hits.append(rel)
            hits += 1
            if (size, mtime_ns) != stamp:
                new_rows.append((key, stamp[0], stamp[1], row_digest, blob))  # the new stamp: a hit at once next time
        self.from_cache = hits
        if progress and hits:
            progress(hits)
        return [rel for rel in missing if self._key(rel) in wanted]

    def _unchanged(self, rel: str, row_digest: str) -> bool:
        """Touched, or changed? The content hash decides."""
        try:
            raw = (self.root / rel).read_bytes()
        except OSError:
            return False
        return content_digest(raw) == row_digest

    def _parse(self, rels: list[str], progress: Callable[[int], None] | None
               ) -> Iterator[tuple[str, Stamp, str, bytes, ParseResult]]:
        root = str(self.root)
        if len(rels) < POOL_THRESHOLD or self.workers < 2:
            for rel in rels:
                stamp = _stamp(self.root / rel)
                result, blob = _read_one(self.root, rel, self.max_bytes, self.cache_dir is not None)
                yield rel, stamp, result.digest, blob, result
                if progress:
                    progress(1)
            return
        chunks = [rels[i:i + CHUNK] for i in range(0, len(rels), CHUNK)]
        with ProcessPoolExecutor(self.workers, mp_context=_context()) as pool:
            for batch in pool.map(_parse_files, [root] * len(chunks), chunks, [self.max_bytes] * len(chunks)):
                for rel, stamp, row_digest, blob in batch:
                    yield rel, stamp, row_digest, blob, self._decoder.decode(blob, self._display(rel))
                if progress:
                    progress(len(batch))

    def _keep_good(self, rel: str, result: ParseResult) -> ParseResult:
        previous = self._results.get(rel)
        if not self.keep_last_good or result.article is not None or previous is None or previous[1].article is None:
            return result
        note = Problem(result.path, None, "warning", "keeping the last good version until the file is fixed")
        return ParseResult(result.path, previous[1].article, (*result.problems, note), previous[1].digest)


def _parse_files(root: str, rels: list[str], max_bytes: int) -> list[tuple[str, Stamp, str, bytes]]:
    """Parse some files (in a worker process or not) into encoded results."""
    out = []
    base = Path(root)
    for rel in rels:
        stamp = _stamp(base / rel)
        result, blob = _read_one(base, rel, max_bytes, True)
        out.append((rel, stamp, result.digest, blob))
    return out


def _read_one(root: Path, rel: str, max_bytes: int, encoded: bool) -> tuple[ParseResult, bytes]:
    """One file's result (and its encoding when wanted): whatever goes wrong is that file's problem only."""
    try:
        result = read_file(root, rel, max_bytes)
        return result, encode(result) if encoded else b""
    except Exception as exc:  # a bug met by one file must not cost the others, nor a worker
        display = display_path(root, rel)
        log.error("%s: %s while reading it (%s); the file is left out", display, type(exc).__name__, where(exc))
        message = f"could not be read: internal error ({type(exc).__name__}); please report it"
        result = ParseResult(display, None, (Problem(display, None, "error", message),))
        return result, encode(result) if encoded else b""


def where(exc: BaseException) -> str:
    """Where an exception was raised, innermost last: files, lines and functions only.

    Neither its message nor the source lines of a traceback: a message may quote a
    value of the file being read, even a secured one.
    """
    frames = traceback.extract_tb(exc.__traceback__)[-WHERE_FRAMES:]
    return " > ".join(f"{os.path.basename(frame.filename)}:{frame.lineno} {frame.name}" for frame in frames)



def _stamp(path: Path) -> Stamp:
    """Size and mtime, taken before reading, so a change during the read is seen next time."""
    try:
        info = os.stat(path)
    except OSError:
        return (-1, -1)
    return (info.st_size, info.st_mtime_ns)


def _context() -> BaseContext:
    """fork where there is one: workers only parse, and nothing needs re-importing."""
    return get_context("fork") if "fork" in get_all_start_methods() else get_context()


@contextmanager
def _bulk() -> Iterator[None]:
    """No collections while thousands of immutable objects are made; freeze them afterwards.

    Frozen objects are never collected: right for a command that exits after one
    load, wrong for a server whose every reload would leave its garbage frozen
    (and would stop the GC of all its request threads meanwhile).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
        gc.freeze()

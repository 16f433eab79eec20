"""A persistent parse cache: one SQLite file, safe to delete, safe to share.

Rows are keyed by file path (its bytes, as the file system holds it: a name
need not be UTF-8) and checked against size and mtime, then by a content hash,
so an unchanged file is never parsed twice and a touched but unchanged file
only costs a read. The file records which feedpub wrote it and with what
limits; anything else (an older version, a corrupt or foreign file) is thrown
away and rebuilt, never trusted, including damage only found while reading
rows; each row carries its own checksum (see :mod:`feedpub.ingest.codec`). SQLite's
locking and WAL journal let several processes (gunicorn workers, a build) share it.

The same file keeps each entry's rendered fragments (:mod:`feedpub.render.kept`) in a table
of their own: they derive from parse results as those do from files, so they share the
file's rules (its version check drops both, a damaged file is rebuilt, a busy one skipped)
and one delete forgets both.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import uuid
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

from .. import __version__, shared_db

log = logging.getLogger(__name__)

APPLICATION = "feedpub-parse-cache"
FORMAT = 4  # 3: paths as bytes, a CRC-32 of the whole result before it; 4: entry fragments
FILENAME = "parse-cache.sqlite3"

LOOKUP_LIMIT = 5000  # more wanted paths than this: one pass over the table beats lookups by key
Row = tuple[bytes, int, int, str, bytes]  # path, size, mtime_ns, digest, encoded result
FragmentRow = tuple[str, str, bytes]  # article URL, source digest, its packed fragments
TABLES = frozenset({"meta", "results", "fragments", "renderings"})
# Rows are a few kilobytes (a parse result, an article's packed fragments): at SQLite's default 4 KiB
# a page holds one, half empty. 16 KiB pages make the file ~40% smaller and writing it ~30% cheaper.
PAGE_SIZE = 16384
ROWS_PER_INSERT = 240  # 960 parameters: within the 999 older SQLite builds allow
RENDERINGS_KEPT = 3  # the fragments of this many renderings (sets of output settings) are kept, the latest used


class ParseCache:
    """Cached parse results, keyed by absolute file path, under one set of parse limits."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.path = directory / FILENAME
        self.identity = f"{APPLICATION}/{FORMAT}/{__version__}/{max_bytes}"
        directory.mkdir(parents=True, exist_ok=True)
        self.rebuilt = False  # the file was found damaged and made anew by this object
        self.instance: str | None = None  # a token its creator wrote: which file this is
        self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        try:
            db = shared_db.connect(self.path, page_size=PAGE_SIZE)
            if shared_db.retry_busy(lambda: self._usable(db)):
                return db
            db.close()
            log.warning("parse cache %s was written by something else; rebuilding it", self.path)
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and shared_db.is_busy(exc):
                raise  # held by another process for too long: not a reason to delete its file
            log.warning("parse cache %s is unreadable (%s); rebuilding it", self.path, exc)
        self._remove()
        return shared_db.connect(self.path, self._initialise, page_size=PAGE_SIZE)

    def _usable(self, db: sqlite3.Connection) -> bool:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:
            self._initialise(db)
            return True
        if "meta" not in tables or not tables <= TABLES:
            return False
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("application") != APPLICATION:
            return False
        if meta.get("identity") != self.identity or tables != TABLES:
            # Our own file, written by another version or with other limits: start afresh.
            with shared_db.transaction(db):
                for table in sorted(tables - {"meta"}):
                    db.execute(f"DROP TABLE {table}")
                db.execute("DELETE FROM meta")
            self._initialise(db)
        else:
            self.instance = meta.get("instance")
        return True

    def _initialise(self, db: sqlite3.Connection) -> None:
        with shared_db.transaction(db):
            db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            db.execute(
                "CREATE TABLE IF NOT EXISTS results (path BLOB PRIMARY KEY, size INTEGER NOT NULL,"
                " mtime_ns INTEGER NOT NULL, digest TEXT NOT NULL, result BLOB NOT NULL)"
            )
            # One row per article and rendering: an edit replaces its article's row (the digest tells them apart).
            # A rowid table, its rows appended in the order made; only the small index takes them by URL.
            db.execute(
                "CREATE TABLE IF NOT EXISTS fragments (rendering TEXT NOT NULL, url TEXT NOT NULL,"
                " digest TEXT NOT NULL, packed BLOB NOT NULL, UNIQUE (rendering, url))"
            )
            db.execute("CREATE TABLE IF NOT EXISTS renderings (rendering TEXT PRIMARY KEY, used INTEGER NOT NULL)")
            db.execute("INSERT OR REPLACE INTO meta VALUES ('application', ?)", (APPLICATION,))
            db.execute("INSERT OR REPLACE INTO meta VALUES ('identity', ?)", (self.identity,))
            self.instance = uuid.uuid4().hex
            db.execute("INSERT OR REPLACE INTO meta VALUES ('instance', ?)", (self.instance,))

    def _remove(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{self.path}{suffix}")

    def _replaced(self) -> bool:
        """Whether the file now at our path is one another process made since we opened ours."""
        try:
            db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=1)
            try:
                row = db.execute("SELECT value FROM meta WHERE key = 'instance'").fetchone()
            finally:
                db.close()
        except sqlite3.OperationalError as exc:
            return shared_db.is_busy(exc)  # in use: not ours to delete
        except sqlite3.DatabaseError:
            return False  # unreadable: the damaged one
        return row is not None and row[0] != self.instance

    def _damaged(self, exc: sqlite3.DatabaseError) -> None:
        """Replace a file found damaged while in use; a busy one is only skipped this time."""
        if isinstance(exc, sqlite3.OperationalError) and shared_db.is_busy(exc):
            log.warning("parse cache %s is busy (%s); not using it this time", self.path, exc)
            return
        log.warning("parse cache %s is damaged (%s); rebuilding it", self.path, exc)
        self._db.close()
        try:
            # Another process may have replaced it already: then its new file is used, not deleted.
            if not self._replaced():
                self._remove()
            self._db = self._open()
        except (OSError, sqlite3.Error) as again:
            log.warning("parse cache %s cannot be rebuilt (%s); loading without it", self.path, again)
            self._db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)  # goes on without
            self._initialise(self._db)
            return
        self.rebuilt = True

    def rows(self, paths: Collection[bytes]) -> Iterator[Row]:
        """The cached rows of ``paths`` (and maybe others); a damaged file yields no more, never fails the load.

        A few paths (a reload after an edit) are looked up by key; many (a start) are read in one pass.
        """
        return self._select("SELECT path, size, mtime_ns, digest, result FROM results", "path", paths)

    def store(self, rows: Iterable[Row], removed: Iterable[bytes] = ()) -> None:
        """Write new rows and forget removed files; a busy cache is skipped, a damaged one rebuilt, never fatal."""
        rows, removed = list(rows), list(removed)
        for attempt in range(2):
            try:
                with shared_db.transaction(self._db) as db:
                    db.executemany("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?)", rows)
                    db.executemany("DELETE FROM results WHERE path = ?", ((p,) for p in removed))
                return
            except sqlite3.DatabaseError as exc:
                if attempt or (isinstance(exc, sqlite3.OperationalError) and shared_db.is_busy(exc)):
                    log.warning("could not update parse cache %s: %s", self.path, exc)
                    return
                self._damaged(exc)

    def fragments(self, rendering: str, urls: Collection[str]) -> Iterator[FragmentRow]:
        """The kept fragments of ``urls`` (and maybe others) under ``rendering``, whatever their digest.

        Like :meth:`rows`, a damaged file yields no more and never fails the render.
        """
        return self._select("SELECT url, digest, packed FROM fragments WHERE rendering = ?", "url", urls,
                            (rendering,))

    def _select(self, query: str, key: str, keys: Collection[Any], params: tuple[Any, ...] = ()) -> Iterator[Any]:
        """``query``'s rows for ``keys`` of column ``key`` (and maybe others): a few keys (a reload, an
        incremental build) are looked up 500 at a time, many (a start) read in one pass."""
        try:
            if len(keys) > LOOKUP_LIMIT:
                yield from self._db.execute(query, params)
                return
            joined = " AND " if " WHERE " in query else " WHERE "
            wanted = list(keys)
            for start in range(0, len(wanted), 500):
                chunk = wanted[start:start + 500]
                yield from self._db.execute(f"{query}{joined}{key} IN ({','.join('?' * len(chunk))})",
                                            (*params, *chunk))
        except sqlite3.DatabaseError as exc:
            self._damaged(exc)

    def store_fragments(self, rendering: str, rows: Iterable[FragmentRow]) -> None:
        """Keep fragments (each replacing its article's older ones); a busy cache skips them, never fatal.

        One statement per :data:`ROWS_PER_INSERT` rows, not one per row: it is written by a thread
        while the render runs, and each statement lets go of the GIL and takes it back, which costs
        the render a switch of threads every time.
        """
        rows = list(rows)
        try:
            with shared_db.transaction(self._db) as db:
                for start in range(0, len(rows), ROWS_PER_INSERT):
                    chunk = rows[start:start + ROWS_PER_INSERT]
                    db.execute("INSERT OR REPLACE INTO fragments VALUES " + ", ".join(["(?, ?, ?, ?)"] * len(chunk)),
                               [value for url, digest, packed in chunk for value in (rendering, url, digest, packed)])
        except sqlite3.DatabaseError as exc:
            self._damaged(exc)  # busy: skipped this time; damaged: rebuilt, and kept by the next render

    def use_rendering(self, rendering: str) -> None:
        """Mark ``rendering`` the latest used, and forget the fragments of all but the last few used."""
        try:
            with shared_db.transaction(self._db) as db:
                db.execute("INSERT OR REPLACE INTO renderings VALUES (?, (SELECT coalesce(max(used), 0) + 1"
                           " FROM renderings))", (rendering,))
                stale = [old for (old,) in db.execute(
                    "SELECT rendering FROM renderings ORDER BY used DESC LIMIT -1 OFFSET ?", (RENDERINGS_KEPT,))]
                for old in stale:
                    db.execute("DELETE FROM fragments WHERE rendering = ?", (old,))
                    db.execute("DELETE FROM renderings WHERE rendering = ?", (old,))
        except sqlite3.DatabaseError as exc:
            self._damaged(exc)

    def close(self) -> None:
        self._db.close()

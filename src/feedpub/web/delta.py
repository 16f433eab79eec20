"""RFC 3229 delta feeds (the ``feed`` instance manipulation): only what is new since the reader's copy.

A reader that sends ``A-IM: feed`` and an ``If-None-Match`` naming a version it holds gets
``226 IM Used`` and a feed document of the entries that are new or changed since that version:
newest first, with the full feed's metadata, never ``fh:complete`` (a reader would drop the rest).
Which entries a version held is kept in a :class:`History` every worker shares, so whichever
worker answers knows a version any of them served. The decision reads ``If-None-Match`` only:
``If-Modified-Since`` cannot name a version.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from flask import Request, Response
from werkzeug.datastructures import ResponseCacheControl
from werkzeug.http import parse_list_header

from .. import shared_db
from ..catalog.feeds import Feed, trim
from ..model import Article
from ..render.formats import Format
from ..render.site import Output, render_feed
from ..settings import Settings
from .filters import Filters
from .headers import gzip_accepted
from .store import PlainBodies, Prepared, prepare
from .views import View

log = logging.getLogger(__name__)
T = TypeVar("T")

HISTORY = "delta-history.sqlite3"
# Versions kept per feed and query. A version is only worth keeping while some reader still holds it:
# 32 covers a reader that polls hourly on a feed that changes every few minutes, at about 1 KiB a
# version (an 8-byte hash per entry). A reader further behind gets the whole feed, which is never wrong.
KEEP = 32
SEEN = 4096  # versions this process knows are recorded (each would otherwise cost a write per request)
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS versions (id INTEGER PRIMARY KEY, feed TEXT NOT NULL, query TEXT NOT NULL,"
    " etag TEXT NOT NULL, entries TEXT NOT NULL, UNIQUE (feed, query, etag))",
)
NO_STORE = ResponseCacheControl()
NO_STORE.no_store = True  # a delta is right for one reader's copy only: no cache may keep it


def _create(db: sqlite3.Connection) -> None:
    for statement in _SCHEMA:
        db.execute(statement)


def entry_version(article: Article) -> str:
    """One entry in one version: its id (the article URL) and its source digest, hashed to 8 bytes.

    An edited article has a new digest, so it counts as changed; a collision would only leave one
    entry out of one delta, at odds of 2**-64 a pair.
    """
    return hashlib.blake2b(f"{article.url}\0{article.digest}".encode(), digest_size=8).hexdigest()


class History:
    """Per (output, query): the entries of each recent version, by ETag.

    In ``directory`` (a SQLite file every worker opens); with ``None``, in memory, so each worker
    knows only the versions it served itself.
    """

    def __init__(self, directory: Path | None) -> None:
        self.path = directory / HISTORY if directory is not None else None
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._db: sqlite3.Connection | None = None
        self._seen: set[tuple[str, str, str]] = set()
        self.failed = False  # whether this process has said that the history is unusable

    def _run(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            if self._db is None or self._pid != os.getpid():  # never share a connection across a fork
                self._db, self._pid, self._seen = self._connect(), os.getpid(), set()
            db = self._db
            return shared_db.retry_busy(lambda: operation(db))

    def _connect(self) -> sqlite3.Connection:
        if self.path is None:
            db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            _create(db)
            return db
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return shared_db.connect(self.path, _create)

    def record(self, feed: str, query: str, etag: str, entries: Callable[[], Iterable[str]]) -> None:
        """Keep the version ``etag`` (its ``entries`` worked out only if it is new), and the newest KEEP."""
        key = (feed, query, etag)
        if key in self._seen:
            return
        if len(self._seen) >= SEEN:
            self._seen.clear()
        self._seen.add(key)  # also when the write fails: a broken file is reported once, not per request

        def write(db: sqlite3.Connection) -> None:
            with shared_db.transaction(db):
                added = db.execute("INSERT OR IGNORE INTO versions (feed, query, etag, entries) VALUES (?, ?, ?, ?)",
                                   (feed, query, etag, " ".join(entries()))).rowcount
                if added:
                    db.execute("DELETE FROM versions WHERE feed = ? AND query = ? AND id NOT IN (SELECT id FROM"
                               " versions WHERE feed = ? AND query = ? ORDER BY id DESC LIMIT ?)",
                               (feed, query, feed, query, KEEP))

        self._run(write)

    def entries(self, feed: str, query: str, etag: str) -> frozenset[str] | None:
        """The entry versions the version ``etag`` held, or ``None`` for a version not (or no longer) known."""
        row = self._run(lambda db: db.execute("SELECT entries FROM versions WHERE feed = ? AND query = ? AND etag = ?",
                                              (feed, query, etag)).fetchone())
        return frozenset(row[0].split()) if row is not None else None


def open_history(settings: Settings) -> History | None:
    """The history when ``delta_feeds`` is on: shared through the cache directory unless the cache is off."""
    if not settings.delta_feeds:
        return None
    return History(settings.cache_dir if settings.cache else None)


def asks_for_delta(request: Request) -> bool:
    """``A-IM`` lists the ``feed`` instance manipulation (with or without parameters)."""
    value = request.headers.get("A-IM")
    return value is not None and any(item.split(";")[0].strip().lower() == "feed"
                                     for item in parse_list_header(value))


def named_versions(request: Request) -> list[str]:
    """The versions ``If-None-Match`` names: weak or strong, plain or ``-gzip``, all name one version."""
    tags = request.if_none_match
    names = [*tags.as_set(include_weak=True)] if tags else []
    return list(dict.fromkeys(tag.removesuffix("-gzip") for tag in names))


def offer(history: History | None, view: View, name: str, found: tuple[Feed, Format] | None,
          filters: Filters | None, settings: Settings, plain: PlainBodies) -> Offer | None:
    """What a request for ``name`` needs to be answered with a delta, when deltas are on and it is a live feed."""
    if history is None or found is None or not found[1].feed:
        return None
    return Offer(history, view, name, found[1], filters if filters is not None and filters.active else None,
                 settings, plain)


class Offer:
    """What one request for a live feed needs to be answered with a delta."""

    def __init__(self, history: History, view: View, name: str, fmt: Format,
                 filters: Filters | None, settings: Settings, plain: PlainBodies) -> None:
        self.history, self.view, self.name, self.settings, self.plain = history, view, name, settings, plain
        self.fmt = fmt
        self.filters = filters
        self.query = _query(filters)
        self._base: Feed | None = None

    @property
    def base(self) -> Feed:
        """The feed as this request's full version holds it (filtered, when asked)."""
        if self._base is None:
            self._base = self.view.feed(self.name, self.filters)
        return self._base

    def answer(self, request: Request, response: Response, full: Prepared) -> Response | None:
        """The 304 or 226 for ``request``, or ``None`` for the full ``response`` as is (a 200 or its 304)."""
        response.vary.add("A-IM")  # a cache in front must never give one reader's answer to another
        try:
            self.history.record(self.name, self.query, full.etag, lambda: map(entry_version, self.base.entries))
            if not asks_for_delta(request):
                return None
            names = named_versions(request)
            if full.etag in names:  # the current version, perhaps in the other encoding: nothing new
                environ = {key: value for key, value in request.environ.items() if key != "HTTP_IF_MATCH"}
                response.make_conditional({**environ, "HTTP_IF_NONE_MATCH": response.headers["ETag"]})
                return response
            for etag in names:
                held = self.history.entries(self.name, self.query, etag)
                if held is not None:
                    return self._delta(request, full, etag, held)
        except sqlite3.Error as exc:  # a full disk or a damaged file: the whole feed is never wrong
            if not self.history.failed:
                self.history.failed = True
                log.warning("delta feeds: version history unusable (%s); sending whole feeds", exc)
        return None

    def _delta(self, request: Request, full: Prepared, since: str, held: frozenset[str]) -> Response:
        def make() -> Prepared:
            base = self.base
            fresh = tuple(a for a in base.entries if entry_version(a) not in held)
            subset = trim(base.spec, fresh, None, base.updated, prev_archive=base.prev_archive,
                          next_archive=base.next_archive, current=base.current)
            body = render_feed(replace(subset, updated=base.updated), self.fmt, self.settings, self.view.context)
            return prepare(Output(body, self.fmt.media_type, full.last_modified))

        delta = self.view.on_demand.get(("delta", self.name, self.filters, since), make)
        gzipped = gzip_accepted(request.environ.get("HTTP_ACCEPT_ENCODING"))
        body = delta.gzipped if gzipped else self.plain.get(delta)
        # The current full version's validators, so the reader's next poll names that version.
        headers: Sequence[tuple[str, str]] = full.gzip_headers if gzipped else full.plain_headers
        response = Response(body, 226, headers=[*headers, ("IM", "feed"), ("Cache-Control", NO_STORE.to_header())])
        response.vary.add("A-IM")
        return response


def _query(filters: Filters | None) -> str:
    """The filters as one canonical string: parameters a reader appends, and their order, do not count."""
    if filters is None:
        return ""
    return "&".join(f"{name}={value}" for name, value in
                    (("limit", filters.limit), ("min_quality", filters.min_quality),
                     ("type", filters.kind.value if filters.kind is not None else None)) if value is not None)

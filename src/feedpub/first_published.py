"""When each output's current bytes were first published: the time its validators carry.

An output's newest entry date does not move when an older entry is edited or a
late article joins a past month's archive. Served as ``Last-Modified`` (or as a
static file's mtime, from which nginx derives both validators), it would tell an
``If-Modified-Since`` client "304" for new bytes. So each output is dated by the
later of its newest entry and the moment its current bytes first appeared, and
a new version is always dated after the one before, at HTTP's one-second
resolution. A version never seen before gets its entry date, so fresh builds and
fresh servers stay deterministic.

``feedpub build`` keeps these times in its manifest (see :mod:`feedpub.static_tree`);
the server's workers share them through :class:`PublishedTimes`, so they agree
on one ``Last-Modified`` per version.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

from . import shared_db
from .after_fork import renew_after_fork
from .model import EPOCH, MICROSECOND

log = logging.getLogger(__name__)

FILENAME = "published.sqlite3"
SECOND = timedelta(seconds=1)
_LAST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


class Dated(NamedTuple):
    version: str
    time: datetime


class Claim(NamedTuple):
    """An output's name, the version of its bytes and its newest entry date."""

    name: str
    version: str
    updated: datetime


def next_time(previous: Dated | None, version: str, updated: datetime, now: datetime) -> datetime:
    """The time of ``version`` of an output whose newest entry is ``updated``, given what was published before."""
    if previous is None:
        return updated  # never seen: its entries date it
    if previous.version == version:
        return max(previous.time, updated)
    return max(updated, _whole(now), _after(previous.time))


def _whole(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def _after(moment: datetime) -> datetime:
    """The next whole second: what an HTTP date (whole seconds) can tell apart from ``moment``."""
    return _whole(moment) + SECOND if moment < _LAST else moment


def to_micros(moment: datetime) -> int:
    return (moment - EPOCH) // MICROSECOND


def from_micros(micros: int) -> datetime:
    return EPOCH + micros * MICROSECOND


class PublishedTimes:
    """The times of every output's current version, shared by the processes serving one cache directory.

    One row per output name holds its version, time and when the claiming process
    read the seeds. A process still serving older files (it read them before the
    row's writer did) does not overwrite a newer row: it gets a time just before
    the row's, so once it catches up every worker sends the row's time and no
    client keeps bytes that time would call current. Without a usable cache
    directory each process keeps its own times (logged once): workers then agree
    on unchanged outputs, and on changed ones to within their reload times.
    """

    def __init__(self, directory: Path, site: str = "") -> None:
        self.path = directory / FILENAME
        # One cache directory (by default the user's) may serve several sites: each dates its own outputs.
        self.site = site
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._pid = -1
        self._local: dict[str, Dated] | None = None  # only once the shared table failed
        renew_after_fork(self)

    def after_fork(self) -> None:
        self._lock = threading.Lock()

    def claim(self, claims: Sequence[Claim], seen: datetime, now: datetime | None = None) -> list[datetime]:
        """The time of each claimed version (in order); ``seen``: when this process read the seeds."""
        if not claims:
            return []  # a reload that changed no output takes no write lock
        now = now or datetime.now(UTC)
        with self._lock:
            if self._local is None:
                try:
                    return self._claim_shared(claims, to_micros(seen), now)
                except (OSError, sqlite3.Error) as exc:
                    log.warning("cannot share publication times in %s (%s): each worker keeps its own",
                                self.path, exc)
                    self._local = {}
            return [self._claim_local(claim, now) for claim in claims]

    def _claim_local(self, claim: Claim, now: datetime) -> datetime:
        assert self._local is not None
        time = next_time(self._local.get(claim.name), claim.version, claim.updated, now)
        self._local[claim.name] = Dated(claim.version, time)
        return time

    def _claim_shared(self, claims: Sequence[Claim], seen: int, now: datetime) -> list[datetime]:
        db = self._connection()

        def attempt() -> list[datetime]:
            times, rows = [], []
            with shared_db.transaction(db):
                for claim in claims:
                    key = self.site + claim.name
                    row = db.execute("SELECT version, time, seen FROM published WHERE name = ?",
                                     (key,)).fetchone()
                    previous = None if row is None else Dated(row[0], from_micros(row[1]))
                    if previous is not None and previous.version != claim.version and row[2] > seen:
                        times.append(_whole(previous.time) - SECOND)  # stale files: see the class docstring
                        continue
                    time = next_time(previous, claim.version, claim.updated, now)
                    times.append(time)
                    if previous != (claim.version, time):
                        rows.append((key, claim.version, to_micros(time), seen))
                db.executemany("INSERT OR REPLACE INTO published (name, version, time, seen) VALUES (?, ?, ?, ?)",
                               rows)
            return times

        return shared_db.retry_busy(attempt)

    def _connection(self) -> sqlite3.Connection:
        if self._db is None or self._pid != os.getpid():  # never share a connection across a fork
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = shared_db.connect(self.path, _create)
            self._pid = os.getpid()
        return self._db


def _create(db: sqlite3.Connection) -> None:
    db.execute("CREATE TABLE IF NOT EXISTS published (name TEXT PRIMARY KEY, version TEXT NOT NULL,"
               " time INTEGER NOT NULL, seen INTEGER NOT NULL) WITHOUT ROWID")

"""WebSub (W3C Recommendation) publishing: tell the hub which feed URLs changed.

The Recommendation leaves the publish request to each hub, and hubs that take
several URLs in one ping spell them differently (a repeated ``hub.url`` at
Google's hub, ``hub.url[]`` or commas at Superfeedr, which always answers 204);
Switchboard reads a single ``hub.url``. A batch in the wrong spelling would be
answered 2xx and announce one URL, so each URL gets its own POST.

Every change is first written to a ledger that every process shares (gunicorn
workers, builds): per URL, the newest version and the version the hub last
accepted; a URL whose two differ is pending. A process sends a pending ping
under a lease, so two processes never ping the same URL at once, and the lease
of a process that died runs out. A ping the hub did not take stays pending:
the next build, reload or round of the server's background thread sends it,
with the newest version. A round stops at the first sign that the hub is
unreachable and never outlasts its budget, so a dead hub cannot hold a build.
"""

from __future__ import annotations

import logging
import os
import secrets
import sqlite3
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from . import shared_db

log = logging.getLogger(__name__)
T = TypeVar("T")

LEDGER = "websub-ledger.sqlite3"
LEASE = 60.0  # seconds a process holds a URL it is pinging: far longer than one request may take
BUILD_BUDGET = 5.0  # seconds a build spends on pings at most
ROUND_BUDGET = 60.0  # seconds one round of the server's background thread spends at most
RETRY_FIRST, RETRY_MAX = 1.0, 300.0  # the background thread's backoff while pings stay pending
IDLE_POLL = 60.0  # seconds between looks for what builds or dead workers left pending

_PENDING = "announced IS NOT version"
_SCHEMA = (
    ("CREATE TABLE IF NOT EXISTS pings (url TEXT PRIMARY KEY, version TEXT NOT NULL,"
     " announced TEXT, owner TEXT, lease_until REAL)"),
    # Only pending rows are in this index, so finding them costs nothing however many feeds there are.
    f"CREATE INDEX IF NOT EXISTS pending ON pings (url) WHERE {_PENDING}",
)


def _create(db: sqlite3.Connection) -> None:
    for statement in _SCHEMA:
        db.execute(statement)


class Ledger:
    """Per feed URL: the newest version, the version announced, and who is announcing it now.

    ``directory=None`` keeps the ledger in memory: this process alone remembers it. The purge hook
    (:mod:`feedpub.purge`) keeps its own, under another ``name``.
    """

    def __init__(self, directory: Path | None, name: str = LEDGER) -> None:
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / name if directory is not None else None
        self._lock = threading.Lock()
        self._db = self._connect()

    def _connect(self) -> sqlite3.Connection:
        self._pid = os.getpid()
        self.owner = f"{self._pid}-{secrets.token_hex(4)}"  # a reused pid never inherits a lease
        if self.path is not None:
            return self._open(self.path)
        db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        _create(db)
        return db

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection:
        try:
            return shared_db.connect(path, _create)
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError):
                raise  # busy, or a directory we may not write: not a reason to delete the file
            log.warning("ledger %s is unreadable (%s); starting a new one", path, exc)
        for suffix in ("", "-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
        return shared_db.connect(path, _create)

    def _run(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            if self._pid != os.getpid():  # forked (gunicorn --preload): never share a connection
                self._db = self._connect()
            db = self._db
            return shared_db.retry_busy(lambda: operation(db))

    def note(self, versions: Mapping[str, str]) -> None:
        """Record the current version of each URL: a new one makes the URL pending."""
        def write(db: sqlite3.Connection) -> None:
            with shared_db.transaction(db):
                db.executemany("INSERT INTO pings (url, version) VALUES (?, ?)"
                               " ON CONFLICT(url) DO UPDATE SET version = excluded.version", versions.items())

        if versions:
            self._run(write)

    def lease(self, after: str = "", ttl: float = LEASE) -> tuple[str, str] | None:
        """The first pending URL after ``after`` that nobody holds, and its version, now held by this process."""
        def take(db: sqlite3.Connection) -> tuple[str, str] | None:
            now = time.time()  # wall clock: leases are compared across processes
            with shared_db.transaction(db):
                row = db.execute(f"SELECT url, version FROM pings WHERE url > ? AND {_PENDING}"
                                 " AND (lease_until IS NULL OR lease_until < ?) ORDER BY url LIMIT 1",
                                 (after, now)).fetchone()
                if row is not None:
                    db.execute("UPDATE pings SET owner = ?, lease_until = ? WHERE url = ?",
                               (self.owner, now + ttl, row[0]))
            return (row[0], row[1]) if row is not None else None

        return self._run(take)

    def announced(self, url: str, version: str) -> None:
        """The hub took the ping for ``version``; a newer version noted meanwhile stays pending."""
        self._run(lambda db: db.execute(
            "UPDATE pings SET announced = ?, owner = NULL, lease_until = NULL WHERE url = ? AND owner = ?",
            (version, url, self.owner)))

    def release(self, url: str) -> None:
        """Give up the lease on ``url``, which stays pending."""
        self._run(lambda db: db.execute("UPDATE pings SET owner = NULL, lease_until = NULL WHERE url = ? AND owner = ?",
                                        (url, self.owner)))

    def pending(self) -> int:
        """How many URLs are pending with nobody sending them (those held are the holder's to report)."""
        row = self._run(lambda db: db.execute(
            f"SELECT count(*) FROM pings WHERE {_PENDING} AND (lease_until IS NULL OR lease_until < ?)",
            (time.time(),)).fetchone())
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


def open_ledger(directory: Path, name: str = LEDGER) -> Ledger:
    """The shared ledger ``name`` in ``directory``, or one in memory when that cannot be opened."""
    try:
        return Ledger(directory, name)
    except (OSError, sqlite3.Error) as exc:  # still ping, only without sharing the work or the memory
        log.warning("no ledger %s in %s (%s): what is pending is known to this process only", name, directory, exc)
        return Ledger(None)


@dataclass
class Round:
    """What one pass over the pending pings did."""

    sent: int = 0
    pending: int = 0
    problem: str | None = None  # the hub's last failure, when it had one
    running: int = 0  # senders still waiting on the hub when the budget ran out
    kept: bool = True  # whether what is pending is in the shared ledger, for the next run


class _Progress:
    """The state the senders of one round share."""

    def __init__(self, budget: float) -> None:
        self.deadline = time.monotonic() + budget
        self.lock = threading.Lock()
        self.cursor = ""  # each URL is tried once per round, even when it failed
        self.sent = 0
        self.problem: str | None = None
        self.unreachable = threading.Event()

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def over(self) -> bool:
        return self.unreachable.is_set() or self.left() <= 0

    def failed(self, problem: str, unreachable: bool = False) -> None:
        with self.lock:
            self.problem = problem
        if unreachable:
            self.unreachable.set()


class Publisher:
    """Sends ``hub.mode=publish`` pings for what the ledger holds pending.

    The leases, retries, budgets and background thread serve the purge hook too
    (:class:`feedpub.purge.Purger`), which only sends something else.
    """

    what = "WebSub hub"  # in log lines

    def __init__(self, hub: str, ledger: Ledger, *, timeout: float = 4.0, attempts: int = 3,
                 backoff: float = 0.25, senders: int = 4) -> None:
        self.hub = hub
        self.ledger = ledger
        self.timeout = timeout  # per request; a round's budget caps it too
        self.attempts = attempts  # per URL and round, for answers that ask to try again (5xx, 429)
        self.backoff = backoff
        self.senders = senders  # requests in flight at once: a build's budget is short
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._wake = threading.Event()

    def changed(self, versions: Mapping[str, str]) -> None:
        """Note new versions and have the background thread send everything pending (for the server)."""
        self.ledger.note(versions)
        self._ensure_thread()
        self._wake.set()

    def send_pending(self, budget: float) -> Round:
        """Send pending pings until none is left, the hub is unreachable or ``budget`` seconds are over."""
        progress = _Progress(budget)
        threads = [threading.Thread(target=self._drain, args=(progress,), name="feedpub-send", daemon=True)
                   for _ in range(self.senders)]
        for thread in threads:
            thread.start()
        for thread in threads:  # a request's timeout ends with the budget; DNS may not, hence the daemon threads
            thread.join(max(progress.left(), 0.0) + 1.0)
        running = sum(thread.is_alive() for thread in threads)
        return Round(progress.sent, self.ledger.pending(), progress.problem, running)

    def _drain(self, progress: _Progress) -> None:
        try:
            while not progress.over() and self._send_next(progress):
                pass
        except Exception as exc:  # a sender thread must not die silently; what it held stays pending
            log.exception("%s %s: sending failed", self.what, self.hub)
            progress.failed(f"{type(exc).__name__}: {exc}", unreachable=True)

    def _send_next(self, progress: _Progress) -> bool:
        """Lease the next pending URL and ping for it; False when nothing is left to lease."""
        with progress.lock:
            held = self.ledger.lease(progress.cursor)
            if held is None:
                return False
            progress.cursor = held[0]
        url, version = held
        body = urllib.parse.urlencode({"hub.mode": "publish", "hub.url": url}).encode()
        if self._post(body, "application/x-www-form-urlencoded", url, progress):
            self.ledger.announced(url, version)
            with progress.lock:
                progress.sent += 1
        else:
            self.ledger.release(url)
        return True

    def _post(self, body: bytes, content_type: str, about: str, progress: _Progress) -> bool:
        """POST ``body``; retry while the receiver asks for it and time is left; False leaves it pending."""
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(min(self.backoff * 2 ** (attempt - 1), max(progress.left(), 0.0)))
            if progress.over():
                return False
            request = urllib.request.Request(self.hub, data=body, method="POST", headers={"Content-Type": content_type})
            try:
                with urllib.request.urlopen(request, timeout=max(min(self.timeout, progress.left()), 0.1)):
                    return True  # urllib raises for anything but 2xx
            except urllib.error.HTTPError as exc:
                progress.failed(f"HTTP {exc.code} for {about}")
                if exc.code < 500 and exc.code != 429:  # refused: asking again now would not help
                    return False
            except (urllib.error.URLError, OSError) as exc:  # not answering at all: spare the other URLs
                reason = "out of time" if progress.left() <= 0 else f"unreachable: {getattr(exc, 'reason', exc)}"
                progress.failed(reason, unreachable=True)
                return False
        return False

    def _ensure_thread(self) -> None:
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():  # again after a fork
                self._thread = threading.Thread(target=self._run, name=f"feedpub-{self.what}", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        delay = 0.0  # the backoff while pings stay pending; 0 once none is
        while True:
            self._wake.wait(delay or IDLE_POLL)  # woken at once by a reload
            self._wake.clear()
            try:
                outcome = self.send_pending(ROUND_BUDGET)
            except Exception as exc:  # the ledger is unusable for now: try again later
                log.exception("%s %s: sending failed", self.what, self.hub)
                outcome = Round(pending=1, problem=f"{type(exc).__name__}: {exc}")
            if not outcome.pending:
                delay = 0.0
                continue
            delay = min(delay * 2, RETRY_MAX) if delay else RETRY_FIRST
            if outcome.problem:
                log.warning("%s %s: %s; %d pending, trying again in %.0f s",
                            self.what, self.hub, outcome.problem, outcome.pending, delay)


def announce(hub: str, directory: Path, versions: Mapping[str, str], budget: float = BUILD_BUDGET, *,
             sender: type[Publisher] = Publisher, ledger_name: str = LEDGER) -> Round:
    """Note ``versions``, then send every pending ping (this build's and any left before) within ``budget``.

    ``sender`` and ``ledger_name``: another kind of announcement, such as the purge hook's.
    """
    ledger = open_ledger(directory, ledger_name)
    try:
        ledger.note(versions)
        outcome = sender(hub, ledger).send_pending(budget)
    except sqlite3.Error as exc:  # e.g. a full disk: the feeds are written, only their pings are at risk
        return Round(pending=len(versions), problem=f"ledger: {exc}", kept=False)
    outcome.kept = ledger.path is not None
    if not outcome.running:  # a sender still waiting on the hub keeps using it until the process ends
        ledger.close()
    return outcome

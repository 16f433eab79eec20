"""Open SQLite files that several processes create and use at once.

gunicorn workers start together and open the same cache files in the same
millisecond. Switching a new file to WAL and creating its tables need a write
lock, and SQLite may answer "database is locked" there without waiting for its
busy timeout. Such an answer means "try again", never "the file is broken":
treating it as corruption would delete a file another process is using.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

WAIT = 30.0  # seconds; the same as the per-statement busy timeout


def is_busy(exc: sqlite3.Error) -> bool:
    """True for a lock held by another connection, as opposed to a damaged or foreign file."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    message = str(exc).lower()
    return "locked" in message or "busy" in message


def retry_busy(operation: Callable[[], T], wait: float = WAIT) -> T:
    """Run ``operation`` again, with backoff, for as long as the database is only busy."""
    deadline = time.monotonic() + wait
    delay = 0.005
    while True:
        try:
            return operation()
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.25)


def connect(path: Path, setup: Callable[[sqlite3.Connection], None] = lambda db: None,
            wait: float = WAIT, page_size: int | None = None) -> sqlite3.Connection:
    """A WAL-mode autocommit connection on which ``setup`` ran, retried while another process holds the lock.

    ``page_size`` is that of a file made new here (an existing file keeps its own).
    """

    def attempt() -> sqlite3.Connection:
        db = sqlite3.connect(path, timeout=wait, isolation_level=None, check_same_thread=False)
        try:
            if page_size is not None:
                db.execute(f"PRAGMA page_size={int(page_size)}")  # before the first write, or it does nothing
            if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                db.execute("PRAGMA journal_mode=WAL")  # persistent: only the file's creator pays for it
            db.execute("PRAGMA synchronous=NORMAL")
            setup(db)
        except BaseException:
            db.close()
            raise
        return db

    return retry_busy(attempt, wait)


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction taken up front (so it waits for the lock), rolled back on any error."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")

"""WebSub (W3C Recommendation) publishing: tell the hub which feed URLs changed.

Pings go out from a background thread, one per changed feed URL, retried with
exponential backoff, so a slow or broken hub never holds up a request or a
reload. Several processes (gunicorn workers, a build) notice the same change;
a small SQLite ledger of the last version announced per URL lets exactly one
of them send the ping.
"""

from __future__ import annotations

import logging
import os
import queue
import sqlite3
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from . import shared_db

log = logging.getLogger(__name__)

LEDGER = "websub-ledger.sqlite3"


class Ledger:
    """The last version of each feed URL announced to the hub, shared by every process."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / LEDGER
        self._lock = threading.Lock()
        self._db = self._connect()

    def _connect(self) -> sqlite3.Connection:
        self._pid = os.getpid()
        return shared_db.connect(self.path, lambda db: db.execute(
            "CREATE TABLE IF NOT EXISTS announced (url TEXT PRIMARY KEY, version TEXT NOT NULL)"))

    def claim(self, url: str, version: str) -> bool:
        """True for exactly one caller per new (url, version)."""
        with self._lock:
            if self._pid != os.getpid():  # forked (gunicorn --preload): never share a connection
                self._db = self._connect()
            cursor = shared_db.retry_busy(lambda: self._db.execute(
                "INSERT INTO announced (url, version) VALUES (?, ?) ON CONFLICT(url) DO UPDATE"
                " SET version = excluded.version WHERE announced.version != excluded.version",
                (url, version),
            ))
            return cursor.rowcount == 1

    def close(self) -> None:
        self._db.close()


class Publisher:
    """Sends ``hub.mode=publish`` pings in the background."""

    def __init__(self, hub: str, ledger: Ledger | None = None, *, attempts: int = 6, backoff: float = 0.5,
                 timeout: float = 10.0) -> None:
        self.hub = hub
        self.ledger = ledger
        self.attempts = attempts
        self.backoff = backoff
        self.timeout = timeout
        self.sent = 0
        self.failed = 0
        self._queue: queue.Queue[str] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def changed(self, versions: Mapping[str, str]) -> list[str]:
        """Queue a ping for each feed URL whose new version nobody has announced yet."""
        urls = [url for url, version in versions.items() if self.ledger is None or self.ledger.claim(url, version)]
        if urls:
            self._ensure_thread()
            for url in urls:
                self._queue.put(url)
        return urls

    def flush(self, timeout: float = 60.0) -> bool:
        """Wait until every queued ping was sent or given up (for the CLI); True when all are done."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.05)
        return not self._queue.unfinished_tasks

    def _ensure_thread(self) -> None:
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="feedpub-websub", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            url = self._queue.get()
            try:
                self._send(url)
            finally:
                self._queue.task_done()

    def _send(self, url: str) -> None:
        body = urllib.parse.urlencode({"hub.mode": "publish", "hub.url": url}).encode()
        delay = self.backoff
        for attempt in range(1, self.attempts + 1):
            request = urllib.request.Request(self.hub, data=body, method="POST",
                                             headers={"Content-Type": "application/x-www-form-urlencoded"})
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    if 200 <= response.status < 300:
                        self.sent += 1
                        return
            except (urllib.error.URLError, OSError) as exc:
                log.warning("WebSub ping for %s failed (attempt %d of %d): %s", url, attempt, self.attempts, exc)
            if attempt < self.attempts:
                time.sleep(delay)
                delay *= 2
        self.failed += 1
        log.error("WebSub hub %s never accepted the ping for %s", self.hub, url)

"""The server's feeds: loaded once, swapped whole on reload, compressed once per change.

Requests read one immutable :class:`Snapshot`; a reload builds the next one off
to the side (re-parsing only changed files, re-rendering only changed feeds)
and swaps the reference, so a request sees the old or the new site, never a mix.
Each output is compressed as it is rendered and kept only in that form
(:mod:`feedpub.web.store`). A watcher thread per process reloads when the file
system reports a change, looking only at the files it names.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from watchdog.events import (
    EVENT_TYPE_CLOSED,
    EVENT_TYPE_CREATED,
    EVENT_TYPE_DELETED,
    EVENT_TYPE_MODIFIED,
    EVENT_TYPE_MOVED,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from ..first_published import Claim, PublishedTimes
from ..ingest.loader import CorpusLoader, SeedsUnavailable, where
from ..model import printable
from ..render.site import Output, Site, render_site
from ..settings import Settings
from ..websub import Publisher, open_ledger
from .store import PlainBodies, Prepared, prepare, redate

log = logging.getLogger("feedpub.server")
ENTRY_HTML_CACHE = 4096  # articles whose entry HTML a render keeps: the newest ones recur across feeds


@dataclass(frozen=True)
class Snapshot:
    site: Site
    prepared: dict[str, Prepared]
    loaded_at: datetime
    read_at: datetime  # when its files were read: dates its new outputs (see FeedState.dated)
    filtered: dict[tuple[str, object], Prepared] = field(default_factory=dict)  # made on demand, per query


def _publisher(settings: Settings) -> Publisher | None:
    return Publisher(settings.websub_hub, open_ledger(settings.cache_dir)) if settings.websub_hub else None


def _unchanged(before: Prepared | None, new: Prepared | None) -> Prepared:
    """``before`` when ``new`` has the same bytes (or was not rendered): its object and date stay, nothing is announced."""
    if new is None or (before is not None and before.etag == new.etag and before.mimetype == new.mimetype):
        assert before is not None  # not rendered means taken from the previous snapshot
        return before
    return new


class FeedState:
    """What ``app.extensions["feedpub"]`` holds."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loader = CorpusLoader(settings.seeds_dir, settings.max_file_bytes, keep_last_good=True,
                                   cache_dir=settings.cache_dir if settings.cache else None)
        self.healthy = True  # the seeds directory was there at the last look
        self.error: str | None = None
        self.failed: str | None = None  # why the last reload failed, if it did: the next one scans everything
        self._failed_stamp: dict[str, tuple[int, int]] | None = None  # the files as that reload saw them
        self._retry_at = 0.0
        self._retry_delay = RETRY_FIRST
        self._lock = threading.Lock()
        self._starting = threading.Lock()
        # A lock held by another thread at fork time would stay held forever in the child.
        os.register_at_fork(after_in_child=self._after_fork)
        self._watcher: threading.Thread | None = None
        self._watcher_pid: int | None = None
        self.publisher = _publisher(settings)
        self.plain = PlainBodies(settings.identity_cache_mb << 20)
        self.published = PublishedTimes(settings.cache_dir)
        self._stamp = self.loader.scan()
        self.snapshot = self._build(None, self._stamp)

    def _build(self, previous: Snapshot | None, stamps: dict[str, tuple[int, int]]) -> Snapshot:
        read_at = datetime.now(timezone.utc)
        corpus = self.loader.load(stamps=stamps)
        # Archives are rendered on first request: most are never asked for, and they would
        # otherwise triple the memory of every worker.
        fresh: dict[str, Prepared] = {}

        def store(name: str, output: Output) -> Output:
            fresh[name] = prepare(output)
            return Output(b"", output.mimetype, output.last_modified, kept=True)  # held compressed, not plain

        site = render_site(corpus, self.settings, previous.site if previous else None,
                           render_archives=False, store=store, html_cache_size=ENTRY_HTML_CACHE)
        reported = set(previous.site.corpus.problems) if previous else set()
        for problem in site.corpus.problems:  # the site's: with any article no renderer could take
            if problem not in reported:
                log.warning("%s", problem)
        old = previous.prepared if previous else {}
        prepared = {name: _unchanged(old.get(name), fresh.get(name)) for name in site.outputs}
        prepared.update(self.dated({name: new for name, new in prepared.items() if new is not old.get(name)},
                                   read_at))
        return Snapshot(site, prepared, datetime.now(timezone.utc), read_at)

    def dated(self, outputs: Mapping[str, Prepared], read_at: datetime) -> dict[str, Prepared]:
        """``outputs`` (new bytes, dated by their newest entry) dated by when their bytes were first published.

        The time is claimed in a table every worker shares, so all send the same
        ``Last-Modified`` for one version (see :mod:`feedpub.first_published`).
        """
        times = self.published.claim([Claim(name, new.etag, new.last_modified) for name, new in outputs.items()],
                                     read_at)
        return {name: redate(new, time) for (name, new), time in zip(outputs.items(), times)}

    def reload(self, paths: Collection[str] | None = None) -> bool:
        """Look for changed files and swap in a new snapshot if any; return whether it changed.

        ``paths``: the only files that may have changed (from file-system events);
        None looks at every file.
        """
        with self._lock:
            if self.failed is not None:
                paths = None  # the files the failed round was told about are not named again
            try:
                # One pass: the same stamps feed the load.
                stamp = self.loader.scan() if paths is None else self.loader.rescan(self._stamp, paths)
                if (stamp == self._stamp and self.failed is None) or self._waiting(stamp):
                    self._set_health(True, None)
                    return False
                snapshot = self._build(self.snapshot, stamp)
            except (SeedsUnavailable, OSError) as exc:
                self._set_health(False, printable(str(exc)))
                return False
            except Exception as exc:  # a bug: keep serving, say so in /healthz, and try again
                self._failure(exc, stamp)
                return False
            self._stamp = stamp
            self.failed, self._failed_stamp, self._retry_delay = None, None, RETRY_FIRST
            self._set_health(True, None)
            before = self.snapshot.prepared
            changed_names = [name for name, prepared in snapshot.prepared.items() if before.get(name) is not prepared]
            changed = bool(changed_names) or before.keys() != snapshot.prepared.keys()
            self.snapshot = snapshot
            if self.publisher is not None:  # also sends what earlier loads, builds or workers left pending
                self.publisher.changed(snapshot.site.feed_urls(changed_names, lambda n: snapshot.prepared[n].etag))
            if changed:
                log.info("reloaded: %d articles, %d feeds re-rendered", len(snapshot.site.corpus.articles),
                         snapshot.site.rendered)
            return changed

    def _waiting(self, stamp: dict[str, tuple[int, int]]) -> bool:
        """After a failed reload, nothing changed since and it is not yet time to try the same again."""
        return stamp == self._failed_stamp and time.monotonic() < self._retry_at

    def _failure(self, exc: Exception, stamp: dict[str, tuple[int, int]]) -> None:
        self.failed, self._failed_stamp = type(exc).__name__, stamp
        # Any change is tried at once; the same files again only after a delay that doubles.
        self._retry_at = time.monotonic() + self._retry_delay
        self._retry_delay = min(self._retry_delay * 2, FULL_SCAN_EVERY)
        log.error("reload failed (%s at %s); still serving the previous feeds, trying again", self.failed, where(exc))

    def _set_health(self, healthy: bool, error: str | None) -> None:
        if healthy != self.healthy:
            (log.info if healthy else log.error)("seeds %s", "available again" if healthy else f"unavailable: {error}")
        self.healthy, self.error = healthy, error

    def health(self) -> tuple[str, dict[str, object]]:
        """``ok``; ``degraded`` while a file is rejected (or kept at its last good version) or the
        last reload failed; ``unhealthy`` without a seeds directory, looked for now, not at the last reload."""
        corpus = self.snapshot.site.corpus
        problems = sorted(corpus.problems, key=lambda p: p.severity != "error")  # errors first
        details: dict[str, object] = {
            "rejected": corpus.rejected,
            "first_problems": [printable(str(p)) for p in problems[:HEALTH_PROBLEMS]],
        }
        if not self.healthy or not self.loader.available():
            where = printable(str(self.settings.seeds_dir))
            details["error"] = self.error or f"seeds directory {where} is missing or unreadable"
            return "unhealthy", details
        if self.failed is not None:
            details["error"] = f"the last reload failed ({self.failed}); serving the previous feeds"
        failing = self.failed is not None or (problems and problems[0].severity == "error")
        return ("degraded" if failing else "ok"), details

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._starting = threading.Lock()
        self._watcher = None

    def ensure_watcher(self) -> None:
        """Start the reload thread in this process (after a fork, again in each worker).

        The snapshot may be older than this process's first request (built before a
        fork, or at worker boot long ago), so the first request waits for one full
        scan, taken after the file-system watch starts so no change falls between.
        """
        pid = os.getpid()
        if self._watcher_pid == pid and self._watcher is not None and self._watcher.is_alive():
            return
        with self._starting:
            if self._watcher_pid == pid and self._watcher is not None and self._watcher.is_alive():
                return
            events = _Changed()
            observer = _observe(self.settings.seeds_dir, events)
            try:
                self.reload()
            except Exception:  # the thread's rounds try again
                log.exception("reload failed; still serving the previous feeds")
            if self.publisher is not None:
                self.publisher.changed({})  # pings a build or another process left pending are due now
            self._watcher_pid = pid
            self._watcher = threading.Thread(target=self._watch, args=(events, observer),
                                             name="feedpub-reload", daemon=True)
            self._watcher.start()

    def _watch(self, events: _Changed, observer: BaseObserver | None) -> None:
        """Reload as soon as the file system reports a change, and scan fully now and then anyway.

        A full scan stats every file and holds the GIL for about 0.5 s per 100,000
        articles, so it is not done on every tick; inotify events (through
        watchdog) name the files worth a look, and a reload stats only those.
        Without events (no inotify, NFS, or the seeds directory gone), the
        watcher falls back to a full scan every tick.
        """
        root = self.settings.seeds_dir
        last_full = time.monotonic()  # ensure_watcher scanned just now
        watched = _identity(root)
        while True:
            listening = observer is not None and observer.is_alive()
            if listening and events.wait(self.settings.reload_interval):
                time.sleep(SETTLE)  # one save is often several events (create, write, close, rename)
            paths = events.take()
            now = time.monotonic()
            # A watch follows the directory it was given: moved or deleted, no event says so here.
            moved = _identity(root) != watched
            retry = self.failed is not None and now >= self._retry_at
            full = (not listening or moved or paths is None or not self.healthy or retry
                    or now - last_full >= FULL_SCAN_EVERY)
            if not full and not paths:
                continue
            if full:
                last_full = now
            try:
                self.reload(None if full else paths)
            except Exception:  # never let the watcher die; the next round tries again
                log.exception("reload failed; still serving the previous feeds")
            if observer is not None and (moved or not self.healthy):
                observer.stop()  # its watch died with the directory, or watches one elsewhere
                observer = None
            if self.healthy and observer is None:
                observer, watched = _observe(root, events), _identity(root)
                last_full = -FULL_SCAN_EVERY  # changes made before the watch began: the next round scans
            if observer is None:
                time.sleep(self.settings.reload_interval)


FULL_SCAN_EVERY = 30.0  # seconds between full scans while the file system reports nothing
HEALTH_PROBLEMS = 5  # problem lines /healthz shows
RETRY_FIRST = 1.0  # seconds before a failed reload is tried again on the same files (then 2, 4... up to 30)

SETTLE = 0.05  # seconds to let a burst of events for one save arrive before reloading
_CHANGES = {EVENT_TYPE_CREATED, EVENT_TYPE_DELETED, EVENT_TYPE_MODIFIED, EVENT_TYPE_MOVED, EVENT_TYPE_CLOSED}


class _Changed(FileSystemEventHandler):
    """The files named by events since the last :meth:`take`; a directory event asks for a full scan."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flag = threading.Event()
        self._paths: set[str] = set()
        self._everything = False

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in _CHANGES:  # not the opens and reads of our own loads
            return
        with self._lock:
            if event.is_directory:
                if event.event_type != EVENT_TYPE_MODIFIED:  # a directory's mtime changes with every file in it
                    self._everything = True
            else:
                for path in (event.src_path, getattr(event, "dest_path", "")):
                    if path:
                        self._paths.add(os.fsdecode(path))
            self._flag.set()

    def wait(self, timeout: float) -> bool:
        return self._flag.wait(timeout)

    def take(self) -> set[str] | None:
        """The changed files (None: look at everything), and start collecting afresh."""
        with self._lock:
            paths, everything = self._paths, self._everything
            self._paths, self._everything = set(), False
            self._flag.clear()
        return None if everything else paths


def _observe(root: Path, handler: _Changed) -> BaseObserver | None:
    try:
        observer = Observer()
        observer.schedule(handler, str(root), recursive=True)
        observer.daemon = True
        observer.start()
    except (OSError, RuntimeError) as exc:
        log.warning("no file system events for %s (%s): scanning every %s s", root, exc, "reload interval")
        return None
    return observer


def _identity(root: Path) -> tuple[int, int] | None:
    """Which directory is at ``root`` now (None: none is)."""
    try:
        info = os.stat(root)
    except OSError:
        return None
    return (info.st_dev, info.st_ino)

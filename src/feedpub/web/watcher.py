"""The reload thread of a server process: file-system events name the files to look at.

:class:`~feedpub.web.state.FeedState` starts it (:func:`start`) in each process
and does the reloading; this module decides when, and which files to name.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

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

from .heap import FrozenHeap

if TYPE_CHECKING:
    from .state import FeedState

log = logging.getLogger("feedpub.server")
FULL_SCAN_EVERY = 30.0  # seconds between full scans while the file system reports nothing
SETTLE = 0.05  # seconds to let a burst of events for one save arrive before reloading
_CHANGES = {EVENT_TYPE_CREATED, EVENT_TYPE_DELETED, EVENT_TYPE_MODIFIED, EVENT_TYPE_MOVED, EVENT_TYPE_CLOSED}
HEAP = FrozenHeap()  # the GC is per process, and so is the reload thread that builds


def start(state: FeedState) -> threading.Thread:
    """Start the thread; if this process builds, first reload once (after the watch began: no change falls between).

    With a shared store a process that does not build serves the published version
    at once, and its thread waits to take over should the builder die; a process
    that takes over without the corpus in memory loads it in the thread.
    """
    observer = None
    events = _Changed()
    # A process that has the files' stamps looks for changes before its first answer (cheap);
    # one that must load everything first (a new builder) serves the published version meanwhile.
    if state.has_stamps() and state.may_build():
        observer = _observe(state.settings.seeds_dir, events)
        try:
            state.reload()
        except Exception:  # the thread's rounds try again
            log.exception("reload failed; still serving the previous feeds")
        if state.publisher is not None:
            state.publisher.changed({})  # pings a build or another process left pending are due now
    thread = threading.Thread(target=_watch, args=(state, events, observer), name="feedpub-reload", daemon=True)
    thread.start()
    return thread


def _watch(state: FeedState, events: _Changed, observer: BaseObserver | None) -> None:
    """Reload as soon as the file system reports a change, and scan fully now and then anyway.

    A full scan stats every file and holds the GIL meanwhile (reload rows of
    benchmarks/RESULTS.md), so it is not done on every tick; inotify events (through
    watchdog) name the files worth a look, and a reload stats only those.
    Without events (no inotify, NFS, or the seeds directory gone), the
    watcher falls back to a full scan every tick.
    """
    root = state.settings.seeds_dir
    last_full = time.monotonic()  # start() scanned just now
    watched = _identity(root)
    building = observer is not None  # start() found this process building
    settled = None
    while True:
        if not building:
            if not state.may_build():  # another process builds: be ready to take over
                time.sleep(state.settings.reload_interval)
                continue
            building = True
            if state.publisher is not None:
                state.publisher.changed({})  # pings the builder before left pending are due now
        if state.site is not settled:  # what the last load and render left alive stays until the next
            settled = state.site
            _settle(state)
        listening = observer is not None and observer.is_alive()
        if listening and events.wait(state.settings.reload_interval):
            time.sleep(SETTLE)  # one save is often several events (create, write, close, rename)
        paths = events.take()
        now = time.monotonic()
        # A watch follows the directory it was given: moved or deleted, no event says so here.
        moved = _identity(root) != watched
        retry = state.retry_due(now)
        full = (not listening or moved or paths is None or not state.healthy or retry
                or now - last_full >= FULL_SCAN_EVERY)
        if not full and not paths:
            continue
        if full:
            last_full = now
        try:
            state.reload(None if full else paths)
        except Exception:  # never let the watcher die; the next round tries again
            log.exception("reload failed; still serving the previous feeds")
        if observer is not None and (moved or not state.healthy):
            observer.stop()  # its watch died with the directory, or watches one elsewhere
            observer = None
        if state.healthy and observer is None:
            observer, watched = _observe(root, events), _identity(root)
            last_full = -FULL_SCAN_EVERY  # changes made before the watch began: the next round scans
        if observer is None:
            time.sleep(state.settings.reload_interval)


def _settle(state: FeedState) -> None:
    site = state.site
    HEAP.settle(len(site.corpus.articles) if site is not None else 0)


class _Changed(FileSystemEventHandler):
    """The files named by events since the last :meth:`take`; a directory event asks for a full scan."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flag = threading.Event()
        self._paths: set[str] = set()
        self._everything = False
        self._real, self._named = "", ""  # events name paths under the first; the loader knows the second

    def watching(self, real: str, named: str) -> None:
        """Events will come from ``real``, the directory the seeds path ``named`` leads to (a link, say)."""
        with self._lock:
            self._real, self._named = real.rstrip(os.sep) + os.sep, named.rstrip(os.sep) + os.sep

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
                        self._paths.add(self._as_named(os.fsdecode(path)))
            self._flag.set()

    def _as_named(self, path: str) -> str:
        real = self._real
        return self._named + path[len(real):] if real and path.startswith(real) else path

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
    # Watched where it leads: through a link, inotify would not see what is made in new subdirectories.
    real = os.path.realpath(root)
    handler.watching(real, str(root))
    try:
        observer = Observer()
        observer.schedule(handler, real, recursive=True)
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

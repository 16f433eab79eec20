"""The server's feeds: built by one process, served by all, swapped whole on reload.

With ``one_builder`` (the default) one serving process at a time holds the
builder lease (:mod:`feedpub.web.builder_lease`): it loads the corpus, renders
what changed and publishes each version to the shared store
(:mod:`feedpub.web.store_builder`); every process, itself included, serves the
current version from there (:mod:`feedpub.web.views`), so a change is parsed and
rendered once however many workers there are, and a worker holds no corpus.
Without it (or without a usable cache directory) each process renders its own
:class:`Snapshot`. Either way a reload builds the next version off to the side
(re-parsing only changed files, re-rendering only changed feeds), so a request
sees the old or the new site, never a mix. A watcher thread per process
(:mod:`feedpub.web.watcher`) reloads, or waits for the lease, in the background.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Collection, Mapping
from datetime import UTC, datetime

from ..after_fork import renew_after_fork
from ..first_published import Claim, PublishedTimes
from ..ingest.loader import CorpusLoader, SeedsUnavailable, where
from ..model import printable
from ..purge import for_server
from ..render.site import Output, Site, render_site, rendering_key
from ..settings import Settings
from ..websub import Publisher, open_ledger
from . import watcher
from .builder_lease import BuilderLease
from .headers import purge_items
from .shared_store import SharedStore
from .snapshot import Snapshot, site_status, unchanged
from .store import PlainBodies, Prepared, prepare, redate
from .store_builder import StoreBuilder
from .views import ENTRY_HTML_CACHE, LocalView, Reader, View
from .watcher import FULL_SCAN_EVERY

log = logging.getLogger("feedpub.server")


def _publisher(settings: Settings) -> Publisher | None:
    return Publisher(settings.websub_hub, open_ledger(settings.cache_dir)) if settings.websub_hub else None


class FeedState:
    """What ``app.extensions["feedpub"]`` holds."""

    def __init__(self, settings: Settings, first_build: bool = True) -> None:
        """``first_build``: with a shared store and nothing published yet, build the first version now.
        Without it (a server, whose requests start the reload thread) that thread builds it, so no
        worker spends its boot loading (gunicorn would time it out) and requests get 503 meanwhile."""
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
        renew_after_fork(self)  # a forked child gets fresh locks and no watcher
        self._watcher: threading.Thread | None = None
        self._watcher_pid: int | None = None
        self.publisher = _publisher(settings)
        self.purger = for_server(settings)
        self.plain = PlainBodies(settings.identity_cache_mb << 20)
        site = f"{os.path.realpath(settings.seeds_dir)} {settings.feeds_url}"
        self.published = PublishedTimes(settings.cache_dir, site=site)
        self.site: Site | None = None  # the last render of this process, without its bytes
        self.snapshot: Snapshot | None = None  # this process's own version, without a shared store
        self._stamp: dict[str, tuple[int, int]] = {}
        self.lease: BuilderLease | None = None
        if settings.one_builder:
            # One store and builder per site and rendering: workers started with other output settings do not mix.
            prefix = hashlib.blake2b(site.encode() + rendering_key(settings), digest_size=8).hexdigest()
            store = SharedStore(settings.cache_dir, prefix)
            self.lease, self.builder = BuilderLease(settings.cache_dir, prefix), StoreBuilder(store, prefix, settings)
            self.reader = Reader(store, settings, settings.identity_cache_mb << 20)
            try:
                published = store.current() is not None
            except (OSError, sqlite3.Error) as exc:
                log.warning("cannot share one builder through %s (%s): each process builds for itself",
                            store.path, exc)
                self.lease = None
            else:
                if first_build and not published and self.lease.try_take():
                    try:
                        self.reload()
                    finally:
                        self.lease.release()  # taken again after any fork, by a thread (watcher.start)
                return
        self._stamp = self.loader.scan()
        self.snapshot = self._build(None, self._stamp)

    def view(self) -> View | None:
        """The version a request sees (None: the builder has not published one yet)."""
        if self.lease is None:
            assert self.snapshot is not None
            return LocalView(self.snapshot, self, self.snapshot.status)
        return self.reader.view()

    def first_view(self, wait: float) -> View | None:
        """The first version, waited for up to ``wait`` seconds (its builder is at work: a first start)."""
        deadline = time.monotonic() + wait
        while (view := self.view()) is None and time.monotonic() < deadline:
            time.sleep(FIRST_POLL)
        return view

    def may_build(self) -> bool:
        """Whether this process builds (taking the lease if it is free); without a shared store, always."""
        lease = self.lease
        if lease is None or lease.held:
            return True
        if not lease.try_take():
            return False
        if self.builder.take_over():
            self._stamp = {}  # look at every file
        self.reader.forget()
        log.info("building for every worker (pid %d)", os.getpid())
        return True

    def has_stamps(self) -> bool:
        """Whether this process knows its files as they were at its last load (a reload is then a quick look)."""
        return bool(self._stamp)

    def _build(self, previous: Snapshot | None, stamps: dict[str, tuple[int, int]]) -> Snapshot:
        read_at = datetime.now(UTC)
        corpus = self.loader.load(stamps=stamps)
        # Archives are rendered on first request: most are never asked for, and they would
        # otherwise triple the memory of every worker.
        fresh: dict[str, Prepared] = {}

        def store(name: str, output: Output) -> Output:
            fresh[name] = prepare(output)
            return Output(None, output.mimetype, output.last_modified)  # held compressed, not plain

        site = render_site(corpus, self.settings, previous.site if previous else None, render_archives=False,
                           store=store, html_cache_size=ENTRY_HTML_CACHE, earlier=self.site)
        self._report(site)
        old = previous.prepared if previous else {}
        prepared = {name: unchanged(old.get(name), fresh.get(name)) for name in site.outputs}
        prepared.update(self.dated({name: new for name, new in prepared.items() if new is not old.get(name)},
                                   read_at))
        return Snapshot(site, prepared, datetime.now(UTC), read_at)

    def _publish(self, stamps: dict[str, tuple[int, int]]) -> list[str]:
        """Render what changed and publish it as the shared store's next version; the names whose bytes changed."""
        read_at = datetime.now(UTC)
        corpus = self.loader.load(stamps=stamps)
        try:  # archives too: the store keeps them on disk, and a serving process cannot render them
            site = render_site(corpus, self.settings, self.builder, store=self.builder.keep, stored=self.builder.stored,
                               earlier=self.site)
            self._report(site)
            status = {**site_status(site, datetime.now(UTC)), "failed": None, "builder": os.getpid(),
                      "rendered": site.rendered}
            changed = self.builder.publish(site, status, lambda claims: self.published.claim(claims, read_at))
        except BaseException:  # the bodies it stored meanwhile are swept with the next version
            self.builder.abandon()
            raise
        self.site = dataclasses.replace(site, context=None)  # its entry fragments are the render's alone
        self.reader.forget()  # its own commits do not change what SQLite tells this connection
        return changed

    def _report(self, site: Site) -> None:
        """Log the problems this version has that the last did not (an article no renderer took among them)."""
        reported = set(self.site.corpus.problems) if self.site else set()
        for problem in site.corpus.problems:
            if problem not in reported:
                log.warning("%s", problem)
        self.site = site

    def dated(self, outputs: Mapping[str, Prepared], read_at: datetime) -> dict[str, Prepared]:
        """``outputs`` (new bytes, dated by their newest entry) dated by when their bytes were first published.

        The time is claimed in a table every worker shares, so all send the same
        ``Last-Modified`` for one version (see :mod:`feedpub.first_published`).
        """
        times = self.published.claim([Claim(name, new.etag, new.last_modified) for name, new in outputs.items()],
                                     read_at)
        return {name: redate(new, time) for (name, new), time in zip(outputs.items(), times, strict=True)}

    def reload(self, paths: Collection[str] | None = None) -> bool:
        """Look for changed files and make a new version if any; return whether it changed.

        ``paths``: the only files that may have changed (from file-system events);
        None looks at every file. A process that is not the builder does nothing.
        """
        with self._lock:
            if not self.may_build():
                return False
            if self.failed is not None or not self._stamp:
                paths = None  # the files the failed round was told about are not named again
            try:
                # One pass: the same stamps feed the load.
                stamp = self.loader.scan() if paths is None else self.loader.rescan(self._stamp, paths)
                if (stamp == self._stamp and self.failed is None) or self._waiting(stamp):
                    self._set_health(True, None)
                    return False
                first = self.lease is not None and self.builder.version is None
                changed_names, articles, rendered, purge = self._next_version(stamp)
            except (SeedsUnavailable, OSError) as exc:
                self._set_health(False, printable(str(exc)))
                return False
            except Exception as exc:  # a bug: keep serving, say so in /healthz, and try again
                self._failure(exc, stamp)
                return False
            self._stamp = stamp
            self.failed, self._failed_stamp, self._retry_delay = None, None, RETRY_FIRST
            self._set_health(True, None)
            announce = not first  # the very first version is no change to tell anyone of
            if changed_names and announce and self.publisher is not None:  # also sends what others left pending
                self.publisher.changed(self._feed_urls(changed_names))
            if purge and announce and self.purger is not None:  # the same, for a CDN in front
                self.purger.changed(purge)
            if changed_names:
                log.info("reloaded: %d articles, %d feeds re-rendered", articles, rendered)
            return bool(changed_names)

    def _next_version(self, stamp: dict[str, tuple[int, int]]) -> tuple[list[str], int, int, dict[str, str]]:
        """Make and publish the next version: the names whose bytes changed, articles, feeds rendered,
        and what the purge hook is told."""
        if self.lease is not None:
            changed = self._publish(stamp)
            assert self.site is not None
            return changed, len(self.site.corpus.articles), self.site.rendered, self.builder.purge_items()
        previous = self.snapshot
        snapshot = self._build(previous, stamp)
        before = previous.prepared if previous else {}
        changed = [name for name, prepared in snapshot.prepared.items() if before.get(name) is not prepared]
        if not changed and before.keys() != snapshot.prepared.keys():
            changed = sorted(before.keys() - snapshot.prepared.keys())
        self.snapshot = snapshot
        purge = purge_items(self.settings, previous, snapshot) if previous is not None else {}
        return changed, len(snapshot.site.corpus.articles), snapshot.site.rendered, purge

    def _feed_urls(self, names: list[str]) -> dict[str, str]:
        assert self.site is not None
        if self.lease is not None:
            rows = self.builder.rows
            return self.site.feed_urls([n for n in names if n in rows], lambda n: rows[n].etag)
        snapshot = self.snapshot
        assert snapshot is not None
        return snapshot.site.feed_urls([n for n in names if n in snapshot.prepared],
                                       lambda n: snapshot.prepared[n].etag)

    def _waiting(self, stamp: dict[str, tuple[int, int]]) -> bool:
        """After a failed reload, nothing changed since and it is not yet time to try the same again."""
        return stamp == self._failed_stamp and time.monotonic() < self._retry_at

    def retry_due(self, now: float) -> bool:
        """The last reload failed and it is time to try the same files again."""
        return self.failed is not None and now >= self._retry_at

    def _failure(self, exc: Exception, stamp: dict[str, tuple[int, int]]) -> None:
        self.failed, self._failed_stamp = type(exc).__name__, stamp
        # Any change is tried at once; the same files again only after a delay that doubles.
        self._retry_at = time.monotonic() + self._retry_delay
        self._retry_delay = min(self._retry_delay * 2, FULL_SCAN_EVERY)
        log.error("reload failed (%s at %s); still serving the previous feeds, trying again", self.failed, where(exc))
        if self.lease is not None:
            self.builder.restate({**self.builder.status, "failed": self.failed})  # every worker's /healthz says so
            self.reader.forget()

    def _set_health(self, healthy: bool, error: str | None) -> None:
        if healthy != self.healthy:
            (log.info if healthy else log.error)("seeds %s", "available again" if healthy else f"unavailable: {error}")
        self.healthy, self.error = healthy, error

    def health(self, view: View) -> tuple[str, dict[str, object]]:
        """``ok``; ``degraded`` while a file is rejected (or kept at its last good version) or the
        last reload failed; ``unhealthy`` without a seeds directory, looked for now, not at the last reload."""
        status = view.status
        details: dict[str, object] = {"rejected": status["rejected"], "first_problems": status["first_problems"]}
        if not self.healthy or not self.loader.available():
            where = printable(str(self.settings.seeds_dir))
            details["error"] = self.error or f"seeds directory {where} is missing or unreadable"
            return "unhealthy", details
        failed = self.failed if self.lease is None else status.get("failed")
        if failed is not None:
            details["error"] = f"the last reload failed ({failed}); serving the previous feeds"
        return ("degraded" if failed is not None or status["first_error"] else "ok"), details

    def after_fork(self) -> None:
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
            thread = watcher.start(self)
            self._watcher_pid = pid
            self._watcher = thread


FIRST_POLL = 0.05  # seconds between looks at the store while the first version is being built
RETRY_FIRST = 1.0  # seconds before a failed reload is tried again on the same files (then 2, 4... up to 30)

"""The server's feeds: loaded once, swapped whole on reload, compressed once per change.

Requests read one immutable :class:`Snapshot`; a reload builds the next one off
to the side (re-parsing only changed files, re-rendering only changed feeds)
and swaps the reference, so a request sees the old or the new site, never a mix.
Each output is compressed as it is rendered and kept only in that form
(:mod:`feedpub.web.store`). A watcher thread per process (:mod:`feedpub.web.watcher`)
reloads when the file system reports a change, looking only at the files it names.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property

from ..after_fork import renew_after_fork
from ..first_published import Claim, PublishedTimes
from ..ingest.loader import CorpusLoader, SeedsUnavailable, where
from ..model import Problem, printable
from ..purge import for_server
from ..render.site import Output, Site, render_site
from ..settings import Settings
from ..websub import Publisher, open_ledger
from . import watcher
from .headers import purge_items
from .store import OnDemand, PlainBodies, Prepared, prepare, redate
from .watcher import FULL_SCAN_EVERY

log = logging.getLogger("feedpub.server")
# Articles whose entry HTML and fragments a render keeps, and the site keeps for its filtered views and archive
# pages (about 14 KiB an article: RSS, Atom, JSON): a feed's formats and the newest articles recur within it.
ENTRY_HTML_CACHE = 1024
ON_DEMAND_SIZE = 256  # archive pages and filtered feeds a snapshot keeps


@dataclass(frozen=True)
class Snapshot:
    """One version of the site as served: what was rendered, and each output's bytes, compressed.

    ``site`` holds no bytes (each output's body is None): they are in ``prepared``.
    """

    site: Site
    prepared: dict[str, Prepared]
    loaded_at: datetime
    read_at: datetime  # when its files were read: dates its new outputs (see FeedState.dated)
    # Archive pages and filtered feeds of this version, made when first asked for.
    on_demand: OnDemand = field(default_factory=lambda: OnDemand(ON_DEMAND_SIZE), compare=False)

    @cached_property
    def first_problems(self) -> tuple[Problem, ...]:
        """The problems /healthz shows, errors first: sorted once per version, not per request."""
        problems = sorted(self.site.corpus.problems, key=lambda p: p.severity != "error")
        return tuple(problems[:HEALTH_PROBLEMS])


def _publisher(settings: Settings) -> Publisher | None:
    return Publisher(settings.websub_hub, open_ledger(settings.cache_dir)) if settings.websub_hub else None


def _unchanged(before: Prepared | None, new: Prepared | None) -> Prepared:
    """``before`` when ``new`` has the same bytes (or was not rendered): its object and date stay, nothing announced."""
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
        renew_after_fork(self)  # a forked child gets fresh locks and no watcher
        self._watcher: threading.Thread | None = None
        self._watcher_pid: int | None = None
        self.publisher = _publisher(settings)
        self.purger = for_server(settings)
        self.plain = PlainBodies(settings.identity_cache_mb << 20)
        site = f"{os.path.realpath(settings.seeds_dir)} {settings.feeds_url}"
        self.published = PublishedTimes(settings.cache_dir, site=site)
        self._stamp = self.loader.scan()
        self.snapshot = self._build(None, self._stamp)

    def _build(self, previous: Snapshot | None, stamps: dict[str, tuple[int, int]]) -> Snapshot:
        read_at = datetime.now(UTC)
        corpus = self.loader.load(stamps=stamps)
        # Archives are rendered on first request: most are never asked for, and they would
        # otherwise triple the memory of every worker.
        fresh: dict[str, Prepared] = {}

        def store(name: str, output: Output) -> Output:
            fresh[name] = prepare(output)
            return Output(None, output.mimetype, output.last_modified)  # held compressed, not plain

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
        return Snapshot(site, prepared, datetime.now(UTC), read_at)

    def dated(self, outputs: Mapping[str, Prepared], read_at: datetime) -> dict[str, Prepared]:
        """``outputs`` (new bytes, dated by their newest entry) dated by when their bytes were first published.

        The time is claimed in a table every worker shares, so all send the same
        ``Last-Modified`` for one version (see :mod:`feedpub.first_published`).
        """
        times = self.published.claim([Claim(name, new.etag, new.last_modified) for name, new in outputs.items()],
                                     read_at)
        return {name: redate(new, time) for (name, new), time in zip(outputs.items(), times, strict=True)}

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
            previous = self.snapshot
            before = previous.prepared
            changed_names = [name for name, prepared in snapshot.prepared.items() if before.get(name) is not prepared]
            changed = bool(changed_names) or before.keys() != snapshot.prepared.keys()
            self.snapshot = snapshot
            if self.publisher is not None:  # also sends what earlier loads, builds or workers left pending
                self.publisher.changed(snapshot.site.feed_urls(changed_names, lambda n: snapshot.prepared[n].etag))
            if self.purger is not None:  # the same, for a CDN in front
                self.purger.changed(purge_items(self.settings, previous, snapshot))
            if changed:
                log.info("reloaded: %d articles, %d feeds re-rendered", len(snapshot.site.corpus.articles),
                         snapshot.site.rendered)
            return changed

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

    def _set_health(self, healthy: bool, error: str | None) -> None:
        if healthy != self.healthy:
            (log.info if healthy else log.error)("seeds %s", "available again" if healthy else f"unavailable: {error}")
        self.healthy, self.error = healthy, error

    def health(self) -> tuple[str, dict[str, object]]:
        """``ok``; ``degraded`` while a file is rejected (or kept at its last good version) or the
        last reload failed; ``unhealthy`` without a seeds directory, looked for now, not at the last reload."""
        snapshot = self.snapshot
        problems = snapshot.first_problems
        details: dict[str, object] = {
            "rejected": snapshot.site.corpus.rejected,
            "first_problems": [printable(str(p)) for p in problems],
        }
        if not self.healthy or not self.loader.available():
            where = printable(str(self.settings.seeds_dir))
            details["error"] = self.error or f"seeds directory {where} is missing or unreadable"
            return "unhealthy", details
        if self.failed is not None:
            details["error"] = f"the last reload failed ({self.failed}); serving the previous feeds"
        failing = self.failed is not None or (problems and problems[0].severity == "error")
        return ("degraded" if failing else "ok"), details

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


HEALTH_PROBLEMS = 5  # problem lines /healthz shows
RETRY_FIRST = 1.0  # seconds before a failed reload is tried again on the same files (then 2, 4... up to 30)

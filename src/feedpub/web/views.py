"""What one request sees: one version of the site, from this process's memory or from the shared store.

Routes ask a :class:`View` for an output, a live feed behind an output, or a
filtered view of one, and never learn where the version came from: the process
that rendered it (:class:`LocalView`) or the builder that published it
(:class:`StoredView`, read from :mod:`feedpub.web.shared_store`).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..catalog.feeds import Feed
from ..first_published import from_micros
from ..model import Article
from ..on_demand import OnDemand
from ..render.common import SiteContext
from ..render.formats import Format, registered
from ..render.site import Output, render_feed, site_context
from ..settings import Settings
from .filters import Filters
from .headers import Served, output_headers, served, tagged
from .shared_store import SharedStore, Source, source_feed
from .store import Prepared, prepare, stored

if TYPE_CHECKING:
    from .snapshot import Snapshot
    from .state import FeedState

ON_DEMAND_SIZE = 256  # archive pages and filtered feeds a version keeps
SERVED_SIZE = 4096  # outputs a version of a process that renders for itself keeps with their headers
ENTRY_HTML_CACHE = 1024  # articles whose entry HTML and fragments a process keeps for its filtered views
# Seconds a process serves the version it knows before asking the store again whether a newer one was
# published: the question (a PRAGMA, about 4 µs) was among the largest costs of a 304, and a version
# reaches the other processes a millisecond later at most.
RECHECK = 0.001


class View(Protocol):
    status: dict[str, Any]  # what /healthz says of this version (see FeedState.status)
    @property
    def on_demand(self) -> OnDemand[Prepared]:
        """What this version made when first asked for: archive pages, filtered views, deltas."""

    @property
    def context(self) -> SiteContext:
        """What feeds of this version are rendered with in this process (entry fragments included)."""

    def served(self, name: str) -> Served | None:
        """The output at ``name`` (a path under /feeds/) with its headers, or None."""

    def feed(self, name: str, filters: Filters | None) -> Feed:
        """The live feed at ``name`` (``source(name)`` must not be None), seen through ``filters`` if any."""

    def output(self, name: str) -> Prepared | None:
        """The output at ``name`` (a path under /feeds/), or None."""

    def source(self, name: str) -> tuple[Feed, Format] | None:
        """The live feed behind ``name`` with its current entries, and the format; None for any other output."""

    def filtered(self, name: str, filters: Filters) -> Prepared:
        """The live feed at ``name`` seen through ``filters`` (``source(name)`` must not be None)."""


def _filtered_bytes(feed: Feed, fmt: Format, subset: Feed, whole: Prepared, settings: Settings,
                    ctx: SiteContext) -> Prepared:
    if subset.entries == feed.entries and not feed.complete:
        return whole  # a complete feed's bytes say fh:complete: no view may
    # Dated as the whole feed: it changes whenever the subset does.
    return prepare(Output(render_feed(subset, fmt, settings, ctx), fmt.media_type, whole.last_modified))


@dataclass
class LocalView:
    """A version this process rendered itself (``one_builder`` off, or no usable cache directory)."""

    snapshot: Snapshot
    state: FeedState
    status: dict[str, Any]

    @property
    def on_demand(self) -> OnDemand[Prepared]:
        return self.snapshot.on_demand

    @property
    def context(self) -> SiteContext:
        context = self.snapshot.site.context
        assert context is not None
        return context

    def served(self, name: str) -> Served | None:
        snapshot = self.snapshot
        site = snapshot.site
        if name not in snapshot.prepared and name not in site.deferred:
            return None

        def make() -> Served:  # the output is looked up (an archive page rendered) only when not served yet
            prepared = self.output(name)
            assert prepared is not None
            # Every archive page is deferred by the server: settled once its month is over.
            return served(prepared, output_headers(site, name), name in site.deferred, self.state.settings)

        return snapshot.served.get(name, make)

    def feed(self, name: str, filters: Filters | None) -> Feed:
        found = self.snapshot.site.feed_and_format(name)
        assert found is not None
        return found[0] if filters is None else filters.apply(found[0], self.state.settings.max_items)

    def output(self, name: str) -> Prepared | None:
        snapshot = self.snapshot
        found = snapshot.prepared.get(name)
        if found is not None:
            return found
        deferred = snapshot.site.deferred.get(name)
        if deferred is None:
            return None
        feed, fmt = deferred

        def make() -> Prepared:  # an archive page, rendered on its first request and kept with the snapshot
            body = render_feed(feed, fmt, self.state.settings, snapshot.site.context)
            page = prepare(Output(body, fmt.media_type, feed.updated))
            return self.state.dated({name: page}, snapshot.read_at)[name]  # a late article moves its date too

        return snapshot.on_demand.get((name, None), make)

    def source(self, name: str) -> tuple[Feed, Format] | None:
        return self.snapshot.site.feed_and_format(name)

    def filtered(self, name: str, filters: Filters) -> Prepared:
        snapshot, settings = self.snapshot, self.state.settings
        found = snapshot.site.feed_and_format(name)
        assert found is not None
        feed, fmt = found
        return snapshot.on_demand.get((name, filters), lambda: _filtered_bytes(
            feed, fmt, filters.apply(feed, settings.max_items), snapshot.prepared[name], settings, self.context))


@dataclass
class StoredView:
    """A version the builder published: outputs are read when asked for, kept by the process's :class:`Reader`."""

    reader: Reader
    version: int
    status: dict[str, Any]
    on_demand: OnDemand[Prepared] = field(default_factory=lambda: OnDemand(ON_DEMAND_SIZE))
    # Live feeds read back, with their current entries (None: the output is no live feed).
    sources: OnDemand[tuple[Feed, Format] | None] = field(default_factory=lambda: OnDemand(ON_DEMAND_SIZE))

    def output(self, name: str) -> Prepared | None:
        found = self.reader.served(self.version, name)
        return None if found is None else found.prepared

    def served(self, name: str) -> Served | None:
        return self.reader.served(self.version, name)

    def _source(self, name: str) -> Source | None:
        return self.reader.store.source(self.version, name)

    def source(self, name: str) -> tuple[Feed, Format] | None:
        def make() -> tuple[Feed, Format] | None:
            found = self._source(name)
            if found is None:
                return None
            limit = self.reader.settings.max_items
            articles = self.reader.articles(m.id for m in found.members[:limit])
            members = tuple(articles[m.id] for m in found.members[:limit] if m.id in articles)
            return source_feed(found, members, limit), _format(found, name)

        return self.sources.get(name, make)

    @property
    def context(self) -> SiteContext:
        return self.reader.context

    def feed(self, name: str, filters: Filters | None) -> Feed:
        live = self.source(name)
        assert live is not None
        if filters is None:
            return live[0]
        found = self._source(name)
        assert found is not None
        limit = filters.limit or self.reader.settings.max_items
        # Only the members the view shows are read from the store; the rest are known by kind and quality.
        chosen = [m.id for m in found.members if filters.admits(m.kind, m.quality)][:limit]
        articles = self.reader.articles(chosen)
        picked = tuple(articles[i] for i in chosen if i in articles)
        return filters.apply(source_feed(found, picked, limit), self.reader.settings.max_items)

    def filtered(self, name: str, filters: Filters) -> Prepared:
        def make() -> Prepared:
            live = self.source(name)
            whole = self.output(name)
            assert live is not None and whole is not None
            return _filtered_bytes(live[0], live[1], self.feed(name, filters), whole, self.reader.settings,
                                   self.reader.context)

        return self.on_demand.get((name, filters), make)


def _format(source: Source, name: str) -> Format:
    return next(fmt for fmt in registered() if fmt.output_name(source.spec) == name)


class Reader:
    """This process's window on the shared store: the current version, and the outputs it served lately."""

    def __init__(self, store: SharedStore, settings: Settings, budget: int) -> None:
        self.store = store
        self.settings = settings
        self.context = site_context(settings, registered(), ENTRY_HTML_CACHE)
        self._view: StoredView | None = None
        self._checked = 0.0  # time.monotonic() of the last look at the store
        self._budget, self._held = budget, 0
        self._outputs: OrderedDict[tuple[int, str], Served] = OrderedDict()
        self._lock = threading.Lock()

    def view(self) -> StoredView | None:
        """The current version (None before the first is published); costs one PRAGMA a millisecond at most."""
        view, now = self._view, time.monotonic()
        if view is not None:
            if now - self._checked < RECHECK:
                return view
            if not self.store.changed():
                self._checked = now
                return view
        self._checked = now
        current = self.store.current()
        if current is None:
            return None
        version, status = current
        with self._lock:
            if self._view is None or (self._view.version, self._view.status) != (version, status):
                self._view = StoredView(self, version, status)
            return self._view

    def articles(self, ids: Iterable[int]) -> dict[int, Article]:
        """Articles by id, their entry fragments (as the builder made them) kept for this process's renders."""
        found = self.store.articles(ids)
        for article, fragments in found.values():
            if fragments:
                self.context.fragments.seed(article, fragments)
        return {id_: article for id_, (article, _) in found.items()}

    def forget(self) -> None:
        """Read the current version again at the next request (this process just published one)."""
        self._view = None

    def served(self, version: int, name: str) -> Served | None:
        """The output ``name`` of ``version`` with its headers, read from the store on its first request here."""
        key = (version, name)
        with self._lock:
            found = self._outputs.get(key)
            if found is not None:
                self._outputs.move_to_end(key)
                return found
        row = self.store.output(version, name)
        if row is None:
            return None  # not kept: unknown names are as many as clients care to ask for
        meta, gzipped = row
        prepared = stored(meta.mimetype, from_micros(meta.last_modified), meta.etag, gzipped, meta.size)
        found = served(prepared, tagged(meta.tag, meta.public), meta.archive, self.settings)
        with self._lock:
            kept = self._outputs.setdefault(key, found)
            if kept is found:
                self._held += len(gzipped)
            while self._held > self._budget and len(self._outputs) > 1:
                _, evicted = self._outputs.popitem(last=False)
                self._held -= len(evicted.prepared.gzipped)
            return kept

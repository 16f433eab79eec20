"""What every feed of one site shares: settings, URLs, titles and each entry's HTML."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar, cast

from ..catalog.feeds import Feed, FeedKind, FeedSpec
from ..model import Article
from ..settings import Settings
from .fragments import Fragments

if TYPE_CHECKING:
    from .formats import Format

T = TypeVar("T")
# The files about the whole site, beside the feeds under /feeds/.
INDEX_JSON, INDEX_OPML, FRONT_PAGE = "index.json", "index.opml", "index.html"
PAGE_SUFFIX = ".html"


def page_place(spec: FeedSpec) -> str:
    """Where a feed's readable preview lives under /feeds/, less the suffix."""
    if spec.kind is FeedKind.TOPIC:
        return f"topics/{spec.slug}"
    if spec.kind is FeedKind.PROVIDER:
        return f"providers/{spec.slug}"
    return "all"


class SiteContext:
    """Per-build state shared by every feed: settings, the output formats, each entry's HTML and fragments."""

    def __init__(self, settings: Settings, entry_html: Callable[[Article], str], formats: Sequence[Format],
                 fragments: Fragments | None = None) -> None:
        self.settings = settings
        self.entry_html = entry_html
        self.fragments = fragments if fragments is not None else Fragments()
        self.feed_formats = tuple(fmt for fmt in formats if fmt.feed)  # what pages and indexes offer

    def feed_url(self, path: str, suffix: str) -> str:
        return f"{self.settings.feeds_url}{path}{suffix}"

    def url(self, fmt: Format, feed: Feed) -> str:
        """The address of ``feed`` in ``fmt``."""
        return self.settings.feeds_url + fmt.output_name(feed.spec)

    def index_url(self, name: str) -> str:
        """The address of one of the files about the whole site, e.g. :data:`INDEX_JSON`."""
        return self.settings.feeds_url + name

    def page_url(self, feed: Feed) -> str:
        """The feed's web page: its readable preview."""
        return f"{self.settings.feeds_url}{page_place(feed.spec)}{PAGE_SUFFIX}"

    def front_url(self) -> str:
        return self.index_url(FRONT_PAGE)

    def title(self, feed: Feed) -> str:
        archive = f" (archive {feed.spec.archive})" if feed.spec.archive else ""
        return f"{self.settings.site_title} – {feed.spec.name}{archive}"

    def description(self, feed: Feed) -> str:
        site = self.settings.site_title
        if feed.spec.archive:
            return f"{feed.spec.name}: every article of {feed.spec.archive}, collected by {site}."
        if feed.spec.kind is FeedKind.TOPIC:
            return f"The latest {feed.spec.name} news, collected by {site}."
        if feed.spec.kind is FeedKind.PROVIDER:
            return f"The latest articles from {feed.spec.name} ({feed.spec.key}), collected by {site}."
        return f"The latest articles collected by {site}."

    def extra_links(self, feed: Feed, suffix: str) -> list[dict[str, str]]:
        """Feed links besides self and alternate: the WebSub hub, and RFC 5005 archive links."""
        links = []
        if self.settings.websub_hub:
            links.append({"rel": "hub", "href": self.settings.websub_hub})
        for rel, path in (("current", feed.current), ("prev-archive", feed.prev_archive),
                          ("next-archive", feed.next_archive)):
            if path:
                links.append({"rel": rel, "href": self.feed_url(path, suffix)})
        return links

    def json_extras(self, feed: Feed) -> dict[str, object]:
        """Top-level JSON Feed keys besides the standard ones: ``hubs`` for WebSub."""
        if self.settings.websub_hub:
            return {"hubs": [{"type": "WebSub", "url": self.settings.websub_hub}]}
        return {}


class Draft:
    """One feed on its way to each of its formats: what several formats share is built once, here.

    A draft lives for one feed's render, so nothing is carried from one feed to
    the next, and its formats may be rendered in any order (RSS and Atom share
    one feedgen generator, each setting its own links on it).
    """

    __slots__ = ("_shared", "ctx", "feed")

    def __init__(self, feed: Feed, ctx: SiteContext) -> None:
        self.feed = feed
        self.ctx = ctx
        self._shared: dict[Callable[[Feed, SiteContext], object], object] = {}

    def shared(self, build: Callable[[Feed, SiteContext], T]) -> T:
        """``build(feed, ctx)``, made on first use and then the same object for every format of the feed."""
        if build not in self._shared:
            self._shared[build] = build(self.feed, self.ctx)
        return cast("T", self._shared[build])

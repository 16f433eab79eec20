"""What every feed of one site shares: settings, URLs, titles and each entry's HTML."""

from __future__ import annotations

from collections.abc import Callable

from ..catalog.feeds import Feed, FeedKind, FeedSpec
from ..model import Article
from ..settings import Settings

# (label, suffix, media type) of each feed format, as pages and links offer them.
FEED_LABELS = (
    ("RSS", ".xml", "application/rss+xml"),
    ("Atom", ".atom", "application/atom+xml"),
    ("JSON Feed", ".json", "application/feed+json"),
)


def page_path(spec: FeedSpec) -> str:
    """Where a feed's readable preview lives under /feeds/."""
    if spec.kind is FeedKind.TOPIC:
        return f"topics/{spec.slug}.html"
    if spec.kind is FeedKind.PROVIDER:
        return f"providers/{spec.slug}.html"
    return "all.html"


class SiteContext:
    """Per-build state shared by every feed: settings and each entry's HTML, made once."""

    def __init__(self, settings: Settings, entry_html: Callable[[Article], str]) -> None:
        self.settings = settings
        self.entry_html = entry_html
        self.memo: dict[str, object] = {}  # the renderers' scratch space (the last feed's generator)

    def feed_url(self, path: str, suffix: str) -> str:
        return f"{self.settings.feeds_url}{path}{suffix}"

    def page_url(self, feed: Feed) -> str:
        """The feed's web page: its readable preview."""
        return f"{self.settings.feeds_url}{page_path(feed.spec)}"

    def front_url(self) -> str:
        return f"{self.settings.feeds_url}index.html"

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

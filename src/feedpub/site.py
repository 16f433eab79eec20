"""Rendering a whole site to bytes: the one code path behind ``feedpub build`` and the server.

A :class:`Site` maps each path under ``/feeds/`` to its finished bytes. The
static build writes them, the server serves them: the same settings give the
same bytes. Given the previous site, only feeds whose entries changed are
rendered again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from .content import entry_html
from .context import SiteContext
from .corpus import Corpus
from .directory import render_index, render_opml
from .feeds import Feed, plan
from .jsonfeed import render_json
from .model import Article
from .settings import Settings
from .xmlfeeds import render_atom, render_rss

Renderer = Callable[[Feed, SiteContext, str, str], bytes]


@dataclass(frozen=True, slots=True)
class Format:
    name: str
    suffix: str
    mimetype: str
    render: Renderer


FORMATS: tuple[Format, ...] = (
    Format("rss", ".xml", "application/rss+xml; charset=utf-8", render_rss),
    Format("atom", ".atom", "application/atom+xml; charset=utf-8", render_atom),
    Format("json", ".json", "application/feed+json; charset=utf-8", render_json),
)
INDEX_MIMETYPES = {"index.json": "application/json", "index.opml": "text/x-opml; charset=utf-8"}


@dataclass(frozen=True, slots=True)
class Output:
    """One finished file: its bytes, media type and the date of its newest content."""

    body: bytes
    mimetype: str
    last_modified: datetime


@dataclass(frozen=True)
class Site:
    """Every output of one corpus under one set of settings."""

    settings: Settings
    corpus: Corpus
    feeds: tuple[Feed, ...]
    outputs: Mapping[str, Output]
    notes: tuple[str, ...] = ()
    rendered: int = field(default=0, compare=False)

    def get(self, path: str) -> Output | None:
        return self.outputs.get(path)

    def feed_and_format(self, path: str) -> tuple[Feed, Format] | None:
        """The feed and format behind an output path, e.g. ``ai.xml``; ``None`` for index files."""
        for fmt in FORMATS:
            if path.endswith(fmt.suffix):
                for feed in self.feeds:
                    if feed.spec.path + fmt.suffix == path:
                        return feed, fmt
        return None


def site_context(settings: Settings) -> SiteContext:
    """A context whose entry HTML is made once per article."""
    html_cache: dict[str, str] = {}

    def html(article: Article) -> str:
        cached = html_cache.get(article.url)
        if cached is None:
            cached = html_cache[article.url] = entry_html(article, settings.site_url)
        return cached

    return SiteContext(settings, html)


def render_feed(feed: Feed, fmt: Format, settings: Settings) -> bytes:
    """One feed in one format, outside a full site render (trimmed feeds, for example)."""
    return fmt.render(feed, site_context(settings), fmt.suffix, fmt.mimetype)


def render_site(corpus: Corpus, settings: Settings, previous: Site | None = None) -> Site:
    """Render every feed; reuse the bytes of feeds that did not change since ``previous``."""
    ctx = site_context(settings)
    feeds, notes = plan(corpus, settings.max_items)
    reusable = _reusable(previous, settings)
    outputs: dict[str, Output] = {}
    rendered = 0
    for feed in feeds:
        old = reusable.get(feed.spec.path)
        for fmt in FORMATS:
            name = feed.spec.path + fmt.suffix
            if old is not None and old == feed and previous is not None:
                outputs[name] = previous.outputs[name]
                continue
            outputs[name] = Output(fmt.render(feed, ctx, fmt.suffix, fmt.mimetype), fmt.mimetype, feed.updated)
            rendered += 1
    formats = [(fmt.name, fmt.suffix) for fmt in FORMATS]
    for name, render in (("index.json", render_index), ("index.opml", render_opml)):
        outputs[name] = Output(render(feeds, ctx, formats, corpus.newest), INDEX_MIMETYPES[name], corpus.newest)
    return Site(settings, corpus, feeds, outputs, notes, rendered)


def _reusable(previous: Site | None, settings: Settings) -> dict[str, Feed]:
    if previous is None or previous.settings != settings:
        return {}
    return {feed.spec.path: feed for feed in previous.feeds}

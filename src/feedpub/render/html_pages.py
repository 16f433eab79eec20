"""Human-readable pages: the front page listing every feed, and a preview of each feed.

Plain HTML from Jinja templates with inline CSS (light and dark), no script and
no external assets, each page carrying ``<link rel="alternate">`` tags so a
browser or reader finds the feeds from it. Browsers are dropping XSLT, so these
pages, not a stylesheet on the XML, are the readable view.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader, Template, select_autoescape
from markupsafe import Markup

from .. import __version__
from ..catalog.feeds import Feed, FeedKind
from ..model import Article, Corpus, Kind
from ..on_demand import OnDemand
from .common import INDEX_JSON, INDEX_OPML, Draft, SiteContext
from .entry_content import rfc3339

if TYPE_CHECKING:
    from .formats import Format

_ENV = Environment(loader=PackageLoader("feedpub.render", "templates"), autoescape=select_autoescape(["html"]),
                   keep_trailing_newline=True)
KIND_LABELS = {FeedKind.ALL: "All articles", FeedKind.TOPIC: "Topic", FeedKind.PROVIDER: "Provider"}


def _date(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d")


def _formats(ctx: SiteContext, feed: Feed) -> list[dict[str, str]]:
    """Subscribe links: the feed in each feed format."""
    return [{"href": ctx.url(fmt, feed), "type": fmt.link_type, "label": fmt.label} for fmt in ctx.feed_formats]


def _discovery(ctx: SiteContext, feeds: Sequence[Feed]) -> list[dict[str, str]]:
    return [{"href": ctx.url(fmt, feed), "type": fmt.link_type, "title": f"{ctx.title(feed)} ({fmt.label})"}
            for feed in feeds for fmt in ctx.feed_formats]


def _page(template: str, ctx: SiteContext, **values: Any) -> bytes:
    common = {"language": ctx.settings.language, "version": __version__, "site_title": ctx.settings.site_title,
              "home_url": ctx.front_url()}
    return _ENV.get_template(template).render(**common, **values).encode("utf-8")


def render_page(draft: Draft, fmt: Format) -> bytes:
    """The preview of one feed, discoverable as that feed: its entries are each article's page entry
    (:func:`page_entry`), made once per article however many pages list it."""
    feed, ctx = draft.feed, draft.ctx
    fragments = ctx.fragments
    entries = [Markup(fragments.get(fmt.name, article, partial(page_entry, ctx=ctx)).decode())
               for article in feed.entries]
    return _page(
        "feed.html", ctx,
        title=ctx.title(feed), name=feed.spec.name, kind_label=KIND_LABELS[feed.spec.kind],
        description=ctx.description(feed), formats=_formats(ctx, feed),
        discovery=_discovery(ctx, [feed]), entries=entries,
    )


def page_entry(article: Article, ctx: SiteContext) -> dict[str, bytes]:
    """An article's entry on a feed's page, by format name (the fragment every page that lists it splices in).

    At 100k articles the pages list ~100k entries, and rendering each in the page's
    own template made the pages a quarter of a full render (benchmarks/RESULTS.md).
    """
    return {"html": _ENV.get_template("feed_entry.html").render(entry=_entry(article)).encode("utf-8")}


def _entry(article: Article) -> dict[str, Any]:
    related = []
    for item in article.related:
        details = ", ".join(filter(None, [item.provider.name if item.provider else "",
                                          _date(item.published_at) if item.published_at else ""]))
        related.append({"url": item.url, "title": item.title, "details": details})
    return {"url": article.url, "title": article.title, "provider": article.provider.name,
            "date": _date(article.published_at), "iso": rfc3339(article.published_at),
            "video": article.kind is Kind.VIDEO, "topics": article.topics, "excerpt": article.excerpt,
            "related": related}


def render_front(feeds: Sequence[Feed], ctx: SiteContext, corpus: Corpus) -> bytes:
    """Every feed with its size, newest headline and subscribe links; the main feeds are discoverable."""
    groups = []
    for kind, title, group_id in ((FeedKind.ALL, "Everything", "all"), (FeedKind.TOPIC, "Topics", "topics"),
                                  (FeedKind.PROVIDER, "Providers", "providers")):
        rows = _ROWS.rows(ctx, [feed for feed in feeds if feed.spec.kind is kind])
        groups.append({"title": title, "id": group_id, "rows": rows})
    main = [feed for feed in feeds if feed.spec.kind is not FeedKind.PROVIDER]
    return _page(
        "index.html", ctx,
        title=ctx.settings.site_title, feeds=feeds, articles=len(corpus.articles), groups=groups,
        discovery=_discovery(ctx, main), opml_url=ctx.index_url(INDEX_OPML), index_url=ctx.index_url(INDEX_JSON),
    )


class FrontRows(OnDemand[Markup]):
    """The front page's rows, each kept by everything it shows: a reload renders only the rows of the
    feeds that changed (at 100k articles the page lists 2,026 feeds, and was most of a reload's rendering)."""

    def rows(self, ctx: SiteContext, feeds: Sequence[Feed]) -> list[Markup]:
        template = _ENV.get_template("front_row.html")
        return [self.get(_row_key(ctx, feed), partial(_row, ctx, feed, template)) for feed in feeds]


def _row_key(ctx: SiteContext, feed: Feed) -> Hashable:
    newest = feed.entries[0] if feed.entries else None
    return (ctx.settings.feeds_url, ctx.feed_formats, feed.spec, len(feed.entries), newest and newest.url,
            newest and newest.title, feed.updated)


def _row(ctx: SiteContext, feed: Feed, template: Template) -> Markup:
    newest = feed.entries[0] if feed.entries else None
    return Markup(template.render(row={
        "name": feed.spec.name, "page": ctx.page_url(feed), "entries": len(feed.entries), "newest": newest,
        "updated": _date(feed.updated), "updated_iso": rfc3339(feed.updated), "formats": _formats(ctx, feed)}))


_ROWS = FrontRows(8192)  # a few renders' worth of the rows of 2,026 feeds (100k articles)

"""Human-readable pages: the front page listing every feed, and a preview of each feed.

Plain HTML from Jinja templates with inline CSS (light and dark), no script and
no external assets, each page carrying ``<link rel="alternate">`` tags so a
browser or reader finds the feeds from it. Browsers are dropping XSLT, so these
pages, not a stylesheet on the XML, are the readable view.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader, select_autoescape

from .. import __version__
from ..catalog.feeds import Feed, FeedKind
from ..model import Article, Corpus, Kind
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
    """The preview of one feed, discoverable as that feed."""
    feed, ctx = draft.feed, draft.ctx
    return _page(
        "feed.html", ctx,
        title=ctx.title(feed), name=feed.spec.name, kind_label=KIND_LABELS[feed.spec.kind],
        description=ctx.description(feed), formats=_formats(ctx, feed),
        discovery=_discovery(ctx, [feed]), entries=[_entry(article) for article in feed.entries],
    )


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
        rows = []
        for feed in feeds:
            if feed.spec.kind is not kind:
                continue
            newest = feed.entries[0] if feed.entries else None
            rows.append({"name": feed.spec.name, "page": ctx.page_url(feed), "entries": len(feed.entries),
                         "newest": newest, "updated": _date(feed.updated), "updated_iso": rfc3339(feed.updated),
                         "formats": _formats(ctx, feed)})
        groups.append({"title": title, "id": group_id, "rows": rows})
    main = [feed for feed in feeds if feed.spec.kind is not FeedKind.PROVIDER]
    return _page(
        "index.html", ctx,
        title=ctx.settings.site_title, feeds=feeds, articles=len(corpus.articles), groups=groups,
        discovery=_discovery(ctx, main), opml_url=ctx.index_url(INDEX_OPML), index_url=ctx.index_url(INDEX_JSON),
    )

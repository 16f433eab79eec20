"""JSON Feed 1.1 (https://www.jsonfeed.org/version/1.1/), written with the json module.

Both ``authors`` (1.1) and ``author`` (1.0) are written so older readers see
an author too; related coverage goes in the ``_related`` extension object,
``{"about": ..., "items": [...]}``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..model import Article
from .common import Draft, SiteContext
from .entry_content import image_url, provider_url, rfc3339

if TYPE_CHECKING:
    from .formats import Format

VERSION = "https://jsonfeed.org/version/1.1"
RELATED_ABOUT = "https://pypi.org/project/feedpub/#related-coverage"


def _compact(document: Any) -> str:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def dumps(document: Any) -> bytes:
    """Deterministic, compact UTF-8 JSON ending in a newline (compact keeps json's C encoder)."""
    return (_compact(document) + "\n").encode("utf-8")


# A feed with no items ends so: "items" is its last key, and its items go between the brackets.
_NO_ITEMS = b"[]}\n"


def render_json(draft: Draft, fmt: Format) -> bytes:
    feed, ctx = draft.feed, draft.ctx
    settings = ctx.settings
    site_author = {"name": settings.site_title, "url": settings.site_url + "/"}
    document: dict[str, Any] = {
        "version": VERSION,
        "title": ctx.title(feed),
        "home_page_url": ctx.page_url(feed),
        "feed_url": ctx.url(fmt, feed),
        "description": ctx.description(feed),
        "language": settings.language,
    }
    logo = image_url(feed.spec.logo, settings.site_url)
    if logo:
        document["icon"] = logo
        document["favicon"] = logo
    document["authors"] = [site_author]
    document["author"] = site_author
    document.update(ctx.json_extras(feed))
    document["items"] = []
    head = dumps(document)
    assert head.endswith(_NO_ITEMS)
    items = [ctx.fragments.get("json", article, lambda a: json_entry(a, ctx)) for article in feed.entries]
    # Compact separators: json.dumps writes a list of items as their own dumps joined by ",".
    return b"".join((head[:-len(_NO_ITEMS)], b"[", b",".join(items), _NO_ITEMS[1:]))


def json_entry(article: Article, ctx: SiteContext) -> dict[str, bytes]:
    """``article``'s JSON Feed item, as the items list holds it."""
    return {"json": _compact(_item(article, ctx)).encode("utf-8")}


def _item(article: Article, ctx: SiteContext) -> dict[str, Any]:
    author = {"name": article.provider.name, "url": provider_url(article.provider)}
    item: dict[str, Any] = {"id": article.url, "url": article.url}
    if article.original_url:
        item["external_url"] = article.original_url
    item["title"] = article.title
    item["content_html"] = ctx.entry_html(article)
    if article.excerpt:
        item["summary"] = article.excerpt
    image = image_url(article.image, ctx.settings.site_url)
    if image:
        item["image"] = image
    item["date_published"] = rfc3339(article.published_at)
    item["date_modified"] = rfc3339(article.published_at)
    item["authors"] = [author]
    item["author"] = author
    if article.topics:
        item["tags"] = list(article.topics)
    if article.related:
        # An extension is an object (JSON Feed 1.1, "Extensions"): "about" says what it is.
        item["_related"] = {
            "about": RELATED_ABOUT,
            "items": [
                {
                    "title": related.title,
                    "url": related.url,
                    **({"provider": related.provider.name} if related.provider else {}),
                    **({"date_published": rfc3339(related.published_at)} if related.published_at else {}),
                }
                for related in article.related
            ],
        }
    return item

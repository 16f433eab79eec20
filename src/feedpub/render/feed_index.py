"""The site's list of feeds: ``index.json`` for programs, ``index.opml`` for readers."""

from __future__ import annotations

import email.utils
from collections.abc import Sequence
from typing import Any

from lxml import etree

from ..catalog.feeds import Feed, FeedKind
from .common import SiteContext
from .entry_content import rfc3339
from .json_feed import dumps

# (format name, file suffix) of every feed, in the order the index lists them.
FeedFormats = Sequence[tuple[str, str]]


def render_index(feeds: Sequence[Feed], ctx: SiteContext, formats: FeedFormats, updated: Any) -> bytes:
    document = {
        "title": ctx.settings.site_title,
        "home_page_url": ctx.front_url(),
        "updated": rfc3339(updated),
        "feeds": [
            {
                "kind": feed.spec.kind.value,
                "name": feed.spec.name,
                "slug": feed.spec.slug,
                "title": ctx.title(feed),
                "entries": len(feed.entries),
                "updated": rfc3339(feed.updated),
                "urls": {name: ctx.feed_url(feed.spec.path, suffix) for name, suffix in formats},
            }
            for feed in feeds
        ],
    }
    return dumps(document)


def render_opml(feeds: Sequence[Feed], ctx: SiteContext, formats: FeedFormats, updated: Any) -> bytes:
    """OPML 2.0; each feed is offered as its first format (RSS), the one every reader takes."""
    opml = etree.Element("opml", version="2.0")
    head = etree.SubElement(opml, "head")
    etree.SubElement(head, "title").text = f"{ctx.settings.site_title} feeds"
    etree.SubElement(head, "dateCreated").text = email.utils.format_datetime(updated, usegmt=True)
    etree.SubElement(head, "docs").text = "http://opml.org/spec2.opml"
    body = etree.SubElement(opml, "body")
    groups = {
        FeedKind.ALL: body,
        FeedKind.TOPIC: etree.SubElement(body, "outline", text="Topics"),
        FeedKind.PROVIDER: etree.SubElement(body, "outline", text="Providers"),
    }
    _, suffix = formats[0]
    for feed in feeds:
        etree.SubElement(
            groups[feed.spec.kind],
            "outline",
            type="rss",
            text=feed.spec.name,
            title=ctx.title(feed),
            xmlUrl=ctx.feed_url(feed.spec.path, suffix),
            htmlUrl=ctx.page_url(feed),
        )
    return etree.tostring(opml, pretty_print=True, xml_declaration=True, encoding="UTF-8")

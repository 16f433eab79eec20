"""The site's list of feeds: ``index.json`` for programs, ``index.opml`` for readers."""

from __future__ import annotations

import email.utils
from collections.abc import Sequence

from lxml import etree

from ..catalog.feeds import Feed, FeedKind
from ..model import Corpus
from .common import SiteContext
from .entry_content import rfc3339
from .json_feed import dumps


def render_index(feeds: Sequence[Feed], ctx: SiteContext, corpus: Corpus) -> bytes:
    """Every feed with its address in each feed format, by format name."""
    document = {
        "title": ctx.settings.site_title,
        "home_page_url": ctx.front_url(),
        "updated": rfc3339(corpus.newest),
        "feeds": [
            {
                "kind": feed.spec.kind.value,
                "name": feed.spec.name,
                "slug": feed.spec.slug,
                "title": ctx.title(feed),
                "entries": len(feed.entries),
                "updated": rfc3339(feed.updated),
                "urls": {fmt.name: ctx.url(fmt, feed) for fmt in ctx.feed_formats},
            }
            for feed in feeds
        ],
    }
    return dumps(document)


def render_opml(feeds: Sequence[Feed], ctx: SiteContext, corpus: Corpus) -> bytes:
    """OPML 2.0; each feed is offered in the formats marked ``in_opml`` (RSS: every reader takes it)."""
    opml = etree.Element("opml", version="2.0")
    head = etree.SubElement(opml, "head")
    etree.SubElement(head, "title").text = f"{ctx.settings.site_title} feeds"
    etree.SubElement(head, "dateCreated").text = email.utils.format_datetime(corpus.newest, usegmt=True)
    etree.SubElement(head, "docs").text = "http://opml.org/spec2.opml"
    body = etree.SubElement(opml, "body")
    groups = {
        FeedKind.ALL: body,
        FeedKind.TOPIC: etree.SubElement(body, "outline", text="Topics"),
        FeedKind.PROVIDER: etree.SubElement(body, "outline", text="Providers"),
    }
    offered = [fmt for fmt in ctx.feed_formats if fmt.in_opml]
    for feed in feeds:
        for fmt in offered:
            etree.SubElement(
                groups[feed.spec.kind],
                "outline",
                type="rss",  # OPML 2.0's type of every feed subscription, Atom and others too
                text=feed.spec.name,
                title=ctx.title(feed),
                xmlUrl=ctx.url(fmt, feed),
                htmlUrl=ctx.page_url(feed),
            )
    return etree.tostring(opml, pretty_print=True, xml_declaration=True, encoding="UTF-8")

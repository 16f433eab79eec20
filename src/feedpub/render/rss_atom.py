"""RSS 2.0 and Atom 1.0 through feedgen, from one description of a feed.

feedgen's traps are handled here once: entries are appended in our order,
every date is set explicitly (feedgen defaults to "now"), the channel's
alternate link is added last (RSS takes the last link), and links feedgen
mangles go through :mod:`feedpub.render.feedgen_ext`. Each entry is written
by feedgen once per render and format, as a fragment spliced into the head of
every feed that lists it (:mod:`feedpub.render.fragments`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from feedgen.entry import FeedEntry
from feedgen.ext.dc import DcEntryExtension, DcExtension
from feedgen.ext.media import MediaEntryExtension, MediaExtension
from feedgen.feed import FeedGenerator
from lxml import etree

from .. import __version__
from ..catalog.feeds import Feed
from ..model import Article, Image
from .common import Draft, SiteContext
from .entry_content import image_url, provider_url
from .feedgen_ext import ArchiveExtension, CompleteExtension, LinksEntryExtension, LinksExtension
from .fragments import cut, splice

if TYPE_CHECKING:
    from .formats import Format

GENERATOR_URI = "https://pypi.org/project/feedpub/"


def _rss(fg: FeedGenerator) -> bytes:
    rss: bytes = fg.rss_str(pretty=True, encoding="UTF-8")
    return rss


def _atom(fg: FeedGenerator) -> bytes:
    atom: bytes = fg.atom_str(pretty=True, encoding="UTF-8")
    return atom


@dataclass(frozen=True)
class _Shape:
    """How one XML format writes a feed and an entry, and where its entries go."""

    write: Callable[[FeedGenerator], bytes]
    element: Callable[[FeedEntry], etree._Element]
    container: str  # the entries' parent, found from the root ("" for the root itself)
    closing: bytes  # what the entries go just before


_RSS = _Shape(_rss, lambda fe: fe.rss_entry(), "channel", b"  </channel>")
_ATOM = _Shape(_atom, lambda fe: fe.atom_entry(), "", b"</feed>")
_SHAPES = {"rss": _RSS, "atom": _ATOM}
_PARSER = etree.XMLParser(remove_blank_text=True)  # pretty printing then indents as feedgen's own tree


def render_rss(draft: Draft, fmt: Format) -> bytes:
    return _render(draft, fmt, "rss")


def render_atom(draft: Draft, fmt: Format) -> bytes:
    return _render(draft, fmt, "atom")


def rss_entry(article: Article, ctx: SiteContext) -> dict[str, bytes]:
    """``article``'s RSS item (and its Atom entry, made from the same feedgen entry)."""
    return _fragments(article, ctx, "rss")


def atom_entry(article: Article, ctx: SiteContext) -> dict[str, bytes]:
    """``article``'s Atom entry (and its RSS item)."""
    return _fragments(article, ctx, "atom")


def _render(draft: Draft, fmt: Format, name: str) -> bytes:
    """The feed's head in format ``name`` with its entries' fragments spliced in: feedgen appends entries last."""
    fragments, ctx, shape = draft.ctx.fragments, draft.ctx, _SHAPES[name]
    entries = (fragments.get(name, article, lambda a: _fragments(a, ctx, name)) for article in draft.feed.entries)
    return splice(shape.write(_generator(draft, fmt)), shape.closing, entries)


class _Scratch(threading.local):
    """A generator with every feed's extensions and no entry of its own, one per thread.

    An entry's fragment is cut from this generator's document holding that entry
    alone: the extensions fix the namespace prefixes the entry's elements use, and
    every feed's root declares the same ones. Each format's document is parsed
    once and each entry is appended to it and serialised as feedgen does.
    """

    def __init__(self) -> None:
        self.fg = fg = FeedGenerator()
        _extensions(fg)
        fg.id("urn:feedpub:scratch")
        fg.title("scratch")
        fg.description("scratch")
        fg.link(href="urn:feedpub:scratch", rel="alternate")
        fg.updated("2000-01-01T00:00:00Z")
        self.documents: dict[_Shape, tuple[etree._ElementTree, etree._Element, bytes]] = {}

    def document(self, shape: _Shape) -> tuple[etree._ElementTree, etree._Element, bytes]:
        """The scratch document in ``shape``: its tree, the entries' parent, and its bytes."""
        if shape not in self.documents:
            head = shape.write(self.fg)
            root = etree.fromstring(head, _PARSER)
            container = root.find(shape.container) if shape.container else root
            assert container is not None
            self.documents[shape] = (etree.ElementTree(root), container, head)
        return self.documents[shape]


def _fragments(article: Article, ctx: SiteContext, wanted: str) -> dict[str, bytes]:
    """``article``'s RSS item and Atom entry, both from one feedgen entry, indentation included.

    ``wanted`` is made or raises; a format that fails besides is left out, to fail
    (and be reported) under its own name when a feed in that format asks for it.
    """
    scratch = _SCRATCH
    fe = scratch.fg.add_entry(order="append")
    try:
        _entry(fe, article, ctx)
    finally:
        scratch.fg.remove_entry(fe)
    made: dict[str, bytes] = {}
    for name, shape in _SHAPES.items():
        try:
            made[name] = _cut(fe, shape)
        except Exception:
            if name == wanted:
                raise
    return made


def _cut(fe: FeedEntry, shape: _Shape) -> bytes:
    """``fe`` as ``shape`` puts it in a feed: appended to the scratch document, serialised as feedgen does."""
    tree, container, head = _SCRATCH.document(shape)
    element = shape.element(fe)
    container.append(element)
    try:
        document: bytes = etree.tostring(tree, pretty_print=True, encoding="UTF-8", xml_declaration=True)
    finally:
        container.remove(element)
    return cut(document, head, shape.closing)


def _generator(draft: Draft, fmt: Format) -> FeedGenerator:
    """The feed's generator, built once for RSS and Atom alike, with ``fmt``'s own id and links set."""
    feed, ctx = draft.feed, draft.ctx
    fg = draft.shared(_build)
    self_url = ctx.url(fmt, feed)
    fg.id(self_url)
    # RSS uses the last link added as the channel <link>: self first, alternate last.
    fg.link(href=self_url, rel="self", type=fmt.link_type, replace=True)
    fg.link(href=ctx.page_url(feed), rel="alternate", type="text/html")
    fg.links.links(ctx.extra_links(feed, fmt.suffix))
    return fg


def _extensions(fg: FeedGenerator) -> None:
    # What load_extension("media") and ("dc") register, without its imports: each looks for a
    # feedgen.ext.<name>_entry module that does not exist, a failed import on every feed's head.
    fg.register_extension("media", MediaExtension, MediaEntryExtension)
    fg.register_extension("dc", DcExtension, DcEntryExtension, atom=False)
    fg.register_extension("links", LinksExtension, LinksEntryExtension)


def _build(feed: Feed, ctx: SiteContext) -> FeedGenerator:
    """The feed's head: everything but its entries, which are spliced in as fragments."""
    settings = ctx.settings
    fg = FeedGenerator()
    _extensions(fg)
    if feed.spec.archive:
        fg.register_extension("history", ArchiveExtension)
    elif feed.complete:
        fg.register_extension("history", CompleteExtension)
    fg.title(ctx.title(feed))
    fg.description(ctx.description(feed))
    fg.language(settings.language)
    fg.author(name=settings.site_title, uri=settings.site_url + "/")
    fg.generator("feedpub", version=__version__, uri=GENERATOR_URI)
    fg.updated(feed.updated)
    fg.ttl(settings.ttl_minutes)
    _logo(fg, feed.spec.logo, ctx, ctx.page_url(feed))
    return fg


def _logo(fg: FeedGenerator, logo: Image | None, ctx: SiteContext, home: str) -> None:
    url = image_url(logo, ctx.settings.site_url)
    if url is None or logo is None:
        return
    fg.icon(url)
    fg.logo(url)
    # RSS 2.0 caps channel images at 144x400; larger sizes are left out rather than lied about.
    width = str(logo.width) if logo.width and logo.width <= 144 else None
    height = str(logo.height) if logo.height and logo.height <= 400 else None
    fg.image(url=url, title=fg.title(), link=home, width=width, height=height)


def _entry(fe: FeedEntry, article: Article, ctx: SiteContext) -> None:
    site_url = ctx.settings.site_url
    fe.guid(article.url, permalink=True)
    fe.title(article.title)
    fe.link(href=article.url, rel="alternate")
    links = [{"rel": "alternate", "type": "text/html", "href": article.url}]
    links += [{"rel": "related", "href": r.url, "title": r.title} for r in article.related]
    fe.links.links(links)
    if article.excerpt:
        fe.summary(article.excerpt)
    fe.content(ctx.entry_html(article), type="html")
    fe.published(article.published_at)
    fe.updated(article.published_at)
    fe.author(name=article.provider.name, uri=provider_url(article.provider))
    fe.dc.dc_creator(article.provider.name)
    for topic in article.topics:
        fe.category(term=topic, label=topic)
    lead = article.image
    url = image_url(lead, site_url)
    if lead is not None and url is not None:
        size = {k: str(v) for k, v in (("width", lead.width), ("height", lead.height)) if v}
        fe.media.content(url=url, medium="image", group=None, **size)
        fe.media.thumbnail(url=url, group=None, **size)


_SCRATCH = _Scratch()  # last: it is made with the functions above

"""Every output format in one table: what each feed is written as, and how it is offered.

The site render, the static tree, the server, ``index.json``, ``index.opml`` and
the pages all read :data:`FORMATS`, so adding a format is one renderer module and
one :func:`register` row below. The files beside the feeds (the index files and
the front page) are a small table of their own, :data:`INDEX_FILES`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..catalog.feeds import Feed, FeedSpec
from ..model import Corpus
from .common import (
    FRONT_PAGE,
    INDEX_JSON,
    INDEX_OPML,
    PAGE_SUFFIX,
    Draft,
    SiteContext,
    page_place,
)
from .feed_index import render_index, render_opml
from .html_pages import page_entry, render_front, render_page
from .json_feed import json_entry, render_json
from .prefill import EntryMaker
from .rss_atom import atom_entry, render_atom, render_rss, rss_entry

HTML = "text/html; charset=utf-8"


def feed_place(spec: FeedSpec) -> str:
    """Where a feed's files live under /feeds/, less the suffix: e.g. ``ai``, ``providers/example.com``."""
    return spec.path


@dataclass(frozen=True, slots=True)
class Format:
    """One output format: every feed (and, if ``archived``, every archive month) is written in it."""

    name: str  # its key in index.json's "urls", and its name in messages
    label: str  # how subscribe links offer it
    suffix: str
    media_type: str  # the Content-Type it is served with
    render: Callable[[Draft, Format], bytes]
    feed: bool = True  # a feed one subscribes to: listed, linked from pages and announced by WebSub
    archived: bool = False  # written for each RFC 5005 archive month too
    in_opml: bool = False  # offered to feed readers in index.opml
    place: Callable[[FeedSpec], str] = feed_place
    # How one entry's fragment is made, for a format that splices them (see render.fragments): None for the others.
    entry: EntryMaker | None = None

    @property
    def link_type(self) -> str:
        """The media type without parameters, as ``<link type>`` attributes carry it."""
        return self.media_type.split(";")[0]

    def output_name(self, spec: FeedSpec) -> str:
        """The path of this feed's file under /feeds/, e.g. ``ai.xml``."""
        return self.place(spec) + self.suffix


# By name, in the order outputs are rendered and links list them.
FORMATS: dict[str, Format] = {}


def register(fmt: Format) -> Format:
    """Add an output format to every site rendered from now on."""
    clash = next((other for other in FORMATS.values() if other.name == fmt.name
                  or (other.suffix == fmt.suffix and other.place is fmt.place)), None)
    if clash is not None:
        raise ValueError(f"format {fmt.name!r} ({fmt.suffix}) clashes with {clash.name!r} ({clash.suffix})")
    FORMATS[fmt.name] = fmt
    return fmt


def unregister(name: str) -> None:
    del FORMATS[name]


def registered() -> tuple[Format, ...]:
    """The formats as registered now, in order: what a render uses from start to end."""
    return tuple(FORMATS.values())


register(Format("rss", "RSS", ".xml", "application/rss+xml; charset=utf-8", render_rss,
                archived=True, in_opml=True, entry=rss_entry))
register(Format("atom", "Atom", ".atom", "application/atom+xml; charset=utf-8", render_atom, archived=True,
                entry=atom_entry))
register(Format("json", "JSON Feed", ".json", "application/feed+json; charset=utf-8", render_json,
                entry=json_entry))
register(Format("html", "Web page", PAGE_SUFFIX, HTML, render_page, feed=False, place=page_place, entry=page_entry))


@dataclass(frozen=True, slots=True)
class IndexFile:
    """A file about the whole site rather than one feed."""

    name: str
    media_type: str
    render: Callable[[Sequence[Feed], SiteContext, Corpus], bytes]


# By name, in the order they are rendered.
INDEX_FILES: dict[str, IndexFile] = {index.name: index for index in (
    IndexFile(INDEX_JSON, "application/json", render_index),
    IndexFile(INDEX_OPML, "text/x-opml; charset=utf-8", render_opml),
    IndexFile(FRONT_PAGE, HTML, render_front),
)}

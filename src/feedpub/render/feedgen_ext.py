"""feedgen extensions: the links feedgen gets wrong, and RFC 5005 history markers.

feedgen writes Atom entry ``<link>`` elements without ``rel``, ``type`` or
``title`` (upstream issue #135) and drops every link but the alternate one
from RSS items and every feed link but ``self`` from the RSS channel. This
extension writes those links itself, through feedgen's extension hooks, so
the rest of feedgen can be used unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable

from feedgen.ext.base import BaseEntryExtension, BaseExtension
from lxml import etree

ATOM_NS = "http://www.w3.org/2005/Atom"
HISTORY_NS = "http://purl.org/syndication/history/1.0"
_ATTRIBUTES = ("rel", "href", "type", "title", "hreflang", "length")

Link = dict[str, str]


def _set_attributes(element: etree._Element, link: Link) -> None:
    for name in _ATTRIBUTES:
        if link.get(name):
            element.set(name, link[name])


class _LinkList:
    """Get or set (replacing) the links an extension writes, in feedgen's getter/setter style."""

    def __init__(self) -> None:
        self._links: list[Link] = []

    def links(self, links: Iterable[Link] | None = None) -> list[Link]:
        if links is not None:
            self._links = [dict(link) for link in links]
        return self._links


class LinksExtension(_LinkList, BaseExtension):  # type: ignore[misc]  # feedgen has no type hints
    """Feed-level links RSS would drop (``hub``, ``prev-archive``, ...)."""

    def extend_rss(self, feed: etree._Element) -> etree._Element:
        channel = _channel(feed)
        for link in self._links:
            _set_attributes(etree.SubElement(channel, f"{{{ATOM_NS}}}link"), link)
        return feed

    def extend_atom(self, feed: etree._Element) -> etree._Element:
        for link in self._links:
            _set_attributes(etree.SubElement(feed, "link"), link)
        return feed


class LinksEntryExtension(_LinkList, BaseEntryExtension):  # type: ignore[misc]  # feedgen has no type hints
    """Every entry link with its attributes intact: alternate, related, and so on."""

    def extend_atom(self, entry: etree._Element) -> etree._Element:
        # Replace feedgen's attribute-less links with complete ones, in place.
        broken = entry.findall("link")
        position = entry.index(broken[0]) if broken else len(entry)
        for element in broken:
            entry.remove(element)
        for offset, link in enumerate(self._links):
            element = etree.Element("link")
            _set_attributes(element, link)
            entry.insert(position + offset, element)
        return entry

    def extend_rss(self, item: etree._Element) -> etree._Element:
        # RSS <link> already carries the alternate URL; the rest go in as atom:link.
        for link in self._links:
            if link.get("rel", "alternate") != "alternate":
                _set_attributes(etree.SubElement(item, f"{{{ATOM_NS}}}link"), link)
        return item


class _HistoryMarker(BaseExtension):  # type: ignore[misc]  # feedgen has no type hints
    """An empty RFC 5005 element (``fh:NAME``) in the RSS channel or the Atom feed."""

    marker = ""

    def extend_ns(self) -> dict[str, str]:
        return {"fh": HISTORY_NS}

    def extend_rss(self, feed: etree._Element) -> etree._Element:
        etree.SubElement(_channel(feed), f"{{{HISTORY_NS}}}{self.marker}")
        return feed

    def extend_atom(self, feed: etree._Element) -> etree._Element:
        etree.SubElement(feed, f"{{{HISTORY_NS}}}{self.marker}")
        return feed


class ArchiveExtension(_HistoryMarker):
    """Marks a feed document as an RFC 5005 archive: ``<fh:archive/>``."""

    marker = "archive"


class CompleteExtension(_HistoryMarker):
    """Marks a feed document as holding every entry of its feed (RFC 5005 §2): ``<fh:complete/>``."""

    marker = "complete"


def _channel(rss: etree._Element) -> etree._Element:
    channel = rss.find("channel")
    assert channel is not None  # feedgen writes every RSS document with one
    return channel

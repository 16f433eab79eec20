"""Each entry's bytes in each feed format, made once per render and spliced into every feed that lists it.

An article appears in the all feed, a feed per topic, its provider's feed and
their archive pages: rendering its RSS item, Atom entry and JSON Feed item
once and reusing the bytes makes a render cost grow with entries, not with
entries times appearances. A feed is then its head (the document feedgen
writes with no entries) with the fragments of its entries spliced in before
the head's closing tag, which gives exactly the bytes feedgen would write with
the entries in it: feedgen appends entries after every other child, and lxml's
pretty printer indents an element by its depth alone.

A build also keeps them across runs (:mod:`feedpub.render.kept`), packed by :func:`pack`.
"""

from __future__ import annotations

import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping

from ..model import Article

# An article's fragment in the format asked for, and any other format's made along with it.
Maker = Callable[[Article], Mapping[str, bytes]]


class Fragments:
    """The fragments of one render (one set of settings), by article URL and source digest.

    With ``size`` only that many articles' fragments are kept, least recently used
    first out (the server, whose memory must not grow with the corpus); without it
    every article's are kept, so each is rendered once per format however many
    feeds and archive pages list it (the static build). The server keeps the
    fragments of its current render for its filtered views and archive pages, and
    serves those from several threads: hence the lock.
    """

    def __init__(self, size: int | None = None,
                 stored: Callable[[Article], Mapping[str, bytes]] | None = None,
                 made: Callable[[Article, Mapping[str, bytes]], None] | None = None) -> None:
        self._size = size
        self._stored = stored  # fragments an earlier render kept (the server's store), looked up before making
        self._made = made  # told of each article's fragments once this process made some (to keep them)
        self._entries: OrderedDict[tuple[str, str], dict[str, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, name: str, article: Article, make: Maker) -> bytes:
        """The fragment of ``article`` in format ``name``, made by ``make(article)`` if it is not kept."""
        key = (article.url, article.digest)
        with self._lock:
            kept = self._entries.get(key)
            if kept is None:
                kept = self._entries[key] = {}
                if self._size is not None and len(self._entries) > self._size:
                    self._entries.popitem(last=False)
            elif self._size is not None:
                self._entries.move_to_end(key)
            fragment = kept.get(name)
            if fragment is None and self._stored is not None:
                kept.update(self._stored(article))
                fragment = kept.get(name)
            if fragment is None:  # a maker that fails keeps nothing: the next call fails the same way
                kept.update(make(article))
                fragment = kept[name]
                if self._made is not None:
                    self._made(article, dict(kept))
            return fragment

    def kept(self, article: Article) -> Mapping[str, bytes]:
        """The fragments of ``article`` made so far, by format (to be stored for other processes)."""
        with self._lock:
            return dict(self._entries.get((article.url, article.digest), {}))

    def seed(self, article: Article, fragments: Mapping[str, bytes]) -> None:
        """Keep fragments made elsewhere (by the builder): the same bytes this process would make."""
        with self._lock:
            key = (article.url, article.digest)
            kept = self._entries.setdefault(key, {})
            for name, fragment in fragments.items():
                kept.setdefault(name, fragment)
            if self._size is not None:
                self._entries.move_to_end(key)
                while len(self._entries) > self._size:
                    self._entries.popitem(last=False)


def splice(head: bytes, closing: bytes, fragments: Iterable[bytes]) -> bytes:
    """``head`` with ``fragments`` inserted, in order, just before its last ``closing``."""
    at = head.rindex(closing)
    return b"".join((head[:at], *fragments, head[at:]))


def cut(document: bytes, head: bytes, closing: bytes) -> bytes:
    """What ``document`` adds to ``head`` just before its last ``closing``: one entry's bytes.

    ``document`` must be ``head`` with only that inserted; anything else is an
    error rather than a fragment that would corrupt every feed it goes into.
    """
    at = head.rindex(closing)
    before, after = head[:at], head[at:]
    if len(document) < len(head) or not (document.startswith(before) and document.endswith(after)):
        raise ValueError("the entry's document is not its head with one entry inserted")
    return document[len(before):len(document) - len(after)]


def pack(fragments: Mapping[str, bytes]) -> bytes:
    """One article's fragments as one compressed blob: a line of names and lengths, then the bytes.

    Compressed together, since the formats repeat the same content: 6x smaller, at
    level 1 ~60 us an article (benchmarks/RESULTS.md).
    """
    header = " ".join(f"{name} {len(body)}" for name, body in fragments.items()).encode()
    return zlib.compress(b"\n".join((header, *fragments.values())), 1)


def unpack(packed: bytes) -> dict[str, bytes]:
    """What :func:`pack` packed; ``ValueError`` for anything else (zlib's checksum catches damage)."""
    try:
        data = zlib.decompress(packed)
    except zlib.error as exc:
        raise ValueError(f"not packed fragments: {exc}") from None
    header, _, rest = data.partition(b"\n")
    words = header.decode("ascii", "replace").split()
    out: dict[str, bytes] = {}
    at = 0
    try:
        for name, size in zip(words[::2], map(int, words[1::2]), strict=True):
            out[name] = rest[at:at + size]
            at += size + 1
    except ValueError:
        raise ValueError("not packed fragments: a bad header") from None
    if at != len(rest) + 1 or not out:
        raise ValueError("not packed fragments: the lengths do not add up")
    return out

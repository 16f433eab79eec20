"""Entry fragments kept across builds, as parse results are: a build renders only new or changed entries.

A cold build makes every entry's fragments (:mod:`feedpub.render.fragments`) and keeps them,
packed, in the parse cache's file, one row per article and rendering (the output settings
and feedpub's version: :func:`~feedpub.render.site.rendering_key`); an article's fragments
come from its source file alone, related coverage included, so its source digest says
whether they still hold. The next build looks its entries up there before making any: an
incremental build makes only the new or edited ones, a full build into an empty directory
unpacks instead of rendering. The children of a large render pack what they make
(:mod:`feedpub.render.prefill`), and a thread of its own writes the rows while the render goes
on (SQLite and zlib let go of the GIL); what the build makes itself is packed and written once
the render is done, since an article's formats are made one feed format at a time. Nothing
here can fail a build: a busy cache is skipped, a damaged one rebuilt
(:class:`~feedpub.ingest.parse_cache.ParseCache`), and a row that does not unpack is made again.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from ..ingest.parse_cache import FragmentRow, ParseCache
from ..model import Article
from .fragments import pack

log = logging.getLogger(__name__)

BATCH = 500  # rows per transaction: a killed build keeps most of what it made, commits stay cheap

# What the writer thread is given: an article's URL and digest, and its fragments, packed or not; None: done.
_Item = tuple[str, str, bytes | Mapping[str, bytes]] | None


class KeptFragments:
    """The fragments kept for one rendering in one parse cache; use through :func:`kept_fragments`."""

    def __init__(self, cache: ParseCache, rendering: bytes) -> None:
        self.rendering = hashlib.blake2b(rendering, digest_size=16).hexdigest()
        self.found = 0  # articles whose fragments were found kept
        self.written = 0  # articles whose fragments were given to be kept
        self._cache = cache
        self._lock = threading.Lock()  # one connection: the render's lookups and the writer take turns
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._made: dict[str, tuple[Article, Mapping[str, bytes]]] = {}  # by URL: what the build made itself

    def find(self, articles: Sequence[Article]) -> dict[tuple[str, str], bytes]:
        """The packed fragments kept of ``articles``, by URL and digest: those of the same source only."""
        wanted = {article.url: article.digest for article in articles if article.digest}
        if not wanted:
            return {}
        with self._lock:
            rows = list(self._cache.fragments(self.rendering, wanted))
        found = {(url, digest): packed for url, digest, packed in rows if wanted.get(url) == digest}
        self.found += len(found)
        return found

    def made(self, article: Article, fragments: Mapping[str, bytes]) -> None:
        """Keep ``article``'s fragments, made by the build itself (every one made so far: the last call wins)."""
        self._made[article.url] = (article, fragments)

    def keep(self, article: Article, fragments: bytes | Mapping[str, bytes]) -> None:
        """Keep ``article``'s fragments (packed by :func:`~feedpub.render.fragments.pack`, or not) for later builds."""
        if not article.digest:
            return  # an article made in memory: nothing to tell its next version by
        if self._writer is None:
            self._writer = threading.Thread(target=self._write, name="feedpub-kept-fragments", daemon=True)
            self._writer.start()
        self.written += 1
        self._queue.put((article.url, article.digest, fragments))

    def _touch(self) -> None:
        with self._lock:
            self._cache.use_rendering(self.rendering)

    def _close(self) -> None:
        """Wait until everything given to :meth:`keep` or :meth:`made` is written."""
        made, self._made = self._made, {}
        for article, fragments in made.values():
            self.keep(article, fragments)
        if self._writer is not None:
            self._queue.put(None)
            self._writer.join()
            self._writer = None

    def _write(self) -> None:
        batch: list[FragmentRow] = []
        while True:
            item = self._queue.get()
            if item is not None:
                url, digest, fragments = item
                batch.append((url, digest, fragments if isinstance(fragments, bytes) else pack(fragments)))
            if batch and (item is None or len(batch) >= BATCH):
                try:
                    with self._lock:
                        self._cache.store_fragments(self.rendering, batch)
                except Exception as exc:  # never the build's failure: those entries are made again next time
                    log.warning("could not keep entry fragments in %s: %s", self._cache.path, exc)
                batch = []
            if item is None:
                return


@contextmanager
def kept_fragments(cache: ParseCache | None, rendering: bytes) -> Iterator[KeptFragments | None]:
    """The fragments kept in ``cache`` for ``rendering``: on leaving, all given to be kept are written.
    No cache (``--no-cache``, or one that cannot be used): None, and every entry is made.

    The rendering is marked used first, so what a build killed half-way wrote is
    still pruned with its rendering (see :meth:`ParseCache.use_rendering`).
    """
    if cache is None:
        yield None
        return
    kept = KeptFragments(cache, rendering)
    kept._touch()
    try:
        yield kept
    finally:
        kept._close()

"""Which stored article each article of the builder's corpus is, kept from one publish to the next.

A publish needs every article's row in the store three times: to store the new
ones, to list each live feed's members and to forget the rows no version lists.
Keyed by :func:`~feedpub.web.shared_store.article_key` (its path and digest) that
was some 300k keys made per reload at 100k articles, and the ``all`` feed's
members encoded afresh. The loader keeps an unchanged file's article as the very
same object from one load to the next, so this record is by identity: only a new
or edited article is keyed, stored and encoded again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from ..model import Article
from .shared_store import SharedStore, article_key, member_json


class StoredArticles:
    """One site's stored articles: by key, and the current corpus's by identity."""

    def __init__(self, store: SharedStore, prefix: str) -> None:
        self.store = store
        self.prefix = prefix  # of its article keys: see shared_store.article_key
        self.ids: dict[str, int] = {}  # every stored article of this site and rendering, by key
        # By id(): the article itself (held, so its id() is not another's), its row id and its member JSON.
        self._current: dict[int, tuple[Article, int, str]] = {}
        self._previous: set[int] = set()  # the rows the version before the current one lists

    def sync(self) -> None:
        """Start from what the store holds; any row may still be read by a version being served."""
        self.ids = self.store.article_ids(self.prefix)
        self._current = {}
        self._previous = set(self.ids.values())

    def id_of(self, article: Article) -> int | None:
        found = self._current.get(id(article))
        if found is not None and found[0] is article:
            return found[1]
        return self.ids.get(article_key(self.prefix, article))

    def add(self, articles: Iterable[Article], fragments: Callable[[Article], Mapping[str, bytes]]) -> None:
        """Make ``articles`` the current ones, storing (with their ``fragments``) those not stored yet."""
        current: dict[int, tuple[Article, int, str]] = {}
        new: list[tuple[str, Article]] = []
        known, ids = self._current, self.ids
        for article in articles:
            found = known.get(id(article))
            if found is not None and found[0] is article:
                current[id(article)] = found
                continue
            key = article_key(self.prefix, article)
            row = ids.get(key)
            if row is None:
                new.append((key, article))
            else:
                current[id(article)] = (article, row, member_json(row, article))
        for (key, article), row in zip(new, self.store.add_articles(new, fragments) if new else (), strict=True):
            ids[key] = row
            current[id(article)] = (article, row, member_json(row, article))
        self._current = current

    def members(self, articles: Iterable[Article]) -> str:
        """The JSON of ``articles`` (all of them current) as a feed's stored members, less the brackets."""
        current = self._current
        return ",".join([current[id(article)][2] for article in articles])

    def forget(self) -> None:
        """Drop the rows neither the current articles nor the ones before list (a reader may be on those)."""
        live = {found[1] for found in self._current.values()}
        previous = self._previous
        stale = [key for key, row in self.ids.items() if row not in live and row not in previous]
        if stale:
            self.store.forget_articles(self.ids.pop(key) for key in stale)
        self._previous = live

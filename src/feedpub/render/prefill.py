"""A large render on every core: the entries made by child processes while the feeds are assembled.

Most of a cold build's render is feedgen building each entry's elements, once per article and
format (:mod:`feedpub.render.fragments`), on one core while the others idle. Once the feeds to
render are known, :func:`made_on_every_core` forks as the parse pool does, and the children make
the fragments of those entries, a share each, with the same code and settings: the same bytes.
The render keeps them as if it had made them, and meanwhile goes on with the feeds in its own
order: the entries are handed out in the order the feeds first list them, so a feed waits only
for its own entries, and its bytes go to the tree writer while the children make the next ones.
Whatever a child cannot make is made by the render itself, which reports it as it always does.
A render of a few thousand entries (an incremental build) is not worth a fork; neither is a
process with other threads (a server's reload thread: a fork copies their locks, not them),
which renders everything itself.

With fragments kept across builds (:mod:`feedpub.render.kept`), the entries found kept are
handed out packed, and the children unpack them instead of making them; what they make they
also pack, to be kept. Unpacking costs a tenth of making, so a render with fewer than
:data:`MIN_ARTICLES` entries to make does not fork for them: it unpacks them itself.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import get_all_start_methods, get_context
from types import TracebackType
from typing import TYPE_CHECKING

from ..catalog.feeds import Feed
from ..model import Article
from .common import SiteContext
from .fragments import pack, unpack

if TYPE_CHECKING:
    from .formats import Format
    from .kept import KeptFragments

log = logging.getLogger(__name__)

# One entry's fragments: the format asked for, and any other made along with it (RSS and Atom share one entry).
EntryMaker = Callable[[Article, SiteContext], Mapping[str, bytes]]
# A feed to render, its formats, and the bodies a memo has of them (those formats are not rendered).
Planned = Sequence[tuple[Feed, Sequence["Format"], Mapping[str, bytes | None] | None]]
# Each article to make, the formats to make it in, and its fragments kept by an earlier build (packed), if any.
Needs = list[tuple[Article, tuple[str, ...], bytes | None]]
Made = tuple[dict[str, bytes], bytes | None]  # an article's fragments, and packed when any were made (to keep)
MIN_ARTICLES = 2000  # fewer articles to make are made by the render itself (a fork and its results cost ~0.1 s)
UNPACKED_PER_MADE = 10  # unpacking kept fragments costs about a tenth of making them
CHUNK = 200  # articles per task: results arrive steadily, and no child idles long at the end

# The children's work, set before they fork: they inherit it instead of having it pickled.
_work: tuple[SiteContext, Needs, Mapping[str, EntryMaker], bool] | None = None


def can_fork() -> bool:
    """Whether a fork is safe here: it exists, and no other thread could hold a lock the child inherits."""
    return "fork" in get_all_start_methods() and threading.active_count() == 1


class Entries:
    """The entries children make for a render: :meth:`ready` before rendering each planned feed.

    A context manager: leaving it (the render done, or failed) stops the children.
    """

    def __init__(self, ctx: SiteContext, needs: Needs, ready: Sequence[int], makers: Mapping[str, EntryMaker],
                 workers: int, kept: KeptFragments | None = None) -> None:
        self.ctx, self.needs, self._ready, self._kept = ctx, needs, ready, kept
        self.made = 0  # articles of ``needs`` the children made or unpacked so far
        self._pool: ProcessPoolExecutor | None = None
        self._running: deque[Future[list[Made]]] = deque()
        to_make = sum(1 for _, _, packed in needs if packed is None)
        if workers < 2 or to_make + (len(needs) - to_make) // UNPACKED_PER_MADE < MIN_ARTICLES:
            self._unpack_rest()
            return
        global _work
        _work = (ctx, needs, makers, kept is not None)
        try:
            self._pool = ProcessPoolExecutor(workers, mp_context=get_context("fork"))
            self._running.extend(self._pool.submit(_make, start) for start in range(0, len(needs), CHUNK))
        except Exception as exc:  # no fork to be had (out of memory, a process limit): the render makes them
            log.warning("entries rendered in one process (%s: %s)", type(exc).__name__, exc)
            self._stop()
            self._unpack_rest()

    def __enter__(self) -> Entries:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._stop()

    def ready(self, job: int) -> None:
        """Wait until the children's fragments of every entry of planned feed ``job`` are kept."""
        if not self._running:
            return  # all kept, or no children: the render makes what it lacks
        while self.made < self._ready[job] and self._running:
            try:
                made = self._running.popleft().result()
            except Exception as exc:  # a child killed (out of memory): the render makes the rest itself
                log.warning("entries rendered in one process (%s: %s)", type(exc).__name__, exc)
                self._stop()
                self._unpack_rest()
                return
            for at, (fragments, packed) in enumerate(made, self.made):
                article, names, _ = self.needs[at]
                self.needs[at] = (article, names, None)  # what was kept of it is unpacked now: let it go
                if fragments:
                    self.ctx.fragments.seed(article, fragments)
                if packed is not None and self._kept is not None:
                    self._kept.keep(article, packed)
            self.made += len(made)
        if not self._running:
            self._stop()

    def _unpack_rest(self) -> None:
        """No children (any more): keep the fragments found kept; the render makes the rest as it goes."""
        for article, _, packed in self.needs[self.made:]:
            if packed is not None:
                self.ctx.fragments.seed(article, _unpacked(packed))

    def _stop(self) -> None:
        global _work
        self._running.clear()
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
        _work = None


def made_on_every_core(ctx: SiteContext, planned: Planned, workers: int,
                       kept: KeptFragments | None = None) -> Entries:
    """The entries of the feeds ``planned`` to render (those a memo lacks), made by ``workers`` children,
    or unpacked from those ``kept`` by earlier builds."""
    if workers > 1 and not can_fork():
        workers = 1
    if workers < 2 and kept is None:
        return Entries(ctx, [], (), {}, workers)  # not even listed: a server's builder renders on every reload
    makers = {fmt.name: fmt.entry for _, formats, _ in planned for fmt in formats if fmt.entry is not None}
    needs, ready = _entries_to_make(planned, ctx, kept)
    return Entries(ctx, needs, ready, makers, workers, kept)


def _entries_to_make(planned: Planned, ctx: SiteContext, kept: KeptFragments | None) -> tuple[Needs, list[int]]:
    """Each article the feeds to render list, in the order they first list it, with the formats to make it in
    (less those already in memory) and what ``kept`` has of it; and for each planned feed, how many of those
    articles it waits for."""
    wanted: dict[tuple[str, str], tuple[Article, set[str]]] = {}
    seen: list[int] = []  # per planned feed: articles listed up to and including it
    for feed, output_formats, known in planned:
        names = {fmt.name for fmt in output_formats
                 if fmt.entry is not None and (known is None or fmt.name not in known)}
        for article in feed.entries if names else ():
            key = (article.url, article.digest)
            found = wanted.get(key)
            if found is None:
                wanted[key] = (article, set(names))
            else:
                found[1].update(names)
        seen.append(len(wanted))
    missing: list[tuple[Article, tuple[str, ...]]] = []
    kept_before = [0]  # kept_before[i]: how many of the first i articles are made (not in memory already)
    for article, names in wanted.values():
        lacking = names - ctx.fragments.kept(article).keys()  # the server's builder has most in its store
        if lacking:
            missing.append((article, tuple(sorted(lacking))))
        kept_before.append(len(missing))
    stored = kept.find([article for article, _ in missing]) if kept is not None else {}
    needs = [(article, names, stored.get((article.url, article.digest))) for article, names in missing]
    return needs, [kept_before[count] for count in seen]


def _make(start: int) -> list[Made]:
    """In a child: the fragments of the articles ``start`` to ``start + CHUNK`` of the work, as far as they go,
    unpacked where an earlier build kept them; packed too where any were made and fragments are kept."""
    assert _work is not None
    ctx, needs, makers, keeping = _work
    out: list[Made] = []
    for article, names, packed in needs[start:start + CHUNK]:
        made = _unpacked(packed)
        fresh = False
        for name in names:
            if name not in made:
                try:
                    made.update(makers[name](article, ctx))
                except Exception:  # the render meets it again, in the process that reports it
                    continue
                fresh = True
        out.append((made, pack(made) if fresh and keeping else None))
    return out


def _unpacked(packed: bytes | None) -> dict[str, bytes]:
    """Fragments kept by an earlier build; none if it kept none, or the row is damaged (they are made anew)."""
    try:
        return unpack(packed) if packed is not None else {}
    except ValueError:
        return {}

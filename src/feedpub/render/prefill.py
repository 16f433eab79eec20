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

if TYPE_CHECKING:
    from .formats import Format

log = logging.getLogger(__name__)

# One entry's fragments: the format asked for, and any other made along with it (RSS and Atom share one entry).
EntryMaker = Callable[[Article, SiteContext], Mapping[str, bytes]]
# A feed to render, its formats, and the bodies a memo has of them (those formats are not rendered).
Planned = Sequence[tuple[Feed, Sequence["Format"], Mapping[str, bytes | None] | None]]
Needs = Sequence[tuple[Article, tuple[str, ...]]]  # each article to make, with the formats to make it in
MIN_ARTICLES = 2000  # fewer articles to make are made by the render itself (a fork and its results cost ~0.1 s)
CHUNK = 200  # articles per task: results arrive steadily, and no child idles long at the end

# The children's work, set before they fork: they inherit it instead of having it pickled.
_work: tuple[SiteContext, Needs, Mapping[str, EntryMaker]] | None = None


def can_fork() -> bool:
    """Whether a fork is safe here: it exists, and no other thread could hold a lock the child inherits."""
    return "fork" in get_all_start_methods() and threading.active_count() == 1


class Entries:
    """The entries children make for a render: :meth:`ready` before rendering each planned feed.

    A context manager: leaving it (the render done, or failed) stops the children.
    """

    def __init__(self, ctx: SiteContext, needs: Needs, ready: Sequence[int], makers: Mapping[str, EntryMaker],
                 workers: int) -> None:
        self.ctx, self.needs, self._ready = ctx, needs, ready
        self.made = 0  # articles of ``needs`` kept so far
        self._pool: ProcessPoolExecutor | None = None
        self._running: deque[Future[list[dict[str, bytes]]]] = deque()
        if len(needs) < MIN_ARTICLES:
            return
        global _work
        _work = (ctx, needs, makers)
        try:
            self._pool = ProcessPoolExecutor(workers, mp_context=get_context("fork"))
            self._running.extend(self._pool.submit(_make, start) for start in range(0, len(needs), CHUNK))
        except Exception as exc:  # no fork to be had (out of memory, a process limit): the render makes them
            log.warning("entries rendered in one process (%s: %s)", type(exc).__name__, exc)
            self._stop()

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
                return
            for (article, _), fragments in zip(self.needs[self.made:self.made + len(made)], made, strict=True):
                if fragments:
                    self.ctx.fragments.seed(article, fragments)
            self.made += len(made)
        if not self._running:
            self._stop()

    def _stop(self) -> None:
        global _work
        self._running.clear()
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
        _work = None


def made_on_every_core(ctx: SiteContext, planned: Planned, workers: int) -> Entries:
    """The entries of the feeds ``planned`` to render (those a memo lacks), made by ``workers`` children."""
    if workers < 2 or not can_fork():
        return Entries(ctx, (), (), {}, workers)  # not even listed: a server's builder renders on every reload
    makers = {fmt.name: fmt.entry for _, formats, _ in planned for fmt in formats if fmt.entry is not None}
    needs, ready = _entries_to_make(planned, ctx)
    return Entries(ctx, needs, ready, makers, workers)


def _entries_to_make(planned: Planned, ctx: SiteContext) -> tuple[Needs, list[int]]:
    """Each article the feeds to render list, in the order they first list it, with the formats to make it in
    (less those already kept); and for each planned feed, how many of those articles it waits for."""
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
    needs: list[tuple[Article, tuple[str, ...]]] = []
    kept_before = [0]  # kept_before[i]: how many of the first i articles are made (not kept already)
    for article, names in wanted.values():
        missing = names - ctx.fragments.kept(article).keys()  # the server's builder has most in its store
        if missing:
            needs.append((article, tuple(sorted(missing))))
        kept_before.append(len(needs))
    return needs, [kept_before[count] for count in seen]


def _make(start: int) -> list[dict[str, bytes]]:
    """In a child: the fragments of the articles ``start`` to ``start + CHUNK`` of the work, as far as they go."""
    assert _work is not None
    ctx, needs, makers = _work
    out: list[dict[str, bytes]] = []
    for article, names in needs[start:start + CHUNK]:
        made: dict[str, bytes] = {}
        for name in names:
            if name not in made:
                try:
                    made.update(makers[name](article, ctx))
                except Exception:  # the render meets it again, in the process that reports it
                    continue
        out.append(made)
    return out

"""A large render on every core: entry fragments first, then the feeds made of them.

Most of a cold build's render is feedgen building each entry's elements, once per article and
format (:mod:`feedpub.render.fragments`), then each feed's head with its entries spliced in, on
one core while the others idle. Once the feeds to render are known, :func:`prefill` forks as the
parse pool does: each child makes the fragments of a share of those entries with the same code
and settings, so the same bytes, and they are kept as if the render had made them. Then
:func:`rendered_elsewhere` forks again (the children now inherit every fragment) and each child
renders a share of the feeds, in the order the render takes them; the render stores each body
as its own. Whatever a child cannot make is made by the render itself, which reports it as it
always does. A render of a few thousand entries (an incremental build) is not worth a fork;
neither is a process with other threads (a server's reload thread: a fork copies their locks,
not them), which renders everything itself.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import get_all_start_methods, get_context
from typing import TYPE_CHECKING

from ..catalog.feeds import Feed
from ..model import Article
from .common import Draft, SiteContext

if TYPE_CHECKING:
    from .formats import Format

log = logging.getLogger(__name__)

# One entry's fragments: the format asked for, and any other made along with it (RSS and Atom share one entry).
EntryMaker = Callable[[Article, SiteContext], Mapping[str, bytes]]
MIN_ARTICLES = 2000  # fewer articles to make are rendered where they are (a fork and its results cost ~0.1 s)
CHUNK = 200  # articles per task: results arrive steadily, and no child idles long at the end
MIN_OUTPUTS = 500  # fewer feeds to render are rendered where they are
FEED_CHUNK = 20  # feeds per task
AHEAD = 4  # tasks per child under way: the bodies waiting for the render to store them stay few

# The work of the children, set before they fork: they inherit it instead of having it pickled.
_work: tuple[SiteContext, Sequence[tuple[Article, tuple[str, ...]]], Mapping[str, EntryMaker]] | None = None
_feeds: tuple[SiteContext, Sequence[tuple[Feed, Sequence[Format]]]] | None = None


def can_fork() -> bool:
    """Whether a fork is safe here: it exists, and no other thread could hold a lock the child inherits."""
    return "fork" in get_all_start_methods() and threading.active_count() == 1


Planned = Sequence[tuple[Feed, Sequence["Format"], Mapping[str, bytes | None] | None]]


def on_every_core(ctx: SiteContext, planned: Planned, workers: int) -> Iterator[dict[str, bytes]]:
    """For each planned job (a feed, its formats, and the bodies the memo has), the bodies children rendered:
    the entries of what is to render made first (:func:`prefill`), then the feeds (:func:`rendered_elsewhere`)."""
    makers = {fmt.name: fmt.entry for _, formats, _ in planned for fmt in formats if fmt.entry is not None}
    prefill(ctx, entries_to_make(planned, ctx), makers, workers)
    to_render = [(feed, [fmt for fmt in formats if known is None or fmt.name not in known])
                 for feed, formats, known in planned]
    return rendered_elsewhere(ctx, to_render, workers)


def entries_to_make(planned: Planned, ctx: SiteContext) -> list[tuple[Article, tuple[str, ...]]]:
    """Each article the feeds to render list, with the formats whose fragments of it are to be made."""
    wanted: dict[tuple[str, str], tuple[Article, set[str]]] = {}
    for feed, output_formats, known in planned:
        names = {fmt.name for fmt in output_formats
                 if fmt.entry is not None and (known is None or fmt.name not in known)}
        if not names:
            continue
        for article in feed.entries:
            key = (article.url, article.digest)
            found = wanted.get(key)
            if found is None:
                wanted[key] = (article, set(names))
            else:
                found[1].update(names)
    needs = []
    for article, names in wanted.values():
        missing = names - ctx.fragments.kept(article).keys()  # the server's builder has most in its store
        if missing:
            needs.append((article, tuple(sorted(missing))))
    return needs


def prefill(ctx: SiteContext, needs: Sequence[tuple[Article, tuple[str, ...]]], makers: Mapping[str, EntryMaker],
            workers: int) -> int:
    """Make the fragments ``needs`` names (each article with its formats) in ``workers`` child processes and
    keep them in ``ctx.fragments``; the number of articles made there (0: the render makes them all).

    A fragment a child cannot make is left for the render, which makes it again and reports its
    article as it always does; a child that dies costs only the time (the render makes the rest).
    """
    if workers < 2 or len(needs) < MIN_ARTICLES or not can_fork():
        return 0
    global _work
    _work = (ctx, needs, makers)
    done = 0
    try:
        with ProcessPoolExecutor(workers, mp_context=get_context("fork")) as pool:
            starts = range(0, len(needs), CHUNK)
            for start, made in zip(starts, pool.map(_make, starts), strict=True):
                for (article, _), fragments in zip(needs[start:start + CHUNK], made, strict=True):
                    if fragments:
                        ctx.fragments.seed(article, fragments)
                done += len(made)
    except Exception as exc:  # a child killed (out of memory), a pool that cannot start: render them here
        log.warning("entries rendered in one process (%s: %s)", type(exc).__name__, exc)
    finally:
        _work = None
    return done


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


def rendered_elsewhere(ctx: SiteContext, jobs: Sequence[tuple[Feed, Sequence[Format]]], workers: int
                       ) -> Iterator[dict[str, bytes]]:
    """For each job in order (a feed and the formats to render it in), the bodies child processes rendered,
    by format name; a format left out (or every one, when forking does not pay) is for the caller to render."""
    todo = [i for i, (_, formats) in enumerate(jobs) if formats]
    if workers < 2 or sum(len(jobs[i][1]) for i in todo) < MIN_OUTPUTS or not can_fork():
        yield from ({} for _ in jobs)
        return
    global _feeds
    _feeds = (ctx, jobs)
    chunks = deque(todo[i:i + FEED_CHUNK] for i in range(0, len(todo), FEED_CHUNK))
    position = 0
    try:
        with ProcessPoolExecutor(workers, mp_context=get_context("fork")) as pool:
            running: deque[tuple[list[int], Future[list[dict[str, bytes]]]]] = deque()
            while chunks or running:
                while chunks and len(running) < AHEAD * workers:
                    chunk = chunks.popleft()
                    running.append((chunk, pool.submit(_render, chunk)))
                chunk, future = running.popleft()
                try:
                    made = future.result()
                except Exception as exc:  # a child killed (out of memory): this process renders the rest
                    log.warning("feeds rendered in one process (%s: %s)", type(exc).__name__, exc)
                    pool.shutdown(cancel_futures=True)
                    break
                for index, bodies in zip(chunk, made, strict=True):
                    while position < index:
                        yield {}
                        position += 1
                    yield bodies
                    position += 1
    finally:
        _feeds = None
    while position < len(jobs):
        yield {}
        position += 1


def _render(chunk: list[int]) -> list[dict[str, bytes]]:
    """In a child: the bodies of the jobs ``chunk`` names, each format as far as it renders."""
    assert _feeds is not None
    ctx, jobs = _feeds
    out: list[dict[str, bytes]] = []
    for index in chunk:
        feed, formats = jobs[index]
        draft = Draft(feed, ctx)
        bodies: dict[str, bytes] = {}
        for fmt in formats:
            try:
                bodies[fmt.name] = fmt.render(draft, fmt)
            except Exception:  # the render meets it again, and names the entries to blame
                continue
        out.append(bodies)
    return out

"""RFC 5005 archived feeds: every entry of a topic or provider, one page per month.

Only a feed with more published articles than its live document holds is
archived; a complete feed (:attr:`Feed.complete`, ``fh:complete``) already
carries its whole history and gets no archive pages and no archive links.
An archived feed's live document keeps the newest entries and links
``prev-archive`` to the newest finished month; each month's page is marked
``fh:archive`` and chained with ``prev-archive`` / ``next-archive``, so a
reader can walk the whole history. A month is finished once the corpus has
a newer one (never the clock, so builds stay deterministic).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime

from ..model import Article, same_articles
from .feeds import Feed, FeedKind, FeedSpec, trim


def month_name(year: int, month: int) -> str:
    """``YYYY-MM``, as ``strftime("%Y-%m")`` writes it."""
    return f"{year:04d}-{month:02d}"


def archive_path(feed: Feed, month: str) -> str:
    return f"{feed.spec.path}/archive/{month}"


# By live feed path, what an earlier render made of it: its spec and members then, and its pages oldest first.
Earlier = Mapping[str, tuple[FeedSpec, tuple[Article, ...], tuple[Feed, ...]]]


def with_archives(feeds: tuple[Feed, ...], newest: datetime,
                  earlier: Earlier | None = None) -> tuple[tuple[Feed, ...], tuple[Feed, ...]]:
    """The live feeds linked to their newest archive page, and every archive page (none for a complete feed).

    A feed whose spec and members (the very same objects) are those ``earlier`` (see
    :func:`earlier_pages`) saw gets the same page objects again: an edit touches the
    months of a few feeds, and at 100k articles grouping them all by month took most of a reload.
    """
    current = (newest.year, newest.month)
    live: list[Feed] = []
    archives: list[Feed] = []
    for feed in feeds:
        if feed.complete or feed.spec.kind is FeedKind.ALL:
            live.append(feed)
            continue
        known = earlier.get(feed.spec.path) if earlier is not None else None
        if known is not None and known[0] == feed.spec and same_articles(known[1], feed.members):
            pages: Sequence[Feed] = known[2]
        else:
            pages = _pages(feed, newest, current)
        archives.extend(reversed(pages))
        live.append(dataclasses.replace(feed, prev_archive=pages[-1].spec.path) if pages else feed)
    return tuple(live), tuple(archives)


def earlier_pages(live: tuple[Feed, ...], archives: tuple[Feed, ...], newest: datetime,
                  now_newest: datetime) -> Earlier:
    """What :func:`with_archives` made of ``live`` (its result, with ``newest``) for a render whose newest
    article is ``now_newest``: nothing if the newest month changed (another month is finished then)."""
    if (newest.year, newest.month) != (now_newest.year, now_newest.month):
        return {}
    pages: dict[str, list[Feed]] = {}
    for page in archives:
        if page.current is not None:
            pages.setdefault(page.current, []).append(page)
    return {feed.spec.path: (feed.spec, feed.members, tuple(reversed(pages.get(feed.spec.path, ()))))
            for feed in live if not feed.complete and feed.spec.kind is not FeedKind.ALL}


def _pages(feed: Feed, newest: datetime, current: tuple[int, int]) -> list[Feed]:
    """A feed's archive pages, oldest first: one per month before ``current``."""
    by_month = _by_month(feed.members)
    keys = sorted(key for key in by_month if key < current)  # the current month is not archived yet
    months = [month_name(*key) for key in keys]
    grouped = [by_month[key] for key in keys]
    spec, paths = feed.spec, [archive_path(feed, month) for month in months]
    pages = []
    for index, month in enumerate(months):
        page = FeedSpec(spec.kind, spec.key, spec.name, spec.slug, paths[index], spec.logo, month)
        pages.append(trim(
            page, tuple(grouped[index]), None, newest,  # a month is never empty: newest is not used
            prev_archive=paths[index - 1] if index else None,
            next_archive=paths[index + 1] if index + 1 < len(months) else None,
            current=spec.path,
        ))
    return pages


def _by_month(members: tuple[Article, ...]) -> dict[tuple[int, int], list[Article]]:
    """Articles by (year, month) of publication.

    Every article of the site passes here once per feed it is in, so the loop
    only compares month and year: members are newest first, so a month's articles
    are consecutive, and a group is looked up only when a date leaves the last one's
    month. (No month boundary is computed: December 9999 has no next month.)
    """
    groups: dict[tuple[int, int], list[Article]] = {}
    year = month = 0
    group: list[Article] = []
    for article in members:
        moment = article.published_at
        if moment.month != month or moment.year != year:
            year, month = moment.year, moment.month
            group = groups.setdefault((year, month), [])
        group.append(article)
    return groups

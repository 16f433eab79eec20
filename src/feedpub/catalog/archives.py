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
from datetime import datetime

from ..model import Article
from .feeds import Feed, FeedKind, FeedSpec, trim


def month_name(year: int, month: int) -> str:
    """``YYYY-MM``, as ``strftime("%Y-%m")`` writes it."""
    return f"{year:04d}-{month:02d}"


def archive_path(feed: Feed, month: str) -> str:
    return f"{feed.spec.path}/archive/{month}"


def with_archives(feeds: tuple[Feed, ...], newest: datetime) -> tuple[tuple[Feed, ...], tuple[Feed, ...]]:
    """The live feeds linked to their newest archive page, and every archive page (none for a complete feed)."""
    current = (newest.year, newest.month)
    live: list[Feed] = []
    archives: list[Feed] = []
    for feed in feeds:
        if feed.complete or feed.spec.kind is FeedKind.ALL:
            live.append(feed)
            continue
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
        archives.extend(reversed(pages))
        live.append(dataclasses.replace(feed, prev_archive=pages[-1].spec.path) if pages else feed)
    return tuple(live), tuple(archives)


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

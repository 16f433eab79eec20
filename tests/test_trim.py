"""catalog.feeds.trim: the one place a feed keeps its newest entries and takes its date.

The live feeds (plan), their monthly archive pages and the server's filtered feeds are all
made by it; these tests check it directly and then that each of the three agrees with it.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from feedpub.catalog.archives import with_archives
from feedpub.catalog.feeds import FeedKind, FeedSpec, plan, trim
from feedpub.ingest.loader import load
from feedpub.model import Corpus
from feedpub.settings import Settings
from feedpub.web.filters import parse_filters

from .readers_support import FIXTURE_CORPUS

SPEC = FeedSpec(FeedKind.TOPIC, "AI", "AI", "ai", "ai")
LONG_AGO = datetime(2001, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    corpus = load(FIXTURE_CORPUS, Settings().max_file_bytes)
    assert len(corpus.articles) > 3 and corpus.articles[0].published_at != LONG_AGO
    return corpus


def test_trim_keeps_the_newest_entries_and_every_member(corpus: Corpus) -> None:
    members = corpus.articles
    feed = trim(SPEC, members, 3, LONG_AGO)
    assert feed.entries == members[:3] and feed.members == members
    assert feed.updated == members[0].published_at
    assert trim(SPEC, members, None, LONG_AGO).entries == members


def test_an_empty_feed_takes_the_date_it_is_given() -> None:
    feed = trim(SPEC, (), 5, LONG_AGO)
    assert feed.entries == () and feed.updated == LONG_AGO


def test_trim_carries_the_archive_links() -> None:
    feed = trim(SPEC, (), None, LONG_AGO, prev_archive="ai/archive/2020-12", next_archive=None, current="ai")
    assert (feed.prev_archive, feed.next_archive, feed.current) == ("ai/archive/2020-12", None, "ai")


@pytest.mark.parametrize("max_items", [1, 2, 50])
def test_live_feeds_are_their_members_trimmed(corpus: Corpus, max_items: int) -> None:
    feeds, _notes = plan(corpus, max_items)
    for feed in feeds:
        # Only the catalog says a feed is complete: when every member fits in the live document.
        assert feed.complete == (len(feed.members) <= max_items)
        assert dataclasses.replace(feed, complete=False) == trim(feed.spec, feed.members, max_items, corpus.newest)
    assert {feed.complete for feed in feeds} == ({True, False} if max_items < 50 else {True})


def test_archive_pages_hold_their_whole_month(corpus: Corpus) -> None:
    _live, pages = with_archives(plan(corpus, 1)[0], corpus.newest)
    assert pages
    for page in pages:
        assert len(page.entries) == len(page.members) >= 1
        assert page == trim(page.spec, page.members, None, LONG_AGO, prev_archive=page.prev_archive,
                            next_archive=page.next_archive, current=page.current)


@pytest.mark.parametrize("query", [{}, {"limit": "1"}, {"limit": "2", "type": "article"}, {"min_quality": "999999"}])
def test_filtered_feeds_are_their_filtered_members_trimmed(corpus: Corpus, query: dict[str, str]) -> None:
    max_items = 2
    filters = parse_filters(query, max_items)
    for feed in plan(corpus, max_items)[0]:
        subset = filters.apply(feed, max_items)
        assert subset.entries == subset.members[: filters.limit or max_items]
        assert subset.updated == (subset.entries[0].published_at if subset.entries else feed.updated)
        assert set(subset.members) <= set(feed.members)

"""Which feeds exist, where they live, and which entries each holds.

A feed is data (a :class:`FeedSpec`: kind, key, name, slug, path); one generic
renderer per format turns any feed into bytes. Every topic and provider named
by any article gets a feed, so subscriptions never start failing.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum

from slugify import slugify

from ..model import Article, Corpus, Image

RESERVED_SLUGS = frozenset({"all", "index", "providers", "topics"})
MAX_SLUG = 80


class FeedKind(str, Enum):
    ALL = "all"
    TOPIC = "topic"
    PROVIDER = "provider"


@dataclass(frozen=True, slots=True)
class FeedSpec:
    """Identity and place of one feed; ``path`` is relative to ``/feeds/``, without suffix."""

    kind: FeedKind
    key: str
    name: str
    slug: str
    path: str
    logo: Image | None = None
    archive: str | None = None  # "YYYY-MM" for an RFC 5005 archive page


@dataclass(frozen=True, slots=True)
class Feed:
    """A feed with its entries (newest first, at most ``max_items``).

    ``members`` holds every published article of the feed, newest first, for
    queries that filter before trimming (the server's ``?type=`` and friends).
    ``complete`` says the document holds the feed's whole history (RFC 5005
    ``fh:complete``); only the catalog may say so, never a trimmed or filtered view.
    """

    spec: FeedSpec
    entries: tuple[Article, ...]
    updated: datetime
    members: tuple[Article, ...] = field(default=(), compare=False, repr=False)
    prev_archive: str | None = None  # paths of the neighbouring archive pages (RFC 5005)
    next_archive: str | None = None
    current: str | None = None  # for an archive page: the live feed's path
    complete: bool = False


def trim(spec: FeedSpec, members: tuple[Article, ...], limit: int | None, updated_if_empty: datetime, *,
         prev_archive: str | None = None, next_archive: str | None = None, current: str | None = None) -> Feed:
    """The feed of the newest ``limit`` of ``members`` (newest first; ``None``: all of them).

    A feed is as recent as its newest entry; one without entries takes ``updated_if_empty``.
    The live feeds, their archive pages and the server's filtered feeds are all made here.
    """
    entries = members[:limit]
    updated = entries[0].published_at if entries else updated_if_empty
    return Feed(spec, entries, updated, members, prev_archive, next_archive, current)


def topic_slugs(topics: list[str] | tuple[str, ...]) -> tuple[dict[str, str], list[str]]:
    """Map each topic name to a unique slug, never a reserved one; return notes on collisions.

    Topics are taken in sorted order and the first keeps the plain slug, so a
    topic's URL does not change when an unrelated topic appears.
    """
    slugs: dict[str, str] = {}
    taken: dict[str, str] = {}
    notes = []
    for name in sorted(topics):
        base = slugify(name, max_length=MAX_SLUG) or "topic"
        slug = base
        if slug in RESERVED_SLUGS or slug in taken:
            digest = hashlib.sha1(name.encode()).hexdigest()[:6]
            slug, n = f"{base}-{digest}", 2
            while slug in taken:  # another topic may already own the hashed slug
                slug, n = f"{base}-{digest}-{n}", n + 1
            owner = f"topic {taken[base]!r}" if base in taken else "a reserved name"
            notes.append(f"topic {name!r}: slug {base!r} is taken by {owner}; its feeds are at {slug}.*")
        taken[slug] = name
        slugs[name] = slug
    return slugs, notes


def plan(corpus: Corpus, max_items: int) -> tuple[tuple[Feed, ...], tuple[str, ...]]:
    """Every feed of the site in index order: all, topics by slug, providers by domain."""
    by_topic: dict[str, list[Article]] = defaultdict(list)
    by_provider: dict[str, list[Article]] = defaultdict(list)
    for article in corpus.articles:
        for topic in article.topics:
            by_topic[topic].append(article)
        by_provider[article.provider.domain].append(article)

    def feed(spec: FeedSpec, members: list[Article] | tuple[Article, ...]) -> Feed:
        live = trim(spec, tuple(members), max_items, corpus.newest)
        # Every published article of the feed fits in its live document: nothing to archive.
        return replace(live, complete=True) if len(members) <= max_items else live

    feeds = [feed(FeedSpec(FeedKind.ALL, "all", "All articles", "all", "all"), corpus.articles)]
    slugs, notes = topic_slugs(corpus.topics)
    for name, slug in sorted(slugs.items(), key=lambda item: item[1]):
        feeds.append(feed(FeedSpec(FeedKind.TOPIC, name, name, slug, slug), by_topic.get(name, [])))
    for domain, provider in corpus.providers.items():
        spec = FeedSpec(FeedKind.PROVIDER, domain, provider.name, domain, f"providers/{domain}", provider.logo)
        feeds.append(feed(spec, by_provider.get(domain, [])))
    return tuple(feeds), tuple(notes)

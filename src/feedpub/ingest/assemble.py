"""Assembling per-file results into a corpus.

Removes duplicate URLs among published articles and collects every topic and
provider, so each gets a feed even when it has no published article.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..model import Article, Corpus, Problem, Provider
from .validate import ParseResult


def assemble(results: Iterable[ParseResult]) -> Corpus:
    """Combine per-file results (in path order) into a corpus."""
    results = list(results)
    problems = [p for r in results for p in r.problems]
    rejected = {r.path for r in results if r.article is None}
    everything = [r.article for r in results if r.article is not None]

    winners: dict[str, Article] = {}
    for article in everything:
        if not article.published:
            continue
        kept = winners.get(article.url)
        if kept is None:
            winners[article.url] = article
            continue
        newer, older = (article, kept) if article.published_at > kept.published_at else (kept, article)
        winners[article.url] = newer
        problems.append(
            Problem(older.path, None, "warning",
                    f"duplicate of {newer.path} (same URL {older.url}); the newer one is published")
        )

    articles = tuple(sorted(winners.values(), key=lambda a: a.sort_key))
    ranked = list(articles) + sorted((a for a in everything if not a.published), key=lambda a: a.sort_key)
    providers: dict[str, Provider] = {}
    for article in ranked:
        known = providers.get(article.provider.domain)
        if known is None:
            providers[article.provider.domain] = article.provider
        elif known.logo is None and article.provider.logo is not None:
            providers[article.provider.domain] = Provider(known.name, known.domain, article.provider.logo)
    topics = sorted({topic for article in everything for topic in article.topics})
    return Corpus(
        articles=articles,
        topics=tuple(topics),
        providers=dict(sorted(providers.items())),
        problems=tuple(problems),
        files=len(results),
        _rejected=frozenset(rejected),
    )

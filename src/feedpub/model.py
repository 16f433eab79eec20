"""The article model: typed, frozen and lean, and the corpus the articles make up.

Only what feeds, previews and filters need is kept; ``secured`` and the AMP
URLs are dropped at parse time so they can never leak into an output, and a
100k-article corpus stays small in memory.
"""

from __future__ import annotations

import functools
import json
import logging
import operator
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, Literal

log = logging.getLogger(__name__)

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    """One thing wrong with one file. ``error`` rejects the file, ``warning`` keeps it."""

    path: str
    line: int | None
    severity: Severity
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.severity}: {self.message}"


@dataclass(frozen=True, slots=True)
class Image:
    """An image; ``url`` is absolute http(s) or site-relative (``/...``)."""

    url: str
    width: int | None = None
    height: int | None = None
    title: str | None = None


@dataclass(frozen=True, slots=True)
class Provider:
    """A news provider, keyed by its normalised domain."""

    name: str
    domain: str
    logo: Image | None = None


class Kind(str, Enum):
    ARTICLE = "article"
    VIDEO = "video"


@dataclass(frozen=True, slots=True)
class Related:
    """Related coverage of an article, embedded in its entry (only what entries show)."""

    title: str
    url: str
    published_at: datetime | None
    provider: Provider | None


@dataclass(frozen=True, slots=True, eq=False)
class Coverage:
    """An article's related items, held packed (UTF-8 JSON) and unpacked only when an entry is rendered.

    Packed, they take half the memory of objects (memory per worker, benchmarks/RESULTS.md).
    Compares equal to another Coverage or to a tuple holding the same items.
    """

    packed: bytes = b""

    @classmethod
    def of(cls, items: Iterable[Related]) -> Coverage:
        rows = [[r.title, r.url, micros(r.published_at), provider_fields(r.provider)] for r in items]
        return cls(json.dumps(rows, ensure_ascii=False, separators=(",", ":")).encode("utf-8")) if rows else NO_COVERAGE

    def items(self) -> tuple[Related, ...]:
        if not self.packed:
            return ()
        try:
            return _unpack(self.packed)
        except (TypeError, ValueError) as exc:  # only a damaged parse cache can get here: lose the items, not the feed
            log.error("related items left out, their cached form is damaged (%s): %.80r", exc, self.packed)
            return ()

    def __iter__(self) -> Iterator[Related]:
        return iter(self.items())

    def __len__(self) -> int:
        return len(self.items())

    def __getitem__(self, index: int) -> Related:
        return self.items()[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Coverage):
            return self.packed == other.packed
        if isinstance(other, tuple):
            return self.items() == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.packed)


NO_COVERAGE = Coverage()


@functools.lru_cache(maxsize=1024)
def _unpack(packed: bytes) -> tuple[Related, ...]:
    # A feed's formats are rendered one after another from the same entries: unpack each once.
    items = json.loads(packed.decode("utf-8"))
    if type(items) is not list:
        raise TypeError("expected a list")
    return tuple([related_from_fields(fields) for fields in items])


# The packed forms of times, images and providers, shared by Coverage and the parse cache's codec.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def micros(moment: datetime | None) -> int | None:
    return None if moment is None else (moment - EPOCH) // MICROSECOND


def moment_from(value: Any) -> datetime:
    if type(value) is not int:
        raise TypeError("expected a timestamp")
    return EPOCH + value * MICROSECOND


def image_fields(image: Image | None) -> list[Any] | None:
    return None if image is None else [image.url, image.width, image.height, image.title]


def image_from(fields: list[Any]) -> Image:
    url, width, height, title = fields
    if type(url) is not str:
        raise TypeError("expected text")
    return Image(url, width, height, title)


def provider_fields(provider: Provider | None) -> list[Any] | None:
    return None if provider is None else [provider.name, provider.domain, image_fields(provider.logo)]


def provider_from(fields: list[Any]) -> Provider:
    name, domain, logo = fields
    if type(name) is not str or type(domain) is not str:
        raise TypeError("expected text")
    return Provider(name, domain, image_from(logo) if logo else None)


def related_from_fields(fields: list[Any]) -> Related:
    """One packed related item back as an object; wrong shapes raise TypeError or ValueError."""
    title, url, moment, provider = fields
    if type(title) is not str or type(url) is not str:
        raise TypeError("expected text")
    if provider is not None:
        name, domain, logo = provider
        provider = _plain_provider(name, domain) if logo is None else provider_from(provider)
    return Related(title, url, None if moment is None else moment_from(moment), provider)


@functools.lru_cache(maxsize=4096)
def _plain_provider(name: Any, domain: Any) -> Provider:
    # Related items name a few thousand providers over and over.
    return provider_from([name, domain, None])


@dataclass(frozen=True, slots=True)
class Article:
    """One article file. Unpublished ones are kept so their topics and providers still get feeds."""

    path: str
    url: str
    title: str
    published_at: datetime
    provider: Provider
    published: bool = True
    excerpt: str = ""
    kind: Kind = Kind.ARTICLE
    topics: tuple[str, ...] = ()
    images: tuple[Image, ...] = ()
    featured_html: str = ""
    related: Coverage = NO_COVERAGE
    original_url: str | None = None
    quality: int | None = None
    digest: str = ""  # of the source file: a cheap identity for "did this entry change?"

    @property
    def image(self) -> Image | None:
        """The lead image."""
        return self.images[0] if self.images else None

    @property
    def sort_key(self) -> tuple[float, str]:
        """Newest first, then canonical URL ascending."""
        return (-self.published_at.timestamp(), self.url)


@dataclass(frozen=True)
class Corpus:
    """The published articles of a seeds directory, and what was wrong with the rest."""

    articles: tuple[Article, ...]
    topics: tuple[str, ...]
    providers: Mapping[str, Provider]
    problems: tuple[Problem, ...] = ()
    files: int = 0
    _rejected: frozenset[str] = field(default=frozenset(), repr=False)

    @property
    def rejected(self) -> int:
        """How many files could not be published at all."""
        return len(self._rejected)

    @property
    def newest(self) -> datetime:
        """Date of the newest published article: the stand-in for "now" in empty feeds."""
        return self.articles[0].published_at if self.articles else EPOCH


def same_articles(before: tuple[Article, ...], now: tuple[Article, ...]) -> bool:
    """The very same article objects, in order: a reload hands back an unchanged article as itself,
    so what was made of ``before`` (archive pages, stored member data) still holds for ``now``."""
    return len(before) == len(now) and all(map(operator.is_, before, now))


def without(corpus: Corpus, dropped: Mapping[str, str]) -> Corpus:
    """``corpus`` less the articles at the paths in ``dropped``, each with its reason as an error."""
    problems = [Problem(path, None, "error", reason) for path, reason in sorted(dropped.items())]
    return replace(corpus, articles=tuple(a for a in corpus.articles if a.path not in dropped),
                   problems=(*corpus.problems, *problems), _rejected=corpus._rejected | dropped.keys())


def printable(text: str) -> str:
    """``text`` with undecodable bytes (surrogates) and unprintable characters escaped as Python writes them."""
    if text.isprintable():
        return text
    return "".join(map(_printable_char, text))


def _printable_char(char: str) -> str:
    if char.isprintable():
        return char
    if "\udc80" <= char <= "\udcff":  # a byte os.fsdecode could not decode
        return f"\\x{ord(char) - 0xDC00:02x}"
    return ascii(char)[1:-1]

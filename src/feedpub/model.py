"""The article model: typed, frozen and lean.

Only what feeds, previews and filters need is kept; ``secured`` and the AMP
URLs are dropped at parse time so they can never leak into an output, and a
100k-article corpus stays small in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Literal

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
    related: tuple[Related, ...] = ()
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

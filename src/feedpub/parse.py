"""Turning one file's front matter into an :class:`Article`, with problems.

Each rule says what happens to bad data: required fields missing or unusable
reject the file (``error``); optional data that is wrong is dropped or repaired
and reported (``warning``). Nothing here depends on settings, so a parse result
can be cached per file.
"""

from __future__ import annotations

import email.utils
import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .model import Article, Coverage, Image, Kind, Problem, Provider, Related
from .source import Source, SourceError, read_source
from .text import clean_html, is_absolute_url, is_site_relative, plain_text, squash, url_scheme

MAX_RELATED = 50
MAX_TOPICS = 50
MAX_IMAGES = 10
# Every date-only form datetime.fromisoformat accepts: 2021-01-01, 20210101, 2021-W01, 2021-W01-5, 2021W015.
_DATE_ONLY = re.compile(r"^\d{4}(-?\d{2}-?\d{2}|-?W\d{2}(-?\d)?)$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*$")


class Rejected(Exception):
    """The article cannot be published; the message says why."""

    def __init__(self, message: str, *path: str | int) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


@dataclass(frozen=True, slots=True)
class ParseResult:
    """What one file gave: an article or not, and what was wrong with it."""

    path: str
    article: Article | None
    problems: tuple[Problem, ...] = ()
    digest: str = ""  # of the file's bytes


@dataclass
class _Context:
    path: str
    source: Source
    problems: list[Problem] = field(default_factory=list)

    def warn(self, message: str, *where: str | int) -> None:
        self.problems.append(Problem(self.path, self.source.line_of(*where), "warning", message))


def content_digest(raw: bytes) -> str:
    return hashlib.blake2b(raw, digest_size=8).hexdigest()


def parse_bytes(path: str, raw: bytes, max_bytes: int) -> ParseResult:
    """Parse one file's bytes; never raises for bad data."""
    digest = content_digest(raw)
    try:
        source = read_source(raw, max_bytes)
    except SourceError as exc:
        return ParseResult(path, None, (Problem(path, exc.line, "error", exc.message),), digest)
    ctx = _Context(path, source)
    try:
        article = _article(ctx, source.data, digest)
    except Rejected as exc:
        line = source.line_of(*exc.path) if exc.path else None
        ctx.problems.append(Problem(path, line, "error", exc.message))
        return ParseResult(path, None, tuple(ctx.problems), digest)
    return ParseResult(path, article, tuple(ctx.problems), digest)


def _article(ctx: _Context, data: dict[str, Any], digest: str) -> Article:
    title = _required_text(ctx, data, "title")
    url = _canonical_url(ctx, data)
    published_at = _date(data.get("publishedDateTime"), "publishedDateTime", required=True)
    assert published_at is not None
    provider = _provider(ctx, data.get("provider"), ("provider",), required=True)
    assert provider is not None
    published = data.get("published", True)
    if not isinstance(published, bool):
        raise Rejected(f"published: expected true or false, got {published!r}", "published")
    original = data.get("originalUrl")
    return Article(
        path=ctx.path,
        url=url,
        title=title,
        published_at=published_at,
        provider=provider,
        published=published,
        excerpt=_optional_text(ctx, data, "excerpt"),
        kind=_kind(ctx, data.get("type")),
        topics=_topics(ctx, data.get("topics")),
        images=_images(ctx, data.get("images"), ("images",)),
        featured_html=_featured(ctx, data.get("featuredContent")),
        related=Coverage.of(_related(ctx, data.get("related"), url)),
        original_url=original if isinstance(original, str) and is_absolute_url(original) and original != url else None,
        quality=data.get("quality") if type(data.get("quality")) is int else None,
        digest=digest,
    )


def _required_text(ctx: _Context, data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if value is None:
        raise Rejected(f"{key}: missing")
    if not isinstance(value, str):
        raise Rejected(f"{key}: expected text, got {type(value).__name__}", key)
    text, notes = plain_text(value)
    for note in notes:
        ctx.warn(f"{key}: {note}", key)
    if not text:
        raise Rejected(f"{key}: empty", key)
    return text


def _optional_text(ctx: _Context, data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        ctx.warn(f"{key}: expected text, got {type(value).__name__}; ignored", key)
        return ""
    text, notes = plain_text(value)
    for note in notes:
        ctx.warn(f"{key}: {note}", key)
    return text


def _canonical_url(ctx: _Context, data: dict[str, Any]) -> str:
    """``webUrl`` when usable, else ``originalUrl``; unusable URLs are reported."""
    for key in ("webUrl", "originalUrl"):
        value = data.get(key)
        if value is None:
            continue
        if isinstance(value, str) and is_absolute_url(value.strip()):
            return value.strip()
        ctx.warn(f"{key}: {_url_reason(value)}; ignored", key)
    raise Rejected("no usable URL: webUrl or originalUrl must be an absolute http(s) URL")


def _url_reason(value: object) -> str:
    if not isinstance(value, str):
        return f"expected a URL, got {type(value).__name__}"
    scheme = url_scheme(value)
    if scheme and scheme not in ("http", "https"):
        return f"{scheme}: URLs are not allowed ({value[:60]!r})"
    return f"not an absolute http(s) URL ({value[:60]!r})"


def _date(value: object, key: str, *, required: bool, where: tuple[str | int, ...] = ()) -> datetime | None:
    where = where or (key,)
    if value is None:
        if required:
            raise Rejected(f"{key}: missing", *where[:-1])
        return None
    if not isinstance(value, str):
        raise Rejected(f"{key}: expected a date and time, got {type(value).__name__}", *where)
    text = value.strip()
    if _DATE_ONLY.match(text.upper()):
        raise Rejected(f"{key}: {text!r} has no time; write e.g. {text}T00:00:00Z", *where)
    try:
        parsed = datetime.fromisoformat(text.upper())  # RFC 3339 allows a lower-case "t" and "z"
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            raise Rejected(f"{key}: {text[:40]!r} is not a valid date and time (use RFC 3339)", *where) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    try:
        return parsed.astimezone(timezone.utc)
    except OverflowError:
        raise Rejected(f"{key}: {text[:40]!r} is out of range", *where) from None


def _domain(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    domain = value.strip().lower().rstrip(".")
    return domain if _DOMAIN.match(domain) else None


def _provider(ctx: _Context, value: object, where: tuple[str | int, ...], *, required: bool) -> Provider | None:
    label = ".".join(str(w) for w in where)
    if not isinstance(value, dict):
        if required:
            raise Rejected(f"{label}: missing" if value is None else f"{label}: expected a mapping", *where)
        return None
    domain = _domain(value.get("domain"))
    if domain is None:
        reason = "missing domain" if value.get("domain") is None else f"invalid domain {value.get('domain')!r}"
        if required:
            raise Rejected(f"{label}: {reason}", *where)
        ctx.warn(f"{label}: {reason}; provider ignored", *where)
        return None
    name = value.get("name")
    if isinstance(name, str) and plain_text(name)[0]:
        name = plain_text(name)[0]
    else:
        if required:
            ctx.warn(f"{label}.name: missing; using the domain", *where)
        name = domain
    images = _images(ctx, value.get("images"), (*where, "images"))
    return Provider(name=name, domain=domain, logo=images[0] if images else None)


def _kind(ctx: _Context, value: object) -> Kind:
    if value is None:
        return Kind.ARTICLE
    try:
        return Kind(str(value).strip().lower())
    except ValueError:
        ctx.warn(f"type: unknown type {value!r}; treated as article", "type")
        return Kind.ARTICLE


def _topics(ctx: _Context, value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        ctx.warn("topics: a single text, not a list; taken as one topic", "topics")
        value = [value]
    if not isinstance(value, list):
        ctx.warn(f"topics: expected a list, got {type(value).__name__}; ignored", "topics")
        return ()
    topics: list[str] = []
    for index, item in enumerate(value):
        name = plain_text(item)[0] if isinstance(item, str) else ""
        if not name:
            ctx.warn(f"topics[{index}]: expected a topic name, got {item!r}; ignored", "topics", index)
        elif name not in topics:
            topics.append(name)
    if len(topics) > MAX_TOPICS:
        ctx.warn(f"topics: {len(topics)} topics; only the first {MAX_TOPICS} are kept", "topics")
    return tuple(topics[:MAX_TOPICS])


def _images(ctx: _Context, value: object, where: tuple[str | int, ...]) -> tuple[Image, ...]:
    if value is None:
        return ()
    label = ".".join(str(w) for w in where)
    if not isinstance(value, list):
        ctx.warn(f"{label}: expected a list; ignored", *where)
        return ()
    images = []
    for index, item in enumerate(value[:MAX_IMAGES]):
        at = (*where, index)
        if not isinstance(item, dict):
            ctx.warn(f"{label}[{index}]: expected a mapping; ignored", *at)
            continue
        url = item.get("url")
        if not isinstance(url, str) or not (is_absolute_url(url) or is_site_relative(url)):
            ctx.warn(f"{label}[{index}].url: {_url_reason(url)}; image ignored", *at)
            continue
        title = item.get("title")
        images.append(
            Image(
                url=url,
                width=_size(ctx, item.get("width"), f"{label}[{index}].width", (*at, "width")),
                height=_size(ctx, item.get("height"), f"{label}[{index}].height", (*at, "height")),
                title=plain_text(title)[0] or None if isinstance(title, str) else None,
            )
        )
    return tuple(images)


def _size(ctx: _Context, value: object, label: str, where: tuple[str | int, ...]) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        ctx.warn(f"{label}: a number written as text ({value!r})", *where)
        value = int(value.strip())
    if type(value) is not int or not 0 < value <= 100_000:
        ctx.warn(f"{label}: expected a positive whole number, got {value!r}; ignored", *where)
        return None
    return value


def _featured(ctx: _Context, value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        ctx.warn(f"featuredContent: expected HTML text, got {type(value).__name__}; ignored", "featuredContent")
        return ""
    cleaned, notes = clean_html(value)
    for note in notes:
        ctx.warn(f"featuredContent: {note}", "featuredContent")
    return cleaned


def _related(ctx: _Context, value: object, own_url: str) -> tuple[Related, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        ctx.warn("related: expected a list; ignored", "related")
        return ()
    if len(value) > MAX_RELATED:
        ctx.warn(f"related: {len(value):,} items; only the first {MAX_RELATED} are kept", "related")
    items: list[Related] = []
    seen = {own_url}
    for index, item in enumerate(value[:MAX_RELATED]):
        try:
            related = _related_item(ctx, item, index)
        except Rejected as exc:
            ctx.warn(f"{exc.message}; related item ignored", *exc.path)
            continue
        if related.url not in seen:
            seen.add(related.url)
            items.append(related)
    return tuple(items)


def _related_item(ctx: _Context, item: object, index: int) -> Related:
    where = ("related", index)
    label = f"related[{index}]"
    if not isinstance(item, dict):
        raise Rejected(f"{label}: expected a mapping", *where)
    title = item.get("title")
    title = plain_text(title)[0] if isinstance(title, str) else ""
    if not title:
        raise Rejected(f"{label}.title: missing", *where)
    url = next(
        (u.strip() for u in (item.get("webUrl"), item.get("originalUrl")) if isinstance(u, str) and is_absolute_url(u.strip())),
        None,
    )
    if url is None:
        raise Rejected(f"{label}: no absolute http(s) webUrl or originalUrl", *where)
    return Related(
        title=title,
        url=url,
        published_at=_date(
            item.get("publishedDateTime"), f"{label}.publishedDateTime", required=False,
            where=(*where, "publishedDateTime"),
        ),
        provider=_provider(ctx, item.get("provider"), (*where, "provider"), required=False),
    )

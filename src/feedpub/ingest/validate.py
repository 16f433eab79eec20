"""Turning one file's front matter into an :class:`Article`, with problems.

Each rule says what happens to bad data: required fields missing or unusable
reject the file (``error``); optional data that is wrong is dropped or repaired
and reported (``warning``). Nothing here depends on settings, so a parse result
can be cached per file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import traceback
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..model import Article, Coverage, Image, Kind, Problem, Provider, Related
from .dates import read_date
from .frontmatter import SourceError, read_source
from .problems import Context, Rejected, show, url_reason
from .sanitize import clean_html, is_absolute_url, is_site_relative, plain_text

log = logging.getLogger(__name__)

MAX_RELATED = 50
MAX_TOPICS = 50
MAX_IMAGES = 10
# A bad value in one of these rejects the article: leaving it out would publish something else.
_STRICT = frozenset({"title", "publishedDateTime", "provider", "published"})
_DIGITS = re.compile(r"[0-9]{1,9}")
_DOMAIN = re.compile(r"^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*$")


@dataclass(frozen=True, slots=True)
class ParseResult:
    """What one file gave: an article or not, and what was wrong with it."""

    path: str
    article: Article | None
    problems: tuple[Problem, ...] = ()
    digest: str = ""  # of the file's bytes


def content_digest(raw: bytes) -> str:
    return hashlib.blake2b(raw, digest_size=8).hexdigest()


def parse_bytes(path: str, raw: bytes) -> ParseResult:
    """Parse one file's bytes; never raises: whatever goes wrong is this file's error."""
    digest = content_digest(raw)
    try:
        return _parse(path, raw, digest)
    except Exception as exc:  # a bug must cost one file, and its text may quote a value
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        log.error("%s: unexpected %s at %s:%s (a bug in feedpub)", path, type(exc).__name__,
                  os.path.basename(frame.filename), frame.lineno)
        message = f"cannot be read: unexpected {type(exc).__name__} (a bug in feedpub); the file is left out"
        return ParseResult(path, None, (Problem(path, None, "error", message),), digest)


def _parse(path: str, raw: bytes, digest: str) -> ParseResult:
    try:
        source = read_source(raw)
    except SourceError as exc:
        return ParseResult(path, None, (Problem(path, exc.line, "error", exc.message),), digest)
    ctx = Context(path, source)
    article: Article | None = None
    try:
        ctx.report_notes(_STRICT)
        article = _article(ctx, source.data, digest)
    except Rejected as exc:
        line = source.line_of(*exc.path) if exc.path else None
        ctx.add(Problem(path, line, "error", exc.message))
    return ParseResult(path, article, ctx.found(), digest)


def _article(ctx: Context, data: dict[str, Any], digest: str) -> Article:
    title = _required_text(ctx, data, "title")
    url = _canonical_url(ctx, data)
    published_at = _date(data.get("publishedDateTime"), "publishedDateTime", required=True)
    assert published_at is not None
    provider = _provider(ctx, data.get("provider"), ("provider",), required=True)
    assert provider is not None
    published = data.get("published", True)
    if not isinstance(published, bool):
        raise Rejected(f"published: expected true or false, got {show(published)}", "published")
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
        original_url=_original_url(ctx, data.get("originalUrl"), url),
        quality=_quality(data.get("quality")),
        digest=digest,
    )


def _required_text(ctx: Context, data: dict[str, Any], key: str) -> str:
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


def _optional_text(ctx: Context, data: dict[str, Any], key: str) -> str:
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


def _canonical_url(ctx: Context, data: dict[str, Any]) -> str:
    """``webUrl`` when usable, else ``originalUrl``; unusable URLs are reported."""
    for key in ("webUrl", "originalUrl"):
        value = data.get(key)
        if value is None:
            continue
        if isinstance(value, str) and is_absolute_url(value.strip()):
            return value.strip()
        ctx.warn(f"{key}: {url_reason(value)}; ignored", key)
    raise Rejected("no usable URL: webUrl or originalUrl must be an absolute http(s) URL")


def _original_url(ctx: Context, value: object, url: str) -> str | None:
    """``originalUrl`` when it says more than the canonical URL (an unusable one was reported if it was tried)."""
    if value is None or value == url:
        return None
    if isinstance(value, str) and is_absolute_url(value):
        return value
    ctx.warn(f"originalUrl: {url_reason(value)}; ignored", "originalUrl")
    return None


def _quality(value: object) -> int | None:
    # Any whole number a signed 64-bit column holds: the parse cache and JSON readers take it whole.
    return value if type(value) is int and -(2**63) <= value < 2**63 else None


def _date(value: object, key: str, *, required: bool, where: tuple[str | int, ...] = ()) -> datetime | None:
    where = where or (key,)
    if value is None:
        if required:
            raise Rejected(f"{key}: missing", *where[:-1])
        return None
    if not isinstance(value, str):
        raise Rejected(f"{key}: expected a date and time, got {type(value).__name__}", *where)
    try:
        return read_date(value)
    except ValueError as exc:
        raise Rejected(f"{key}: {exc}", *where) from None


def _domain(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    domain = value.strip().lower().rstrip(".")
    return domain if _DOMAIN.match(domain) else None


def _provider(ctx: Context, value: object, where: tuple[str | int, ...], *, required: bool) -> Provider | None:
    label = ".".join(str(w) for w in where)
    if not isinstance(value, dict):
        if required:
            raise Rejected(f"{label}: missing" if value is None else f"{label}: expected a mapping", *where)
        return None
    domain = _domain(value.get("domain"))
    if domain is None:
        reason = "missing domain" if value.get("domain") is None else f"invalid domain {show(value.get('domain'))}"
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


def _kind(ctx: Context, value: object) -> Kind:
    if value is None:
        return Kind.ARTICLE
    try:
        return Kind(value.strip().lower() if isinstance(value, str) else value)
    except ValueError:
        ctx.warn(f"type: unknown type {show(value)}; treated as article", "type")
        return Kind.ARTICLE


def _topics(ctx: Context, value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        ctx.warn("topics: a single text, not a list; taken as one topic", "topics")
        value = [value]
    if not isinstance(value, list):
        ctx.warn(f"topics: expected a list, got {type(value).__name__}; ignored", "topics")
        return ()
    topics: dict[str, None] = {}  # ordered, and linear to de-duplicate
    for index, item in enumerate(value):
        name = plain_text(item)[0] if isinstance(item, str) else ""
        if not name:
            ctx.warn(f"topics[{index}]: expected a topic name, got {show(item)}; ignored", "topics", index)
        elif name not in topics:
            if len(topics) == MAX_TOPICS:  # the rest is not read: one more topic is enough to say so
                ctx.warn(f"topics: more than {MAX_TOPICS} topics; only the first {MAX_TOPICS} are kept", "topics")
                break
            topics[name] = None
    return tuple(topics)


def _images(ctx: Context, value: object, where: tuple[str | int, ...]) -> tuple[Image, ...]:
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
            ctx.warn(f"{label}[{index}].url: {url_reason(url)}; image ignored", *at)
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


def _size(ctx: Context, value: object, label: str, where: tuple[str | int, ...]) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        ctx.warn(f"{label}: a number written as text ({show(value)})", *where)
        value = int(value.strip())
    if type(value) is not int or not 0 < value <= 100_000:
        ctx.warn(f"{label}: expected a positive whole number, got {show(value)}; ignored", *where)
        return None
    return value


def _featured(ctx: Context, value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        ctx.warn(f"featuredContent: expected HTML text, got {type(value).__name__}; ignored", "featuredContent")
        return ""
    cleaned, notes = clean_html(value)
    for note in notes:
        ctx.warn(f"featuredContent: {note}", "featuredContent")
    return cleaned


def _related(ctx: Context, value: object, own_url: str) -> tuple[Related, ...]:
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


def _related_item(ctx: Context, item: object, index: int) -> Related:
    where = ("related", index)
    label = f"related[{index}]"
    if not isinstance(item, dict):
        raise Rejected(f"{label}: expected a mapping", *where)
    title = item.get("title")
    title = plain_text(title)[0] if isinstance(title, str) else ""
    if not title:
        raise Rejected(f"{label}.title: missing", *where)
    url = None
    for key in ("webUrl", "originalUrl"):
        value = item.get(key)
        if isinstance(value, str) and is_absolute_url(value.strip()):
            url = value.strip()
            break
        if value is not None:
            ctx.warn(f"{label}.{key}: {url_reason(value)}; ignored", *where, key)
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

"""A compact, safe encoding of parse results, for the cache and for worker processes.

JSON rather than pickle: a cache file is data, and loading it must never run
code. Decoding validates shapes as it builds the frozen dataclasses, interning
repeated providers and topic names so a large corpus holds each only once.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta, timezone
from typing import Any

from .model import Article, Image, Kind, Problem, Provider, Related
from .parse import ParseResult

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICRO = timedelta(microseconds=1)


class CodecError(ValueError):
    """The bytes are not a result this version of feedpub wrote."""


def _time(moment: datetime | None) -> int | None:
    return None if moment is None else (moment - EPOCH) // _MICRO


def _image(image: Image | None) -> list[Any] | None:
    return None if image is None else [image.url, image.width, image.height, image.title]


def _provider(provider: Provider | None) -> list[Any] | None:
    return None if provider is None else [provider.name, provider.domain, _image(provider.logo)]


def encode(result: ParseResult) -> bytes:
    article = result.article
    body: list[Any] = [
        [[p.line, p.severity, p.message] for p in result.problems],
        result.digest,
        None,
    ]
    if article is not None:
        body[2] = [
            article.url, article.title, _time(article.published_at), _provider(article.provider),
            article.published, article.excerpt, article.kind.value, list(article.topics),
            [_image(i) for i in article.images], article.featured_html,
            [[r.title, r.url, _time(r.published_at), _provider(r.provider)] for r in article.related],
            article.original_url, article.quality,
        ]
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class Decoder:
    """Turns encoded results back into objects; one decoder shares providers and names across results."""

    def __init__(self) -> None:
        self._providers: dict[tuple[Any, ...], Provider] = {}

    def decode(self, blob: bytes, path: str) -> ParseResult:
        """The result for the file now at ``path`` (a cached result does not depend on where it was)."""
        try:
            problems, digest, fields = _parse_json(blob.decode("utf-8"))
            result = ParseResult(
                path,
                self._article(path, fields, digest) if fields is not None else None,
                tuple(Problem(path, line, severity, message) for line, severity, message in problems),
                digest,
            )
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise CodecError(f"unreadable cached result: {exc}") from None
        if not isinstance(result.digest, str):
            raise CodecError("unreadable cached result: bad header")
        return result

    # The two methods below run once per article and once per related item of a
    # whole corpus on every start: checks are inlined rather than called.

    def _article(self, path: str, fields: list[Any], digest: str) -> Article:
        (url, title, published_at, provider, published, excerpt, kind, topics, images, featured, related,
         original_url, quality) = fields
        if not (type(url) is str and type(title) is str and type(excerpt) is str and type(featured) is str
                and type(digest) is str and (original_url is None or type(original_url) is str)):
            raise TypeError("expected text")
        related_item = self._related
        return Article(
            path=path,
            url=url,
            title=title,
            published_at=_moment(published_at),
            provider=self._provider(provider),
            published=bool(published),
            excerpt=excerpt,
            kind=Kind(kind),
            topics=tuple(sys.intern(_text(t)) for t in topics),
            images=tuple(_image_of(i) for i in images),
            featured_html=featured,
            related=tuple([related_item(item) for item in related]),
            original_url=original_url,
            quality=quality if quality is None or type(quality) is int else None,
            digest=digest,
        )

    def _related(self, fields: list[Any]) -> Related:
        title, url, moment, provider = fields
        if type(title) is not str or type(url) is not str:
            raise TypeError("expected text")
        if moment is not None:
            if type(moment) is not int:
                raise TypeError("expected a timestamp")
            moment = EPOCH + moment * _MICRO
        return Related(title, url, moment, None if provider is None else self._provider(provider))

    def _provider(self, fields: list[Any]) -> Provider:
        name, domain, logo = fields
        key = (name, domain) if logo is None else (name, domain, *logo)
        known = self._providers.get(key)
        if known is None:
            known = self._providers[key] = Provider(
                sys.intern(_text(name)), sys.intern(_text(domain)), _image_of(logo) if logo else None
            )
        return known


_parse_json = json.JSONDecoder().decode  # on text: skips json.loads' encoding detection per blob


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {type(value).__name__}")
    return value


def _moment(value: Any) -> datetime:
    if type(value) is not int:
        raise TypeError("expected a timestamp")
    return EPOCH + value * _MICRO


def _image_of(fields: list[Any]) -> Image:
    url, width, height, title = fields
    return Image(_text(url), width, height, title)

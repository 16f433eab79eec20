"""A compact, safe encoding of parse results, for the cache and for worker processes.

JSON rather than pickle: a cache file is data, and loading it must never run
code. Decoding validates shapes as it builds the frozen dataclasses, interning
repeated providers and topic names so a large corpus holds each only once.
An article's related items travel in their packed form (see ``Coverage``)
after a NUL byte, which JSON text never contains; a start leaves building them,
with their shape checks, to the entries that are rendered. Every encoded result
opens with the CRC-32 of all that follows (head and related items), checked at
C speed before anything is trusted: a damaged row is parsed again, never published.
"""

from __future__ import annotations

import json
import sys
import zlib
from typing import Any

from ..model import (
    EPOCH,
    MICROSECOND,
    NO_COVERAGE,
    Article,
    Coverage,
    Kind,
    Problem,
    Provider,
    image_fields,
    image_from,
    micros,
    provider_fields,
)
from .validate import ParseResult

_SEPARATOR = b"\0"
_CHECKSUM = 4  # bytes of CRC-32, big-endian, before the content they cover


class CodecError(ValueError):
    """The bytes are not a result this version of feedpub wrote."""


def encode(result: ParseResult) -> bytes:
    article = result.article
    body: list[Any] = [
        [[p.line, p.severity, p.message] for p in result.problems],
        result.digest,
        None,
    ]
    related = b""
    if article is not None:
        body[2] = [
            article.url, article.title, micros(article.published_at), provider_fields(article.provider),
            article.published, article.excerpt, article.kind.value, list(article.topics),
            [image_fields(i) for i in article.images], article.featured_html,
            article.original_url, article.quality,
        ]
        related = article.related.packed
    content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + _SEPARATOR + related
    return zlib.crc32(content).to_bytes(_CHECKSUM, "big") + content


class Decoder:
    """Turns encoded results back into objects; one decoder shares providers and names across results."""

    def __init__(self) -> None:
        self._providers: dict[tuple[Any, ...], Provider] = {}

    def decode(self, blob: bytes, path: str) -> ParseResult:
        """The result for the file now at ``path`` (a cached result does not depend on where it was)."""
        try:
            sealed = int.from_bytes(blob[:_CHECKSUM], "big")
            if len(blob) <= _CHECKSUM or zlib.crc32(memoryview(blob)[_CHECKSUM:]) != sealed:
                raise ValueError("content does not match its checksum")
            end = blob.find(_SEPARATOR, _CHECKSUM)
            if end < 0:
                raise ValueError("no separator")
            related = blob[end + 1:]
            problems, digest, fields = json.loads(blob[_CHECKSUM:end].decode("utf-8"))
            if related and fields is None:
                raise ValueError("related items without an article")
            result = ParseResult(
                path,
                self._article(path, fields, digest, related) if fields is not None else None,
                tuple(Problem(path, line, severity, message) for line, severity, message in problems),
                digest,
            )
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise CodecError(f"unreadable cached result: {exc}") from None
        if not isinstance(result.digest, str):
            raise CodecError("unreadable cached result: bad header")
        return result

    # Runs for every cached article of every start (warm load, benchmarks/RESULTS.md): checks inlined, not called.

    def _article(self, path: str, fields: list[Any], digest: str, related: bytes) -> Article:
        (url, title, published_at, provider, published, excerpt, kind, topics, images, featured,
         original_url, quality) = fields
        if not (type(url) is str and type(title) is str and type(excerpt) is str and type(featured) is str
                and type(digest) is str and (original_url is None or type(original_url) is str)):
            raise TypeError("expected text")
        if type(published_at) is not int:
            raise TypeError("expected a timestamp")
        return Article(
            path=path, url=url, title=title, published_at=EPOCH + published_at * MICROSECOND,
            provider=self._provider(provider), published=published is True, excerpt=excerpt, kind=_KINDS[kind],
            topics=tuple(map(sys.intern, topics)),  # intern() refuses anything but text
            images=tuple(map(image_from, images)) if images else (), featured_html=featured,
            related=Coverage(related) if related else NO_COVERAGE, original_url=original_url,
            quality=quality if quality is None or type(quality) is int else None, digest=digest,
        )

    def _provider(self, fields: list[Any]) -> Provider:
        name, domain, logo = fields
        key = (name, domain) if logo is None else (name, domain, *logo)
        known = self._providers.get(key)
        if known is None:
            # intern() refuses anything but text
            logo_image = image_from(logo) if logo else None
            known = self._providers[key] = Provider(sys.intern(name), sys.intern(domain), logo_image)
        return known


_KINDS = {kind.value: kind for kind in Kind}

"""Headers for browsers and CDNs: CORS, nosniff, Cache-Control with its stale-* extensions, surrogate keys.

A CDN purges by key: every output of one feed (its formats, its page, its filtered views)
carries the feed's path without suffix (``ai``, ``providers/wired.com``, ``ai/archive/2020-01``)
in ``Surrogate-Key`` (Fastly) and ``Cache-Tag`` (Cloudflare, Akamai), and the files about the
whole site carry ``index``, so one key purges all the URLs one change affects.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from werkzeug.datastructures import Headers as HeaderList
from werkzeug.datastructures import ResponseCacheControl
from werkzeug.http import http_date, parse_accept_header

from ..purge import GONE, items, surrogate_key
from ..render.common import INDEX_JSON, INDEX_OPML
from ..render.site import Site

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from ..catalog.feeds import Feed
    from ..settings import Settings
    from .snapshot import Snapshot
    from .store import Prepared

Headers = tuple[tuple[str, str], ...]
ARCHIVE_MAX_AGE = 30 * 24 * 3600  # a month's archive is settled once the month is over (RFC 5005)
# A JavaScript client may read these too (Last-Modified and Content-Type it may read anyway).
EXPOSED = "ETag, Link, IM"


def nosniff(app: WSGIApplication) -> WSGIApplication:
    """``app`` whose every answer, errors and the guard's 400s included, forbids MIME sniffing:
    a browser must never run a feed (text it does not control) as a script or a page."""

    def wrapped(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> object:
            return start_response(status, [*headers, ("X-Content-Type-Options", "nosniff")],
                                  exc_info)  # type: ignore[arg-type]

        return app(environ, start)  # type: ignore[arg-type]

    return wrapped


def cache_control(max_age: int, settings: Settings) -> tuple[str, str]:
    """``Cache-Control: public, max-age=N`` with the stale-* extensions (RFC 5861) the settings allow."""
    return _cache_control(max_age, settings.stale_while_revalidate, settings.stale_if_error)


@lru_cache(maxsize=16)
def _cache_control(max_age: int, while_revalidate: int, if_error: int) -> tuple[str, str]:
    control = ResponseCacheControl()
    control.public = True
    control.max_age = max_age
    if while_revalidate:
        control.stale_while_revalidate = while_revalidate
    if if_error:
        control.stale_if_error = if_error
    return "Cache-Control", control.to_header()


@dataclass(frozen=True, slots=True, eq=False)
class Served:
    """One output of one version as its requests are answered: made once, when first asked for in that version.

    ``plain`` and ``gzip`` are the headers before ``Date``, ``tags`` those after it, each checked by
    werkzeug here, once: a request joins them (:func:`trusted`) instead of having werkzeug check
    a dozen headers again on every answer.
    """

    prepared: Prepared
    archive: bool
    plain: Headers
    gzip: Headers
    tags: Headers


def served(prepared: Prepared, tags: Headers, archive: bool, settings: Settings) -> Served:
    """``prepared`` with all its headers: validators, Vary, Cache-Control, length, then purge keys and CORS."""
    control = cache_control(ARCHIVE_MAX_AGE if archive else settings.max_age, settings)
    plain = (*prepared.plain_headers, control, ("Content-Length", str(prepared.size)))
    gzip = (*prepared.gzip_headers, control, ("Content-Length", str(len(prepared.gzipped))))
    return Served(prepared, archive, _checked(plain), _checked(gzip), _checked(tags))


def _checked(headers: Headers) -> Headers:
    return tuple(HeaderList(headers))  # werkzeug refuses a value with a line break here


def trusted(headers: list[tuple[str, str]]) -> HeaderList:
    """werkzeug's Headers holding ``headers``, which it checked already (see :class:`Served`)."""
    found = HeaderList()
    found._list = headers  # its own storage: what HeaderList(headers) would hold, without checking each again
    return found


_now: tuple[int, str] = (0, "")


@lru_cache(maxsize=64)
def gzip_accepted(accept_encoding: str | None) -> bool:
    """``request.accept_encodings["gzip"] > 0``, parsed once per distinct header (clients send few)."""
    return parse_accept_header(accept_encoding)["gzip"] > 0


def date_now() -> str:
    """``http_date()`` (what make_conditional sends as ``Date``), formatted once a second, not once a request."""
    global _now
    second = int(time.time())
    if _now[0] != second:
        _now = (second, http_date(second))
    return _now[1]


def output_headers(site: Site, name: str) -> Headers:
    """The headers of the output ``name`` of ``site`` for browsers and CDNs (see :func:`tagged`)."""
    return tagged(*tag_of(site, name))


def tag_of(site: Site, name: str) -> tuple[str | None, bool]:
    """The purge key of an output, and whether it is public to other origins' scripts (CORS):
    feeds and index files are; pages are read by browsing to them, not by another origin's script."""
    found = site.feed_and_format(name) or site.deferred.get(name)
    feed = found[1].feed if found is not None else name.endswith(tuple(f.suffix for f in site.formats if f.feed))
    return surrogate_key(site, name), feed or name in (INDEX_JSON, INDEX_OPML)


@lru_cache(maxsize=4096)
def tagged(key: str | None, public: bool) -> Headers:
    headers: Headers = (("Surrogate-Key", key), ("Cache-Tag", key)) if key is not None else ()
    if public:
        headers += (("Access-Control-Allow-Origin", "*"), ("Access-Control-Expose-Headers", EXPOSED))
    return headers


def purge_items(settings: Settings, before: Snapshot, after: Snapshot) -> dict[str, str]:
    """What a reload from ``before`` to ``after`` gives the purge hook (see :func:`feedpub.purge.items`)."""
    def key_of(name: str) -> str | None:
        return surrogate_key(after.site, name) or surrogate_key(before.site, name)

    return items(settings, changed_outputs(before, after), key_of)


def changed_outputs(before: Snapshot, after: Snapshot) -> dict[str, str]:
    """Each output a reload changed, added or removed, with its new version (``gone`` when removed).

    Archive pages are rendered when first asked for: one changed when its entries or links did.
    """
    versions = {name: new.etag for name, new in after.prepared.items() if before.prepared.get(name) is not new}
    versions.update(dict.fromkeys(before.prepared.keys() - after.prepared.keys(), GONE))
    old = before.site.deferred
    versions.update({name: _archive_version(found[0]) for name, found in after.site.deferred.items()
                     if old.get(name) != found})
    versions.update(dict.fromkeys(old.keys() - after.site.deferred.keys(), GONE))
    return versions


def _archive_version(feed: Feed) -> str:
    parts = [feed.prev_archive or "", feed.next_archive or "", *(f"{a.url} {a.digest}" for a in feed.entries)]
    return hashlib.blake2b("\n".join(parts).encode(), digest_size=16).hexdigest()

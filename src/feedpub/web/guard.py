"""The app's front door: requests no route can answer safely are refused here, once, for every route.

A control character is never part of a URL (RFC 3986) nor of a header field value (RFC 9110,
section 5.5), yet servers and proxies may pass one through, raw or percent-encoded. werkzeug's
routing copies the query (and the script name) into the ``Location`` of its trailing-slash
redirect (``/feeds?x`` -> ``/feeds/?x``) and raises on a CR or LF there: a 500. Routing runs while
Flask builds the request context, before any Flask hook, so the check wraps the whole WSGI app
and answers a one-line 400 itself.

A control in the path is left to routing: no route can match it, the Location of a redirect never
carries it (only ``/feeds`` and ``/`` redirect), so it is the 404 any unknown path gets.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import unquote_to_bytes

from werkzeug.wrappers import Response

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

URL_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")
FIELD_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f]")  # a field value may hold a tab, nothing else
HEADER_NAME = re.compile("[A-Z0-9_]{1,64}")


def refuse_malformed(app: WSGIApplication) -> WSGIApplication:
    """``app`` behind a check that answers 400 to what :func:`malformed` finds."""

    def guarded(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        reason = malformed(environ)
        if reason is None:
            return app(environ, start_response)
        response = Response(f"Bad request: {reason}.\n", 400, content_type="text/plain; charset=utf-8")
        return response(environ, start_response)

    return guarded


def malformed(environ: WSGIEnvironment) -> str | None:
    """Why the request cannot be served, in a few words that never quote it; ``None`` when it can."""
    if _plain(environ):
        return None
    path = _wsgi_bytes(environ.get("PATH_INFO", ""))
    if path is None:
        return "the path is not made of bytes"
    query, script = _wsgi_bytes(environ.get("QUERY_STRING", "")), _wsgi_bytes(environ.get("SCRIPT_NAME", ""))
    if query is None or _has_control(query):
        return "the query string contains a control character (raw or percent-encoded)"
    if not _is_utf8(query):
        # werkzeug decodes the raw query strictly (its percent-escapes leniently) and would raise.
        return "the query string is not UTF-8 (percent-encode its bytes)"
    if script is None or _has_control(script):
        return "the script name contains a control character"
    for key, value in environ.items():
        if (key.startswith("HTTP_") or key in ("CONTENT_TYPE", "CONTENT_LENGTH")) and isinstance(value, str) \
                and FIELD_CONTROL.search(value):
            return f"{_header_name(key)} contains a control character"
    return None


def _plain(environ: WSGIEnvironment) -> bool:
    """Whether every text of the environment is printable ASCII, and the query and script name hold no
    percent-escape: then no check below can fail. The usual request, told in a fraction of the time
    they take (a request is answered in microseconds)."""
    path, query, script = environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", ""), environ.get("SCRIPT_NAME", "")
    if not (isinstance(path, str) and isinstance(query, str) and isinstance(script, str)) \
            or "%" in query or "%" in script:
        return False
    text = " ".join([value for value in environ.values() if isinstance(value, str)])
    return text.isascii() and text.isprintable()  # ASCII's unprintable characters are its controls


def _wsgi_bytes(value: object) -> bytes | None:
    """A WSGI server passes the bytes it read as latin-1 text (PEP 3333); anything else is ``None``."""
    try:
        return value.encode("latin-1") if isinstance(value, str) else None
    except UnicodeEncodeError:
        return None


def _has_control(raw: bytes) -> bool:
    return bool(URL_CONTROL.search(raw) or URL_CONTROL.search(unquote_to_bytes(raw)))


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _header_name(key: str) -> str:
    name = key.removeprefix("HTTP_")
    if not HEADER_NAME.fullmatch(name):
        return "a header"  # never echo a name that could break the one-line reason
    return "the " + "-".join(word.capitalize() for word in name.split("_")) + " header"

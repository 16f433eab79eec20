"""The usual request for a published output, answered in front of Flask.

Most requests are a plain ``GET /feeds/<name>`` (a reader polling, often revalidating with
``If-None-Match``): the answer is the current version's output with the headers made for it once
(:class:`~.headers.Served`), and werkzeug's ``make_conditional`` deciding 200 or 304. Like werkzeug's
``SharedDataMiddleware`` in front of an app's static files, :func:`in_front` answers those before
Flask builds a request context and routes, which under gunicorn costs a fifth of such a request.
Anything else (a query, If-Match or If-Unmodified-Since, an unknown name, delta feeds or a WebSub
hub, no version yet, an unreadable store) goes on to Flask's route, which answers the usual request
through :func:`usual` too: both give the same bytes and headers (``test_published.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from flask import Response

from .headers import Served, date_now, gzip_accepted, trusted

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from .state import FeedState

PREFIX = "/feeds/"
# Preconditions the route checks itself before make_conditional (RFC 9110, 13.2.2): such a request is routed.
ROUTED_HEADERS = ("HTTP_IF_MATCH", "HTTP_IF_UNMODIFIED_SINCE")


def is_usual(environ: WSGIEnvironment) -> bool:
    """Whether no precondition but If-None-Match / If-Modified-Since needs checking (see :func:`usual`)."""
    return not any(header in environ for header in ROUTED_HEADERS)


def usual(current: FeedState, answer: Served, environ: WSGIEnvironment) -> Response:
    """The answer to a request for ``answer``'s output that :func:`is_usual`: a 200, or a 304 when revalidated.

    Every header is known but the date, which make_conditional would add here; a 304's body is never
    looked up.
    """
    prepared = answer.prepared
    gzipped = gzip_accepted(environ.get("HTTP_ACCEPT_ENCODING"))
    headers = answer.gzip if gzipped else answer.plain
    response = Response(headers=trusted([*headers, ("Date", date_now()), *answer.tags]))
    if "HTTP_IF_NONE_MATCH" in environ or "HTTP_IF_MODIFIED_SINCE" in environ:  # else it can only be a 200
        response.make_conditional(environ)
    if response.status_code != 304:
        response.set_data(prepared.gzipped if gzipped else current.plain.get(prepared))
    return response


def in_front(app: WSGIApplication, current: FeedState, routed_only: bool, watch: bool) -> WSGIApplication:
    """``app`` behind the answer to the usual request for a published output (see the module's docstring).

    ``routed_only``: every feed's answer carries more than its output (delta feeds, a hub's ``Link``),
    so the route answers all. ``watch``: start the reload thread as the route's ``before_request`` would.
    """
    if routed_only:
        return app

    def published(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith(PREFIX) and not environ.get("QUERY_STRING") and is_usual(environ) \
                and environ.get("REQUEST_METHOD") in ("GET", "HEAD") and path.isascii():
            if watch:
                current.ensure_watcher()
            try:
                view = current.view()
                answer = view.served(path[len(PREFIX):]) if view is not None else None
            except Exception:  # an unreadable store (sqlite3.Error) or a failed render
                answer = None  # the route meets it again and answers as Flask does (a 503 or a 500, logged)
            if answer is not None:
                return usual(current, answer, environ)(environ, start_response)
        return app(environ, start_response)

    return published

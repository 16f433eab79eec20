"""Routes: the feeds with conditional GET and gzip, the health check, the index."""

from __future__ import annotations

import logging
import sqlite3
from typing import TYPE_CHECKING

from flask import Blueprint, Response, current_app, jsonify, request

from ..model import printable
from ..render.common import FRONT_PAGE, INDEX_JSON
from .delta import Offer, offer
from .filters import FilterError, parse_filters
from .headers import Served, gzip_accepted, served, trusted
from .published import is_usual, usual
from .state import FeedState
from .store import Prepared
from .views import View

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

bp = Blueprint("feeds", __name__)
log = logging.getLogger("feedpub.server")
STATE = "feedpub"  # app.extensions key: the FeedState
DELTA_HISTORY = "feedpub.delta"  # app.extensions key: the delta feeds' History, or None when they are off
# Seconds a request waits for the very first version (a small site is built by then) before a 503;
# well inside gunicorn's 30 s worker timeout.
FIRST_WAIT = 10.0


def state() -> FeedState:
    feed_state: FeedState = current_app.extensions[STATE]
    return feed_state


def current_view(current: FeedState) -> View | None:
    """The version a request sees; the very first one is waited for up to :data:`FIRST_WAIT` seconds."""
    return current.view() or current.first_view(FIRST_WAIT)


@bp.get("/feeds/<path:name>", provide_automatic_options=False)  # OPTIONS: see preflight.py
def feed(name: str) -> Response:
    extensions = current_app.extensions
    current: FeedState = extensions[STATE]
    view = current_view(current)  # read once: this request sees one whole site
    if view is None:
        return starting()
    answer = view.served(name)
    if answer is None:
        return not_found()
    settings = current.settings
    hub = settings.websub_hub
    history = extensions.get(DELTA_HISTORY)
    environ = request.environ
    query = environ.get("QUERY_STRING")  # request.query_string, without decoding it when there is none
    # Only a query, a hub or delta feeds need the feed behind the output: otherwise a GET is a lookup.
    found = view.source(name) if (query or hub or history is not None) else None
    filters = None
    if found is not None and query and request.args:
        try:
            filters = parse_filters(request.args, settings.max_items)
        except FilterError as exc:
            return _text(f"{exc}\n", 400)
        if filters.active and (subset := view.filtered(name, filters)) is not answer.prepared:
            answer = served(subset, answer.tags, answer.archive, settings)  # a view with all entries is the feed
    delta = offer(history, view, name, found, filters, settings, current.plain)
    response = _send(current, answer, environ, delta)
    if hub and found is not None and found[1].feed:
        # WebSub discovery in HTTP as well as in the document (W3C WebSub, section 4).
        response.headers["Link"] = f'<{hub}>; rel="hub", <{current.settings.feeds_url}{name}>; rel="self"'
    return response


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """``ok``; ``degraded`` (200) while some file is rejected; ``unhealthy`` (503) only without seeds."""
    current = state()
    view = current_view(current)
    if view is None:
        return jsonify({"status": "starting"}), 503
    status, details = current.health(view)
    body = {
        "status": status,
        "articles": view.status["articles"],
        "feeds": view.status["feeds"],
        "problems": view.status["problems"],
        **details,
        "last_reload": view.status["last_reload"],
    }
    if "builder" in view.status:  # which worker builds for all (one_builder), and how much its last version rendered
        body["builder"] = {"pid": view.status["builder"], "rendered": view.status["rendered"]}
    return jsonify(body), 503 if status == "unhealthy" else 200


@bp.get("/")
@bp.get("/feeds/")
def home() -> Response:
    # /feeds/ as well: behind nginx or a CDN the static tree's directory URL serves its index.html.
    return feed(FRONT_PAGE)


@bp.get("/topics/<slug>")
def topic_page(slug: str) -> Response:
    return feed(f"topics/{slug}.html")


@bp.get("/providers/<domain>")
def provider_page(domain: str) -> Response:
    return feed(f"providers/{domain}.html")


def starting() -> Response:
    """Before the builder's first version (the very first start of a site): come back shortly."""
    response = _text("The feeds are being built for the first time; try again in a few seconds.\n", 503)
    response.headers["Retry-After"] = "5"
    return response


def _send(current: FeedState, answer: Served, environ: WSGIEnvironment, delta: Offer | None) -> Response:
    if delta is None and is_usual(environ):
        return usual(current, answer, environ)
    prepared = answer.prepared
    gzipped = gzip_accepted(environ.get("HTTP_ACCEPT_ENCODING"))
    body = prepared.gzipped if gzipped else current.plain.get(prepared)
    headers = answer.gzip if gzipped else answer.plain
    response = _checked(Response(body, headers=trusted(list(headers))), prepared, environ, delta)
    response.headers.extend(answer.tags)
    return response


def _checked(response: Response, prepared: Prepared, environ: WSGIEnvironment, delta: Offer | None) -> Response:
    """``response`` after the preconditions (a 412), the delta feeds (a 226) and make_conditional (a 304)."""
    if _precondition_fails(response):
        return _precondition_failed(response)
    if delta is not None and (answer := delta.answer(request, response, prepared)) is not None:
        return answer  # a 226 with the new entries, or a 304
    if "HTTP_IF_MATCH" in environ:  # passed, above: make_conditional's own reading would undo that
        environ = {key: value for key, value in environ.items() if key != "HTTP_IF_MATCH"}
    response.make_conditional(environ)
    return response


def _precondition_fails(response: Response) -> bool:
    """RFC 9110, 13.2.2 steps 1-2, which make_conditional gets wrong (``If-Match: *`` fails there,
    and a passed If-Match overrides If-None-Match) or skips (If-Unmodified-Since)."""
    environ = request.environ  # most requests carry neither header: parse nothing for them
    if "HTTP_IF_MATCH" in environ and (if_match := request.if_match):
        return not if_match.contains(response.get_etag()[0] or "")  # strong comparison; '*' matches
    since = request.if_unmodified_since if "HTTP_IF_UNMODIFIED_SINCE" in environ else None
    if since is None:
        return False
    last_modified = response.last_modified
    return last_modified is not None and last_modified > since


def _precondition_failed(response: Response) -> Response:
    """A 412 keeps the validators but no representation (RFC 9110, 15.5.13); without Cache-Control
    no cache stores it (412 is not cacheable by default), so it never stands in for the feed."""
    response.status_code = 412
    response.set_data(b"")
    for name in ("Content-Type", "Content-Encoding", "Cache-Control"):
        del response.headers[name]
    return response


@bp.app_errorhandler(sqlite3.Error)
def _store_unreadable(error: sqlite3.Error) -> Response:
    """The shared store could not be read (a full disk, a damaged or deleted cache file): not this URL's fault."""
    log.error("cannot read the published feeds (%s: %s)", type(error).__name__, error)
    response = _text("The feeds cannot be read right now; try again shortly.\n", 503)
    response.headers["Retry-After"] = "5"
    return response


@bp.app_errorhandler(404)
def _any_404(_error: Exception) -> Response:
    return not_found()


@bp.app_errorhandler(405)
def _any_405(error: Exception) -> Response:
    response = _text("Only GET and HEAD are supported here.\n", 405)
    allowed = getattr(error, "valid_methods", None)
    if allowed:
        response.headers["Allow"] = ", ".join(allowed)
    return response


def not_found() -> Response:
    index = state().settings.feeds_url + INDEX_JSON
    # The path is escaped: the reason stays one line whatever bytes the request carried.
    return _text(f"No feed at {printable(request.path)}. Every feed is listed at {index}\n", 404)


def _text(body: str, status: int) -> Response:
    return current_app.response_class(body, status=status, content_type="text/plain; charset=utf-8")

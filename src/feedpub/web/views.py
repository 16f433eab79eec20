"""Routes: the feeds with conditional GET and gzip, the health check, the index."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

from ..feeds import Feed
from ..site import render_feed
from .state import FeedState, Prepared, prepare

bp = Blueprint("feeds", __name__)
LIMIT_CACHE_SIZE = 256


def state() -> FeedState:
    feed_state: FeedState = current_app.extensions["feedpub"]
    return feed_state


@bp.before_app_request
def _start_watcher() -> None:
    if not current_app.testing:  # tests drive reloads themselves, or run a real server
        state().ensure_watcher()


@bp.get("/feeds/<path:name>")
def feed(name: str) -> Response:
    current = state()
    snapshot = current.snapshot  # read once: this request sees one whole site
    prepared = snapshot.prepared.get(name)
    if prepared is None:
        return _not_found()
    raw_limit = request.args.get("limit")
    if raw_limit is not None:
        found = snapshot.site.feed_and_format(name)
        if found is not None:
            limit = _parse_limit(raw_limit, current.settings.max_items)
            if limit is None:
                return _text(f"limit must be a whole number from 1 to {current.settings.max_items}\n", 400)
            prepared = _limited(snapshot.limited, name, found, limit, current) or prepared
    return _send(prepared, current.settings.max_age)


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    current = state()
    site = current.snapshot.site
    body = {
        "status": "ok" if current.healthy else "unhealthy",
        "articles": len(site.corpus.articles),
        "feeds": len(site.feeds),
        "problems": len(site.corpus.problems),
        "last_reload": current.snapshot.loaded_at.isoformat(timespec="seconds"),
    }
    if current.error:
        body["error"] = current.error
    return jsonify(body), 200 if current.healthy else 503


@bp.get("/")
def home() -> Response:
    site = state().snapshot.site
    lines = [f"{site.settings.site_title}: {len(site.feeds)} feeds of {len(site.corpus.articles)} articles", ""]
    lines += [f"{feed.spec.name}: {site.settings.feeds_url}{feed.spec.path}.xml" for feed in site.feeds]
    lines += ["", f"All feeds: {site.settings.feeds_url}index.json and {site.settings.feeds_url}index.opml"]
    return _text("\n".join(lines) + "\n", 200)


def _parse_limit(raw: str, max_items: int) -> int | None:
    if not raw.isascii() or not raw.isdigit() or len(raw) > 6:
        return None
    limit = int(raw)
    return limit if 1 <= limit <= max_items else None


def _limited(cache: dict[tuple[str, int], Prepared], name: str, found: tuple[Feed, object], limit: int,
             current: FeedState) -> Prepared | None:
    feed, fmt = found
    if limit >= len(feed.entries):
        return None  # the whole feed already fits
    key = (name, limit)
    prepared = cache.get(key)
    if prepared is None:
        trimmed = Feed(feed.spec, feed.entries[:limit], feed.updated)
        body = render_feed(trimmed, fmt, current.settings)  # type: ignore[arg-type]
        output = current.snapshot.site.outputs[name]
        prepared = prepare(type(output)(body, output.mimetype, output.last_modified))
        if len(cache) >= LIMIT_CACHE_SIZE:
            cache.clear()
        cache[key] = prepared
    return prepared


def _send(prepared: Prepared, max_age: int) -> Response:
    use_gzip = request.accept_encodings["gzip"] > 0
    variant = prepared.gzip if use_gzip else prepared.identity
    response = current_app.response_class(variant.body, content_type=prepared.output.mimetype)
    if use_gzip:
        response.content_encoding = "gzip"
    response.set_etag(variant.etag)
    response.last_modified = prepared.output.last_modified
    response.cache_control.public = True
    response.cache_control.max_age = max_age
    response.vary.add("Accept-Encoding")
    return response.make_conditional(request)


def _not_found() -> Response:
    index = state().settings.feeds_url + "index.json"
    return _text(f"No feed at {request.path}. Every feed is listed at {index}\n", 404)


def _text(body: str, status: int) -> Response:
    return current_app.response_class(body, status=status, content_type="text/plain; charset=utf-8")

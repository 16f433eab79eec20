"""CORS preflight for the feeds: another origin's script may revalidate a feed.

A script that sends ``If-None-Match`` or ``A-IM`` (not CORS-safelisted request
headers) makes the browser ask with ``OPTIONS`` first (the Fetch standard's CORS
preflight). Feeds and index files are public to every origin (see
:func:`feedpub.web.headers.tag_of`), so their preflight says yes to reading them
with the conditional and delta headers; anything else gets a plain answer with
``Allow``, which a browser takes as no.
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from .routes import current_view, not_found, starting, state

bp = Blueprint("preflight", __name__)
METHODS = "GET, HEAD"
# What a script may send besides the safelisted headers: validators and RFC 3229's A-IM.
REQUEST_HEADERS = "If-None-Match, If-Modified-Since, If-Match, If-Unmodified-Since, A-IM, Cache-Control"
MAX_AGE = str(24 * 3600)  # how long a browser may keep the answer (Chromium caps it at 2 hours)


@bp.route("/feeds/<path:name>", methods=["OPTIONS"])
def preflight(name: str) -> Response:
    current = state()
    view = current_view(current)
    if view is None:
        return starting()
    answer = view.served(name)
    if answer is None:
        return not_found()
    response = Response(status=204, headers={"Allow": f"{METHODS}, OPTIONS"})
    public = any(key == "Access-Control-Allow-Origin" for key, _ in answer.tags)
    if public and "Origin" in request.headers and "Access-Control-Request-Method" in request.headers:
        response.headers.update({"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": METHODS,
                                 "Access-Control-Allow-Headers": REQUEST_HEADERS,
                                 "Access-Control-Max-Age": MAX_AGE})
    return response

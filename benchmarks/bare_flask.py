"""The serving baseline: a bare Flask route returning the same bytes as one feed, with the same type.

``gunicorn -w 2 benchmarks.bare_flask:app`` with ``BENCH_BODY_FILE`` (a file of the static tree) and
``BENCH_CONTENT_TYPE``. It sets a strong ETag and answers ``If-None-Match`` with werkzeug's
``make_conditional``: the least a route needs to give 304s, nothing more (no Last-Modified,
Cache-Control, Vary or gzip).
"""

from __future__ import annotations

import hashlib
import os

from flask import Flask, Response, request


def make_app(body: bytes, content_type: str, path: str = "/feeds/all.xml") -> Flask:
    app = Flask(__name__, static_folder=None)
    etag = hashlib.sha256(body).hexdigest()[:32]

    @app.get(path)
    def feed() -> Response:
        response = Response(body, content_type=content_type)
        response.set_etag(etag)
        response.make_conditional(request)
        return response

    return app


def _from_environment() -> Flask | None:
    name = os.environ.get("BENCH_BODY_FILE")
    if not name:
        return None
    with open(name, "rb") as handle:
        body = handle.read()
    return make_app(body, os.environ.get("BENCH_CONTENT_TYPE", "application/rss+xml; charset=utf-8"),
                    os.environ.get("BENCH_PATH", "/feeds/all.xml"))


app = _from_environment()

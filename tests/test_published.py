"""The usual request for an output is answered in front of Flask (``web/published.py``), with the very
bytes and headers Flask's route gives it; everything else still reaches the route."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.test import Client, TestResponse

from feedpub.web import create_app

from .test_archives import archived_client

BUILDERS = pytest.mark.parametrize("one_builder", [True, False], ids=["one-builder", "own-snapshot"])
PATHS = ["/feeds/all.xml", "/feeds/ai.atom", "/feeds/ai.json", "/feeds/index.json", "/feeds/index.opml",
         "/feeds/topics/ai.html"]


def _counted(app: Flask) -> list[str]:
    """The paths of the requests Flask routed (its before_request hooks run for every routed request)."""
    routed: list[str] = []

    @app.before_request
    def count() -> None:
        from flask import request
        routed.append(request.full_path)

    return routed


def _route_only(app: Flask) -> Client:
    """A client of Flask's own WSGI app: its route, without anything in front of it."""
    return Client(lambda environ, start: Flask.wsgi_app(app, environ, start), TestResponse)


def _without(headers: list[tuple[str, str]], *names: str) -> list[tuple[str, str]]:
    return [(k, v) for k, v in headers if k not in ("Date", *names)]


@BUILDERS
@pytest.mark.parametrize("path", PATHS)
def test_the_usual_request_gets_the_routes_answer_without_flask(seeds: Path, one_builder: bool, path: str) -> None:
    app = create_app({"TESTING": True, "seeds_dir": str(seeds), "one_builder": one_builder})
    routed = _counted(app)
    client, route = app.test_client(), _route_only(app)
    for encoding in ({}, {"Accept-Encoding": "gzip"}):
        full = client.get(path, headers=encoding)
        assert full.status_code == 200 and routed == []
        for method, headers in [("GET", encoding), ("HEAD", encoding),
                                ("GET", {**encoding, "If-None-Match": full.headers["ETag"]}),
                                ("GET", {**encoding, "If-Modified-Since": full.headers["Last-Modified"]}),
                                ("GET", {**encoding, "If-None-Match": '"stale"'})]:
            answer = client.open(path, method=method, headers=headers)
            assert routed == [], (method, headers)
            expected = route.open(path, method=method, headers=headers)
            assert routed == [path + "?"]  # the route's own answer, to compare with
            routed.clear()
            assert (answer.status_code, answer.data) == (expected.status_code, expected.data), (method, headers)
            assert answer.headers["X-Content-Type-Options"] == "nosniff"  # the whole app's, in front too
            # The same headers in the same order (the route's own answer has no nosniff: it is added around both).
            assert _without(answer.headers.to_wsgi_list(), "X-Content-Type-Options") == \
                _without(expected.headers.to_wsgi_list()), (method, headers)
        assert client.get(path, headers={**encoding, "If-None-Match": full.headers["ETag"]}).status_code == 304
        assert client.head(path, headers=encoding).data == b""


@BUILDERS
def test_everything_else_is_routed(seeds: Path, one_builder: bool) -> None:
    app = create_app({"TESTING": True, "seeds_dir": str(seeds), "one_builder": one_builder})
    routed = _counted(app)
    client = app.test_client()
    etag = client.get("/feeds/all.xml").headers["ETag"]
    assert routed == []
    assert client.get("/feeds/all.xml?limit=1").status_code == 200  # a filtered view
    assert client.get("/feeds/all.xml", headers={"If-Match": etag}).status_code == 200  # preconditions
    assert client.get("/feeds/all.xml", headers={"If-Match": '"other"'}).status_code == 412
    assert client.get("/feeds/all.xml", headers={"If-Unmodified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"}) \
        .status_code == 412
    assert client.get("/feeds/no-such-feed.xml").status_code == 404
    assert client.get("/feeds//all.xml").status_code == 404  # not a name: routing's 404, as for any unknown path
    assert client.get("/feeds/caf\u00e9.xml").status_code == 404  # not ASCII: Flask decodes it, and finds nothing
    assert client.post("/feeds/all.xml").status_code == 405
    assert client.get("/healthz").status_code == 200
    assert client.get("/").status_code == 200
    assert routed == ["/feeds/all.xml?limit=1", "/feeds/all.xml?", "/feeds/all.xml?", "/feeds/all.xml?",
                      "/feeds/no-such-feed.xml?", "/feeds//all.xml?", "/feeds/caf\u00e9.xml?", "/feeds/all.xml?",
                      "/healthz?", "/?"]


def test_an_archive_page_is_answered_in_front_as_the_route_answers_it(write_article) -> None:  # type: ignore[no-untyped-def]
    """Archive pages are rendered when first asked for (own snapshot) or read from the store: in front as well."""
    client = archived_client(write_article)
    app = client.application
    routed = _counted(app)
    path = "/feeds/providers/example.com/archive/2021-01.xml"
    first = client.get(path)  # the first request renders it, in front
    assert first.status_code == 200 and b"<fh:archive" in first.data and routed == []
    expected = _route_only(app).get(path)
    assert (first.data, _without(first.headers.to_wsgi_list(), "X-Content-Type-Options")) == \
        (expected.data, _without(expected.headers.to_wsgi_list()))
    assert client.get(path, headers={"If-None-Match": first.headers["ETag"]}).status_code == 304


@pytest.mark.parametrize("config", [{"websub_hub": "https://hub.example/"}, {"delta_feeds": True}],
                         ids=["hub", "delta-feeds"])
def test_a_hub_or_delta_feeds_route_every_request(seeds: Path, config: dict[str, object]) -> None:
    """Then every feed's answer carries more than its output (a Link header, Vary: A-IM)."""
    app = create_app({"TESTING": True, "seeds_dir": str(seeds), **config})
    routed = _counted(app)
    answer = app.test_client().get("/feeds/all.xml")
    assert routed == ["/feeds/all.xml?"]
    assert ("Link" in answer.headers) == ("websub_hub" in config)
    assert ("A-IM" in answer.headers.get("Vary", "")) == ("delta_feeds" in config)


def test_a_worker_answered_in_front_starts_its_reload_thread(seeds: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker whose first request finds a published version answers it in front of Flask: it must still start
    its reload thread (to take over building should the builder die), as the route's before_request would."""
    from feedpub.web import watcher

    builder = create_app({"TESTING": True, "seeds_dir": str(seeds)})  # publishes the first version now
    assert builder.test_client().get("/feeds/all.xml").status_code == 200
    started: list[object] = []
    done = threading.Event()

    def start(state: object) -> threading.Thread:
        started.append(state)
        thread = threading.Thread(target=done.wait, daemon=True)
        thread.start()
        return thread

    monkeypatch.setattr(watcher, "start", start)
    worker = create_app({"seeds_dir": str(seeds)})  # a server's app: no TESTING
    routed = _counted(worker)
    try:
        client = worker.test_client()
        assert client.get("/feeds/all.xml").status_code == 200 and client.get("/feeds/ai.xml").status_code == 200
        assert routed == [] and started == [worker.extensions["feedpub"]]  # once, by the first request
    finally:
        done.set()

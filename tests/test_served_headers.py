"""Each output's headers are made once per version (``headers.Served``), yet every answer carries what
werkzeug's own path gives, for the version it serves."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from flask.testing import FlaskClient
from werkzeug.datastructures import Headers
from werkzeug.http import parse_date

from feedpub.render.site import Output
from feedpub.settings import Settings
from feedpub.web import create_app, views
from feedpub.web.headers import served, tagged, trusted
from feedpub.web.store import prepare

from .test_archives import archived_client

BUILDERS = pytest.mark.parametrize("one_builder", [True, False], ids=["one-builder", "own-snapshot"])
# A precondition that passes: the request takes the route's checked path (preconditions, then make_conditional).
PASSES = {"If-Unmodified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"}


def _client(seeds: Path, one_builder: bool) -> FlaskClient:
    return create_app({"TESTING": True, "seeds_dir": str(seeds), "one_builder": one_builder}).test_client()


def _same_as_checked(client: FlaskClient, path: str, headers: dict[str, str]) -> Headers:
    """The answer to ``path``, whose headers must be those of the same request through the checked path."""
    answer = client.get(path, headers=headers)
    checked = client.get(path, headers={**headers, **PASSES})
    assert answer.status_code == checked.status_code and answer.data == checked.data, path
    assert [h for h in answer.headers if h[0] != "Date"] == [h for h in checked.headers if h[0] != "Date"], path
    names = [name for name, _ in answer.headers]
    # make_conditional's place for Date: after the representation's headers, before the purge keys.
    assert names.index("Date") == names.index("Surrogate-Key") - 1, names
    assert abs((parse_date(answer.headers["Date"]) - datetime.now(UTC)).total_seconds()) < 5
    return answer.headers


@BUILDERS
@pytest.mark.parametrize("path", ["/feeds/all.xml", "/feeds/ai.json", "/feeds/ai.atom?limit=1", "/feeds/index.json",
                                  "/feeds/topics/ai.html", "/providers/wired.com"])
def test_every_answer_has_the_headers_of_the_checked_path(seeds: Path, one_builder: bool, path: str) -> None:
    client = _client(seeds, one_builder)
    for encoding in ({}, {"Accept-Encoding": "gzip"}):
        full = _same_as_checked(client, path, encoding)
        assert full["Content-Encoding" if encoding else "Vary"] == ("gzip" if encoding else "Accept-Encoding")
        revalidated = _same_as_checked(client, path, {**encoding, "If-None-Match": full["ETag"]})
        assert "Content-Type" not in revalidated and "Content-Length" not in revalidated  # werkzeug's 304
        _same_as_checked(client, path, {**encoding, "If-Modified-Since": full["Last-Modified"]})
        stale = _same_as_checked(client, path, {**encoding, "If-None-Match": '"stale"'})  # a 200, body and all
        assert [h for h in stale if h[0] != "Date"] == [h for h in full if h[0] != "Date"]


def test_an_archive_page_keeps_its_long_max_age(write_article) -> None:  # type: ignore[no-untyped-def]
    client = archived_client(write_article)
    path = "/feeds/providers/example.com/archive/2021-01.xml"
    headers = _same_as_checked(client, path, {})
    assert headers["Cache-Control"].startswith("public, max-age=2592000, ")
    assert _same_as_checked(client, path, {"If-None-Match": headers["ETag"]})["Cache-Control"] == \
        headers["Cache-Control"]


def _add_article(seeds: Path, name: str, topic: str) -> None:
    """A published copy of a seed with a URL of its own, listed under ``topic`` as well."""
    source = next(p for p in sorted(seeds.iterdir()) if "published: true" in p.read_text("utf-8"))
    text = source.read_text("utf-8").replace('webUrl: "https://', f'webUrl: "https://{name}.', 1)
    (seeds / f"{name}.txt").write_text(text.replace("topics:\n", f"topics:\n  - {topic}\n", 1), "utf-8")


@BUILDERS
def test_a_new_version_is_answered_with_its_own_headers(seeds: Path, one_builder: bool) -> None:
    app = create_app({"TESTING": True, "seeds_dir": str(seeds), "one_builder": one_builder})
    client = app.test_client()
    before = {enc: client.get("/feeds/all.xml", headers={"Accept-Encoding": enc}) for enc in ("", "gzip")}
    assert client.get("/feeds/quantum-widgets.xml").status_code == 404
    _add_article(seeds, "fresh", "Quantum Widgets")
    assert app.extensions["feedpub"].reload() is True
    plain = client.get("/feeds/all.xml")
    packed = client.get("/feeds/all.xml", headers={"Accept-Encoding": "gzip"})
    assert plain.data != before[""].data and gzip.decompress(packed.data) == plain.data
    assert plain.headers["ETag"] != before[""].headers["ETag"]
    assert packed.headers["ETag"] == plain.headers["ETag"][:-1] + '-gzip"' != before["gzip"].headers["ETag"]
    assert plain.headers["Content-Length"] == str(len(plain.data))
    assert packed.headers["Content-Length"] == str(len(packed.data))
    for old in before.values():  # the copy a client holds from the last version is no longer current
        again = client.get("/feeds/all.xml", headers={"Accept-Encoding": old.headers.get("Content-Encoding", ""),
                                                        "If-None-Match": old.headers["ETag"]})
        assert again.status_code == 200
    new = client.get("/feeds/quantum-widgets.xml")
    assert new.status_code == 200
    assert new.headers["Surrogate-Key"] == new.headers["Cache-Tag"] == "quantum-widgets"


def test_headers_made_once_are_checked_by_werkzeug_once() -> None:
    prepared = prepare(Output(b"<rss/>", "application/rss+xml; charset=utf-8", datetime(2024, 1, 1, tzinfo=UTC)))
    settings = Settings.load({})
    answer = served(prepared, tagged("ai", True), False, settings)
    for headers in (answer.plain, answer.gzip, answer.tags):
        made = trusted(list(headers))
        assert made == Headers(headers) and list(made) == list(Headers(headers))
        made.add("X-Added", "1")  # a request's own copy: the record is never changed by an answer
        assert len(headers) == len(Headers(headers)) != len(made)
    with pytest.raises(ValueError, match="newline"):
        served(prepared, (("Surrogate-Key", "ai\r\nSet-Cookie: x=1"),), False, settings)


def test_a_version_another_process_published_is_served_within_a_millisecond(
        seeds: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store is asked for a newer version once a millisecond at most, and at least, however busy."""
    clock = [1000.0]
    monkeypatch.setattr(views, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    config = {"TESTING": True, "seeds_dir": str(seeds), "cache_dir": str(tmp_path / "cache")}
    builder, server = create_app(config), create_app(config)  # two processes' apps: one store, one builder
    client = server.test_client()
    old = client.get("/feeds/all.xml").headers["ETag"]
    _add_article(seeds, "fresh", "Quantum Widgets")
    assert builder.extensions["feedpub"].reload() is True
    seen = []
    for _ in range(6):  # requests 0.6 ms apart, as under load
        clock[0] += views.RECHECK * 0.6
        seen.append(client.get("/feeds/all.xml").headers["ETag"] != old)
    assert seen == [False, True, True, True, True, True]
    assert client.get("/feeds/quantum-widgets.xml").status_code == 200

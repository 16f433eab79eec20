"""Headers for browsers and CDNs on every answer: nosniff, CORS, Cache-Control's stale-* and surrogate keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient

from feedpub.cli import main
from feedpub.web import create_app

from .test_archives import archived_client

FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/feed+json")


def test_every_feed_carries_cors_nosniff_stale_and_its_key(client: FlaskClient) -> None:
    index = client.get("/feeds/index.json").json
    urls = [url for feed in index["feeds"] for url in feed["urls"].values()]
    assert len(urls) >= 30
    for url in urls:
        path = url.split("/feeds/", 1)[1]
        for query in ("", "?limit=1"):
            response = client.get(f"/feeds/{path}{query}")
            assert response.status_code == 200 and response.mimetype in FEED_TYPES, url
            headers = response.headers
            assert headers["Access-Control-Allow-Origin"] == "*", url
            assert headers["X-Content-Type-Options"] == "nosniff", url
            assert headers["Cache-Control"] == "public, max-age=300, stale-while-revalidate=60, stale-if-error=86400"
            key = path.rsplit(".", 1)[0]  # the feed's path without suffix
            assert headers["Surrogate-Key"] == key and headers["Cache-Tag"] == key, url
            assert headers.getlist("Vary") == ["Accept-Encoding"], url  # A-IM only when deltas are on
            revalidated = client.get(f"/feeds/{path}{query}", headers={"If-None-Match": headers["ETag"]})
            assert revalidated.status_code == 304
            assert revalidated.headers["Surrogate-Key"] == key and revalidated.headers["X-Content-Type-Options"]


@pytest.mark.parametrize(("path", "key", "cors"), [
    ("/feeds/index.json", "index", True),
    ("/feeds/index.opml", "index", True),
    ("/feeds/index.html", "index", False),
    ("/", "index", False),
    ("/feeds/", "index", False),
    ("/feeds/topics/ai.html", "ai", False),
    ("/topics/ai", "ai", False),
    ("/providers/wired.com", "providers/wired.com", False),
    ("/feeds/all.html", "all", False),
])
def test_pages_and_index_files_carry_their_key(client: FlaskClient, path: str, key: str, cors: bool) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["Surrogate-Key"] == key and response.headers["Cache-Tag"] == key
    assert ("Access-Control-Allow-Origin" in response.headers) is cors
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("path", ["/feeds/nothing.xml", "/healthz", "/feeds/ai.xml?limit=0", "/feeds/ai.xml?x=%0a"])
def test_nosniff_on_every_other_answer(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code in (200, 400, 404)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Access-Control-Allow-Origin" not in response.headers or path == "/healthz"


def test_an_archive_page_is_keyed_by_its_own_path(write_article) -> None:
    client = archived_client(write_article)
    response = client.get("/feeds/providers/example.com/archive/2021-01.xml")
    assert response.status_code == 200
    assert response.headers["Surrogate-Key"] == "providers/example.com/archive/2021-01"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Cache-Control"].startswith("public, max-age=2592000, stale-while-revalidate=60,")


def test_the_stale_directives_follow_their_settings(seeds: Path) -> None:
    def control(**settings: int) -> str:
        app = create_app({"TESTING": True, "seeds_dir": str(seeds), **settings})
        return str(app.test_client().get("/feeds/ai.json").headers["Cache-Control"])

    assert control(stale_while_revalidate=30, stale_if_error=600) == \
        "public, max-age=300, stale-while-revalidate=30, stale-if-error=600"
    assert control(stale_while_revalidate=0, stale_if_error=0) == "public, max-age=300"
    assert b"<ttl>5</ttl>" in create_app({"TESTING": True, "seeds_dir": str(seeds), "stale_if_error": 9}) \
        .test_client().get("/feeds/ai.xml").data  # the RSS ttl stays max-age's


def test_feedpub_settings_lists_the_new_settings() -> None:
    output = CliRunner().invoke(main, ["settings"]).output
    for variable, option in (("FEEDPUB_DELTA_FEEDS", "--delta-feeds/--no-delta-feeds"),
                             ("FEEDPUB_STALE_WHILE_REVALIDATE", "--stale-while-revalidate"),
                             ("FEEDPUB_STALE_IF_ERROR", "--stale-if-error"), ("FEEDPUB_PURGE_URL", "--purge-url")):
        line = next(line for line in output.splitlines() if line.startswith(variable))
        assert option in line, line
    help_text = CliRunner().invoke(main, ["serve", "--help"]).output
    assert "--delta-feeds" in help_text and "--purge-url" in help_text and "--stale-if-error" in help_text
    assert "--purge-url" in CliRunner().invoke(main, ["build", "--help"]).output


def test_the_index_is_readable_from_another_origin(client: FlaskClient) -> None:
    response = client.get("/feeds/index.json", headers={"Origin": "https://elsewhere.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert json.loads(response.data)["feeds"]


PREFLIGHT = {"Origin": "https://reader.example", "Access-Control-Request-Method": "GET",
             "Access-Control-Request-Headers": "if-none-match, a-im"}


@pytest.mark.parametrize("path", ["/feeds/all.xml", "/feeds/ai.json", "/feeds/index.json"])
def test_a_preflight_lets_another_origin_revalidate_a_feed(client: FlaskClient, path: str) -> None:
    response = client.options(path, headers=PREFLIGHT)
    assert response.status_code == 204 and response.data == b""
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert {"GET", "HEAD"} <= {m.strip() for m in response.headers["Access-Control-Allow-Methods"].split(",")}
    allowed = {h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"if-none-match", "if-modified-since", "a-im"} <= allowed
    assert int(response.headers["Access-Control-Max-Age"]) > 0
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_page_or_an_unknown_path_gets_no_cors_yes(client: FlaskClient) -> None:
    page = client.options("/feeds/topics/ai.html", headers=PREFLIGHT)
    assert page.status_code == 204 and "Access-Control-Allow-Origin" not in page.headers
    assert "GET" in page.headers["Allow"]
    assert client.options("/feeds/nothing-here.xml", headers=PREFLIGHT).status_code == 404
    plain = client.options("/feeds/all.xml")  # no preflight: only what is allowed
    assert plain.status_code == 204 and "Access-Control-Allow-Origin" not in plain.headers
    assert set(plain.headers["Allow"].replace(" ", "").split(",")) == {"GET", "HEAD", "OPTIONS"}

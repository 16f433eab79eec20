"""The Flask app through its test client: routes, types, caching, errors, reload, parity."""

from __future__ import annotations

import gzip
import os
import time
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from feedpub.cli import main
from feedpub.web import create_app

from .conftest import SITE_URL

TYPES = {
    ".xml": "application/rss+xml; charset=utf-8",
    ".atom": "application/atom+xml; charset=utf-8",
    ".json": "application/feed+json; charset=utf-8",
    ".html": "text/html; charset=utf-8",
}
FEEDS = ["all.xml", "all.atom", "all.json", "ai.xml", "ai.atom", "ai.json", "providers/wired.com.json",
         "natural-language-processing.atom",
         # the readable pages go through the same machinery
         "all.html", "topics/ai.html", "providers/wired.com.html", "topics/natural-language-processing.html"]


@pytest.mark.parametrize("name", FEEDS)
def test_feed_routes_answer_with_their_type_and_validators(client: FlaskClient, name: str) -> None:
    response = client.get(f"/feeds/{name}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == TYPES[Path(name).suffix]
    assert response.headers["ETag"].startswith('"') and not response.headers["ETag"].startswith('W/')
    assert response.headers["Cache-Control"] == "public, max-age=300, stale-while-revalidate=60, stale-if-error=86400"
    assert "Accept-Encoding" in response.headers["Vary"]
    assert parsedate_to_datetime(response.headers["Last-Modified"]).year == 2020
    assert int(response.headers["Content-Length"]) == len(response.data)


def test_index_types(client: FlaskClient) -> None:
    assert client.get("/feeds/index.json").headers["Content-Type"] == "application/json"
    assert client.get("/feeds/index.opml").headers["Content-Type"] == "text/x-opml; charset=utf-8"
    assert client.get("/feeds/index.html").headers["Content-Type"] == "text/html; charset=utf-8"
    feeds = client.get("/feeds/index.json").json["feeds"]
    assert {feed["urls"]["rss"] for feed in feeds} >= {f"{SITE_URL}/feeds/ai.xml", f"{SITE_URL}/feeds/all.xml"}


def test_last_modified_is_the_newest_entry(client: FlaskClient) -> None:
    body = client.get("/feeds/all.json").json
    newest = max(item["date_published"] for item in body["items"])
    last_modified = parsedate_to_datetime(client.get("/feeds/all.json").headers["Last-Modified"])
    assert last_modified.strftime("%Y-%m-%dT%H:%M:%SZ") == newest


def test_if_none_match_gives_304_without_body(client: FlaskClient) -> None:
    etag = client.get("/feeds/ai.atom").headers["ETag"]
    response = client.get("/feeds/ai.atom", headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.data == b""
    assert response.headers["ETag"] == etag
    weak = client.get("/feeds/ai.atom", headers={"If-None-Match": "W/" + etag})
    assert weak.status_code == 304  # weak comparison, as RFC 9110 requires for If-None-Match
    listed = client.get("/feeds/ai.atom", headers={"If-None-Match": f'"nope", {etag}'})
    assert listed.status_code == 304


def test_if_modified_since_gives_304(client: FlaskClient) -> None:
    last_modified = client.get("/feeds/ai.xml").headers["Last-Modified"]
    assert client.get("/feeds/ai.xml", headers={"If-Modified-Since": last_modified}).status_code == 304
    older = format_datetime(parsedate_to_datetime(last_modified).replace(year=2019), usegmt=True)
    assert client.get("/feeds/ai.xml", headers={"If-Modified-Since": older}).status_code == 200


def test_if_none_match_takes_precedence(client: FlaskClient) -> None:
    first = client.get("/feeds/ai.xml")
    # A matching date but a stale ETag: the ETag decides, so the body is sent.
    stale = client.get("/feeds/ai.xml", headers={"If-None-Match": '"stale"',
                                                 "If-Modified-Since": first.headers["Last-Modified"]})
    assert stale.status_code == 200 and stale.data == first.data
    # A matching ETag but an old date: still 304.
    fresh = client.get("/feeds/ai.xml", headers={"If-None-Match": first.headers["ETag"],
                                                 "If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"})
    assert fresh.status_code == 304


def test_head_matches_get(client: FlaskClient) -> None:
    for name in [*FEEDS, "index.json", "index.opml", "index.html"]:
        get, head = client.get(f"/feeds/{name}"), client.head(f"/feeds/{name}")
        assert head.status_code == 200 and head.data == b""
        for header in ("ETag", "Content-Type", "Content-Length", "Last-Modified", "Cache-Control"):
            assert head.headers[header] == get.headers[header]


def test_gzip_is_negotiated_with_its_own_etag(client: FlaskClient) -> None:
    plain = client.get("/feeds/all.xml")
    packed = client.get("/feeds/all.xml", headers={"Accept-Encoding": "gzip, deflate"})
    assert packed.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed.data) == plain.data
    assert packed.headers["ETag"] != plain.headers["ETag"]
    assert "Content-Encoding" not in plain.headers
    again = client.get("/feeds/all.xml", headers={"Accept-Encoding": "gzip", "If-None-Match": packed.headers["ETag"]})
    assert again.status_code == 304
    shouted = client.get("/feeds/all.xml", headers={"Accept-Encoding": "GZIP"})  # tokens are case-insensitive
    assert shouted.headers["Content-Encoding"] == "gzip" and shouted.data == packed.data
    refused = client.get("/feeds/all.xml", headers={"Accept-Encoding": "gzip;q=0"})
    assert "Content-Encoding" not in refused.headers


def test_compression_happens_once_per_content(app: Flask, client: FlaskClient) -> None:
    state = app.extensions["feedpub"]
    before = state.view().output("all.xml")
    client.get("/feeds/all.xml", headers={"Accept-Encoding": "gzip"})
    client.get("/feeds/all.xml", headers={"Accept-Encoding": "gzip"})
    assert state.view().output("all.xml") is before  # read from the store once, then kept compressed


def test_ttl_matches_max_age(seeds: Path) -> None:
    app = create_app({"TESTING": True, "seeds_dir": str(seeds), "max_age": 600})
    response = app.test_client().get("/feeds/ai.xml")
    assert response.headers["Cache-Control"] == "public, max-age=600, stale-while-revalidate=60, stale-if-error=86400"
    assert b"<ttl>10</ttl>" in response.data


def test_unknown_feed_is_404_naming_the_index(client: FlaskClient) -> None:
    response = client.get("/feeds/no-such-topic.xml")
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("text/plain")
    assert f"{SITE_URL}/feeds/index.json".encode() in response.data


@pytest.mark.parametrize("path", [
    "/feeds/../pyproject.toml", "/feeds/%2e%2e/pyproject.toml", "/feeds/..%2fpyproject.toml",
    "/feeds/ai.xml%00", "/feeds/" + "a" * 5000 + ".xml", "/feeds/%ff%fe.xml", "/feeds/providers/../ai.xml",
    "/feeds/providers/", "/feeds/.feedpub-manifest.json", "/feeds//etc/passwd",
])
def test_malformed_paths_are_404(client: FlaskClient, path: str) -> None:
    assert client.get(path).status_code == 404


@pytest.mark.parametrize("method", ["post", "put", "delete", "patch"])
def test_other_methods_are_405(client: FlaskClient, method: str) -> None:
    response = getattr(client, method)("/feeds/ai.xml")
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]


def test_limit_trims_a_feed(client: FlaskClient) -> None:
    full = client.get("/feeds/all.json").json["items"]
    assert len(full) == 2
    one = client.get("/feeds/all.json?limit=1")
    assert one.status_code == 200
    assert [item["id"] for item in one.json["items"]] == [full[0]["id"]]
    assert one.headers["ETag"] != client.get("/feeds/all.json").headers["ETag"]
    assert client.get("/feeds/all.json?limit=50").json["items"] == full


@pytest.mark.parametrize("value", ["0", "-1", "51", "abc", "1.5", "", "١"])
def test_bad_limit_is_400(client: FlaskClient, value: str) -> None:
    response = client.get(f"/feeds/all.xml?limit={value}")
    assert response.status_code == 400
    assert b"limit" in response.data


def test_healthz(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json
    assert body["status"] == "ok"
    assert body["articles"] == 2
    assert body["feeds"] == 10
    assert body["last_reload"].startswith("20")


def _touch_later(path: Path) -> None:
    """Give an edited file a new mtime even on coarse-grained file systems."""
    later = time.time() + 5
    os.utime(path, (later, later))


def test_reload_picks_up_changes_and_keeps_unchanged_etags(app: Flask, client: FlaskClient, seeds: Path) -> None:
    state = app.extensions["feedpub"]
    before = {name: client.get(f"/feeds/{name}").headers["ETag"] for name in
              ("all.xml", "ai.xml", "providers/wired.com.xml", "providers/thenextweb.com.xml")}
    assert state.reload() is False  # nothing changed yet
    # Unpublish the Wired article: all, AI and wired.com change; thenextweb.com does not.
    wired = next(p for p in seeds.iterdir() if "wired.com" in p.read_text("utf-8") and
                 "published: true" in p.read_text("utf-8"))
    wired.write_text(wired.read_text("utf-8").replace("published: true", "published: false"), "utf-8")
    _touch_later(wired)
    assert state.reload() is True
    after = {name: client.get(f"/feeds/{name}").headers["ETag"] for name in before}
    assert after["all.xml"] != before["all.xml"]
    assert after["providers/wired.com.xml"] != before["providers/wired.com.xml"]
    assert after["providers/thenextweb.com.xml"] == before["providers/thenextweb.com.xml"]
    assert len(client.get("/feeds/all.json").json["items"]) == 1
    assert client.get("/feeds/providers/wired.com.xml").status_code == 200  # the feed stays, empty


def test_reload_adds_and_removes_articles(app: Flask, client: FlaskClient, seeds: Path) -> None:
    state = app.extensions["feedpub"]
    source = next(p for p in seeds.iterdir() if "thenextweb.com" in p.read_text("utf-8"))
    copy = seeds / "sub" / "new.md"
    copy.parent.mkdir()
    copy.write_text(source.read_text("utf-8").replace("thenextweb.com/artificial", "thenextweb.com/new-article")
                    .replace("2020-01-31T22:41:00Z", "2021-05-01T10:00:00Z"), "utf-8")
    assert state.reload() is True
    items = client.get("/feeds/all.json").json["items"]
    assert items[0]["date_published"] == "2021-05-01T10:00:00Z"
    copy.unlink()
    assert state.reload() is True
    assert len(client.get("/feeds/all.json").json["items"]) == 2


def test_broken_file_on_reload_keeps_the_last_good_version(app: Flask, client: FlaskClient, seeds: Path) -> None:
    state = app.extensions["feedpub"]
    good = next(p for p in seeds.iterdir() if "thenextweb.com" in p.read_text("utf-8"))
    text = good.read_text("utf-8")
    good.write_text(text[: len(text) // 3], "utf-8")  # caught half-written
    _touch_later(good)
    state.reload()
    titles = [item["title"] for item in client.get("/feeds/all.json").json["items"]]
    assert any("Ring and facial recognition" in title for title in titles)
    good.write_text(text.replace("Why Amazon’s Ring", "Updated: Why Amazon’s Ring"), "utf-8")
    later = time.time() + 10
    os.utime(good, (later, later))
    assert state.reload() is True
    titles = [item["title"] for item in client.get("/feeds/all.json").json["items"]]
    assert any(title.startswith("Updated:") for title in titles)


def test_missing_seeds_dir_keeps_serving_and_reports_unhealthy(app: Flask, client: FlaskClient, seeds: Path,
                                                              tmp_path: Path) -> None:
    state = app.extensions["feedpub"]
    body = client.get("/feeds/all.xml").data
    moved = tmp_path / "moved"
    seeds.rename(moved)
    state.reload()
    assert client.get("/healthz").status_code == 503
    assert client.get("/feeds/all.xml").data == body
    moved.rename(seeds)
    state.reload()
    assert client.get("/healthz").status_code == 200


def test_config_layers_defaults_env_and_explicit(seeds: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEEDPUB_SEEDS_DIR", str(seeds))
    monkeypatch.setenv("FEEDPUB_SITE_TITLE", "From env")
    monkeypatch.setenv("FEEDPUB_MAX_AGE", "120")
    app = create_app({"TESTING": True, "FEEDPUB_SITE_TITLE": "Explicit"})
    settings = app.extensions["feedpub"].settings
    assert settings.site_title == "Explicit"
    assert settings.max_age == 120
    assert settings.max_items == 50
    assert app.config["TESTING"] is True
    assert app.test_client().get("/feeds/all.json").json["title"] == "Explicit – All articles"


def _served_and_built(seeds_dir: Path, tmp_path: Path, runner,
                      max_items: int = 50) -> tuple[dict[str, bytes], dict[str, bytes]]:
    out = tmp_path / "out"
    result = runner.invoke(main, ["build", "--seeds", str(seeds_dir), "--out", str(out), "--site-url", SITE_URL,
                                  "--max-items", str(max_items)])
    assert result.exit_code == 0, result.output
    built = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()
             and not p.name.startswith(".")}
    config = {"TESTING": True, "seeds_dir": str(seeds_dir), "site_url": SITE_URL, "max_items": max_items}
    client = create_app(config).test_client()
    served = {}
    for name in built:
        response = client.get(f"/feeds/{name}")
        assert response.status_code == 200, name
        served[name] = response.data
    return built, served


def test_byte_parity_with_static_build_seeds(seeds: Path, tmp_path: Path, runner) -> None:
    built, served = _served_and_built(seeds, tmp_path, runner)
    # 10 feeds x (RSS, Atom, JSON Feed, page) + index.json, index.opml, index.html
    assert len(built) == 43
    assert built == served


# At max_items 50 every feed of the fixture corpus is complete (no archives); at 3 some have archive pages.
@pytest.mark.parametrize(("corpus", "max_items", "archived"),
                         [("corpus_dir", 50, False), ("corpus_dir", 3, True), ("generated_dir", 50, True)])
def test_byte_parity_with_static_build_corpus(corpus: str, max_items: int, archived: bool, tmp_path: Path, runner,
                                              request: pytest.FixtureRequest) -> None:
    built, served = _served_and_built(request.getfixturevalue(corpus), tmp_path, runner, max_items)
    assert len(built) > 20
    assert any("/archive/" in name for name in built) == archived  # archive pages are compared too
    assert any(b"<fh:complete/>" in body for body in built.values())
    assert built == served


def test_workers_keep_outputs_compressed_and_a_bounded_plain_cache(generated_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert CliRunner().invoke(main, ["build", "--seeds", str(generated_dir), "--out", str(out),
                                     "--site-url", SITE_URL, "--no-archives"]).exit_code == 0
    budget_mib = 1
    app = create_app({"TESTING": True, "seeds_dir": str(generated_dir), "site_url": SITE_URL,
                      "archives": False, "identity_cache_mb": budget_mib})
    state = app.extensions["feedpub"]
    assert all(output.body is None for output in state.site.outputs.values())  # no plain copies
    assert state.snapshot is None  # the builder's outputs are in the store, not in its memory
    client = app.test_client()
    names = sorted(state.builder.rows)
    total = sum(state.builder.rows[name].size for name in names)
    assert total > budget_mib << 20  # more than the budget, so some bodies must be evicted
    for name in names:
        plain = client.get(f"/feeds/{name}")
        assert plain.status_code == 200 and "Content-Encoding" not in plain.headers
        assert plain.data == (out / name).read_bytes(), name  # decompressed on demand, same bytes
        assert state.plain.held <= budget_mib << 20
    assert state.plain.misses == len(names) and state.plain.held < total
    hot = client.get("/feeds/all.xml")
    hits = state.plain.hits
    assert client.get("/feeds/all.xml").data == hot.data and state.plain.hits == hits + 1


def test_without_a_plain_cache_every_request_still_gets_the_body(seeds: Path) -> None:
    app = create_app({"TESTING": True, "seeds_dir": str(seeds), "site_url": SITE_URL, "identity_cache_mb": 0})
    client = app.test_client()
    first, second = client.get("/feeds/ai.xml"), client.get("/feeds/ai.xml")
    assert first.data == second.data and b"<rss" in first.data
    assert app.extensions["feedpub"].plain.held == 0
    assert client.get("/feeds/ai.xml", headers={"If-None-Match": first.headers["ETag"]}).status_code == 304


def test_feedpub_serve_sends_one_date_header(seeds: Path) -> None:
    import http.client
    import subprocess
    import sys

    from .test_gunicorn import _up, free_port, wait_for

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "feedpub", "serve", "--seeds", str(seeds), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _up(f"http://127.0.0.1:{port}"), 30, "feedpub serve to listen")
        for path, headers in (("/feeds/ai.xml", {}), ("/feeds/ai.xml", {"Accept-Encoding": "gzip"}),
                              ("/healthz", {}), ("/feeds/nope.xml", {})):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            response.read()
            dates = [value for name, value in response.getheaders() if name.lower() == "date"]
            assert len(dates) == 1, (path, response.getheaders())
            connection.close()
    finally:
        server.terminate()
        server.wait(10)


def test_create_app_takes_loaded_settings_or_setting_names_not_both(seeds: Path) -> None:
    from feedpub.settings import Settings

    settings = Settings.load({"seeds_dir": str(seeds), "max_items": 1})
    app = create_app({"TESTING": True}, settings=settings)
    assert app.extensions["feedpub"].settings is settings and app.config["TESTING"] is True
    assert len(app.test_client().get("/feeds/all.json").json["items"]) == 1
    with pytest.raises(TypeError, match="max_items"):
        create_app({"max_items": 3}, settings=settings)

"""Real readers and RFC 3229 delta feeds: feedparser, reader (lemon24) and newsboat poll a running
``gunicorn wsgi:app`` with ``FEEDPUB_DELTA_FEEDS`` on, an article is added, each polls again and gets
``226 IM Used`` (read from gunicorn's access log), and each ends with every entry exactly once.

A missing reader skips the test locally and fails it in CI (``FEEDPUB_REQUIRE_READERS=1``).
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from .readers_support import (
    FIXTURE_CORPUS,
    LOCAL_ONLY,
    Entry,
    GunicornServer,
    Request,
    describe,
    entries_of,
    fetch,
    need,
    need_module,
    squash,
)
from .test_readers import newsboat_runs

PATHS = ["all.xml", "all.atom", "all.json"]
XML_PATHS = ["all.xml", "all.atom"]  # feedparser 6 and newsboat 2.21 read no JSON Feed
SOURCE = "2021-02-16-tailspin-northwinds-low-code-bet-is-paying-off.md"
ADDED_URL = "https://blog.example/added-while-polling"


@pytest.fixture(autouse=True)
def _local_only(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in LOCAL_ONLY.items():
        monkeypatch.setenv(name, value)


def _ids(entries: list[Entry]) -> list[str]:
    return [entry.id for entry in entries]


def _add_article(seeds: Path) -> None:
    text = (seeds / SOURCE).read_text("utf-8")
    text = re.sub(r'(?m)^(webUrl|originalUrl): ".*"$', f'\\1: "{ADDED_URL}"', text)
    text = re.sub(r"(?m)^publishedDateTime: .*$", "publishedDateTime: 2021-02-17T09:00:00Z", text)
    (seeds / "2021-02-17-added.md").write_text(text.replace('title: "', 'title: "Added: ', 1), "utf-8")


def _wait_for(server: GunicornServer, before: dict[str, str]) -> None:
    """Until every feed has a new ETag in answer after answer (either worker may answer any one)."""
    deadline = time.monotonic() + 20
    streak = 0
    while streak < 20:
        assert time.monotonic() < deadline, "the server did not pick up the added article"
        moved = all(fetch(server.feed_url(path))[1]["ETag"] != etag for path, etag in before.items())
        streak = streak + 1 if moved else 0


class FeedparserApp:
    """An application built on feedparser: keeps entries by id and its validators, and polls with them."""

    def __init__(self, feedparser: Any, url: str) -> None:
        self.feedparser, self.url = feedparser, url
        self.entries: dict[str, str] = {}
        self.etag: str | None = None
        self.modified: str | None = None
        self.statuses: list[int] = []
        self.received: list[str] = []  # ids of every entry a poll delivered, in order

    def poll(self) -> None:
        parsed = self.feedparser.parse(self.url, etag=self.etag, modified=self.modified)
        assert not parsed.bozo, parsed.get("bozo_exception")
        self.statuses.append(parsed.status)
        self.etag, self.modified = parsed.get("etag", self.etag), parsed.get("modified", self.modified)
        for entry in parsed.entries:
            self.received.append(entry.id)
            self.entries[entry.id] = entry.title


def _reader_update(reader: Any) -> dict[str, Any]:
    values = {result.url: result.value for result in reader.update_feeds_iter(scheduled=False)}
    assert not any(isinstance(value, Exception) for value in values.values()), values
    return values


def test_each_reader_gets_a_delta_after_an_article_is_added(tmp_path: Path) -> None:
    feedparser = need_module("feedparser")
    reader_module = need_module("reader", "sgmllib")
    need("newsboat")
    seeds = Path(shutil.copytree(FIXTURE_CORPUS, tmp_path / "seeds"))
    with GunicornServer(seeds, tmp_path / "gunicorn", FEEDPUB_DELTA_FEEDS="true", FEEDPUB_RELOAD_INTERVAL="0.3",
                        FEEDPUB_CACHE_DIR=str(tmp_path / "cache")) as server:
        before = {path: fetch(server.feed_url(path)) for path in PATHS}
        start = server.mark()
        apps = {path: FeedparserApp(feedparser, server.feed_url(path)) for path in XML_PATHS}
        for app in apps.values():
            app.poll()
            app.poll()
        reader = reader_module.make_reader(str(tmp_path / "reader.sqlite"))
        for path in PATHS:
            reader.add_feed(server.feed_url(path))
        first, again = _reader_update(reader), _reader_update(reader)
        assert all(value is not None for value in first.values()) and set(again.values()) == {None}
        for path in XML_PATHS:
            newsboat_runs(tmp_path / f"newsboat-{path}", [server.feed_url(path)], runs=3)

        _add_article(seeds)
        _wait_for(server, {path: answer[1]["ETag"] for path, answer in before.items()})
        for app in apps.values():
            app.poll()
        added = _reader_update(reader)
        for path in XML_PATHS:
            newsboat_runs(tmp_path / f"newsboat-{path}", [server.feed_url(path)], runs=1)

        now = {path: entries_of(fetch(server.feed_url(path))[2], "." + path.rsplit(".", 1)[1]) for path in PATHS}
        log = server.requests(start, expect=2 * 3 + 3 * 3 + 2 * 4)
        try:
            _check_feedparser(apps, before, now)
            _check_reader(reader, server, added, now)
            _check_newsboat(tmp_path, now)
            _check_log(log)
        finally:
            reader.close()


def _check_feedparser(apps: dict[str, FeedparserApp], before: dict[str, Any], now: dict[str, list[Entry]]) -> None:
    for path, app in apps.items():
        held = entries_of(before[path][2], "." + path.rsplit(".", 1)[1])
        assert app.statuses == [200, 304, 226], path
        # The delta delivered the added entry alone: nothing the application held came again.
        assert app.received == [*_ids(held), ADDED_URL], path
        assert sorted(app.entries) == sorted(_ids(now[path])) and len(now[path]) == len(held) + 1, path
        assert {(i, squash(t)) for i, t in app.entries.items()} == {(e.id, squash(e.title)) for e in now[path]}


def _check_reader(reader: Any, server: GunicornServer, added: dict[str, Any], now: dict[str, list[Entry]]) -> None:
    for path in PATHS:
        url = server.feed_url(path)
        assert added[url] is not None and added[url].new == 1 and added[url].modified == 0, (path, added[url])
        entries = [Entry(e.id, e.title or "", e.link or "") for e in reader.get_entries(feed=url)]
        assert sorted(_ids(entries)) == sorted(_ids(now[path])), path  # every entry exactly once
        assert {(e.id, squash(e.title)) for e in entries} == {(e.id, squash(e.title)) for e in now[path]}, path


def _check_newsboat(tmp_path: Path, now: dict[str, list[Entry]]) -> None:
    for path in XML_PATHS:
        with sqlite3.connect(tmp_path / f"newsboat-{path}" / "cache.db") as db:
            rows = db.execute("SELECT guid, title FROM rss_item WHERE deleted = 0").fetchall()
        assert sorted(guid for guid, _ in rows) == sorted(_ids(now[path])), path  # every entry exactly once
        assert {(guid, squash(title)) for guid, title in rows} == {(e.id, squash(e.title)) for e in now[path]}


def _check_log(log: list[Request]) -> None:
    def statuses(agent: str, path: str) -> list[int]:
        return [r.status for r in log if r.path == f"/feeds/{path}" and agent in (r.user_agent or "")]

    table = describe(log)
    for path in XML_PATHS:
        assert statuses("feedparser/", path) == [200, 304, 226], table
        assert statuses("newsboat/", path) == [200, 200, 304, 226], table
    for path in PATHS:
        assert statuses("python-reader/", path) == [200, 304, 226], table
    assert all(r.a_im == "feed" and r.if_none_match for r in log if r.status == 226), table

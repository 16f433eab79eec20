"""Validators move whenever the bytes move: static file mtimes, the server's Last-Modified, across workers."""

from __future__ import annotations

import logging
import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from flask import Flask
from lxml import etree
from werkzeug.http import parse_date

from feedpub.cli import main
from feedpub.first_published import Claim, Dated, PublishedTimes, next_time
from feedpub.ingest.loader import CorpusLoader
from feedpub.render.site import render_site
from feedpub.settings import Settings
from feedpub.tree_writer import write_site
from feedpub.web import create_app

from .conftest import SITE_URL
from .test_gunicorn import fetch, run_gunicorn, wait_for

UTC = UTC
DATES = [(1, 5), (1, 20), (2, 3), (2, 25), (3, 1), (3, 9)]  # newest first in a feed: a5, a4, a3, ...
NEWEST = datetime(2020, 3, 9, 10, tzinfo=UTC)


def write(seeds: Path, n: int, month: int, day: int, title: str | None = None) -> Path:
    data = {"title": title or f"Article number {n}", "webUrl": f"https://example.com/a{n}",
            "publishedDateTime": f"2020-{month:02d}-{day:02d}T10:00:00Z", "type": "video" if n % 2 else "article",
            "provider": {"name": "Example", "domain": "example.com"}, "topics": ["AI"]}
    path = seeds / f"a{n}.md"
    path.write_text("---\n" + yaml.safe_dump(data, sort_keys=False) + "---\n", "utf-8")
    return path


# Fewer than the six articles: feeds that fit whole are RFC 5005 complete and have no archive pages.
MAX_ITEMS = 3


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """Six articles over three months, so at ``MAX_ITEMS`` the first two months have archive pages."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for n, (month, day) in enumerate(DATES):
        write(seeds, n, month, day)
    return seeds


def third_entry_file(out_or_body: Path | bytes, seeds: Path) -> Path:
    body = out_or_body if isinstance(out_or_body, bytes) else (out_or_body / "all.xml").read_bytes()
    link = etree.fromstring(body).findall("channel/item")[2].findtext("link")
    return seeds / f"a{link.rsplit('/a', 1)[1]}.md"


def retitle_same_length(path: Path) -> None:
    text = path.read_text("utf-8")
    assert "Article number" in text
    path.write_text(text.replace("Article number", "Article NUMBER"), "utf-8")


def build(seeds: Path, out: Path) -> str:
    result = CliRunner().invoke(main, ["build", "--seeds", str(seeds), "--out", str(out), "--site-url", SITE_URL,
                                       "--no-cache", "--max-items", str(MAX_ITEMS)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def files(out: Path) -> dict[str, tuple[int, int, bytes]]:
    return {p.relative_to(out).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(out.rglob("*")) if p.is_file()}


# -- the rule ----------------------------------------------------------------------------------------------


def test_the_rule_dates_new_bytes_after_the_old_at_whole_seconds() -> None:
    updated = datetime(2020, 3, 9, 10, tzinfo=UTC)
    now = datetime(2026, 1, 1, 12, 0, 0, 700000, tzinfo=UTC)
    assert next_time(None, "a", updated, now) == updated  # never seen: its entries date it
    first = next_time(None, "a", updated, now)
    second = next_time(Dated("a", first), "b", updated, now)
    assert second == datetime(2026, 1, 1, 12, tzinfo=UTC)  # now, as an HTTP date can say it (never in the future)
    third = next_time(Dated("b", second), "c", updated, now)  # again within the same second
    assert third == second + timedelta(seconds=1)
    assert next_time(Dated("c", third), "c", updated, now + timedelta(days=1)) == third  # same bytes: kept
    future = datetime(2030, 1, 1, tzinfo=UTC)  # a future-dated entry does not hide an edit either
    assert next_time(Dated("x", future), "y", future, now) == future + timedelta(seconds=1)


# -- the static build --------------------------------------------------------------------------------------


def test_a_same_length_edit_of_an_older_entry_moves_mtime_and_size_pair(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build(corpus, out)
    before = files(out)
    all_xml = (out / "all.xml").stat()
    assert all_xml.st_mtime == NEWEST.timestamp()  # a fresh build: dated by its newest entry
    retitle_same_length(third_entry_file(out, corpus))
    started = int(time.time())
    build(corpus, out)
    after = (out / "all.xml").stat()
    assert (out / "all.xml").read_bytes() != before["all.xml"][2] and after.st_size == all_xml.st_size
    # nginx's ETag and Last-Modified come from (mtime, size): both must move.
    assert (after.st_mtime_ns, after.st_size) != (all_xml.st_mtime_ns, all_xml.st_size)
    assert int(after.st_mtime) >= started > NEWEST.timestamp()
    # The January archive holds no edited entry: its bytes and date stay.
    assert files(out)["ai/archive/2020-01.xml"] == before["ai/archive/2020-01.xml"]


def test_an_unchanged_rebuild_keeps_bytes_and_the_publication_times(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build(corpus, out)
    retitle_same_length(third_entry_file(out, corpus))
    build(corpus, out)
    edited = files(out)
    assert edited["all.xml"][1] > NEWEST.timestamp() * 10**9
    again = build(corpus, out)
    assert "(0 rendered)" in again and "0 files written" in again
    assert files(out) == edited  # same inodes, mtimes and bytes, manifest included


def test_two_edits_within_one_second_get_two_http_dates(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    settings = Settings.load({"seeds_dir": str(corpus), "out_dir": str(out), "site_url": SITE_URL})
    now = datetime(2026, 6, 1, 12, 0, 0, 250000, tzinfo=UTC)
    write_site(render_site(CorpusLoader(corpus, 1 << 20).load(), settings), out, now)
    retitle_same_length(third_entry_file(out, corpus))
    write_site(render_site(CorpusLoader(corpus, 1 << 20).load(), settings), out, now)
    first = (out / "all.xml").stat().st_mtime
    third_entry_file(out, corpus).write_text(
        third_entry_file(out, corpus).read_text("utf-8").replace("Article NUMBER", "ARTICLE NUMBER"), "utf-8")
    write_site(render_site(CorpusLoader(corpus, 1 << 20).load(), settings), out, now + timedelta(microseconds=500))
    assert first == now.replace(microsecond=0).timestamp()
    assert (out / "all.xml").stat().st_mtime == first + 1


def test_a_late_article_moves_its_past_months_archive_page(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build(corpus, out)
    january = (out / "ai/archive/2020-01.xml").stat()
    february = files(out)["ai/archive/2020-02.xml"]
    assert january.st_mtime == datetime(2020, 1, 20, 10, tzinfo=UTC).timestamp()
    write(corpus, 6, 1, 10)  # older than January's newest entry: that alone would not move its date
    started = int(time.time())
    build(corpus, out)
    assert b"https://example.com/a6" in (out / "ai/archive/2020-01.xml").read_bytes()
    assert int((out / "ai/archive/2020-01.xml").stat().st_mtime) >= started
    assert files(out)["ai/archive/2020-02.xml"] == february


# -- the server --------------------------------------------------------------------------------------------


def server(seeds: Path, **config: str) -> Flask:
    return create_app({"TESTING": True, "seeds_dir": str(seeds), "site_url": SITE_URL, "max_items": MAX_ITEMS,
                       **config})


def reload(app: Flask) -> None:
    assert app.extensions["feedpub"].reload()


def test_if_modified_since_gets_new_bytes_after_an_edit(corpus: Path) -> None:
    app = server(corpus)
    client = app.test_client()
    first = client.get("/feeds/all.xml")
    old = first.headers["Last-Modified"]
    assert parse_date(old) == NEWEST
    assert client.get("/feeds/all.xml", headers={"If-Modified-Since": old}).status_code == 304
    retitle_same_length(third_entry_file(first.data, corpus))
    reload(app)
    again = client.get("/feeds/all.xml", headers={"If-Modified-Since": old})
    assert again.status_code == 200 and again.data != first.data
    assert parse_date(again.headers["Last-Modified"]) > NEWEST
    since_again = {"If-Modified-Since": again.headers["Last-Modified"]}
    assert client.get("/feeds/all.xml", headers=since_again).status_code == 304
    # A filtered view of it moves as well; an untouched archive page does not.
    assert client.get("/feeds/all.xml?limit=3", headers={"If-Modified-Since": old}).status_code == 200
    january = client.get("/feeds/ai/archive/2020-01.xml")
    assert parse_date(january.headers["Last-Modified"]) == datetime(2020, 1, 20, 10, tzinfo=UTC)


def test_a_late_article_moves_a_long_cached_archive_page(corpus: Path) -> None:
    app = server(corpus)
    client = app.test_client()
    page = client.get("/feeds/ai/archive/2020-01.xml")
    assert page.headers["Cache-Control"] == "public, max-age=2592000, stale-while-revalidate=60, stale-if-error=86400"
    write(corpus, 6, 1, 10)
    reload(app)
    late = client.get("/feeds/ai/archive/2020-01.xml", headers={"If-Modified-Since": page.headers["Last-Modified"]})
    assert late.status_code == 200 and b"https://example.com/a6" in late.data
    assert parse_date(late.headers["Last-Modified"]) > parse_date(page.headers["Last-Modified"])


@pytest.mark.parametrize("one_builder", ["true", "false"])
def test_workers_and_restarts_agree_on_one_date_per_version(corpus: Path, one_builder: str) -> None:
    """Two apps on one cache directory stand for two workers; a third starts after the change."""
    one, two = server(corpus, one_builder=one_builder), server(corpus, one_builder=one_builder)
    before = one.test_client().get("/feeds/all.xml")
    retitle_same_length(third_entry_file(before.data, corpus))
    reload(one)
    time.sleep(1.1)  # a worker-local clock would now give another second
    if one_builder == "true":
        assert not two.extensions["feedpub"].reload()  # one builds; the other serves what it published
    else:
        reload(two)  # each renders for itself, and claims the same date
    third = server(corpus, one_builder=one_builder)
    dates = {app.test_client().get("/feeds/all.xml").headers["Last-Modified"] for app in (one, two, third)}
    assert len(dates) == 1 and parse_date(dates.pop()) > NEWEST


def test_two_sites_sharing_a_cache_dir_date_their_own_outputs(corpus: Path, tmp_path: Path) -> None:
    """The default cache directory is the user's: another site's all.xml is another resource."""
    other = tmp_path / "other-seeds"
    other.mkdir()
    write(other, 9, 1, 7)
    for _ in range(2):  # each start claims its own bytes; neither moves the other's date
        dates = [server(seeds).test_client().get("/feeds/all.xml").headers["Last-Modified"]
                 for seeds in (corpus, other)]
        assert [parse_date(d) for d in dates] == [NEWEST, datetime(2020, 1, 7, 10, tzinfo=UTC)]


def test_a_stale_worker_never_overwrites_a_newer_claim(tmp_path: Path) -> None:
    fresh, stale = PublishedTimes(tmp_path), PublishedTimes(tmp_path)
    upd = datetime(2020, 1, 1, tzinfo=UTC)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    assert fresh.claim([Claim("all.xml", "v1", upd)], t0) == [upd]
    v3 = fresh.claim([Claim("all.xml", "v3", upd)], t0 + timedelta(seconds=10), t0 + timedelta(seconds=10))[0]
    # Read the files before v3 was claimed: gets a date just before v3's and leaves the row alone.
    assert stale.claim([Claim("all.xml", "v2", upd)], t0 + timedelta(seconds=5)) == [v3 - timedelta(seconds=1)]
    assert stale.claim([Claim("all.xml", "v3", upd)], t0 + timedelta(seconds=20)) == [v3]


def test_without_a_usable_cache_dir_each_worker_dates_its_own(corpus: Path, tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    caplog.set_level(logging.WARNING, "feedpub")
    app = server(corpus, cache_dir=str(blocker / "cache"), cache="false")
    client = app.test_client()
    first = client.get("/feeds/all.xml")
    assert parse_date(first.headers["Last-Modified"]) == NEWEST
    retitle_same_length(third_entry_file(first.data, corpus))
    reload(app)
    write(corpus, 6, 1, 10)
    reload(app)
    assert parse_date(client.get("/feeds/all.xml").headers["Last-Modified"]) > NEWEST
    warnings = [r for r in caplog.records if "publication times" in r.getMessage()]
    assert len(warnings) == 1 and str(blocker) in warnings[0].getMessage()


def test_gunicorn_workers_send_one_last_modified_for_a_changed_feed(corpus: Path, tmp_path: Path) -> None:
    """Both workers reload the edit; a third, started a second later (as --max-requests does), agrees too."""
    log = tmp_path / "access.log"
    fmt = "%(p)s|%({etag}o)s|%({last-modified}o)s"
    with run_gunicorn(corpus, tmp_path / "gunicorn.log", "--access-logfile", str(log), "--access-logformat", fmt,
                      FEEDPUB_RELOAD_INTERVAL="0.5") as (base, master):
        _, headers, body = fetch(base + "/feeds/all.xml")
        old_etag = headers["ETag"]
        retitle_same_length(third_entry_file(body, corpus))

        def answered_by(workers: int) -> bool:
            status, headers, _ = fetch(base + "/feeds/all.xml")
            return status == 200 and headers["ETag"] != old_etag and len(_answers(log, headers["ETag"])) >= workers

        wait_for(lambda: answered_by(2), 20, "both workers to serve the edited feed")
        time.sleep(1.1)  # a worker-local clock would now give another second
        os.kill(master.pid, signal.SIGTTIN)  # one more worker, booting on the edited files
        wait_for(lambda: answered_by(3), 30, "the new worker to serve the edited feed")
        seen = _answers(log, fetch(base + "/feeds/all.xml")[1]["ETag"])
    dates = set().union(*seen.values())
    assert len(seen) == 3 and len(dates) == 1, seen
    assert parse_date(dates.pop()) > NEWEST


def _answers(log: Path, etag: str) -> dict[str, set[str]]:
    """The Last-Modified each worker (by pid) sent with ``etag``."""
    found: dict[str, set[str]] = {}
    for line in log.read_text("utf-8").splitlines() if log.exists() else []:
        pid, sent, date = line.split("|")
        if sent.replace('\\"', '"') == etag:
            found.setdefault(pid, set()).add(date)
    return found

"""Real feed readers against feedpub's feeds.

Static files (every RSS and Atom feed of the seeds, of the fixture corpus and of a
generated corpus, archives included): feedparser and sfeed. Over HTTP from a running
``gunicorn wsgi:app`` on 127.0.0.1 (the seeds and the fixture corpus served together): reader (lemon24), newsboat and
rss2email, and one test that checks, from gunicorn's own access log, the request
headers every reader sent and that each repeat fetch was answered with a 304.

A missing reader skips its test with a clear message; with
``FEEDPUB_REQUIRE_READERS=1`` (set by ``.ci/run``) it fails instead.
"""

from __future__ import annotations

import email
import email.policy
import json
import logging
import mailbox
import os
import re
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from .conftest import SITE_URL
from .readers_support import (
    LOCAL_ONLY,
    Entry,
    GunicornServer,
    Request,
    archive_count,
    built_sites,
    by_path,
    clean_environ,
    combined_seeds,
    describe,
    entries_of,
    feed_count,
    feed_files,
    fetch,
    need,
    need_module,
    squash,
    xml_feed_count,
)

# The feeds the HTTP readers subscribe to: everything (seeds and fixture corpus), a topic
# whose entries carry related coverage, a topic whose feed is empty (its seeds are unpublished),
# and a provider feed.
FEEDS = ("all", "ai", "natural-language-processing", "providers/thenextweb.com")
XML_SUFFIXES = (".xml", ".atom")
SUFFIXES = (".xml", ".atom", ".json")
XML_PATHS = [f + s for f in FEEDS for s in XML_SUFFIXES]
ALL_PATHS = [f + s for f in FEEDS for s in SUFFIXES]


# ------------------------------------------------------------------ fixtures

@pytest.fixture(autouse=True)
def _local_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every reader talks to 127.0.0.1 directly, even where a proxy is configured."""
    for name, value in LOCAL_ONLY.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Static builds of the bundled seeds and of the corpus, at the default settings."""
    return built_sites(tmp_path_factory.mktemp("built"), SITE_URL)


def test_the_static_readers_read_every_corpus(built: dict[str, Path]) -> None:
    """Every corpus, each with feeds; the generated one and the fixture corpus at a small max_items with archives."""
    assert set(built) == {"seeds", "corpus", "corpus-archived", "generated"}
    assert all(feed_count({name: out}) > 0 for name, out in built.items())
    assert archive_count({"corpus-archived": built["corpus-archived"]}) > 0
    assert archive_count({"generated": built["generated"]}) > 0


def static_feeds(built: dict[str, Path], suffixes: tuple[str, ...]) -> list[tuple[str, Path]]:
    return [(f"{name}:{path.relative_to(out)}", path)
            for name, out in built.items() for suffix in suffixes for path in feed_files(out, suffix)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GunicornServer]:
    work = tmp_path_factory.mktemp("served")
    site = combined_seeds(work / "site")
    with GunicornServer(site, work / "gunicorn") as srv:
        yield srv


@pytest.fixture(scope="module")
def expected(server: GunicornServer) -> dict[str, list[Entry]]:
    """What each subscribed feed holds, read from the bytes the server sends."""
    out = {}
    for path in ALL_PATHS:
        status, _headers, body = fetch(server.feed_url(path))
        assert status == 200, (path, status)
        out[path] = entries_of(body, "." + path.rsplit(".", 1)[1])
    assert out["all.xml"] and len(out["ai.xml"]) >= 2, {p: len(e) for p, e in out.items()}
    return out


def _wait_settled(server: GunicornServer) -> int:
    """The log position once nothing more is being written (earlier tests' requests included)."""
    position = server.mark()
    time.sleep(0.1)
    while (now := server.mark()) != position:
        position = now
        time.sleep(0.1)
    return position


def _norm(entries: list[Entry]) -> set[tuple[str, str, str]]:
    return {(e.id, squash(e.title), e.link) for e in entries}


# ------------------------------------------------------------------ the readers, as functions

def run_newsboat(work: Path, urls: list[str]) -> tuple[subprocess.CompletedProcess[str], str, Path]:
    """One headless ``newsboat -x reload`` on the cache in ``work`` (HOME is ``work`` too)."""
    newsboat = need("newsboat")
    work.mkdir(parents=True, exist_ok=True)
    (work / "urls").write_text("".join(url + "\n" for url in urls), "utf-8")
    (work / "config").write_text("reload-threads 1\ndownload-timeout 10\n", "utf-8")
    log = work / f"newsboat-{time.monotonic_ns()}.log"
    proc = subprocess.run(
        [newsboat, "-u", str(work / "urls"), "-c", str(work / "cache.db"), "-C", str(work / "config"),
         "-l", "4", "-d", str(log), "-x", "reload"],
        env=clean_environ(HOME=str(work), **LOCAL_ONLY),
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )
    return proc, log.read_text("utf-8", "replace") if log.exists() else "", work / "cache.db"


def newsboat_runs(work: Path, urls: list[str], runs: int = 3) -> Path:
    """``runs`` reloads on one cache; newsboat exits 0 even on errors, so its log is checked."""
    for run in range(1, runs + 1):
        proc, log, cache = run_newsboat(work, urls)
        errors = [line for line in log.splitlines() if "ERROR" in line]  # USERERROR and ERROR
        assert proc.returncode == 0 and not errors, (
            f"newsboat run {run}: {proc.stdout}{proc.stderr}\n" + "\n".join(errors))
    return cache


class RSS2Email:
    """rss2email with its own config, data file and maildir under ``work``."""

    def __init__(self, work: Path) -> None:
        self.r2e = need("r2e")
        self.work = work
        self.maildir = work / "Maildir"
        self.maildir.mkdir(parents=True)  # r2e only creates <maildir-path>/<mailbox>
        self.config = work / "r2e.cfg"
        self.data = work / "r2e.json"
        self.config.write_text(
            "[DEFAULT]\nto = tester@example.invalid\nfrom = feeds@example.invalid\n"
            f"email-protocol = maildir\nmaildir-path = {self.maildir}\nmaildir-mailbox = INBOX\n",
            "utf-8",
        )

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.r2e, "-c", str(self.config), "-d", str(self.data), *args],
            env=clean_environ(HOME=str(self.work), **LOCAL_ONLY),
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
        )

    def subscribe(self, urls: list[str]) -> None:
        """The ``[feed.<name>]`` sections ``r2e add`` would write (one Python start-up less per feed)."""
        with open(self.config, "a", encoding="utf-8") as config:
            for n, url in enumerate(urls):
                config.write(f"\n[feed.feed{n}]\nurl = {url}\n")
        listed = self("list")
        assert listed.returncode == 0 and listed.stdout.count("\n") == len(urls), listed.stdout + listed.stderr

    def run(self) -> None:
        proc = self("run")
        errors = [line for line in proc.stderr.splitlines() if "[ERROR]" in line]
        assert proc.returncode == 0 and not errors, proc.stderr

    def mails(self) -> list[email.message.EmailMessage]:
        box = mailbox.Maildir(str(self.maildir / "INBOX"), create=False)
        return [email.message_from_bytes(box.get_bytes(key), policy=email.policy.default)  # type: ignore[misc]
                for key in sorted(box.keys())]


def reader_updates(db: Path, urls: list[str]) -> tuple[object, dict[str, object], dict[str, object]]:
    """``reader``: subscribe, then update twice (``scheduled=False``, or the second does nothing)."""
    reader = need_module("reader", "sgmllib")
    r = reader.make_reader(str(db))
    for url in urls:
        r.add_feed(url)
    first = {result.url: result.value for result in r.update_feeds_iter(scheduled=False)}
    second = {result.url: result.value for result in r.update_feeds_iter(scheduled=False)}
    return r, first, second


# ------------------------------------------------------------------ static files: feedparser, sfeed

def test_feedparser_parses_every_rss_and_atom_feed(built: dict[str, Path]) -> None:
    feedparser = need_module("feedparser")
    feeds = static_feeds(built, XML_SUFFIXES)
    assert len(feeds) == 2 * xml_feed_count(built)
    for name, path in feeds:
        body = path.read_bytes()
        parsed = feedparser.parse(body)
        assert not parsed.bozo, f"{name}: {parsed.get('bozo_exception')!r}"
        assert parsed.version == ("rss20" if path.suffix == ".xml" else "atom10"), name
        want = entries_of(body, path.suffix)
        assert len(parsed.entries) == len(want), name
        got = [Entry(e.get("id", ""), e.get("title", ""), e.get("link", "")) for e in parsed.entries]
        assert got == want, name
        # The feed's own links: RSS channel link / Atom alternate (the feed's readable page), and the self link.
        out = built[name.split(":")[0]]
        # (an archive, <feed>/archive/<month>, names its feed's page)
        rel = re.sub(r"/archive/[^/]+$", "", path.relative_to(out).with_suffix("").as_posix())
        page = f"{rel}.html" if rel == "all" or rel.startswith("providers/") else f"topics/{rel}.html"
        assert (out / page).is_file(), name
        assert parsed.feed.get("link", "") == f"{SITE_URL}/feeds/{page}", name
        self_links = [link.href for link in parsed.feed.get("links", []) if link.get("rel") == "self"]
        assert self_links == [f"{SITE_URL}/feeds/{path.relative_to(built[name.split(':')[0]])}"], name
        # Every entry's related coverage survives as rel="related" links, next to one alternate.
        for entry in parsed.entries:
            rels = [link.get("rel") for link in entry.get("links", [])]
            assert rels.count("alternate") == 1, (name, entry.get("id"))
            assert set(rels) <= {"alternate", "related"}, (name, entry.get("id"), rels)
    # The corpus entries have related coverage somewhere, and feedparser sees it.
    parsed = feedparser.parse((built["seeds"] / "all.atom").read_bytes())
    assert any(link.rel == "related" for entry in parsed.entries for link in entry.links)


SFEED_FIELDS = ("timestamp", "title", "link", "content", "content_type", "id", "author", "enclosure", "category")


def test_sfeed_turns_every_rss_and_atom_feed_into_tsv(built: dict[str, Path]) -> None:
    sfeed = need("sfeed")
    feeds = static_feeds(built, XML_SUFFIXES)
    assert len(feeds) == 2 * xml_feed_count(built)
    for name, path in feeds:
        with open(path, "rb") as stdin:  # sfeed < feed.xml
            proc = subprocess.run([sfeed], stdin=stdin, capture_output=True, timeout=30)
        assert proc.returncode == 0, (name, proc.stderr)
        rows = [dict(zip(SFEED_FIELDS, line.split("\t"), strict=True))
                for line in proc.stdout.decode("utf-8").splitlines()]
        want = entries_of(path.read_bytes(), path.suffix)
        # sfeed exits 0 on anything, so the rows themselves are the check.
        assert [Entry(r["id"], r["title"], r["link"]) for r in rows] == \
            [Entry(e.id, squash(e.title), e.link) for e in want], name
        # Dates: sfeed's UNIX time is the JSON Feed's date_published of the same entry. Archive pages have
        # no JSON twin: their entries are checked against the live JSON feed where they are still in it.
        archive = "/archive/" in path.as_posix()
        twin = Path(f"{path.parent.parent}.json") if archive else path.with_suffix(".json")
        items = {item["id"]: item for item in json.loads(twin.read_bytes())["items"]}
        for row in rows:
            assert row["content_type"] == "html" and row["content"], (name, row["id"])
            if row["id"] in items or not archive:
                published = datetime.fromisoformat(items[row["id"]]["date_published"].replace("Z", "+00:00"))
                assert row["timestamp"] == str(int(published.timestamp())), (name, row["id"])


# ------------------------------------------------------------------ over HTTP: reader, newsboat, rss2email

def test_reader_subscribes_to_rss_atom_and_json_over_http(
    server: GunicornServer, expected: dict[str, list[Entry]], tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    need_module("reader", "sgmllib")
    start = _wait_settled(server)
    urls = [server.feed_url(path) for path in ALL_PATHS]
    with caplog.at_level(logging.INFO, logger="reader"):
        r, first, second = reader_updates(tmp_path / "reader.sqlite", urls)
    try:
        for path, url in zip(ALL_PATHS, urls, strict=True):
            value = first[url]
            assert value is not None and not isinstance(value, Exception), (path, value)
            assert value.new == len(expected[path]) and value.modified == 0, (path, value)
            entries = list(r.get_entries(feed=url))
            got = [Entry(e.id, e.title or "", e.link or "") for e in entries]
            assert len(got) == len(expected[path]), path  # every entry exactly once
            assert _norm(got) == _norm(expected[path]), path
            version = r.get_feed(url).version
            assert version == {"xml": "rss20", "atom": "atom10", "json": "json11"}[path.rsplit(".", 1)[1]], path
        # The second update is "not modified" for every feed: reader logs it and stores nothing new.
        assert second == dict.fromkeys(urls), second
        not_modified = [m for m in caplog.messages if "status=not_modified" in m]
        assert len(not_modified) == len(urls), caplog.messages
        assert {url: sum(1 for _ in r.get_entries(feed=url)) for url in urls} == \
            {server.feed_url(p): len(expected[p]) for p in ALL_PATHS}
    finally:
        r.close()  # type: ignore[attr-defined]
    requests = by_path(server.requests(start, expect=2 * len(urls)))
    for path in ALL_PATHS:
        assert [q.status for q in requests[f"/feeds/{path}"]] == [200, 304], describe(requests[f"/feeds/{path}"])


def test_newsboat_reloads_the_served_feeds(
    server: GunicornServer, expected: dict[str, list[Entry]], tmp_path: Path,
) -> None:
    need("newsboat")
    start = _wait_settled(server)
    # One cache per feed: newsboat identifies an item by its guid alone, across feeds, so
    # an article that is in all.xml and ai.xml (same guid, by design) is stored once per
    # cache, under whichever feed was reloaded last. newsboat 2.21 has no JSON Feed support.
    caches = {path: newsboat_runs(tmp_path / path.replace("/", "_"), [server.feed_url(path)], runs=3)
              for path in XML_PATHS}
    for path, cache in caches.items():
        with sqlite3.connect(cache) as db:
            rows = db.execute("SELECT feedurl, guid, title, url FROM rss_item WHERE deleted = 0").fetchall()
            feeds = db.execute("SELECT rssurl, etag FROM rss_feed").fetchall()
        assert {feed for feed, *_ in rows} <= {server.feed_url(path)}, path
        got = [Entry(guid, title, link) for _, guid, title, link in rows]
        assert len(got) == len(expected[path]), path  # every entry once, after three reloads
        assert _norm(got) == _norm(expected[path]), path
        assert len(feeds) == 1 and feeds[0][1], f"newsboat stored no ETag for {path}: {feeds}"
    requests = by_path(server.requests(start, expect=3 * len(XML_PATHS)))
    for path in XML_PATHS:
        seen = requests[f"/feeds/{path}"]
        # newsboat 2.21 stores the validators on run 2 and sends them from run 3 on.
        assert [q.status for q in seen] == [200, 200, 304], describe(seen)
        assert not seen[0].conditional and not seen[1].conditional, describe(seen)
        assert seen[2].if_none_match == seen[1].etag and seen[2].if_modified_since == seen[1].last_modified, \
            describe(seen)


def test_rss2email_delivers_one_mail_per_entry_then_nothing(
    server: GunicornServer, expected: dict[str, list[Entry]], tmp_path: Path,
) -> None:
    need("r2e")
    start = _wait_settled(server)
    r2e = RSS2Email(tmp_path / "r2e")
    urls = [server.feed_url(path) for path in XML_PATHS]  # rss2email has no JSON Feed support
    r2e.subscribe(urls)
    r2e.run()
    mails = r2e.mails()
    want = [(server.feed_url(p), e) for p in XML_PATHS for e in expected[p]]
    assert len(mails) == len(want)
    got = sorted((m["X-RSS-Feed"], m["X-RSS-ID"], squash(str(m["Subject"])), m["X-RSS-URL"]) for m in mails)
    assert got == sorted((feed, e.id, squash(e.title), e.link) for feed, e in want)
    r2e.run()
    assert len(r2e.mails()) == len(want), "the second run delivered mail again"
    requests = by_path(server.requests(start, expect=2 * len(urls)))
    for path in XML_PATHS:
        assert [q.status for q in requests[f"/feeds/{path}"]] == [200, 304], describe(requests[f"/feeds/{path}"])


# ------------------------------------------------------------------ conditional GET, seen by the server

def test_every_reader_gets_304_on_its_repeat_fetch(server: GunicornServer, tmp_path: Path) -> None:
    """Record, from gunicorn's access log, what each reader sent; every repeat fetch must be a 304.

    sfeed is left out: it does no HTTP itself (``sfeed_update`` fetches with plain curl, no validators).
    """
    feedparser = need_module("feedparser")
    need_module("reader", "sgmllib")
    need("newsboat")
    need("r2e")
    paths = ["all.xml", "all.atom", "all.json", "ai.xml", "ai.atom", "ai.json"]
    xml_paths = [p for p in paths if not p.endswith(".json")]
    url = server.feed_url
    seen: dict[str, dict[str, list[Request]]] = {}

    def record(name: str, action, paths_fetched: list[str], requests_per_path: int) -> None:  # type: ignore[no-untyped-def]
        start = _wait_settled(server)
        action()
        seen[name] = by_path(server.requests(start, expect=requests_per_path * len(paths_fetched)))

    def with_feedparser() -> None:
        for path in xml_paths:  # feedparser 6 parses no JSON Feed
            first = feedparser.parse(url(path))
            again = feedparser.parse(url(path), etag=first.get("etag"), modified=first.get("modified"))
            assert first.status == 200 and again.status == 304 and not again.entries, path

    def with_reader() -> None:
        r, _first, second = reader_updates(tmp_path / "reader.sqlite", [url(p) for p in paths])
        r.close()  # type: ignore[attr-defined]
        assert all(value is None for value in second.values()), second

    record("feedparser", with_feedparser, xml_paths, 2)
    record("reader", with_reader, paths, 2)
    record("newsboat", lambda: [newsboat_runs(tmp_path / f"newsboat-{n}", [url(p)], runs=3)
                                for n, p in enumerate(xml_paths)], xml_paths, 3)

    def with_rss2email() -> None:
        r2e = RSS2Email(tmp_path / "r2e")
        r2e.subscribe([url(p) for p in xml_paths])
        r2e.run()
        r2e.run()

    record("rss2email", with_rss2email, xml_paths, 2)

    report = []
    for name, requests in seen.items():
        report.append(f"== {name}\n" + describe([q for qs in requests.values() for q in qs]))
    report_text = "\n".join(report)
    print(report_text)  # -rA / -s shows the table of what each reader sent
    fetched = {"feedparser": xml_paths, "reader": paths, "newsboat": xml_paths, "rss2email": xml_paths}
    for name, requests in seen.items():
        assert sorted(requests) == sorted(f"/feeds/{p}" for p in fetched[name]), report_text
        for path, history in requests.items():
            first, repeat = history[0], history[-1]
            assert first.status == 200 and not first.conditional, f"{name} {path}\n{report_text}"
            # The repeat fetch carries the validators of the 200 that came before it ...
            validated = [q for q in history[:-1] if q.status == 200][-1]
            assert repeat.if_none_match == validated.etag, f"{name} {path}\n{report_text}"
            assert repeat.if_modified_since == validated.last_modified, f"{name} {path}\n{report_text}"
            # ... and gets a 304.
            assert repeat.status == 304, f"{name} {path}\n{report_text}"
    agents = {name: {q.user_agent for qs in requests.values() for q in qs} for name, requests in seen.items()}
    assert any("newsboat/" in a for a in agents["newsboat"]), agents
    assert any("python-reader/" in a for a in agents["reader"]), agents


def test_missing_reader_skips_locally_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """The skip/fail switch itself (``.ci/run`` sets FEEDPUB_REQUIRE_READERS=1)."""
    from . import readers_support

    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(readers_support, "REQUIRE_READERS", False)
    with pytest.raises(pytest.skip.Exception, match=r"newsboat is not available.*apt-get install newsboat"):
        readers_support.need("newsboat")
    with pytest.raises(pytest.skip.Exception, match="no_such_module"):
        readers_support.need_module("no_such_module")
    monkeypatch.setattr(readers_support, "REQUIRE_READERS", True)
    with pytest.raises(pytest.fail.Exception, match="FEEDPUB_REQUIRE_READERS is set and sfeed is not available"):
        readers_support.need("sfeed")
    assert os.environ["PATH"] == "/nonexistent"

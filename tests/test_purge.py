"""The purge hook: a local receiver gets the surrogate keys and URLs a build or a reload changed."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from feedpub.cli import main
from feedpub.web import create_app

from .test_archives import ARTICLE, DATES
from .test_gunicorn import every_worker, fetch, run_gunicorn, wait_for


@dataclass
class Receiver:
    """What a purge receiver on 127.0.0.1 was sent; it answers 503 to the first ``fail`` POSTs."""

    url: str = ""
    fail: int = 0
    posts: list[dict[str, list[str]]] = field(default_factory=list)  # those it took
    refused: int = 0
    types: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def purged_keys(self) -> Counter[str]:
        with self.lock:
            return Counter(key for post in self.posts for key in post["keys"])

    def urls(self) -> Counter[str]:
        with self.lock:
            return Counter(url for post in self.posts for url in post["urls"])


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    got = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # http.server's naming
            data = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with got.lock:
                got.types.add(self.headers["Content-Type"])
                failing = got.refused < got.fail
                if failing:
                    got.refused += 1
                else:
                    got.posts.append(data)
            self.send_response(503 if failing else 204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    got.url = f"http://127.0.0.1:{server.server_address[1]}/purge"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield got
    server.shutdown()
    server.server_close()


def _wired(seeds: Path) -> Path:
    return next(p for p in seeds.iterdir() if "domain: wired.com" in p.read_text("utf-8"))


def _retitle(path: Path, prefix: str) -> None:
    path.write_text(path.read_text("utf-8").replace('title: "', f'title: "{prefix}', 1), "utf-8")


def test_build_posts_the_changed_keys_and_urls_once(seeds: Path, tmp_path: Path, receiver: Receiver) -> None:
    receiver.fail = 1  # refused once: sent again within the same build
    out = tmp_path / "out"
    args = ["build", "--seeds", str(seeds), "--out", str(out), "--purge-url", receiver.url]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert receiver.refused == 1 and receiver.types == {"application/json"}
    written = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")}
    base = "http://127.0.0.1:8000"
    pages = {f"{base}/{name.removesuffix('.html')}" for name in written
             if name.startswith(("topics/", "providers/")) and name.endswith(".html")}
    assert f"{base}/providers/wired.com" in pages
    assert set(receiver.urls()) == {f"{base}/feeds/{name}" for name in written} | {f"{base}/", f"{base}/feeds/"} | pages
    assert all(count == 1 for count in receiver.urls().values())
    assert {"all", "ai", "providers/wired.com", "index"} <= set(receiver.purged_keys())

    before = len(receiver.posts)
    assert CliRunner().invoke(main, args).exit_code == 0
    assert len(receiver.posts) == before  # nothing changed: nothing to purge

    wired = _wired(seeds)
    _retitle(wired, "Changed: ")
    assert CliRunner().invoke(main, args).exit_code == 0
    changed = receiver.posts[before:]
    assert len(changed) == 1
    keys = set(changed[0]["keys"])
    # The article's own feeds and the site's index files; no other provider.
    assert {"all", "providers/wired.com", "index"} <= keys
    assert "providers/thenextweb.com" not in keys
    assert f"{base}/feeds/providers/wired.com.atom" in changed[0]["urls"]
    assert f"{base}/providers/wired.com" in changed[0]["urls"]


def test_a_reload_is_purged_by_one_worker_with_the_keys_the_headers_carry(
        seeds: Path, tmp_path: Path, receiver: Receiver) -> None:
    receiver.fail = 2  # the receiver is down at first: the background thread retries
    with run_gunicorn(seeds, tmp_path / "gunicorn.log", FEEDPUB_RELOAD_INTERVAL="0.3",
                      FEEDPUB_PURGE_URL=receiver.url) as (base, _):
        every_worker(base + "/feeds/all.xml", lambda _: True)  # both workers are watching
        assert receiver.posts == []  # starting up purges nothing
        _retitle(_wired(seeds), "Live: ")
        wait_for(lambda: "providers/wired.com" in receiver.purged_keys(), 30, "the purge of providers/wired.com")
        time.sleep(2)  # the other worker has reloaded the same change by now
        keys, urls = receiver.purged_keys(), receiver.urls()
        assert receiver.refused == 2
        assert all(count == 1 for count in keys.values()), keys  # one worker only, once
        assert all(count == 1 for count in urls.values()), urls
        assert {"all", "providers/wired.com", "index"} <= set(keys)
        assert "providers/thenextweb.com" not in keys
        assert f"{base}/feeds/providers/wired.com.xml" in urls and f"{base}/providers/wired.com" in urls
        # Each purged URL names, in its own headers, a key that was purged.
        for url in urls:
            status, headers, _ = fetch(url)
            assert status == 200, url
            assert headers["Surrogate-Key"] in keys and headers["Cache-Tag"] == headers["Surrogate-Key"], url


def test_a_reload_purges_the_archive_pages_it_changed_and_what_it_removed(write_article, receiver: Receiver) -> None:
    for n, date in enumerate(DATES, 1):
        write_article(f"a{n}.md", ARTICLE.format(n=n, date=date))
    write_article("other.md", ARTICLE.format(n=9, date=DATES[-1]).replace("example.com}", "other.example}"))
    app = create_app({"TESTING": True, "seeds_dir": str(write_article.root), "max_items": 2,
                      "purge_url": receiver.url, "reload_interval": 0.1})
    state = app.extensions["feedpub"]
    # A late article of January: the January archive pages change (they are rendered on demand).
    write_article("late.md", ARTICLE.format(n=7, date="2021-01-25T10:00:00Z"))
    (write_article.root / "other.md").unlink()  # and the provider other.example goes away
    assert state.reload()
    wait_for(lambda: receiver.posts, 10, "the purge")
    keys, urls = set(receiver.purged_keys()), set(receiver.urls())
    base = "http://127.0.0.1:8000"
    assert {"ai/archive/2021-01", "providers/example.com/archive/2021-01", "providers/other.example"} <= keys
    assert "ai/archive/2021-03" not in keys  # March holds what it held
    assert {f"{base}/feeds/ai/archive/2021-01.xml", f"{base}/feeds/ai/archive/2021-01.atom",
            f"{base}/feeds/providers/other.example.json", f"{base}/providers/other.example"} <= urls
    assert app.test_client().get("/feeds/ai/archive/2021-01.xml").headers["Surrogate-Key"] == "ai/archive/2021-01"


def test_a_build_purges_the_feeds_it_removed(seeds: Path, tmp_path: Path, receiver: Receiver) -> None:
    out = tmp_path / "out"
    args = ["build", "--seeds", str(seeds), "--out", str(out), "--purge-url", receiver.url]
    assert CliRunner().invoke(main, args).exit_code == 0
    before = len(receiver.posts)
    _wired(seeds).unlink()  # wired.com's only article: its feeds go
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0 and " removed." in result.stdout and " 0 removed." not in result.stdout
    assert not (out / "providers" / "wired.com.xml").exists()
    [post] = receiver.posts[before:]
    base = "http://127.0.0.1:8000"
    assert "providers/wired.com" in post["keys"]
    assert {f"{base}/feeds/providers/wired.com.xml", f"{base}/feeds/providers/wired.com.json",
            f"{base}/providers/wired.com"} <= set(post["urls"])

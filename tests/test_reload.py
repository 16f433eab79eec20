"""One bad article never stops a reload, every worker agrees, and /healthz tells the truth.

An article that makes a renderer fail is that file's error: it is left out of
every feed and the rest is published. A reload that fails for any other reason
is retried, and /healthz says ``degraded`` meanwhile (and whenever a file is
rejected), ``unhealthy`` (503) only when the seeds directory is gone.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from feedpub.render import formats as formats_module
from feedpub.render import site as site_module
from feedpub.web import create_app
from feedpub.web import watcher as watcher_module

from .test_gunicorn import every_worker, run_gunicorn, wait_for
from .test_watcher import _events_available

BOMB = "Bomb: "  # titles that start so make the patched renderers fail


def _article(seeds: Path, name: str, slug: str, title: str) -> Path:
    """A published copy of a seed with its own URL and a title starting with ``title``."""
    source = next(p for p in sorted(seeds.iterdir()) if p.is_file() and "published: true" in p.read_text("utf-8"))
    text = source.read_text("utf-8").replace('webUrl: "https://', f'webUrl: "https://{slug}.', 1)
    path = seeds / name
    path.write_text(text.replace('title: "', f'title: "{title}', 1), "utf-8")
    return path


def _titles(client: FlaskClient, feed: str = "all.json") -> list[str]:
    return [item["title"] for item in client.get(f"/feeds/{feed}").json["items"]]


def _crash_in_entry_html(monkeypatch: pytest.MonkeyPatch) -> None:
    real = site_module.entry_html

    def entry_html(article, site_url):  # type: ignore[no-untyped-def]
        if article.title.startswith(BOMB):
            raise ValueError("All strings must be XML compatible")
        return real(article, site_url)

    monkeypatch.setattr(site_module, "entry_html", entry_html)


def _crash_in_one_format(monkeypatch: pytest.MonkeyPatch) -> None:
    def wrap(render):  # type: ignore[no-untyped-def]
        def render_json(draft, fmt):  # type: ignore[no-untyped-def]
            if any(a.title.startswith(BOMB) for a in draft.feed.entries):
                raise OverflowError("date value out of range")
            return render(draft, fmt)
        return render_json

    json_feed = formats_module.FORMATS["json"]
    monkeypatch.setitem(formats_module.FORMATS, "json", dataclasses.replace(json_feed, render=wrap(json_feed.render)))


def _break_opml(monkeypatch: pytest.MonkeyPatch, render: object) -> None:
    opml = formats_module.INDEX_FILES["index.opml"]
    monkeypatch.setitem(formats_module.INDEX_FILES, "index.opml", dataclasses.replace(opml, render=render))


@pytest.mark.parametrize("crash", [_crash_in_entry_html, _crash_in_one_format], ids=["every-format", "json-only"])
def test_an_article_no_renderer_takes_is_left_out_and_the_rest_published(
        app: Flask, client: FlaskClient, seeds: Path, monkeypatch: pytest.MonkeyPatch, crash) -> None:  # type: ignore[no-untyped-def]
    crash(monkeypatch)
    state = app.extensions["feedpub"]
    assert client.get("/healthz").json["status"] == "ok"
    bomb = _article(seeds, "bomb.md", "bomb", BOMB)
    state.reload()
    assert state.failed is None  # a reload that worked: its feeds are those without the bomb
    assert client.get("/healthz").json["status"] == "degraded"
    _article(seeds, "good.md", "good", "Good news: ")
    assert state.reload() is True
    for feed in ("all.json", "all.xml", "ai.json", "providers/thenextweb.com.atom"):
        body = client.get(f"/feeds/{feed}").get_data(as_text=True)
        assert "Good news: " in body and BOMB not in body, feed  # missing from every feed alike
    response = client.get("/healthz")
    health = response.json
    assert response.status_code == 200 and health["status"] == "degraded"
    assert health["rejected"] == 1 and health["problems"] >= 1
    assert health["first_problems"][0].startswith(f"{bomb.as_posix()}: error: could not be rendered as ")
    assert health["articles"] == 3  # the two seeds published, and the good one
    bomb.unlink()
    state.reload()  # no feed changes: the bomb was in none
    assert client.get("/healthz").json["status"] == "ok"


def test_a_reload_that_fails_is_reported_and_tried_again(app: Flask, client: FlaskClient, seeds: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    state = app.extensions["feedpub"]
    before = _titles(client)

    def broken(*args: object) -> bytes:
        raise RuntimeError("the index renderer has a bug")

    _break_opml(monkeypatch, broken)  # not one article's fault: nothing to isolate
    _article(seeds, "good.md", "good", "Good news: ")
    assert state.reload() is False
    assert _titles(client) == before  # the previous feeds are still served
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json["status"] == "degraded"
    assert "the last reload failed (RuntimeError)" in response.json["error"]
    assert "has a bug" not in response.get_data(as_text=True)  # the type, never the message
    assert state.reload() is False  # the same files again: not before a delay (1 s, then 2, 4... 30)
    monkeypatch.undo()
    _article(seeds, "later.md", "later", "Later: ")
    # A change since is tried at once, even from a round whose events name no article: and what
    # the failed round was told about (good.md) is not lost.
    assert state.reload(paths=[str(seeds / "notes.rst")]) is True
    titles = _titles(client)
    assert any(t.startswith("Good news: ") for t in titles) and any(t.startswith("Later: ") for t in titles)
    assert client.get("/healthz").json["status"] == "ok"


def test_a_failed_reload_is_tried_again_after_a_delay(app: Flask, client: FlaskClient, seeds: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    state = app.extensions["feedpub"]
    monkeypatch.setattr(state, "_retry_delay", 0.3)
    with monkeypatch.context() as patched:
        _break_opml(patched, lambda *args: 1 / 0)
        _article(seeds, "good.md", "good", "Good news: ")
        assert state.reload() is False and state.failed == "ZeroDivisionError"
    assert state.reload() is False  # nothing changed, too soon
    time.sleep(0.35)
    assert state.reload() is True  # the bug is gone (a transient failure): the same files, later
    assert any(t.startswith("Good news: ") for t in _titles(client))


def test_healthz_lists_the_first_rejected_files(app: Flask, client: FlaskClient, seeds: Path) -> None:
    state = app.extensions["feedpub"]
    for n in range(8):
        (seeds / f"broken{n}.md").write_text("---\ntitle: [unclosed\n---\n", "utf-8")
    os.mkdir(os.fsencode(seeds) + b"/caf\xe9")
    with open(os.fsencode(seeds) + b"/caf\xe9/bad\x1b[2J.md", "wb") as handle:
        handle.write(b"---\ntitle: no URL\n---\n")
    state.reload()  # rejected files change no feed
    response = client.get("/healthz")
    health = response.json
    assert response.status_code == 200 and health["status"] == "degraded"
    assert health["rejected"] == 9 and health["problems"] >= 9
    shown = health["first_problems"]
    assert len(shown) == 5 and all(": error: " in line for line in shown)
    assert shown[0].startswith(f"{seeds.as_posix()}/broken0.md:")
    everything = [str(p) for p in state.site.corpus.problems]
    odd = next(line for line in everything if "caf" in line)
    assert odd.startswith(f"{seeds.as_posix()}/caf\\xe9/bad\\x1b[2J.md: error: ")  # escaped, printable
    response.get_data().decode("ascii")  # and the JSON is plain ASCII


def test_a_file_kept_at_its_last_good_version_is_degraded(app: Flask, client: FlaskClient, seeds: Path) -> None:
    state = app.extensions["feedpub"]
    published = next(p for p in sorted(seeds.iterdir()) if "published: true" in p.read_text("utf-8"))
    title = _titles(client)[0]
    published.write_text(published.read_text("utf-8").replace("webUrl:", "webUrl: [", 1), "utf-8")  # half-saved
    state.reload()
    assert title in _titles(client)  # still served as it was
    health = client.get("/healthz").json
    assert health["status"] == "degraded" and health["rejected"] == 0
    assert health["first_problems"][0].startswith(f"{published.as_posix()}:")


def test_seeds_moved_away_is_unhealthy_at_once(app: Flask, client: FlaskClient, seeds: Path, tmp_path: Path) -> None:
    body = client.get("/feeds/all.xml").data
    seeds.rename(tmp_path / "away")  # no reload yet: /healthz looks for itself
    response = client.get("/healthz")
    assert response.status_code == 503 and response.json["status"] == "unhealthy"
    assert "missing or unreadable" in response.json["error"]
    assert client.get("/feeds/all.xml").data == body  # the last good feeds are still served
    (tmp_path / "away").rename(seeds)
    assert client.get("/healthz").status_code == 200


@pytest.mark.skipif(not _events_available(Path(__file__).parent), reason="no file-system events (inotify) here")
def test_seeds_moved_away_during_a_scan_keep_the_last_good_feeds(app: Flask, client: FlaskClient, seeds: Path,
                                                                  tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from feedpub.ingest import loader as loader_module

    titles = _titles(client)
    real_scan = loader_module.scan

    def moved_while_walked(root: Path) -> dict[str, tuple[int, int]]:
        seeds.rename(tmp_path / "away")  # after the check that it is there, before it is listed
        return real_scan(root)

    monkeypatch.setattr(loader_module, "scan", moved_while_walked)
    assert not app.extensions["feedpub"].reload(None)
    assert _titles(client) == titles  # not an empty site: a directory that went away is not empty
    assert client.get("/healthz").status_code == 503


def test_the_watcher_follows_its_directory_being_moved_and_replaced(seeds: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # Only an event or the watcher's own look at the directory may cause a reload: never the 30 s safety net.
    monkeypatch.setattr(watcher_module, "FULL_SCAN_EVERY", 3600.0)
    app = create_app({"seeds_dir": str(seeds), "reload_interval": 0.2})
    client = app.test_client()
    state = app.extensions["feedpub"]
    _titles(client)  # the first request starts the watcher
    time.sleep(0.3)
    seeds.rename(tmp_path / "away")
    wait_for(lambda: not state.healthy, 3, "the watcher to see the seeds gone")
    replacement = tmp_path / "replacement"
    (tmp_path / "away").rename(replacement)
    _article(replacement, "new.md", "new", "Replaced: ")
    replacement.rename(seeds)  # another directory where the watched one was
    wait_for(lambda: any(t.startswith("Replaced: ") for t in _titles(client)), 3, "the new directory's articles")
    assert client.get("/healthz").json["status"] == "ok"
    time.sleep(0.5)
    _article(seeds, "later.md", "later", "Later: ")  # and its events are listened to
    wait_for(lambda: any(t.startswith("Later: ") for t in _titles(client)), 3, "an event from the new directory")


# -- real gunicorn workers -------------------------------------------------------------------

CRASHING_APP = '''
"""wsgi:app, with a renderer that fails on one article (as a bug met by odd input would)."""
from feedpub.render import site
from feedpub.web import create_app

_real = site.entry_html


def entry_html(article, site_url):
    if article.title.startswith("Bomb: "):
        raise ValueError("All strings must be XML compatible")
    return _real(article, site_url)


site.entry_html = entry_html
app = create_app()
'''


@pytest.fixture(params=[False, True], ids=["workers-load", "preload"])
def crashing_server(seeds: Path, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    (tmp_path / "crashing_wsgi.py").write_text(CRASHING_APP, "utf-8")
    with open(os.fsencode(seeds) + b"/caf\xe9.md", "wb") as handle:  # a name that is not UTF-8, cache on
        handle.write(_article(seeds, "tmp.md", "cafe", "Caf\u00e9: ").read_bytes())
    (seeds / "tmp.md").unlink()
    pythonpath = os.pathsep.join([str(tmp_path), *sys.path])
    extra = ["--preload"] if request.param else []
    with run_gunicorn(seeds, tmp_path / "gunicorn.log", *extra, app="crashing_wsgi:app",
                      FEEDPUB_RELOAD_INTERVAL="0.5", PYTHONPATH=pythonpath) as (base, _):
        yield base


def test_gunicorn_workers_agree_after_an_unrenderable_article(crashing_server: str, seeds: Path,
                                                             tmp_path: Path) -> None:
    base = crashing_server
    all_json = base + "/feeds/all.json"
    assert every_worker(all_json, lambda answer: "https://cafe." in answer[2].decode())
    bomb = _article(seeds, "bomb.md", "bomb", BOMB)
    time.sleep(1)
    _article(seeds, "good.md", "good", "Good news: ")
    started = time.monotonic()

    def good(answer: tuple[int, dict[str, str], bytes]) -> bool:
        return "Good news: " in answer[2].decode() and BOMB not in answer[2].decode()

    wait_for(lambda: every_worker(all_json, good), 10, "every worker to serve the good article")
    assert time.monotonic() - started < 5  # within the reload window, not the 30 s safety net

    def degraded(answer: tuple[int, dict[str, str], bytes]) -> bool:
        status, _, body = answer
        health = json.loads(body)
        return (status == 200 and health["status"] == "degraded" and health["rejected"] == 1
                and health["first_problems"][0].startswith(f"{bomb.as_posix()}: error: could not be rendered"))

    assert every_worker(base + "/healthz", degraded)
    seeds.rename(tmp_path / "away")
    assert every_worker(base + "/healthz", lambda answer: answer[0] == 503)  # at once, in every worker
    assert every_worker(all_json, good)  # the last good feeds
    log = (tmp_path / "gunicorn.log").read_text("utf-8", "replace")
    assert "Worker failed to boot" not in log and "Traceback" not in log


def test_build_leaves_out_an_unrenderable_article_and_says_so(seeds: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from feedpub.cli import main

    _crash_in_entry_html(monkeypatch)
    good = _article(seeds, "good.md", "good", "Good news: ")
    bomb = _article(seeds, "bomb.md", "bomb", BOMB)
    for path in (good, bomb):  # old: only on archive pages, with one entry per live feed
        path.write_text(re.sub(r"(?m)^publishedDateTime: .*$", "publishedDateTime: 2019-06-15T00:00:00Z",
                               path.read_text("utf-8"), count=1), "utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["build", "--seeds", str(seeds), "--out", str(out), "--no-cache",
                                       "--max-items", "1"])
    assert result.exit_code == 0, result.output
    assert f"{bomb.as_posix()}: error: could not be rendered as " in result.stderr
    assert "1 rejected" in result.stdout
    written = {p.relative_to(out).as_posix(): p.read_text("utf-8") for p in out.rglob("*")
               if p.is_file() and not p.name.startswith(".")}
    assert "Good news: " in written["providers/thenextweb.com/archive/2019-06.atom"]
    assert all(BOMB not in text and "https://bomb." not in text for text in written.values())


def test_pages_rendered_on_demand_leave_the_article_out_too(seeds: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The server renders archive pages (and filtered feeds) when first asked for: an old article
    # found only there must not turn the request into a 500.
    _crash_in_entry_html(monkeypatch)
    for slug, title in (("old", "Old news: "), ("bomb", BOMB)):
        path = _article(seeds, f"{slug}.md", slug, title)
        path.write_text(re.sub(r"(?m)^publishedDateTime: .*$", "publishedDateTime: 2019-06-15T00:00:00Z",
                               path.read_text("utf-8"), count=1), "utf-8")
    app = create_app({"TESTING": True, "seeds_dir": str(seeds), "max_items": 1})
    client = app.test_client()
    for url in ("/feeds/providers/thenextweb.com/archive/2019-06.atom", "/feeds/all.json?limit=1&type=article"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert BOMB not in response.get_data(as_text=True)
    assert "Old news: " in client.get("/feeds/providers/thenextweb.com/archive/2019-06.atom").get_data(as_text=True)


@pytest.mark.parametrize("pool", [False, True], ids=["in-process", "process-pool"])
def test_an_exception_while_parsing_one_file_is_that_files_error(seeds: Path, pool: bool,
                                                                 caplog: pytest.LogCaptureFixture,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from feedpub.ingest import loader as loader_module
    from feedpub.ingest.loader import CorpusLoader

    real = loader_module.read_file

    def read_file(root: Path, rel: str, max_bytes: int):  # type: ignore[no-untyped-def]
        if rel == "bomb.md":
            raise KeyError("U2FsdGVkX1-TOPSECRET")  # a bug whose message quotes a value
        return real(root, rel, max_bytes)

    monkeypatch.setattr(loader_module, "read_file", read_file)
    if pool:
        monkeypatch.setattr(loader_module, "POOL_THRESHOLD", 2)
    bomb = _article(seeds, "bomb.md", "bomb", BOMB)
    _article(seeds, "good.md", "good", "Good news: ")
    corpus = CorpusLoader(seeds, 8 << 20, workers=2).load()
    assert any(a.title.startswith("Good news: ") for a in corpus.articles) and len(corpus.articles) == 3
    assert [str(p) for p in corpus.problems if p.path == bomb.as_posix()] == [
        f"{bomb.as_posix()}: error: could not be read: internal error (KeyError); please report it"]
    assert "TOPSECRET" not in caplog.text

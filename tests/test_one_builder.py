"""One builder, thin servers: real gunicorn workers share one builder through the store in the cache directory.

A change is parsed and rendered by one worker and served by all; when that
worker is killed, serving goes on and another takes over building.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import sqlite3
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from .test_gunicorn import WORKER, every_worker, fetch, run_gunicorn, wait_for
from .test_reload import _article


def _health(base: str) -> dict:  # type: ignore[type-arg]
    status, _, body = fetch(base + "/healthz")
    assert status == 200, body
    health: dict = json.loads(body)  # type: ignore[type-arg]
    return health


def _versions(cache: Path) -> int:
    with sqlite3.connect(cache / "feedpub" / "served.sqlite3") as db:
        return int(db.execute("SELECT max(id) FROM versions").fetchone()[0])


def _serving(title: str):  # type: ignore[no-untyped-def]
    return lambda answer: answer[0] == 200 and title in answer[2].decode()


def test_a_change_is_parsed_and_rendered_once_however_many_workers(seeds: Path, tmp_path: Path) -> None:
    cache = tmp_path / "xdg"
    with run_gunicorn(seeds, tmp_path / "gunicorn.log", workers=4, FEEDPUB_RELOAD_INTERVAL="0.5",
                      XDG_CACHE_HOME=str(cache)) as (base, _):
        assert every_worker(base + "/feeds/all.json", lambda answer: answer[0] == 200, workers=4)
        wait_for(lambda: "builder" in _health(base), 10, "a worker to build")
        before = _versions(cache)
        log_before = (tmp_path / "gunicorn.log").read_text("utf-8").count("reloaded:")
        _article(seeds, "new.md", "new", "Fresh: ")
        written = time.monotonic()
        wait_for(lambda: every_worker(base + "/feeds/all.json", _serving("Fresh: "), workers=4), 10,
                 "every worker to serve the new article")
        assert time.monotonic() - written <= 2.0
        time.sleep(1.0)  # any worker that would render it too has had its chance
        assert _versions(cache) == before + 1  # one new version
        log = (tmp_path / "gunicorn.log").read_text("utf-8")
        assert log.count("reloaded:") == log_before + 1  # rendered by one process, once
        builders = {_health(base)["builder"]["pid"] for _ in range(20)}
        assert len(builders) == 1  # every worker names the same builder
        assert _health(base)["builder"]["rendered"] > 0


def test_killing_the_builder_under_load_serving_goes_on_and_another_builds(seeds: Path, tmp_path: Path) -> None:
    with run_gunicorn(seeds, tmp_path / "gunicorn.log", workers=3, FEEDPUB_RELOAD_INTERVAL="0.3",
                      XDG_CACHE_HOME=str(tmp_path / "xdg")) as (base, _master):
        assert every_worker(base + "/feeds/all.xml", lambda answer: answer[0] == 200, workers=3)
        wait_for(lambda: "builder" in _health(base), 10, "a worker to build")
        builder = _health(base)["builder"]["pid"]
        statuses: Counter[int] = Counter()
        refused = 0
        stop = threading.Event()

        def load() -> None:
            nonlocal refused
            while not stop.is_set():
                try:
                    statuses[fetch(base + "/feeds/all.xml")[0]] += 1
                except (OSError, http.client.HTTPException):
                    refused += 1  # the one request the killed worker had accepted

        threads = [threading.Thread(target=load, daemon=True) for _ in range(3)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(0.5)
            os.kill(builder, signal.SIGKILL)
            killed = time.monotonic()
            try:
                wait_for(lambda: _health(base).get("builder", {}).get("pid") not in (None, builder), 15,
                         "another worker to take over building")
            except BaseException:
                for pid in {int(fetch(base + "/healthz")[1][WORKER]) for _ in range(20)}:
                    os.kill(pid, signal.SIGUSR1)
                time.sleep(1)
                raise
            _article(seeds, "after.md", "after", "After the kill: ")
            wait_for(lambda: every_worker(base + "/feeds/all.xml", _serving("After the kill: "), workers=3), 15,
                     "every worker to serve what the new builder rendered")
            took = time.monotonic() - killed
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        assert statuses[200] > 50 and set(statuses) == {200}, statuses  # no request failed meanwhile
        assert refused <= 3
        assert took < 10
        answered = {fetch(base + "/healthz")[1][WORKER] for _ in range(30)}
        assert str(builder) not in answered


def test_two_sites_sharing_a_cache_dir_never_prune_each_others_outputs(seeds: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A builder writes its bodies while it renders; another site's publish in between must leave them."""
    from feedpub.web import create_app, shared_store, store_builder

    other = tmp_path / "other"
    shutil.copytree(seeds, other)
    config = {"TESTING": True, "cache_dir": str(tmp_path / "cache")}
    first, second = (create_app({**config, "seeds_dir": str(d)}) for d in (seeds, other))
    monkeypatch.setattr(store_builder, "BODY_BATCH", 1)  # bodies reach the store one by one
    real = shared_store.SharedStore.add_bodies
    interleaved = []

    def add_bodies(store, bodies):  # type: ignore[no-untyped-def]
        real(store, bodies)
        if store.site == first.extensions["feedpub"].reader.store.site and not interleaved:
            interleaved.append(1)
            _article(other, "b.md", "b", "Second site: ")
            assert second.extensions["feedpub"].reload()  # publishes, and prunes, meanwhile

    monkeypatch.setattr(shared_store.SharedStore, "add_bodies", add_bodies)
    _article(seeds, "a.md", "a", "First site: ")
    assert first.extensions["feedpub"].reload() and interleaved
    client = first.test_client()
    names = [url.rsplit("/feeds/", 1)[1] for feed in client.get("/feeds/index.json").json["feeds"]
             for url in feed["urls"].values()]
    assert names and all(client.get(f"/feeds/{name}").status_code == 200 for name in names)


def test_an_edit_renders_only_the_documents_that_list_the_article(generated_dir: Path, tmp_path: Path) -> None:
    """The builder's memo is the published version: a live feed whose entries did not change is not
    rendered again (a topic's page and its archive pages share a place: the memo keeps them apart)."""
    from feedpub.web import create_app

    seeds = tmp_path / "seeds"
    shutil.copytree(generated_dir, seeds)
    state = create_app({"TESTING": True, "seeds_dir": str(seeds), "max_items": 5}).extensions["feedpub"]
    live = {a.url for feed in state.site.feeds for a in feed.entries}
    oldest = next(a for a in reversed(state.site.corpus.articles) if a.url not in live)  # in archives only
    path = Path(oldest.path)
    path.write_text(path.read_text("utf-8").replace('title: "', 'title: "Edited ', 1), "utf-8")
    assert state.reload()
    listing = [feed for feed in state.site.archives if any(a.url == oldest.url for a in feed.entries)]
    assert listing
    # Its archive pages in RSS and Atom (index files are made anew each time, uncounted); no live feed, no page.
    assert state.site.rendered == 2 * len(listing)


def test_an_unreadable_store_is_a_503_to_retry_not_a_crash(seeds: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    from feedpub.web import create_app, shared_store

    client = create_app({"TESTING": True, "seeds_dir": str(seeds)}).test_client()
    assert client.get("/feeds/all.xml").status_code == 200

    def damaged(*args: object) -> None:
        raise sqlite3.DatabaseError("database disk image is malformed")

    monkeypatch.setattr(shared_store.SharedStore, "output", damaged)
    response = client.get("/feeds/ai.xml")
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert b"try again" in response.data and b"malformed" not in response.data


def test_a_server_never_loads_in_create_app_and_its_first_request_waits_for_the_first_version(seeds: Path) -> None:
    """No worker spends its boot loading (gunicorn times out a worker that does not answer its
    heartbeat): the reload thread the first request starts builds, and that request waits for it."""
    from feedpub.web import create_app

    app = create_app({"seeds_dir": str(seeds), "reload_interval": 30})
    state = app.extensions["feedpub"]
    assert state.site is None and state.view() is None  # nothing loaded, nothing published yet
    response = app.test_client().get("/feeds/all.xml")
    assert response.status_code == 200 and b"<rss" in response.data
    assert app.test_client().get("/healthz").json["builder"]["pid"] == os.getpid()

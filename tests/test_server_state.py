"""The server's state has no hidden sharing: the on-demand cache, fork hooks, the GC, and what a version holds.

Each on-demand test runs twice: with one builder publishing to the shared store
(the default) and with each process rendering its own snapshot (``one_builder`` off).
"""

from __future__ import annotations

import gc
import os
import time
import weakref
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask

import feedpub.web.views as views_mod
from feedpub.cli import main
from feedpub.on_demand import OnDemand
from feedpub.web import create_app
from feedpub.web.state import FeedState

from .conftest import SITE_URL

BUILDERS = pytest.mark.parametrize("one_builder", [True, False], ids=["one-builder", "own-snapshot"])


def _app(seeds: Path, one_builder: bool = True) -> Flask:
    return create_app({"TESTING": True, "seeds_dir": str(seeds), "site_url": SITE_URL, "max_items": 30,
                       "one_builder": one_builder})


def _on_demand(state: FeedState) -> OnDemand:
    """The archive pages and filtered feeds the current version keeps."""
    view = state.view()
    return view.snapshot.on_demand if hasattr(view, "snapshot") else view.on_demand  # type: ignore[union-attr]


def _retitle(article: Path) -> None:
    """Prefix the article's title with "Changed: " (with an mtime a reload cannot miss)."""
    article.write_text(article.read_text("utf-8").replace('title: "', 'title: "Changed: ', 1), "utf-8")
    os.utime(article, ns=(time.time_ns(), time.time_ns() + 10**9))


def _counting_renders(monkeypatch: pytest.MonkeyPatch, pause: float = 0.0) -> Counter[tuple[str, int]]:
    """Count on-demand renders by feed path and entry count (slowed by ``pause`` so requests overlap)."""
    renders: Counter[tuple[str, int]] = Counter()
    render = views_mod.render_feed

    def counted(feed, fmt, settings, ctx=None):  # type: ignore[no-untyped-def]
        renders[(fmt.output_name(feed.spec), len(feed.entries))] += 1
        time.sleep(pause)
        return render(feed, fmt, settings, ctx)

    monkeypatch.setattr(views_mod, "render_feed", counted)
    return renders


@BUILDERS
def test_concurrent_requests_get_their_own_bytes_and_the_cache_stays_bounded(
        generated_dir: Path, monkeypatch: pytest.MonkeyPatch, one_builder: bool) -> None:
    expected_app = _app(generated_dir, one_builder=False)  # its cache is never shared with the app under load
    monkeypatch.setattr(views_mod, "ON_DEMAND_SIZE", 16)
    app = _app(generated_dir, one_builder)
    snapshot = expected_app.extensions["feedpub"].snapshot
    archives = sorted(snapshot.site.deferred)[:12]
    feeds = [name for name in sorted(snapshot.prepared) if name.endswith((".xml", ".atom", ".json"))
             and not name.startswith("index.")][:8]
    urls = [f"/feeds/{name}?limit={limit}" for name in feeds for limit in (1, 2, 3, 5)]
    urls += [f"/feeds/{name}" for name in archives]
    assert len(urls) > 2 * 16  # more queries than the cache keeps: entries are evicted while others are served
    expected_client = expected_app.test_client()
    expected = {url: expected_client.get(url) for url in urls}
    assert all(response.status_code == 200 for response in expected.values())
    renders = _counting_renders(monkeypatch, pause=0.002)
    state = app.extensions["feedpub"]
    cache = _on_demand(state)

    def get(url: str) -> tuple[str, bytes, str | None]:
        response = app.test_client().get(url)
        assert response.status_code == 200, url
        return url, response.data, response.headers.get("ETag")

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(get, urls * 4))
    for url, body, etag in results:
        assert body == expected[url].data, url
        assert etag == expected[url].headers["ETag"], url
    assert _on_demand(state) is cache  # no reload in between: one version throughout
    assert len(cache) == 16
    # Filtered views are rendered on demand; archive pages too, unless the builder published them.
    assert sum(renders.values()) >= len(urls) - (len(archives) if one_builder else 0)


@BUILDERS
def test_a_query_asked_for_again_and_again_stays_cached_while_others_come_and_go(
        seeds: Path, monkeypatch: pytest.MonkeyPatch, one_builder: bool) -> None:
    monkeypatch.setattr(views_mod, "ON_DEMAND_SIZE", 4)
    client = _app(seeds, one_builder).test_client()
    renders = _counting_renders(monkeypatch)
    hot = "/feeds/all.xml?limit=1"
    for other in ("all.atom", "all.json", "all.html", "ai.xml", "ai.atom", "ai.json", "topics/ai.html"):
        assert client.get(hot).status_code == 200
        assert client.get(f"/feeds/{other}?limit=1").status_code == 200
    assert renders[("all.xml", 1)] == 1  # the least recently used go first, never the hot one
    assert len(_on_demand(client.application.extensions["feedpub"])) == 4


@BUILDERS
def test_a_reload_starts_an_empty_cache_for_the_new_version(seeds: Path, one_builder: bool) -> None:
    app = _app(seeds, one_builder)
    client, state = app.test_client(), app.extensions["feedpub"]
    before = client.get("/feeds/all.json?limit=1").json["items"][0]["title"]
    for article in seeds.iterdir():
        _retitle(article)
    old = _on_demand(state)
    assert state.reload()
    assert len(old) == 1 and len(_on_demand(state)) == 0
    assert client.get("/feeds/all.json?limit=1").json["items"][0]["title"] == "Changed: " + before


def test_many_apps_register_no_fork_hooks_and_are_not_kept_alive(seeds: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    hooks: list[object] = []
    monkeypatch.setattr(os, "register_at_fork", lambda **kwargs: hooks.append(kwargs))
    apps = [_app(seeds) for _ in range(10)]
    assert hooks == []  # one hook per process, registered when feedpub.after_fork was imported
    state = weakref.ref(apps[0].extensions["feedpub"])
    del apps
    gc.collect()
    assert state() is None  # the fork registry holds states weakly


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_gets_fresh_locks_and_no_watcher(seeds: Path) -> None:
    state = _app(seeds).extensions["feedpub"]
    locks = [state._lock, state._starting, state.published._lock]
    for lock in locks:
        lock.acquire()  # as if another thread held them at the fork
    try:
        pid = os.fork()
        if pid == 0:  # the child: exit status 0 only if every lock is free there
            fresh = all(lock.acquire(blocking=False)
                        for lock in (state._lock, state._starting, state.published._lock))
            os._exit(0 if fresh and state._watcher is None else 1)
        _, status = os.waitpid(pid, 0)
    finally:
        for lock in locks:
            lock.release()
    assert os.waitstatus_to_exitcode(status) == 0


def _counting_gc(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    calls: Counter[str] = Counter()
    for name in ("disable", "freeze"):
        monkeypatch.setattr(gc, name, lambda name=name: calls.update([name]))
    return calls


def test_server_loads_and_reloads_leave_the_gc_alone(seeds: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _counting_gc(monkeypatch)
    state = _app(seeds).extensions["feedpub"]
    _retitle(next(seeds.iterdir()))
    assert state.reload()
    assert calls == Counter()


def test_the_cli_pauses_and_freezes_the_gc_for_its_one_load(seeds: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _counting_gc(monkeypatch)
    result = CliRunner().invoke(main, ["check", "--seeds", str(seeds), "--no-cache"])
    assert result.exit_code == 0, result.output
    assert calls == Counter({"disable": 1, "freeze": 1})
    assert gc.isenabled()


def test_the_server_keeps_no_bytes_in_its_site(seeds: Path) -> None:
    snapshot = _app(seeds, one_builder=False).extensions["feedpub"].snapshot
    assert snapshot.site.outputs.keys() == snapshot.prepared.keys()
    assert all(output.body is None and output.kept for output in snapshot.site.outputs.values())


def test_the_builder_keeps_no_bytes_and_no_fragments(seeds: Path) -> None:
    state = _app(seeds).extensions["feedpub"]
    assert state.snapshot is None and state.site.context is None  # its fragments went to the store
    assert state.site.outputs.keys() == state.builder.rows.keys()
    assert all(output.body is None and output.kept for output in state.site.outputs.values())


def test_on_demand_keeps_a_none_it_made_rather_than_making_it_again() -> None:
    made: list[str] = []
    kept: OnDemand[str | None] = OnDemand(4)
    for _ in range(3):  # an output with no live feed behind it: looked up in the store once
        assert kept.get("index.json", lambda: made.append("index.json")) is None
    assert made == ["index.json"]

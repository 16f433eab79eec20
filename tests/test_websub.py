"""WebSub: hub links in every feed and in HTTP, and one publish ping per changed feed URL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import etree

from feedpub.cli import main
from feedpub.web import create_app

from .conftest import ROOT
from .test_gunicorn import fetch, free_port, run_gunicorn, wait_for

ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Callable[..., tuple[str, Path]]]:
    processes = []

    def start(fail: int = 0, delay: float = 0.0) -> tuple[str, Path]:
        port, log = free_port(), tmp_path / f"hub-{len(processes)}.jsonl"
        log.touch()
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "tests.hub_stub", str(port), str(log), "--fail", str(fail), "--delay", str(delay)],
            cwd=ROOT))
        url = f"http://127.0.0.1:{port}/hub"

        def up() -> bool:
            try:
                fetch(url)
            except OSError:
                return False
            return True

        wait_for(up, 15, "the hub stub")
        return url, log

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=10)


def pings(log: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in log.read_text("utf-8").splitlines() if line.strip()]


def accepted(log: Path) -> Counter[str]:
    return Counter(p["url"] for p in pings(log) if p["status"] == 204 and p["mode"] == "publish")


def test_hub_and_self_links_in_every_format(seeds: Path) -> None:
    app = create_app({"TESTING": True, "seeds_dir": str(seeds), "websub_hub": "https://hub.example/"})
    client = app.test_client()
    for suffix in (".xml", ".atom"):
        response = client.get(f"/feeds/ai{suffix}")
        root = etree.fromstring(response.data)
        links = root.findall(f"channel/{ATOM}link") if suffix == ".xml" else root.findall(f"{ATOM}link")
        rels = {link.get("rel"): link.get("href") for link in links}
        assert rels["hub"] == "https://hub.example/"
        assert rels["self"] == f"http://127.0.0.1:8000/feeds/ai{suffix}"
        assert response.headers["Link"] == (f'<https://hub.example/>; rel="hub", '
                                            f'<http://127.0.0.1:8000/feeds/ai{suffix}>; rel="self"')
    feed = client.get("/feeds/ai.json").json
    assert feed["hubs"] == [{"type": "WebSub", "url": "https://hub.example/"}]
    assert "Link" not in client.get("/feeds/topics/ai.html").headers


def test_no_hub_no_links(client) -> None:
    assert b'rel="hub"' not in client.get("/feeds/ai.xml").data
    assert "hubs" not in client.get("/feeds/ai.json").json
    assert "Link" not in client.get("/feeds/ai.xml").headers


def test_build_pings_once_per_changed_feed_url_with_retries(seeds: Path, tmp_path: Path, hub) -> None:
    url, log = hub(fail=2)  # the hub refuses the first two pings: they are retried
    out = tmp_path / "out"
    args = ["build", "--seeds", str(seeds), "--out", str(out), "--websub-hub", url]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    feed_files = {p.relative_to(out).as_posix() for p in out.rglob("*")
                  if p.suffix in (".xml", ".atom", ".json") and not p.name.startswith(("index.", "."))}
    expected = {f"http://127.0.0.1:8000/feeds/{name}" for name in feed_files}
    assert accepted(log) == Counter(expected)  # every URL exactly once, despite the failures
    assert sum(1 for p in pings(log) if p["status"] == 503) == 2
    assert all(p["type"] == "application/x-www-form-urlencoded" for p in pings(log))

    before = len(pings(log))
    assert CliRunner().invoke(main, args).exit_code == 0
    assert len(pings(log)) == before  # nothing changed: no ping

    wired = next(p for p in seeds.iterdir() if "domain: wired.com" in p.read_text("utf-8"))
    wired.write_text(wired.read_text("utf-8").replace('title: "', 'title: "Changed: ', 1), "utf-8")
    assert CliRunner().invoke(main, args).exit_code == 0
    new = [p["url"] for p in pings(log)[before:]]
    assert sorted(new) == sorted(set(new))
    assert "http://127.0.0.1:8000/feeds/providers/wired.com.atom" in new
    assert "http://127.0.0.1:8000/feeds/providers/thenextweb.com.atom" not in new


def test_server_reload_pings_once_across_workers_without_blocking(seeds: Path, tmp_path: Path, hub) -> None:
    url, log = hub(delay=1.0)  # a slow hub
    with run_gunicorn(seeds, tmp_path / "gunicorn.log", FEEDPUB_RELOAD_INTERVAL="0.3",
                      FEEDPUB_WEBSUB_HUB=url) as (base, _):
        for _ in range(6):
            fetch(base + "/feeds/all.xml")  # both workers running their watchers
        assert pings(log) == []  # starting up announces nothing
        wired = next(p for p in seeds.iterdir() if "domain: wired.com" in p.read_text("utf-8"))
        wired.write_text(wired.read_text("utf-8").replace('title: "', 'title: "Live: ', 1), "utf-8")
        target = f"{base}/feeds/providers/wired.com.xml"
        wait_for(lambda: target in accepted(log), 30, "the hub to be told about wired.com.xml")
        started = time.monotonic()
        for _ in range(10):  # requests are served while the slow hub is still being pinged
            assert fetch(base + "/feeds/all.xml")[0] == 200
        assert time.monotonic() - started < 3
        time.sleep(2)  # let the other worker notice the change too
        counts = accepted(log)
        assert counts[target] == 1 and counts[f"{base}/feeds/ai.json"] == 1
        assert all(count == 1 for count in counts.values()), counts
        assert f"{base}/feeds/providers/thenextweb.com.xml" not in counts

"""WebSub: hub links in every feed and in HTTP, and one publish ping per changed feed URL."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from lxml import etree

from feedpub.cli import main
from feedpub.web import create_app
from feedpub.websub import LEDGER, Ledger

from .conftest import ROOT
from .test_gunicorn import every_worker, fetch, free_port, run_gunicorn, wait_for

ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Callable[..., tuple[str, Path]]]:
    processes = []

    def start(fail: int = 0, delay: float = 0.0, port: int | None = None) -> tuple[str, Path]:
        port, log = port or free_port(), tmp_path / f"hub-{len(processes)}.jsonl"
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
        every_worker(base + "/feeds/all.xml", lambda _: True)  # both workers running their watchers
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


def published(out: Path, base: str = "http://127.0.0.1:8000") -> set[str]:
    """The URL of every feed a build wrote to ``out``: what the hub must hear about."""
    return {f"{base}/feeds/{p.relative_to(out).as_posix()}" for p in out.rglob("*")
            if p.suffix in (".xml", ".atom", ".json") and not p.name.startswith(("index.", "."))}


def build(seeds: Path, out: Path, hub_url: str) -> tuple[float, str]:
    started = time.monotonic()
    result = CliRunner().invoke(main, ["build", "--seeds", str(seeds), "--out", str(out), "--websub-hub", hub_url])
    assert result.exit_code == 0, result.output
    return time.monotonic() - started, result.output


def build_process(seeds: Path, out: Path, hub_url: str) -> str:
    """``feedpub build`` in a process of its own, as a cron job runs it: nothing of it outlives it."""
    done = subprocess.run([sys.executable, "-m", "feedpub", "build", "--seeds", str(seeds), "--out", str(out),
                           "--websub-hub", hub_url], check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stderr


def websub_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if "WebSub" in line]


def edit_wired(seeds: Path, prefix: str) -> None:
    wired = next(p for p in seeds.iterdir() if "domain: wired.com" in p.read_text("utf-8"))
    wired.write_text(wired.read_text("utf-8").replace('title: "', f'title: "{prefix}', 1), "utf-8")


def test_a_dead_hub_costs_a_build_seconds_and_the_next_build_sends_every_pending_ping(
        seeds: Path, tmp_path: Path, hub) -> None:
    port = free_port()  # nothing listens there yet: every connection is refused
    url, out = f"http://127.0.0.1:{port}/hub", tmp_path / "out"
    elapsed, output = build(seeds, out, url)
    expected = published(out)
    assert elapsed < 10
    [warning] = websub_lines(output)
    assert warning.startswith(f"warning: WebSub: {len(expected)} pings pending (unreachable: ")
    assert warning.endswith("; the next build or reload will retry them")

    edit_wired(seeds, "Changed: ")  # pending again with a newer version: only that one is announced
    elapsed, output = build(seeds, out, url)
    assert elapsed < 10 and "pings pending" in output

    url, log = hub(port=port)  # the hub is back, at the same address (so the feeds do not change)
    _, output = build(seeds, out, url)
    assert " 0 files written" in output  # every ping below was left over from the builds before
    assert accepted(log) == Counter(expected)  # every URL exactly once
    assert websub_lines(output) == [f"WebSub: {len(expected)} pings accepted by {url}"]

    _, output = build(seeds, out, url)
    assert websub_lines(output) == [] and len(pings(log)) == len(expected)  # nothing left to announce


def test_a_hub_that_does_not_answer_costs_a_build_seconds(seeds: Path, tmp_path: Path, hub) -> None:
    url, _ = hub(delay=60)  # accepts connections, never answers in time
    elapsed, output = build(seeds, tmp_path / "out", url)
    assert elapsed < 10
    [warning] = websub_lines(output)
    assert "pings pending (" in warning and "timed out" in warning


def test_racing_builds_send_each_pending_ping_once(seeds: Path, tmp_path: Path, hub) -> None:
    port = free_port()
    first = tmp_path / "out-1"
    build_process(seeds, first, f"http://127.0.0.1:{port}/hub")  # all pending: the hub is down
    url, log = hub(delay=0.3, port=port)
    command = [sys.executable, "-m", "feedpub", "build", "--seeds", str(seeds), "--websub-hub", url, "--out"]
    racers = [subprocess.Popen([*command, str(tmp_path / f"out-{n}")], stderr=subprocess.PIPE, text=True)
              for n in (2, 3)]
    outputs = [racer.communicate(timeout=60)[1] for racer in racers]
    assert [racer.returncode for racer in racers] == [0, 0], outputs
    expected = published(first)
    assert accepted(log) == Counter(expected)
    assert len(pings(log)) == len(expected)  # no URL sent twice, not even at the same time
    counts = [int(line.split()[1]) for output in outputs for line in websub_lines(output) if "accepted" in line]
    assert sum(counts) == len(expected)
    assert not any("pending" in output for output in outputs)  # what the other one was sending is not left over


def test_a_dead_process_lease_runs_out(tmp_path: Path) -> None:
    crashed, alive = Ledger(tmp_path), Ledger(tmp_path)
    crashed.note({"https://example.org/feeds/all.xml": "v1", "https://example.org/feeds/ai.xml": "v1"})
    assert crashed.lease(ttl=0.5) == ("https://example.org/feeds/ai.xml", "v1")  # and never finishes it
    assert alive.lease() == ("https://example.org/feeds/all.xml", "v1")  # the other one only
    assert alive.lease() is None
    time.sleep(0.6)
    assert alive.lease() == ("https://example.org/feeds/ai.xml", "v1")
    alive.announced("https://example.org/feeds/ai.xml", "v1")
    crashed.announced("https://example.org/feeds/ai.xml", "v1")  # too late: no longer its lease
    assert alive.pending() == 0  # all.xml is pending, but held
    alive.release("https://example.org/feeds/all.xml")  # its ping failed
    alive.note({"https://example.org/feeds/ai.xml": "v2"})  # a newer version: pending again
    assert alive.pending() == 2
    assert alive.lease() == ("https://example.org/feeds/ai.xml", "v2")  # the newest version is sent


def server_after_a_build_with_the_hub_down(seeds: Path, out: Path, hub) -> tuple[Any, Path]:  # type: ignore[no-untyped-def]
    """A server (its state) on ``seeds`` after a build left every ping pending; the hub is back, its log."""
    port = free_port()
    build_process(seeds, out, f"http://127.0.0.1:{port}/hub")  # the hub is down: everything pending
    url, log = hub(port=port)
    return create_app({"TESTING": True, "seeds_dir": str(seeds), "websub_hub": url}).extensions["feedpub"], log


def test_a_server_reload_sends_what_a_build_left_pending(seeds: Path, tmp_path: Path, hub) -> None:
    out = tmp_path / "out"
    state, log = server_after_a_build_with_the_hub_down(seeds, out, hub)
    time.sleep(0.5)
    assert pings(log) == []  # starting the server announces nothing by itself
    edit_wired(seeds, "Live: ")
    assert state.reload()
    expected = published(out)  # the reload changed some: their newest version is what is pending now
    wait_for(lambda: set(accepted(log)) == expected, 20, "the pending pings and the changed feeds")
    time.sleep(0.5)
    assert accepted(log) == Counter(expected)
    assert len(pings(log)) == len(expected)


def test_the_server_retries_pending_pings_in_the_background(seeds: Path, tmp_path: Path, hub) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/hub"
    app = create_app({"TESTING": True, "seeds_dir": str(seeds), "websub_hub": url})
    state = app.extensions["feedpub"]
    edit_wired(seeds, "Live: ")
    assert state.reload()
    ledger = Ledger(state.settings.cache_dir)
    wait_for(lambda: ledger.pending() > 0, 10, "a first round to fail: the hub is down")
    _, log = hub(port=port)  # back, and no reload to wake the sender
    wait_for(lambda: ledger.pending() == 0, 40, "the background thread to send what is pending")
    assert "http://127.0.0.1:8000/feeds/providers/wired.com.xml" in accepted(log)
    assert all(count == 1 for count in accepted(log).values())


def test_a_damaged_ledger_is_started_afresh(seeds: Path, tmp_path: Path, hub) -> None:
    url, log = hub()
    out = tmp_path / "out"
    build(seeds, out, url)
    ledger = Path(os.environ["XDG_CACHE_HOME"]) / "feedpub" / LEDGER
    for journal in ("-wal", "-shm"):  # left by a process that never closed it, they could mask the damage
        ledger.with_name(ledger.name + journal).unlink(missing_ok=True)
    ledger.write_bytes(b"\x8f" * 8192)  # random bytes where the ledger was
    edit_wired(seeds, "Changed: ")
    _, output = build(seeds, out, url)
    assert "pings accepted" in output and "pending" not in output
    assert accepted(log)["http://127.0.0.1:8000/feeds/providers/wired.com.xml"] == 2  # first build, then this one
    assert Ledger(ledger.parent).pending() == 0  # a working ledger again, shared with the next run


def test_two_workers_send_what_a_build_left_pending_once(seeds: Path, tmp_path: Path, hub) -> None:
    port = free_port()
    out = tmp_path / "out"
    build_process(seeds, out, f"http://127.0.0.1:{port}/hub")  # the hub is down: everything pending
    url, log = hub(delay=0.2, port=port)  # slow enough for both workers to be sending at once
    with run_gunicorn(seeds, tmp_path / "gunicorn.log", FEEDPUB_RELOAD_INTERVAL="0.3",
                      FEEDPUB_WEBSUB_HUB=url) as (base, _):
        every_worker(base + "/feeds/all.xml", lambda _: True)  # both workers running their watchers
        edit_wired(seeds, "Live: ")
        expected = published(out) | {f"{base}/feeds/providers/wired.com.xml"}
        wait_for(lambda: expected <= set(accepted(log)), 30, "the pending pings and the changed feeds")
        time.sleep(2)  # let the other worker notice the change too
    counts = accepted(log)
    assert all(counts[u] == 1 for u in published(out)), counts
    assert all(count == 1 for count in counts.values()), counts


def test_a_ledger_that_cannot_be_written_costs_the_pings_not_the_build(seeds: Path, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    def full(self: Ledger, versions: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(Ledger, "note", full)
    out = tmp_path / "out"
    _, output = build(seeds, out, f"http://127.0.0.1:{free_port()}/hub")  # exit 0: the feeds are written
    [warning] = websub_lines(output)
    assert warning == (f"warning: WebSub: {len(published(out))} pings pending (ledger: database or disk is full);"
                       " no ledger keeps them for later")


def test_a_worker_sends_what_a_build_left_pending_when_it_starts_serving(seeds: Path, tmp_path: Path, hub) -> None:
    out = tmp_path / "out"
    state, log = server_after_a_build_with_the_hub_down(seeds, out, hub)
    state.ensure_watcher()  # what a worker's first request does; no file changed since the build
    expected = published(out)
    wait_for(lambda: set(accepted(log)) == expected, 20, "the pings the build left pending")
    time.sleep(0.5)
    assert accepted(log) == Counter(expected)

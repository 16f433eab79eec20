"""gunicorn serving wsgi:app on 127.0.0.1, with live reload seen by every worker."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from .conftest import ROOT

INTERVAL = 0.5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


@contextmanager
def run_gunicorn(seeds: Path, log: Path, *args: str, app: str = "wsgi:app",
                 **env: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``gunicorn -w 2 wsgi:app`` (or ``app``) on a free 127.0.0.1 port against ``seeds``; stopped on exit."""
    gunicorn = shutil.which("gunicorn", path=os.path.dirname(sys.executable)) or shutil.which("gunicorn")
    if gunicorn is None:
        pytest.skip("gunicorn is not installed")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    environ = dict(os.environ, FEEDPUB_SEEDS_DIR=str(seeds), FEEDPUB_SITE_URL=base, **env)
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [gunicorn, "-w", "2", "-b", f"127.0.0.1:{port}", "--chdir", str(ROOT), *args, app],
            env=environ, stdout=output, stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: _up(base), 30, "gunicorn to start")
        yield base, process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        print(log.read_text("utf-8", "replace"))  # shown by pytest when the test failed


def _up(base: str) -> bool:
    try:
        return fetch(base + "/healthz")[0] == 200
    except OSError:
        return False


@pytest.fixture(params=[False, True], ids=["workers-load", "preload"])
def server(seeds: Path, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    extra = ["--preload"] if request.param else []
    with run_gunicorn(seeds, tmp_path / "gunicorn.log", *extra, FEEDPUB_RELOAD_INTERVAL=str(INTERVAL)) as (base, _):
        yield base


def test_gunicorn_serves_reloads_and_keeps_unchanged_etags(server: str, seeds: Path) -> None:
    status, headers, _body = fetch(server + "/feeds/all.json")
    assert status == 200 and headers["Content-Type"] == "application/feed+json; charset=utf-8"
    etags = {name: fetch(f"{server}/feeds/{name}")[1]["ETag"]
             for name in ("all.xml", "providers/thenextweb.com.xml", "providers/wired.com.xml")}
    assert fetch(server + "/feeds/all.xml", {"If-None-Match": etags["all.xml"]})[0] == 304

    # Add an article from a new provider, in the newest month (a newer month would move every
    # feed's RFC 5005 archive link, and so every ETag).
    source = next(p for p in seeds.iterdir() if "wired.com" in p.read_text("utf-8") and
                  "published: true" in p.read_text("utf-8"))
    added = seeds / "added.md"
    added.write_text(source.read_text("utf-8").replace("wired.com", "example.org"), "utf-8")
    started = time.monotonic()

    def everyone_sees_it() -> bool:
        # Several requests, so both workers answer at least once with high probability (a sync
        # worker idle in accept() may take all of them; a worker that has not answered yet scans
        # the files before its first answer).
        return all(fetch(server + "/feeds/providers/example.org.xml")[0] == 200 and
                   fetch(f"{server}/feeds/all.xml")[1]["ETag"] != etags["all.xml"] for _ in range(8))

    wait_for(everyone_sees_it, 10, "the new provider feed in every worker")
    assert time.monotonic() - started < INTERVAL + 5
    assert fetch(f"{server}/feeds/providers/thenextweb.com.xml")[1]["ETag"] == etags["providers/thenextweb.com.xml"]
    assert fetch(f"{server}/feeds/providers/wired.com.xml")[1]["ETag"] == etags["providers/wired.com.xml"]

    # Remove it again: its provider feed stays (empty) only while some file names it.
    added.unlink()
    wait_for(lambda: all(fetch(server + "/feeds/providers/example.org.xml")[0] == 404 for _ in range(8)),
             10, "the removed provider to disappear")
    wait_for(lambda: fetch(f"{server}/feeds/all.xml")[1]["ETag"] == etags["all.xml"], 10, "all.xml to return")

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
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
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


WORKER = "X-Test-Worker"  # which worker answered: added by the wrapper below, never by feedpub
TAGGED_APP = """
import faulthandler, importlib, os, signal, time
faulthandler.register(signal.SIGUSR1)  # a stuck worker's threads, in the log (kill -USR1 PID)
_module, _, _name = os.environ["FEEDPUB_TEST_APP"].partition(":")
_app = getattr(importlib.import_module(_module), _name)


def app(environ, start_response):
    if "HTTP_X_TEST_HOLD" in environ:  # keep this worker busy a moment: the next connection goes to another
        time.sleep(float(environ["HTTP_X_TEST_HOLD"]))

    def start(status, headers, exc_info=None):
        return start_response(status, [*headers, ("X-Test-Worker", str(os.getpid()))], exc_info)
    return _app(environ, start)
"""


@contextmanager
def run_gunicorn(seeds: Path, log: Path, *args: str, app: str = "wsgi:app", workers: int = 2,
                 **env: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``gunicorn -w 2 wsgi:app`` (or ``app``, ``workers``) on a free 127.0.0.1 port against ``seeds``; stopped on exit.

    Each answer says which worker sent it (:data:`WORKER`), so :func:`every_worker` knows it heard from all.
    """
    gunicorn = shutil.which("gunicorn", path=os.path.dirname(sys.executable)) or shutil.which("gunicorn")
    if gunicorn is None:
        pytest.skip("gunicorn is not installed")
    (log.parent / "tagged_wsgi.py").write_text(TAGGED_APP, "utf-8")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    pythonpath = os.pathsep.join([str(log.parent), env.pop("PYTHONPATH", os.pathsep.join(sys.path))])
    environ = dict(os.environ, FEEDPUB_SEEDS_DIR=str(seeds), FEEDPUB_SITE_URL=base, FEEDPUB_TEST_APP=app,
                   PYTHONPATH=pythonpath, **env)
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [gunicorn, "-w", str(workers), "-b", f"127.0.0.1:{port}", "--chdir", str(ROOT), *args, "tagged_wsgi:app"],
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


def every_worker(url: str, predicate: Callable[[tuple[int, dict[str, str], bytes]], bool],
                 workers: int = 2, tries: int = 400, headers: dict[str, str] | None = None) -> bool:
    """Whether every answer to ``url`` satisfies ``predicate`` until each of ``workers`` has answered.

    Which sync worker accepts a connection is the kernel's choice, and one idle worker may take
    every connection in a row. So requests go out ``workers`` at a time, each holding its worker
    for a moment (a test-only header the wrapper obeys): a busy worker cannot take the next one.
    """
    answered: set[str] = set()
    held = {**(headers or {}), "X-Test-Hold": "0.05"}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in range(max(tries // workers, 1)):
            for response in pool.map(lambda _: fetch(url, held), range(workers)):
                if not predicate(response):
                    return False
                answered.add(response[1][WORKER])
            if len(answered) == workers:
                return True
    pytest.fail(f"{tries} requests for {url} reached only workers {sorted(answered)}")


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
        return (every_worker(server + "/feeds/providers/example.org.xml", lambda answer: answer[0] == 200) and
                every_worker(server + "/feeds/all.xml", lambda answer: answer[1]["ETag"] != etags["all.xml"]))

    wait_for(everyone_sees_it, 10, "the new provider feed in every worker")
    assert time.monotonic() - started < INTERVAL + 5
    assert fetch(f"{server}/feeds/providers/thenextweb.com.xml")[1]["ETag"] == etags["providers/thenextweb.com.xml"]
    assert fetch(f"{server}/feeds/providers/wired.com.xml")[1]["ETag"] == etags["providers/wired.com.xml"]

    # Remove it again: its provider feed stays (empty) only while some file names it.
    added.unlink()
    wait_for(lambda: every_worker(server + "/feeds/providers/example.org.xml", lambda answer: answer[0] == 404),
             10, "the removed provider to disappear")
    wait_for(lambda: every_worker(server + "/feeds/all.xml", lambda answer: answer[1]["ETag"] == etags["all.xml"]),
             10, "all.xml to return")

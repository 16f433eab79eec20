"""Faults: request fuzzing, a reload storm under concurrent load, and a build killed mid-way."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from feedpub.cli import main
from feedpub.ingest.loader import load
from feedpub.render.site import render_site
from feedpub.settings import Settings

from .conftest import SEEDS
from .test_gunicorn import fetch, run_gunicorn, wait_for

ALLOWED = {200, 304, 400, 404, 405}
SEGMENTS = st.sampled_from(["feeds", "providers", "all.xml", "ai.atom", "index.json", "..", ".", "", "%2e%2e",
                            "%00", "%ff", "wired.com.json", "a" * 300, "é", "%c0%af", "\\", "healthz", "~"])


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    from feedpub.web import create_app

    seeds = tmp_path_factory.mktemp("fuzz") / "seeds"
    shutil.copytree(SEEDS, seeds)
    return create_app({"TESTING": True, "seeds_dir": str(seeds)})


@settings(max_examples=max(400, settings.default.max_examples), deadline=None,  # more under `make fuzz`
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]),
    segments=st.lists(st.one_of(SEGMENTS, st.text(max_size=20)), max_size=6),
    query=st.one_of(st.just(""), st.text(max_size=20), st.builds(lambda v: f"limit={v}", st.text(max_size=8)),
                    st.builds(urllib.parse.quote, st.text(max_size=8))),  # percent-encoded, controls included
    headers=st.dictionaries(st.sampled_from(["If-None-Match", "If-Modified-Since", "Accept-Encoding", "Range"]),
                            st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
                            max_size=3),
)
@example(method="GET", segments=["feeds"], query="\r", headers={})  # the trailing-slash redirect raised (a 500)
def test_fuzzed_requests_never_fail(fuzz_app: Flask, method: str, segments: list[str], query: str,
                                    headers: dict[str, str]) -> None:
    raw = "/" + "/".join(segments)
    # What a WSGI server hands the app: the percent-decoded path, as latin-1 text of its bytes.
    path_info = urllib.parse.unquote_to_bytes(raw).decode("latin-1")
    response = fuzz_app.test_client().open(
        "/", method=method, headers=headers,
        environ_overrides={"PATH_INFO": path_info, "QUERY_STRING": query.encode().decode("latin-1")},
    )
    assert response.status_code in ALLOWED or _canonical_redirect(path_info, response), (
        method, raw, query, headers, response.status_code)


def _canonical_redirect(path_info: str, response: Any) -> bool:
    """werkzeug's 308 to the same path with slashes merged or a directory's slash added (/feeds -> /feeds/)."""
    location = urllib.parse.unquote(urllib.parse.urlsplit(response.headers.get("Location", "")).path, "latin-1")
    merged = re.sub("/{2,}", "/", path_info)
    return response.status_code == 308 and location in (merged, merged + "/")


def _articles(root: Path, count: int, title_prefix: str) -> None:
    """``count`` distinct articles made from the seeds (unique URLs and titles)."""
    templates = [p.read_text("utf-8") for p in sorted(SEEDS.iterdir())]
    root.mkdir(parents=True, exist_ok=True)
    for n in range(count):
        text = templates[n % len(templates)]
        text = text.replace('title: "', f'title: "{title_prefix} {n}: ', 1)
        text = text.replace("published: false", "published: true")
        for key in ("webUrl", "originalUrl"):
            text = text.replace(f'{key}: "https://', f'{key}: "https://n{n}.', 1)
        (root / f"a{n:05d}.md").write_text(text, "utf-8")


def _tree(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*")
            if p.is_file() and not p.name.startswith(".")}


def test_killed_build_leaves_old_or_new_files_and_the_next_build_completes(tmp_path: Path) -> None:
    seeds, out = tmp_path / "seeds", tmp_path / "out"
    _articles(seeds, 1500, "Old")
    build = ["build", "--seeds", str(seeds), "--out", str(out), "--max-items", "5"]
    assert CliRunner().invoke(main, build).exit_code == 0
    old = _tree(out)
    _articles(seeds, 1500, "New")
    expected_new = tmp_path / "expected"
    assert CliRunner().invoke(main, ["build", "--seeds", str(seeds), "--out", str(expected_new),
                                     "--max-items", "5"]).exit_code == 0
    new = _tree(expected_new)
    assert set(new) == set(old)

    process = subprocess.Popen([sys.executable, "-m", "feedpub.cli", "build", "--seeds", str(seeds), "--out", str(out),
                                "--max-items", "5"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Kill it as soon as it has started replacing files: mid-way through the write phase.
        wait_for(lambda: process.poll() is not None or (out / "all.xml").read_bytes() != old["all.xml"], 60,
                 "the build to start writing")
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    killed = _tree(out)
    changed = [name for name in killed if killed[name] == new[name] and old[name] != new[name]]
    assert changed, "the build was not killed mid-way (nothing new written)"
    for name, body in killed.items():
        assert body in (old[name], new[name]), f"{name} is neither the old nor the new file"
    result = CliRunner().invoke(main, ["build", "--seeds", str(seeds), "--out", str(out), "--max-items", "5"])
    assert result.exit_code == 0
    assert _tree(out) == new
    assert not [p for p in out.rglob(".*") if p.name != ".feedpub-manifest.json"]


def test_foreign_files_in_the_output_are_left_alone(tmp_path: Path, seeds: Path) -> None:
    out = tmp_path / "out"
    (out / "providers").mkdir(parents=True)
    (out / "robots.txt").write_text("User-agent: *\n")
    (out / "providers" / "old-provider.xml").write_text("<rss/>")  # not ours: never listed in a manifest
    assert CliRunner().invoke(main, ["build", "--seeds", str(seeds), "--out", str(out)]).exit_code == 0
    # Remove the only Wired file: wired.com's feeds are feedpub's and go; the foreign files stay.
    next(p for p in seeds.iterdir() if "domain: wired.com" in p.read_text("utf-8")).unlink()
    assert CliRunner().invoke(main, ["build", "--seeds", str(seeds), "--out", str(out)]).exit_code == 0
    assert not (out / "providers" / "wired.com.xml").exists()
    assert (out / "robots.txt").read_text() == "User-agent: *\n"
    assert (out / "providers" / "old-provider.xml").read_text() == "<rss/>"


# --- reload storm -----------------------------------------------------------------------------

def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


@pytest.fixture
def storm_server(seeds: Path, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    with run_gunicorn(seeds, tmp_path / "gunicorn.log", "--threads", "16", FEEDPUB_RELOAD_INTERVAL="0.05") as running:
        yield running


def test_reload_storm_under_concurrent_requests(storm_server: tuple[str, subprocess.Popen[bytes]],
                                                seeds: Path, tmp_path: Path) -> None:
    base, process = storm_server
    target = next(p for p in seeds.iterdir() if "domain: wired.com" in p.read_text("utf-8"))
    versions = [target.read_text("utf-8"), target.read_text("utf-8").replace('title: "', 'title: "Storm: ', 1)]
    # The only bodies all.json may ever have: rendered in-process from each version.
    expected = set()
    for n, text in enumerate(versions):
        copy = tmp_path / f"version{n}"
        shutil.copytree(seeds, copy)
        (copy / target.name).write_text(text, "utf-8")
        site = render_site(load(copy, 1 << 23), Settings.load({"seeds_dir": str(copy), "site_url": base}))
        expected.add(site.outputs["all.json"].body)
    for _ in range(20):
        fetch(base + "/feeds/all.json")
    workers = _children(process.pid)
    before = sum(_rss_kib(pid) for pid in workers)

    stop = threading.Event()
    failures: list[str] = []
    statuses: dict[int, int] = {}
    seen: set[bytes] = set()
    lock = threading.Lock()

    def flip() -> None:
        n = 0
        while not stop.is_set() and n < 2000:
            n += 1
            target.write_text(versions[n % 2], "utf-8")
            later = time.time() + n
            os.utime(target, (later, later))
            time.sleep(0.01)

    def hammer() -> None:
        for i in range(400):  # bounded; stops early once both versions were served
            if i >= 40 and stop.is_set():
                break
            path = ["/feeds/all.json", "/feeds/ai.xml", "/healthz", "/feeds/index.json"][i % 4]
            status, headers, body = fetch(base + path, {"Accept-Encoding": "identity"})
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
            if status >= 500:
                failures.append(f"{path}: {status}")
            if path == "/feeds/all.json":
                seen.add(body)
                if body not in expected:
                    failures.append("all.json body is neither version")
                if headers.get("ETag", "").strip('"') != hashlib.sha256(body).hexdigest()[:32]:
                    failures.append("ETag does not belong to the body it came with")

    flipper = threading.Thread(target=flip)
    clients = [threading.Thread(target=hammer) for _ in range(24)]
    started = time.monotonic()
    flipper.start()
    for thread in clients:
        thread.start()
    deadline = time.monotonic() + 60
    while len(seen) < len(expected) and time.monotonic() < deadline and any(t.is_alive() for t in clients):
        time.sleep(0.05)
    stop.set()
    for thread in clients:
        thread.join(timeout=120)
    flipper.join(timeout=10)
    assert time.monotonic() - started < 120
    assert not failures, failures[:10]
    assert sum(statuses.values()) >= 24 * 40 and set(statuses) == {200}
    assert seen == expected, "the reloads did not happen while the requests ran"
    after = sum(_rss_kib(pid) for pid in _children(process.pid))
    assert after - before < 64 * 1024, f"workers grew from {before} KiB to {after} KiB"
    health = json.loads(fetch(base + "/healthz")[2])
    assert health["status"] == "ok"

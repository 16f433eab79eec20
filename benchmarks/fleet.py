"""gunicorn with N workers and one builder (issue 13): ready time, memory per worker, change to served.

For each worker count the server gets a cache directory of its own holding only a copy of the warm parse
cache, so the first start has no served store (``cold store``: one worker renders the whole site while
the others answer 503) and every later start is a restart onto the store the last one published
(``warm store``). A start is ready when every worker has answered a 200 for the feed (gunicorn's access
log, ``%(p)s``, says which worker answered). The builder is the worker /healthz names; memory is read from
/proc for each worker, the master apart, once the builder has the corpus and every worker is idle, and
again after the server has answered a sample of the site's outputs and a wrk run.
"""

from __future__ import annotations

import json
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import serve
from .cells import fmt_seconds
from .probe import SITE_URL
from .quiet import METER
from .report import FEED_PATH
from .serve import log

if TYPE_CHECKING:
    from .__main__ import Mutations

PARSE_CACHE = "parse-cache.sqlite3"  # feedpub.ingest.parse_cache.FILENAME: the only file a fresh cache dir gets
SAMPLE = 2000  # distinct outputs each server is asked for before its memory is read again
STATUS_KEYS = ("VmRSS", "VmHWM", "RssAnon", "RssFile")
ROLLUP_KEYS = ("Pss", "Pss_Anon", "Pss_File", "Private_Clean", "Private_Dirty")


def memory(pid: int) -> dict[str, float]:
    """MiB: peak and current RSS (and its anonymous / file parts) from status, PSS from smaps_rollup."""
    out: dict[str, float] = {}
    for name, keys in (("status", STATUS_KEYS), ("smaps_rollup", ROLLUP_KEYS)):
        try:
            with open(f"/proc/{pid}/{name}") as handle:
                for line in handle:
                    key, _, value = line.partition(":")
                    if key in keys:
                        out[key] = int(value.split()[0]) / 1024
        except OSError:
            pass
    return out


def fresh_cache(parse_cache: Path, dest: Path) -> Path:
    """A new cache directory holding a copy of the parse cache alone (no served store, lease or ledgers)."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for path in parse_cache.glob(PARSE_CACHE + "*"):
        shutil.copy2(path, dest / path.name)
    return dest


def healthz(server: serve.Server) -> dict[str, Any]:
    try:
        status, _, body = serve.get(server.port, "/healthz", timeout=10)
    except OSError:
        return {}
    return json.loads(body) if status == 200 else {}


def settle(server: serve.Server, t0: float, timeout: float = 1800) -> dict[str, Any]:
    """Wait until /healthz names a live worker as the builder and every worker has been idle for two
    seconds in a row (the builder has loaded the corpus it took over); seconds from ``t0``."""
    deadline = time.monotonic() + timeout
    quiet = 0
    while time.monotonic() < deadline:
        builder = healthz(server).get("builder", {})
        workers = server.workers()
        before = sum(serve.cpu_seconds(pid) for pid in workers)
        time.sleep(1)
        busy = sum(serve.cpu_seconds(pid) for pid in workers) - before
        quiet = quiet + 1 if builder.get("pid") in workers and busy < 0.05 else 0
        if quiet >= 2:
            return {"pid": builder["pid"], "rendered": builder.get("rendered"),
                    "seconds": time.perf_counter() - t0 - 2}
    raise RuntimeError(f"{server.name}: no settled builder after {timeout:.0f}s:\n{server.tail()}")


def snapshot(server: serve.Server) -> dict[str, Any]:
    return {"master": memory(server.pid), "workers": {str(pid): memory(pid) for pid in server.workers()}}


def start_ready(server: serve.Server, workers: int, tag: str, timeout: float = 1800) -> dict[str, Any]:
    """Start the server; seconds until each worker first answered 200 for the feed."""
    assert server.access_log is not None
    server.access_log.unlink(missing_ok=True)
    access = serve.AccessLog(server.access_log)
    METER.wait()
    t0 = time.perf_counter()
    server.start()
    served = serve.wait_for_change(server, access, FEED_PATH, lambda s, h, b: s == 200, False, t0, tag,
                                   timeout=timeout, interval=0.05, expect=workers)
    if served["all_workers"] is None:
        raise RuntimeError(f"{server.name}: not every worker served within {timeout:.0f}s:\n{server.tail()}")
    current = {str(pid) for pid in server.workers()}
    assert server.ready_dir is not None
    booted = {p.name: json.loads(p.read_text()) for p in server.ready_dir.iterdir() if p.name in current}
    return {"t0": t0, "ready": served["all_workers"], "first": served["first_worker"],
            "per_worker": served["workers"], "after_boot": booted}


def exercise(server: serve.Server, site: Path, wrk_seconds: int) -> dict[str, Any]:
    """Ask for an even sample of the site's outputs, gzip and plain, on 4 connections; then wrk the feed."""
    files = (p.relative_to(site) for p in site.rglob("*") if p.is_file())
    names = sorted(f.as_posix() for f in files if not any(part.startswith(".") for part in f.parts))  # no manifest
    step = max(1, len(names) // SAMPLE)
    sample = names[::step][:SAMPLE]

    def fetch(name: str) -> list[tuple[str, int]]:
        return [(name, serve.get(server.port, f"/feeds/{name}", headers)[0])
                for headers in ({"Accept-Encoding": "gzip"}, {})]

    with ThreadPoolExecutor(4) as pool:
        failed = [(name, status) for pair in pool.map(fetch, sample) for name, status in pair if status != 200]
    serve.wrk(server.port, FEED_PATH, seconds=wrk_seconds)
    return {"outputs": len(sample), "of": len(names), "not_200": len(failed), "first_failed": failed[:5]}


def fleet_server(seeds: Path, cache: Path, work: Path, workers: int) -> serve.Server:
    env = {"FEEDPUB_SEEDS_DIR": str(seeds), "FEEDPUB_SITE_URL": SITE_URL, "FEEDPUB_CACHE_DIR": str(cache),
           "FEEDPUB_RELOAD_INTERVAL": "1"}
    return serve.gunicorn(f"feedpub-w{workers}", "wsgi:app", env, work, workers=workers,
                          access_log=work / f"feedpub-w{workers}-access.log")


def one_start(server: serve.Server, workers: int, tag: str) -> dict[str, Any]:
    """A start to ready, then to a settled builder, with everyone's memory at that point."""
    run = start_ready(server, workers, tag)
    run.update(builder=settle(server, run.pop("t0")), idle=snapshot(server))
    log(f"  -w {workers} {tag}: every worker serves in {run['ready']:.2f} s (first {run['first']:.2f} s); builder "
        f"{run['builder']['pid']} settled at {run['builder']['seconds']:.1f} s")
    return run


def measure(seeds: Path, work: Path, parse_cache: Path, site: Path, workers: int, runs: int, wrk_seconds: int,
            change: tuple[int, Mutations] | None) -> dict[str, Any]:
    """One worker count: a cold-store start, then ``runs`` restarts onto the store; the last restart is
    exercised (memory again) and, with ``change``, times edits and additions served by every worker."""
    cache = fresh_cache(parse_cache, work / f"cache-w{workers}")
    out: dict[str, Any] = {"workers": workers, "cold": None, "warm": []}
    server = fleet_server(seeds, cache, work, workers)
    try:
        out["cold"] = one_start(server, workers, "cold")
        server.stop()
        for i in range(runs):
            out["warm"].append(one_start(server, workers, f"warm{i}"))
            if i == runs - 1:
                out["exercise"] = exercise(server, site, wrk_seconds)
                out["exercised"] = snapshot(server)
                out["builder_after"] = healthz(server).get("builder", {})
                if change is not None:
                    out["change"] = change_to_served(server, change[0], runs, change[1], f"w{workers}")
            server.stop()
    finally:
        server.stop()
    return out


def change_to_served(server: serve.Server, newest_index: int, runs: int, mutations: Mutations,
                     tag: str) -> dict[str, Any]:
    """Seconds from writing a file to every worker serving it: an edit (new ETag of the feed), an addition
    (article count in /healthz)."""
    assert server.access_log is not None
    time.sleep(3)  # let every watcher settle (first scan)
    access = serve.AccessLog(server.access_log)
    etag = serve.get(server.port, FEED_PATH)[1]["etag"]
    out: dict[str, Any] = {"interval": 1, "edit": [], "add": [], "workers": len(server.workers())}
    for i in range(runs):
        METER.wait()
        t_write = time.perf_counter()
        mutations.edit(newest_index)
        result = serve.wait_for_change(server, access, FEED_PATH, lambda s, h, b: h.get("etag"), etag, t_write,
                                       f"{tag}e{i}", parallel=out["workers"])
        out["edit"].append(result)
        etag = serve.get(server.port, FEED_PATH)[1]["etag"]
        log(f"  edit {i + 1}/{runs}: first worker {fmt_seconds(result['first_worker'])}, "
            f"every worker {fmt_seconds(result['all_workers'])}")
        time.sleep(1.5)
    count = json.loads(serve.get(server.port, "/healthz")[2])["articles"]
    for i in range(runs):
        METER.wait()
        t_write = time.perf_counter()
        mutations.add()
        result = serve.wait_for_change(server, access, "/healthz", lambda s, h, b: json.loads(b)["articles"],
                                       count, t_write, f"{tag}a{i}", parallel=out["workers"])
        out["add"].append(result)
        count += 1
        log(f"  add {i + 1}/{runs}: first worker {fmt_seconds(result['first_worker'])}, "
            f"every worker {fmt_seconds(result['all_workers'])}")
        time.sleep(1.5)
    out["log_tail"] = server.tail(5)
    return out


def phase_workers(seeds: Path, work: Path, parse_cache: Path, site: Path, counts: list[int], runs: int,
                  wrk_seconds: int, change: tuple[int, Mutations] | None) -> dict[str, Any]:
    """Every worker count in turn, the corpus put back as it was after each."""
    out: dict[str, Any] = {}
    for workers in counts:
        try:
            out[str(workers)] = measure(seeds, work, parse_cache, site, workers, runs, wrk_seconds, change)
        finally:
            if change is not None:
                change[1].restore()
    return out

"""The feedpub benchmark runner (issue 6): ``python -m benchmarks [--sizes 10000,100000] [--runs N]``.

For each corpus size it measures, each beside a baseline taken in the same run:

* cold and warm load (article files/s) against one process running ``yaml.load(front, CSafeLoader)``
  over the same files;
* full render of all feeds (``render_site``) against the cold load time;
* ``feedpub build`` into an empty directory, with nothing changed, after one file is edited and after
  one is added;
* a cold ``feedpub build`` (empty cache) against the same baseline;
* gunicorn with 2 and 4 workers and one builder (:mod:`benchmarks.fleet`): time until every worker serves
  after a first start (cold store) and a restart (warm store), memory per worker and the builder's, and
  how long an edited / added file takes to be served by every worker;
* requests/s for a cached feed, 200 and 304 (wrk against gunicorn -w 2 on 127.0.0.1) against a bare
  Flask route returning the same bytes and nginx serving the static tree;
* peak memory per worker;

then prints a markdown table of medians, ratios and targets, writes it to ``--out`` with the command and
machine, and adds a profile for every target that is not met. Every measurement that must not share
state runs in its own process (:mod:`benchmarks.probe`); every server is stopped at the end, and every
file edited or added in a corpus is put back as it was.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests import corpusgen as gen

from . import fleet, serve
from .cells import median
from .probe import SITE_URL, article_files
from .quiet import METER
from .report import FEED_PATH, REPO, code_version, evaluate, label, render_report
from .serve import log

RSS_TYPE = "application/rss+xml; charset=utf-8"
PHASES = ("load", "build", "serve", "workers", "reload", "incremental", "memory", "profiles")


# ----------------------------------------------------------------------------------------------- helpers


def probe(kind: str, seeds: Path, cache: Path | None = None, timeout: float = 3600, **options: Any) -> dict[str, Any]:
    """Run one probe in a fresh interpreter; its result is the JSON on the last line of stdout."""
    argv = [sys.executable, "-m", "benchmarks.probe", kind, "--seeds", str(seeds)]
    if cache is not None:
        argv += ["--cache-dir", str(cache)]
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value not in (None, False):
            argv += [flag, str(value)]
    t0 = time.perf_counter()
    done = subprocess.run(argv, cwd=REPO, env=serve.clean_env(), capture_output=True, text=True, timeout=timeout,
                          check=False)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"probe {kind} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["_wall"] = wall
    return result


def feedpub_build(seeds: Path, out: Path, cache: Path, cpu: list[float] | None = None) -> tuple[float, str, float]:
    """Wall time of the ``feedpub build`` command (interpreter start-up included), its summary line and its
    peak RSS in MiB (from ``wait4``: that process alone). ``cpu`` gets the CPU seconds (user + system) it
    and the children it waited for (its parse pool and render children) used."""
    exe = serve.tool("feedpub")
    if exe is None:
        raise RuntimeError("the feedpub command is not installed in this environment")
    argv = [exe, "build", "--seeds", str(seeds), "--out", str(out), "--site-url", SITE_URL, "--cache-dir", str(cache)]
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        t0 = time.perf_counter()
        process = subprocess.Popen(argv, cwd=REPO, env=serve.clean_env(), stdout=stdout, stderr=stderr, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - t0
        process.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        stderr.seek(0)
        output, errors = stdout.read(), stderr.read()
    if process.returncode != 0:
        raise RuntimeError(f"feedpub build failed ({process.returncode}):\n{errors[-3000:]}")
    if cpu is not None:
        cpu.append(usage.ru_utime + usage.ru_stime)
    return seconds, output.strip().splitlines()[-1] if output.strip() else "", usage.ru_maxrss / 1024


class Mutations:
    """Edits and additions to a corpus, all undone by :meth:`restore` (bytes and mtimes put back)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.originals: dict[Path, tuple[bytes, int, int]] = {}
        self.created: list[Path] = []
        self.created_dirs: list[Path] = []
        self.next_seed = 1000

    def edit(self, index: int) -> Path:
        hits = sorted((self.root / f"{index // gen.PER_DIR:03d}").glob(f"{index:06d}_*.txt"))
        if hits and hits[0] not in self.originals:
            info = hits[0].stat()
            self.originals[hits[0]] = (hits[0].read_bytes(), info.st_atime_ns, info.st_mtime_ns)
        return gen.touch_one(self.root, index)

    def add(self) -> Path:
        """Add one generated article that is published (so it shows in the feeds and the article count)."""
        for _ in range(100):
            seed, self.next_seed = self.next_seed, self.next_seed + 1
            preview = gen._article(gen._Rng(f"feedpub-add-{seed}"), 0, None)  # `published` does not depend on the index
            if preview["published"]:
                break
        before = {p for p in self.root.iterdir() if p.is_dir()}
        path = gen.add_one(self.root, seed)
        self.created.append(path)
        if path.parent not in before:
            self.created_dirs.append(path.parent)
        return path

    def restore(self) -> None:
        for path, (body, atime, mtime) in self.originals.items():
            path.write_bytes(body)
            os.utime(path, ns=(atime, mtime))
        self.originals.clear()
        for path in self.created:
            path.unlink(missing_ok=True)
        self.created.clear()
        for directory in self.created_dirs:
            with contextlib.suppress(OSError):
                directory.rmdir()
        self.created_dirs.clear()


def prepare_corpus(n: int, args: argparse.Namespace, work: Path) -> tuple[Path, str]:
    """The corpus of n articles (seed ``--seed``): reused from --corpus-dir/c<n> when present, else generated."""
    base = Path(args.corpus_dir) if args.corpus_dir else work
    path = base / f"c{label(n)}"
    if path.exists():
        count = len(article_files(str(path)))
        if count != n:
            raise SystemExit(f"{path} holds {count} article files, not {n}: remove it or choose another --corpus-dir")
        bad = verify_corpus(path, n, args.seed)
        if bad:
            raise SystemExit(f"{path} differs from the generator's output (seed {args.seed}) in {bad} checked files")
        return path, f"`{path}` reused ({n:,} files; first and last 1,000 verified byte-identical to seed {args.seed})"
    log(f"generating {n:,} articles into {path}")
    t0 = time.perf_counter()
    gen.generate(path, n, seed=args.seed)
    seconds = time.perf_counter() - t0
    return path, f"`{path}` generated by `tests.corpusgen.generate(n={n}, seed={args.seed})` in {seconds:.0f} s"


def verify_corpus(path: Path, n: int, seed: int) -> int:
    chunks = sorted({0, (n - 1) // gen.PER_DIR})
    bad = 0
    for index, article, text in gen.iter_articles(n, seed, chunks):
        url = article.get("webUrl") or article["originalUrl"]
        digest = hashlib.blake2b(url.encode(), digest_size=8).hexdigest()
        file = path / f"{index // gen.PER_DIR:03d}" / f"{index:06d}_{digest}.txt"
        try:
            if file.read_bytes() != text.encode():
                bad += 1
        except OSError:
            bad += 1
    return bad


# ------------------------------------------------------------------------------------------------ phases


def phase_load(seeds: Path, work: Path, runs: int, slow_runs: int) -> dict[str, Any]:
    """Baseline and cold load interleaved (each cold load with an empty cache dir), then warm loads."""
    baseline: list[dict[str, Any]] = []
    cold: list[dict[str, Any]] = []
    warm_cache = work / "cache-warm"
    for i in range(max(slow_runs, 1)):
        log(f"  baseline (CSafeLoader, 1 process) run {i + 1}/{slow_runs}")
        METER.wait()
        baseline.append(probe("baseline", seeds))
        log(f"    {baseline[-1]['seconds']:.1f} s")
        cache = work / f"cache-cold-{i}"
        shutil.rmtree(cache, ignore_errors=True)
        log(f"  cold load run {i + 1}/{slow_runs}")
        METER.wait()
        cold.append(probe("load", seeds, cache))
        log(f"    {cold[-1]['seconds']:.1f} s (parsed {cold[-1]['parsed']:,})")
        shutil.rmtree(warm_cache, ignore_errors=True)
        cache.rename(warm_cache)  # the last cold load's cache is the warm cache
    warm = []
    for i in range(runs):
        METER.wait()
        warm.append(probe("load", seeds, warm_cache))
        log(f"  warm load run {i + 1}/{runs}: {warm[-1]['seconds']:.2f} s (from cache {warm[-1]['from_cache']:,})")
    return {"baseline": baseline, "cold": cold, "warm": warm, "warm_cache": str(warm_cache)}


def phase_build(seeds: Path, work: Path, cache: Path, runs: int) -> dict[str, Any]:
    """Full builds into empty directories: `feedpub build`'s code path in-process (stage timings, render alone),
    the `feedpub build` command with an empty cache (a cold build, against the load baseline), then the
    command once with the warm cache, whose tree is the one nginx serves."""
    builds = []
    for i in range(runs):
        out = work / f"site-probe-{i}"
        shutil.rmtree(out, ignore_errors=True)
        METER.wait()
        builds.append(probe("build", seeds, cache, out=out))
        shutil.rmtree(out, ignore_errors=True)
        b = builds[-1]
        log(f"  full build {i + 1}/{runs} (in-process stages): total {b['stages']['total']:.1f} s, render "
            f"{b['stages']['render']:.1f} s, write {b['stages']['write']:.1f} s; {b['outputs']:,} files, "
            f"{b['bytes'] / 2**20:,.0f} MiB")
    cold: list[float] = []
    cold_peak: list[float] = []
    cold_cpu: list[float] = []
    for i in range(runs):  # the command as a first build runs it: empty cache, empty directory
        scratch, scratch_cache = work / "site-cold", work / "cache-build-cold"
        for path in (scratch, scratch_cache):
            shutil.rmtree(path, ignore_errors=True)
        METER.wait()
        seconds, _, peak = feedpub_build(seeds, scratch, scratch_cache, cold_cpu)
        cold.append(seconds)
        cold_peak.append(peak)
        log(f"  cold `feedpub build` {i + 1}/{runs} (empty cache and directory): {seconds:.1f} s, "
            f"peak RSS {peak:,.0f} MiB, {cold_cpu[-1]:.1f} CPU-s")
    for path in (work / "site-cold", work / "cache-build-cold"):
        shutil.rmtree(path, ignore_errors=True)
    site = work / "site"
    shutil.rmtree(site, ignore_errors=True)
    METER.wait()
    cli_seconds, summary, cli_peak = feedpub_build(seeds, site, cache)
    log(f"  `feedpub build` command into an empty directory: {cli_seconds:.1f} s, peak RSS {cli_peak:,.0f} MiB")
    kept = work / "site-kept"  # the same again: every entry kept by the build before, none made
    shutil.rmtree(kept, ignore_errors=True)
    METER.wait()
    kept_seconds, _, kept_peak = feedpub_build(seeds, kept, cache)
    shutil.rmtree(kept, ignore_errors=True)
    log(f"  again into another empty directory, entries kept: {kept_seconds:.1f} s, peak RSS {kept_peak:,.0f} MiB")
    builds_kept = []  # the in-process stages again, now looking up the entries kept as the command does
    for i in range(runs):
        out = work / f"site-probe-kept-{i}"
        shutil.rmtree(out, ignore_errors=True)
        METER.wait()
        builds_kept.append(probe("build", seeds, cache, out=out, kept=True))
        shutil.rmtree(out, ignore_errors=True)
        log(f"  full build {i + 1}/{runs} (in-process stages), entries kept: render "
            f"{builds_kept[-1]['stages']['render']:.1f} s")
    startup = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import feedpub.cli"], cwd=REPO, env=serve.clean_env(), check=True)
        startup.append(time.perf_counter() - t0)
    return {"builds": builds, "cold_cli": cold, "cold_cli_peak": cold_peak, "cold_cli_cpu": cold_cpu,
            "cli_seconds": cli_seconds,
            "cli_peak": cli_peak, "kept_seconds": kept_seconds, "kept_peak": kept_peak, "summary": summary,
            "builds_kept": builds_kept,
            "site": str(site),
            "startup": startup, "newest": builds[-1]["newest"]}


def start_checked(server: serve.Server, static_body: bytes, gunicorn: bool) -> dict[str, Any]:
    """Start a server and check it sends the static tree's bytes for the feed, and a 304 for its ETag."""
    t0 = time.perf_counter()
    server.start()
    ready = server.wait_ready(2, timeout=1800) if gunicorn else {}
    # A first start of feedpub on an empty store answers 503 until its builder published the site.
    server.wait_http(FEED_PATH, timeout=1800)
    started = time.perf_counter() - t0
    status, headers, body = serve.get(server.port, FEED_PATH)
    etag = headers.get("etag", "")
    status304 = serve.get(server.port, FEED_PATH, {"If-None-Match": etag})[0]
    if status != 200 or status304 != 304:
        raise RuntimeError(f"{server.name}: GET gave {status}, conditional GET gave {status304}")
    log(f"  {server.name} up in {started:.1f} s on port {server.port}")
    return {"start_seconds": started, "same_bytes": body == static_body, "bytes": len(body),
            "content_type": headers.get("content-type"), "etag": etag, "gunicorn": gunicorn,
            "after_load": {str(k): v for k, v in ready.items()}, "200": [], "304": []}


def phase_serve(seeds: Path, work: Path, cache: Path, site: Path, runs: int, seconds: int,
                watcher_idle_variant: bool = False) -> dict[str, Any]:
    """bare Flask, nginx and feedpub (and optionally feedpub with its watcher asleep) all started; then, run by
    run, each one alone gets the CPUs (the others are SIGSTOPped) for a warm-up, a wrk 200 and a wrk 304."""
    static_body = (site / "all.xml").read_bytes()
    # Each feedpub server gets a cache dir of its own (the warm parse cache, no served store): two servers
    # sharing one would share one builder.
    feed_env = {"FEEDPUB_SEEDS_DIR": str(seeds), "FEEDPUB_SITE_URL": SITE_URL,
                "FEEDPUB_CACHE_DIR": str(fleet.fresh_cache(cache, work / "cache-serve"))}
    servers = {
        "bare": (serve.gunicorn("bare-flask", "benchmarks.bare_flask:app",
                                {"BENCH_BODY_FILE": str(site / "all.xml"), "BENCH_CONTENT_TYPE": RSS_TYPE}, work),
                 True),
        "nginx": (serve.nginx(site, work), False),
        "feedpub": (serve.gunicorn("feedpub", "wsgi:app", feed_env, work), True),
    }
    if watcher_idle_variant:
        idle_env = {**feed_env, "FEEDPUB_RELOAD_INTERVAL": "3600",
                    "FEEDPUB_CACHE_DIR": str(fleet.fresh_cache(cache, work / "cache-serve-idle"))}
        servers["feedpub_idle_watcher"] = (serve.gunicorn("feedpub-idle", "wsgi:app", idle_env, work), True)
    out: dict[str, Any] = {}
    try:
        for name, (server, gunicorn) in servers.items():
            out[name] = start_checked(server, static_body, gunicorn)
            server.pause()
        for name, (server, gunicorn) in servers.items():  # idle CPU: the feedpub watcher's cost at rest
            if gunicorn:
                server.resume()
                time.sleep(1)
                workers = server.workers()
                before = {pid: serve.cpu_seconds(pid) for pid in workers}
                time.sleep(6)
                out[name]["idle_cpu_share"] = {str(pid): (serve.cpu_seconds(pid) - before[pid]) / 6 for pid in workers}
                server.pause()
        for run in range(runs):
            for name, (server, _) in servers.items():
                server.resume()
                etag = out[name]["etag"]
                serve.wrk(server.port, FEED_PATH, seconds=1)  # warm-up, not counted
                METER.wait()
                out[name]["200"].append(serve.wrk(server.port, FEED_PATH, seconds=seconds))
                METER.wait()
                out[name]["304"].append(serve.wrk(server.port, FEED_PATH, {"If-None-Match": etag}, seconds=seconds))
                server.pause()
            log(f"  run {run + 1}/{runs}: " + "; ".join(
                f"{name} 200 {out[name]['200'][-1]['rps']:,.0f}/s 304 {out[name]['304'][-1]['rps']:,.0f}/s"
                for name in servers))
        for name, (server, gunicorn) in servers.items():
            server.resume()
            out[name]["after_wrk"] = {str(pid): serve.proc_status(pid) for pid in server.workers()} if gunicorn else {}
    finally:
        for server, _ in servers.values():
            server.stop()
    return out


def phase_reload(seeds: Path, work: Path, cache: Path, newest_index: int, runs: int,
                 mutations: Mutations) -> dict[str, Any]:
    """gunicorn -w 2 with FEEDPUB_RELOAD_INTERVAL=1 (its own cache dir: a cold store): seconds from writing
    a file to both workers serving it. The workers phase measures the same on its servers when it runs."""
    server = fleet.fleet_server(seeds, fleet.fresh_cache(cache, work / "cache-reload"), work, 2)
    server.start()
    try:
        server.wait_ready(2, timeout=1800)
        server.wait_http(FEED_PATH, timeout=1800)
        return fleet.change_to_served(server, newest_index, runs, mutations, "r")
    finally:
        server.stop()


def phase_incremental(seeds: Path, work: Path, cache: Path, site: Path, newest_index: int, runs: int,
                      mutations: Mutations) -> dict[str, Any]:
    out: dict[str, Any] = {}
    feedpub_build(seeds, site, cache)  # settle: the parse cache and the tree match the corpus as it is now
    out["nothing_changed"] = []
    for _ in range(runs):
        METER.wait()
        out["nothing_changed"].append(feedpub_build(seeds, site, cache)[0])
    log(f"  rebuild, nothing changed: {median(out['nothing_changed']):.2f} s")
    out["edit"], out["add"] = [], []
    for _ in range(runs):
        mutations.edit(newest_index)
        METER.wait()
        seconds, summary, _ = feedpub_build(seeds, site, cache)
        out["edit"].append(seconds)
        out["edit_summary"] = summary
    log(f"  rebuild after one edit: {median(out['edit']):.2f} s ({out['edit_summary']})")
    for _ in range(runs):
        mutations.add()
        METER.wait()
        seconds, summary, _ = feedpub_build(seeds, site, cache)
        out["add"].append(seconds)
        out["add_summary"] = summary
    log(f"  rebuild after one addition: {median(out['add']):.2f} s ({out['add_summary']})")
    mutations.edit(newest_index)
    out["breakdown"] = probe("build", seeds, cache, out=site)  # the same edit, in-process, stage by stage
    log(f"  breakdown: {out['breakdown']['stages']}")
    return out


# ------------------------------------------------------------------------------------------------ report


def phase_profiles(seeds: Path, work: Path, cache: Path, r: dict[str, Any], d: dict[str, Any],
                   force: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if force or not d.get("t_cold", True):
        log("  profile: single-process parse against the baseline; a cold load step by step")
        out["parse"] = probe("profile", seeds, cache, stage="parse", sample=2000, top=15)
        scratch = work / "cache-cold-breakdown"
        shutil.rmtree(scratch, ignore_errors=True)
        METER.wait()
        out["cold_breakdown"] = probe("load", seeds, scratch, breakdown=True)
        shutil.rmtree(scratch, ignore_errors=True)
    if force or not d.get("t_warm", True):
        log("  profile: warm load")
        out["warm"] = probe("profile", seeds, cache, stage="warm", top=15)
    if force or not d.get("t_render", True):
        log("  profile: the same full build with FEEDPUB_ARCHIVES=0")
        scratch = work / "site-no-archives"
        shutil.rmtree(scratch, ignore_errors=True)
        out["no_archives"] = probe("build", seeds, cache, out=scratch, no_archives=True)
        shutil.rmtree(scratch, ignore_errors=True)
        if force or r["n"] <= 20_000:  # cProfile of a 100k render costs minutes; the code path is the same
            log("  profile: render_site")
            out["render"] = probe("profile", seeds, cache, stage="render", top=15)
    if force or not all(d.get(k, True) for k in ("t_memory", "t_serve_200", "t_serve_304", "t_reload_edit",
                                                   "t_reload_add")):
        log("  profile: one server worker in-process (memory, requests, idle tick, reload)")
        out["server"] = probe("server", seeds, cache, requests=1000, top=20)
    if force or not d.get("t_memory", True):
        log("  profile: tracemalloc of the load")
        out["loadmem"] = probe("loadmem", seeds, cache, top=12)
    return out


# -------------------------------------------------------------------------------------------------- main


def run_size(n: int, args: argparse.Namespace, work: Path, phases: set[str]) -> dict[str, Any]:
    seeds, note = prepare_corpus(n, args, work)
    sw = work / label(n)
    sw.mkdir(parents=True, exist_ok=True)
    slow_runs = args.slow_runs if (args.slow_runs and n >= 100_000) else args.runs
    r: dict[str, Any] = {"n": n, "seeds": str(seeds), "corpus_note": note, "runs": args.runs, "slow_runs": slow_runs,
                         "wrk_seconds": args.wrk_seconds}
    mutations = Mutations(seeds)
    size = label(n)
    try:
        log(f"[{label(n)}] load: baseline and cold interleaved ({slow_runs} runs), warm ({args.runs} runs)")
        METER.start(f"{size} load")
        r["load"] = phase_load(seeds, sw, args.runs, slow_runs)
        METER.stop(f"{size} load")
        cache = Path(r["load"]["warm_cache"])
        if phases & {"build", "serve", "reload", "incremental"}:
            log(f"[{label(n)}] full builds ({slow_runs} in-process with stage timings, then the command once)")
            METER.start(f"{size} build")
            r["build"] = phase_build(seeds, sw, cache, slow_runs)
            METER.stop(f"{size} build")
        site = Path(r["build"]["site"]) if "build" in r else None
        newest = Path(r["build"]["newest"]["path"]) if "build" in r else None
        newest_index = int(newest.name.split("_", 1)[0]) if newest else 0
        if "serve" in phases and site:
            log(f"[{label(n)}] serving (wrk {args.wrk_seconds}s x {args.runs} runs per server and status)")
            METER.start(f"{size} serve")
            r["serve"] = phase_serve(seeds, sw, cache, site, args.runs, args.wrk_seconds, args.watcher_variant)
            METER.stop(f"{size} serve")
        if "workers" in phases and site:
            counts = [int(x) for x in args.worker_counts.split(",")]
            log(f"[{label(n)}] gunicorn -w {' / -w '.join(map(str, counts))}: ready time and memory per worker"
                + (", edits and additions served by every worker" if "reload" in phases else ""))
            METER.start(f"{size} workers")
            change = (newest_index, mutations) if "reload" in phases and newest else None
            r["workers"] = fleet.phase_workers(seeds, sw, cache, site, counts, args.runs, args.wrk_seconds, change)
            METER.stop(f"{size} workers")
            if "change" in r["workers"].get("2", {}):
                r["reload"] = r["workers"]["2"]["change"]  # the reload rows: the same measurement with -w 2
        if "reload" in phases and newest and "reload" not in r:
            log(f"[{label(n)}] reload latency (edit the newest article, add one article)")
            METER.start(f"{size} reload")
            r["reload"] = phase_reload(seeds, sw, cache, newest_index, args.runs, mutations)
            METER.stop(f"{size} reload")
            mutations.restore()
        if "incremental" in phases and site:
            log(f"[{label(n)}] incremental builds")
            METER.start(f"{size} incremental")
            r["incremental"] = phase_incremental(seeds, sw, cache, site, newest_index, args.runs, mutations)
            METER.stop(f"{size} incremental")
            mutations.restore()
        if "profiles" in phases:
            log(f"[{label(n)}] profiles for the targets not met")
            r["profiles"] = phase_profiles(seeds, sw, cache, r, evaluate(r), args.profile_all)
    except Exception:  # keep what was measured; the report shows the error
        r["error"] = traceback.format_exc()
        log(f"[{label(n)}] failed:\n{r['error']}")
    finally:
        mutations.restore()
        serve.stop_all()
        if not args.keep:
            shutil.rmtree(sw, ignore_errors=True)
    return r


def ensure_tools() -> None:
    missing = [name for name in ("wrk", "nginx") if serve.tool(name) is None]
    if missing:
        raise SystemExit(f"missing {', '.join(missing)}: "
                         f"run `apt-get update && apt-get install -y {' '.join(missing)}`")
    for name in ("gunicorn", "feedpub"):
        if serve.tool(name) is None:
            raise SystemExit(f"missing {name}: install feedpub (and gunicorn) into this interpreter's environment")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated corpus sizes (default 10000,100000)")
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement (default 3); medians are reported")
    parser.add_argument("--slow-runs", type=int, default=None,
                        help="runs of the baseline and cold load at >= 100k articles (default: --runs)")
    parser.add_argument("--out", default=None, help="write the report (markdown) here, e.g. benchmarks/RESULTS.md")
    parser.add_argument("--json", default=None, help="also write every raw measurement here")
    parser.add_argument("--corpus-dir", default=None,
                        help="reuse or create corpora as DIR/c10k, DIR/c100k ... (default: generate in a temp dir)")
    parser.add_argument("--seed", type=int, default=0, help="corpus generator seed (default 0)")
    parser.add_argument("--wrk-seconds", type=int, default=5, help="duration of each wrk run (default 5)")
    parser.add_argument("--phases", default=",".join(PHASES), help=f"subset of {','.join(PHASES)}")
    parser.add_argument("--worker-counts", default="2,4",
                        help="gunicorn worker counts of the workers phase (default 2,4)")
    parser.add_argument("--profile-all", action="store_true", help="profile every stage, not only targets not met")
    parser.add_argument("--watcher-variant", action="store_true",
                        help="also serve feedpub with FEEDPUB_RELOAD_INTERVAL=3600, to show the reload watcher's cost")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (caches, built trees, logs)")
    parser.add_argument("--quiet-wait", type=float, default=60,
                        help="before each timed run, wait up to this many seconds for other processes to leave the "
                             "CPUs alone (default 60; 0: never wait)")
    parser.add_argument("--quiet-budget", type=float, default=900,
                        help="total seconds all those waits may take (default 900)")
    args = parser.parse_args(argv)
    sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    phases = {p.strip() for p in args.phases.split(",") if p.strip()}
    if unknown := phases - set(PHASES):
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")
    if args.runs < 1 or any(n < 1 for n in sizes):
        parser.error("--runs and sizes must be positive")
    ensure_tools()
    METER.max_wait, METER.budget = args.quiet_wait, args.quiet_budget
    command = "python -m benchmarks " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    started = datetime.now(UTC)
    code_start = code_version()
    t0 = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="feedpub-bench-"))
    work.chmod(0o755)

    def terminate(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    results = []
    try:
        for n in sizes:
            r = run_size(n, args, work, phases)
            r["derived"] = evaluate(r)
            results.append(r)
    finally:
        serve.stop_all()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"work directory kept: {work}")
    report = render_report(results, command, started, time.perf_counter() - t0, code_start, code_version())
    print(report)
    if args.out:
        Path(args.out).write_text(report + "\n")
        log(f"wrote {args.out}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()

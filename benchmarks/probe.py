"""Measurements that must run in a fresh process: ``python -m benchmarks.probe KIND [options]``.

Each probe prints one JSON object as the last line of stdout, so the runner
(:mod:`benchmarks.__main__`) never shares in-process state (imports, the
loader's memory, the GC) between a cold load, a warm load and a render.
Timings are taken inside the process with ``time.perf_counter`` and exclude
interpreter start-up; the runner reports the start-up cost separately.
"""

from __future__ import annotations

import time

_T_START = time.perf_counter()

import argparse  # noqa: E402
import cProfile  # noqa: E402
import dataclasses  # noqa: E402
import gc  # noqa: E402
import importlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import pstats  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import types  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

SUFFIXES = (".md", ".markdown", ".txt")
FM_BOUNDARY = re.compile(r"^-{3,}\s*$", re.MULTILINE)  # python-frontmatter's YAMLHandler boundary
SITE_URL = "http://127.0.0.1:8000"


def proc_status(pid: int | str = "self") -> dict[str, float]:
    """VmRSS / VmHWM (peak) / VmSize of a process in MiB, from /proc/<pid>/status."""
    out: dict[str, float] = {}
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM", "VmSize", "RssAnon", "RssFile"):
                    out[key] = int(value.split()[0]) / 1024
    except OSError:
        pass
    return out


def article_files(root: str) -> list[str]:
    """Every article file under root (same rules as feedpub's scan: suffixes, no hidden names), sorted."""
    found: list[str] = []
    pending = [root]
    while pending:
        directory = pending.pop()
        for entry in os.scandir(directory):
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                pending.append(entry.path)
            elif entry.name.lower().endswith(SUFFIXES) and entry.is_file():
                found.append(entry.path)
    found.sort()
    return found


def _settings(args: argparse.Namespace, **extra: Any) -> Any:
    from feedpub.settings import Settings

    overrides: dict[str, Any] = {"seeds_dir": Path(args.seeds), "site_url": SITE_URL}
    if getattr(args, "cache_dir", None):
        overrides["cache_dir"] = Path(args.cache_dir)
    if getattr(args, "no_archives", False):
        overrides["archives"] = False
    overrides.update(extra)
    return Settings.load(overrides, environ={})  # nothing leaks in from FEEDPUB_* variables


def _loader(args: argparse.Namespace, keep_last_good: bool = False) -> Any:
    from feedpub.ingest.loader import CorpusLoader

    settings = _settings(args)
    cache = Path(args.cache_dir) if args.cache_dir else None
    return CorpusLoader(Path(args.seeds), settings.max_file_bytes, keep_last_good=keep_last_good, cache_dir=cache,
                        pause_gc=not keep_last_good)  # as the CLI loads, or as the server does


# ---------------------------------------------------------------------------------------------- probes


def probe_baseline(args: argparse.Namespace) -> dict[str, Any]:
    """The baseline: one process reads every file, splits the front matter, yaml.load(CSafeLoader)."""
    import yaml

    assert yaml.__with_libyaml__, "PyYAML has no libyaml: the baseline would be the pure-Python loader"
    t0 = time.perf_counter()
    paths = article_files(args.seeds)
    mappings = 0
    for path in paths:
        with open(path, "rb") as handle:
            text = handle.read().decode("utf-8-sig")
        _, front, _ = FM_BOUNDARY.split(text, 2)
        data = yaml.load(front, Loader=yaml.CSafeLoader)
        mappings += isinstance(data, dict)
    seconds = time.perf_counter() - t0
    return {"files": len(paths), "mappings": mappings, "seconds": seconds, "mem": proc_status()}


def probe_load(args: argparse.Namespace) -> dict[str, Any]:
    """CorpusLoader.load() once (cold: empty cache dir; warm: populated one), as `feedpub build` does."""
    t_import = time.perf_counter()
    importlib.import_module("feedpub.cli")  # what `feedpub build` imports before loading

    imported = time.perf_counter() - t_import
    timers = _load_timers() if args.breakdown else None
    loader = _loader(args)
    usage0 = (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
    t0 = time.perf_counter()
    corpus = loader.load()
    loader.close()
    seconds = time.perf_counter() - t0
    usage1 = (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
    cpu = [u1.ru_utime + u1.ru_stime - u0.ru_utime - u0.ru_stime for u0, u1 in zip(usage0, usage1, strict=True)]
    out = {"files": corpus.files, "articles": len(corpus.articles), "rejected": corpus.rejected,
           "problems": len(corpus.problems), "parsed": loader.parsed, "from_cache": loader.from_cache,
           "workers": loader.workers, "seconds": seconds, "import_seconds": imported, "mem": proc_status(),
           "cpu_main": cpu[0], "cpu_pool": cpu[1]}
    if timers is not None:
        out["parts"], out["calls"] = timers.seconds, timers.calls
    return out


def _load_timers() -> Timers:
    """Time the loader's steps in this (the main) process; the pool workers' parsing is not in here."""
    import feedpub.ingest.loader as loader_mod
    from feedpub.ingest.codec import Decoder
    from feedpub.ingest.parse_cache import ParseCache

    timers = Timers()
    timers.wrap(loader_mod, "scan", "load: scan seeds (os.scandir + stat)")
    timers.wrap(ParseCache, "__init__", "load: open parse cache")
    timers.wrap_generator(ParseCache, "rows", "load: read cache rows (SQLite)")
    timers.wrap(Decoder, "decode", "load: decode results (cached or from the pool)")
    timers.wrap(loader_mod, "content_digest", "load: hash touched files")
    timers.wrap(loader_mod, "read_file", "load: parse files in-process")
    timers.wrap(loader_mod, "encode", "load: encode results in-process")
    timers.wrap(ParseCache, "store", "load: write cache rows")
    timers.wrap(loader_mod, "assemble", "load: assemble corpus (dedupe, sort)")
    timers.wrap_generator(loader_mod.CorpusLoader, "_parse", "load: parse (pool: waiting for results)")
    return timers


def probe_render(args: argparse.Namespace) -> dict[str, Any]:
    """Load (warm), then time a full render_site (no previous site) ``--repeat`` times."""
    from feedpub.render.site import render_site

    settings = _settings(args)
    loader = _loader(args)
    corpus = loader.load()
    loader.close()
    times = []
    site = None
    for _ in range(args.repeat):
        site = None
        gc.collect()
        t0 = time.perf_counter()
        site = render_site(corpus, settings, workers=os.cpu_count() or 1)  # as `feedpub build` renders
        times.append(time.perf_counter() - t0)
    assert site is not None
    newest = corpus.articles[0]
    return {"seconds": times, "feeds": len(site.feeds), "archives": len(getattr(site, "archives", ())),
            "outputs": len(site.outputs), "rendered": site.rendered,
            "by_kind": _by_kind({n: len(o.body or b"") for n, o in site.outputs.items()}),
            "bytes": sum(len(o.body or b"") for o in site.outputs.values()),
            "all_xml_bytes": len(site.outputs["all.xml"].body or b""),
            "newest": {"path": newest.path, "url": newest.url, "domain": newest.provider.domain,
                       "topics": list(newest.topics)},
            "articles": len(corpus.articles), "files": corpus.files}


def probe_loadmem(args: argparse.Namespace) -> dict[str, Any]:
    """tracemalloc of a warm load as a server worker makes it (keep_last_good): what the parsed corpus holds."""
    import tracemalloc

    importlib.import_module("feedpub.web")  # Flask, werkzeug, jinja2: what a worker imports first
    loader = _loader(args, keep_last_good=True)
    tracemalloc.start(args.trace_frames)
    base = tracemalloc.take_snapshot()
    corpus = loader.load()
    snap = tracemalloc.take_snapshot()
    tracemalloc.stop()
    total = sum(stat.size_diff for stat in snap.compare_to(base, "filename"))
    return {"files": corpus.files, "articles": len(corpus.articles), "load_total_mib": total / 2**20,
            "per_file_kib": total / max(corpus.files, 1) / 1024,
            "load_top": _top_lines(snap.compare_to(base, "lineno"), args.top)}


def probe_server(args: argparse.Namespace) -> dict[str, Any]:
    """One server worker in-process: create_app() stage by stage (memory and time), its outputs, the cost of a
    request without the network (against the bare route), the watcher's idle tick, and a profiled reload
    after a one-file edit."""
    from benchmarks.bare_flask import make_app

    stages: dict[str, Any] = {"start": proc_status()}
    web = importlib.import_module("feedpub.web")
    state_mod: Any = importlib.import_module("feedpub.web.state")
    stages["imported"] = proc_status()
    times: dict[str, float] = {}
    original_render, original_prepare = state_mod.render_site, state_mod.prepare
    prepared_seconds = [0.0]

    def render_site(*a: Any, **k: Any) -> Any:
        if "loaded" not in stages:
            stages["loaded"] = proc_status()
            times["load (incl. scan)"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        try:
            return original_render(*a, **k)
        finally:
            if "rendered" not in stages:
                stages["rendered"] = proc_status()
                times["render"] = time.perf_counter() - t1

    def prepare(output: Any) -> Any:
        t1 = time.perf_counter()
        try:
            return original_prepare(output)
        finally:
            prepared_seconds[0] += time.perf_counter() - t1

    state_mod.render_site, state_mod.prepare = render_site, prepare
    # TESTING: no watcher. one_builder off: this process renders and holds its own snapshot, so its stages,
    # outputs and reload can be looked at in-process (the shared store's builder does the same render and load).
    config: dict[str, Any] = {"TESTING": True, "seeds_dir": args.seeds, "site_url": SITE_URL, "one_builder": False}
    if args.cache_dir:
        config["cache_dir"] = args.cache_dir
    if args.no_archives:
        config["archives"] = False
    t0 = time.perf_counter()
    app = web.create_app(config)
    times["create_app"] = time.perf_counter() - t0
    times["prepare (gzip -6 of every output)"] = prepared_seconds[0]
    state_mod.render_site, state_mod.prepare = original_render, original_prepare
    stages["prepared"] = proc_status()
    state = app.extensions["feedpub"]
    snapshot = state.snapshot
    site = snapshot.site
    result: dict[str, Any] = {
        "stages": stages, "times": times, "files": site.corpus.files, "articles": len(site.corpus.articles),
        "feeds": len(site.feeds), "archives": len(getattr(site, "archives", ())), "outputs": len(site.outputs),
        "output_mib": sum(p.size for p in snapshot.prepared.values()) / 2**20,
        "gzip_mib": sum(len(p.gzipped) for p in snapshot.prepared.values()) / 2**20,
        "plain_cache_mib": state.plain.budget / 2**20,
        "by_kind": _by_kind({n: p.size for n, p in snapshot.prepared.items()}),
        "archives_setting": state.settings.archives}
    if args.no_archives:
        return result

    # requests without the network: the same Flask app, a few paths, against the bare route
    all_xml = snapshot.prepared["all.xml"]
    bare = make_app(state.plain.get(all_xml), all_xml.mimetype)
    last_provider = next(f for f in reversed(site.feeds) if f.spec.path.startswith("providers/"))
    paths = {"all.xml": "/feeds/all.xml", "last provider feed (.xml)": f"/feeds/{last_provider.spec.path}.xml"}
    archives = getattr(site, "archives", ())
    if archives:
        paths["an archive page (.xml)"] = f"/feeds/{archives[-1].spec.path}.xml"
    per_request: dict[str, float] = {}
    for label, target, path_map in (("feedpub", app, paths), ("bare Flask", bare, {"all.xml": "/feeds/all.xml"})):
        client = target.test_client()
        for name, path in path_map.items():
            first = client.get(path)
            assert first.status_code == 200, (path, first.status_code)
            for kind, headers in (("200", {}), ("304", {"If-None-Match": first.headers["ETag"]})):
                assert client.get(path, headers=headers).status_code == int(kind)
                t1 = time.perf_counter()
                for _ in range(args.requests):
                    client.get(path, headers=headers)
                per_request[f"{label} {name} {kind}"] = (time.perf_counter() - t1) / args.requests * 1e6
    result["per_request_us"] = per_request
    profiler = cProfile.Profile()
    client = app.test_client()
    profiler.enable()
    for _ in range(args.requests):
        client.get("/feeds/all.xml")
    profiler.disable()
    result["request_profile"] = _pstats(profiler, "cumulative", 25)

    # the watcher's idle tick: reload() with nothing changed (a full scan of the seeds directory)
    ticks = []
    for _ in range(3):
        t1 = time.perf_counter()
        state.reload()
        ticks.append(time.perf_counter() - t1)
    result["idle_tick_seconds"] = ticks
    result["reload_interval"] = state.settings.reload_interval

    # one reload after editing the newest article, profiled
    from tests.corpusgen import touch_one

    edited = Path(site.corpus.articles[0].path)
    original, info = edited.read_bytes(), edited.stat()
    try:
        touch_one(Path(args.seeds), int(edited.name.split("_", 1)[0]))
        profiler = cProfile.Profile()
        t1 = time.perf_counter()
        profiler.enable()
        changed = state.reload()
        profiler.disable()
        result["reload"] = {"seconds": time.perf_counter() - t1, "changed": changed,
                            "rendered": state.snapshot.site.rendered,
                            "profile": _pstats(profiler, "cumulative", args.top)}
    finally:
        edited.write_bytes(original)
        os.utime(edited, ns=(info.st_atime_ns, info.st_mtime_ns))
    stages["after reload"] = proc_status()
    return result


def _pstats(profiler: cProfile.Profile, sort: str, top: int) -> str:
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats(sort).print_stats(top)
    return _trim_pstats(text.getvalue())


def _top_lines(stats: list[Any], top: int) -> list[dict[str, Any]]:
    out = []
    for stat in stats[:top]:
        frame = stat.traceback[0]
        out.append({"where": f"{_short(frame.filename)}:{frame.lineno}", "mib": stat.size_diff / 2**20,
                    "count": stat.count_diff})
    return out


def _top_traces(stats: list[Any], top: int) -> list[dict[str, Any]]:
    out = []
    for stat in stats[:top]:
        frames = [f"{_short(f.filename)}:{f.lineno}" for f in stat.traceback if "feedpub" in f.filename]
        out.append({"where": " <- ".join(reversed(frames[-4:])) or _short(stat.traceback[0].filename),
                    "mib": stat.size_diff / 2**20, "count": stat.count_diff})
    return out


def _short(filename: str) -> str:
    for marker in ("site-packages/", "src/", "lib/python"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


class Timers:
    """Wall time spent inside wrapped functions, accumulated by label (not nested: callers exclude callees
    only where noted)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def add(self, label: str, seconds: float) -> None:
        self.seconds[label] = self.seconds.get(label, 0.0) + seconds
        self.calls[label] = self.calls.get(label, 0) + 1

    def wrap(self, owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name)

        def timed(*a: Any, **k: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return original(*a, **k)
            finally:
                self.add(label, time.perf_counter() - t0)

        setattr(owner, name, timed)

    def wrap_generator(self, owner: Any, name: str, label: str) -> None:
        """Time spent producing items (inside the generator), not the consumer's time between items."""
        original = getattr(owner, name)

        def timed(*a: Any, **k: Any) -> Any:
            iterator = iter(original(*a, **k))
            while True:
                t0 = time.perf_counter()
                try:
                    item = next(iterator)
                except StopIteration:
                    self.add(label, time.perf_counter() - t0)
                    return
                self.add(label, time.perf_counter() - t0)
                yield item

        setattr(owner, name, timed)


def probe_build(args: argparse.Namespace) -> dict[str, Any]:
    """What `feedpub build` does, in-process, with a timing breakdown by stage."""
    t_import = time.perf_counter()
    import feedpub.static_tree as build
    import feedpub.tree_writer as writer
    importlib.import_module("feedpub.cli")  # what `feedpub build` imports
    import feedpub.ingest.loader as loader_mod
    import feedpub.render.formats as formats_mod
    import feedpub.render.kept as kept_mod
    import feedpub.render.prefill as prefill_mod
    import feedpub.render.site as site_mod

    imported = time.perf_counter() - t_import
    timers = _load_timers()
    timers.wrap(site_mod, "plan", "render: plan feeds")
    timers.wrap(site_mod, "fingerprint", "render: fingerprint feeds")
    timers.wrap(build.OutputMemo, "__init__", "render: read manifest")
    timers.wrap(build.OutputMemo, "bodies", "render: read previous outputs")
    timers.wrap(site_mod, "with_archives", "render: plan archives")
    timers.wrap(prefill_mod.Entries, "ready", "render: waits for the entries made on every core")
    for name, index in formats_mod.INDEX_FILES.items():
        holder = types.SimpleNamespace(render=index.render)
        timers.wrap(holder, "render", f"render: {name}")
        formats_mod.INDEX_FILES[name] = dataclasses.replace(index, render=holder.render)

    def timed_format(fmt: Any) -> Any:
        untimed = fmt.render

        def render(draft: Any, fmt: Any) -> bytes:
            t0 = time.perf_counter()
            try:
                body: bytes = untimed(draft, fmt)
                return body
            finally:
                kind = "archive pages" if getattr(draft.feed.spec, "archive", None) else "live feeds"
                timers.add(f"render: {kind} ({fmt.name})", time.perf_counter() - t0)
        return dataclasses.replace(fmt, render=render)

    for name, fmt in formats_mod.FORMATS.items():
        formats_mod.FORMATS[name] = timed_format(fmt)
    timers.wrap(writer, "same_bytes", "write: compare with files on disk")
    timers.wrap(writer, "atomic_write", "write: write changed files")
    timers.wrap(writer, "write_manifest", "write: manifest")

    settings = _settings(args, out_dir=Path(args.out))
    stages: dict[str, float] = {}
    t0 = time.perf_counter()
    loader = loader_mod.CorpusLoader(settings.seeds_dir, settings.max_file_bytes, cache_dir=settings.cache_dir,
                                     pause_gc=True)
    corpus = loader.load()
    stages["load"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    with open(os.devnull, "w") as sink:
        for problem in corpus.problems:
            print(str(problem), file=sink)
    stages["report problems"] = time.perf_counter() - t1
    t1 = time.perf_counter()
    cache = loader.cache() if args.kept else None
    # --kept: entries looked up in and kept beside the parse cache, as the command does (render/kept.py).
    with kept_mod.kept_fragments(cache, site_mod.rendering_key(settings)) as kept:
        site = site_mod.render_site(corpus, settings, build.OutputMemo(settings.out_dir),
                                    workers=os.cpu_count() or 1, kept=kept)
    loader.close()
    stages["render"] = time.perf_counter() - t1
    t1 = time.perf_counter()
    # Rendered whole, then written (the command writes each output as it is made), to time each stage.
    report = writer.write_site(site, settings.out_dir)
    stages["write"] = time.perf_counter() - t1
    stages["total"] = time.perf_counter() - t0
    newest = corpus.articles[0]
    return {"import_seconds": imported, "stages": stages, "parts": timers.seconds, "calls": timers.calls,
            "parsed": loader.parsed, "from_cache": loader.from_cache, "rendered": site.rendered,
            "written": report.written, "unchanged": report.unchanged, "files": corpus.files,
            "articles": len(corpus.articles), "rejected": corpus.rejected, "problems": len(corpus.problems),
            "feeds": len(site.feeds), "archives": len(getattr(site, "archives", ())), "outputs": len(site.outputs),
            "by_kind": _by_kind({n: len(o.body or b"") for n, o in site.outputs.items()}),
            "bytes": sum(len(o.body or b"") for o in site.outputs.values()),
            "newest": {"path": newest.path, "url": newest.url}, "archives_setting": settings.archives,
            "since_process_start": time.perf_counter() - _T_START}


def _by_kind(sizes: dict[str, int]) -> dict[str, list[int]]:
    """Outputs per kind (live feed format, archive pages, HTML pages, indexes): [files, bytes]."""
    kinds: dict[str, list[int]] = {}
    for name, size in sizes.items():
        suffix = name.rsplit(".", 1)[-1]
        kind = f"archive .{suffix}" if "/archive/" in name else ("index" if name.startswith("index.") else f".{suffix}")
        entry = kinds.setdefault(kind, [0, 0])
        entry[0] += 1
        entry[1] += size
    return kinds


def probe_profile(args: argparse.Namespace) -> dict[str, Any]:
    """cProfile of one stage: ``parse`` (single-process parse of --sample files, timed once without and
    once with the profiler), ``warm`` (cached load) or ``render`` (render_site)."""
    from feedpub.render.site import render_site

    settings = _settings(args)
    profiler = cProfile.Profile()
    extra: dict[str, Any] = {}
    if args.stage == "parse":
        from feedpub.ingest.scan import read_file

        root = Path(args.seeds)
        rels = [os.path.relpath(p, root) for p in article_files(args.seeds)][: args.sample]
        import yaml

        t0 = time.perf_counter()
        for rel in rels:
            with open(root / rel, "rb") as handle:
                text = handle.read().decode("utf-8-sig")
            yaml.load(FM_BOUNDARY.split(text, 2)[1], Loader=yaml.CSafeLoader)
        baseline = time.perf_counter() - t0
        t0 = time.perf_counter()
        for rel in rels:
            read_file(root, rel, settings.max_file_bytes)
        plain = time.perf_counter() - t0
        profiler.enable()
        for rel in rels:
            read_file(root, rel, settings.max_file_bytes)
        profiler.disable()
        extra = {"files": len(rels), "seconds": plain, "baseline_seconds": baseline}
    elif args.stage == "warm":
        loader = _loader(args)
        t0 = time.perf_counter()
        profiler.enable()
        loader.load()
        profiler.disable()
        extra = {"seconds": time.perf_counter() - t0}
    elif args.stage == "render":
        loader = _loader(args)
        corpus = loader.load()
        t0 = time.perf_counter()
        profiler.enable()
        render_site(corpus, settings)
        profiler.disable()
        extra = {"seconds": time.perf_counter() - t0}
    else:
        raise SystemExit(f"unknown stage {args.stage}")
    return {"stage": args.stage, "profile": _pstats(profiler, args.sort, args.top), **extra}


def _trim_pstats(text: str) -> str:
    lines = [line.rstrip() for line in text.splitlines()]
    keep = []
    started = False
    for line in lines:
        if line.lstrip().startswith("ncalls"):
            started = True
        if started or "function calls" in line:
            keep.append(re.sub(r"/\S*/(site-packages|src|lib/python3\.\d+)/", "", line))
    return "\n".join(keep).strip("\n")


PROBES = {"baseline": probe_baseline, "load": probe_load, "render": probe_render, "loadmem": probe_loadmem,
          "build": probe_build, "profile": probe_profile, "server": probe_server}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.probe")
    parser.add_argument("kind", choices=sorted(PROBES))
    parser.add_argument("--seeds", required=True)
    parser.add_argument("--cache-dir", default=None, help="parse cache directory (omit: no cache)")
    parser.add_argument("--out", default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-archives", action="store_true", help="FEEDPUB_ARCHIVES=0 (for comparison)")
    parser.add_argument("--kept", action="store_true", help="build: keep entries beside the parse cache (the command)")
    parser.add_argument("--breakdown", action="store_true", help="load: time the loader's steps")
    parser.add_argument("--trace-frames", type=int, default=1)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--stage", default="parse")
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--sample", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args(argv)
    result = PROBES[args.kind](args)
    sys.stdout.write("\n" + json.dumps(result) + "\n")


if __name__ == "__main__":
    main()

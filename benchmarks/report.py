"""The benchmark report: medians, ratios, verdicts against issue 6's targets, and the profiles.

Pure formatting of the numbers :mod:`benchmarks.__main__` measured (and keeps
with ``--json``): nothing here starts a process or times anything, apart from
reading the versions of the tools for the report's header.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import re
import subprocess
import traceback
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from . import serve
from .cells import change_cell, fmt_rate, fmt_seconds, median, spread, verdict
from .quiet import METER
from .report_workers import (
    change_rows,
    cold_build_row,
    evaluate_workers,
    summary_names,
    worker_details,
    worker_rows,
)

REPO = Path(__file__).resolve().parent.parent
FEED_PATH = "/feeds/all.xml"


def label(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def evaluate(r: dict[str, Any]) -> dict[str, Any]:
    """Derived numbers and target verdicts for one size."""
    d: dict[str, Any] = {}
    load = r.get("load")
    if load:
        files = load["cold"][0]["files"]
        d["files"] = files
        d["base_s"] = median([x["seconds"] for x in load["baseline"]])
        d["cold_s"] = median([x["seconds"] for x in load["cold"]])
        d["warm_s"] = median([x["seconds"] for x in load["warm"]])
        d["base_rate"], d["cold_rate"], d["warm_rate"] = files / d["base_s"], files / d["cold_s"], files / d["warm_s"]
        d["cold_ratio"] = d["cold_rate"] / d["base_rate"]
        d["warm_ratio"] = d["warm_rate"] / d["base_rate"]
        d["t_cold"] = d["cold_ratio"] >= 1.8
        d["t_warm"] = d["warm_ratio"] >= 20 and d["warm_s"] < 10
    build = r.get("build")
    if build:
        d["render_s"] = median([b["stages"]["render"] for b in build["builds"]])
        d["full_build_s"] = median([b["_wall"] for b in build["builds"]])
        if load:
            d["render_share"] = d["render_s"] / d["cold_s"]
            d["t_render"] = d["render_share"] <= 0.10
        if build.get("builds_kept"):
            d["render_kept_s"] = median([b["stages"]["render"] for b in build["builds_kept"]])
            if load:
                d["render_kept_share"] = d["render_kept_s"] / d["cold_s"]
                d["t_render_kept"] = d["render_kept_share"] <= 0.10
    inc = r.get("incremental")
    if inc:
        d["edit_build_s"], d["add_build_s"] = median(inc["edit"]), median(inc["add"])
        d["t_edit_build"], d["t_add_build"] = d["edit_build_s"] <= 5, d["add_build_s"] <= 5
        d["nothing_s"] = median(inc["nothing_changed"])
        if "base_s" in d:  # issue 13: a build with nothing to do costs little more than looking at the files
            d["nothing_ratio"] = d["base_s"] / d["nothing_s"]
            d["t_nothing"] = d["nothing_ratio"] >= 20
    rel = r.get("reload")
    if rel:
        for kind in ("edit", "add"):
            values = [x["all_workers"] for x in rel[kind]]
            d[f"reload_{kind}_s"] = None if None in values or not values else median(values)
            d[f"t_reload_{kind}"] = d[f"reload_{kind}_s"] is not None and d[f"reload_{kind}_s"] <= 2
    sv = r.get("serve")
    if sv:
        for kind in ("200", "304"):
            for name in ("bare", "nginx", "feedpub", "feedpub_idle_watcher"):
                if name in sv:
                    d[f"{name}_{kind}"] = median([x["rps"] for x in sv[name][kind]])
            d[f"ratio_bare_{kind}"] = d[f"feedpub_{kind}"] / d[f"bare_{kind}"]
            d[f"ratio_nginx_{kind}"] = d[f"feedpub_{kind}"] / d[f"nginx_{kind}"]
            d[f"t_serve_{kind}"] = d[f"ratio_bare_{kind}"] >= 0.9
        fp = sv["feedpub"]
        d["mem_load_hwm"] = max(v["VmHWM"] for v in fp["after_load"].values())
        d["mem_load_rss"] = max(v["VmRSS"] for v in fp["after_load"].values())
        d["mem_wrk_hwm"] = max(v.get("VmHWM", 0) for v in fp["after_wrk"].values())
        d["mem_wrk_rss"] = max(v.get("VmRSS", 0) for v in fp["after_wrk"].values())
        d["mem_bare_hwm"] = max(v.get("VmHWM", 0) for v in sv["bare"]["after_wrk"].values())
        d["t_memory"] = max(d["mem_load_hwm"], d["mem_wrk_hwm"]) <= 300
    evaluate_workers(r, d)
    return d


def table(n: int, r: dict[str, Any], d: dict[str, Any], runs: int) -> str:
    rows = ["| measurement | feedpub | baseline (same run) | ratio | target | result |", "|---|---|---|---|---|---|"]
    load = r.get("load")
    if load:
        bs = [x["seconds"] for x in load["baseline"]]
        cs = [x["seconds"] for x in load["cold"]]
        ws = [x["seconds"] for x in load["warm"]]
        workers = load["cold"][0]["workers"]
        rows.append(f"| cold load: empty parse cache, {workers} worker processes | {fmt_rate(d['cold_rate'])} "
                    f"({spread(cs, 1)}) | CSafeLoader, 1 process: {fmt_rate(d['base_rate'])} ({spread(bs, 1)}) | "
                    f"{d['cold_ratio']:.2f}x | >= 1.8x | {verdict(d['t_cold'], '{:.2f}x'.format(d['cold_ratio']))} |")
        rows.append(f"| warm load: nothing changed, all from the parse cache | {fmt_rate(d['warm_rate'])} "
                    f"({spread(ws)}) | {fmt_rate(d['base_rate'])} | {d['warm_ratio']:.1f}x | >= 20x and < 10 s | "
                    f"{verdict(d['t_warm'], '{:.1f}x, {:.2f} s'.format(d['warm_ratio'], d['warm_s']))} |")
    build = r.get("build")
    if build:
        last = build["builds"][-1]
        renders = [b["stages"]["render"] for b in build["builds"]]
        walls = [b["_wall"] for b in build["builds"]]
        archives = f", {last['archives']:,} monthly archive feeds x 2" if last.get("archives") else ""
        rows.append(f"| full render (`render_site` as `feedpub build` runs it: {last['feeds']:,} feeds x 4 outputs"
                    f"{archives}; {last['outputs']:,} files, {last['bytes'] / 2**20:,.0f} MiB) | {spread(renders)} | "
                    f"cold load {d.get('cold_s', 0):.1f} s | {d.get('render_share', 0) * 100:.0f}% of cold load | "
                    f"<= 10% | {verdict(d.get('t_render'), '%.0f%%' % (d.get('render_share', 0) * 100))} |")
        if build.get("builds_kept"):
            share = d.get("render_kept_share", 0) * 100
            rows.append(f"| full render, every entry kept by the build before (the same, on a second build into an "
                        f"empty directory) | {spread([b['stages']['render'] for b in build['builds_kept']])} | "
                        f"cold load {d.get('cold_s', 0):.1f} s | {share:.0f}% of cold load | <= 10% | "
                        f"{verdict(d.get('t_render_kept'), f'{share:.0f}%')} |")
        rows.append(f"| full build into an empty directory, warm parse cache, every entry rendered (`feedpub build`'s "
                    f"code path in-process; process wall time incl. start-up) | {spread(walls)} | — | — | — | — |")
        if build.get("kept_seconds"):
            first, again = build["cli_seconds"], build["kept_seconds"]
            rows.append(f"| `feedpub build` into an empty directory, entries kept by the build before (command wall "
                        f"time; peak RSS {build['kept_peak']:,.0f} MiB) | {again:.2f} s | the same command, warm parse "
                        f"cache, nothing kept: {first:.2f} s | {first / again:.2f}x | — | — |")
        rows += cold_build_row(r, d)
    inc = r.get("incremental")
    if inc:
        ratio = d.get("nothing_ratio")
        rows.append("| `feedpub build`, nothing changed (same out dir, warm cache; command wall time incl. start-up) | "
                    + f"{spread(inc['nothing_changed'])} | "
                    + (f"CSafeLoader, 1 process: {d['base_s']:.1f} s | {ratio:.1f}x | >= 20x | "
                       f"{verdict(d['t_nothing'], f'{ratio:.1f}x')} |" if ratio else "— | — | >= 20x | — |"))
        rows.append(f"| `feedpub build` after one file edited (`touch_one` on the newest article) | "
                    f"{spread(inc['edit'])} | — | — | <= 5 s | "
                    f"{verdict(d['t_edit_build'], '{:.2f} s'.format(d['edit_build_s']))} |")
        rows.append(f"| `feedpub build` after one file added (`add_one`) | {spread(inc['add'])} | — | — | <= 5 s | "
                    f"{verdict(d['t_add_build'], '{:.2f} s'.format(d['add_build_s']))} |")
    rel = r.get("reload")
    if rel:
        for kind, what in (("edit", "edited file (new ETag of /feeds/all.xml)"),
                           ("add", "added file (article count in /healthz)")):
            rows.append(f"| server: {what} served by both workers (gunicorn -w 2, FEEDPUB_RELOAD_INTERVAL=1) | "
                        f"{change_cell(rel[kind])} | — | — | <= 2 s | "
                        f"{verdict(d['t_reload_' + kind], fmt_seconds(d['reload_' + kind + '_s']))} |")
    rows += change_rows(r, d)
    sv = r.get("serve")
    if sv:
        for kind, what in (("200", "200"), ("304", "304 (If-None-Match)")):
            fp = [x["rps"] for x in sv["feedpub"][kind]]
            rows.append(f"| serve `{FEED_PATH}` ({sv['feedpub']['bytes'] / 1024:,.0f} KiB), {what}: wrk -t2 -c32 "
                        f"-d{r['wrk_seconds']}s, gunicorn -w 2 | {fmt_rate(d['feedpub_' + kind])} "
                        f"({spread(fp, 0, '/s')}) | bare Flask {fmt_rate(d['bare_' + kind])}; nginx "
                        f"{fmt_rate(d['nginx_' + kind])} | {d['ratio_bare_' + kind]:.2f}x bare Flask; "
                        f"{d['ratio_nginx_' + kind]:.3f}x nginx | >= 0.9x bare Flask | "
                        f"{verdict(d['t_serve_' + kind], '{:.2f}x'.format(d['ratio_bare_' + kind]))} |")
        rows.append(f"| peak memory per gunicorn worker (VmHWM, max of 2, the builder included; after load / "
                    f"after wrk) | "
                    f"{d['mem_load_hwm']:,.0f} / {d['mem_wrk_hwm']:,.0f} MiB (RSS {d['mem_wrk_rss']:,.0f} MiB) | "
                    f"bare Flask worker {d['mem_bare_hwm']:,.0f} MiB | — | <= 300 MiB | "
                    f"{verdict(d['t_memory'], '{:,.0f} MiB'.format(max(d['mem_load_hwm'], d['mem_wrk_hwm'])))} |")
        rows.append(f"| gunicorn -w 2 start until a worker serves (warm parse cache; the store is built at this "
                    f"start) | "
                    f"{sv['feedpub']['start_seconds']:.1f} s | bare Flask {sv['bare']['start_seconds']:.1f} s "
                    f"| — | — | — |")
    rows += worker_rows(r, d)
    return "\n".join(rows)


def details(n: int, r: dict[str, Any], d: dict[str, Any]) -> str:
    out = []
    load = r.get("load")
    if load:
        c = load["cold"][-1]
        out.append(f"- Corpus: {r['corpus_note']}. {c['files']:,} files, {c['articles']:,} published articles "
                   f"after dedupe, {c['rejected']} rejected, {c['problems']:,} problems reported.")
        out.append(f"- Load times are `CorpusLoader.load()` inside a fresh process (imports excluded: "
                   f"`import feedpub.cli` costs {median([x['import_seconds'] for x in load['warm']]):.2f} s more); "
                   f"cold and baseline runs were interleaved. Peak RSS of the load process: cold "
                   f"{median([x['mem']['VmHWM'] for x in load['cold']]):,.0f} MiB, warm "
                   f"{median([x['mem']['VmHWM'] for x in load['warm']]):,.0f} MiB.")
    build = r.get("build")
    if build:
        stages = median([b["stages"]["total"] for b in build["builds"]])
        out.append("- Full build stages (medians, in-process): " + ", ".join(
            f"{k} {median([b['stages'][k] for b in build['builds']]):.2f} s" for k in build["builds"][0]["stages"])
            + f". The `feedpub build` command itself into an empty directory took {build['cli_seconds']:.1f} s "
            f"(in-process median {stages:.1f} s + start-up) and printed: {build['summary']}")
        out.append(f"- Interpreter start-up + `import feedpub.cli`: {median(build['startup']):.2f} s of every "
                   f"`feedpub build` wall time.")
    sv = r.get("serve")
    if sv:
        same = all(sv[k]["same_bytes"] for k in ("bare", "nginx", "feedpub"))
        out.append(f"- All three servers sent the same {sv['feedpub']['bytes']:,} bytes for `{FEED_PATH}`: {same}; "
                   f"Content-Type feedpub `{sv['feedpub']['content_type']}`, nginx `{sv['nginx']['content_type']}`, "
                   f"bare Flask `{sv['bare']['content_type']}`.")
        errors = {k: [sum(x["socket_errors"]) + x["non_2xx_3xx"] for kind in ("200", "304") for x in sv[k][kind]]
                  for k in sv}
        out.append("- wrk errors (socket errors + non-2xx/3xx) per run: "
                   + "; ".join(f"{k}: {v}" for k, v in errors.items())
                   + ". gunicorn's sync workers close the connection after each response, so wrk reconnects "
                     "(nginx keeps connections alive); wrk and the servers share the same 2 cores.")
        idle = sv["feedpub"].get("idle_cpu_share", {})
        if idle:
            out.append("- Idle CPU of each feedpub worker before wrk (its reload watcher: a full scan of the seeds "
                       "directory on its first round and every 30 s, otherwise asleep until inotify reports a change): "
                       + ", ".join(f"{v * 100:.0f}%" for v in idle.values())
                       + " of a core; bare Flask workers: "
                       + ", ".join(f"{v * 100:.0f}%" for v in sv["bare"].get("idle_cpu_share", {}).values()) + ".")
        if "feedpub_idle_watcher" in sv:
            out.append(f"- Same feedpub server with FEEDPUB_RELOAD_INTERVAL=3600 (watcher asleep during wrk): 200 "
                       f"{fmt_rate(d['feedpub_idle_watcher_200'])} "
                       f"({d['feedpub_idle_watcher_200'] / d['bare_200']:.2f}x "
                       f"bare Flask), 304 {fmt_rate(d['feedpub_idle_watcher_304'])} "
                       f"({d['feedpub_idle_watcher_304'] / d['bare_304']:.2f}x bare Flask).")
    rel = r.get("reload")
    if rel:
        polls = [x["polls"] for k in ("edit", "add") for x in rel[k]]
        out.append(f"- Reload latency: the runner writes the file, then every 20 ms asks as many times at once as "
                   f"there are workers, each on a fresh connection (one at a time, the kernel's choice of the idle "
                   f"worker left some unasked for a second or more); gunicorn's access log (`%(p)s`) says which "
                   f"worker answered. A worker's time is its first answer with the new content ({sum(polls):,} "
                   f"requests in all).")
    out += worker_details(r)
    return "\n".join(out)


def code_version() -> str:
    def git(*argv: str) -> str:
        done = subprocess.run(["git", *argv], cwd=REPO, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "src", "wsgi.py", "pyproject.toml")
    digest = hashlib.sha256()
    for path in sorted([*(REPO / "src").rglob("*"), REPO / "wsgi.py"]):
        if path.is_file() and "__pycache__" not in path.parts and ".egg-info" not in str(path):
            digest.update(path.relative_to(REPO).as_posix().encode() + b"\0" + path.read_bytes())
    state = "with uncommitted changes in src/" if dirty else "src/ clean"
    return f"feedpub at commit {commit} ({state}; content hash of src/ {digest.hexdigest()[:12]})"


def machine() -> str:
    mem_kib = 0
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    cpu = "?"
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = []
    for package in ("feedpub", "PyYAML", "Flask", "Werkzeug", "gunicorn", "feedgen", "lxml", "nh3"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions.append(f"{package} {metadata.version(package)}")
    try:
        import yaml

        libyaml = f"libyaml {yaml._yaml.get_version_string()}" if yaml.__with_libyaml__ else "NO libyaml"
    except Exception:
        libyaml = "libyaml ?"
    nginx = subprocess.run([serve.tool("nginx") or "nginx", "-v"], capture_output=True, text=True, check=False)
    wrk = subprocess.run([serve.tool("wrk") or "wrk", "-v"], capture_output=True, text=True, check=False)
    wrk_version = (wrk.stdout or wrk.stderr).split("\n")[0].split(" [")[0]
    return (f"{os.cpu_count()} CPUs (`nproc` {len(os.sched_getaffinity(0))}), {mem_kib / 2**20:.1f} GiB RAM, {cpu}; "
            f"{platform.system()} {platform.release()}; Python {platform.python_version()}; "
            f"{', '.join(versions)} ({libyaml}); {nginx.stderr.strip().removeprefix('nginx version: ')}; {wrk_version}")


def _breakdown_table(b: dict[str, Any]) -> str:
    stages = "\n".join(f"| {k} | {v:.2f} s |" for k, v in b["stages"].items())
    parts = "\n".join(f"| {k} | {v:.3f} s | {b['calls'].get(k, 0):,} |"
                      for k, v in sorted(b["parts"].items(), key=lambda kv: -kv[1]) if v >= 0.005)
    return (f"| stage | time |\n|---|---|\n{stages}\n\n| inside the stages | time | calls |\n|---|---|---|\n{parts}")


def _kinds(by_kind: dict[str, list[int]]) -> str:
    return ", ".join(f"{kind} {files:,} files / {size / 2**20:,.0f} MiB"
                     for kind, (files, size) in sorted(by_kind.items(), key=lambda kv: -kv[1][1]))


def profiles(n: int, r: dict[str, Any], d: dict[str, Any]) -> str:
    parts = []
    pr = r.get("profiles", {})
    size = label(n)
    if "parse" in pr:
        p = pr["parse"]
        per_file = p["seconds"] / p["files"] * 1e3
        base_per_file = p["baseline_seconds"] / p["files"] * 1e3
        workers = r["load"]["cold"][0]["workers"]
        text = (f"**Cold load ({size}): {d['cold_ratio']:.2f}x the baseline, target 1.8x.** Timed in one process over "
                f"the first {p['files']:,} files, feedpub's `read_file` (split, YAML, validation, model) takes "
                f"{per_file:.2f} ms per file against {base_per_file:.2f} ms for the baseline's read + split + "
                f"CSafeLoader ({per_file / base_per_file:.2f}x), so parsing alone would allow "
                f"{workers * base_per_file / per_file:.2f}x on {workers} cores.")
        cb = pr.get("cold_breakdown")
        if cb:
            files = cb["files"]
            steps = cb.get("parts", {})
            decode = steps.get("load: decode results (cached or from the pool)", 0.0)
            wait = steps.get("load: parse (pool: waiting for results)", 0.0) - decode
            others = {k: v for k, v in steps.items() if "decode" not in k and "pool" not in k and v >= 0.01}
            text += (f" One more cold load, step by step ({cb['seconds']:.1f} s): the {workers} pool workers used "
                     f"{cb['cpu_pool']:.1f} CPU-s, {cb['cpu_pool'] / files * 1e3:.2f} ms per file (parse + encode + "
                     f"pickling, against {per_file:.2f} ms for the parse alone), and the main process "
                     f"{cb['cpu_main']:.1f} CPU-s on the same {os.cpu_count()} cores: "
                     + ", ".join([f"decoding the pool's results {decode:.1f} s",
                                  *(f"{k.removeprefix('load: ')} {v:.2f} s" for k, v in others.items())])
                     + f", and {wait:.1f} s waiting for the pool. CPU needed / cores = "
                     f"{(cb['cpu_pool'] + cb['cpu_main']) / os.cpu_count():.1f} s of the {cb['seconds']:.1f} s.")
        parts.append(text + " " + _profile("the single-process parse, by own time", p["profile"]))
    if "warm" in pr:
        p = pr["warm"]
        parts.append(f"**Warm load ({size}): {d['warm_s']:.2f} s, {d['warm_ratio']:.1f}x the baseline rate, target "
                     f"20x and < 10 s.** " + _profile(f"one cached load ({p['seconds']:.2f} s under the profiler), "
                                                      "by own time", p["profile"]))
    build = r.get("build")
    if build and not d.get("t_render", True):
        b = build["builds"][-1]
        text = (f"**Full render ({size}): {d['render_s']:.1f} s = {d['render_share'] * 100:.0f}% of the cold load "
                f"({d['cold_s']:.1f} s), target 10%.** What a full build renders: {_kinds(b['by_kind'])}. "
                f"Render time by part, in the build's own process (with more than one core, forked children make "
                f"the entries meanwhile: the rows by output kind include the feeds' assembly, not the entries "
                f"the children made, and the waits for them are a row of their own):\n\n" + _render_parts(b))
        if "no_archives" in pr:
            na = pr["no_archives"]
            text += (f"\n\nThe same build with `FEEDPUB_ARCHIVES=0`: render {na['stages']['render']:.1f} s "
                     f"({na['stages']['render'] / d['cold_s'] * 100:.0f}% of the cold load), {na['outputs']:,} files, "
                     f"{na['bytes'] / 2**20:,.0f} MiB.")
        if build.get("builds_kept"):
            k = build["builds_kept"][-1]
            text += (f"\n\nThe same render with every entry kept by the build before (`render/kept.py`: the "
                     f"children unpack them instead of making them): {d['render_kept_s']:.1f} s "
                     f"({d['render_kept_share'] * 100:.0f}% of the cold load), by part:\n\n" + _render_parts(k))
            text += "\n\n" + _render_gap(b, k, d)
        if "render" in pr:
            p = pr["render"]
            text += "\n\n" + _profile(f"`render_site` ({p['seconds']:.1f} s under the profiler), by own time",
                                      p["profile"])
        parts.append(text)
    if build and build.get("cold_cli_cpu") and not d.get("t_cold_build", True):
        parts.append(_cold_build(size, build, d))
    inc = r.get("incremental")
    if inc and "breakdown" in inc:
        b = inc["breakdown"]
        status = "met" if d.get("t_edit_build") and d.get("t_add_build") else "NOT met"
        parts.append(f"**Incremental `feedpub build` ({size}): edit {d['edit_build_s']:.2f} s, add "
                     f"{d['add_build_s']:.2f} s, target 5 s: {status}.** The same one-file edit built in-process, "
                     f"stage by stage (parsed {b['parsed']}, from cache {b['from_cache']:,}, rendered "
                     f"{b['rendered']:,} files, wrote {b['written']:,}); imports took {b['import_seconds']:.2f} s and "
                     f"interpreter start-up comes on top.\n\n" + _breakdown_table(b))
    if "server" in pr:
        p = pr["server"]
        st = p["stages"]
        stages = " → ".join(f"{k} {v['VmRSS']:,.0f}" for k, v in st.items())
        times = ", ".join(f"{k} {v:.1f} s" for k, v in p["times"].items())
        text = (f"**One server worker in-process ({size}), `one_builder` off (it renders and holds its own "
                f"snapshot: what the builder worker loads and renders, in a form the probe can look into).** "
                f"`create_app()` stage by stage, RSS in MiB: {stages}. "
                f"Time: {times}. It keeps {p['outputs']:,} outputs ({_kinds(p['by_kind'])}): "
                f"{p['output_mib']:,.0f} MiB of bodies, held gzip-compressed ({p['gzip_mib']:,.0f} MiB) with up to "
                f"{p['plain_cache_mib']:,.0f} MiB of plain copies for clients without gzip"
                + (f"; {p['archives']:,} archive feeds are rendered on first request" if p.get("archives") else "")
                + ".")
        if "loadmem" in pr:
            m = pr["loadmem"]
            top = "\n".join(f"| {x['where']} | {x['mib']:,.1f} MiB | {x['count']:,} |" for x in m["load_top"])
            text += (f"\n\nThe parsed corpus: {m['load_total_mib']:,.0f} MiB traced for {m['files']:,} files, "
                     f"{m['per_file_kib']:.1f} KiB per file (target <= 3 KiB per article). Top allocations of the "
                     f"load (tracemalloc, by line):\n\n| where | size | blocks |\n|---|---|---|\n{top}")
        if "per_request_us" in p:
            req = p["per_request_us"]
            table_rows = "\n".join(f"| {k} | {v:,.0f} µs |" for k, v in req.items())
            text += (f"\n\nRequests without the network (Flask test client, same process; the test client's own "
                     f"cost is in both):\n\n| request | time per request |\n|---|---|\n{table_rows}\n\n"
                     f"A full scan with nothing changed (`FeedState.reload()`: what the watcher does every 30 s, "
                     f"and every {p['reload_interval']:g} s where the file system sends no events) takes "
                     f"{median(p['idle_tick_seconds']):.2f} s, holding the GIL. "
                     + _profile("200s for `/feeds/all.xml`, by cumulative time", p["request_profile"]))
        if "reload" in p:
            rl = p["reload"]
            text += "\n\n" + _profile(f"one reload after a one-file edit ({rl['seconds']:.2f} s under the profiler, "
                                      f"{rl['rendered']} files re-rendered), by cumulative time", rl["profile"])
        parts.append(text)
    return "\n\n".join(parts)


def _render_parts(build: dict[str, Any]) -> str:
    """A build probe's render time by part, longest first, as a table."""
    rows = [f"| {key} | {seconds:.2f} s | {build['calls'].get(key, 0):,} |"
            for key, seconds in sorted(build["parts"].items(), key=lambda kv: -kv[1]) if key.startswith("render")]
    return "\n".join(["| part | time | calls |", "|---|---|---|", *rows])


def _render_gap(b: dict[str, Any], k: dict[str, Any], d: dict[str, Any]) -> str:
    """What is left of a full render with every entry kept, and what would take it to its target."""
    archives = sum(v for key, v in k["parts"].items() if key.startswith("render: archive pages"))
    documents = sum(k["calls"].get(key, 0) for key in k["parts"] if key.startswith("render: archive pages"))
    waits = k["parts"].get("render: waits for the entries made on every core", 0.0)
    mib = b["bytes"] / 2**20
    budget = 0.10 * d["cold_s"]
    return (f"What is left, with every entry kept: {archives:.1f} s for {documents:,} archive documents (each a "
            f"feedgen head with its entries' fragments spliced in), {waits:.1f} s waiting for the children to "
            f"unpack the entries, and the live feeds, pages and indexes. A full render into an empty directory "
            f"makes every byte of the tree ({mib:,.0f} MiB); within 10% of the cold load ({budget:.1f} s) that is "
            f"{mib / budget:,.0f} MiB/s assembled by one process. What would close it: keeping whole archive "
            f"documents across builds as entries are kept (a past month's page changes only when one of its "
            f"articles or the settings do), so a build into an empty directory copies them instead of assembling "
            f"them; or assembling the feeds on every core too (each child then needs the entries of every feed "
            f"it takes).")


def _cold_build(size: str, build: dict[str, Any], d: dict[str, Any]) -> str:
    """Where a cold build's time goes: the CPU its processes used, against what the cores can give."""
    cores = os.cpu_count() or 1
    cpu, wall = median(build["cold_cli_cpu"]), d["cold_build_s"]
    write_s = median([b["stages"]["write"] for b in build["builds"]])
    enough = int(cpu // d["base_s"]) + 1  # the fewest cores on which CPU needed / cores beats the baseline
    return (f"**Cold `feedpub build` ({size}): {d['cold_build_ratio']:.2f}x the baseline, target 1.0x.** The "
            f"command and the children it waited for (the parse pool, the render's children) used {cpu:.1f} CPU-s "
            f"(user + system, from `wait4`), {cpu / cores:.1f} s on {cores} cores at best, of its {wall:.1f} s"
            + (": it is CPU bound." if cpu / cores >= 0.85 * wall else " (the rest: start-up, forks, the build "
               "process's own serial part).")
            + f" The baseline parses in one process in {d['base_s']:.1f} s. Where the CPU goes, from the "
            f"rows above: the cold load (parsing every file, {d['cold_s']:.1f} s on every core: see \"Cold load\"), "
            f"then rendering every entry in 4 formats (the full render with nothing kept, {d['render_s']:.1f} s: "
            f"its parts under \"Full render\") and writing the tree ({write_s:.1f} s in-process; the command "
            f"writes while it renders), and packing every entry to keep it for the next build (~60 us an article, "
            f"docs/performance.md). Every stage but the build process's assembly of the feeds runs on every core, "
            f"so more cores close the gap: the same CPU on {enough} cores would need less than the baseline's "
            f"{d['base_s']:.1f} s. On {cores} cores it needs less CPU per article: a cheaper entry than feedgen's "
            f"(most of the render), or not keeping entries on a cold build (a trade: the next build into an empty "
            f"directory then renders them all again).")


def _profile(what: str, profile: str) -> str:
    """A cProfile listing with what it profiled, as every profile paragraph of the report shows one."""
    return f"cProfile of {what}:\n\n```\n{profile}\n```"


def _code_change(start: str | None, end: str | None) -> str:
    if end in (None, start):
        return ""
    trees = r"src/ [0-9a-f]+"
    same_src = start is not None and re.findall(trees, start) == re.findall(trees, end or "")
    why = ("other files were committed during the run; src/ is the same" if same_src
           else "the code changed during the run")
    return f" at the start, {end} at the end ({why})"


def render_report(results: list[dict[str, Any]], command: str, started: datetime, elapsed: float,
                  code_start: str | None = None, code_end: str | None = None) -> str:
    lines = ["# feedpub benchmarks", "",
             f"Command: `{command}` (from the repository root, in its `.venv`)  ",
             f"Date: {started.strftime('%Y-%m-%d %H:%M UTC')}, {elapsed / 60:.0f} min in all  ",
             f"Code: {code_start or code_version()}" + _code_change(code_start, code_end) + "  ",
             f"Machine: {machine()}", "",
             "Every number is a median of several runs (their min–max and count in brackets) and each ratio is "
             "between medians taken in the same run. Targets are the issue's, stated for 100k articles; the 10k "
             "rows are checked against the same numbers for reference.", ""]
    summary = []
    for r in results:
        d = r["derived"]
        lines += [f"## {r['n']:,} articles", "", table(r["n"], r, d, r["runs"]), "", details(r["n"], r, d), ""]
        if "error" in r:
            lines += ["**This size did not finish**; the rows above are what was measured before:", "",
                      "```", r["error"].rstrip(), "```", ""]
        if r["slow_runs"] != r["runs"]:
            lines += [f"Baseline load, cold load and full build: {r['slow_runs']} runs each (`--slow-runs`, fewer "
                      f"than `--runs {r['runs']}`, to bound the run time; a median of 2 is their mean); everything "
                      f"else {r['runs']} runs.", ""]
    final = results[-1]
    d = final["derived"]
    names = [("t_cold", "cold load >= 1.8x baseline"), ("t_warm", "warm load >= 20x baseline and < 10 s"),
             ("t_reload_edit", "edited file served within 2 s"), ("t_reload_add", "added file served within 2 s"),
             ("t_edit_build", "`feedpub build` after an edit <= 5 s"),
             ("t_add_build", "`feedpub build` after an addition <= 5 s"),
             ("t_render", "full render <= 10% of cold load"),
             ("t_render_kept", "full render with the entries kept <= 10% of cold load"),
             ("t_memory", "memory per worker <= 300 MiB"),
             ("t_serve_200", "cached feed 200 >= 0.9x bare Flask"),
             ("t_serve_304", "cached feed 304 >= 0.9x bare Flask"), *summary_names(d)]
    for key, text in names:
        if key in d:
            summary.append(f"- {'met' if d[key] else '**not met**'}: {text}")
    lines += [f"## Targets at {final['n']:,} articles", "", *summary, ""]
    prof = []
    for r in results:
        try:
            prof.append((r, profiles(r["n"], r, r["derived"])))
        except Exception:
            prof.append((r, "Could not format the profiles:\n\n```\n" + traceback.format_exc() + "```"))
    if any(text for _, text in prof):
        lines += ["## Where the time and memory go", "",
                  "Profiles for the targets not met (and the incremental build's stage breakdown).", ""]
        for r, text in prof:
            if text:
                lines += [f"### {r['n']:,} articles", "", text, ""]
    if METER.phases:
        lines += ["## Other load on the machine during the run", "",
                  f"Before each timed run the runner waited for the CPUs to be free of other processes' work (at most "
                  f"{METER.max_wait:.0f} s per wait; {METER.waited:.0f} s spent waiting in all, {METER.gave_up} waits "
                  f"gave up). CPU used by processes outside the runner's own tree, per phase (busy time in /proc/stat "
                  f"minus the runner, its servers, wrk and probes):", "",
                  "| phase | wall | runner's CPU | other processes' CPU | steal |", "|---|---|---|---|---|"]
        for name, ph in METER.phases.items():
            wall = max(ph["wall"], 1e-6)
            lines.append(f"| {name} | {ph['wall']:.0f} s | {ph['ours'] / wall:.2f} cores | "
                         f"{ph['foreign'] / wall:.2f} cores ({ph['foreign']:.0f} CPU-s) | {ph['steal'] / wall:.2f} |")
        lines.append("")
    lines += ["## Method", "",
              "- **Baseline load**: one process walks the corpus, reads each file, splits the front matter at the "
              "`---` lines and calls `yaml.load(front, Loader=yaml.CSafeLoader)` (`benchmarks/probe.py baseline`).",
              "- **Cold load**: `CorpusLoader(...).load()` in a fresh process with a new, empty parse cache directory "
              "(process pool of `os.cpu_count()` workers; the cache is written); **warm load**: the same in a fresh "
              "process with the populated cache and nothing changed. Baseline and cold runs alternate; the OS page "
              "cache holds the corpus for both.",
              "- **Full render and full build**: `feedpub build`'s own steps (load, report, `render_site` with the "
              "output directory's memo, `write_site`) in a fresh process into an empty directory with the warm "
              "cache, each step timed (`benchmarks/probe.py build`); the render row is the `render_site` step, "
              "compared with the cold load median. The `feedpub build` command itself is then run once into an "
              "empty directory, and that tree is what nginx serves.",
              "- **Incremental builds**: wall time of the `feedpub build` command (interpreter start-up included) "
              "into the same directory: with nothing changed, after `touch_one` on the newest article (so `all.*`, "
              "its topics' and its provider's feeds change) and after `add_one` (a published article). Every edited "
              "or added file is put back as it was afterwards (bytes and mtime).",
              "- **Reload latency**: `gunicorn -w 2 wsgi:app` with FEEDPUB_RELOAD_INTERVAL=1; seconds from writing "
              "the file until each worker answers with the new content (its first such answer).",
              "- **Serving**: bare Flask (`benchmarks/bare_flask.py`: the same bytes and Content-Type, a strong "
              "ETag, `make_conditional`; `gunicorn -w 2`), nginx (`daemon off; worker_processes 2;`, the static "
              "tree, types for .xml/.atom/.json/.opml) and feedpub (`gunicorn -w 2 wsgi:app`, the warm cache, "
              "default FEEDPUB_RELOAD_INTERVAL of 2 s) are all started; then, run after run, each in turn gets the "
              "machine while the others are SIGSTOPped: a 1 s wrk warm-up, `wrk -t2 -c32` for a 200 (plain GET, no "
              "Accept-Encoding) and for a 304 (`If-None-Match` with that server's ETag). gunicorn runs with "
              "`--timeout 3600` so a paused master does not kill its workers on resuming. Memory: VmHWM/VmRSS "
              "from /proc/<pid>/status of each worker, after loading (gunicorn's `post_worker_init`) and after "
              "the wrk runs.",
              "- **Cold build**: the `feedpub build` command (wall time, start-up included) with an empty cache "
              "directory into an empty directory, against the baseline load's rate over the same files.",
              "- **Workers** (one builder, issue 13): `gunicorn -w N wsgi:app` (FEEDPUB_RELOAD_INTERVAL=1) for each "
              "worker count, with a cache directory of its own holding only a copy of the warm parse cache. Its "
              "first start has no served store (one worker renders the site); every later start is a restart onto "
              "the store the last one left. Ready: from starting gunicorn until every worker has answered 200 for "
              "the feed (polled every 50 ms on fresh connections; gunicorn's access log, `%(p)s`, says which "
              "worker answered). The builder is the worker `/healthz` names (`builder.pid`); the runner then "
              "waits until every worker has been idle for 2 s (the builder has loaded the corpus it took over) "
              "and reads VmHWM, VmRSS (/proc/<pid>/status) and PSS (/proc/<pid>/smaps_rollup: shared pages split "
              "between the processes mapping them) of each worker; again after the last restart has answered an "
              "even sample of the site's outputs (gzip and plain, 4 connections) and a wrk run. Memory per worker "
              "is the largest of the workers that do not build; the builder is reported apart. The same server "
              "then times edits and additions until every worker serves them (the reload rows for -w 2), asking "
              "once per worker at a time every 20 ms.",
              "- **Profiles** are taken only for targets not met, after the measurements, in separate processes.",
              ""]
    return "\n".join(lines)

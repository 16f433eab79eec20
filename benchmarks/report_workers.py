"""The report's rows for issue 13 (one builder, thin servers): cold build, ready time, memory per worker,
change to served by every worker. Derived numbers go into the same dict as :func:`report.evaluate`'s."""

from __future__ import annotations

import statistics
from typing import Any

from .cells import change_cell, spread, verdict

MEMORY_TARGET = 150.0  # MiB per serving worker
FLAT = 1.10  # "not growing with workers": the most workers may use this much more per worker than the fewest
CHANGE_TARGET = 2.0  # seconds until every worker serves a change


def ready_target(n: int) -> float:
    """Issue 13: ready within 3 s at ~19k articles, 5 s at 100k."""
    return 3.0 if n <= 20_000 else 5.0


def _servers(snap: dict[str, Any], builder: int | None) -> list[dict[str, float]]:
    return [m for pid, m in snap["workers"].items() if int(pid) != builder]


def _builder(snap: dict[str, Any], builder: int | None) -> dict[str, float]:
    found: dict[str, float] = snap["workers"].get(str(builder), {})
    return found


def _peak(mems: list[dict[str, float]], key: str) -> float:
    return max((m.get(key, 0.0) for m in mems), default=0.0)


def _total_pss(snap: dict[str, Any]) -> float:
    processes: list[dict[str, float]] = [snap["master"], *snap["workers"].values()]
    return sum(m.get("Pss", 0.0) for m in processes)


def evaluate_workers(r: dict[str, Any], d: dict[str, Any]) -> None:
    build = r.get("build")
    if build and build.get("cold_cli") and "base_s" in d:
        d["cold_build_s"] = statistics.median(build["cold_cli"])
        d["cold_build_ratio"] = d["base_s"] / d["cold_build_s"]  # same files: the ratio of the rates
        d["t_cold_build"] = d["cold_build_ratio"] >= 1.0
    fleet = r.get("workers")
    if not fleet:
        return
    counts = sorted(int(w) for w in fleet)
    for w in counts:
        f = fleet[str(w)]
        if not f.get("warm"):
            continue
        d[f"ready_w{w}"] = statistics.median([x["ready"] for x in f["warm"]])
        d[f"t_ready_w{w}"] = d[f"ready_w{w}"] <= ready_target(r["n"])
        d[f"idle_hwm_w{w}"] = statistics.median([_peak(_servers(x["idle"], x["builder"]["pid"]), "VmHWM")
                                                 for x in f["warm"]])
        if "exercised" in f:
            pid = f["builder_after"].get("pid")
            snap = f["exercised"]
            servers = _servers(snap, pid)
            d[f"server_hwm_w{w}"] = _peak(servers, "VmHWM")
            d[f"server_pss_w{w}"] = _peak(servers, "Pss")
            d[f"server_rss_w{w}"] = _peak(servers, "VmRSS")
            d[f"builder_hwm_w{w}"] = _builder(snap, pid).get("VmHWM", 0.0)
            d[f"builder_pss_w{w}"] = _builder(snap, pid).get("Pss", 0.0)
            d[f"total_pss_w{w}"] = _total_pss(snap)
            d[f"t_server_mem_w{w}"] = max(d[f"server_hwm_w{w}"], d[f"idle_hwm_w{w}"]) <= MEMORY_TARGET
        change = f.get("change")
        if change and w != 2:  # -w 2: the reload rows
            for kind in ("edit", "add"):
                values = [x["all_workers"] for x in change[kind]]
                d[f"change_{kind}_w{w}"] = None if None in values or not values else statistics.median(values)
                d[f"t_change_{kind}_w{w}"] = d[f"change_{kind}_w{w}"] is not None and \
                    d[f"change_{kind}_w{w}"] <= CHANGE_TARGET
    lo, hi = counts[0], counts[-1]
    if lo != hi and f"server_hwm_w{lo}" in d and f"server_hwm_w{hi}" in d:
        d["server_mem_growth"] = d[f"server_hwm_w{hi}"] / d[f"server_hwm_w{lo}"]
        d["t_server_mem_flat"] = d["server_mem_growth"] <= FLAT


def cold_build_row(r: dict[str, Any], d: dict[str, Any]) -> list[str]:
    if "cold_build_s" not in d:
        return []
    files = d["files"]
    return [f"| cold `feedpub build`: empty cache dir and output dir (command wall time incl. start-up) | "
            f"{files / d['cold_build_s']:,.0f}/s; {spread(r['build']['cold_cli'], 1)}{_build_peak(r['build'])} | "
            f"CSafeLoader, 1 process: "
            f"{d['base_rate']:,.0f}/s ({d['base_s']:.1f} s) | {d['cold_build_ratio']:.2f}x | >= 1.0x | "
            f"{verdict(d['t_cold_build'], '{:.2f}x'.format(d['cold_build_ratio']))} |"]


def _build_peak(build: dict[str, Any]) -> str:
    peaks = build.get("cold_cli_peak")
    return f"; peak RSS {statistics.median(peaks):,.0f} MiB" if peaks else ""


def worker_rows(r: dict[str, Any], d: dict[str, Any]) -> list[str]:
    rows: list[str] = []
    fleet = r.get("workers") or {}
    target = ready_target(r["n"])
    for w in sorted(int(k) for k in fleet):
        f = fleet[str(w)]
        if not f.get("warm"):
            continue
        others = w - 1
        warm = [x["ready"] for x in f["warm"]]
        settled = statistics.median([x["builder"]["seconds"] for x in f["warm"]])
        rows.append(f"| gunicorn -w {w} restart onto its store (warm parse cache, warm store): start until every "
                    f"worker serves the feed | {spread(warm)}; first worker "
                    f"{statistics.median([x['first'] for x in f['warm']]):.2f} s; builder has the corpus at "
                    f"{settled:.1f} s | — | — | <= {target:g} s | "
                    f"{verdict(d[f't_ready_w{w}'], '{:.2f} s'.format(d[f'ready_w{w}']))} |")
        cold = f["cold"]
        rows.append(f"| gunicorn -w {w} first start, cold store (warm parse cache; one worker renders the site, the "
                    f"others answer 503 meanwhile): start until every worker serves (one start) | "
                    f"{cold['ready']:.2f} s; first worker {cold['first']:.2f} s | — | — | — | — |")
        if "exercised" not in f:
            continue
        lo, hi = min(int(k) for k in fleet), max(int(k) for k in fleet)
        flat = w == hi and lo != hi and "server_mem_growth" in d
        ratio = f"{d['server_mem_growth']:.2f}x -w {lo}" if flat else "—"
        limit = f"<= {MEMORY_TARGET:.0f} MiB" + (f" and <= {FLAT:.2f}x -w {lo}" if flat else "")
        ok = d[f"t_server_mem_w{w}"] and (d["t_server_mem_flat"] if flat else True)
        peak = max(d[f"server_hwm_w{w}"], d[f"idle_hwm_w{w}"])
        rows.append(f"| memory per serving worker, -w {w} (max of the {others} "
                    f"{'workers that do' if others > 1 else 'worker that does'} not build; VmHWM idle / after "
                    f"{f['exercise']['outputs']:,} outputs and wrk) | "
                    f"{d[f'idle_hwm_w{w}']:,.0f} / {d[f'server_hwm_w{w}']:,.0f} MiB (RSS "
                    f"{d[f'server_rss_w{w}']:,.0f}, PSS {d[f'server_pss_w{w}']:,.0f} MiB) | — | {ratio} | "
                    f"{limit} | {verdict(ok, f'{peak:,.0f} MiB')} |")
        cold_snap = cold["idle"]
        cold_pid = cold["builder"]["pid"]
        rows.append(f"| the builder worker, -w {w}, and the whole server (after the same requests) | builder VmHWM "
                    f"{d[f'builder_hwm_w{w}']:,.0f} MiB, PSS {d[f'builder_pss_w{w}']:,.0f} MiB; all processes "
                    f"(master + {w} workers) PSS {d[f'total_pss_w{w}']:,.0f} MiB; at the cold-store start: builder "
                    f"VmHWM {_builder(cold_snap, cold_pid).get('VmHWM', 0):,.0f} MiB, largest other worker "
                    f"{_peak(_servers(cold_snap, cold_pid), 'VmHWM'):,.0f} MiB | — | — | reported apart | — |")
    return rows


def change_rows(r: dict[str, Any], d: dict[str, Any]) -> list[str]:
    rows: list[str] = []
    for w, f in sorted((int(k), v) for k, v in (r.get("workers") or {}).items()):
        change = f.get("change")
        if not change or w == 2:
            continue
        for kind, what in (("edit", "edited file (new ETag of /feeds/all.xml)"),
                           ("add", "added file (article count in /healthz)")):
            value = d[f"change_{kind}_w{w}"]
            rows.append(f"| server: {what} served by every worker (gunicorn -w {w}, FEEDPUB_RELOAD_INTERVAL=1) | "
                        f"{change_cell(change[kind])} | — | — | <= {CHANGE_TARGET:g} s | "
                        f"{verdict(d[f't_change_{kind}_w{w}'], 'timeout' if value is None else f'{value:.2f} s')} |")
    return rows


def summary_names(d: dict[str, Any]) -> list[tuple[str, str]]:
    names = [("t_cold_build", "cold `feedpub build` >= 1.0x the baseline")]
    for key in sorted(k for k in d if k.startswith("t_ready_w")):
        names.append((key, f"gunicorn -w {key.removeprefix('t_ready_w')} restart: every worker serves in time"))
    for key in sorted(k for k in d if k.startswith("t_server_mem_w")):
        names.append((key, f"memory per serving worker <= {MEMORY_TARGET:.0f} MiB with "
                           f"-w {key.removeprefix('t_server_mem_w')}"))
    names.append(("t_server_mem_flat", "memory per serving worker not growing with workers"))
    for key in sorted(k for k in d if k.startswith("t_change_")):
        kind, w = key.removeprefix("t_change_").split("_w")
        names.append((key, f"{'edited' if kind == 'edit' else 'added'} file served by every worker within "
                           f"{CHANGE_TARGET:g} s with -w {w}"))
    return names


def worker_details(r: dict[str, Any]) -> list[str]:
    """What the rows cannot say: which worker rendered the first version, and what the sample asked for."""
    out = []
    for w, f in sorted((int(k), v) for k, v in (r.get("workers") or {}).items()):
        cold = f.get("cold")
        if cold:
            booted = cold.get("after_boot", {})
            first = max(booted, key=lambda pid: booted[pid].get("VmHWM", 0.0), default=None)
            if first is not None and int(first) != cold["builder"]["pid"]:
                out.append(f"- -w {w}, cold store: worker {first} rendered the first version at its start "
                           f"({booted[first].get('VmHWM', 0):,.0f} MiB then), but worker {cold['builder']['pid']} "
                           f"took the builder lease afterwards and loaded the corpus again; both keep theirs.")
        ex = f.get("exercise")
        if ex:
            failed = ", ".join(f"`{name}` {status}" for name, status in ex["first_failed"])
            out.append(f"- -w {w}: the memory sample asked for {ex['outputs']:,} of the site's {ex['of']:,} outputs "
                       f"(one in {max(1, ex['of'] // ex['outputs'])} by name, gzip and plain); "
                       f"{ex['not_200']} answers were not 200" + (f" ({failed})" if failed else "") + ".")
    return out

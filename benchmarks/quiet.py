"""How busy the machine is with work that is not ours, and waiting (bounded) for it to be quiet.

On a shared 2-core machine another test suite running at the same time halves a benchmark's numbers.
"Ours" is this process and its descendants (servers, wrk, probes); everything else the kernel counts as
busy in /proc/stat is "foreign". The runner waits for a quiet moment before each timed run (up to
``--quiet-wait`` seconds) and reports the foreign share of every phase, so a noisy table says so.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass, field

TICK = os.sysconf("SC_CLK_TCK")


def _busy_seconds() -> tuple[float, float]:
    """(busy CPU-seconds of the whole machine, steal seconds) since boot, from /proc/stat."""
    with open("/proc/stat") as handle:
        fields = handle.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq) / TICK, steal / TICK


def _process_table() -> dict[int, tuple[int, float]]:
    """pid -> (ppid, CPU-seconds of it and its waited-for children)."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        rest = stat[stat.rfind(")") + 2:].split()
        try:
            table[int(entry)] = (int(rest[1]), sum(int(x) for x in rest[11:15]) / TICK)
        except (IndexError, ValueError):
            continue
    return table


def _ours() -> tuple[float, dict[int, float]]:
    """CPU-seconds of this process and every child already reaped, and of each live descendant."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    reaped = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    table = _process_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    live: dict[int, float] = {}
    stack = list(children.get(os.getpid(), []))
    while stack:
        pid = stack.pop()
        live[pid] = table[pid][1]
        stack.extend(children.get(pid, []))
    return reaped, live


@dataclass
class Sample:
    busy: float
    steal: float
    reaped: float
    live: dict[int, float]
    at: float

    @classmethod
    def take(cls) -> Sample:
        busy, steal = _busy_seconds()
        reaped, live = _ours()
        return cls(busy, steal, reaped, live, time.monotonic())

    def since(self, start: Sample) -> dict[str, float]:
        """CPU-seconds between two samples: all, ours, foreign (= all - ours), steal; and wall seconds."""
        ours = self.reaped - start.reaped
        for pid, seconds in self.live.items():
            ours += seconds - start.live.get(pid, 0.0)
        for pid, seconds in start.live.items():
            if pid not in self.live:
                ours -= seconds  # reaped since: its whole time is now in `reaped`
        busy = self.busy - start.busy
        return {"wall": self.at - start.at, "busy": busy, "ours": ours, "foreign": max(0.0, busy - ours),
                "steal": self.steal - start.steal}


@dataclass
class Meter:
    """Foreign CPU per named phase, and every wait for quiet."""

    max_wait: float = 0.0
    threshold: float = 0.15  # foreign CPUs (cores) tolerated
    budget: float = 900.0  # total seconds the runner may spend waiting
    phases: dict[str, dict[str, float]] = field(default_factory=dict)
    waited: float = 0.0
    gave_up: int = 0
    _open: dict[str, Sample] = field(default_factory=dict)

    def start(self, name: str) -> None:
        self._open[name] = Sample.take()

    def stop(self, name: str) -> dict[str, float]:
        start = self._open.pop(name, None)
        if start is None:
            return {}
        result = Sample.take().since(start)
        known = self.phases.get(name)
        if known:  # the same phase measured again (another size): keep them apart
            name = f"{name} ({len(self.phases)})"
        self.phases[name] = result
        return result

    def wait(self) -> float:
        """Wait (bounded) until foreign work uses less than ``threshold`` cores for 1 s (two windows) in a row."""
        if self.max_wait <= 0 or self.waited >= self.budget:
            return 0.0
        t0 = time.monotonic()
        deadline = t0 + min(self.max_wait, self.budget - self.waited)
        quiet = 0
        while time.monotonic() < deadline:
            start = Sample.take()
            time.sleep(0.5)
            window = Sample.take().since(start)
            quiet = quiet + 1 if window["foreign"] / max(window["wall"], 1e-6) < self.threshold else 0
            if quiet >= 2:
                break
        else:
            self.gave_up += 1
        spent = time.monotonic() - t0
        self.waited += spent
        return spent


METER = Meter()

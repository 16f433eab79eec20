"""Servers for the benchmark: gunicorn (feedpub and the bare Flask route), nginx, wrk, reload latency.

Every server listens on 127.0.0.1 only, is started as a child of the runner in its own session and is
registered, so :func:`stop_all` (called from the runner's ``finally``) stops each one by its pid even
after an error. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
HOOKS = Path(__file__).resolve().parent / "gunicorn_hooks.py"
HOST = "127.0.0.1"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def tool(name: str) -> str | None:
    """An executable next to this interpreter (the venv) first, then on PATH, then in sbin."""
    return (shutil.which(name, path=os.path.dirname(sys.executable)) or shutil.which(name)
            or shutil.which(name, path="/usr/sbin:/sbin"))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def proc_status(pid: int) -> dict[str, float]:
    out: dict[str, float] = {}
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(value.split()[0]) / 1024
    except OSError:
        pass
    return out


def children(pid: int) -> list[int]:
    """Pids whose parent is ``pid`` (from /proc/*/stat)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(entry))
    return sorted(found)


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process, in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            stat = handle.read()
    except OSError:
        return 0.0
    fields = stat[stat.rfind(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def get(port: int, path: str, headers: dict[str, str] | None = None,
        timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
    """One GET on a fresh connection: (status, headers with lower-case names, body)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        conn.close()


_SERVERS: list[Server] = []


@dataclass
class Server:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    port: int
    ready_dir: Path | None = None
    access_log: Path | None = None  # gunicorn's, one line per request: ``<pid> query status etag``
    proc: subprocess.Popen[bytes] | None = None
    known_workers: set[int] = field(default_factory=set)

    def start(self) -> Server:
        self.known_workers = set()  # a restart: the last start's pids may belong to anyone by now
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as handle:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(self.argv, env=self.env, cwd=REPO, stdout=handle, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        _SERVERS.append(self)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def workers(self) -> list[int]:
        pids = children(self.pid) if self.alive() else []
        self.known_workers.update(pids)
        return pids

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_ready(self, workers: int, timeout: float) -> dict[int, dict[str, float]]:
        """gunicorn: until ``workers`` workers have loaded the app (their post_worker_init files)."""
        assert self.ready_dir is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited during start-up:\n{self.tail()}")
            ready = {int(p.name): p for p in self.ready_dir.iterdir() if p.name.isdigit()}
            current = set(self.workers())
            done = {pid: json.loads(path.read_text()) for pid, path in ready.items() if pid in current}
            if len(done) >= workers:
                return done
            time.sleep(0.2)
        raise RuntimeError(f"{self.name}: workers not ready after {timeout:.0f}s:\n{self.tail()}")

    def wait_http(self, path: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited during start-up:\n{self.tail()}")
            try:
                if get(self.port, path, timeout=5)[0] < 500:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name}: no answer on port {self.port} after {timeout:.0f}s:\n{self.tail()}")

    def _signal_all(self, signum: int) -> None:
        pids = [self.pid, *self.workers()] if self.alive() else []
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def pause(self) -> None:
        """SIGSTOP the master and its workers, so an idle server takes no CPU while another is measured."""
        self._signal_all(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal_all(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.resume()  # a stopped process would not act on SIGTERM
        self.workers()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # gunicorn: graceful stop; nginx: fast shutdown
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        for pid in sorted(self.known_workers):  # workers normally exit with their master
            while _exists(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _exists(pid) and _cmdline_has(pid, ("gunicorn", "nginx")):
                os.kill(pid, signal.SIGKILL)
        if self in _SERVERS:
            _SERVERS.remove(self)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _exists(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return ") Z " not in handle.read()
    except OSError:
        return False


def _cmdline_has(pid: int, words: tuple[str, ...]) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            text = handle.read().decode(errors="replace")
    except OSError:
        return False
    return any(word in text for word in words)


def stop_all() -> None:
    for server in list(reversed(_SERVERS)):
        try:
            server.stop()
        except Exception as exc:  # keep stopping the others
            log(f"could not stop {server.name} (pid {server.proc.pid if server.proc else '?'}): {exc}")


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The runner's environment without FEEDPUB_* / BENCH_* variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FEEDPUB_", "BENCH_"))}
    env.update(extra or {})
    return env


def gunicorn(name: str, app: str, env: dict[str, str], work: Path, workers: int = 2,
             access_log: Path | None = None) -> Server:
    """``gunicorn -w N -b 127.0.0.1:PORT APP`` run from the repository root (as the README says)."""
    exe = tool("gunicorn")
    if exe is None:
        raise RuntimeError("gunicorn is not installed in this environment")
    port = free_port()
    ready = work / f"{name}-ready"
    shutil.rmtree(ready, ignore_errors=True)
    ready.mkdir(parents=True)
    # --timeout: the runner SIGSTOPs idle servers; on SIGCONT a short timeout would make the master kill its
    # workers for a missed heartbeat. It changes nothing else (sync workers, one request at a time).
    argv = [exe, "-w", str(workers), "-b", f"{HOST}:{port}", "-c", str(HOOKS), "--log-level", "warning",
            "--timeout", "3600"]
    if access_log is not None:
        argv += ["--access-logfile", str(access_log), "--access-logformat", "%(p)s %(q)s %(s)s %({etag}o)s"]
    argv.append(app)
    return Server(name, argv, clean_env({**env, "BENCH_READY_DIR": str(ready)}), work / f"{name}.log", port, ready,
                  access_log)


NGINX_CONF = """\
daemon off;
worker_processes 2;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    types {{
        application/rss+xml   xml;
        application/atom+xml  atom;
        application/feed+json json;
        text/x-opml           opml;
    }}
    default_type application/octet-stream;
    charset utf-8;
    charset_types application/rss+xml application/atom+xml application/feed+json text/x-opml;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    server {{
        listen {host}:{port};
        location /feeds/ {{
            alias {root}/;
            expires 5m;
        }}
    }}
}}
"""


def nginx(root: Path, work: Path) -> Server:
    """nginx in the foreground (``daemon off; worker_processes 2;``) serving ``root`` under /feeds/."""
    exe = tool("nginx")
    if exe is None:
        raise RuntimeError("nginx is not installed (apt-get install -y nginx)")
    tmp = work / "nginx"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, host=HOST, port=port, root=root.resolve()))
    # nginx workers run as 'nobody' when started by root: the tree and its parents must be readable
    for path in [root.resolve(), *root.resolve().parents]:
        if str(path) in ("/", "/tmp"):
            break
        path.chmod(path.stat().st_mode | 0o755)
    argv = [exe, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")]
    return Server("nginx", argv, clean_env(), tmp / "stdout.log", port)


_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_NON2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_TOTAL = re.compile(r"(\d+) requests in")
_LAT50 = re.compile(r"^\s+50%\s+([\d.]+)(us|ms|s)\s*$", re.M)


def wrk(port: int, path: str, headers: dict[str, str] | None = None, seconds: int = 5, threads: int = 2,
        connections: int = 32) -> dict[str, Any]:
    exe = tool("wrk")
    if exe is None:
        raise RuntimeError("wrk is not installed (apt-get install -y wrk)")
    argv = [exe, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    for key, value in (headers or {}).items():
        argv += ["-H", f"{key}: {value}"]
    argv.append(f"http://{HOST}:{port}{path}")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    text = done.stdout
    rps = _RPS.search(text)
    if done.returncode != 0 or rps is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {text}\n{done.stderr}")
    socket_errors = _SOCKET.search(text)
    lat = _LAT50.search(text)
    p50 = None
    if lat:
        p50 = float(lat.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[lat.group(2)]
    total, non_2xx = _TOTAL.search(text), _NON2XX.search(text)
    return {"rps": float(rps.group(1)), "requests": int(total.group(1)) if total else None,
            "non_2xx_3xx": int(non_2xx.group(1)) if non_2xx else 0,
            "socket_errors": [int(x) for x in socket_errors.groups()] if socket_errors else [0, 0, 0, 0],
            "p50_ms": p50, "argv": " ".join(argv[:-1]) + " URL"}


# --------------------------------------------------------------------------------------- reload latency


class AccessLog:
    """Reads gunicorn's access log (format ``<pid> query status etag``) as it grows."""

    LINE = re.compile(r"^<(\d+)> (\S*) (\d+) (.*)$")

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.by_probe: dict[str, int] = {}

    def poll(self) -> None:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except OSError:
            return
        end = data.rfind(b"\n") + 1
        self.offset += end
        for line in data[:end].decode(errors="replace").splitlines():
            match = self.LINE.match(line)
            if match and match.group(2).startswith("bench="):
                self.by_probe[match.group(2)[6:]] = int(match.group(1))


def wait_for_change(server: Server, access: AccessLog, path: str, value_of: Any, old: Any, t_write: float,
                    run: str, timeout: float = 60.0, interval: float = 0.02, expect: int = 1,
                    parallel: int = 1) -> dict[str, Any]:
    """Poll ``path`` (fresh connection each time) until every worker (at least ``expect`` of them: a
    starting master may not have forked them all yet) has answered with a value other than ``old``.
    Returns, per worker pid, seconds from ``t_write`` to its first new answer, and the last time it
    still answered the old value (so the true moment lies between the two).

    ``parallel``: requests sent at once each round. The kernel hands a connection to whichever idle
    worker wakes first, so one request at a time can leave a worker unasked for a second or more (on 2
    busy cores, seen at -w 4); as many requests at once as there are workers reach them all each round,
    since a sync worker busy with one does not accept another."""
    answers: list[tuple[str, float, Any]] = []
    first_new: dict[int, float] = {}
    last_old: dict[int, float] = {}
    deadline = time.monotonic() + timeout
    n = 0
    workers: list[int] = server.workers()
    done = False
    sep = "&" if "?" in path else "?"

    def ask(probe: str) -> tuple[str, float, Any] | None:
        try:
            status, headers, body = get(server.port, f"{path}{sep}bench={probe}", timeout=10)
        except OSError:
            return None
        return probe, time.perf_counter() - t_write, value_of(status, headers, body)

    with ThreadPoolExecutor(parallel) as pool:  # one thread when parallel is 1: the same one request a round
        while time.monotonic() < deadline:
            probes = [f"{run}-{n + i + 1}" for i in range(parallel)]
            n += parallel
            answered = pool.map(ask, probes)
            answers.extend(answer for answer in answered if answer is not None)
            access.poll()
            pending = []
            for key, seconds, value in answers:
                pid = access.by_probe.get(key)
                if pid is None:
                    pending.append((key, seconds, value))  # not logged yet
                    continue
                if value != old:
                    first_new[pid] = min(first_new.get(pid, seconds), seconds)
                elif pid not in first_new:
                    last_old[pid] = max(last_old.get(pid, 0.0), seconds)
            answers = pending
            workers = server.workers()
            done = len(workers) >= max(expect, 1) and all(pid in first_new for pid in workers)
            if done:
                break
            time.sleep(interval)
    return {"workers": {str(pid): {"first_new": first_new.get(pid), "last_old": last_old.get(pid)}
                        for pid in workers},
            "all_workers": max(first_new[pid] for pid in workers) if done else None,
            "first_worker": min(first_new.values()) if first_new else None,
            "polls": n}

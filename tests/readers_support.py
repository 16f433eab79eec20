"""Helpers for the conformance and real-reader tests.

* :func:`need` / :func:`need_module`: a missing reader skips the test with a clear
  message locally, and fails it when ``FEEDPUB_REQUIRE_READERS`` is set (CI).
* :func:`build_site`: ``feedpub build`` through the real CLI, with no ``FEEDPUB_*``
  variable of the caller's environment leaking in.
* The corpora every such test reads, all made by the repository itself: the bundled seeds,
  the handwritten fixture corpus (:data:`FIXTURE_CORPUS`) and :func:`generated_corpus`.
* :class:`GunicornServer`: the real ``gunicorn wsgi:app`` on a free 127.0.0.1 port,
  whose access log records, for every request, the request headers that matter for
  conditional GET and the status that was answered. Nothing is added to the app:
  the records come from gunicorn's own ``--access-logformat``.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from click.testing import CliRunner

from feedpub.cli import main as feedpub_main

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
# Handwritten articles in the shapes real corpora have (tests/fixtures/README.md says which file is which).
FIXTURE_CORPUS = ROOT / "tests" / "fixtures" / "corpus"
# Enough generated articles that the busiest feeds hold max_items entries and outputs pass 1 MiB.
GENERATED_ARTICLES = 150

# Read at import time: the autouse ``_clean_env`` fixture removes every FEEDPUB_*
# variable before each test runs.
REQUIRE_READERS = os.environ.get("FEEDPUB_REQUIRE_READERS", "").strip() not in ("", "0")

# How each external tool is installed, for the skip/fail message.
INSTALL_HINTS = {
    "newsboat": "apt-get install newsboat",
    "sfeed": "apt-get install sfeed",
    "r2e": "apt-get install rss2email",
    "gunicorn": "pip install -e '.[test]'",
    "reader": "pip install 'reader>=3.12' sgmllib3k  (or pip install -e '.[test]')",
    "sgmllib": "pip install sgmllib3k  (reader's vendored feedparser imports sgmllib)",
    "feedparser": "pip install feedparser  (or pip install -e '.[test]')",
    "jsonschema": "pip install 'jsonschema[format-nongpl]'  (or pip install -e '.[test]')",
    "chromium": "apt-get install chromium  (Debian's package, used as /usr/bin/chromium; never `playwright install`)",
    "playwright.sync_api": "pip install 'playwright>=1.40'  (or pip install -e '.[test]'); "
                           "the browser is Debian's chromium, never `playwright install`",
}
TEST_AGENT = "feedpub-tests/1"


def missing(what: str, why: str = "") -> None:
    """Skip (locally) or fail (``FEEDPUB_REQUIRE_READERS`` set, as in CI) because ``what`` is missing."""
    hint = INSTALL_HINTS.get(what, "")
    message = f"{what} is not available{f' ({why})' if why else ''}; install it with: {hint}" if hint else \
        f"{what} is not available{f' ({why})' if why else ''}"
    if REQUIRE_READERS:
        pytest.fail(f"FEEDPUB_REQUIRE_READERS is set and {message}", pytrace=False)
    pytest.skip(f"reader missing: {message} (CI sets FEEDPUB_REQUIRE_READERS=1 and fails instead)")


def need(tool: str) -> str:
    """The path of an external program, or skip/fail with a clear message."""
    path = shutil.which(tool)
    if path is None:
        missing(tool, "not on PATH")
    return str(path)


def need_module(name: str, *also: str) -> ModuleType:
    """Import a Python module (and check ``also`` import too), or skip/fail with a clear message."""
    for extra in also:
        try:
            importlib.import_module(extra)
        except ImportError as exc:
            missing(extra, str(exc))
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        missing(name, str(exc))
        raise  # unreachable: missing() always raises


def generated_corpus(target: Path, n: int = GENERATED_ARTICLES) -> Path:
    """``n`` articles from the project's deterministic generator (seed 0) in ``target``."""
    from .corpusgen import generate

    generate(target, n, seed=0, workers=1)  # in process: no fork under pytest
    return target


# At the default max_items every feed of the small fixture corpus fits whole in its live document
# (RFC 5005 complete, no archives); this build of it has feeds beyond max_items, so archive pages too.
ARCHIVED_MAX_ITEMS = 3


def built_sites(root: Path, site_url: str) -> dict[str, Path]:
    """Static builds (default settings) of the bundled seeds, the fixture corpus and a generated corpus,
    and of the fixture corpus at ``ARCHIVED_MAX_ITEMS`` ("corpus-archived")."""
    return {
        "seeds": build_site(SEEDS, root / "seeds", site_url),
        "corpus": build_site(FIXTURE_CORPUS, root / "corpus", site_url),
        "corpus-archived": build_site(FIXTURE_CORPUS, root / "corpus-archived", site_url,
                                      "--max-items", str(ARCHIVED_MAX_ITEMS)),
        "generated": build_site(generated_corpus(root / "generated-seeds"), root / "generated", site_url),
    }


def feed_count(sites: dict[str, Path]) -> int:
    """How many feeds the built sites list in their index.json (each has .xml, .atom and .json)."""
    return sum(len(json.loads((out / "index.json").read_bytes())["feeds"]) for out in sites.values())


def archive_count(sites: dict[str, Path]) -> int:
    """How many RFC 5005 archive pages the built sites hold (each has .xml and .atom, no .json)."""
    return sum(len(list(out.rglob("archive/*.atom"))) for out in sites.values())


def xml_feed_count(sites: dict[str, Path]) -> int:
    """How many RSS (or Atom) documents there are: every listed feed and every archive page."""
    return feed_count(sites) + archive_count(sites)


def clean_environ(**extra: str) -> dict[str, str]:
    """The current environment without any FEEDPUB_* variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDPUB_")}
    env.update(extra)
    return env


def build_site(seeds: Path, out: Path, site_url: str, *extra: str) -> Path:
    """Run ``feedpub build`` in process; return the output directory."""
    unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("FEEDPUB_")}
    result = CliRunner().invoke(
        feedpub_main,
        ["build", "--seeds", str(seeds), "--out", str(out), "--site-url", site_url, *extra],
        env=unset, catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return out


def feed_files(out: Path, suffix: str) -> list[Path]:
    """Every feed of a built tree with this suffix (``.xml``, ``.atom``, ``.json``), index files excluded."""
    return sorted(p for p in out.rglob(f"*{suffix}") if p.name not in ("index.json",) and not p.name.startswith("."))


def combined_seeds(target: Path) -> Path:
    """A seeds directory holding the bundled seeds and the fixture corpus."""
    shutil.copytree(SEEDS, target / "seeds")
    shutil.copytree(FIXTURE_CORPUS, target / "corpus")
    return target


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1 only, never a proxy
LOCAL_ONLY = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"User-Agent": TEST_AGENT, **(headers or {})})
    try:
        with _DIRECT.open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


# ------------------------------------------------------------------ gunicorn + access log

# One JSON object per request. gunicorn escapes '"' in every value as '\"' (SafeAtoms),
# which is exactly JSON's escape, so ETags ("...") survive; absent headers are '-'.
_LOG_FIELDS = {
    "method": "%(m)s",
    "path": "%(U)s",
    "query": "%(q)s",
    "status": "%(s)s",
    "user_agent": "%(a)s",
    "if_none_match": "%({if-none-match}i)s",
    "if_modified_since": "%({if-modified-since}i)s",
    "accept": "%({accept}i)s",
    "accept_encoding": "%({accept-encoding}i)s",
    "a_im": "%({a-im}i)s",
    "etag": "%({etag}o)s",
    "last_modified": "%({last-modified}o)s",
}
ACCESS_LOG_FORMAT = "{" + ",".join(f'"{k}":"{v}"' for k, v in _LOG_FIELDS.items()) + "}"


@dataclass(frozen=True)
class Request:
    """One request as gunicorn logged it (headers the client did not send are ``None``)."""

    method: str
    path: str
    query: str
    status: int
    user_agent: str | None
    if_none_match: str | None
    if_modified_since: str | None
    accept: str | None
    accept_encoding: str | None
    a_im: str | None
    etag: str | None
    last_modified: str | None

    @property
    def conditional(self) -> bool:
        return self.if_none_match is not None or self.if_modified_since is not None

    @classmethod
    def from_line(cls, line: str) -> Request:
        raw: dict[str, Any] = json.loads(line)
        values = {k: (None if v == "-" else v) for k, v in raw.items()}
        values["status"] = int(raw["status"])
        values["query"] = raw["query"] or ""
        return cls(**values)


class GunicornServer:
    """``gunicorn -w 2 wsgi:app`` serving ``seeds_dir`` on 127.0.0.1, with a JSON access log."""

    def __init__(self, seeds_dir: Path, workdir: Path, workers: int = 2, **env: str) -> None:
        self.seeds_dir = seeds_dir
        self.env = env  # more FEEDPUB_* settings
        self.workdir = workdir
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.access_log = workdir / "access.log"
        self.error_log = workdir / "gunicorn.log"
        self._process: subprocess.Popen[bytes] | None = None

    def feed_url(self, path: str) -> str:
        return f"{self.url}/feeds/{path}"

    def __enter__(self) -> GunicornServer:
        gunicorn = shutil.which("gunicorn", path=os.path.dirname(sys.executable)) or shutil.which("gunicorn")
        if gunicorn is None:
            missing("gunicorn")
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = clean_environ(**{"FEEDPUB_SEEDS_DIR": str(self.seeds_dir), "FEEDPUB_SITE_URL": self.url,
                               "FEEDPUB_RELOAD_INTERVAL": "60", **self.env})
        with open(self.error_log, "wb") as output:
            self._process = subprocess.Popen(
                [str(gunicorn), "-w", str(self.workers), "-b", f"127.0.0.1:{self.port}", "--chdir", str(ROOT),
                 "--access-logfile", str(self.access_log), "--access-logformat", ACCESS_LOG_FORMAT, "wsgi:app"],
                env=env, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + 30
        while not self._healthy():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                pytest.fail(f"gunicorn did not start:\n{self.error_log.read_text('utf-8', 'replace')}")
            time.sleep(0.1)
        return self

    def _healthy(self) -> bool:
        try:
            return fetch(self.url + "/healthz")[0] == 200
        except OSError:
            return False

    def __exit__(self, *exc_info: object) -> None:
        if self._process is None:
            return
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    # -- the access log ------------------------------------------------------------

    def _read(self) -> list[Request]:
        try:
            text = self.access_log.read_text("utf-8")
        except FileNotFoundError:
            return []
        return [Request.from_line(line) for line in text.splitlines() if line.strip()]

    def mark(self) -> int:
        """A position in the log; :meth:`requests` ``since=`` it sees only later requests."""
        return len(self._read())

    def requests(self, since: int = 0, *, expect: int = 0, prefix: str = "/feeds/",
                 timeout: float = 5.0) -> list[Request]:
        """Logged requests after ``since`` under ``prefix``, our own fetches left out.

        gunicorn writes a line just after the response is sent, so wait (up to
        ``timeout``) until at least ``expect`` of them are there.
        """
        deadline = time.monotonic() + timeout
        while True:
            found = [r for r in self._read()[since:]
                     if r.path.startswith(prefix) and r.user_agent != TEST_AGENT]
            if len(found) >= expect or time.monotonic() > deadline:
                return found
            time.sleep(0.05)


def by_path(requests: list[Request]) -> dict[str, list[Request]]:
    grouped: dict[str, list[Request]] = {}
    for request in requests:
        grouped.setdefault(request.path, []).append(request)
    return grouped


def describe(requests: list[Request]) -> str:
    """A readable table of requests for assertion messages."""
    return "\n".join(
        f"{r.status} {r.method} {r.path}  If-None-Match={r.if_none_match}  "
        f"If-Modified-Since={r.if_modified_since}  UA={r.user_agent}"
        for r in requests
    )


# ------------------------------------------------------------------ what a feed holds

ATOM = "{http://www.w3.org/2005/Atom}"


@dataclass(frozen=True)
class Entry:
    """What every reader should see of one entry: its id, title and link."""

    id: str
    title: str
    link: str


def entries_of(body: bytes, suffix: str) -> list[Entry]:
    """The entries of a feed, in document order, read straight from its bytes."""
    if suffix == ".json":
        return [Entry(item["id"], item.get("title", ""), item.get("url", "")) for item in json.loads(body)["items"]]
    from lxml import etree

    root = etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True))
    if suffix == ".xml":
        return [Entry(item.findtext("guid") or "", item.findtext("title") or "", item.findtext("link") or "")
                for item in root.iter("item")]
    out = []
    for entry in root.iter(f"{ATOM}entry"):
        alternate = [link.get("href") for link in entry.iter(f"{ATOM}link")
                     if link.get("rel", "alternate") == "alternate"]
        out.append(Entry(entry.findtext(f"{ATOM}id") or "", entry.findtext(f"{ATOM}title") or "",
                         alternate[0] if alternate else ""))
    return out


def squash(text: str) -> str:
    """Whitespace runs as one space, trimmed: how most readers store titles."""
    return " ".join(text.split())

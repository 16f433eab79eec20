"""RFC 3229 delta feeds against ``gunicorn -w 2 wsgi:app``: every answer is checked with either worker answering.

The site changes three times under a running server (an article is edited, one is added, another
is edited), so there are four versions of each feed. What a delta must hold is worked out from the full documents
alone: an entry is new or changed when its bytes in the current version appear in no entry of
the reader's version.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from lxml import etree

from feedpub.web import create_app
from feedpub.web.delta import KEEP, History

from .readers_support import FIXTURE_CORPUS, need_module
from .test_gunicorn import every_worker, fetch, run_gunicorn, wait_for

SUFFIXES = (".xml", ".atom", ".json")
PATHS = [f"all{suffix}" for suffix in SUFFIXES] + ["all.json?limit=5", "all.atom?type=article&utm_source=x"]
ATOM = "{http://www.w3.org/2005/Atom}"
DELTA = {"A-IM": "feed"}
EDITED = "2020-12-15-performance-tips-for-large-data-apps.md"
EDITED_LAST = "2020-11-24-build-an-approvals-app-for-team-chats.md"
LONE = "all.xml?limit=9"  # asked for once, of version 3: one worker served it, either must know it
ADDED_URL = "https://blog.example/added-for-delta"
Answer = tuple[int, dict[str, str], bytes]


@dataclass
class Site:
    base: str
    # v1, v2 (an entry edited), v3 (an entry added), v4 (another edited): each path's full answer
    versions: list[dict[str, Answer]]
    lone: Answer  # LONE's answer in version 3

    def url(self, path: str) -> str:
        return f"{self.base}/feeds/{path}"

    def etag(self, version: int, path: str) -> str:
        return self.versions[version][path][1]["ETag"]


def _snapshot(base: str, paths: list[str]) -> dict[str, Answer]:
    answers = {path: fetch(f"{base}/feeds/{path}") for path in paths}
    assert all(answer[0] == 200 for answer in answers.values()), {p: a[0] for p, a in answers.items()}
    return answers


def _wait_for_new_version(site_base: str, before: dict[str, Answer]) -> None:
    def moved(path: str, etag: str) -> bool:
        return every_worker(f"{site_base}/feeds/{path}", lambda answer: answer[1]["ETag"] != etag)

    for path, (_status, headers, _body) in before.items():
        wait_for(lambda: moved(path, headers["ETag"]), 20,  # noqa: B023 (called before the loop moves on)
                 f"every worker to serve a new version of {path}")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    work = tmp_path_factory.mktemp("delta")
    seeds = Path(shutil.copytree(FIXTURE_CORPUS, work / "seeds"))
    with pytest.MonkeyPatch.context() as patch:  # a module's fixture runs before the autouse clean-up
        for name in [n for n in os.environ if n.startswith("FEEDPUB_")]:
            patch.delenv(name)
        with run_gunicorn(seeds, work / "gunicorn.log", FEEDPUB_DELTA_FEEDS="true", FEEDPUB_RELOAD_INTERVAL="0.3",
                          FEEDPUB_CACHE_DIR=str(work / "cache")) as (base, _):
            versions = [_snapshot(base, PATHS)]  # one request each: one worker has served version 1
            edited = _retitle(seeds / EDITED, "Edited: ")
            _wait_for_new_version(base, versions[-1])
            versions.append(_snapshot(base, PATHS))
            newest = edited.read_text("utf-8")
            added = re.sub(r'(?m)^(webUrl|originalUrl): ".*"$', f'\\1: "{ADDED_URL}"', newest)
            added = re.sub(r"(?m)^publishedDateTime: .*$", "publishedDateTime: 2021-02-17T09:00:00Z", added)
            (seeds / "2021-02-17-added.md").write_text(added.replace('title: "Edited: ', 'title: "Added: ', 1),
                                                       "utf-8")
            _wait_for_new_version(base, versions[-1])
            versions.append(_snapshot(base, PATHS))
            lone = fetch(f"{base}/feeds/{LONE}")
            _retitle(seeds / EDITED_LAST, "Edited too: ")
            # Polls the unfiltered paths only (the edit is not among the newest five): LONE stays known to one worker.
            _wait_for_new_version(base, {path: answer for path, answer in versions[-1].items() if "?" not in path})
            versions.append(_snapshot(base, PATHS))
            yield Site(base, versions, lone)


def _retitle(path: Path, prefix: str) -> Path:
    path.write_text(path.read_text("utf-8").replace('title: "', f'title: "{prefix}', 1), "utf-8")
    return path


def entry_bytes(body: bytes, path: str) -> list[tuple[str, bytes]]:
    """(id, serialised entry) of every entry of a document, in document order."""
    if ".json" in path:
        return [(item["id"], json.dumps(item, sort_keys=True).encode()) for item in json.loads(body)["items"]]
    root = etree.fromstring(body)
    if ".xml" in path:
        return [(item.findtext("guid") or "", etree.tostring(item)) for item in root.iter("item")]
    return [(entry.findtext(f"{ATOM}id") or "", etree.tostring(entry)) for entry in root.iter(f"{ATOM}entry")]


def new_or_changed(site: Site, since: int, path: str) -> list[str]:
    """The ids of the current version's entries whose bytes version ``since`` does not hold, in order."""
    held = {data for _, data in entry_bytes(site.versions[since][path][2], path)}
    return [entry_id for entry_id, data in entry_bytes(site.versions[-1][path][2], path) if data not in held]


def metadata(body: bytes, path: str) -> object:
    """A document less its entries (and fh:complete, which only a whole feed may carry)."""
    if ".json" in path:
        return {key: value for key, value in json.loads(body).items() if key != "items"}
    root = etree.fromstring(body)
    channel = root.find("channel") if ".xml" in path else root
    assert channel is not None
    # (the namespace declarations each element carries differ by the fh: one the whole feed uses)
    return [re.sub(rb' xmlns:\w+="[^"]*"', b"", etree.tostring(child)) for child in channel
            if child.tag not in ("item", f"{ATOM}entry", "{http://purl.org/syndication/history/1.0}complete")]


def check_valid(body: bytes, path: str) -> None:
    if ".json" in path:
        jsonschema = need_module("jsonschema")
        schema = json.loads((Path(__file__).parent / "jsonfeed-1.1.schema.json").read_text("utf-8"))
        jsonschema.validate(json.loads(body), schema)
        return
    parsed = need_module("feedparser").parse(body)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == ("rss20" if ".xml" in path else "atom10")


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("since", [2, 1, 0], ids=["one-version-behind", "two-behind", "three-behind"])
def test_a_reader_behind_gets_226_with_exactly_the_new_or_changed_entries(site: Site, path: str, since: int) -> None:
    if site.etag(since, path) == site.etag(-1, path):  # the last edit is neither among the newest five nor an article
        assert "?" in path and since == 2
        assert every_worker(site.url(path), lambda answer: answer[0] == 304,
                            headers={**DELTA, "If-None-Match": site.etag(since, path)})
        return
    want = new_or_changed(site, since, path)
    assert want
    if since < 2:
        assert ADDED_URL in want  # the added entry is new to every reader from before it
    if since == 0 and "?" not in path:
        assert len(want) == 3  # and both edited ones (the filtered views may not hold them)
    current = site.versions[-1][path]

    def delta(answer: Answer) -> bool:
        status, headers, body = answer
        assert status == 226, (status, headers)
        assert headers["IM"] == "feed" and headers["Cache-Control"] == "no-store"
        assert headers["ETag"] == current[1]["ETag"] and headers["Vary"] == "Accept-Encoding, A-IM"
        assert headers["Content-Type"] == current[1]["Content-Type"] and "Content-Encoding" not in headers
        assert [entry_id for entry_id, _ in entry_bytes(body, path)] == want
        assert metadata(body, path) == metadata(current[2], path)
        check_valid(body, path)
        return True

    assert every_worker(site.url(path), delta, headers={**DELTA, "If-None-Match": site.etag(since, path)})


@pytest.mark.parametrize("path", PATHS)
def test_weak_and_gzip_validators_name_the_same_version(site: Site, path: str) -> None:
    etag = site.etag(0, path)
    want = new_or_changed(site, 0, path)
    for named in (f"W/{etag}", etag[:-1] + '-gzip"', f'W/{etag[:-1]}-gzip"', f'"nonsense", {etag}'):
        assert every_worker(site.url(path), lambda a: a[0] == 226 and [i for i, _ in entry_bytes(a[2], path)] == want,
                            headers={**DELTA, "If-None-Match": named}), named


@pytest.mark.parametrize("path", PATHS)
def test_gzip_and_delta_together(site: Site, path: str) -> None:
    current = site.versions[-1][path]
    plain = fetch(site.url(path), {**DELTA, "If-None-Match": site.etag(0, path)})

    def gzipped(answer: Answer) -> bool:
        status, headers, body = answer
        return (status == 226 and headers["Content-Encoding"] == "gzip" and headers["IM"] == "feed"
                and headers["ETag"] == current[1]["ETag"][:-1] + '-gzip"' and gzip.decompress(body) == plain[2])

    assert plain[0] == 226
    assert every_worker(site.url(path), gzipped,
                        headers={**DELTA, "If-None-Match": site.etag(0, path), "Accept-Encoding": "gzip"})


@pytest.mark.parametrize("path", PATHS)
def test_the_current_version_is_304_in_either_encoding(site: Site, path: str) -> None:
    etag = site.etag(-1, path)
    gzip_etag = etag[:-1] + '-gzip"'
    for named, encoding in ((etag, "identity"), (gzip_etag, "gzip"), (etag, "gzip"), (gzip_etag, "identity"),
                            (f"W/{etag}", "identity")):
        assert every_worker(site.url(path), lambda a: a[0] == 304 and a[2] == b"" and "IM" not in a[1],
                            headers={**DELTA, "If-None-Match": named, "Accept-Encoding": encoding}), (named, encoding)


@pytest.mark.parametrize("path", PATHS)
def test_the_whole_feed_for_an_unknown_version_or_without_a_im(site: Site, path: str) -> None:
    current = site.versions[-1][path]

    def whole(answer: Answer) -> bool:
        status, headers, body = answer
        return (status == 200 and body == current[2] and "IM" not in headers
                and headers["Vary"] == "Accept-Encoding, A-IM" and headers["Cache-Control"].startswith("public"))

    assert every_worker(site.url(path), whole, headers={**DELTA, "If-None-Match": '"0123456789abcdef"'})
    assert every_worker(site.url(path), whole, headers={"If-None-Match": site.etag(0, path)})
    assert every_worker(site.url(path), whole, headers={"A-IM": "vcdiff", "If-None-Match": site.etag(0, path)})
    assert every_worker(site.url(path), whole, headers=DELTA)  # If-Modified-Since names no version
    assert every_worker(site.url(path), whole,
                        headers={**DELTA, "If-Modified-Since": current[1]["Last-Modified"].replace("2", "1", 1)})


@pytest.mark.parametrize("path", PATHS)
def test_every_answer_carries_the_cdn_and_browser_headers(site: Site, path: str) -> None:
    def headed(answer: Answer) -> bool:
        headers = answer[1]
        return (headers["Access-Control-Allow-Origin"] == "*" and headers["X-Content-Type-Options"] == "nosniff"
                and headers["Surrogate-Key"] == "all" and headers["Cache-Tag"] == "all")

    for asked in ({}, {**DELTA, "If-None-Match": site.etag(0, path)}, {**DELTA, "If-None-Match": site.etag(-1, path)}):
        assert every_worker(site.url(path), headed, headers=asked)
    cache_control = site.versions[-1][path][1]["Cache-Control"]
    assert cache_control == "public, max-age=300, stale-while-revalidate=60, stale-if-error=86400"


def test_with_the_setting_off_a_im_changes_nothing(seeds: Path, tmp_path: Path) -> None:
    with run_gunicorn(seeds, tmp_path / "gunicorn.log", FEEDPUB_RELOAD_INTERVAL="0.3") as (base, _):
        before = _snapshot(base, ["all.xml"])
        wired = next(p for p in seeds.iterdir() if "domain: wired.com" in p.read_text("utf-8"))
        wired.write_text(wired.read_text("utf-8").replace('title: "', 'title: "Off: ', 1), "utf-8")
        _wait_for_new_version(base, before)
        current = fetch(f"{base}/feeds/all.xml")

        def whole(answer: Answer) -> bool:
            return answer[0] == 200 and answer[2] == current[2] and answer[1]["Vary"] == "Accept-Encoding"

        assert every_worker(f"{base}/feeds/all.xml", whole,
                            headers={**DELTA, "If-None-Match": before["all.xml"][1]["ETag"]})


def test_either_worker_knows_a_version_only_one_of_them_served(site: Site) -> None:
    status, headers, body = site.lone
    assert status == 200
    current = fetch(site.url(LONE))
    assert current[1]["ETag"] != headers["ETag"]
    want = [entry_id for entry_id, data in entry_bytes(current[2], LONE)
            if data not in {held for _, held in entry_bytes(body, LONE)}]
    assert want  # the last edit is among the newest nine

    def delta(answer: Answer) -> bool:
        return answer[0] == 226 and [entry_id for entry_id, _ in entry_bytes(answer[2], LONE)] == want

    assert every_worker(site.url(LONE), delta, headers={**DELTA, "If-None-Match": headers["ETag"]})



# ------------------------------------------------------------------ the history itself

def test_the_history_is_shared_through_its_file_and_bounded(tmp_path: Path) -> None:
    first, second = History(tmp_path), History(tmp_path)  # two workers on one cache directory
    first.record("all.xml", "", "v0", lambda: ["a", "b"])
    assert second.entries("all.xml", "", "v0") == frozenset({"a", "b"})
    assert second.entries("all.xml", "limit=5", "v0") is None  # each query has its own versions
    for n in range(1, KEEP + 1):
        second.record("all.xml", "", f"v{n}", lambda: ["a"])
    assert first.entries("all.xml", "", "v0") is None  # the oldest is forgotten past KEEP versions
    assert first.entries("all.xml", "", "v1") == frozenset({"a"})
    assert first.entries("all.atom", "", "v1") is None


def test_without_the_cache_each_process_keeps_its_own_history() -> None:
    first, second = History(None), History(None)
    first.record("all.xml", "", "v0", lambda: ["a"])
    assert first.entries("all.xml", "", "v0") == frozenset({"a"})
    assert second.entries("all.xml", "", "v0") is None


def test_an_unusable_history_means_whole_feeds_and_one_warning(seeds: Path, tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "cache" / "delta-history.sqlite3").mkdir(parents=True)  # a directory where the file should be
    app = create_app({"TESTING": True, "seeds_dir": str(seeds), "delta_feeds": True,
                      "cache_dir": str(tmp_path / "cache")})
    client = app.test_client()
    whole = client.get("/feeds/all.xml")
    for _ in range(3):
        answer = client.get("/feeds/all.xml", headers={**DELTA, "If-None-Match": whole.headers["ETag"][:-1] + 'x"'})
        assert answer.status_code == 200 and answer.data == whole.data
    assert client.get("/feeds/all.xml", headers={**DELTA, "If-None-Match": whole.headers["ETag"]}).status_code == 304
    assert len([r for r in caplog.records if "version history unusable" in r.getMessage()]) == 1

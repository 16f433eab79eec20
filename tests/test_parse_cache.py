"""The parse cache checks what it trusts, and takes any file name the file system has.

A damaged cache file is rebuilt once and then hit again; a row whose bytes
changed is parsed again, never published; a name that is not UTF-8 is loaded,
cached and named (escaped) like any other.
"""

from __future__ import annotations

import logging
import os
import random
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from feedpub.cli import main
from feedpub.ingest import loader as loader_module
from feedpub.ingest.loader import CorpusLoader
from feedpub.ingest.parse_cache import FILENAME, ParseCache
from feedpub.ingest.scan import rescan, scan

from .test_incremental import MAX, make_corpus, signature

FILES = 60


@pytest.fixture
def cached(tmp_path: Path) -> tuple[Path, Path]:
    """A corpus of many articles and a cache that holds them all, closed."""
    root, cache = tmp_path / "many", tmp_path / "cache"
    make_corpus(root, FILES)
    first = CorpusLoader(root, MAX, cache_dir=cache)
    first.load()
    first.close()
    return root, cache


def _instance(path: Path) -> str:
    db = sqlite3.connect(path)
    try:
        return str(db.execute("SELECT value FROM meta WHERE key = 'instance'").fetchone()[0])
    finally:
        db.close()


def _page_size(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute("PRAGMA page_size").fetchone()[0])
    finally:
        db.close()


@pytest.mark.parametrize("where", ["header", "schema-page", "page-2", "middle", "three-quarters", "last-page"])
def test_a_damaged_file_is_rebuilt_once_then_hit_again(cached: tuple[Path, Path], where: str,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    root, cache = cached
    path = cache / FILENAME
    size, page = path.stat().st_size, _page_size(path)
    pages = size // page
    offset = {"header": 16, "schema-page": 100, "page-2": page, "middle": page * (pages // 2),
              "three-quarters": page * (3 * pages // 4) + 8, "last-page": page * (pages - 1)}[where]
    noise = random.Random(where).randbytes(64)
    with open(path, "r+b") as handle:
        handle.seek(offset)
        handle.write(noise)
    expected = signature(CorpusLoader(root, MAX).load())

    with caplog.at_level(logging.WARNING, "feedpub"):
        damaged = CorpusLoader(root, MAX, cache_dir=cache)
        assert signature(damaged.load()) == expected  # whatever the damage, never a wrong result
        damaged.close()
    caplog.clear()
    with caplog.at_level(logging.WARNING, "feedpub"):
        again = CorpusLoader(root, MAX, cache_dir=cache)
        assert signature(again.load()) == expected
        again.close()
    assert (again.parsed, again.from_cache) == (0, FILES)  # rebuilt (or mended) once: a full hit now
    assert caplog.records == []  # and no more complaints about it


def test_a_damaged_file_found_while_reading_is_replaced(cached: tuple[Path, Path],
                                                        caplog: pytest.LogCaptureFixture) -> None:
    root, cache = cached
    path = cache / FILENAME
    page = _page_size(path)
    db = sqlite3.connect(path)
    root_page = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'results'").fetchone()[0]
    before = _instance(path)
    db.close()
    with open(path, "r+b") as handle:  # the results table's root page: the schema still reads fine
        handle.seek((root_page - 1) * page)
        handle.write(b"\xff" * 64)
    with caplog.at_level(logging.WARNING, "feedpub"):
        loader = CorpusLoader(root, MAX, cache_dir=cache)
        loader.load()
        loader.close()
    assert "rebuilding it" in caplog.text
    assert _instance(path) != before  # removed and made anew, not ignored run after run
    again = CorpusLoader(root, MAX, cache_dir=cache)
    again.load()
    assert again.parsed == 0


def test_a_busy_file_is_never_deleted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache = ParseCache(tmp_path, MAX)
    cache.store([(b"/x.md", 1, 2, "d", b"blob")])
    instance = _instance(cache.path)
    with caplog.at_level(logging.WARNING, "feedpub"):
        cache._damaged(sqlite3.OperationalError("database is locked"))
    assert _instance(cache.path) == instance and not cache.rebuilt
    assert [row[0] for row in cache.rows([b"/x.md"])] == [b"/x.md"]
    cache.close()


def test_a_file_another_process_already_rebuilt_is_kept(tmp_path: Path) -> None:
    cache = ParseCache(tmp_path, MAX)
    for suffix in ("", "-wal", "-shm"):  # what a process that found it damaged first does
        Path(f"{cache.path}{suffix}").unlink(missing_ok=True)
    other = ParseCache(tmp_path, MAX)
    other.store([(b"/theirs.md", 1, 2, "d", b"blob")])
    cache._damaged(sqlite3.DatabaseError("database disk image is malformed"))
    other.close()
    assert [row[0] for row in cache.rows([b"/theirs.md"])] == [b"/theirs.md"]
    cache.close()


def _alter(cache: Path, name: str, change) -> None:  # type: ignore[no-untyped-def]
    db = sqlite3.connect(cache / FILENAME)
    key, blob, digest = next((k, b, d) for k, b, d in db.execute("SELECT path, result, digest FROM results")
                             if bytes(k).endswith(name.encode()))
    blob, digest = change(bytes(blob), digest)
    db.execute("UPDATE results SET result = ?, digest = ? WHERE path = ?", (blob, digest, key))
    db.commit()
    db.close()


def _flip_title(blob: bytes, digest: str) -> tuple[bytes, str]:
    at = blob.index(b'"No. 5: ') + 1
    return blob[:at] + b"n" + blob[at + 1:], digest  # "No. 5" becomes "no. 5": still valid JSON and UTF-8


def _other_digest(blob: bytes, digest: str) -> tuple[bytes, str]:
    return blob, "0" * len(digest)


@pytest.mark.parametrize("change", [_flip_title, _other_digest], ids=["title-byte", "digest-column"])
def test_a_row_that_does_not_match_its_checksum_is_parsed_again(cached: tuple[Path, Path], change) -> None:  # type: ignore[no-untyped-def]
    root, cache = cached
    _alter(cache, "a00005.md", change)
    loader = CorpusLoader(root, MAX, cache_dir=cache)
    corpus = loader.load()
    titles = [a.title for a in corpus.articles]
    assert any(t.startswith("No. 5: ") for t in titles) and not any(t.startswith("no. 5: ") for t in titles)
    assert (loader.parsed, loader.from_cache) == (1, FILES - 1)
    assert signature(corpus) == signature(CorpusLoader(root, MAX).load())
    again = CorpusLoader(root, MAX, cache_dir=cache)
    again.load()
    assert again.parsed == 0  # the row was written anew


# -- names that are not UTF-8 ----------------------------------------------------------------

def _odd_names(seeds: Path) -> bytes:
    """A good article whose name is Latin-1, and a broken one in a Latin-1 directory with a newline in its name."""
    template = next(p for p in seeds.iterdir() if "domain: wired.com" in p.read_text("utf-8")).read_bytes()
    base = os.fsencode(seeds)
    with open(base + b"/caf\xe9.md", "wb") as handle:
        handle.write(template.replace(b"https://www.wired.com/", b"https://www.wired.com/cafe/")
                     .replace(b'title: "', b'title: "Caf\xc3\xa9: ', 1))
    os.mkdir(base + b"/d\xe9j\xe0")
    with open(base + b"/d\xe9j\xe0/bad\nname.md", "wb") as handle:
        handle.write(b"---\ntitle: no URL\n---\n")
    return base


@pytest.mark.parametrize("pool", [False, True], ids=["in-process", "process-pool"])
def test_names_that_are_not_utf8_are_loaded_cached_and_named_escaped(seeds: Path, tmp_path: Path, pool: bool,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    if pool:
        monkeypatch.setattr(loader_module, "POOL_THRESHOLD", 2)
    _odd_names(seeds)
    cache = tmp_path / "cache"
    cold = CorpusLoader(seeds, MAX, cache_dir=cache, workers=2)
    corpus = cold.load()
    cold.close()
    assert any(a.title.startswith("Café: ") for a in corpus.articles)
    lines = [str(p) for p in corpus.problems]
    bad = [line for line in lines if "bad" in line]
    assert len(bad) == 1 and bad[0].startswith(f"{seeds.as_posix()}/d\\xe9j\\xe0/bad\\nname.md: error: ")
    for line in lines:
        line.encode("utf-8")  # no surrogates: any terminal, log or JSON takes it
        assert "\n" not in line
    warm = CorpusLoader(seeds, MAX, cache_dir=cache)
    assert signature(warm.load()) == signature(corpus)
    assert (warm.parsed, warm.from_cache) == (0, 7)
    keys = [bytes(k) for (k,) in sqlite3.connect(cache / FILENAME).execute("SELECT path FROM results")]
    assert os.fsencode(os.path.realpath(seeds)) + b"/caf\xe9.md" in keys  # the name as the file system has it


def test_events_naming_undecodable_files_find_what_a_scan_finds(seeds: Path) -> None:
    before = scan(seeds)
    base = _odd_names(seeds)
    # watchdog reports paths as text (os.fsdecode) or bytes, depending on how it was asked
    named = [os.fsdecode(base + b"/caf\xe9.md"), os.fsdecode(base + b"/d\xe9j\xe0/bad\nname.md")]
    assert rescan(seeds, before, named) == scan(seeds)
    from watchdog.events import FileCreatedEvent

    from feedpub.web.watcher import _Changed

    changed = _Changed()
    changed.on_any_event(FileCreatedEvent(base + b"/caf\xe9.md"))
    assert rescan(seeds, before, changed.take() or ()) == {**before, "caf\udce9.md": scan(seeds)["caf\udce9.md"]}


@pytest.mark.parametrize("command", ["check", "build"])
def test_the_cli_names_undecodable_files_and_finishes(seeds: Path, tmp_path: Path, command: str) -> None:
    _odd_names(seeds)
    args = [command, "--seeds", str(seeds), "--cache-dir", str(tmp_path / "cache")]
    if command == "build":
        args += ["--out", str(tmp_path / "out")]
    for _ in range(2):  # cold, then from the cache
        result = CliRunner().invoke(main, args)
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        assert "/d\\xe9j\\xe0/bad\\nname.md: error: " in result.stderr
        assert "1 rejected" in (result.stderr if command == "check" else result.stdout)
    if command == "build":
        assert "https://www.wired.com/cafe/" in (tmp_path / "out" / "all.xml").read_text("utf-8")


def test_output_and_seeds_directories_whose_names_are_not_utf8(seeds: Path, tmp_path: Path) -> None:
    base = os.fsencode(tmp_path)
    odd_seeds, out = os.fsdecode(base + b"/s\xe9eds"), os.fsdecode(base + b"/o\xe9ut")
    seeds.rename(odd_seeds)
    _odd_names(Path(odd_seeds))
    result = CliRunner().invoke(main, ["build", "--seeds", odd_seeds, "--out", out, "--cache-dir", str(tmp_path / "c")])
    assert result.exit_code == 0, result.exception
    assert f"feeds in {tmp_path.as_posix()}/o\\xe9ut/" in result.stdout
    assert f"{tmp_path.as_posix()}/s\\xe9eds/d\\xe9j\\xe0/bad\\nname.md: error: " in result.stderr
    missing = CliRunner().invoke(main, ["check", "--seeds", os.fsdecode(base + b"/n\xe9ne")])
    assert missing.exit_code == 2 and f"{tmp_path.as_posix()}/n\\xe9ne is missing" in missing.stderr

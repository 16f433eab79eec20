"""SQLite files opened by many processes at once (gunicorn workers starting together)."""

from __future__ import annotations

import logging
import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from feedpub import shared_db
from feedpub.ingest.loader import CorpusLoader
from feedpub.ingest.parse_cache import FILENAME, ParseCache
from feedpub.websub import Ledger

PROCESSES = 8
ROUNDS = 5


def _open_both(directory: str, barrier, results) -> None:  # in a child process
    try:
        barrier.wait(10)
        ledger = Ledger(Path(directory))
        cache = ParseCache(Path(directory), 1 << 20)
        cache.store([(f"/{multiprocessing.current_process().name}", 1, 1, "d", b"x")])
        ledger.note({"https://example.org/feeds/all.xml": "v1"})
        results.put(("ok", ledger.lease() is not None))
        ledger.close()
        cache.close()
    except Exception as exc:  # reported to the parent, which fails the test with it
        results.put(("error", repr(exc)))


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_processes_opening_new_files_together_all_succeed(tmp_path: Path, round_: int) -> None:
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(PROCESSES)
    results = context.Queue()
    children = [context.Process(target=_open_both, args=(str(tmp_path), barrier, results))
                for _ in range(PROCESSES)]
    for child in children:
        child.start()
    outcomes = [results.get(timeout=60) for _ in children]
    for child in children:
        child.join(10)
    assert [o for o in outcomes if o[0] == "error"] == []
    assert sum(1 for _, claimed in outcomes if claimed) == 1  # exactly one process announces
    stored = sqlite3.connect(tmp_path / FILENAME).execute("SELECT count(*) FROM results").fetchone()[0]
    assert stored == PROCESSES  # nobody deleted a file another process had written to


def test_busy_is_told_apart_from_damage() -> None:
    assert shared_db.is_busy(sqlite3.OperationalError("database is locked"))
    assert not shared_db.is_busy(sqlite3.OperationalError("no such table: results"))
    assert not shared_db.is_busy(sqlite3.DatabaseError("file is not a database"))


def test_retry_busy_waits_for_a_lock_and_gives_up_on_anything_else() -> None:
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise sqlite3.OperationalError("database is locked")
        return "done"

    assert shared_db.retry_busy(flaky) == "done" and len(calls) == 3

    def broken() -> None:
        calls.append(1)
        raise sqlite3.OperationalError("disk I/O error")

    calls.clear()
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        shared_db.retry_busy(broken)
    assert len(calls) == 1
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        shared_db.retry_busy(lambda: (_ for _ in ()).throw(sqlite3.OperationalError("database is locked")), wait=0.1)


def test_unusable_cache_directory_loads_without_the_cache(seeds: Path, tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the cache directory should be")
    loader = CorpusLoader(seeds, 1 << 20, cache_dir=blocker / "cache")
    with caplog.at_level(logging.WARNING, "feedpub"):
        corpus = loader.load()
        again = loader.load()
    assert len(corpus.articles) == len(again.articles) == 2
    assert loader.parsed == 0  # the second load came from memory
    warnings = [r.getMessage() for r in caplog.records if "parse cache" in r.getMessage()]
    assert len(warnings) == 1 and "loading without it" in warnings[0]

"""The parse cache, the process pool and incremental rebuilds give exactly what a fresh full build gives."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from feedpub.cli import main
from feedpub.ingest import loader as loader_module
from feedpub.ingest import parse_cache as cache_module
from feedpub.ingest.loader import CorpusLoader
from feedpub.ingest.parse_cache import FILENAME
from feedpub.render.site import render_site
from feedpub.settings import Settings

from .conftest import SEEDS

MAX = 8 << 20


def make_corpus(root: Path, count: int) -> None:
    """``count`` distinct articles made from the seeds."""
    templates = [p.read_text("utf-8") for p in sorted(SEEDS.iterdir())]
    for n in range(count):
        text = templates[n % len(templates)].replace('title: "', f'title: "No. {n}: ', 1)
        for key in ("webUrl", "originalUrl"):
            text = text.replace(f'{key}: "https://', f'{key}: "https://n{n}.', 1)
        path = root / f"d{n // 100}" / f"a{n:05d}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")


def bump(path: Path) -> None:
    later = time.time() + 5
    os.utime(path, (later, later))


def signature(corpus) -> list[tuple]:
    return [(a.url, a.title, a.digest, a.related, a.provider, a.topics) for a in corpus.articles] + [
        tuple(sorted(map(str, corpus.problems)))]


def test_warm_start_parses_nothing_and_matches_a_cold_load(seeds: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cold = CorpusLoader(seeds, MAX, cache_dir=cache)
    first = cold.load()
    assert cold.parsed == 5 and cold.from_cache == 0
    warm = CorpusLoader(seeds, MAX, cache_dir=cache)
    second = warm.load()
    assert warm.parsed == 0 and warm.from_cache == 5
    assert signature(second) == signature(first) == signature(CorpusLoader(seeds, MAX).load())
    assert second.articles == first.articles


def test_edit_is_a_miss_touch_is_a_hit(seeds: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    CorpusLoader(seeds, MAX, cache_dir=cache).load()
    wired = next(p for p in seeds.iterdir() if "domain: wired.com" in p.read_text("utf-8"))
    bump(wired)  # same bytes, new mtime: the content hash says it is unchanged
    touched = CorpusLoader(seeds, MAX, cache_dir=cache)
    touched.load()
    assert touched.parsed == 0 and touched.from_cache == 5
    wired.write_text(wired.read_text("utf-8").replace('title: "', 'title: "Edited: ', 1), "utf-8")
    bump(wired)
    edited = CorpusLoader(seeds, MAX, cache_dir=cache)
    corpus = edited.load()
    assert edited.parsed == 1 and edited.from_cache == 4
    assert any(a.title.startswith("Edited: ") for a in corpus.articles)


def test_deleted_article_disappears_and_leaves_the_cache(seeds: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    loader = CorpusLoader(seeds, MAX, cache_dir=cache)
    assert len(loader.load().articles) == 2
    wired = next(p for p in seeds.iterdir() if "domain: wired.com" in p.read_text("utf-8"))
    wired.unlink()
    corpus = loader.load()
    assert [a.provider.domain for a in corpus.articles] == ["thenextweb.com"]
    assert "wired.com" not in corpus.providers
    rows = sqlite3.connect(cache / FILENAME).execute("SELECT path FROM results").fetchall()
    assert len(rows) == 4 and not any(wired.name.encode() in path for (path,) in rows)
    assert len(CorpusLoader(seeds, MAX, cache_dir=cache).load().articles) == 1


@pytest.mark.parametrize("damage", ["garbage", "truncated", "foreign", "bad-row"])
def test_corrupt_or_foreign_cache_is_rebuilt_not_trusted(seeds: Path, tmp_path: Path, damage: str) -> None:
    cache = tmp_path / "cache"
    first = CorpusLoader(seeds, MAX, cache_dir=cache)
    first.load()
    first.close()
    path = cache / FILENAME
    if damage == "garbage":
        path.write_bytes(b"this is not a database" * 100)
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:1000])
    elif damage == "foreign":
        path.unlink()
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE results (path TEXT, size INT, mtime_ns INT, digest TEXT, result BLOB)")
        db.execute("CREATE TABLE meta (key TEXT, value TEXT)")
        db.execute("INSERT INTO meta VALUES ('application', 'something-else')")
        db.commit()
        db.close()
    else:
        db = sqlite3.connect(path)
        db.execute("UPDATE results SET result = X'7B7B7B'")  # rows that are not results
        db.commit()
        db.close()
    loader = CorpusLoader(seeds, MAX, cache_dir=cache)
    corpus = loader.load()
    assert loader.parsed == 5
    assert signature(corpus) == signature(CorpusLoader(seeds, MAX).load())
    again = CorpusLoader(seeds, MAX, cache_dir=cache)
    again.load()
    assert again.parsed == 0  # rebuilt and usable


def test_two_processes_share_the_cache(seeds: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    a = CorpusLoader(seeds, MAX, cache_dir=cache)
    b = CorpusLoader(seeds, MAX, cache_dir=cache)
    a.load()
    b.load()
    wired = next(p for p in seeds.iterdir() if "domain: wired.com" in p.read_text("utf-8"))
    wired.write_text(wired.read_text("utf-8").replace('title: "', 'title: "Shared: ', 1), "utf-8")
    bump(wired)
    a.load()
    fresh = CorpusLoader(seeds, MAX, cache_dir=cache)
    corpus = fresh.load()
    assert fresh.parsed == 0
    assert any(x.title.startswith("Shared: ") for x in corpus.articles)


def test_process_pool_gives_the_same_corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "many"
    make_corpus(root, 60)
    monkeypatch.setattr(loader_module, "POOL_THRESHOLD", 10)
    monkeypatch.setattr(loader_module, "CHUNK", 7)
    pooled = CorpusLoader(root, MAX, workers=2).load()
    single = CorpusLoader(root, MAX, workers=1).load()
    assert signature(pooled) == signature(single)
    assert pooled.articles == single.articles


def build(out: Path, seeds: Path) -> str:
    result = CliRunner().invoke(main, ["build", "--seeds", str(seeds), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return result.stdout


def tree(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*")
            if p.is_file() and not p.name.startswith(".")}


def test_incremental_build_equals_a_full_rebuild(tmp_path: Path) -> None:
    seeds, out = tmp_path / "seeds", tmp_path / "out"
    make_corpus(seeds, 40)
    first = build(out, seeds)
    assert "rendered" in first
    # Edit one, add one, delete one.
    edited = seeds / "d0" / "a00007.md"
    edited.write_text(edited.read_text("utf-8").replace('title: "', 'title: "Edited: ', 1), "utf-8")
    bump(edited)
    (seeds / "d0" / "a00011.md").unlink()
    added = seeds / "d9" / "new.md"
    added.parent.mkdir()
    added.write_text((SEEDS / sorted(p.name for p in SEEDS.iterdir())[2]).read_text("utf-8")
                     .replace("https://www.wired.com", "https://added.example"), "utf-8")
    second = build(out, seeds)
    rendered = int(second.split("(")[1].split(" rendered")[0])
    total = int(second.split(" feeds in ")[0].rsplit(" ", 1)[1])
    assert 0 < rendered < total * 3  # only the feeds that changed
    fresh = tmp_path / "fresh"
    build(fresh, seeds)
    assert tree(out) == tree(fresh)


def test_server_reload_renders_only_changed_feeds(seeds: Path) -> None:
    settings = Settings.load({"seeds_dir": str(seeds)})
    loader = CorpusLoader(seeds, MAX)
    first = render_site(loader.load(), settings)
    same = render_site(loader.load(), settings, first)
    assert same.rendered == 0 and same.outputs == first.outputs
    wired = next(p for p in seeds.iterdir() if "domain: wired.com" in p.read_text("utf-8"))
    wired.write_text(wired.read_text("utf-8").replace('title: "', 'title: "Changed: ', 1), "utf-8")
    bump(wired)
    changed = render_site(loader.load(), settings, first)
    assert 0 < changed.rendered < 3 * len(changed.feeds)
    unchanged = [name for name in first.outputs if first.outputs[name].body is changed.outputs[name].body]
    assert "providers/thenextweb.com.xml" in unchanged and "providers/wired.com.xml" not in unchanged


def test_missing_libyaml_is_announced(runner: CliRunner, seeds: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import feedpub.cli

    monkeypatch.setattr(feedpub.cli, "HAVE_LIBYAML", False)
    result = runner.invoke(main, ["check", "--seeds", str(seeds)])
    assert "without libyaml" in result.stderr and "7x slower" in result.stderr


def test_unchanged_feeds_are_neither_rendered_nor_read_again(seeds: Path, tmp_path: Path) -> None:
    from feedpub.ingest.loader import load
    from feedpub.static_tree import OutputMemo
    from feedpub.tree_writer import write_site

    out = tmp_path / "out"
    settings = Settings.load({"seeds_dir": str(seeds), "out_dir": str(out)})
    corpus = load(seeds, MAX)
    write_site(render_site(corpus, settings), out)
    again = render_site(corpus, settings, OutputMemo(out))
    assert again.rendered == 0
    kept = {name for name, output in again.outputs.items() if output.kept}
    assert kept == {name for name in again.outputs if not name.startswith("index.")}
    report = write_site(again, out)
    assert report.written == 0 and report.changed == ()


@pytest.mark.parametrize("limit", [0, 2, 10_000])  # one pass over the table, or lookups by key
def test_cached_rows_are_found_by_either_way_of_reading(seeds: Path, tmp_path: Path, limit: int,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache_module, "LOOKUP_LIMIT", limit)
    cache = tmp_path / "cache"
    cold = CorpusLoader(seeds, MAX, cache_dir=cache).load()
    warm_loader = CorpusLoader(seeds, MAX, cache_dir=cache)
    assert signature(warm_loader.load()) == signature(cold)
    assert warm_loader.parsed == 0 and warm_loader.from_cache == 5
    wired = next(p for p in seeds.iterdir() if "domain: wired.com" in p.read_text("utf-8"))
    wired.write_text(wired.read_text("utf-8").replace('title: "', 'title: "Edited: ', 1), "utf-8")
    bump(wired)
    warm_loader.load()
    assert warm_loader.parsed == 1 and warm_loader.from_cache == 0  # the edit is a miss either way

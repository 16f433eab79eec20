"""Entry fragments kept across builds (``render/kept.py``): a build makes only new or edited entries.

What is kept must never change a byte of what is written: every build here is compared, file for
file, with a build that kept nothing. The render is counted with :class:`Renders` (feedgen's entry
methods and the JSON item maker), in this process: ``os.cpu_count`` is 1 so no child makes any.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import example, given
from hypothesis import strategies as st

from feedpub.cli import main
from feedpub.ingest import parse_cache
from feedpub.ingest.loader import load
from feedpub.ingest.parse_cache import FILENAME, ParseCache
from feedpub.render.fragments import pack, unpack
from feedpub.render.kept import kept_fragments
from feedpub.render.site import render_site, rendering_key
from feedpub.settings import Settings

from .conftest import SITE_URL
from .test_fragments import Renders

MAX_BYTES = 1 << 20
NAMES = st.sampled_from(["rss", "atom", "json", "x-other"])


@given(st.dictionaries(NAMES, st.binary(max_size=300), min_size=1))
@example({"rss": b"\n", "atom": b"", "json": b"\n\n"})
def test_packed_fragments_unpack_to_the_same_bytes(fragments: dict[str, bytes]) -> None:
    assert unpack(pack(fragments)) == fragments


@pytest.mark.parametrize("damage", [
    lambda packed: packed[:-3],  # cut short
    lambda packed: packed[:20] + bytes([packed[20] ^ 0xFF]) + packed[21:],  # a byte changed: zlib's checksum
    lambda packed: zlib.compress(b"rss 10 json 2\n<item/>\n{}"),  # lengths that do not add up
    lambda packed: zlib.compress(b"rss ten\nabc"),  # a header that is not one
    lambda packed: b"not zlib at all",
])
def test_anything_but_packed_fragments_is_refused(damage) -> None:  # type: ignore[no-untyped-def]
    packed = pack({"rss": b"<item>" + b"x" * 200 + b"</item>\n", "json": b'{"id": "1"}'})
    with pytest.raises(ValueError, match="not packed fragments"):
        unpack(damage(packed))


def _build(runner: CliRunner, seeds: Path, out: Path, cache: Path, *extra: str) -> None:
    done = runner.invoke(main, ["build", "--seeds", str(seeds), "--out", str(out), "--cache-dir", str(cache),
                                "--site-url", SITE_URL, *extra], catch_exceptions=False)
    assert done.exit_code == 0, done.output


def _tree(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*"))
            if path.is_file() and not path.name.startswith(".")}


def _rows(cache: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(cache / FILENAME) as db:
        return db.execute("SELECT rendering, url, digest FROM fragments ORDER BY rendering, url").fetchall()


@pytest.fixture
def one_core(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 1)


@pytest.fixture
def corpus(generated_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the generated corpus, to edit."""
    return Path(shutil.copytree(generated_dir, tmp_path / "corpus"))


@pytest.fixture
def reference(corpus: Path, tmp_path: Path, runner: CliRunner) -> dict[str, bytes]:
    """The tree of ``corpus`` as a build that keeps nothing writes it."""
    _build(runner, corpus, tmp_path / "reference", tmp_path / "no-cache", "--no-cache")
    return _tree(tmp_path / "reference")


@pytest.mark.usefixtures("one_core")
def test_a_build_with_a_warm_cache_makes_no_entry_and_writes_the_same_bytes(
        corpus: Path, reference: dict[str, bytes], tmp_path: Path, runner: CliRunner,
        monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    renders = Renders(monkeypatch)
    _build(runner, corpus, tmp_path / "first", cache)
    made = set(renders.counts["json"])
    assert len(made) > 100 and _tree(tmp_path / "first") == reference
    assert {url for _, url, _ in _rows(cache)} == made  # every entry made is kept, once

    renders = Renders(monkeypatch)
    _build(runner, corpus, tmp_path / "second", cache)  # an empty directory: every feed is rendered...
    assert renders.total() == 0  # ...from kept entries only
    assert _tree(tmp_path / "second") == reference


@pytest.mark.usefixtures("one_core")
def test_an_edit_makes_only_the_edited_entry_and_replaces_its_row(
        corpus: Path, tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    cache, out = tmp_path / "cache", tmp_path / "out"
    _build(runner, corpus, out, cache)
    before = _rows(cache)
    article = load(corpus, MAX_BYTES).articles[7]
    edited = Path(article.path)
    edited.write_text(edited.read_text("utf-8").replace('title: "', 'title: "Edited ', 1), "utf-8")

    renders = Renders(monkeypatch)
    _build(runner, corpus, out, cache)
    assert dict(renders.counts["json"]) == {article.url: 1}
    after = _rows(cache)
    assert len(after) == len(before)  # the edit replaced its article's row
    assert [url for _, url, _ in set(after) - set(before)] == [article.url]

    _build(runner, corpus, tmp_path / "fresh", tmp_path / "no-cache", "--no-cache")
    assert _tree(out) == _tree(tmp_path / "fresh")


@pytest.mark.usefixtures("one_core")
def test_a_damaged_row_is_made_again_never_published(
        corpus: Path, reference: dict[str, bytes], tmp_path: Path, runner: CliRunner,
        monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    _build(runner, corpus, tmp_path / "first", cache)
    with sqlite3.connect(cache / FILENAME) as db:
        url, packed = db.execute("SELECT url, packed FROM fragments ORDER BY url LIMIT 1").fetchone()
        db.execute("UPDATE fragments SET packed = ? WHERE url = ?", (packed[:-8] + b"\0" * 8, url))

    renders = Renders(monkeypatch)
    _build(runner, corpus, tmp_path / "second", cache)
    assert set(renders.counts["json"]) == {url}
    assert _tree(tmp_path / "second") == reference
    with sqlite3.connect(cache / FILENAME) as db:  # and kept anew
        assert unpack(db.execute("SELECT packed FROM fragments WHERE url = ?", (url,)).fetchone()[0])


@pytest.mark.usefixtures("one_core")
def test_other_output_settings_keep_their_own_fragments_and_the_oldest_go(
        corpus: Path, tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setattr(parse_cache, "RENDERINGS_KEPT", 2)
    _build(runner, corpus, tmp_path / "a", cache, "--site-title", "A")
    renders = Renders(monkeypatch)
    _build(runner, corpus, tmp_path / "b", cache, "--site-title", "B")
    assert renders.total() > 0  # another rendering key (every output setting is in it): rows of its own
    renderings = {rendering for rendering, _, _ in _rows(cache)}
    assert len(renderings) == 2

    _build(runner, corpus, tmp_path / "c", cache, "--site-title", "C")
    assert len({rendering for rendering, _, _ in _rows(cache)}) == 2  # A's went
    renders = Renders(monkeypatch)
    _build(runner, corpus, tmp_path / "b2", cache, "--site-title", "B")  # B's stayed: nothing to make
    assert renders.total() == 0
    assert _tree(tmp_path / "b2") == _tree(tmp_path / "b")


def test_a_parse_cache_of_the_last_format_is_started_afresh(tmp_path: Path) -> None:
    """A file written before fragments were kept has no table for them: it is dropped, not half used."""
    probe = ParseCache(tmp_path / "probe", 1000)
    probe.close()
    db = sqlite3.connect(tmp_path / FILENAME)
    with db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("CREATE TABLE results (path BLOB PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,"
                   " digest TEXT NOT NULL, result BLOB NOT NULL)")
        db.execute("INSERT INTO meta VALUES ('application', ?)", (parse_cache.APPLICATION,))
        db.execute("INSERT INTO meta VALUES ('identity', ?)",
                   (probe.identity.replace(f"/{parse_cache.FORMAT}/", "/3/"),))
    db.close()
    cache = ParseCache(tmp_path, 1000)
    cache.store_fragments("r", [("https://example.org/a", "d1", pack({"rss": b"<item/>"}))])
    assert list(cache.fragments("r", ["https://example.org/a"])) == [
        ("https://example.org/a", "d1", pack({"rss": b"<item/>"}))]
    cache.close()


@pytest.mark.parametrize("many", [False, True])
def test_fragments_are_found_by_url_a_few_or_many_at_a_time(tmp_path: Path, many: bool,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    if many:
        monkeypatch.setattr(parse_cache, "LOOKUP_LIMIT", 2)  # one pass over the rendering's rows
    cache = ParseCache(tmp_path, 1000)
    rows = [(f"https://example.org/{n}", f"d{n}", pack({"rss": str(n).encode()})) for n in range(1200)]
    cache.store_fragments("r", rows)
    cache.store_fragments("other", rows[:5])
    urls = [url for url, _, _ in rows[::3]]
    found = {url: (digest, packed) for url, digest, packed in cache.fragments("r", urls)}
    assert set(urls) <= set(found)
    assert all(found[url] == (digest, packed) for url, digest, packed in rows[::3])
    cache.close()


def test_what_the_build_makes_itself_is_kept_once_an_article_with_every_format(
        generated_dir: Path, tmp_path: Path) -> None:
    """An article's RSS and Atom entries are made with one feed's RSS, its JSON item with that feed's JSON
    (and its page entry with its page): what is kept is the article's whole set, written once."""
    settings = Settings.load({"seeds_dir": str(generated_dir), "site_url": SITE_URL, "cache": False})
    corpus = load(generated_dir, MAX_BYTES)
    cache = ParseCache(tmp_path, MAX_BYTES)
    with kept_fragments(cache, rendering_key(settings)) as kept:
        render_site(corpus, settings, kept=kept)  # one process: no child makes any
    assert kept.written == len(corpus.articles)
    rows = list(cache.fragments(kept.rendering, [a.url for a in corpus.articles]))
    assert len(rows) == len(corpus.articles)
    kinds = {frozenset(unpack(packed)) for _, _, packed in rows}
    assert all(kind >= {"rss", "atom", "json"} and kind <= {"rss", "atom", "json", "html"} for kind in kinds)
    assert frozenset({"rss", "atom", "json", "html"}) in kinds  # the page entry of an article a live page lists
    cache.close()


def test_entries_that_cannot_be_kept_cost_a_warning_never_the_build(
        generated_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    def full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    settings = Settings.load({"seeds_dir": str(generated_dir), "site_url": SITE_URL, "cache": False})
    corpus = load(generated_dir, MAX_BYTES)
    cache = ParseCache(tmp_path, MAX_BYTES)
    monkeypatch.setattr(cache, "store_fragments", full)
    with caplog.at_level("WARNING", "feedpub"), kept_fragments(cache, rendering_key(settings)) as kept:
        site = render_site(corpus, settings, kept=kept)
    assert site.rendered and kept.written == len(corpus.articles)
    assert "could not keep entry fragments" in caplog.text and "No space left" in caplog.text
    cache.close()

"""What the builder keeps from one reload to the next must follow every edit.

Each cache here is checked against what a publish from scratch holds: an
article's stored row and member data, the archive pages and their fingerprints,
the front page and index files, and the store's versions.
"""

from __future__ import annotations

import gzip
import re
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from feedpub.model import Article
from feedpub.render import html_pages
from feedpub.render.site import Site, render_site
from feedpub.web import create_app, stored_articles
from feedpub.web.shared_store import KEEP_VERSIONS
from feedpub.web.state import FeedState

from .conftest import SITE_URL


@pytest.fixture
def seeds(generated_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "seeds"
    shutil.copytree(generated_dir, copy)
    return copy


def _builder(seeds: Path, **extra: object) -> FeedState:
    config = {"TESTING": True, "seeds_dir": str(seeds), "site_url": SITE_URL, "max_items": 5, **extra}
    state: FeedState = create_app(config).extensions["feedpub"]
    assert state.lease is not None
    return state


def _edit(path: Path, kind: str, quality: int) -> None:
    text = path.read_text("utf-8").replace('title: "', 'title: "Edited ', 1)
    text = re.sub(r"^type: \w+$", f"type: {kind}", text, count=1, flags=re.M)
    path.write_text(re.sub(r"^quality: \d+$", f"quality: {quality}", text, count=1, flags=re.M), "utf-8")


def _stored_members(state: FeedState, name: str) -> list[tuple[str, str, int | None]]:
    """A live feed's members as the store holds them for serving processes: url, kind, quality."""
    store, version = state.builder.store, state.builder.version
    assert version is not None
    source = store.source(version, name)
    assert source is not None
    found = store.articles(member.id for member in source.members)
    return [(found[m.id][0].url, m.kind.value, m.quality) for m in source.members]


def _members(state: FeedState, path: str) -> list[tuple[str, str, int | None]]:
    assert state.site is not None
    feed = next(feed for feed in state.site.feeds if feed.spec.path == path)
    return [(a.url, a.kind.value, a.quality) for a in feed.members]


def test_an_edited_article_is_stored_and_listed_anew_and_its_old_row_forgotten_a_version_later(
        seeds: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = _builder(seeds)
    assert state.site is not None
    newest = state.site.corpus.articles[0]
    topic = next(feed.spec.path for feed in state.site.feeds[1:] if newest in feed.members)
    encoded: list[int] = []
    real = stored_articles.member_json
    monkeypatch.setattr(stored_articles, "member_json", lambda id_, article: encoded.append(id_) or real(id_, article))
    kind = "article" if newest.kind.value == "video" else "video"
    _edit(Path(newest.path), kind, 77)
    assert state.reload()
    assert state.site.corpus.articles[0].kind.value == kind
    for path, name in (("all", "all.xml"), (topic, f"{topic}.json")):
        assert _stored_members(state, name) == _members(state, path)
    assert len(encoded) == 1  # the edited article alone was stored and encoded again
    serving = create_app({"TESTING": True, "seeds_dir": str(seeds), "site_url": SITE_URL, "max_items": 5})
    listed = serving.test_client().get(f"/feeds/all.json?type={kind}&min_quality=77").json["items"]
    expected = [a.url for a in state.site.corpus.articles if a.kind.value == kind and (a.quality or 0) >= 77]
    assert [item["url"] for item in listed] == expected[:5] and expected[0] == newest.url

    def rows_of(path: str) -> int:
        return sum(1 for key in state.builder.store.article_ids(state.builder.articles.prefix)
                   if key.split("\0")[1] == path)

    assert rows_of(newest.path) == 2  # the version before lists the old one: a request may be reading it
    other = state.site.corpus.articles[1]
    _edit(Path(other.path), other.kind.value, (other.quality or 0) + 1)
    assert state.reload()
    assert rows_of(newest.path) == 1 and rows_of(other.path) == 2
    assert _stored_members(state, "all.xml") == _members(state, "all")


def _from_scratch(state: FeedState) -> Site:
    assert state.site is not None
    return render_site(state.site.corpus, state.settings)


def test_archive_pages_and_fingerprints_are_kept_only_for_feeds_whose_articles_did_not_change(seeds: Path) -> None:
    state = _builder(seeds)
    before = state.site
    assert before is not None and before.archives
    live = {a.url for feed in before.feeds for a in feed.entries}
    oldest = next(a for a in reversed(before.corpus.articles) if a.url not in live)  # in archive pages only
    path = Path(oldest.path)
    path.write_text(path.read_text("utf-8").replace('title: "', 'title: "Edited ', 1), "utf-8")
    assert state.reload()
    after, fresh = state.site, _from_scratch(state)
    assert after is not None
    assert after.archives == fresh.archives and after.fingerprints == fresh.fingerprints
    listing = {page.spec.path for page in after.archives if any(a.path == oldest.path for a in page.entries)}
    assert listing and {name for name, print_ in after.fingerprints.items()
                        if before.fingerprints.get(name) != print_} >= listing
    touched = {page.current for page in after.archives if page.spec.path in listing}
    kept = {id(page) for page in before.archives}
    for page in after.archives:  # a feed that does not list the article keeps its very pages
        assert (id(page) in kept) == (page.current not in touched)


def _next_month(state: FeedState, seeds: Path) -> tuple[Article, datetime]:
    """Add a copy of the newest article dated in the next month, and reload: the newest and its new date."""
    assert state.site is not None
    newest = state.site.corpus.articles[0]
    later = newest.published_at.replace(day=1) + timedelta(days=40)
    text = Path(newest.path).read_text("utf-8").replace(newest.url, newest.url + "-next-month")
    text = re.sub(r"^publishedDateTime: .*$", f"publishedDateTime: {later:%Y-%m-%dT%H:%M:%SZ}", text, count=1,
                  flags=re.M)
    (seeds / "next-month.md").write_text(text, "utf-8")
    assert state.reload()
    return newest, later


def test_a_new_month_makes_every_archive_anew(seeds: Path) -> None:
    state = _builder(seeds)
    newest, later = _next_month(state, seeds)
    after, fresh = state.site, _from_scratch(state)
    assert after is not None and after.corpus.newest == later
    assert after.archives == fresh.archives and after.fingerprints == fresh.fingerprints
    month = f"{newest.published_at:%Y-%m}"
    assert any(page.spec.archive == month for page in after.archives)  # the month that just finished


def _count(state: FeedState, sql: str) -> int:
    return int(state.builder.store.db().execute(sql).fetchone()[0])


def test_the_store_keeps_its_last_versions_whole_and_nothing_they_do_not_list(seeds: Path) -> None:
    state = _builder(seeds)
    store = state.builder.store
    assert state.site is not None
    titles = []
    for round_ in range(5):
        article = state.site.corpus.articles[round_ % 2]
        _edit(Path(article.path), article.kind.value, round_ + 50)
        assert state.reload()
        titles.append(state.site.corpus.articles[round_ % 2].title)
    current = state.builder.version
    assert current is not None
    kept = range(current - KEEP_VERSIONS + 1, current + 1)
    assert [row[0] for row in store.db().execute("SELECT id FROM versions ORDER BY id")] == list(kept)
    etags, sources, rows = set(), set(), 0
    for version in kept:  # each kept version whole: every output's bytes and every live feed's data
        names = store.rows(version)
        hashes = store.source_hashes(version)
        assert len(hashes) == len(state.site.feeds) * len(state.site.formats)
        for name, row in names.items():
            found = store.output(version, name)
            assert found is not None and found[0] == row
            etags.add(row.etag)
        for name in hashes:
            assert store.source(version, name) is not None
        sources.update(hashes.values())
        rows += len(names)
    oldest = gzip.decompress(store.output(kept[0], "all.json")[1]).decode()  # type: ignore[index]
    assert titles[-3] in oldest and titles[-1] not in oldest  # what a request on that version still reads
    # Nothing the kept versions do not list: a row serves every version it is part of.
    assert _count(state, "SELECT count(*) FROM outputs") < rows / 2
    assert _count(state, "SELECT count(*) FROM bodies") == len(etags)
    assert _count(state, "SELECT count(*) FROM sources") == len(sources)


def test_bodies_of_an_abandoned_render_are_swept_with_the_next_version(seeds: Path) -> None:
    state = _builder(seeds)
    assert state.site is not None
    state.builder.store.add_bodies([("orphan", gzip.compress(b"never published"))])
    state.builder.abandon()
    article = state.site.corpus.articles[0]
    _edit(Path(article.path), article.kind.value, 3)
    assert state.reload()
    assert _count(state, "SELECT count(*) FROM bodies WHERE etag = 'orphan'") == 0


def test_the_front_page_shows_each_feeds_newest_article_after_an_edit_as_a_render_from_scratch_does(
        seeds: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = _builder(seeds)
    assert state.site is not None
    newest = state.site.corpus.articles[0]
    path = Path(newest.path)
    path.write_text(path.read_text("utf-8").replace('title: "', 'title: "Front & Co ', 1), "utf-8")
    assert state.reload()
    found = state.builder.store.output(state.builder.version, "index.html")  # type: ignore[arg-type]
    assert found is not None
    served = gzip.decompress(found[1])
    assert b"Front &amp; Co " in served
    monkeypatch.setattr(html_pages, "_ROWS", html_pages.FrontRows(8192))  # a process that kept no row
    assert _from_scratch(state).outputs["index.html"].body == served


def test_front_rows_keep_at_most_their_size_and_render_the_same(seeds: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = _builder(seeds)
    assert state.site is not None
    expected = _from_scratch(state).outputs["index.html"].body
    small = html_pages.FrontRows(3)
    monkeypatch.setattr(html_pages, "_ROWS", small)
    assert _from_scratch(state).outputs["index.html"].body == expected
    assert len(small) == 3


def test_a_new_month_moves_every_stored_feeds_archive_links(seeds: Path) -> None:
    # Filtered views are made from the stored feed: its prev-archive link must follow the live feed's
    # even when its articles did not change.
    state = _builder(seeds)
    _next_month(state, seeds)
    site, store, version = state.site, state.builder.store, state.builder.version
    assert site is not None and version is not None
    for feed in site.feeds:
        source = store.source(version, feed.spec.path + ".xml")
        assert source is not None
        assert (source.prev_archive, source.next_archive, source.complete) == (
            feed.prev_archive, feed.next_archive, feed.complete), feed.spec.path

"""RFC 5005 history: archives only for feeds beyond max_items (one page per month, chained, marked
fh:archive, cached for long); a feed that fits whole in its live document is marked fh:complete."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import feedparser
import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from feedpub.catalog.archives import month_name
from feedpub.cli import main
from feedpub.web import create_app

ATOM = "{http://www.w3.org/2005/Atom}"
FH = "{http://purl.org/syndication/history/1.0}"
BASE = "http://127.0.0.1:8000/feeds/"

ARTICLE = """\
title: "Item {n}"
publishedDateTime: {date}
webUrl: "https://example.com/{n}"
provider: {{name: Example, domain: example.com}}
topics: [AI]
"""
# Two in January, one in March, two in April 2021 (the newest month: not archived yet).
DATES = ["2021-01-05T10:00:00Z", "2021-01-20T10:00:00Z", "2021-03-02T10:00:00Z", "2021-04-01T10:00:00Z",
         "2021-04-09T10:00:00Z"]


@pytest.fixture
def built(write_article, tmp_path: Path) -> Path:
    for n, date in enumerate(DATES, 1):
        write_article(f"a{n}.md", ARTICLE.format(n=n, date=date))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["build", "--seeds", str(write_article.root), "--out", str(out),
                                       "--max-items", "2"])
    assert result.exit_code == 0, result.output
    return out


def links(path: Path) -> dict[str, str]:
    root = etree.parse(str(path)).getroot()
    found = root.findall(f"channel/{ATOM}link") if path.suffix == ".xml" else root.findall(f"{ATOM}link")
    return {link.get("rel"): link.get("href") for link in found if link.get("rel") != "alternate"}


def ids(path: Path) -> list[str]:
    return [entry.id for entry in feedparser.parse(path.read_bytes()).entries]


@pytest.mark.parametrize("base", ["ai", "providers/example.com"])
@pytest.mark.parametrize("suffix", [".atom", ".xml"])
def test_each_complete_month_has_a_chained_archive(built: Path, base: str, suffix: str) -> None:
    archive = built / base / "archive"
    assert sorted(p.name for p in archive.iterdir() if p.suffix == suffix) == [f"2021-01{suffix}", f"2021-03{suffix}"]
    january, march = archive / f"2021-01{suffix}", archive / f"2021-03{suffix}"
    assert ids(january) == ["https://example.com/2", "https://example.com/1"]  # every entry of the month
    assert ids(march) == ["https://example.com/3"]
    for page in (january, march):
        assert not feedparser.parse(page.read_bytes()).bozo
        root = etree.parse(str(page)).getroot()
        assert len(root.findall(f".//{FH}archive")) == 1
        assert links(page)["current"] == f"{BASE}{base}{suffix}"
        assert links(page)["self"] == f"{BASE}{base}/archive/{page.stem}{suffix}"
    assert "prev-archive" not in links(january)
    assert links(january)["next-archive"] == f"{BASE}{base}/archive/2021-03{suffix}"
    assert links(march)["prev-archive"] == f"{BASE}{base}/archive/2021-01{suffix}"
    assert "next-archive" not in links(march)
    live = built / f"{base}{suffix}"
    assert links(live)["prev-archive"] == f"{BASE}{base}/archive/2021-03{suffix}"
    assert not etree.parse(str(live)).getroot().findall(f".//{FH}archive")
    assert ids(live) == ["https://example.com/5", "https://example.com/4"]  # the live feed keeps max_items
    assert not etree.parse(str(live)).getroot().findall(f".//{FH}complete")


@pytest.mark.parametrize("base", ["ai", "providers/example.com"])
def test_every_entry_of_a_feed_beyond_max_items_is_in_the_live_feed_or_an_archive(built: Path, base: str) -> None:
    for suffix in (".atom", ".xml"):
        pages = [built / f"{base}{suffix}", *sorted((built / base / "archive").glob(f"*{suffix}"))]
        reachable = [entry for page in pages for entry in ids(page)]
        assert set(reachable) == {f"https://example.com/{n}" for n in range(1, len(DATES) + 1)}


def test_all_feed_and_json_have_no_archives(built: Path) -> None:
    assert not (built / "all").exists()
    assert not list(built.rglob("archive/*.json"))
    assert "prev-archive" not in links(built / "all.xml")
    assert "index" not in {p.name for p in (built / "ai" / "archive").iterdir()}
    kinds = {feed["kind"] for feed in json.loads((built / "index.json").read_text("utf-8"))["feeds"]}
    assert kinds == {"all", "topic", "provider"}  # archives are not listed as feeds


def archived_client(write_article) -> FlaskClient:  # type: ignore[no-untyped-def]
    """A test client of a server on DATES' articles, two per feed: every feed has archive pages."""
    for n, date in enumerate(DATES, 1):
        write_article(f"a{n}.md", ARTICLE.format(n=n, date=date))
    return create_app({"TESTING": True, "seeds_dir": str(write_article.root), "max_items": 2}).test_client()


def test_server_serves_archives_with_a_long_max_age(write_article) -> None:
    client = archived_client(write_article)
    response = client.get("/feeds/ai/archive/2021-01.atom")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    stale = "stale-while-revalidate=60, stale-if-error=86400"
    assert response.headers["Cache-Control"] == f"public, max-age=2592000, {stale}"
    assert client.get("/feeds/ai.atom").headers["Cache-Control"] == f"public, max-age=300, {stale}"
    assert client.get("/feeds/ai/archive/2021-04.atom").status_code == 404  # the current month is not archived
    assert client.get("/feeds/ai/archive/2021-01.json").status_code == 404


def test_archives_can_be_turned_off(write_article, tmp_path: Path) -> None:
    for n, date in enumerate(DATES, 1):
        write_article(f"a{n}.md", ARTICLE.format(n=n, date=date))
    out = tmp_path / "out"
    assert CliRunner().invoke(main, ["build", "--seeds", str(write_article.root), "--out", str(out),
                                     "--no-archives"]).exit_code == 0
    assert not list(out.rglob("archive"))
    assert "prev-archive" not in links(out / "ai.atom")


OFFSETS = st.builds(timezone, st.timedeltas(min_value=-timedelta(hours=23, minutes=59),
                                            max_value=timedelta(hours=23, minutes=59)))


@given(st.datetimes(min_value=datetime(1000, 1, 1), timezones=OFFSETS))
def test_month_name_is_strftime_year_month(moment: datetime) -> None:
    assert month_name(moment.year, moment.month) == moment.strftime("%Y-%m")


@given(st.lists(st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2030, 12, 31),
                             timezones=st.just(UTC)), max_size=40), st.booleans())
def test_articles_are_grouped_by_month_in_order_or_not(moments: list[datetime], newest_first: bool) -> None:
    from feedpub.catalog.archives import _by_month
    from feedpub.model import Article, Provider

    provider = Provider("Example", "example.com")
    if newest_first:
        moments = sorted(moments, reverse=True)
    articles = tuple(Article(f"{n}.md", f"https://example.com/{n}", "t", m, provider) for n, m in enumerate(moments))
    expected: dict[tuple[int, int], list[Article]] = {}
    for article in articles:
        expected.setdefault((article.published_at.year, article.published_at.month), []).append(article)
    assert _by_month(articles) == expected


def history_marks(body: bytes) -> list[str]:
    """The RFC 5005 markers (``complete``, ``archive``) of an RSS channel or Atom feed, in document order."""
    root = etree.fromstring(body)
    head = root.find("channel") if root.tag == "rss" else root
    return [etree.QName(child).localname for child in head if etree.QName(child).namespace == FH[1:-1]]


def build(seeds: Path, out: Path, *options: str) -> None:
    result = CliRunner().invoke(main, ["build", "--seeds", str(seeds), "--out", str(out), *options])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("base", ["ai", "providers/example.com", "all"])
@pytest.mark.parametrize("suffix", [".atom", ".xml"])
def test_a_feed_that_fits_in_its_live_document_is_complete_without_archives(
        write_article, tmp_path: Path, base: str, suffix: str) -> None:
    for n, date in enumerate(DATES, 1):
        write_article(f"a{n}.md", ARTICLE.format(n=n, date=date))
    out = tmp_path / "out"
    build(write_article.root, out, "--max-items", str(len(DATES)))
    live = out / f"{base}{suffix}"
    assert history_marks(live.read_bytes()) == ["complete"]
    assert not feedparser.parse(live.read_bytes()).bozo
    assert "prev-archive" not in links(live)
    assert not (out / base / "archive").exists() and not list(out.rglob("archive"))
    assert len(ids(live)) == len(DATES)
    assert b"complete" not in (out / f"{base}.json").read_bytes()  # JSON Feed has no such marker


@pytest.mark.parametrize("query", ["", "?limit=1", "?type=video", "?min_quality=0", "?limit=5&type=article"])
@pytest.mark.parametrize("suffix", [".atom", ".xml"])
def test_no_trimmed_or_filtered_view_of_a_complete_feed_says_it_is_complete(
        write_article, query: str, suffix: str) -> None:
    for n, date in enumerate(DATES, 1):
        write_article(f"a{n}.md", ARTICLE.format(n=n, date=date) + f"quality: {n}\n")
    client = create_app({"TESTING": True, "seeds_dir": str(write_article.root)}).test_client()
    response = client.get(f"/feeds/ai{suffix}{query}")
    assert response.status_code == 200
    assert not feedparser.parse(response.data).bozo
    assert history_marks(response.data) == ([] if query else ["complete"])


def test_the_static_build_adds_and_removes_archives_as_a_feed_outgrows_and_refits_max_items(
        write_article, tmp_path: Path) -> None:
    out = tmp_path / "out"
    for n in (4, 5):
        write_article(f"a{n}.md", ARTICLE.format(n=n, date=DATES[n - 1]))
    build(write_article.root, out, "--max-items", "3")
    assert history_marks((out / "ai.atom").read_bytes()) == ["complete"]
    assert not list(out.rglob("archive"))

    older = [write_article(f"a{n}.md", ARTICLE.format(n=n, date=DATES[n - 1])) for n in (1, 2, 3)]
    build(write_article.root, out, "--max-items", "3")
    assert history_marks((out / "ai.atom").read_bytes()) == []
    assert sorted(p.name for p in (out / "ai" / "archive").glob("*.atom")) == ["2021-01.atom", "2021-03.atom"]
    assert links(out / "ai.atom")["prev-archive"] == f"{BASE}ai/archive/2021-03.atom"

    for path in older:
        path.unlink()
    build(write_article.root, out, "--max-items", "3")
    assert history_marks((out / "ai.atom").read_bytes()) == ["complete"]
    assert "prev-archive" not in links(out / "ai.atom")
    assert not list((out / "ai").rglob("*.*")) and not list(out.rglob("archive/*"))
    manifest = json.loads((out / ".feedpub-manifest.json").read_text("utf-8"))["files"]
    assert not [name for name in manifest if "/archive/" in name]


def test_completeness_alone_makes_the_static_build_render_a_feed_again(write_article, tmp_path: Path) -> None:
    # An older article of the same (current) month changes neither the live entries nor any archive page:
    # only whether the live document still holds every entry.
    out = tmp_path / "out"
    for n in (4, 5):
        write_article(f"a{n}.md", ARTICLE.format(n=n, date=DATES[n - 1]))
    build(write_article.root, out, "--max-items", "2")
    assert history_marks((out / "ai.xml").read_bytes()) == ["complete"]
    older = write_article("a6.md", ARTICLE.format(n=6, date="2021-04-01T09:00:00Z"))
    build(write_article.root, out, "--max-items", "2")
    assert history_marks((out / "ai.xml").read_bytes()) == []
    assert ids(out / "ai.xml") == ["https://example.com/5", "https://example.com/4"]
    older.unlink()
    build(write_article.root, out, "--max-items", "2")
    assert history_marks((out / "ai.xml").read_bytes()) == ["complete"]

"""RFC 5005 archived feeds: one page per month, chained, marked fh:archive, cached for long."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import feedparser
import pytest
from click.testing import CliRunner
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


def test_all_feed_and_json_have_no_archives(built: Path) -> None:
    assert not (built / "all").exists()
    assert not list(built.rglob("archive/*.json"))
    assert "prev-archive" not in links(built / "all.xml")
    assert "index" not in {p.name for p in (built / "ai" / "archive").iterdir()}
    kinds = {feed["kind"] for feed in json.loads((built / "index.json").read_text("utf-8"))["feeds"]}
    assert kinds == {"all", "topic", "provider"}  # archives are not listed as feeds


def test_server_serves_archives_with_a_long_max_age(write_article) -> None:
    for n, date in enumerate(DATES, 1):
        write_article(f"a{n}.md", ARTICLE.format(n=n, date=date))
    client = create_app({"TESTING": True, "seeds_dir": str(write_article.root)}).test_client()
    response = client.get("/feeds/ai/archive/2021-01.atom")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    assert response.headers["Cache-Control"] == "public, max-age=2592000"
    assert client.get("/feeds/ai.atom").headers["Cache-Control"] == "public, max-age=300"
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

"""Every feed format, checked twice: structurally with lxml XPath and as a reader sees it with feedparser."""

from __future__ import annotations

import email.utils
import functools
import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import feedparser
import jsonschema
import lxml.html
import pytest
import yaml
from click.testing import CliRunner
from lxml import etree

from feedpub.cli import main
from feedpub.ingest.loader import load
from feedpub.render.site import Site, render_site
from feedpub.settings import Settings

from .conftest import FIXTURE_CORPUS

SITE_URL = "http://feeds.example.test"
FEEDS_URL = f"{SITE_URL}/feeds/"
NS = {
    "atom": "http://www.w3.org/2005/Atom",
    "media": "http://search.yahoo.com/mrss/",
    "dc": "http://purl.org/dc/elements/1.1/",
    "content": "http://purl.org/rss/1.0/modules/content/",
}
UTC = UTC
SUFFIXES = (".xml", ".atom", ".json")
WriteArticle = Callable[..., Path]

# The bundled seeds' feeds, by path under /feeds/ (without suffix) and how to pick their articles.
SEED_FEEDS: dict[str, Callable[[dict[str, Any]], bool]] = {
    "all": lambda a: True,
    "ai": lambda a: "AI" in a["topics"],
    "computer-vision": lambda a: "Computer Vision" in a["topics"],
    "aws-ai": lambda a: "AWS AI" in a["topics"],
    "natural-language-processing": lambda a: "Natural Language Processing" in a["topics"],
    "providers/wired.com": lambda a: a["provider"]["domain"] == "wired.com",
    "providers/thenextweb.com": lambda a: a["provider"]["domain"] == "thenextweb.com",
    "providers/courthousenews.com": lambda a: a["provider"]["domain"] == "courthousenews.com",
}


# -- helpers -----------------------------------------------------------------------------------------


_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def raw_front(path: Path) -> dict[str, Any]:
    """The front matter as plain YAML sees it (dates as datetimes): the expected values."""
    return _raw_front(path, path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=512)
def _raw_front(path: Path, _mtime: int) -> dict[str, Any]:
    text = path.read_text("utf-8-sig").replace("\r\n", "\n")
    data = yaml.load(text.split("---\n", 2)[1], Loader=_SafeLoader)
    assert isinstance(data, dict)
    return data


def as_utc(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def raw_seeds(root: Path) -> list[dict[str, Any]]:
    return [raw_front(path) for path in sorted(root.iterdir())]


def published(root: Path) -> list[dict[str, Any]]:
    """The published seeds, newest first, as the feeds must list them."""
    articles = [a for a in raw_seeds(root) if a.get("published", True)]
    return sorted(articles, key=lambda a: (-as_utc(a["publishedDateTime"]).timestamp(), a["webUrl"]))


def render(root: Path, **settings: Any) -> Site:
    options = {"site_url": SITE_URL, **settings}
    return render_site(load(root, Settings().max_file_bytes), Settings(**options))


def body(site: Site, name: str) -> bytes:
    output = site.outputs.get(name)
    assert output is not None, f"{name} is not an output"
    return output.body


def xml(site: Site, name: str) -> etree._Element:
    return etree.fromstring(body(site, name))


def parsed(site: Site, name: str) -> Any:
    result = feedparser.parse(body(site, name))
    assert not result.bozo, (name, result.get("bozo_exception"))
    return result


def jfeed(site: Site, name: str) -> dict[str, Any]:
    document = json.loads(body(site, name))
    assert isinstance(document, dict)
    return document


def rss_date(text: str) -> datetime:
    return email.utils.parsedate_to_datetime(text).astimezone(UTC)


def iso_date(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def html_links(fragment: str) -> list[tuple[str, str]]:
    """(attribute, URL) of every href/src/cite in an HTML fragment."""
    if not fragment.strip():
        return []
    root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    return [(name, value) for el in root.iter() if isinstance(el.tag, str)
            for name, value in el.attrib.items() if name in ("href", "src", "cite", "srcset", "poster")]


# Attributes that hold a URL in HTML (the pages must have no src at all, but any found is checked too).
HTML_URL_ATTRIBUTES = {"href", "src", "srcset", "cite", "poster", "action", "formaction", "data", "background",
                       "longdesc", "manifest", "ping", "usemap", "icon"}


def page_name(path: str) -> str:
    """The output name of the readable preview page of the feed at ``path`` (under /feeds/, less suffix)."""
    if path == "all" or path.startswith("providers/"):
        return f"{path}.html"
    return f"topics/{path}.html"


def html_document(data: bytes) -> lxml.html.HtmlElement:
    """A whole HTML page, parsed as a browser would; it must be an HTML5 document."""
    root = lxml.html.document_fromstring(data)
    assert root.getroottree().docinfo.doctype == "<!DOCTYPE html>"
    assert root.tag == "html"
    return root


def page_entries(root: lxml.html.HtmlElement) -> list[tuple[str, str]]:
    """(title, link) of each entry listed on a feed's page, in page order."""
    return [(a.text_content(), a.get("href")) for a in root.xpath("//ol[@class='entries']/li/h2/a")]


def is_absolute(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def all_urls(site: Site) -> Iterator[tuple[str, str, str]]:
    """(output, where, URL) of every URL in every output: attributes, URL elements, embedded HTML, JSON."""
    url_attributes = {"href", "src", "url", "uri", "xmlUrl", "htmlUrl"}
    url_elements = {"link", "id", "guid", "uri", "url", "icon", "logo", "docs", "comments"}
    html_elements = {"description", "encoded", "content", "summary", "subtitle"}
    for name, output in site.outputs.items():
        if name.endswith(".json"):
            yield from _json_urls(name, json.loads(output.body))
            continue
        if name.endswith(".html"):
            for element in html_document(output.body).iter():
                if isinstance(element.tag, str):
                    for attribute, value in element.attrib.items():
                        if attribute.lower() in HTML_URL_ATTRIBUTES:
                            yield name, f"{element.tag}@{attribute}", value
            continue
        for element in etree.fromstring(output.body).iter():
            if not isinstance(element.tag, str):
                continue
            local = etree.QName(element).localname
            for attribute, value in element.attrib.items():
                if etree.QName(attribute).localname in url_attributes:
                    yield name, f"{local}@{attribute}", value
            text = (element.text or "").strip()
            if local in url_elements and text:
                yield name, local, text
            if local in html_elements and "<" in text:
                for attribute, value in html_links(text):
                    yield name, f"{local} html @{attribute}", value


def _json_urls(name: str, value: Any, key: str = "") -> Iterator[tuple[str, str, str]]:
    url_keys = {"url", "id", "home_page_url", "feed_url", "icon", "favicon", "image", "banner_image",
                "external_url", "rss", "atom", "json", "next_url"}
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _json_urls(name, v, k)
    elif isinstance(value, list):
        for item in value:
            yield from _json_urls(name, item, key)
    elif isinstance(value, str):
        if key in url_keys:
            yield name, key, value
        elif key in ("content_html", "summary") and "<" in value:
            for attribute, url in html_links(value):
                yield name, f"{key} @{attribute}", url


def feed_paths(site: Site) -> list[str]:
    return [f.spec.path for f in site.feeds]


def rss_items(site: Site, path: str) -> list[etree._Element]:
    return xml(site, f"{path}.xml").findall("channel/item")


def atom_entries(site: Site, path: str) -> list[etree._Element]:
    return xml(site, f"{path}.atom").findall("atom:entry", NS)


@pytest.fixture
def site(seeds: Path) -> Site:
    return render(seeds)


# -- the static tree --------------------------------------------------------------------------------

EXPECTED_FILES = [
    "ai.xml", "ai.atom", "ai.json", "computer-vision.xml", "aws-ai.xml", "natural-language-processing.xml",
    "providers/wired.com.xml", "providers/thenextweb.com.atom", "all.xml", "all.atom", "all.json",
    "index.json", "index.opml", "index.html", "all.html", "topics/ai.html", "topics/natural-language-processing.html",
    "providers/wired.com.html",
]


def test_build_writes_the_expected_tree(seeds: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["build", "--seeds", str(seeds), "--out", str(out), "--site-url", SITE_URL])
    assert result.exit_code == 0, result.output
    for name in EXPECTED_FILES:
        assert (out / name).is_file(), name
    site = render(seeds)
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*")
                     if p.is_file() and not p.name.startswith("."))
    assert written == sorted(site.outputs)
    for name, output in site.outputs.items():
        assert (out / name).read_bytes() == output.body, name  # the build and the renderer agree byte for byte


def test_every_topic_and_provider_has_all_three_formats(site: Site, seeds: Path) -> None:
    raw = raw_seeds(seeds)
    # Three feed formats and a readable preview per feed; index.json, index.opml and the front page.
    assert len(site.outputs) == 4 * len(site.feeds) + 3
    providers = {a["provider"]["domain"] for a in raw}
    topics = {t for a in raw for t in a["topics"]}
    assert {f.spec.key for f in site.feeds if f.spec.kind.value == "provider"} == providers
    assert {f.spec.name for f in site.feeds if f.spec.kind.value == "topic"} == topics
    for path in feed_paths(site):
        for suffix in SUFFIXES:
            assert path + suffix in site.outputs
        assert page_name(path) in site.outputs
        assert site.outputs[page_name(path)].mimetype == "text/html; charset=utf-8"
    assert site.outputs["index.html"].mimetype == "text/html; charset=utf-8"


# -- entries: which, in which order, with which ids ------------------------------------------------------


@pytest.mark.parametrize("path", list(SEED_FEEDS))
def test_entries_ids_and_order_in_every_format(site: Site, seeds: Path, path: str) -> None:
    expected = [a["webUrl"] for a in published(seeds) if SEED_FEEDS[path](a)]

    rss = rss_items(site, path)
    assert [i.findtext("guid") for i in rss] == expected
    assert [i.find("guid").get("isPermaLink") for i in rss] == ["true"] * len(expected)
    assert [i.findtext("link") for i in rss] == expected

    atom = atom_entries(site, path)
    assert [e.findtext("atom:id", namespaces=NS) for e in atom] == expected
    assert [e.xpath("atom:link[@rel='alternate']/@href", namespaces=NS) for e in atom] == [[u] for u in expected]

    items = jfeed(site, f"{path}.json")["items"]
    assert [i["id"] for i in items] == expected
    assert [i["url"] for i in items] == expected

    for suffix in (".xml", ".atom"):
        reader = parsed(site, path + suffix)
        assert [e.id for e in reader.entries] == expected
        assert [e.link for e in reader.entries] == expected

    # The readable page lists the same entries in the same order, with the same titles.
    page = page_entries(html_document(body(site, page_name(path))))
    assert [link for _, link in page] == expected
    assert [title for title, _ in page] == [i["title"] for i in items]


def test_only_the_published_seeds_appear(site: Site, seeds: Path) -> None:
    raw = raw_seeds(seeds)
    live = [a for a in raw if a.get("published", True)]
    hidden = [a for a in raw if not a.get("published", True)]
    assert len(live) == 2 and len(hidden) == 3
    assert [i["title"] for i in jfeed(site, "all.json")["items"]] == [a["title"] for a in published(seeds)]
    for name, output in site.outputs.items():
        for article in hidden:
            assert article["webUrl"].encode() not in output.body, name
            assert article["title"].encode() not in output.body, name


def test_empty_feeds_are_valid(site: Site) -> None:
    for path in ("natural-language-processing", "providers/courthousenews.com", "providers/dailydot.com"):
        assert rss_items(site, path) == []
        assert atom_entries(site, path) == []
        assert jfeed(site, f"{path}.json")["items"] == []
        for suffix in (".xml", ".atom"):
            reader = parsed(site, path + suffix)
            assert reader.entries == []
            assert reader.feed.title.endswith(
                ("Natural Language Processing", "Courthouse News Service", "The Daily Dot"))


def test_ties_are_ordered_by_url(write_article: WriteArticle) -> None:
    for name, url in (("1.md", "https://t.example/c"), ("2.md", "https://t.example/a"), ("3.md", "https://t.example/b")):
        write_article(name, f"title: {name}\nwebUrl: {url}\npublishedDateTime: 2020-01-01T00:00:00Z\n"
                            "provider: {name: T, domain: t.example}\ntopics: [Tie]")
    site = render(write_article.root)  # type: ignore[attr-defined]
    expected = ["https://t.example/a", "https://t.example/b", "https://t.example/c"]
    for path in ("all", "tie", "providers/t.example"):
        assert [i.findtext("guid") for i in rss_items(site, path)] == expected
        assert [e.id for e in parsed(site, f"{path}.atom").entries] == expected
        assert [i["id"] for i in jfeed(site, f"{path}.json")["items"]] == expected


# -- entry details ---------------------------------------------------------------------------------------


def test_entry_fields_in_rss(site: Site, seeds: Path) -> None:
    for article, item in zip(published(seeds), rss_items(site, "all"), strict=True):
        assert item.findtext("title") == article["title"]
        assert item.findtext("description") == article["excerpt"]
        assert rss_date(item.findtext("pubDate")) == as_utc(article["publishedDateTime"])
        assert item.xpath("dc:creator/text()", namespaces=NS) == [article["provider"]["name"]]
        assert item.xpath("category/text()") == article["topics"]
        lead = article["images"][0]
        for tag in ("content", "thumbnail"):
            [media] = item.findall(f"media:{tag}", NS)
            assert (media.get("url"), media.get("width"), media.get("height")) == (
                lead["url"], str(lead["width"]), str(lead["height"]))


def test_entry_fields_as_feedparser_reads_rss(site: Site, seeds: Path) -> None:
    reader = parsed(site, "all.xml")
    assert reader.version == "rss20"
    for article, entry in zip(published(seeds), reader.entries, strict=True):
        assert entry.title == article["title"]
        assert entry.author == article["provider"]["name"]
        assert [t.term for t in entry.tags] == article["topics"]
        assert datetime(*entry.published_parsed[:6], tzinfo=UTC) == as_utc(article["publishedDateTime"])
        assert entry.media_content[0]["url"] == article["images"][0]["url"]
        assert entry.media_thumbnail[0]["width"] == str(article["images"][0]["width"])


def test_entry_fields_in_atom(site: Site, seeds: Path) -> None:
    for article, entry in zip(published(seeds), atom_entries(site, "all"), strict=True):
        date = as_utc(article["publishedDateTime"])
        assert entry.findtext("atom:title", namespaces=NS) == article["title"]
        assert entry.findtext("atom:summary", namespaces=NS) == article["excerpt"]
        assert iso_date(entry.findtext("atom:published", namespaces=NS)) == date
        assert iso_date(entry.findtext("atom:updated", namespaces=NS)) == date
        assert entry.findtext("atom:author/atom:name", namespaces=NS) == article["provider"]["name"]
        assert entry.findtext("atom:author/atom:uri", namespaces=NS) == f"https://{article['provider']['domain']}/"
        assert entry.xpath("atom:category/@term", namespaces=NS) == article["topics"]
        assert entry.find("atom:content", NS).get("type") == "html"
        [media] = entry.findall("media:content", NS)
        assert media.get("url") == article["images"][0]["url"]
        assert media.get("width") == str(article["images"][0]["width"])

    reader = parsed(site, "all.atom")
    assert reader.version == "atom10"
    for article, entry in zip(published(seeds), reader.entries, strict=True):
        assert entry.author_detail.name == article["provider"]["name"]
        assert entry.author_detail.href == f"https://{article['provider']['domain']}/"
        assert [t.term for t in entry.tags] == article["topics"]
        assert entry.summary == article["excerpt"]


def test_entry_fields_in_json(site: Site, seeds: Path) -> None:
    document = jfeed(site, "all.json")
    assert document["version"] == "https://jsonfeed.org/version/1.1"
    for article, item in zip(published(seeds), document["items"], strict=True):
        date = as_utc(article["publishedDateTime"])
        assert item["title"] == article["title"]
        assert item["summary"] == article["excerpt"]
        assert iso_date(item["date_published"]) == date
        assert iso_date(item["date_modified"]) == date
        author = {"name": article["provider"]["name"], "url": f"https://{article['provider']['domain']}/"}
        assert item["authors"] == [author]
        assert item["tags"] == article["topics"]
        assert item["image"] == article["images"][0]["url"]


# -- related coverage, in all three forms ---------------------------------------------------------------


def expected_related(article: dict[str, Any]) -> list[dict[str, Any]]:
    return article.get("related", [])


def test_related_links_in_atom(site: Site, seeds: Path) -> None:
    for article, entry in zip(published(seeds), atom_entries(site, "all"), strict=True):
        related = entry.xpath("atom:link[@rel='related']", namespaces=NS)
        assert [(r.get("href"), r.get("title")) for r in related] == [
            (r["webUrl"], r["title"]) for r in expected_related(article)]
        # feedgen alone writes links without rel; every entry link must carry one.
        assert all(link.get("rel") for link in entry.findall("atom:link", NS))
    for article, entry in zip(published(seeds), parsed(site, "all.atom").entries, strict=True):
        assert [(link.href, link.title) for link in entry.links if link.rel == "related"] == [
            (r["webUrl"], r["title"]) for r in expected_related(article)]


def test_related_links_in_rss(site: Site, seeds: Path) -> None:
    for article, item in zip(published(seeds), rss_items(site, "all"), strict=True):
        related = item.xpath("atom:link[@rel='related']", namespaces=NS)
        assert [(r.get("href"), r.get("title")) for r in related] == [
            (r["webUrl"], r["title"]) for r in expected_related(article)]
    for article, entry in zip(published(seeds), parsed(site, "all.xml").entries, strict=True):
        hrefs = [link.href for link in entry.links if link.rel == "related"]
        assert hrefs == [r["webUrl"] for r in expected_related(article)]


def test_related_items_in_json(site: Site, seeds: Path) -> None:
    for article, item in zip(published(seeds), jfeed(site, "all.json")["items"], strict=True):
        expected = [
            {
                "title": r["title"],
                "url": r["webUrl"],
                "provider": r["provider"]["name"],
                "date_published": as_utc(r["publishedDateTime"]).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            for r in expected_related(article)
        ]
        # JSON Feed extensions are objects: {"about": <what this is>, "items": [...]}.
        assert item["_related"]["about"].startswith("https://")
        assert item["_related"]["items"] == expected


def related_coverage(html: str) -> list[tuple[str, str, str]]:
    """(href, title, rest of the line) of each item of the "Related coverage" list."""
    root = lxml.html.fragment_fromstring(html, create_parent="div")
    [heading] = [h for h in root.iter("h3") if h.text_content() == "Related coverage"]
    listing = heading.getnext()
    assert listing is not None and listing.tag == "ul"
    items = []
    for li in listing.findall("li"):
        [a] = li.findall("a")
        items.append((a.get("href"), a.text_content(), li.text_content()[len(a.text_content()):]))
    return items


def test_related_coverage_html_in_every_format(site: Site, seeds: Path) -> None:
    contents = {
        "rss": [i.findtext("content:encoded", namespaces=NS) for i in rss_items(site, "all")],
        "atom": [e.findtext("atom:content", namespaces=NS) for e in atom_entries(site, "all")],
        "json": [i["content_html"] for i in jfeed(site, "all.json")["items"]],
        "feedparser": [e.content[0].value for e in parsed(site, "all.atom").entries],
    }
    articles = published(seeds)
    for form, htmls in contents.items():
        assert len(htmls) == len(articles), form
        for article, html in zip(articles, htmls, strict=True):
            listed = related_coverage(html)
            related = expected_related(article)
            assert [(href, title) for href, title, _ in listed] == [(r["webUrl"], r["title"]) for r in related], form
            for (_, _, details), r in zip(listed, related, strict=True):
                assert r["provider"]["name"] in details
                assert as_utc(r["publishedDateTime"]).strftime("%Y-%m-%d") in details


def test_entry_without_related_has_no_related_section(write_article: WriteArticle) -> None:
    write_article("a.md", "title: Alone\nwebUrl: https://a.example/1\npublishedDateTime: 2020-01-01T00:00:00Z\n"
                          "provider: {name: A, domain: a.example}")
    site = render(write_article.root)  # type: ignore[attr-defined]
    [item] = jfeed(site, "all.json")["items"]
    assert "_related" not in item
    assert "Related coverage" not in item["content_html"]
    assert rss_items(site, "all")[0].xpath("atom:link", namespaces=NS) == []


# -- feed level -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", list(SEED_FEEDS))
def test_self_links_are_the_feeds_own_absolute_urls(site: Site, path: str) -> None:
    # The feed's web page (RSS <link>, Atom rel="alternate", JSON Feed home_page_url) is its readable preview.
    page = f"{FEEDS_URL}{page_name(path)}"
    assert page_name(path) in site.outputs
    rss = xml(site, f"{path}.xml")
    assert rss.xpath("channel/atom:link[@rel='self']/@href", namespaces=NS) == [f"{FEEDS_URL}{path}.xml"]
    assert rss.findtext("channel/link") == page
    atom = xml(site, f"{path}.atom")
    assert atom.xpath("atom:link[@rel='self']/@href", namespaces=NS) == [f"{FEEDS_URL}{path}.atom"]
    assert atom.xpath("atom:link[@rel='alternate']/@href", namespaces=NS) == [page]
    assert atom.xpath("atom:link[@rel='alternate']/@type", namespaces=NS) == ["text/html"]
    assert atom.findtext("atom:id", namespaces=NS) == f"{FEEDS_URL}{path}.atom"
    assert jfeed(site, f"{path}.json")["feed_url"] == f"{FEEDS_URL}{path}.json"
    assert jfeed(site, f"{path}.json")["home_page_url"] == page
    for suffix in (".xml", ".atom"):
        reader = parsed(site, path + suffix).feed
        assert [link.href for link in reader.links if link.rel == "self"] == [f"{FEEDS_URL}{path}{suffix}"]
        assert reader.link == page


def test_feed_titles_description_language_generator(site: Site) -> None:
    rss = xml(site, "ai.xml")
    assert rss.findtext("channel/title") == "feedpub – AI"
    assert rss.findtext("channel/description")
    assert rss.findtext("channel/language") == "en"
    assert rss.findtext("channel/generator") == "feedpub"
    atom = xml(site, "providers/wired.com.atom")
    assert atom.findtext("atom:title", namespaces=NS) == "feedpub – Wired"
    assert atom.get("{http://www.w3.org/XML/1998/namespace}lang") == "en"
    assert atom.findtext("atom:generator", namespaces=NS) == "feedpub"
    document = jfeed(site, "all.json")
    assert document["title"] == "feedpub – All articles"
    assert document["language"] == "en"
    assert document["home_page_url"] == f"{FEEDS_URL}all.html"


@pytest.mark.parametrize("path", list(SEED_FEEDS))
def test_updated_is_the_newest_entry_date(site: Site, seeds: Path, path: str) -> None:
    entries = [a for a in published(seeds) if SEED_FEEDS[path](a)]
    corpus_newest = as_utc(published(seeds)[0]["publishedDateTime"])
    expected = as_utc(entries[0]["publishedDateTime"]) if entries else corpus_newest
    assert rss_date(xml(site, f"{path}.xml").findtext("channel/lastBuildDate")) == expected
    assert iso_date(xml(site, f"{path}.atom").findtext("atom:updated", namespaces=NS)) == expected
    [listed] = [f for f in jfeed(site, "index.json")["feeds"] if f["urls"]["rss"] == f"{FEEDS_URL}{path}.xml"]
    assert iso_date(listed["updated"]) == expected
    assert site.outputs[f"{path}.xml"].last_modified == expected


def test_empty_feed_dates_never_depend_on_now(seeds: Path) -> None:
    first = render(seeds)
    second = render(seeds)
    assert body(first, "natural-language-processing.atom") == body(second, "natural-language-processing.atom")
    updated = iso_date(xml(first, "natural-language-processing.atom").findtext("atom:updated", namespaces=NS))
    assert updated.year == 2020


@pytest.mark.parametrize(("max_age", "ttl"), [(300, "5"), (301, "6"), (60, "1"), (59, "1"), (3600, "60")])
def test_rss_ttl_is_max_age_in_minutes_rounded_up(seeds: Path, max_age: int, ttl: str) -> None:
    site = render(seeds, max_age=max_age)
    for path in feed_paths(site):
        assert xml(site, f"{path}.xml").findtext("channel/ttl") == ttl
    assert parsed(site, "all.xml").feed.ttl == ttl


def test_default_ttl_is_five_minutes(site: Site) -> None:
    assert Settings().max_age == 300
    assert xml(site, "all.xml").findtext("channel/ttl") == "5"


def test_provider_logo_is_resolved_against_the_site_url(site: Site, seeds: Path) -> None:
    logo = raw_front(seeds / "000_cea38546ddfede18.txt")["provider"]["images"][0]
    assert logo["url"].startswith("/assets/")
    expected = SITE_URL + logo["url"]
    rss = xml(site, "providers/thenextweb.com.xml")
    assert rss.findtext("channel/image/url") == expected
    assert rss.findtext("channel/image/width") == str(logo["width"])
    assert rss.findtext("channel/image/link") == rss.findtext("channel/link") == (
        f"{FEEDS_URL}providers/thenextweb.com.html")
    atom = xml(site, "providers/thenextweb.com.atom")
    assert atom.findtext("atom:icon", namespaces=NS) == expected
    assert atom.findtext("atom:logo", namespaces=NS) == expected
    assert jfeed(site, "providers/thenextweb.com.json")["icon"] == expected
    assert parsed(site, "providers/thenextweb.com.atom").feed.icon == expected
    # Topic feeds and providers without a logo have none.
    assert xml(site, "ai.xml").find("channel/image") is None
    assert "icon" not in jfeed(site, "providers/courthousenews.com.json")


def test_provider_logo_follows_the_configured_site_url(seeds: Path) -> None:
    site = render(seeds, site_url="https://news.example.org")
    assert jfeed(site, "providers/wired.com.json")["icon"] == (
        "https://news.example.org/assets/images/organizations/wired.com-50x50.jpg")


def test_no_relative_url_anywhere(site: Site) -> None:
    found = list(all_urls(site))
    assert len(found) > 100
    relative = [(name, where, url) for name, where, url in found if not is_absolute(url)]
    assert relative == []
    # The readable pages are scanned too: every one of them links somewhere.
    pages = {name for name in site.outputs if name.endswith(".html")}
    assert len(pages) == len(site.feeds) + 1
    assert {name for name, _, _ in found if name.endswith(".html")} == pages


def test_relative_urls_in_article_data_are_resolved_or_dropped(write_article: WriteArticle) -> None:
    featured = ('<p><a href="/local/page">site</a> <a href="page.html">doc</a> <img src="img/x.png">'
                '<img src="//cdn.example.com/x.png"></p><iframe src="/embed/1"></iframe>')
    write_article(
        "a.md",
        yaml.safe_dump({
            "title": "Relative", "webUrl": "https://r.example/1", "publishedDateTime": "2020-01-01T00:00:00Z",
            "provider": {"name": "R", "domain": "r.example", "images": [{"url": "/logo.png"}]},
            "images": [{"url": "relative/lead.jpg"}, {"url": "/lead.jpg", "width": 10, "height": 10}],
            "featuredContent": featured,
        }),
    )
    site = render(write_article.root)  # type: ignore[attr-defined]
    assert [u for _, _, u in all_urls(site) if not is_absolute(u)] == []
    [item] = jfeed(site, "all.json")["items"]
    assert item["image"] == f"{SITE_URL}/lead.jpg"
    links = {url: attr for attr, url in html_links(item["content_html"])}
    assert f"{SITE_URL}/local/page" in links
    assert f"{SITE_URL}/embed/1" in links
    assert jfeed(site, "providers/r.example.json")["icon"] == f"{SITE_URL}/logo.png"


# -- index.json and index.opml -------------------------------------------------------------------------

INDEX_SCHEMA = {
    "type": "object",
    "required": ["feeds"],
    "properties": {
        "feeds": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["kind", "name", "slug", "entries", "updated", "urls"],
                "properties": {
                    "kind": {"enum": ["all", "topic", "provider"]},
                    "name": {"type": "string", "minLength": 1},
                    "slug": {"type": "string", "pattern": r"^[a-z0-9][a-z0-9.-]*$"},
                    "entries": {"type": "integer", "minimum": 0},
                    "updated": {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"},
                    "urls": {
                        "type": "object",
                        "required": ["rss", "atom", "json"],
                        "properties": {k: {"type": "string", "pattern": "^https?://"} for k in ("rss", "atom", "json")},
                    },
                },
            },
        }
    },
}


def test_index_json_shape(site: Site, seeds: Path) -> None:
    index = jfeed(site, "index.json")
    jsonschema.validate(index, INDEX_SCHEMA)
    feeds = index["feeds"]
    assert next(f["kind"] for f in feeds) == "all"
    assert sorted({f["kind"] for f in feeds}) == ["all", "provider", "topic"]
    by_slug = {f["slug"]: f for f in feeds}
    assert len(by_slug) == len(feeds)
    ai = by_slug["ai"]
    assert (ai["kind"], ai["name"], ai["entries"], ai["updated"]) == ("topic", "AI", 2, "2020-01-31T22:41:00Z")
    assert ai["urls"] == {"rss": f"{FEEDS_URL}ai.xml", "atom": f"{FEEDS_URL}ai.atom", "json": f"{FEEDS_URL}ai.json"}
    wired = by_slug["wired.com"]
    assert (wired["kind"], wired["name"], wired["entries"]) == ("provider", "Wired", 1)
    assert wired["urls"]["atom"] == f"{FEEDS_URL}providers/wired.com.atom"
    raw = raw_seeds(seeds)
    providers = {a["provider"]["domain"]: a["provider"]["name"] for a in raw}
    assert {f["slug"]: f["name"] for f in feeds if f["kind"] == "provider"} == providers
    assert {f["name"] for f in feeds if f["kind"] == "topic"} == {t for a in raw for t in a["topics"]}


def test_index_json_matches_the_feeds(site: Site) -> None:
    listed = set()
    for entry in jfeed(site, "index.json")["feeds"]:
        for fmt, suffix in (("rss", ".xml"), ("atom", ".atom"), ("json", ".json")):
            url = entry["urls"][fmt]
            assert url.startswith(FEEDS_URL) and url.endswith(suffix)
            name = url[len(FEEDS_URL):]
            assert name in site.outputs
            listed.add(name)
        json_feed = jfeed(site, entry["urls"]["json"][len(FEEDS_URL):])
        assert entry["entries"] == len(json_feed["items"])
        if json_feed["items"]:
            assert entry["updated"] == json_feed["items"][0]["date_published"]
    assert listed == {n for n in site.outputs if not n.startswith("index.") and not n.endswith(".html")}
    # Besides the three formats, each feed has exactly one readable page; the front page is index.html.
    pages = {n for n in site.outputs if n.endswith(".html")}
    assert pages == {page_name(f.spec.path) for f in site.feeds} | {"index.html"}


def test_opml_lists_every_feed(site: Site) -> None:
    opml = xml(site, "index.opml")
    assert opml.tag == "opml" and opml.get("version") == "2.0"
    assert opml.findtext("head/title")
    assert rss_date(opml.findtext("head/dateCreated"))
    outlines = opml.xpath("//outline[@xmlUrl]")
    rss_urls = [f["urls"]["rss"] for f in jfeed(site, "index.json")["feeds"]]
    assert sorted(o.get("xmlUrl") for o in outlines) == sorted(rss_urls)
    assert all(o.get("type") == "rss" and o.get("text") and o.get("htmlUrl") for o in outlines)
    # Each outline's htmlUrl is that feed's readable page, the RSS channel <link>.
    for outline in outlines:
        path = outline.get("xmlUrl")[len(FEEDS_URL):].removesuffix(".xml")
        assert outline.get("htmlUrl") == f"{FEEDS_URL}{page_name(path)}"
        assert outline.get("htmlUrl") == xml(site, f"{path}.xml").findtext("channel/link")
    for url in rss_urls:
        assert parsed(site, url[len(FEEDS_URL):]).version == "rss20"


# -- never leaked ---------------------------------------------------------------------------------------


def test_secured_quality_and_heat_never_appear(site: Site, seeds: Path) -> None:
    raw = raw_seeds(seeds)
    secrets = [a["secured"] for a in raw]
    assert all(len(s) > 40 for s in secrets)
    for name, output in site.outputs.items():
        text = output.body
        assert b"secured" not in text.lower(), name
        for secret in secrets:
            assert secret.encode() not in text, name
            for part in secret.split(";"):
                assert part[:24].encode() not in text, name
        if name.endswith(".json"):
            assert not {"secured", "quality", "heat"} & set(_json_keys(json.loads(text))), name
        else:
            root = html_document(text) if name.endswith(".html") else etree.fromstring(text)
            tags = {etree.QName(e).localname for e in root.iter() if isinstance(e.tag, str)}
            attributes = {a.lower() for e in root.iter() if isinstance(e.tag, str) for a in e.attrib}
            assert not (tags | attributes) & {"secured", "quality", "heat"}, name
            assert b"quality" not in text and b"heat" not in text, name


def _json_keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _json_keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from _json_keys(item)


# -- slugs and collisions -------------------------------------------------------------------------------


def topic_article(index: int, topic: str, date: str = "2020-01-01T00:00:00Z") -> str:
    return yaml.safe_dump({
        "title": f"About {topic}", "webUrl": f"https://s.example/{index}", "publishedDateTime": date,
        "provider": {"name": "S", "domain": "s.example"}, "topics": [topic],
    }, allow_unicode=True)


@pytest.mark.parametrize(
    ("topic", "slug"),
    [("AI", "ai"), ("Natural Language Processing", "natural-language-processing"), ("AWS AI", "aws-ai"),
     ("Réseaux de neurones", "reseaux-de-neurones"), ("C++ & Rust!", "c-rust"),
     ("  Deep   Learning ", "deep-learning")],
)
def test_topic_slugs(write_article: WriteArticle, topic: str, slug: str) -> None:
    write_article("a.md", topic_article(0, topic))
    site = render(write_article.root)  # type: ignore[attr-defined]
    for suffix in SUFFIXES:
        assert f"{slug}{suffix}" in site.outputs
    assert [e.title for e in parsed(site, f"{slug}.xml").entries] == [f"About {topic.strip()}".replace("   ", " ")]


COLLIDING = ["All", "all", "Index", "INDEX", "providers", "Topics", "AI", "ai", "A I", "Machine Learning",
             "machine-learning", "machine learning!"]


def test_colliding_topics_never_overwrite_another_feed(write_article: WriteArticle) -> None:
    for index, topic in enumerate(COLLIDING):
        write_article(f"{index:02}.md", topic_article(index, topic, f"2020-01-{index + 1:02}T00:00:00Z"))
    site = render(write_article.root)  # type: ignore[attr-defined]

    topic_feeds = [f for f in site.feeds if f.spec.kind.value == "topic"]
    assert sorted(f.spec.name for f in topic_feeds) == sorted(COLLIDING)
    paths = [f.spec.path for f in site.feeds]
    assert len(paths) == len(set(paths))
    # Three feed formats and a readable preview per feed; index.json, index.opml and the front page.
    assert len(site.outputs) == 4 * len(site.feeds) + 3
    assert not {"all", "index", "topics"} & {f.spec.slug for f in topic_feeds}
    assert all("/" not in f.spec.path for f in topic_feeds)
    # Each topic's feed holds exactly its own article.
    for feed in topic_feeds:
        assert [e.title for e in parsed(site, f"{feed.spec.path}.atom").entries] == [f"About {feed.spec.name}"]
    # The reserved files are still what they should be.
    assert len(parsed(site, "all.xml").entries) == len(COLLIDING)
    assert len(jfeed(site, "all.json")["items"]) == len(COLLIDING)
    assert "feeds" in jfeed(site, "index.json")
    assert [p for p in site.outputs if p.startswith("providers/")] == [
        *(f"providers/s.example{s}" for s in SUFFIXES), "providers/s.example.html"]
    # One readable page per topic, none overwriting another nor the front page.
    topic_pages = [p for p in site.outputs if p.startswith("topics/")]
    assert sorted(topic_pages) == sorted(f"topics/{f.spec.path}.html" for f in topic_feeds)
    for feed in topic_feeds:
        page = html_document(body(site, f"topics/{feed.spec.path}.html"))
        assert [title for title, _ in page_entries(page)] == [f"About {feed.spec.name}"]
    assert html_document(body(site, "index.html")).findtext(".//title") == "feedpub"
    assert site.notes  # every renamed topic is reported


def test_hashed_slug_owned_by_another_topic_is_not_overwritten(write_article: WriteArticle) -> None:
    import hashlib

    digest = hashlib.sha1(b"ai").hexdigest()[:6]
    topics = ["AI", "ai", f"AI {digest}"]  # 'ai' would fall back to ai-<digest>, the slug of the third
    for index, topic in enumerate(topics):
        write_article(f"{index}.md", topic_article(index, topic))
    site = render(write_article.root)  # type: ignore[attr-defined]
    slugs = [f.spec.slug for f in site.feeds if f.spec.kind.value == "topic"]
    assert len(slugs) == len(set(slugs)) == 3
    for feed in site.feeds[1:]:
        if feed.spec.kind.value == "topic":
            assert [e["title"] for e in jfeed(site, f"{feed.spec.path}.json")["items"]] == [f"About {feed.spec.name}"]


def test_topic_slugs_are_stable_when_an_unrelated_topic_appears(write_article: WriteArticle) -> None:
    write_article("0.md", topic_article(0, "Machine Learning"))
    before = {f.spec.name: f.spec.path for f in render(write_article.root).feeds}  # type: ignore[attr-defined]
    write_article("1.md", topic_article(1, "Zebra Crossing"))
    after = {f.spec.name: f.spec.path for f in render(write_article.root).feeds}  # type: ignore[attr-defined]
    assert {k: after[k] for k in before} == before


# -- max_items -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("max_items", [1, 2, 3])
def test_max_items_keeps_the_newest(write_article: WriteArticle, max_items: int) -> None:
    for day in range(1, 6):
        write_article(f"{day}.md", topic_article(day, "Busy", f"2020-01-0{day}T00:00:00Z"))
    site = render(write_article.root, max_items=max_items)  # type: ignore[attr-defined]
    newest = [f"https://s.example/{day}" for day in range(5, 5 - max_items, -1)]
    for path in ("all", "busy", "providers/s.example"):
        assert [e.id for e in parsed(site, f"{path}.atom").entries] == newest
        assert [i.findtext("guid") for i in rss_items(site, path)] == newest
        assert [i["id"] for i in jfeed(site, f"{path}.json")["items"]] == newest
    assert {f["entries"] for f in jfeed(site, "index.json")["feeds"]} == {max_items}


def test_default_max_items_is_50(write_article: WriteArticle) -> None:
    for index in range(55):
        date = f"2020-02-{index % 28 + 1:02}T{index % 24:02}:00:00Z"
        write_article(f"{index:02}.md", topic_article(index, "Many", date))
    site = render(write_article.root)  # type: ignore[attr-defined]
    assert len(parsed(site, "many.xml").entries) == 50
    assert len(jfeed(site, "all.json")["items"]) == 50


# -- determinism -----------------------------------------------------------------------------------------


def test_rendering_is_deterministic(seeds: Path) -> None:
    first, second = render(seeds), render(seeds)
    assert first.outputs.keys() == second.outputs.keys()
    for name in first.outputs:
        assert body(first, name) == body(second, name), name


def test_builds_into_two_directories_are_identical(seeds: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    for out in ("one", "two"):
        result = runner.invoke(main, ["build", "--seeds", str(seeds), "--out", str(tmp_path / out)])
        assert result.exit_code == 0, result.output
    one = {p.relative_to(tmp_path / "one"): p.read_bytes() for p in (tmp_path / "one").rglob("*") if p.is_file()}
    two = {p.relative_to(tmp_path / "two"): p.read_bytes() for p in (tmp_path / "two").rglob("*") if p.is_file()}
    assert one == two


def test_adding_an_unrelated_older_article_changes_no_other_feed(seeds: Path) -> None:
    before = render(seeds)
    (seeds / "zz-new.md").write_text("---\n" + yaml.safe_dump({
        "title": "Unrelated", "webUrl": "https://zebra.example/1", "publishedDateTime": "2019-01-01T00:00:00Z",
        "provider": {"name": "Zebra", "domain": "zebra.example"}, "topics": ["Zebras"],
    }) + "---\n", encoding="utf-8")
    after = render(seeds)
    # New: the two new feeds and their pages; no archives: each holds its one entry (RFC 5005 complete).
    assert set(after.outputs) - set(before.outputs) == {
        *(f"{p}{s}" for p in ("zebras", "providers/zebra.example") for s in SUFFIXES),
        "topics/zebras.html", "providers/zebra.example.html"}
    changed = {name for name in before.outputs if body(before, name) != body(after, name)}
    # The all feed and its page gain the entry; the indexes and the front page gain the two new feeds.
    assert changed == {"all.xml", "all.atom", "all.json", "all.html", "index.json", "index.opml", "index.html"}
    old_ids = [i["id"] for i in jfeed(before, "all.json")["items"]]
    assert [i["id"] for i in jfeed(after, "all.json")["items"]] == [*old_ids, "https://zebra.example/1"]


# -- hostile text -----------------------------------------------------------------------------------------


def test_illegal_xml_characters_in_a_title_are_removed(write_article: WriteArticle) -> None:
    write_article(
        "a.md",
        'title: "Bad\\x01\\x08\\x0b\\x0c\\x1f\\x7f\\ufffe title"\nexcerpt: "Ex\\x02cerpt"\n'
        "webUrl: https://c.example/1\npublishedDateTime: 2020-01-01T00:00:00Z\n"
        'provider: {name: "Ctrl\\x03 Co", domain: c.example}\ntopics: ["Top\\x04ic"]',
    )
    site = render(write_article.root)  # type: ignore[attr-defined]
    for name in site.outputs:
        if name.endswith(".html"):
            # HTML forbids the same control characters (and noncharacters): none reaches a page.
            text = body(site, name).decode("utf-8")
            assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]", text), name
            html_document(body(site, name))
        elif not name.endswith(".json"):
            etree.fromstring(body(site, name))  # lxml refuses illegal characters
    for suffix in (".xml", ".atom"):
        [entry] = parsed(site, f"all{suffix}").entries
        assert entry.title == "Bad title"
    [item] = jfeed(site, "all.json")["items"]
    assert (item["title"], item["summary"], item["tags"], item["authors"][0]["name"]) == (
        "Bad title", "Excerpt", ["Topic"], "Ctrl Co")
    assert "topic.xml" in site.outputs
    page = html_document(body(site, "all.html"))
    assert [title for title, _ in page_entries(page)] == ["Bad title"]


def test_hostile_featured_content_never_reaches_a_feed(write_article: WriteArticle) -> None:
    write_article("a.md", yaml.safe_dump({
        "title": "Hostile", "webUrl": "https://h.example/1", "publishedDateTime": "2020-01-01T00:00:00Z",
        "provider": {"name": "H", "domain": "h.example"},
        "featuredContent": '<p onclick="steal()">Kept text</p><script>alert(1)</script>'
                           '<a href="javascript:alert(2)">link</a><img src=x onerror=alert(3)>',
    }))
    site = render(write_article.root)  # type: ignore[attr-defined]
    [item] = rss_items(site, "all")
    htmls = [jfeed(site, "all.json")["items"][0]["content_html"],
             item.findtext("content:encoded", namespaces=NS) or item.findtext("description"),
             atom_entries(site, "all")[0].findtext("atom:content", namespaces=NS)]
    for html in htmls:
        assert "Kept text" in html
        lowered = html.lower()
        for bad in ("<script", "onclick", "onerror", "javascript:", "alert("):
            assert bad not in lowered


# -- the fixture corpus (real shapes) and a generated one (volume) -----------------------------------------


def corpus_files(root: Path) -> list[Path]:
    """Every article file of a corpus (the generated one keeps them in numbered subdirectories)."""
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".md", ".txt"))


@pytest.fixture(scope="module")
def corpus_site() -> tuple[Path, Site]:
    return FIXTURE_CORPUS, render(FIXTURE_CORPUS)


def test_corpus_renders_and_every_feed_parses(corpus_site: tuple[Path, Site]) -> None:
    root, site = corpus_site
    fronts = [raw_front(p) for p in corpus_files(root)]
    assert site.corpus.files == len(fronts) >= 15
    # One feed for everything, and one per topic and per provider named anywhere (drafts included).
    topics = {topic for front in fronts for topic in front["topics"]}
    providers = {front["provider"]["domain"] for front in fronts}
    assert len(site.feeds) == 1 + len(topics) + len(providers)
    for name, output in site.outputs.items():
        if name.endswith((".xml", ".atom")):
            reader = feedparser.parse(output.body)
            assert not reader.bozo, (name, reader.get("bozo_exception"))
            etree.fromstring(output.body)
        elif name.endswith(".json"):
            json.loads(output.body)
        elif name.endswith(".html"):
            html_document(output.body)
        else:
            etree.fromstring(output.body)
    assert len(jfeed(site, "all.json")["items"]) == min(50, len(site.corpus.articles))
    for feed in site.feeds:
        ids = [e.url for e in feed.entries]
        assert len(ids) == len(set(ids))
        assert list(feed.entries) == sorted(feed.entries, key=lambda a: a.sort_key)


def _secrets(root: Path, stride: int = 0) -> list[bytes]:
    """Each file's secured value, its ';' parts and a 32-character prefix; with ``stride``, also every
    24-character window starting at a multiple of it, so any leaked run of 24 + stride characters is caught."""
    values = [str(raw_front(p)["secured"]) for p in corpus_files(root)]
    assert values and all(len(value) > 32 for value in values)
    parts = {piece for value in values for piece in (value, *value.split(";"), value[:32]) if piece}
    if stride:
        parts |= {value[i:i + 24] for value in values for i in range(0, len(value) - 23, stride)}
    return sorted(piece.encode() for piece in parts)


def test_corpus_outputs_hold_no_secret_and_no_relative_url(corpus_site: tuple[Path, Site]) -> None:
    root, site = corpus_site
    secrets = _secrets(root, stride=12)
    assert len(secrets) >= 3 * len(corpus_files(root))
    blob = b"\n".join(o.body for o in site.outputs.values())
    assert not [s for s in secrets if s in blob]
    assert [u for _, _, u in all_urls(site) if not is_absolute(u)] == []


def test_generated_corpus_outputs_hold_no_secret(generated_dir: Path) -> None:
    site = render(generated_dir, max_items=1000)
    blob = b"\n".join(o.body for o in site.outputs.values())
    assert len(site.corpus.articles) > 100
    assert not [s for s in _secrets(generated_dir) if s in blob]


def test_corpus_renders_with_every_item(corpus_site: tuple[Path, Site]) -> None:
    root, _ = corpus_site
    site = render(root, max_items=1000)
    assert len(jfeed(site, "all.json")["items"]) == len(site.corpus.articles)
    assert len(parsed(site, "all.atom").entries) == len(site.corpus.articles)
    # Every published file is an entry, except the older copy of a duplicated URL.
    fronts = [raw_front(p) for p in corpus_files(root) if raw_front(p).get("published", True)]
    urls = [front.get("webUrl") or front["originalUrl"] for front in fronts]
    assert len(site.corpus.articles) == len(set(urls)) < len(urls)


@pytest.mark.parametrize("size", [1, 7])
def test_a_bounded_entry_html_cache_gives_the_same_bytes(corpus_dir: Path, size: int) -> None:
    from feedpub.render.site import render_site

    corpus = load(corpus_dir, 8 << 20)
    settings = Settings.load({"seeds_dir": str(corpus_dir)})
    everything = render_site(corpus, settings)
    bounded = render_site(corpus, settings, html_cache_size=size)
    assert bounded.outputs.keys() == everything.outputs.keys()
    for name, output in everything.outputs.items():
        assert bounded.outputs[name].body == output.body, name

"""The human-readable pages: the front page and each feed's preview, served and built.

Checked through the Flask test client and against the static build: what the front page
lists, the ``<link rel="alternate">`` autodiscovery tags (and that every one resolves),
that each preview lists its feed's entries in the feed's order, that the served and built
bytes agree, that pages are self-contained HTML5 (no script, no external asset, light and
dark colour schemes), that hostile text is escaped, and the HTTP behaviour of ``/``.
"""

from __future__ import annotations

import gzip
import html.parser
import json
import re
from collections import Counter
from collections.abc import Callable
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import lxml.html
import pytest
import yaml
from click.testing import CliRunner
from flask.testing import FlaskClient

from feedpub.cli import main
from feedpub.ingest.loader import load
from feedpub.render.site import render_site
from feedpub.settings import Settings
from feedpub.web import create_app

from .conftest import SITE_URL

FEEDS_URL = f"{SITE_URL}/feeds/"
HTML_TYPE = "text/html; charset=utf-8"
# (label, suffix, media type) of the three formats, in the order pages offer them.
FORMATS = (("RSS", ".xml", "application/rss+xml"), ("Atom", ".atom", "application/atom+xml"),
           ("JSON Feed", ".json", "application/feed+json"))
WriteArticle = Callable[..., Path]

# The preview pages of the bundled seeds: (pretty route or None, static twin under /feeds/, feed path).
PREVIEWS = [
    (None, "all.html", "all"),
    ("/topics/ai", "topics/ai.html", "ai"),
    ("/topics/computer-vision", "topics/computer-vision.html", "computer-vision"),
    ("/topics/aws-ai", "topics/aws-ai.html", "aws-ai"),
    ("/topics/natural-language-processing", "topics/natural-language-processing.html", "natural-language-processing"),
    ("/providers/wired.com", "providers/wired.com.html", "providers/wired.com"),
    ("/providers/thenextweb.com", "providers/thenextweb.com.html", "providers/thenextweb.com"),
    ("/providers/courthousenews.com", "providers/courthousenews.com.html", "providers/courthousenews.com"),
]

# -- HTML5 checks ---------------------------------------------------------------------------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
# Every element a page may use: a typo or an unexpected element shows up as a problem.
ALLOWED = {"html", "head", "meta", "title", "link", "style", "body", "main", "header", "nav", "section", "h1", "h2",
           "h3", "p", "a", "span", "div", "time", "ol", "ul", "li", "table", "thead", "tbody", "tr", "th", "td", "br",
           "footer", "small", "strong", "em"}
HEAD_ONLY = {"meta", "title", "link", "style"}
# Elements and attributes that would load or run something.
ACTIVE = {"script", "img", "iframe", "object", "embed", "video", "audio", "source", "picture", "svg", "math",
          "form", "input", "button", "base", "frame", "frameset", "applet", "noscript", "template", "canvas"}
URL_ATTRIBUTES = {"src", "srcset", "poster", "data", "action", "formaction", "background", "manifest", "ping",
                  "longdesc", "cite", "usemap", "xlink:href"}


class _Structure(html.parser.HTMLParser):
    """A strict reading of the markup: every non-void element closed explicitly, in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.decl: list[str] = []
        self.first_tag: str | None = None

    def _where(self) -> str:
        line, column = self.getpos()
        return f"line {line}:{column}"

    def handle_decl(self, decl: str) -> None:
        self.decl.append(decl)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.first_tag = self.first_tag or tag
        names = [name for name, _ in attrs]
        if len(names) != len(set(names)):
            self.problems.append(f"{self._where()}: <{tag}> repeats an attribute: {names}")
        if tag not in ALLOWED:
            self.problems.append(f"{self._where()}: unexpected element <{tag}>")
        if tag in HEAD_ONLY and self.stack[-1:] != ["head"]:
            self.problems.append(f"{self._where()}: <{tag}> outside <head> (in {self.stack})")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.problems.append(f"{self._where()}: self-closing <{tag}/> (not HTML5 style)")
        self.handle_starttag(tag, attrs)
        if tag not in VOID and self.stack and self.stack[-1] == tag:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            self.problems.append(f"{self._where()}: end tag for void element </{tag}>")
        elif not self.stack or self.stack[-1] != tag:
            self.problems.append(f"{self._where()}: </{tag}> does not close the open <{self.stack[-1:]}>")
        else:
            self.stack.pop()


def page_problems(data: bytes, *, feeds_url: str = FEEDS_URL, language: str = "en") -> list[str]:
    """Everything wrong with one page as a self-contained HTML5 document; empty when it is fine."""
    problems: list[str] = []
    if not data.lower().startswith(b"<!doctype html>\n"):
        problems.append(f"does not start with <!doctype html>: {data[:30]!r}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [f"not UTF-8: {exc}"]
    if (bad := re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]", text)) is not None:
        problems.append(f"control or non-character U+{ord(bad.group()):04X}")
    structure = _Structure()
    structure.feed(text)
    structure.close()
    problems += structure.problems
    if structure.stack:
        problems.append(f"elements never closed: {structure.stack}")
    if structure.decl != ["doctype html"] or structure.first_tag != "html":
        problems.append(f"declarations {structure.decl}, first element {structure.first_tag}")

    root = lxml.html.document_fromstring(data)
    head = root.find("head")
    if root.get("lang") != language:
        problems.append(f"<html lang={root.get('lang')!r}>, expected {language!r}")
    first = head[0] if len(head) else None
    if first is None or first.tag != "meta" or (first.get("charset") or "").lower() != "utf-8":
        problems.append("<meta charset=utf-8> is not the first element of <head>")
    if data.find(b'<meta charset="utf-8">') not in range(1024):
        problems.append("<meta charset> is not within the first 1024 bytes")
    titles = root.xpath("/html/head/title")
    if len(titles) != 1 or not titles[0].text_content().strip():
        problems.append(f"{len(titles)} <title> elements (one, not empty, is required)")
    viewport = root.xpath("/html/head/meta[@name='viewport']/@content")
    if viewport != ["width=device-width, initial-scale=1"]:
        problems.append(f"meta viewport is {viewport}")
    if root.xpath("/html/head/meta[@name='color-scheme']/@content") != ["light dark"]:
        problems.append("no <meta name=color-scheme content='light dark'>")
    css = "\n".join(style.text_content() for style in root.iter("style"))
    if not re.search(r"@media\s*\(\s*prefers-color-scheme\s*:\s*dark\s*\)", css):
        problems.append("no @media (prefers-color-scheme: dark) rules")
    if re.search(r"url\s*\(|@import|expression\s*\(", css, re.I):
        problems.append("the CSS loads something (url(), @import or expression())")
    if len(root.xpath("//h1")) != 1:
        problems.append(f"{len(root.xpath('//h1'))} <h1> elements")
    ids = Counter(element.get("id") for element in root.iter() if isinstance(element.tag, str) and element.get("id"))
    problems += [f"id {name!r} used {n} times" for name, n in ids.items() if n > 1]

    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        if element.tag in ACTIVE:
            problems.append(f"<{element.tag}> element")
        for name, value in element.attrib.items():
            lowered = name.lower()
            if lowered.startswith("on"):
                problems.append(f"<{element.tag} {name}> event handler")
            if lowered in URL_ATTRIBUTES:
                problems.append(f"<{element.tag} {name}={value!r}>: pages load nothing")
            if lowered == "style":
                problems.append(f"<{element.tag} style=...>: inline style attribute")
            if "javascript:" in value.lower():
                problems.append(f"<{element.tag} {name}={value!r}>")
        href = element.get("href")
        if href is None:
            continue
        parts = urlsplit(href)
        if parts.scheme not in ("http", "https") or not parts.netloc or href != href.strip():
            problems.append(f"<{element.tag} href={href!r}> is not an absolute http(s) URL")
        if element.tag == "link":
            # <link> may only point at this site's feeds: no stylesheets, icons or preloads.
            if element.get("rel") != "alternate":
                problems.append(f"<link rel={element.get('rel')!r} href={href!r}>")
            if not href.startswith(feeds_url):
                problems.append(f"<link href={href!r}> points outside {feeds_url}")
        elif element.tag != "a":
            problems.append(f"<{element.tag} href={href!r}>: only <a> and <link> carry links")
    return problems


def assert_valid_page(data: bytes, **options: Any) -> lxml.html.HtmlElement:
    problems = page_problems(data, **options)
    assert not problems, "\n".join(problems)
    return lxml.html.document_fromstring(data)


# -- helpers --------------------------------------------------------------------------------------------


def local(url: str) -> str:
    """The path (and query) of one of the site's absolute URLs, for the test client."""
    assert url.startswith(SITE_URL + "/"), url
    return url[len(SITE_URL):]


def discovery(page: lxml.html.HtmlElement) -> list[tuple[str, str, str]]:
    """(type, title, href) of every autodiscovery link, in order; they must all be in <head>."""
    everywhere = page.xpath("//link[@rel='alternate']")
    in_head = page.xpath("/html/head/link[@rel='alternate']")
    assert everywhere == in_head
    return [(link.get("type"), link.get("title"), link.get("href")) for link in in_head]


def expected_discovery(feed: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(mimetype, f"{feed['title']} ({label})", feed["urls"][name])
            for (label, _, mimetype), name in zip(FORMATS, ("rss", "atom", "json"), strict=True)]


def subscribe_links(element: lxml.html.HtmlElement) -> list[tuple[str, str, str]]:
    """(label, type, href) of the RSS / Atom / JSON Feed buttons inside an element."""
    return [(a.text_content(), a.get("type"), a.get("href")) for a in element.xpath(".//*[@class='subscribe']/a")]


def expected_subscribe(feed: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(label, mimetype, feed["urls"][name])
            for (label, _, mimetype), name in zip(FORMATS, ("rss", "atom", "json"), strict=True)]


def page_url(feed: dict[str, Any]) -> str:
    if feed["kind"] == "topic":
        return f"{FEEDS_URL}topics/{feed['slug']}.html"
    return feed["urls"]["rss"].removesuffix(".xml") + ".html"


def get_ok(client: FlaskClient, url: str, content_type: str) -> bytes:
    response = client.get(local(url))
    assert response.status_code == 200, url
    assert response.headers["Content-Type"] == content_type, url
    return response.data


@pytest.fixture
def index(client: FlaskClient) -> list[dict[str, Any]]:
    feeds = client.get("/feeds/index.json").json["feeds"]
    assert len(feeds) == 10
    return feeds


@pytest.fixture
def built(seeds: Path, tmp_path: Path, runner: CliRunner) -> Path:
    """The static build of the same seeds the client serves."""
    out = tmp_path / "out"
    result = runner.invoke(main, ["build", "--seeds", str(seeds), "--out", str(out), "--site-url", SITE_URL])
    assert result.exit_code == 0, result.output
    return out


# -- the front page -------------------------------------------------------------------------------------


def test_front_page_lists_every_feed(client: FlaskClient, index: list[dict[str, Any]]) -> None:
    data = get_ok(client, f"{SITE_URL}/", HTML_TYPE)
    page = assert_valid_page(data)
    assert page.findtext(".//title") == "feedpub"
    assert page.findtext(".//h1") == "feedpub"
    assert "10 feeds of 2 articles" in " ".join(page.find("body").text_content().split())
    sections = {"all": "all", "topic": "topics", "provider": "providers"}
    for kind, section_id in sections.items():
        [section] = page.xpath(f"//section[@id='{section_id}']")
        rows = section.xpath(".//tbody/tr")
        listed = [feed for feed in index if feed["kind"] == kind]
        assert len(rows) == len(listed), kind
        for row, feed in zip(rows, listed, strict=True):  # in the index's order
            name_cell, count_cell, newest_cell, subscribe_cell = row.findall("td")
            [link] = name_cell.findall("a")
            assert (link.text_content(), link.get("href")) == (feed["name"], page_url(feed))
            # The count, and its unit spelled out for narrow screens (hidden by CSS on wide ones).
            unit = "entry" if feed["entries"] == 1 else "entries"
            assert count_cell.text_content().strip() == f"{feed['entries']} {unit}"
            items = client.get(local(feed["urls"]["json"])).json["items"]
            assert len(items) == feed["entries"]
            if items:
                newest = items[0]
                [headline] = newest_cell.findall("a")
                assert (headline.text_content(), headline.get("href")) == (newest["title"], newest["url"])
                [time] = newest_cell.findall("time")
                assert time.get("datetime") == newest["date_published"] == feed["updated"]
                assert time.text_content() == newest["date_published"][:10]
            else:
                assert newest_cell.findall("a") == []
                assert "No articles yet" in newest_cell.text_content()
            assert subscribe_links(subscribe_cell) == expected_subscribe(feed)
    # Every feed appears exactly once, linked to its page, and every page link resolves.
    pages = [a.get("href") for a in page.xpath("//tbody/tr/td[1]/a")]
    assert pages == [page_url(feed) for kind in sections for feed in index if feed["kind"] == kind]
    for url in pages:
        assert get_ok(client, url, HTML_TYPE)
    # The OPML of every feed, and the machine-readable index.
    opml = [a for a in page.xpath("//a") if a.get("href") == f"{FEEDS_URL}index.opml"]
    assert len(opml) == 1 and "OPML" in opml[0].text_content()
    get_ok(client, f"{FEEDS_URL}index.opml", "text/x-opml; charset=utf-8")
    assert page.xpath(f"//a[@href='{FEEDS_URL}index.json']")


def test_front_page_autodiscovery_names_the_main_feeds_and_each_resolves(client: FlaskClient,
                                                                         index: list[dict[str, Any]]) -> None:
    page = assert_valid_page(client.get("/").data)
    main_feeds = [feed for feed in index if feed["kind"] in ("all", "topic")]
    assert next(feed["kind"] for feed in main_feeds) == "all" and len(main_feeds) == 5
    links = discovery(page)
    assert links == [link for feed in main_feeds for link in expected_discovery(feed)]
    for mimetype, _, href in links:
        assert urlsplit(href).scheme == "http" and urlsplit(href).netloc == "feeds.example.test"
        body = get_ok(client, href, f"{mimetype}; charset=utf-8")
        if mimetype == "application/feed+json":
            assert json.loads(body)["feed_url"] == href
        else:
            assert f'href="{href}"'.encode() in body  # the feed's own self link
    # Provider feeds are discoverable from their own pages, not from the front page.
    assert not [href for _, _, href in links if "/providers/" in href]


def test_front_page_is_the_same_bytes_at_slash_in_feeds_and_in_the_build(client: FlaskClient, built: Path) -> None:
    root, twin, directory = client.get("/"), client.get("/feeds/index.html"), client.get("/feeds/")
    assert root.status_code == twin.status_code == directory.status_code == 200
    assert root.headers["Content-Type"] == twin.headers["Content-Type"] == HTML_TYPE
    assert root.data == twin.data == directory.data == (built / "index.html").read_bytes()
    assert root.headers["ETag"] == twin.headers["ETag"] == directory.headers["ETag"]


# -- preview pages ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("route", "name", "path"), PREVIEWS, ids=[p[1] for p in PREVIEWS])
def test_preview_page(client: FlaskClient, built: Path, index: list[dict[str, Any]], route: str | None, name: str,
                      path: str) -> None:
    static = client.get(f"/feeds/{name}")
    assert static.status_code == 200
    assert static.headers["Content-Type"] == HTML_TYPE
    assert static.data == (built / name).read_bytes()
    if route is not None:
        pretty = client.get(route)
        assert pretty.status_code == 200
        assert pretty.headers["Content-Type"] == HTML_TYPE
        assert pretty.data == static.data
        assert pretty.headers["ETag"] == static.headers["ETag"]
    page = assert_valid_page(static.data)

    [feed] = [f for f in index if f["urls"]["rss"] == f"{FEEDS_URL}{path}.xml"]
    assert page_url(feed) == f"{FEEDS_URL}{name}"
    document = client.get(f"/feeds/{path}.json").json
    assert document["home_page_url"] == f"{FEEDS_URL}{name}"  # the feed names this page as its home
    assert page.findtext(".//title") == feed["title"] == document["title"]
    assert page.findtext(".//h1") == feed["name"]
    # Autodiscovery: exactly this feed's three formats, each resolving to its own type.
    links = discovery(page)
    assert links == expected_discovery(feed)
    for mimetype, _, href in links:
        get_ok(client, href, f"{mimetype}; charset=utf-8")
    assert subscribe_links(page.find("body")) == expected_subscribe(feed)
    # A way back to the front page, which resolves.
    [home] = page.xpath("//nav//a")
    get_ok(client, home.get("href"), HTML_TYPE)

    # The entries, in the feed's order, with their titles, links, dates and related coverage.
    entries = page.xpath("//ol[@class='entries']/li")
    items = document["items"]
    assert [(li.xpath("h2/a")[0].text_content(), li.xpath("h2/a/@href")[0]) for li in entries] == [
        (item["title"], item["url"]) for item in items]
    rss = client.get(f"/feeds/{path}.xml").data
    rss_links = re.findall(rb"<item>.*?<link>(.*?)</link>", rss, re.S)
    assert [li.xpath("h2/a/@href")[0].encode() for li in entries] == rss_links
    for li, item in zip(entries, items, strict=True):
        assert li.xpath(".//time/@datetime") == [item["date_published"]]
        related = [(a.text_content(), a.get("href")) for a in li.xpath("ul[@class='related']/li/a")]
        assert related == [(r["title"], r["url"]) for r in item.get("_related", {}).get("items", [])]
        if item.get("summary"):
            assert item["summary"] in li.text_content()
    if not items:
        assert "No articles yet" in page.find("body").text_content()


def test_every_built_page_is_self_contained_html5(built: Path) -> None:
    pages = sorted(built.rglob("*.html"))
    assert len(pages) == 11  # 10 feeds and the front page
    problems = [f"{p.relative_to(built)}: {problem}" for p in pages for problem in page_problems(p.read_bytes())]
    assert not problems, "\n".join(problems)


def test_every_page_of_the_corpus_is_self_contained_html5(corpus_dir: Path) -> None:
    site = render_site(load(corpus_dir, Settings().max_file_bytes), Settings(site_url=SITE_URL))
    pages = {name: output.body for name, output in site.outputs.items() if name.endswith(".html")}
    assert len(pages) == len(site.feeds) + 1
    problems = [f"{name}: {problem}" for name, body in pages.items() for problem in page_problems(body)]
    assert not problems, "\n".join(problems[:60])
    front = lxml.html.document_fromstring(pages["index.html"])
    assert len(front.xpath("//tbody/tr")) == len(site.feeds)


def test_the_checks_catch_what_they_look_for(built: Path) -> None:
    good = (built / "topics" / "ai.html").read_bytes()
    assert page_problems(good) == []
    broken = {
        "script": (b"</main>", b"<script>alert(1)</script></main>", "<script> element"),
        "stylesheet": (b"<style>", b'<link rel="stylesheet" href="https://cdn.example/x.css"><style>', "rel="),
        "image": (b"</main>", b'<img src="https://cdn.example/x.png"></main>', "<img> element"),
        "src anywhere": (b"<main>", b'<main><div src="https://x.example/">', "pages load nothing"),
        "relative link": (b"</main>", b'<a href="/feeds/all.xml">x</a></main>', "not an absolute"),
        "css url": (b"</style>", b"body { background: url(https://x.example/bg.png) }</style>", "url()"),
        "no dark scheme": (b"prefers-color-scheme", b"prefers-contrast", "prefers-color-scheme"),
        "no lang": (b'<html lang="en">', b"<html>", "lang"),
        "no viewport": (b'name="viewport"', b'name="x-viewport"', "viewport"),
        "unclosed": (b"</h1>", b"", "never closed"),
        "handler": (b"<main>", b'<main onclick="x()">', "event handler"),
        "external link tag": (b"<style>", b'<link rel="alternate" href="https://evil.example/x.xml"><style>',
                              "points outside"),
    }
    for what, (old, new, words) in broken.items():
        assert old in good, what
        problems = page_problems(good.replace(old, new, 1))
        assert any(words in problem for problem in problems), (what, problems)


# -- hostile text -----------------------------------------------------------------------------------------


def test_hostile_text_is_escaped_in_every_page(write_article: WriteArticle) -> None:
    write_article("a.md", yaml.safe_dump({
        # Markup in a title is removed at parse time; what is left is text, with its entities decoded,
        # so the pages must escape it.
        "title": "<script>alert('raw')</script>&lt;script&gt;alert(1)&lt;/script&gt; Tom &amp; \"Jerry\" 1 < 2",
        "excerpt": "&lt;img src=x onerror=alert(2)&gt; an excerpt",
        "webUrl": "https://h.example/a?x=1&y=\"><script>alert(3)</script>",
        "publishedDateTime": "2020-01-01T00:00:00Z",
        "provider": {"name": "Evil &lt;/title&gt;&lt;script&gt;alert(4)&lt;/script&gt; Co", "domain": "h.example"},
        "topics": ["&lt;/style&gt;&lt;script&gt;alert(5)&lt;/script&gt;", "Q&A \"quoted\""],
        "related": [{"title": "&lt;script&gt;alert(6)&lt;/script&gt;", "webUrl": "https://r.example/1?a=1&b=2",
                     "publishedDateTime": "2020-01-01T00:00:00Z",
                     "provider": {"name": "R &lt;i&gt;", "domain": "r.example"}}],
    }))
    root = write_article.root  # type: ignore[attr-defined]
    app = create_app({"TESTING": True, "seeds_dir": str(root), "site_url": SITE_URL})
    client = app.test_client()
    index = client.get("/feeds/index.json").json["feeds"]
    title = client.get("/feeds/all.json").json["items"][0]["title"]
    assert "<script>alert(1)</script>" in title and "raw" not in title  # the decoded text the page must escape
    routes = ["/", "/feeds/index.html", *(local(page_url(feed)) for feed in index)]
    topic_routes = [f"/topics/{feed['slug']}" for feed in index if feed["kind"] == "topic"]
    assert len(topic_routes) == 2
    for route in routes + topic_routes + ["/providers/h.example"]:
        response = client.get(route)
        assert response.status_code == 200, route
        data = response.data
        assert b"<script" not in data.lower() and b"<img" not in data.lower(), route
        assert b"&lt;script&gt;alert(" in data, route
        page = assert_valid_page(data)
        assert not page.xpath("//script | //img | //@onerror"), route
    page = lxml.html.document_fromstring(client.get("/feeds/all.html").data)
    [link] = page.xpath("//ol[@class='entries']/li/h2/a")
    assert link.text_content() == title  # shown as the very text of the title, nothing interpreted
    assert link.get("href") == client.get("/feeds/all.json").json["items"][0]["url"]
    meta = link.getparent().getparent().xpath("div[@class='muted']")[0].text_content()
    assert "Evil </title><script>alert(4)</script> Co" in meta
    assert '</style><script>alert(5)</script>, Q&A "quoted"' in meta
    [related] = page.xpath("//ul[@class='related']/li/a")
    assert (related.text_content(), related.get("href")) == ("<script>alert(6)</script>", "https://r.example/1?a=1&b=2")
    # The autodiscovery titles carry the hostile topic name as attribute text, and the front page its row.
    front = lxml.html.document_fromstring(client.get("/").data)
    titles = [t for _, t, _ in discovery(front)]
    assert "feedpub – </style><script>alert(5)</script> (RSS)" in titles
    assert 'feedpub – Q&A "quoted" (Atom)' in titles
    names = [a.text_content() for a in front.xpath("//tbody/tr/td[1]/a")]
    assert "Evil </title><script>alert(4)</script> Co" in names


# -- HTTP: conditional GET, HEAD, gzip, 404 -----------------------------------------------------------------


def test_conditional_get_and_head_on_the_front_page(client: FlaskClient) -> None:
    first = client.get("/")
    assert first.status_code == 200
    etag, last_modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert etag.startswith('"') and not etag.startswith("W/")
    assert first.headers["Cache-Control"] == "public, max-age=300, stale-while-revalidate=60, stale-if-error=86400"
    assert "Accept-Encoding" in first.headers["Vary"]
    assert int(first.headers["Content-Length"]) == len(first.data)
    # The front page is dated by the newest article of the corpus.
    newest = max(item["date_published"] for item in client.get("/feeds/all.json").json["items"])
    assert parsedate_to_datetime(last_modified).strftime("%Y-%m-%dT%H:%M:%SZ") == newest

    again = client.get("/", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert again.headers["ETag"] == etag
    assert client.get("/", headers={"If-Modified-Since": last_modified}).status_code == 304
    older = format_datetime(parsedate_to_datetime(last_modified).replace(year=2019), usegmt=True)
    assert client.get("/", headers={"If-Modified-Since": older}).status_code == 200
    stale = client.get("/", headers={"If-None-Match": '"stale"', "If-Modified-Since": last_modified})
    assert stale.status_code == 200 and stale.data == first.data  # If-None-Match takes precedence

    head = client.head("/")
    assert head.status_code == 200 and head.data == b""
    for header in ("ETag", "Content-Type", "Content-Length", "Last-Modified", "Cache-Control"):
        assert head.headers[header] == first.headers[header], header
    assert client.head("/", headers={"If-None-Match": etag}).status_code == 304

    packed = client.get("/", headers={"Accept-Encoding": "gzip"})
    assert packed.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed.data) == first.data
    assert packed.headers["ETag"] != etag
    assert client.get("/", headers={"Accept-Encoding": "gzip", "If-None-Match": packed.headers["ETag"]}
                      ).status_code == 304


def test_conditional_get_on_a_preview_page(client: FlaskClient) -> None:
    first = client.get("/topics/ai")
    assert parsedate_to_datetime(first.headers["Last-Modified"]).strftime("%Y-%m-%dT%H:%M:%SZ") == (
        client.get("/feeds/ai.json").json["items"][0]["date_published"])
    assert client.get("/topics/ai", headers={"If-None-Match": first.headers["ETag"]}).status_code == 304
    assert client.get("/feeds/topics/ai.html", headers={"If-None-Match": first.headers["ETag"]}).status_code == 304
    head = client.head("/providers/wired.com")
    assert head.status_code == 200 and head.data == b"" and head.headers["Content-Type"] == HTML_TYPE


@pytest.mark.parametrize("path", [
    "/topics/no-such-topic", "/topics/ai.html", "/topics/%00", "/topics/" + "a" * 5000, "/topics/%2e%2e",
    "/providers/no-such.example", "/providers/wired.com.html", "/providers/ai", "/feeds/topics/no-such-topic.html",
    "/feeds/topics/ai.xml", "/feeds/ai.html", "/feeds/providers/wired.com", "/feeds/topics/../all.html",
])
def test_unknown_pages_are_404_naming_the_index(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404, path
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert f"{FEEDS_URL}index.json".encode() in response.data


@pytest.mark.parametrize("path", [
    "/topics/", "/topics", "/topics/ai/", "/topics/..%2fall", "/topics/a/b", "/providers/", "/providers/wired.com/",
    "/index.html", "/all.html", "//topics/ai",
])
def test_paths_beside_the_page_routes_are_404(client: FlaskClient, path: str) -> None:
    assert client.get(path).status_code == 404, path


@pytest.mark.parametrize("method", ["post", "put", "delete", "patch"])
def test_pages_answer_only_get_and_head(client: FlaskClient, method: str) -> None:
    for path in ("/", "/topics/ai", "/providers/wired.com"):
        response = getattr(client, method)(path)
        assert response.status_code == 405, path
        assert "GET" in response.headers["Allow"]


def test_pages_follow_a_reload(app: Any, client: FlaskClient, seeds: Path) -> None:
    """A new article shows on the front page and its feeds' pages; other pages keep their ETag."""
    state = app.extensions["feedpub"]
    before = {path: client.get(path).headers["ETag"] for path in ("/", "/topics/ai", "/providers/wired.com")}
    (seeds / "zz-new.md").write_text("---\n" + yaml.safe_dump({
        "title": "A brand new headline", "webUrl": "https://new.example/1", "publishedDateTime": "2021-06-01T08:00:00Z",
        "provider": {"name": "New Example", "domain": "new.example"}, "topics": ["AI"],
    }) + "---\n", encoding="utf-8")
    assert state.reload() is True
    after = {path: client.get(path).headers["ETag"] for path in before}
    assert after["/"] != before["/"] and after["/topics/ai"] != before["/topics/ai"]
    assert after["/providers/wired.com"] == before["/providers/wired.com"]
    front = lxml.html.document_fromstring(client.get("/").data)
    [row] = [tr for tr in front.xpath("//section[@id='topics']//tbody/tr") if tr.findtext("td/a") == "AI"]
    assert row.xpath("td[3]/a")[0].text_content() == "A brand new headline"
    assert row.xpath("td[2]")[0].text_content().strip() == "3 entries"
    assert client.get("/providers/new.example").status_code == 200
    page = lxml.html.document_fromstring(client.get("/topics/ai").data)
    assert page.xpath("//ol[@class='entries']/li[1]/h2/a")[0].text_content() == "A brand new headline"

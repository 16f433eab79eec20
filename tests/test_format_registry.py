"""The format registry is the one table of output formats: a fifth format is one renderer and one row.

A toy plain-text format registered here (and nothing else changed) must be built by
``feedpub build``, served by the app with its media type, listed in index.json and
linked from the pages; the OPML, the archives and the WebSub header follow the
row's flags. RSS and Atom share one generator per feed, whatever order they render in.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import lxml.html
import pytest
from click.testing import CliRunner
from lxml import etree

from feedpub.cli import main
from feedpub.ingest.loader import load
from feedpub.render.common import Draft
from feedpub.render.formats import FORMATS, Format, register, registered, unregister
from feedpub.render.site import render_feed, render_site, site_context
from feedpub.settings import Settings
from feedpub.web import create_app

from .conftest import SITE_URL

FEEDS_URL = f"{SITE_URL}/feeds/"
TXT_TYPE = "text/plain; charset=utf-8"


def render_txt(draft: Draft, fmt: Format) -> bytes:
    """The toy format: the feed's title and address, then one line per entry."""
    feed, ctx = draft.feed, draft.ctx
    lines = [ctx.title(feed), ctx.url(fmt, feed), *(f"- {a.title} <{a.url}>" for a in feed.entries)]
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def txt() -> Iterator[Format]:
    fmt = register(Format("txt", "Plain text", ".txt", TXT_TYPE, render_txt, archived=True, in_opml=True))
    try:
        yield fmt
    finally:
        unregister("txt")


def build(seeds: Path, out: Path, *extra: str) -> dict[str, object]:
    result = CliRunner().invoke(main, ["build", "--seeds", str(seeds), "--out", str(out), "--site-url", SITE_URL,
                                       *extra], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    index: dict[str, object] = json.loads((out / "index.json").read_bytes())
    return index


def feeds_of(index: dict[str, object]) -> list[dict[str, object]]:
    feeds = index["feeds"]
    assert isinstance(feeds, list) and feeds
    return feeds


def alternates(page: bytes) -> list[tuple[str, str]]:
    """The (type, href) of each ``<link rel="alternate">`` in a page's head."""
    head = lxml.html.fromstring(page).find("head")
    assert head is not None
    return [(link.get("type"), link.get("href")) for link in head.iterfind("link") if link.get("rel") == "alternate"]


def subscribe_links(page: bytes) -> list[tuple[str, str, str]]:
    """The (label, type, href) of each link in a page's body that offers a feed file."""
    body = lxml.html.fromstring(page).find("body")
    assert body is not None
    return [(a.text_content().strip(), a.get("type"), a.get("href")) for a in body.iter("a") if a.get("type")]


def test_a_registered_format_is_built_listed_and_linked(txt: Format, seeds: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    index = build(seeds, out)
    for feed in feeds_of(index):
        urls = feed["urls"]
        assert isinstance(urls, dict)
        assert list(urls) == ["rss", "atom", "json", "txt"]  # every feed format, in registry order
        url = urls["txt"]
        assert url.startswith(FEEDS_URL) and url.endswith(".txt")
        body = (out / url.removeprefix(FEEDS_URL)).read_text()
        assert body.splitlines()[:2] == [feed["title"], url]
        assert len(body.splitlines()) == 2 + feed["entries"]
        if feed["kind"] == "all":
            page = out / "all.html"
        else:
            page = out / ("topics" if feed["kind"] == "topic" else "providers") / f"{feed['slug']}.html"
        assert ("text/plain", url) in alternates(page.read_bytes())  # the preview announces it
        assert ("Plain text", "text/plain", url) in subscribe_links(page.read_bytes())
    front = (out / "index.html").read_bytes()
    all_txt = FEEDS_URL + "all.txt"
    assert ("text/plain", all_txt) in alternates(front)
    assert ("Plain text", "text/plain", all_txt) in subscribe_links(front)


def test_a_registered_format_is_served_with_its_media_type(txt: Format, seeds: Path) -> None:
    app = create_app({"TESTING": True, "seeds_dir": str(seeds), "site_url": SITE_URL,
                      "websub_hub": "https://hub.example/"})
    client = app.test_client()
    index = client.get("/feeds/index.json").json
    assert all("txt" in feed["urls"] for feed in index["feeds"])
    everything = next(feed for feed in index["feeds"] if feed["kind"] == "all")
    response = client.get("/feeds/all.txt")
    assert response.status_code == 200 and response.headers["Content-Type"] == TXT_TYPE
    lines = response.get_data(as_text=True).splitlines()
    assert lines[:2] == [everything["title"], FEEDS_URL + "all.txt"] and len(lines) == 2 + everything["entries"]
    assert 'rel="hub"' in response.headers["Link"]  # a feed: WebSub discovery in HTTP too
    assert "Link" not in client.get("/feeds/all.html").headers  # a page is not
    limited = client.get("/feeds/all.txt?limit=1")  # filters render it through the same row
    assert limited.headers["Content-Type"] == TXT_TYPE
    assert len(limited.get_data(as_text=True).splitlines()) == 3
    assert (FEEDS_URL + "all.txt").encode() in client.get("/").get_data()


def test_an_unregistered_format_is_gone_from_the_next_build(seeds: Path, tmp_path: Path) -> None:
    fmt = register(Format("txt", "Plain text", ".txt", TXT_TYPE, render_txt))
    unregister(fmt.name)
    out = tmp_path / "out"
    index = build(seeds, out)
    assert not list(out.rglob("*.txt"))
    assert all(list(feed["urls"]) == ["rss", "atom", "json"] for feed in feeds_of(index))  # type: ignore[call-overload]


def test_a_name_or_file_taken_twice_is_refused() -> None:
    rss = FORMATS["rss"]
    with pytest.raises(ValueError, match="clashes with 'rss'"):
        register(dataclasses.replace(rss, name="rss2"))  # the same files
    with pytest.raises(ValueError, match="clashes with 'rss'"):
        register(dataclasses.replace(rss, suffix=".rss"))  # the same name
    assert FORMATS["rss"] is rss and "rss2" not in FORMATS


def opml_urls(out: Path) -> list[str]:
    opml = etree.parse(str(out / "index.opml"))
    return [outline.get("xmlUrl") for outline in opml.iter("outline") if outline.get("xmlUrl")]


def test_the_opml_offers_exactly_the_formats_marked_for_it(seeds: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    feeds = feeds_of(build(seeds, tmp_path / "plain"))
    assert [fmt.name for fmt in FORMATS.values() if fmt.in_opml] == ["rss"]
    assert sorted(opml_urls(tmp_path / "plain")) == sorted(feed["urls"]["rss"] for feed in feeds)  # type: ignore[index]
    # Marking Atom (and nothing else) offers it as well, feed by feed.
    monkeypatch.setitem(FORMATS, "atom", dataclasses.replace(FORMATS["atom"], in_opml=True))
    build(seeds, tmp_path / "both")
    assert sorted(opml_urls(tmp_path / "both")) == sorted(feed["urls"][name] for feed in feeds  # type: ignore[index]
                                                          for name in ("rss", "atom"))


def test_archives_are_written_in_exactly_the_archived_formats(txt: Format, generated_dir: Path,
                                                              tmp_path: Path) -> None:
    out = tmp_path / "out"
    build(generated_dir, out)
    archived = {path.suffix for path in out.rglob("*") if path.is_file() and "archive" in path.relative_to(out).parts}
    assert archived == {fmt.suffix for fmt in FORMATS.values() if fmt.archived} == {".xml", ".atom", ".txt"}


def test_rss_and_atom_come_out_the_same_in_either_order(seeds: Path) -> None:
    """The generator RSS and Atom share is the feed's own: neither format leaves anything in it for the other."""
    settings = Settings(site_url=SITE_URL)
    site = render_site(load(seeds, settings.max_file_bytes), settings)  # RSS first, then Atom, of one draft
    rss, atom = FORMATS["rss"], FORMATS["atom"]
    ctx = site_context(settings, registered())
    for feed in site.feeds:
        expected = [site.outputs[fmt.output_name(feed.spec)].body for fmt in (atom, rss)]
        assert [render_feed(feed, fmt, settings) for fmt in (atom, rss)] == expected  # each on its own
        draft = Draft(feed, ctx)
        assert [fmt.render(draft, fmt) for fmt in (atom, rss)] == expected  # Atom first this time

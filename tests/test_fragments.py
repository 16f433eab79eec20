"""Each entry is rendered once per format and render; every feed is its head with those fragments spliced in.

The spliced documents must be byte for byte what feedgen and ``json.dumps`` write
with every entry in the document (the way feeds were rendered before fragments),
and the server's filtered views and archive pages reuse its render's fragments.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from feedgen.entry import FeedEntry
from markupsafe import escape

from feedpub.ingest.loader import load
from feedpub.model import Article
from feedpub.render import html_pages, json_feed, rss_atom
from feedpub.render.common import Draft
from feedpub.render.formats import FORMATS, registered
from feedpub.render.fragments import Fragments, cut, splice
from feedpub.render.site import Site, render_feed, render_site, site_context
from feedpub.settings import Settings
from feedpub.web import create_app

from .conftest import SITE_URL

HUB = "https://hub.example.org/"


class Renders:
    """How often each entry was rendered by feedgen (RSS item, Atom entry) and as a JSON Feed item."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.counts: dict[str, Counter[str]] = {"rss": Counter(), "atom": Counter(), "json": Counter()}
        for name in ("rss", "atom"):
            monkeypatch.setattr(FeedEntry, f"{name}_entry", self._counted(name, getattr(FeedEntry, f"{name}_entry")))
        item = json_feed._item

        def counted_item(article: Article, ctx: object) -> object:
            self.counts["json"][article.url] += 1
            return item(article, ctx)  # type: ignore[arg-type]

        monkeypatch.setattr(json_feed, "_item", counted_item)

    def _counted(self, name: str, render):  # type: ignore[no-untyped-def]
        def counted(entry: FeedEntry, *args, **kwargs):  # type: ignore[no-untyped-def]
            self.counts[name][entry.id()] += 1
            return render(entry, *args, **kwargs)

        return counted

    def total(self) -> int:
        return sum(sum(counts.values()) for counts in self.counts.values())


def documents(site: Site) -> Iterator[tuple[object, str]]:
    """Every feed and archive page of ``site`` with each of its feed formats' output names."""
    for feed in site.feeds:
        yield from ((feed, fmt.name) for fmt in registered() if fmt.feed)
    for feed in site.archives:
        yield from ((feed, fmt.name) for fmt in registered() if fmt.archived)


def test_each_entry_is_rendered_once_per_format_however_many_feeds_list_it(
        generated_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(site_url=SITE_URL, max_items=3)
    corpus = load(generated_dir, settings.max_file_bytes)
    renders = Renders(monkeypatch)
    site = render_site(corpus, settings)
    appearances: dict[str, Counter[str]] = {name: Counter() for name in renders.counts}
    for feed, name in documents(site):
        appearances[name].update(article.url for article in feed.entries)  # type: ignore[attr-defined]
    assert len(site.archives) > 10
    for name, counts in renders.counts.items():
        # Each listed in several documents (the all feed, topics, provider, their archives), rendered once.
        assert sum(appearances[name].values()) > 1.5 * len(appearances[name]), name
        assert set(counts) == set(appearances[name]), name
        assert set(counts.values()) == {1}, name


def test_each_page_entry_is_rendered_once_however_many_pages_list_it(
        generated_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A feed's page lists each entry from the article's page-entry fragment, made once per article."""
    settings = Settings(site_url=SITE_URL)
    corpus = load(generated_dir, settings.max_file_bytes)
    made: Counter[str] = Counter()
    entry = html_pages._entry

    def counted(article: Article) -> dict[str, object]:
        made[article.url] += 1
        return entry(article)

    monkeypatch.setattr(html_pages, "_entry", counted)
    site = render_site(corpus, settings)
    listed = Counter(article.url for feed in site.feeds for article in feed.entries)
    assert sum(listed.values()) > 1.5 * len(listed)  # the all page, topics' and providers' pages
    assert made == Counter(dict.fromkeys(listed, 1))
    for feed in site.feeds[:20]:  # and each page still shows every one of its entries
        page = site.outputs[FORMATS["html"].output_name(feed.spec)].body
        assert page is not None
        assert all(f'<a href="{escape(article.url)}">'.encode() in page for article in feed.entries)


def _reference(feed, fmt_name: str, settings: Settings) -> bytes:  # type: ignore[no-untyped-def]
    """``feed`` as it was rendered before fragments: feedgen (or json.dumps) given every entry at once."""
    ctx = site_context(settings, registered())
    draft = Draft(feed, ctx)
    if fmt_name == "json":
        head = json_feed.render_json(Draft(dataclasses.replace(feed, entries=()), ctx), FORMATS["json"])
        document = json.loads(head)
        document["items"] = [json_feed._item(article, ctx) for article in feed.entries]
        return json_feed.dumps(document)
    fg = rss_atom._generator(draft, FORMATS[fmt_name])
    for article in feed.entries:
        rss_atom._entry(fg.add_entry(order="append"), article, ctx)
    return bytes(fg.rss_str(pretty=True, encoding="UTF-8") if fmt_name == "rss"
                 else fg.atom_str(pretty=True, encoding="UTF-8"))


@pytest.mark.parametrize(("corpus", "extra"), [
    ("generated_dir", {"max_items": 3}),
    ("generated_dir", {"websub_hub": HUB}),
    ("corpus_dir", {"max_items": 2}),
])
def test_spliced_documents_are_what_feedgen_writes_with_every_entry(
        corpus: str, extra: dict[str, object], request: pytest.FixtureRequest) -> None:
    settings = Settings(site_url=SITE_URL, **extra)  # type: ignore[arg-type]
    site = render_site(load(request.getfixturevalue(corpus), settings.max_file_bytes), settings)
    checked = 0
    for feed, name in documents(site):
        body = site.outputs[FORMATS[name].output_name(feed.spec)].body  # type: ignore[attr-defined]
        assert body == _reference(feed, name, settings), FORMATS[name].output_name(feed.spec)  # type: ignore[attr-defined]
        checked += 1
    assert checked > 30


def _served(app, url: str) -> bytes:  # type: ignore[no-untyped-def]
    response = app.test_client().get(url, headers={"Accept-Encoding": "identity"})
    assert response.status_code == 200, url
    return bytes(response.data)


def test_filtered_views_and_archive_pages_reuse_the_renders_fragments(
        generated_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A process that renders its own snapshot (``one_builder`` off) keeps its render's fragments."""
    app = create_app({"TESTING": True, "seeds_dir": str(generated_dir), "site_url": SITE_URL, "max_items": 3,
                      "one_builder": False})
    snapshot = app.extensions["feedpub"].snapshot
    settings = app.extensions["feedpub"].settings
    renders = Renders(monkeypatch)
    for url in ("/feeds/all.xml?limit=2", "/feeds/all.atom?limit=1", "/feeds/all.json?limit=2"):
        _served(app, url)
    assert renders.total() == 0  # the live entries were rendered with the site: nothing is rendered again
    # Archive pages of several feeds share articles: each is rendered on the first page that lists it only.
    archives = sorted(name for name in snapshot.site.deferred if name.endswith(".xml"))
    served = {name: _served(app, f"/feeds/{name}") for name in archives}
    assert set(renders.counts["rss"].values()) == {1}
    listed = sum(len(snapshot.site.deferred[name][0].entries) for name in archives)
    assert listed > 2 * len(renders.counts["rss"])
    # ?type= selects from every member, trimmed or archived: still each entry once.
    for kind in ("video", "article"):
        for fmt in ("xml", "json"):
            served[f"all.{fmt}?type={kind}"] = _served(app, f"/feeds/all.{fmt}?type={kind}")
    assert set(renders.counts["rss"].values()) == {1} and set(renders.counts["json"].values()) <= {1}
    # The same bytes as a render with fragments of its own.
    for name in archives:
        feed, fmt = snapshot.site.deferred[name]
        assert served[name] == render_feed(feed, fmt, settings)


def test_serving_processes_assemble_filtered_views_from_the_builders_fragments(
        generated_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A process that did not build (the builder stands apart) renders no entry: filtered views are
    the stored fragments spliced into a head, archive pages were published whole."""
    config = {"TESTING": True, "seeds_dir": str(generated_dir), "site_url": SITE_URL, "max_items": 3}
    builder = create_app(config)
    own = create_app({**config, "one_builder": False})  # the reference: renders everything itself
    serving = create_app(config)
    assert serving.extensions["feedpub"].site is None  # it loaded nothing
    archives = sorted(name for name in own.extensions["feedpub"].snapshot.site.deferred)
    assert archives
    expected = {url: _served(own, url) for url in
                [f"/feeds/{name}" for name in archives[:20]]
                + [f"/feeds/all.{fmt}?{query}" for fmt in ("xml", "atom", "json")
                   for query in ("limit=2", "type=video", "type=article&min_quality=1")]}
    renders = Renders(monkeypatch)
    served = {url: _served(serving, url) for url in expected}
    assert renders.total() == 0
    assert served == expected
    assert builder.extensions["feedpub"].lease is not None


def test_fragments_keep_at_most_their_size_least_recently_used_first_out(generated_dir: Path) -> None:
    articles = load(generated_dir, Settings().max_file_bytes).articles[:3]
    made: Counter[str] = Counter()

    def make(article: Article) -> dict[str, bytes]:
        made[article.url] += 1
        return {"rss": article.url.encode(), "atom": b"made along"}

    fragments = Fragments(size=2)
    for article in (articles[0], articles[1], articles[0], articles[2], articles[0], articles[1]):
        assert fragments.get("rss", article, make) == article.url.encode()
    assert len(fragments) == 2
    assert fragments.get("atom", articles[0], make) == b"made along"  # kept with the RSS one: not made again
    # articles[1] was the least recently used when articles[2] came in: it alone was made again.
    assert made == {articles[0].url: 1, articles[1].url: 2, articles[2].url: 1}


def test_a_document_that_is_not_its_head_plus_one_entry_is_refused() -> None:
    head = b"<feed>\n  <id>x</id>\n</feed>\n"
    entry = b"  <entry/>\n"
    document = splice(head, b"</feed>", [entry])
    assert document == b"<feed>\n  <id>x</id>\n  <entry/>\n</feed>\n"
    assert cut(document, head, b"</feed>") == entry
    with pytest.raises(ValueError, match="not its head"):
        cut(document.replace(b"<id>x", b"<id>y"), head, b"</feed>")


def test_a_new_builder_renders_only_the_entries_that_changed(generated_dir: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Entry fragments are kept with the published articles: a builder that takes over (a restart)
    renders the feeds an edit touched, and of their entries only the edited one."""
    import gc
    import shutil

    seeds = tmp_path / "seeds"
    shutil.copytree(generated_dir, seeds)
    config = {"TESTING": True, "seeds_dir": str(seeds), "site_url": SITE_URL, "max_items": 5}
    first = create_app(config)
    edited = first.extensions["feedpub"].site.corpus.articles[0]
    del first
    gc.collect()  # the first builder is gone: its lock with it
    path = Path(edited.path)
    text = path.read_text("utf-8")
    path.write_text(text.replace('title: "', 'title: "Edited ', 1) if 'title: "' in text
                    else text.replace("title: ", "title: Edited ", 1), "utf-8")
    renders = Renders(monkeypatch)
    second = create_app(config)
    state = second.extensions["feedpub"]
    assert state.reload()
    assert state.site.rendered > 3  # the feeds that list the edited article were rendered again...
    assert set(renders.counts["rss"]) == {edited.url}  # ...from stored fragments, but for the edited entry
    assert set(renders.counts["json"]) == {edited.url}

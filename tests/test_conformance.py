"""Spec conformance of every feed feedpub writes, for the bundled seeds, the fixture corpus and a generated one.

No offline W3C Feed Validation Service exists, so the rules that matter are
checked here directly: RSS 2.0 (rssboard.org/rss-specification), Atom
(RFC 4287), JSON Feed 1.1 (jsonfeed.org/version/1.1, plus a JSON Schema kept in
tests/jsonfeed-1.1.schema.json), XML well-formedness and encoding, size, and
determinism. Each check walks every feed and reports every violation at once.
"""

from __future__ import annotations

import email.utils
import json
import re
import shutil
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from lxml import etree, html

from feedpub.settings import Settings

from .conftest import SITE_URL
from .readers_support import (
    ARCHIVED_MAX_ITEMS,
    FIXTURE_CORPUS,
    SEEDS,
    archive_count,
    build_site,
    built_sites,
    feed_count,
    feed_files,
    need_module,
    xml_feed_count,
)

HERE = Path(__file__).resolve().parent
SCHEMA_PATH = HERE / "jsonfeed-1.1.schema.json"

ATOM_NS = "http://www.w3.org/2005/Atom"
A = f"{{{ATOM_NS}}}"
DC = "{http://purl.org/dc/elements/1.1/}"
CONTENT = "{http://purl.org/rss/1.0/modules/content/}"
MEDIA = "{http://search.yahoo.com/mrss/}"
JSONFEED_VERSION = "https://jsonfeed.org/version/1.1"
MIB = 1024 * 1024

# RFC 822 date-time as RSS 2.0 uses it (with the 4-digit year RFC 1123 and the RSS profile recommend).
RFC822 = re.compile(
    r"^(?:(Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?(\d{1,2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\d{4}) "
    r"(\d{2}):(\d{2})(?::(\d{2}))? ([+-]\d{4}|GMT|UT|EST|EDT|CST|CDT|MST|MDT|PST|PDT)$"
)
# RFC 3339 date-time, with the upper-case "T" and "Z" RFC 4287 section 3.3 demands.
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
# Characters XML 1.0 allows (production [2] Char).
ILLEGAL_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
EMAIL = re.compile(r"^[^@\s()]+@[^@\s()]+\.[^@\s()]+(?: \(.+\))?$")


# ------------------------------------------------------------------ the feeds under test

@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Static builds of the bundled seeds and of the corpus, at the default settings (max_items included)."""
    return built_sites(tmp_path_factory.mktemp("conformance"), SITE_URL)


def test_every_corpus_is_built(sites: dict[str, Path]) -> None:
    """Every check below covers the three corpora, from files the repository carries or makes."""
    assert set(sites) == {"seeds", "corpus", "corpus-archived", "generated"}
    # Each site has feeds; where feeds go beyond max_items, the RFC 5005 archive pages are checked too.
    assert all(feed_count({name: out}) > 0 for name, out in sites.items())
    assert archive_count({"corpus-archived": sites["corpus-archived"]}) > 0
    assert archive_count({"generated": sites["generated"]}) > 0
    assert archive_count({"corpus": sites["corpus"]}) == 0  # every feed fits in max_items: all complete
    # The busiest generated feeds are full: the size limit below is checked at max_items, not below it.
    assert len(json.loads((sites["generated"] / "all.json").read_bytes())["items"]) == Settings().max_items


class Feed:
    """One feed file of a built site."""

    def __init__(self, site: str, out: Path, path: Path) -> None:
        self.site, self.out, self.path = site, out, path
        self.rel = path.relative_to(out).as_posix()
        self.url = f"{SITE_URL}/feeds/{self.rel}"
        self.name = f"{site}:{self.rel}"
        self.body = path.read_bytes()

    def xml(self) -> etree._Element:
        return etree.fromstring(self.body, _strict_parser())

    def json(self) -> dict:
        return json.loads(self.body.decode("utf-8"))


def _strict_parser() -> etree.XMLParser:
    return etree.XMLParser(recover=False, resolve_entities=False, no_network=True, huge_tree=False)


def feeds(sites: dict[str, Path], suffix: str) -> Iterator[Feed]:
    for site, out in sites.items():
        for path in feed_files(out, suffix):
            yield Feed(site, out, path)


def check(problems: list[str]) -> None:
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:60])


# ------------------------------------------------------------------ shared rules

def absolute_http(url: str | None) -> bool:
    if not url:
        return False
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and url == url.strip() and " " not in url


def html_urls(fragment: str) -> list[str]:
    """Every href/src (and srcset URL) inside an HTML fragment."""
    if not fragment.strip():
        return []
    urls = []
    for element in html.fragments_fromstring(f"<div>{fragment}</div>")[0].iter():
        if not isinstance(element.tag, str):
            continue
        for name in ("href", "src", "poster", "cite", "action"):
            if element.get(name) is not None:
                urls.append(element.get(name))
        if element.get("srcset"):
            urls += [part.split()[0] for part in element.get("srcset").split(",") if part.strip()]
    return urls


def rfc822_problem(value: str | None) -> str | None:
    if value is None:
        return "missing"
    match = RFC822.match(value)
    if not match:
        return f"not an RFC 822 date: {value!r}"
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return f"unparseable RFC 822 date: {value!r}"
    if match.group(1) and moment.strftime("%a") != match.group(1):
        return f"wrong day of week in {value!r} (it was a {moment.strftime('%a')})"
    return None


def rfc3339_problem(value: str | None) -> str | None:
    if value is None:
        return "missing"
    if not RFC3339.match(value):
        return f"not an RFC 3339 date-time: {value!r}"
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return f"impossible RFC 3339 date-time: {value!r}"
    return None


def text(element: etree._Element | None) -> str:
    return "" if element is None else (element.text or "").strip()


# ------------------------------------------------------------------ XML: well-formed, UTF-8, legal characters

def test_rfc_5005_complete_feeds_have_no_archives_and_the_others_are_full(sites: dict[str, Path]) -> None:
    """fh:complete exactly where the live document holds the whole feed (RFC 5005 sections 2 and 4)."""
    history = "{http://purl.org/syndication/history/1.0}"
    seen = {True: 0, False: 0}
    for name, out in sites.items():
        max_items = ARCHIVED_MAX_ITEMS if name == "corpus-archived" else Settings().max_items
        for path in feed_files(out, ".xml") + feed_files(out, ".atom"):
            if "archive" in path.relative_to(out).parts:
                continue
            root = etree.parse(str(path)).getroot()
            head = root.find("channel") if root.tag == "rss" else root
            complete = [child for child in head if child.tag == f"{history}complete"]
            entries = head.findall("item") if root.tag == "rss" else head.findall(f"{{{ATOM_NS}}}entry")
            rels = {link.get("rel") for link in head.iter(f"{{{ATOM_NS}}}link")}
            archive_dir = path.with_suffix("") / "archive"
            seen[bool(complete)] += 1
            assert len(complete) <= 1 and not root.findall(f".//{history}archive"), path
            if complete:
                assert len(entries) <= max_items and "prev-archive" not in rels and not archive_dir.exists(), path
            else:  # incomplete only when the live document is full (its older entries are in archives)
                assert len(entries) == max_items, path
    assert seen[True] and seen[False]  # both kinds are checked


def test_xml_is_well_formed_utf8_without_illegal_characters(sites: dict[str, Path]) -> None:
    problems = []
    files = [*feeds(sites, ".xml"), *feeds(sites, ".atom"), *feeds(sites, ".opml")]
    assert {f.rel for f in files} >= {"all.xml", "all.atom", "index.opml"}
    for feed in files:
        body = feed.body
        declaration = re.match(rb"<\?xml version=(['\"])1\.0\1 encoding=(['\"])(?i:utf-8)\2\?>\n", body)
        if not declaration:
            problems.append(f"{feed.name}: does not start with an XML declaration naming UTF-8: {body[:60]!r}")
        try:
            decoded = body.decode("utf-8")  # strict: no invalid sequences, no lone surrogates
        except UnicodeDecodeError as exc:
            problems.append(f"{feed.name}: not UTF-8: {exc}")
            continue
        if decoded.startswith("\ufeff"):
            problems.append(f"{feed.name}: starts with a byte-order mark")
        if (bad := ILLEGAL_XML_CHAR.search(decoded)) is not None:
            problems.append(f"{feed.name}: character U+{ord(bad.group()):04X} is not allowed in XML 1.0")
        if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
            problems.append(f"{feed.name}: has a DOCTYPE/entity declarations")
        try:
            feed.xml()
        except etree.XMLSyntaxError as exc:
            problems.append(f"{feed.name}: not well-formed: {exc}")
    check(problems)


def test_json_is_utf8_without_illegal_characters(sites: dict[str, Path]) -> None:
    problems = []
    for feed in [*feeds(sites, ".json")]:
        try:
            decoded = feed.body.decode("utf-8")
            document = json.loads(decoded)
        except (UnicodeDecodeError, ValueError) as exc:
            problems.append(f"{feed.name}: not UTF-8 JSON: {exc}")
            continue
        if decoded.startswith("\ufeff"):
            problems.append(f"{feed.name}: starts with a byte-order mark")
        for string in _strings(document):
            if (bad := ILLEGAL_XML_CHAR.search(string)) is not None:
                problems.append(f"{feed.name}: control/non-character U+{ord(bad.group()):04X} in {string[:60]!r}")
    check(problems)


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def test_every_feed_is_under_one_mib_at_the_default_max_items(sites: dict[str, Path]) -> None:
    sizes = {f.name: len(f.body) for suffix in (".xml", ".atom", ".json") for f in feeds(sites, suffix)}
    assert len(sizes) == 3 * feed_count(sites) + 2 * archive_count(sites)
    assert archive_count(sites) > 0  # the archives are checked too
    check([f"{name}: {size} bytes" for name, size in sizes.items() if size >= MIB])


# ------------------------------------------------------------------ RSS 2.0

def rss_problems(body: bytes, url: str) -> list[str]:
    """Every RSS 2.0 rule feedpub's RSS must follow, for one feed served at ``url``."""
    problems: list[str] = []
    say = problems.append
    root = etree.fromstring(body, _strict_parser())
    if root.tag != "rss" or root.get("version") != "2.0":
        return [f"root is <{root.tag} version={root.get('version')!r}>, not <rss version='2.0'>"]
    channels = root.findall("channel")
    if len(channels) != 1:
        return [f"{len(channels)} <channel> elements"]
    channel = channels[0]
    for name in ("title", "link", "description"):
        if len(channel.findall(name)) != 1 or not text(channel.find(name)):
            say(f"channel <{name}> missing, empty or repeated")
    self_links = [link for link in channel.findall(f"{A}link") if link.get("rel") == "self"]
    if [link.get("href") for link in self_links] != [url]:
        say(f'atom:link rel="self" is {[link.get("href") for link in self_links]}, expected [{url!r}]')
    elif self_links[0].get("type") != "application/rss+xml":
        say(f'atom:link rel="self" has type {self_links[0].get("type")!r}')
    for name in ("pubDate", "lastBuildDate"):
        for element in channel.findall(name):
            if problem := rfc822_problem(element.text):
                say(f"channel <{name}>: {problem}")
    for name in ("managingEditor", "webMaster"):
        for element in channel.findall(name):
            if not EMAIL.match(text(element)):
                say(f"channel <{name}> is not an e-mail address: {text(element)!r}")
    for element in channel.findall("ttl"):
        if not text(element).isdigit():
            say(f"<ttl> is not a whole number of minutes: {text(element)!r}")
    guids: Counter[str] = Counter()
    for index, item in enumerate(channel.findall("item")):
        where = f"item {index + 1}"
        if not text(item.find("title")) and not text(item.find("description")):
            say(f"{where}: neither <title> nor <description>")
        for name in ("title", "link", "description", "guid", "pubDate", "author", "comments", "source"):
            if len(item.findall(name)) > 1:
                say(f"{where}: more than one <{name}>")
        guid = item.find("guid")
        if guid is None or not text(guid):
            say(f"{where}: no <guid>")
        else:
            guids[text(guid)] += 1
            # isPermaLink defaults to true: then the guid must be a URL (and here, the item's link).
            if guid.get("isPermaLink", "true") == "true" and not absolute_http(text(guid)):
                say(f"{where}: permalink guid is not an absolute http(s) URL: {text(guid)!r}")
            elif guid.get("isPermaLink", "true") == "true" and text(guid) != text(item.find("link")):
                say(f"{where}: permalink guid {text(guid)!r} differs from <link> {text(item.find('link'))!r}")
        if problem := rfc822_problem(item.findtext("pubDate")):
            say(f"{where}: <pubDate> {problem}")
        for author in item.findall("author"):
            if not EMAIL.match(text(author)):
                say(f"{where}: <author> without an e-mail address ({text(author)!r}); use dc:creator")
        if not text(item.find(f"{DC}creator")):
            say(f"{where}: no dc:creator")
        for link in item.findall(f"{A}link"):
            if link.get("rel") in (None, "", "alternate"):
                say(f"{where}: atom:link {link.get('href')!r} without a rel other than alternate")
    for guid_text, n in guids.items():
        if n > 1:
            say(f"guid {guid_text!r} appears {n} times")
    return problems + _rss_url_problems(channel)


def test_rss_2_0(sites: dict[str, Path]) -> None:
    problems: list[str] = []
    checked = 0
    for feed in feeds(sites, ".xml"):
        checked += 1
        problems += [f"{feed.name}: {p}" for p in rss_problems(feed.body, feed.url)]
    assert checked == xml_feed_count(sites)
    check(problems)


def _rss_url_problems(channel: etree._Element) -> list[str]:
    """Every URL of an RSS channel must be absolute http(s): elements, attributes and HTML content."""
    found: list[tuple[str, str | None]] = []
    for element in channel.iter():
        if not isinstance(element.tag, str):
            continue
        local = etree.QName(element).localname
        namespace = etree.QName(element).namespace
        if namespace is None and local in ("link", "docs", "comments", "url"):
            found.append((f"<{local}>", text(element)))
        if namespace is None and local == "guid" and element.get("isPermaLink", "true") == "true":
            found.append(("<guid>", text(element)))
        for attribute in ("href", "url", "domain" if local == "cloud" else ""):
            if attribute and element.get(attribute) is not None:
                found.append((f"<{local} {attribute}>", element.get(attribute)))
        if (namespace is None and local == "description") or (namespace and element.tag == f"{CONTENT}encoded"):
            found += [(f"<{local}> HTML", url) for url in html_urls(element.text or "")]
    return [f"{where}: not an absolute http(s) URL: {url!r}" for where, url in found if not absolute_http(url)]


# ------------------------------------------------------------------ Atom (RFC 4287)

def atom_problems(body: bytes, url: str) -> list[str]:
    """Every RFC 4287 rule feedpub's Atom must follow, for one feed served at ``url``."""
    problems: list[str] = []
    say = problems.append
    root = etree.fromstring(body, _strict_parser())
    if root.tag != f"{A}feed":
        return [f"root is {root.tag}, not atom:feed"]
    for name in ("id", "title", "updated"):
        if len(root.findall(f"{A}{name}")) != 1 or not text(root.find(f"{A}{name}")):
            say(f"feed atom:{name} missing, empty or repeated")
    if problem := rfc3339_problem(root.findtext(f"{A}updated")):
        say(f"feed atom:updated {problem}")
    feed_authors = root.findall(f"{A}author")
    problems += [f"feed {p}" for p in _person_problems(feed_authors)]
    links = root.findall(f"{A}link")
    self_links = [link.get("href") for link in links if link.get("rel") == "self"]
    if self_links != [url]:
        say(f'rel="self" links are {self_links}, expected [{url!r}]')
    problems += [f"feed {p}" for p in _alternate_problems(links, required=False)]
    for name in ("icon", "logo", "generator", "rights", "subtitle"):
        if len(root.findall(f"{A}{name}")) > 1:
            say(f"more than one atom:{name}")
    ids: Counter[str] = Counter()
    updated_dates = []
    for index, entry in enumerate(root.findall(f"{A}entry")):
        where = f"entry {index + 1}"
        for name in ("id", "title", "updated"):
            if len(entry.findall(f"{A}{name}")) != 1 or not text(entry.find(f"{A}{name}")):
                say(f"{where}: atom:{name} missing, empty or repeated")
        for name in ("content", "summary", "published", "rights", "source"):
            if len(entry.findall(f"{A}{name}")) > 1:
                say(f"{where}: more than one atom:{name}")
        entry_id = text(entry.find(f"{A}id"))
        ids[entry_id] += 1
        for name in ("updated", "published"):
            value = entry.findtext(f"{A}{name}")
            if value is None and name == "published":
                continue
            if problem := rfc3339_problem(value):
                say(f"{where}: atom:{name} {problem}")
            elif name == "updated":
                updated_dates.append(datetime.fromisoformat(value.replace("Z", "+00:00")))
        entry_authors = entry.findall(f"{A}author")
        if not feed_authors and not entry_authors:
            say(f"{where}: no atom:author, and the feed has none either")
        problems += [f"{where}: {p}" for p in _person_problems(entry_authors)]
        entry_links = entry.findall(f"{A}link")
        problems += [f"{where}: {p}" for p in _alternate_problems(entry_links, required=True)]
        for link in entry_links:
            if link.get("rel") is None:
                say(f"{where}: link {link.get('href')!r} has no rel (so it is another alternate)")
            elif link.get("rel") not in ("alternate", "related", "enclosure", "via", "self"):
                say(f"{where}: link {link.get('href')!r} has unexpected rel {link.get('rel')!r}")
        for content in entry.findall(f"{A}content"):
            if content.get("type", "text") not in ("text", "html", "xhtml") and content.get("src") is None:
                say(f"{where}: atom:content type {content.get('type')!r}")
    for entry_id, n in ids.items():
        if n > 1:
            say(f"entry id {entry_id!r} appears {n} times")
    feed_updated = root.findtext(f"{A}updated")
    if (updated_dates and feed_updated and RFC3339.match(feed_updated)
            and datetime.fromisoformat(feed_updated.replace("Z", "+00:00")) < max(updated_dates)):
        say(f"feed atom:updated {feed_updated} is older than its newest entry")
    return problems + _atom_url_problems(root)


def test_atom_rfc_4287(sites: dict[str, Path]) -> None:
    problems: list[str] = []
    checked = 0
    for feed in feeds(sites, ".atom"):
        checked += 1
        problems += [f"{feed.name}: {p}" for p in atom_problems(feed.body, feed.url)]
    assert checked == xml_feed_count(sites)
    check(problems)


def _person_problems(persons: list[etree._Element]) -> list[str]:
    problems = []
    for person in persons:
        if len(person.findall(f"{A}name")) != 1 or not text(person.find(f"{A}name")):
            problems.append("atom:author without exactly one non-empty atom:name")
        for element in person.findall(f"{A}email"):
            if "@" not in text(element):
                problems.append(f"atom:email is not an address: {text(element)!r}")
    return problems


def _alternate_problems(links: list[etree._Element], required: bool) -> list[str]:
    """RFC 4287 4.1.1/4.1.2: at most one alternate link per (type, hreflang); entries need one."""
    alternates = Counter((link.get("type"), link.get("hreflang")) for link in links
                         if link.get("rel", "alternate") == "alternate")
    problems = [f"{n} rel=\"alternate\" links with type={key[0]!r} hreflang={key[1]!r}"
                for key, n in alternates.items() if n > 1]
    if required and not alternates:
        problems.append('no rel="alternate" link')
    return problems


def _atom_url_problems(root: etree._Element) -> list[str]:
    found: list[tuple[str, str | None]] = []
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        local = etree.QName(element).localname
        if element.tag in (f"{A}uri", f"{A}icon", f"{A}logo", f"{A}id"):
            found.append((f"atom:{local}", text(element)))
        for attribute in ("href", "url", "uri", "src"):
            if element.get(attribute) is not None:
                found.append((f"<{local} {attribute}>", element.get(attribute)))
        if element.tag in (f"{A}content", f"{A}summary") and element.get("type") == "html":
            found += [(f"atom:{local} HTML", url) for url in html_urls(element.text or "")]
    return [f"{where}: not an absolute http(s) URL: {url!r}" for where, url in found if not absolute_http(url)]


# ------------------------------------------------------------------ JSON Feed 1.1

@pytest.fixture(scope="module")
def jsonfeed_validator():  # type: ignore[no-untyped-def]
    jsonschema = need_module("jsonschema")
    schema = json.loads(SCHEMA_PATH.read_text("utf-8"))
    validator_class = jsonschema.Draft202012Validator
    validator_class.check_schema(schema)
    checker = validator_class.FORMAT_CHECKER
    # Without the format libraries (jsonschema[format-nongpl]) 'uri' and 'date-time' pass anything.
    missing = {"uri", "date-time"} - set(checker.checkers)
    assert not missing, f"jsonschema cannot check the formats {missing}: pip install 'jsonschema[format-nongpl]'"
    return validator_class(schema, format_checker=checker)


def test_the_kept_schema_rejects_what_json_feed_1_1_forbids(jsonfeed_validator) -> None:  # type: ignore[no-untyped-def]
    good = {"version": JSONFEED_VERSION, "title": "t", "authors": [{"name": "a"}],
            "items": [{"id": "https://example.test/1", "url": "https://example.test/1", "content_html": "<p>x</p>",
                       "date_published": "2020-01-31T22:41:00Z", "_ext": {"about": "https://example.test/"}}]}
    assert list(jsonfeed_validator.iter_errors(good)) == []
    broken = {
        "1.0 version": lambda d: d.update(version="https://jsonfeed.org/version/1"),
        "no title": lambda d: d.pop("title"),
        "numeric id": lambda d: d["items"][0].update(id=1),
        "no content": lambda d: d["items"][0].pop("content_html"),
        "RFC 822 date": lambda d: d["items"][0].update(date_published="Fri, 31 Jan 2020 22:41:00 +0000"),
        "relative url": lambda d: d["items"][0].update(url="/relative/1"),
        "empty author": lambda d: d.update(authors=[{}]),
        "unknown key": lambda d: d.update(homepage="https://example.test/"),
        "extension that is not an object": lambda d: d["items"][0].update(_ext=[1]),
    }
    for what, change in broken.items():
        document = json.loads(json.dumps(good))
        change(document)
        assert list(jsonfeed_validator.iter_errors(document)), f"the schema accepts a feed with {what}"


def json_problems(document: dict, url: str, validator) -> list[str]:  # type: ignore[no-untyped-def]
    """Every JSON Feed 1.1 rule feedpub's JSON must follow, for one feed served at ``url``."""
    problems: list[str] = []
    say = problems.append
    for error in validator.iter_errors(document):
        path = "/".join("*" if isinstance(p, int) else str(p) for p in error.absolute_path)
        hint = ""
        if error.absolute_path and str(error.absolute_path[-1]).startswith("_"):
            hint = " [JSON Feed 1.1 'Extensions': a key starting with '_' names a custom *object*]"
        say(f"schema: at /{path}: {error.validator} {error.validator_value!r}{hint} fails for {error.instance!r}"[:300])
    if document.get("version") != JSONFEED_VERSION:
        say(f"version is {document.get('version')!r}")
    if not isinstance(document.get("title"), str) or not document["title"].strip():
        say("no title")
    if document.get("feed_url") != url:
        say(f"feed_url is {document.get('feed_url')!r}, expected {url!r}")
    if not absolute_http(document.get("home_page_url")):
        say(f"home_page_url is {document.get('home_page_url')!r}")
    problems += [f"feed {p}" for p in _json_author_problems(document, required=True)]
    items = document.get("items")
    if not isinstance(items, list):
        return [*problems, "items is not an array"]
    ids: Counter[str] = Counter()
    for index, item in enumerate(items):
        where = f"item {index + 1}"
        if not isinstance(item.get("id"), str) or not item["id"]:
            say(f"{where}: id is not a non-empty string: {item.get('id')!r}")
        else:
            ids[item["id"]] += 1
        if not any(isinstance(item.get(key), str) for key in ("content_html", "content_text")):
            say(f"{where}: neither content_html nor content_text")
        for key in ("date_published", "date_modified"):
            if key in item and (problem := rfc3339_problem(item[key])):
                say(f"{where}: {key} {problem}")
        problems += [f"{where}: {p}" for p in _json_author_problems(item, required=False)]
    for item_id, n in ids.items():
        if n > 1:
            say(f"item id {item_id!r} appears {n} times")
    return problems + [f"{where}: not an absolute http(s) URL: {url!r}"
                       for where, url in _json_urls(document) if not absolute_http(url)]


def test_json_feed_1_1(sites: dict[str, Path], jsonfeed_validator) -> None:  # type: ignore[no-untyped-def]
    problems: Counter[str] = Counter()
    examples: dict[str, str] = {}
    checked = 0
    for feed in feeds(sites, ".json"):
        checked += 1
        for problem in json_problems(feed.json(), feed.url, jsonfeed_validator):
            # The same schema violation in every item of every feed is reported once, with a count.
            key = re.sub(r"^item \d+: ", "item *: ", problem)
            if key.startswith("schema:"):
                key = key.split(" fails for ")[0]
            problems[key] += 1
            examples.setdefault(key, f"{feed.name}: {problem}")
    assert checked == feed_count(sites)
    check([f"{n}x {examples[key]}" for key, n in problems.items()])


def _json_author_problems(holder: dict, required: bool) -> list[str]:
    """1.1 ``authors`` (an array of objects with a name), and the 1.0 ``author`` beside it for older readers."""
    if "authors" not in holder and "author" not in holder:
        return ["no authors"] if required else []
    authors = holder.get("authors")
    if not isinstance(authors, list) or not authors or not all(isinstance(a, dict) and a.get("name") for a in authors):
        return [f"authors is not a non-empty array of named authors: {authors!r}"]
    if holder.get("author") != authors[0]:
        return [f"the 1.0 author {holder.get('author')!r} is not the first 1.1 author {authors[0]!r}"]
    return []


def _json_urls(document: dict) -> Iterator[tuple[str, str | None]]:
    for key in ("home_page_url", "feed_url", "next_url", "icon", "favicon"):
        if key in document:
            yield key, document[key]
    for author in [*document.get("authors", []), document.get("author") or {}]:
        for key in ("url", "avatar"):
            if key in author:
                yield f"author {key}", author[key]
    for index, item in enumerate(document.get("items", [])):
        where = f"item {index + 1}"
        for key in ("url", "external_url", "image", "banner_image"):
            if key in item:
                yield f"{where} {key}", item[key]
        for author in [*item.get("authors", []), item.get("author") or {}]:
            for key in ("url", "avatar"):
                if key in author:
                    yield f"{where} author {key}", author[key]
        for attachment in item.get("attachments", []):
            yield f"{where} attachment", attachment.get("url")
        for related in _related(item):
            yield f"{where} related", related.get("url")
        for url in html_urls(item.get("content_html", "")):
            yield f"{where} content_html", url


def _related(item: dict) -> list[dict]:
    """Related coverage from the ``_related`` extension: an array, or an object holding one."""
    value = item.get("_related", [])
    if isinstance(value, dict):
        value = next((v for k, v in value.items() if k in ("items", "related", "links") and isinstance(v, list)), [])
    return [r for r in value if isinstance(r, dict)]


# ------------------------------------------------------------------ the three formats agree

def test_rss_atom_and_json_describe_the_same_entries(sites: dict[str, Path]) -> None:
    """Same ids, titles, links, dates and related links, in the same order, in all three formats."""
    problems: list[str] = []
    id_of_link: dict[str, set[str]] = {}
    for feed in feeds(sites, ".json"):
        say = lambda what, f=feed: problems.append(f"{f.name}: {what}")  # noqa: E731
        items = feed.json()["items"]
        rss = Feed(feed.site, feed.out, feed.path.with_suffix(".xml")).xml()
        atom = Feed(feed.site, feed.out, feed.path.with_suffix(".atom")).xml()
        rss_items = rss.findall("channel/item")
        atom_entries = atom.findall(f"{A}entry")
        if not len(items) == len(rss_items) == len(atom_entries):
            say(f"{len(items)} JSON items, {len(rss_items)} RSS items, {len(atom_entries)} Atom entries")
            continue
        for index, (item, rss_item, entry) in enumerate(zip(items, rss_items, atom_entries, strict=True)):
            where = f"entry {index + 1}"
            ids = {item["id"], text(rss_item.find("guid")), text(entry.find(f"{A}id"))}
            links = {item.get("url"), text(rss_item.find("link")),
                     *[link.get("href") for link in entry.findall(f"{A}link") if link.get("rel") == "alternate"]}
            titles = {item.get("title"), rss_item.findtext("title"), entry.findtext(f"{A}title")}
            if len(ids) != 1 or len(links) != 1 or len(titles) != 1:
                say(f"{where}: formats disagree: ids {ids}, links {links}, titles {titles}")
                continue
            id_of_link.setdefault(links.pop(), set()).add(ids.pop())
            published = datetime.fromisoformat(item["date_published"].replace("Z", "+00:00"))
            dates = {published, email.utils.parsedate_to_datetime(rss_item.findtext("pubDate")),
                     datetime.fromisoformat(entry.findtext(f"{A}published").replace("Z", "+00:00"))}
            if len(dates) != 1:
                say(f"{where}: formats disagree on the date: {dates}")
            related = [r.get("url") for r in _related(item)]
            rss_related = [link.get("href") for link in rss_item.findall(f"{A}link") if link.get("rel") == "related"]
            atom_related = [link.get("href") for link in entry.findall(f"{A}link") if link.get("rel") == "related"]
            if not related == rss_related == atom_related:
                say(f"{where}: related links differ: JSON {related}, RSS {rss_related}, Atom {atom_related}")
    # An article has one id wherever it appears (all, its topics, its provider).
    problems += [f"{link}: several ids {ids}" for link, ids in id_of_link.items() if len(ids) > 1]
    assert any(len(_related(item)) for f in feeds(sites, ".json") for item in f.json()["items"])
    check(problems)


# ------------------------------------------------------------------ determinism

def _tree(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_two_builds_are_byte_identical(tmp_path: Path) -> None:
    corpus = FIXTURE_CORPUS
    copy = tmp_path / "elsewhere" / "corpus-copy"
    shutil.copytree(corpus, copy)  # another path, fresh mtimes: neither may leak into the output
    first = build_site(corpus, tmp_path / "first", SITE_URL)
    second = build_site(copy, tmp_path / "second", SITE_URL)
    one, two = _tree(first), _tree(second)
    assert sorted(one) == sorted(two)
    assert [name for name in one if one[name] != two[name]] == []
    # Each file's mtime is its feed's newest entry (the manifest is only bookkeeping).
    mtimes = {name: ((first / name).stat().st_mtime, (second / name).stat().st_mtime)
              for name in one if not name.startswith(".")}
    assert [name for name, (a, b) in mtimes.items() if a != b] == []
    seeds_one = _tree(build_site(SEEDS, tmp_path / "s1", SITE_URL))
    assert seeds_one == _tree(build_site(SEEDS, tmp_path / "s2", SITE_URL))


UNRELATED = """---
title: "An unrelated article about gardening"
excerpt: "Nothing to do with anything else in the corpus."
publishedDateTime: {date}
webUrl: "https://unrelated.example/gardening/tomatoes"
type: article
published: true
provider:
  name: Unrelated Example
  domain: unrelated.example
topics:
  - Gardening
---
"""


def _ids(out: Path, rel: str) -> dict[str, list[str]]:
    """Feed-level and entry ids of one feed in the three formats."""
    rss = etree.fromstring((out / f"{rel}.xml").read_bytes())
    atom = etree.fromstring((out / f"{rel}.atom").read_bytes())
    document = json.loads((out / f"{rel}.json").read_bytes())
    return {
        "rss self": [link.get("href") for link in rss.findall(f"channel/{A}link") if link.get("rel") == "self"],
        "rss guids": [text(guid) for guid in rss.iter("guid")],
        "atom feed id": [text(atom.find(f"{A}id"))],
        "atom ids": [text(entry.find(f"{A}id")) for entry in atom.findall(f"{A}entry")],
        "json feed_url": [document.get("feed_url")],
        "json ids": [item["id"] for item in document["items"]],
    }


def _page(rel: str) -> str:
    """The readable page of the feed ``rel``: topics live under topics/, the others beside their feeds.

    An archive page (``<feed>/archive/<month>``) has no page of its own: it names its feed's page.
    """
    rel = re.sub(r"/archive/[^/]+$", "", rel)
    return f"{rel}.html" if rel == "all" or rel.startswith("providers/") else f"topics/{rel}.html"


def test_ids_are_stable_when_an_unrelated_article_is_added(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    shutil.copytree(FIXTURE_CORPUS, seeds / "corpus")
    shutil.copytree(SEEDS, seeds / "bundled")
    before = build_site(seeds, tmp_path / "before", SITE_URL)
    items = json.loads((before / "all.json").read_bytes())["items"]
    # Dated between two existing entries, so it lands in the middle of all.* (not newest, not oldest).
    middle = datetime.fromisoformat(items[10]["date_published"].replace("Z", "+00:00")) - timedelta(seconds=1)
    (seeds / "unrelated.md").write_text(
        UNRELATED.format(date=middle.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")), "utf-8")
    after = build_site(seeds, tmp_path / "after", SITE_URL)
    new_id = "https://unrelated.example/gardening/tomatoes"
    old_tree, new_tree = _tree(before), _tree(after)
    assert set(old_tree) <= set(new_tree), "a feed disappeared"
    touched = {"all", "gardening", "providers/unrelated.example"}
    added = set(new_tree) - set(old_tree)
    new_feeds = {name for rel in touched - {"all"} for name in (f"{rel}.xml", f"{rel}.atom", f"{rel}.json", _page(rel))}
    assert new_feeds <= added
    # Anything else new is an RFC 5005 archive page of the two new feeds.
    assert all(name.startswith(tuple(f"{rel}/archive/" for rel in touched - {"all"})) for name in added - new_feeds)
    for rel in sorted({name.rsplit(".", 1)[0] for name in old_tree if name.endswith(".atom")}):
        if rel in touched:
            continue
        # Feeds the new article is not in do not change at all, nor do their pages (archives have neither JSON
        # nor a page of their own).
        names = (f"{rel}.xml", f"{rel}.atom") if "/archive/" in rel else (f"{rel}.xml", f"{rel}.atom",
                                                                           f"{rel}.json", _page(rel))
        for name in names:
            assert old_tree[name] == new_tree[name], f"{name} changed"
    # Besides the touched feeds and their pages, only the lists of every feed change.
    changed = {name for name in old_tree if old_tree[name] != new_tree[name]}
    assert changed - {name for rel in touched for name in (f"{rel}.xml", f"{rel}.atom", f"{rel}.json", _page(rel))} \
        <= {"index.json", "index.opml", "index.html", ".feedpub-manifest.json"}
    old, new = _ids(before, "all"), _ids(after, "all")
    for key in ("rss self", "atom feed id", "json feed_url"):
        assert old[key] == new[key], key
    for key in ("rss guids", "atom ids", "json ids"):
        assert new_id in new[key], key
        kept = [entry_id for entry_id in new[key] if entry_id != new_id]
        # Every entry keeps its id and its place; the oldest one drops out at max_items.
        assert kept == old[key][: len(kept)] and len(kept) >= len(old[key]) - 1, key


# ------------------------------------------------------------------ the checks themselves catch violations

def _mutate_xml(body: bytes, change) -> bytes:  # type: ignore[no-untyped-def]
    root = etree.fromstring(body)
    change(root)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _first(root: etree._Element, path: str) -> etree._Element:
    found = root.find(path)
    assert found is not None, path
    return found


def _duplicate(root: etree._Element, path: str) -> None:
    element = _first(root, path)
    element.addnext(etree.fromstring(etree.tostring(element)))


RSS_VIOLATIONS = {
    "wrong self link": (lambda r: _first(r, f"channel/{A}link[@rel='self']").set("href", "http://elsewhere.test/x.xml"),
                        'rel="self"'),
    "no channel description": (lambda r: _first(r, "channel").remove(_first(r, "channel/description")),
                               "<description>"),
    "author without e-mail": (lambda r: _first(r, f"channel/item/{DC}creator").addnext(
        etree.fromstring("<author>The Next Web</author>")), "without an e-mail"),
    "ISO date": (lambda r: setattr(_first(r, "channel/item/pubDate"), "text", "2020-01-31T22:41:00Z"), "RFC 822"),
    "wrong weekday": (lambda r: setattr(_first(r, "channel/item/pubDate"), "text", "Mon, 31 Jan 2020 22:41:00 +0000"),
                      "day of week"),
    "duplicate guid": (lambda r: _duplicate(r, "channel/item"), "appears 2 times"),
    "relative link": (lambda r: setattr(_first(r, "channel/link"), "text", "/"), "absolute"),
    "relative URL in HTML": (lambda r: setattr(_first(r, f"channel/item/{CONTENT}encoded"), "text",
                                               '<p><a href="/story">x</a></p>'), "absolute"),
    "related link without rel": (lambda r: _first(r, f"channel/item/{A}link[@rel='related']").attrib.pop("rel"),
                                 "without a rel"),
}

ATOM_VIOLATIONS = {
    "wrong self link": (lambda r: _first(r, f"{A}link[@rel='self']").set("href", "http://elsewhere.test/x.atom"),
                        'rel="self"'),
    "no author anywhere": (lambda r: [e.getparent().remove(e) for e in list(r.iter(f"{A}author"))],
                           "no atom:author"),
    "two alternates of one type": (lambda r: _duplicate(r, f"{A}entry/{A}link[@rel='alternate']"),
                                   'rel="alternate" links'),
    "related link without rel": (lambda r: _first(r, f"{A}entry/{A}link[@rel='related']").attrib.pop("rel"),
                                 "has no rel"),
    "date with a space": (lambda r: setattr(_first(r, f"{A}entry/{A}updated"), "text", "2020-01-31 22:41:00+00:00"),
                          "RFC 3339"),
    "RFC 822 date": (lambda r: setattr(_first(r, f"{A}updated"), "text", "Fri, 31 Jan 2020 22:41:00 +0000"),
                     "RFC 3339"),
    "duplicate entry": (lambda r: _duplicate(r, f"{A}entry"), "appears 2 times"),
    "no entry title": (lambda r: _first(r, f"{A}entry").remove(_first(r, f"{A}entry/{A}title")), "atom:title"),
    "relative author uri": (lambda r: setattr(_first(r, f"{A}entry/{A}author/{A}uri"), "text", "/thenextweb"),
                            "absolute"),
}

JSON_VIOLATIONS = {
    "numeric id": (lambda d: d["items"][0].update(id=1), "id"),
    "no content": (lambda d: d["items"][0].pop("content_html"), "content"),
    "no 1.0 author": (lambda d: d.pop("author"), "1.0 author"),
    "relative image": (lambda d: d["items"][0].update(image="/lead.jpg"), "absolute"),
    "duplicate id": (lambda d: d["items"].append(dict(d["items"][0])), "appears 2 times"),
    "RFC 822 date": (lambda d: d["items"][0].update(date_published="Fri, 31 Jan 2020 22:41:00 +0000"), "date"),
    "wrong feed_url": (lambda d: d.update(feed_url="http://elsewhere.test/x.json"), "feed_url"),
}


@pytest.mark.parametrize("violation", sorted(RSS_VIOLATIONS))
def test_rss_checks_catch(violation: str, sites: dict[str, Path]) -> None:
    change, expected = RSS_VIOLATIONS[violation]
    body, url = (sites["seeds"] / "ai.xml").read_bytes(), f"{SITE_URL}/feeds/ai.xml"
    assert rss_problems(body, url) == []
    found = rss_problems(_mutate_xml(body, change), url)
    assert any(expected in problem for problem in found), found


@pytest.mark.parametrize("violation", sorted(ATOM_VIOLATIONS))
def test_atom_checks_catch(violation: str, sites: dict[str, Path]) -> None:
    change, expected = ATOM_VIOLATIONS[violation]
    body, url = (sites["seeds"] / "ai.atom").read_bytes(), f"{SITE_URL}/feeds/ai.atom"
    assert atom_problems(body, url) == []
    found = atom_problems(_mutate_xml(body, change), url)
    assert any(expected in problem for problem in found), found


@pytest.mark.parametrize("violation", sorted(JSON_VIOLATIONS))
def test_json_checks_catch(violation: str, sites: dict[str, Path], jsonfeed_validator) -> None:  # type: ignore[no-untyped-def]
    change, expected = JSON_VIOLATIONS[violation]
    document, url = json.loads((sites["seeds"] / "ai.json").read_bytes()), f"{SITE_URL}/feeds/ai.json"
    baseline = set(json_problems(document, url, jsonfeed_validator))
    change(document)
    found = set(json_problems(document, url, jsonfeed_validator)) - baseline
    assert any(expected in problem for problem in found), found

"""What one article file can do to feedpub: nothing beyond its own problems.

Mismatched YAML tags, characters the XML cannot carry, dates at the edge of the
calendar, huge lists and repeated keys each become that file's error or warning,
named and placed, never quoting a ``secured`` value; the rest is published.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from lxml import etree

import feedpub.ingest.validate
from feedpub.cli import main
from feedpub.ingest.frontmatter import MAX_NODES, FeedLoader
from feedpub.ingest.problems import MAX_WARNINGS
from feedpub.ingest.sanitize import is_absolute_url, plain_text
from feedpub.ingest.scan import read_file
from feedpub.ingest.validate import MAX_TOPICS, parse_bytes
from feedpub.model import Article, Problem

MAX_BYTES = 8 << 20
SECRET = "U2FsdGVkX1-TOPSECRET-" + "Q" * 60  # longer than any quote a message may make
# A document with one slot, VALUE, per field: the line of every field is known.
TEMPLATE = """\
title: {title}
webUrl: {webUrl}
originalUrl: {originalUrl}
publishedDateTime: {publishedDateTime}
provider:
  name: {provider.name}
  domain: {provider.domain}
  images:
    - url: {provider.images[0].url}
excerpt: {excerpt}
type: {type}
published: {published}
quality: {quality}
featuredContent: {featuredContent}
topics:
  - {topics[0]}
  - Other
images:
  - url: {images[0].url}
    title: {images[0].title}
related:
  - title: {related[0].title}
    webUrl: {related[0].webUrl}
    publishedDateTime: {related[0].publishedDateTime}
secured: {secured}
notes: {notes}
"""
GOOD: dict[str, str] = {
    "title": "A title",
    "webUrl": "https://example.com/a",
    "originalUrl": "https://origin.example/a",
    "publishedDateTime": "2021-03-04T05:06:07Z",
    "provider.name": "Example",
    "provider.domain": "example.com",
    "provider.images[0].url": "/logos/example.png",
    "excerpt": "An excerpt",
    "type": "article",
    "published": "true",
    "quality": "3",
    "featuredContent": "<p>Hello</p>",
    "topics[0]": "AI",
    "images[0].url": "https://img.example/a.jpg",
    "images[0].title": "An image",
    "related[0].title": "Related",
    "related[0].webUrl": "https://related.example/r",
    "related[0].publishedDateTime": "2021-03-01T00:00:00Z",
    "secured": SECRET,
    "notes": "free text",
}
FIELDS = list(GOOD)
LINES = {name: number for number, line in enumerate(TEMPLATE.splitlines(), 2)
         for name in re.findall(r"\{([^}]+)\}", line)}
# Leaving one of these out changes what the article is: a bad value there rejects the file.
REJECTING = {"title", "publishedDateTime", "provider.domain", "published"}
# Tags that do not fit the value they are on ({v} becomes a long text).
MISMATCHED = [
    "!!int {v}", "!!float {v}", "!!bool {v}", "!!binary {v}!", "!!set {v}", "!!omap {v}", "!!pairs {v}",
    "!!map {v}", "!!seq {v}", "!!str {{a: {v}}}", "!!str [{v}]", "!!int [{v}]", "!!float {{a: {v}}}",
    "!!omap [{v}]", "!!pairs [{v}]", "!!omap {{a: {v}}}", "!!binary [{v}]", "!!timestamp [{v}]",
]
UNKNOWN = ["!foo {v}", "!!python/object/apply:os.system [{v}]", "!<tag:example.com,2000:x> {v}", "!!merge {v}"]


def quoted(text: str) -> str:
    """``text`` as a YAML double-quoted scalar, anything unusual escaped (YAML escapes no surrogates)."""
    return '"' + "".join(c if c.isprintable() and c not in '"\\' else f"\\U{ord(c):08x}" for c in text) + '"'


def document(**values: str) -> bytes:
    """The template with every field good except ``values`` (keys as in FIELDS)."""
    slots = {**GOOD, **values}
    text = re.sub(r"\{([^}]+)\}", lambda slot: slots[slot.group(1)], TEMPLATE)
    return ("---\n" + text + "---\n").encode("utf-8", "surrogatepass")


def parse(raw: bytes) -> tuple[Article | None, tuple[Problem, ...]]:
    result = parse_bytes("a.md", raw)
    return result.article, result.problems


def assert_nothing_leaks(problems: tuple[Problem, ...], value: str = SECRET) -> None:
    for problem in problems:
        assert "TOPSECRET" not in problem.message, problem
        assert value[:60] not in problem.message, problem  # at most a short prefix of any value
        assert len(problem.message) < 400 and "\n" not in problem.message, problem


def test_the_template_is_a_good_article() -> None:
    article, problems = parse(document())
    assert article is not None and problems == ()
    assert article.related and article.images and article.provider.logo and article.original_url


# -- row 1: a tag that does not fit its value --------------------------------------------------


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("tagged", MISMATCHED)
def test_a_mismatched_tag_is_that_fields_problem(field: str, tagged: str) -> None:
    value = tagged.format(v=SECRET)
    article, problems = parse(document(**{field: value}))
    mine = [p for p in problems if p.line == LINES[field] and p.message.startswith(field.split("[")[0])]
    assert mine, problems
    if field == "secured":
        assert mine[0].message.startswith("secured: ")  # named, nothing below it
    assert_nothing_leaks(problems)
    if field in REJECTING:
        assert article is None
        assert any(p.severity == "error" for p in problems)
    else:
        assert article is not None, problems
        assert all(p.severity == "warning" for p in problems)
        assert SECRET not in " ".join(_strings(article))
        assert article.url == GOOD["originalUrl" if field == "webUrl" else "webUrl"]


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("tagged", UNKNOWN)
def test_an_unknown_tag_rejects_the_file_naming_the_field(field: str, tagged: str) -> None:
    article, problems = parse(document(**{field: tagged.format(v=SECRET)}))
    assert article is None
    (problem,) = problems
    assert problem.severity == "error" and problem.line == LINES[field]
    assert f" {field.split('[')[0]}" in problem.message and "could not determine a constructor" in problem.message
    assert_nothing_leaks(problems)


def test_secured_with_the_reported_tag_is_a_warning_and_the_article_is_published() -> None:
    raw = document(secured="!!int U2FsdGVkX1-TOPSECRET")
    article, problems = parse(raw)
    assert article is not None
    assert [(p.severity, p.line, p.message) for p in problems] == [
        ("warning", LINES["secured"], "secured: not a valid !!int value; ignored")]


def test_keys_below_secured_are_never_named() -> None:
    raw = document(secured=f"{{{SECRET}: !!int {SECRET}, {SECRET}: 2, {SECRET}: 3}}")
    article, problems = parse(raw)
    assert article is not None and problems
    assert all(p.message.startswith("secured: ") for p in problems)
    assert_nothing_leaks(problems)


@pytest.mark.parametrize(("value", "expected"), [
    ("!!str 42", "42"), ("!!timestamp 2021-03-04T05:06:07Z", "2021-03-04T05:06:07Z"), ("!!null x", None)])
def test_tags_that_fit_are_read(value: str, expected: str | None) -> None:
    article, problems = parse(document(excerpt=value))
    assert article is not None and problems == ()
    assert article.excerpt == (expected or "")


def test_a_date_tagged_as_a_timestamp_is_checked_like_any_date() -> None:
    article, _ = parse(document(publishedDateTime="!!timestamp 2021-03-04 05:06:07+01:00"))
    assert article is not None and article.published_at.isoformat() == "2021-03-04T04:06:07+00:00"
    article, problems = parse(document(publishedDateTime="!!timestamp 2021-03-04"))
    assert article is None and "has no time" in problems[0].message


def test_numbers_too_long_to_convert_are_a_problem_not_a_crash() -> None:
    digits = "9" * 5000  # int() refuses more than 4300 digits
    for field in ("quality", "images[0].title", "notes", "secured"):
        article, problems = parse(document(**{field: digits}))
        assert article is not None and len(problems) == 1 and problems[0].line == LINES[field]
    article, problems = parse(document(type="0x" + "f" * 5000, quality="0x" + "f" * 5000))
    assert article is not None and article.quality is None
    assert_nothing_leaks(problems, "f" * 60)


def test_width_as_unicode_digits_is_a_warning() -> None:
    raw = document().replace(b"    title: An image", '    width: "²"\n    height: "1"\n    title: x'.encode())
    article, problems = parse(raw)
    assert article is not None and article.images[0].width is None and article.images[0].height == 1
    assert any("images[0].width" in p.message for p in problems)


FIELD_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary()
    | st.sampled_from(["2021-01-01T00:00:00Z", "https://example.com/x", "Mon, 01 Jan 0001 00:00:00 +1400"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(field=st.sampled_from(FIELDS), tag=st.sampled_from(MISMATCHED + UNKNOWN + ["{v}", "!!null {v}"]),
       text=st.text(max_size=30), secret_tag=st.sampled_from([*MISMATCHED, "{v}"]))
@example(field="title", tag="!!int {v}", text="", secret_tag="!!int {v}")
def test_any_tag_on_any_field_never_raises_nor_leaks(field: str, tag: str, text: str, secret_tag: str) -> None:
    value = tag.format(v=quoted(text))
    raw = document(**{field: value, **({} if field == "secured" else {"secured": secret_tag.format(v=SECRET)})})
    _article, problems = parse(raw)
    assert_nothing_leaks(problems)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(values=st.dictionaries(st.sampled_from(FIELDS), FIELD_VALUES, max_size=5))
def test_any_yaml_value_in_any_field_never_raises(values: dict[str, Any]) -> None:
    slots = {name: yaml.safe_dump(value, default_flow_style=True, width=10**9).removesuffix("\n...\n").strip()
             for name, value in values.items()}
    article, problems = parse(document(**slots))
    assert_nothing_leaks(problems)
    if article is not None:  # whatever is kept, every output can carry
        assert not any(_lxml_refuses(text) for text in _strings(article))


@settings(deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(lambda t: ("---\n" + t + "\n---\n").encode("utf-8",
                                                                                            "surrogatepass")))
@example(b"---\n? [a]\n: b\n---\n")
@example(b"---\n<<: [a]\ntitle: x\n---\n")
@example(b"---\n!!int x\n---\n")
def test_any_bytes_never_raise(raw: bytes) -> None:
    result = parse_bytes("a.md", raw)
    assert result.article is not None or any(p.severity == "error" for p in result.problems)


def test_a_bug_while_parsing_is_that_files_error_and_quotes_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_args: object) -> None:
        raise ValueError(f"invalid literal for int() with base 10: {SECRET!r}")

    monkeypatch.setattr(feedpub.ingest.validate, "_article", broken)
    (tmp_path / "a.md").write_bytes(document())
    with caplog.at_level(logging.ERROR):
        result = read_file(tmp_path, "a.md", MAX_BYTES)
    assert result.article is None
    (problem,) = result.problems
    assert problem.severity == "error" and "ValueError" in problem.message and problem.path.endswith("a.md")
    assert "TOPSECRET" not in caplog.text and "ValueError" in caplog.text


def test_merge_keys_still_merge_without_duplicate_warnings() -> None:
    raw = document().replace(b"provider:\n", b"provider:\n  <<: {name: Merged, domain: merged.example}\n")
    article, problems = parse(raw)
    assert article is not None and problems == ()
    assert (article.provider.name, article.provider.domain) == ("Example", "example.com")


def _strings(article: Article) -> list[str]:
    texts = [article.url, article.title, article.excerpt, article.featured_html, article.provider.name,
             article.provider.domain, article.original_url or "", *article.topics]
    for image in (*article.images, article.provider.logo):
        if image is not None:
            texts += [image.url, image.title or ""]
    for related in article.related:
        texts += [related.title, related.url]
        if related.provider is not None:
            texts += [related.provider.name]
    return texts


# -- row 2: characters the XML cannot carry ------------------------------------------------------

URL_FIELDS = ["webUrl", "originalUrl", "images[0].url", "provider.images[0].url", "related[0].webUrl"]
TEXT_FIELDS = ["title", "excerpt", "provider.name", "topics[0]", "images[0].title", "related[0].title",
               "featuredContent"]
# Refused by lxml (outside XML 1.0's Char), or never meaningful in a URL (RFC 3987).
UNFIT = ["\uffff", "\ufffe", "\ufdd0", "\ufdef", "\U0001fffe", "\U0010ffff", "\x01", "\x1f", "\x7f", "\x85",
         "\u202e", "\ufffd"]


def _lxml_refuses(text: str) -> bool:
    try:
        etree.Element("x").text = text
    except (ValueError, UnicodeEncodeError):
        return True
    return False


@pytest.mark.parametrize("field", URL_FIELDS)
@pytest.mark.parametrize("char", UNFIT)
def test_a_url_with_a_character_no_url_carries_is_refused_where_it_is_read(field: str, char: str) -> None:
    url = GOOD[field] + "/x" + char + "y"
    article, problems = parse(document(**{field: quoted(url)}))
    assert article is not None, problems  # another URL is there: webUrl falls back to originalUrl
    assert url not in _strings(article)
    (problem,) = [p for p in problems if p.line == LINES[field]]
    assert problem.severity == "warning" and f"U+{ord(char):04X} cannot be part of a URL" in problem.message


def test_the_only_url_unfit_rejects_the_article() -> None:
    article, problems = parse(document(webUrl=quoted("https://example.com/\uffff"), originalUrl="null"))
    assert article is None
    assert [p.severity for p in problems] == ["warning", "error"] and "no usable URL" in problems[1].message


@pytest.mark.parametrize("field", TEXT_FIELDS)
@pytest.mark.parametrize("char", UNFIT)
def test_text_reaching_the_xml_never_holds_what_lxml_refuses(field: str, char: str) -> None:
    article, _problems = parse(document(**{field: quoted(GOOD[field] + char + "end")}))
    assert article is not None
    assert not any(_lxml_refuses(text) for text in _strings(article))


def test_every_character_lxml_refuses_is_removed_from_text_and_refused_in_urls() -> None:
    planes = [cp for plane in range(0x10000, 0x110000, 0x10000) for cp in (*range(plane, plane + 16),
                                                                           *range(plane - 16, plane))]
    for cp in [*range(0x10000), *planes, 0x10FFFF]:
        char = chr(cp)
        if _lxml_refuses(char):
            assert plain_text(f"a{char}b")[0] == "ab", hex(cp)
            assert not is_absolute_url(f"https://example.com/{char}"), hex(cp)


def test_urls_in_other_scripts_are_kept() -> None:
    url = "https://例え.jp/パス?q=ü"
    article, problems = parse(document(webUrl=quoted(url)))
    assert article is not None and article.url == url and problems == ()


# -- row 3 and row 13: dates at the edge of the calendar ---------------------------------------


@pytest.mark.parametrize("date", [
    "0001-01-01T00:00:00+14:00", "9999-12-31T23:00:00-05:00", "0999-12-31T23:59:59Z", "0001-01-01T00:00:00Z",
    "Mon, 01 Jan 0001 00:00:00 +1400", "Fri, 01 Jan 0099 00:00:00 GMT", "01 Jan 0050 12:00 +0000",
])
@pytest.mark.parametrize("field", ["publishedDateTime", "related[0].publishedDateTime"])
def test_a_date_whose_utc_form_no_output_can_write_is_refused(field: str, date: str) -> None:
    article, problems = parse(document(**{field: quoted(date)}))
    (problem,) = problems
    assert problem.line == LINES[field]
    assert "out of range" in problem.message and "years 1000 to 9999" in problem.message
    if field == "publishedDateTime":
        assert article is None and problem.severity == "error"
    else:
        assert article is not None and not article.related and problem.severity == "warning"


@pytest.mark.parametrize(("written", "expected"), [
    ("Sat, 01 Jan 1000 00:00:00 +0000", "1000-01-01T00:00:00+00:00"),
    ("Fri, 31 Dec 9999 23:59:59 GMT", "9999-12-31T23:59:59+00:00"),
    ("Mon, 01 Jan 2001 00:00:00 +1400", "2000-12-31T10:00:00+00:00"),
    ("01 Jan 21 00:00:00 GMT", "2021-01-01T00:00:00+00:00"),  # RFC 2822: 00-49 are 2000-2049
    ("01 Jan 55 00:00:00 GMT", "1955-01-01T00:00:00+00:00"),  # and 50-99 are 1950-1999
    ("Sat, 01 Jan 121 00:00:00 GMT", "2021-01-01T00:00:00+00:00"),  # three digits: 1900 is added
    ("9999-12-31T00:00:00Z", "9999-12-31T00:00:00+00:00"),
])
def test_rfc_2822_years_are_read_as_written(written: str, expected: str) -> None:
    article, problems = parse(document(publishedDateTime=quoted(written)))
    assert article is not None and problems == ()
    assert article.published_at.isoformat() == expected


# -- row 6 and row 7: linear time, bounded memory -------------------------------------------------


def _topics(items: list[str], *, raw: bool = False) -> bytes:
    return document(**{"topics[0]": "AI"}).replace(b"  - AI\n  - Other\n", "".join(
        f"  - {item if raw else quoted(item)}\n" for item in items).encode())


@pytest.mark.parametrize("items", [
    [f"topic {i}" for i in range(60_000)],  # only the first distinct ones are read
    ["same"] * 30_000 + [f"topic {i}" for i in range(30_000)],
])
def test_a_long_topic_list_costs_what_reading_it_costs(monkeypatch: pytest.MonkeyPatch, items: list[str]) -> None:
    calls = 0

    def counted(text: str) -> tuple[str, list[str]]:
        nonlocal calls
        calls += 1
        return plain_text(text)

    monkeypatch.setattr(feedpub.ingest.validate, "plain_text", counted)
    article, problems = parse(_topics(items))
    assert article is not None and len(article.topics) == MAX_TOPICS
    assert calls <= items.index(f"topic {MAX_TOPICS}") + 1 + 20  # each examined once; the rest never
    assert [p.message for p in problems] == [
        f"topics: more than {MAX_TOPICS} topics; only the first {MAX_TOPICS} are kept"]


def test_60k_topics_parse_in_well_under_two_seconds() -> None:
    import time

    raw = _topics([f"topic {i % 30_000}" for i in range(60_000)])
    started = time.perf_counter()
    article, _ = parse(raw)
    assert article is not None and time.perf_counter() - started < 2


def test_warnings_per_file_are_capped() -> None:
    article, problems = parse(_topics([str(i) for i in range(60_000)] + ["AI"], raw=True))  # numbers, not names
    assert article is not None and article.topics == ("AI",)
    assert len(problems) == MAX_WARNINGS + 1 and problems[-1].message == "59,950 more warnings not shown"


MEASURE = """
import resource, sys
from feedpub.ingest.validate import parse_bytes
raw = sys.stdin.buffer.read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result = parse_bytes("a.md", raw)
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(grown // 1024, [problem.message for problem in result.problems])
"""


@pytest.mark.parametrize("layout", ["flow", "block", "mapping"])
def test_the_value_cap_holds_without_aliases_and_before_memory_is_spent(layout: str) -> None:
    count = MAX_NODES + MAX_NODES // 2
    body = {"flow": "x: [" + "a," * count + "]\n", "block": "x:\n" + "- a\n" * count,
            "mapping": "x: {" + ", ".join(str(i) for i in range(count // 2)) + "}\n"}[layout]
    raw = document().replace(b"notes: free text\n", body.encode())
    assert len(raw) <= MAX_BYTES and b"*" not in raw
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.run([sys.executable, "-c", MEASURE], input=raw, capture_output=True, env=env, check=True)
    grown_mib, messages = child.stdout.decode().split(" ", 1)
    assert messages.strip() == repr([f"front matter has more than {MAX_NODES:,} values"])
    assert int(grown_mib) < 60  # the text and its events: a tree of 1.5M nodes takes over 400 MiB


@pytest.mark.parametrize("body", ["x: " + "[" * 300_000 + "]" * 300_000, "x: " + "{a: " * 100_000 + "}" * 100_000,
                                  "x: [" + "a," * 200_000])
def test_long_front_matter_that_is_not_yaml_is_invalid_yaml(body: str) -> None:
    article, problems = parse(document().replace(b"notes: free text\n", body.encode() + b"\n"))
    assert article is None and [p.severity for p in problems] == ["error"]
    assert problems[0].message.startswith("invalid YAML: "), problems


def test_long_front_matter_under_the_cap_is_read() -> None:
    raw = document().replace(b"notes: free text\n", ("x: [" + "abcd," * 100_000 + "]\n").encode())
    article, problems = parse(raw)
    assert article is not None and problems == ()


@settings(deadline=None)
@given(st.text(alphabet="?-:[]{},\n a&*!", max_size=60))
@example("? ? ? ? ? ?\n")
@example("?\n?\n?\n")
def test_yaml_never_has_more_than_two_values_per_character(text: str) -> None:
    """The premise that lets short front matter skip counting values."""
    try:
        events = list(yaml.parse(text, Loader=FeedLoader))
    except yaml.YAMLError:
        return
    values = sum(isinstance(e, (yaml.ScalarEvent, yaml.AliasEvent, yaml.CollectionStartEvent)) for e in events)
    assert values <= 2 * len(text) + 1


# -- row 14: duplicate keys --------------------------------------------------------------------


def test_a_duplicate_key_is_a_warning_and_the_last_value_wins() -> None:
    raw = document().replace(b"notes: free text\n", b"title: Second title\n")
    raw = raw.replace(b"  domain: example.com\n", b"  domain: example.com\n  name: Second name\n")
    article, problems = parse(raw)
    assert article is not None
    assert (article.title, article.provider.name) == ("Second title", "Second name")
    assert [(p.severity, p.line, p.message) for p in problems] == [
        ("warning", LINES["provider.domain"] + 1,
         f"provider.name: duplicate key (first on line {LINES['provider.name']}); the last value is used"),
        ("warning", LINES["notes"] + 1,
         f"title: duplicate key (first on line {LINES['title']}); the last value is used"),
    ]


# -- item 4: warnings mean something ----------------------------------------------------------


@pytest.mark.parametrize("field", ["title", "excerpt", "provider.name", "topics[0]", "related[0].title"])
def test_decoding_entities_is_silent(field: str) -> None:
    article, problems = parse(document(**{field: quoted("Fish &amp; chips &#8217;n&nbsp;more &lt;3")}))
    assert article is not None and problems == ()
    assert "Fish & chips \u2019n more <3" in _strings(article)


@pytest.mark.parametrize(("text", "notes"), [
    ("Fish &amp; chips", []),
    ("<b>Bold</b> &amp; news", ["removed HTML markup <b>"]),
    ("bell\x07 &amp; more", ["removed characters that are not allowed in XML"]),
    ("&#1;entity", []),
])
def test_other_text_notes_are_unchanged(text: str, notes: list[str]) -> None:
    assert plain_text(text)[1] == notes


# -- build and check: one hostile file per class among good ones ------------------------------

HOSTILE: dict[str, bytes] = {
    "secured-int.md": document(secured="!!int U2FsdGVkX1-TOPSECRET", webUrl="https://example.com/secured"),
    "secured-binary.md": document(secured=f"!!binary {SECRET}!", webUrl="https://example.com/binary"),
    "title-int.md": document(title=f"!!int {SECRET}", webUrl="https://example.com/title-int"),
    "unknown-tag.md": document(notes=f"!foo {SECRET}", webUrl="https://example.com/unknown"),
    "noncharacter.md": document(webUrl=quoted("https://example.com/\uffff"), originalUrl="null"),
    "noncharacter-image.md": document(webUrl="https://example.com/image",
                                      **{"images[0].url": quoted("https://img.example/\ufdd0")}),
    "year-9999.md": document(webUrl="https://example.com/9999", publishedDateTime="9999-12-31T00:00:00Z"),
    "year-0.md": document(webUrl="https://example.com/0", publishedDateTime=quoted("0001-01-01T00:00:00+14:00")),
    "rfc822-0001.md": document(webUrl="https://example.com/rfc",
                               publishedDateTime=quoted("Mon, 01 Jan 0001 00:00:00 +1400")),
    "related-9999.md": document(webUrl="https://example.com/related",
                                **{"related[0].publishedDateTime": "9999-12-31T23:59:59Z"}),
    "many-topics.md": _topics([f"topic {i}" for i in range(60_000)]).replace(
        b"https://example.com/a", b"https://example.com/topics"),
    "duplicate.md": document(webUrl="https://example.com/dup", notes="x\nwebUrl: https://example.com/dup2"),
}
PUBLISHED = {"secured", "binary", "image", "9999", "related", "topics", "dup2"}


@pytest.fixture(scope="module")
def hostile_seeds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("seeds")
    for name, raw in HOSTILE.items():
        (root / name).write_bytes(raw)
    for day in range(1, 4):  # good articles in other months, so archive pages are made
        (root / f"good-{day}.md").write_bytes(document(
            webUrl=f"https://example.com/good-{day}", publishedDateTime=f"2021-0{day}-01T00:00:00Z"))
    return root


def test_check_reports_each_hostile_file_and_never_the_secret(hostile_seeds: Path) -> None:
    result = CliRunner().invoke(main, ["check", "--seeds", str(hostile_seeds)])
    assert result.exit_code == 1, result.output  # files were rejected; nothing raised
    assert result.exception is None or isinstance(result.exception, SystemExit)
    for name in ("title-int.md", "unknown-tag.md", "noncharacter.md", "year-0.md", "rfc822-0001.md"):
        assert re.search(rf"{re.escape(name)}(:\d+)?: error: ", result.stderr), name
    for name in ("secured-int.md", "noncharacter-image.md", "many-topics.md", "duplicate.md"):
        assert re.search(rf"{re.escape(name)}:\d+: warning: ", result.stderr), name
    assert "TOPSECRET" not in result.output + result.stderr


@pytest.mark.parametrize("max_items", [50, 1])  # at 1 the feeds go beyond max_items: archive pages are checked too
def test_build_publishes_the_rest_and_never_the_secret(hostile_seeds: Path, tmp_path: Path, max_items: int) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["build", "--seeds", str(hostile_seeds), "--out", str(out),
                                       "--max-items", str(max_items)])
    assert result.exit_code == 0, result.output
    assert "TOPSECRET" not in result.output + result.stderr
    ids = {item["id"] for item in json.loads((out / "all.json").read_text("utf-8"))["items"]}
    published = {f"https://example.com/{name}" for name in PUBLISHED} | {
        f"https://example.com/good-{day}" for day in range(1, 4)}
    assert ids == published if max_items == 50 else len(ids) == 1 and ids < published
    assert bool(list(out.rglob("archive/*"))) is (max_items == 1)
    for path in out.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"TOPSECRET" not in data and "\uffff".encode() not in data, path
            if path.suffix in (".xml", ".opml"):
                etree.fromstring(data)


def test_months_group_at_both_ends_of_the_calendar() -> None:
    from feedpub.catalog.archives import _by_month

    moments = ["9999-12-31T23:59:59Z", "9999-12-01T00:00:00Z", "9999-11-30T23:59:59Z", "1000-01-01T00:00:00Z"]
    articles = []
    for index, moment in enumerate(moments):
        article, _ = parse(document(webUrl=f"https://example.com/{index}", publishedDateTime=moment))
        assert article is not None
        articles.append(article)
    groups = _by_month(tuple(articles))
    assert {key: [a.url[-1] for a in group] for key, group in groups.items()} == {
        (9999, 12): ["0", "1"], (9999, 11): ["2"], (1000, 1): ["3"]}


def test_a_merge_key_after_a_bad_value_notes_it_once() -> None:
    raw = document().replace(b"notes: free text", b"notes: {a: !!int q, c: {d: 1, d: 2}, <<: {b: 1}}")
    article, problems = parse(raw)
    assert article is not None
    assert [p.message for p in problems] == [
        "notes.a: not a valid !!int value; ignored",
        f"notes.c.d: duplicate key (first on line {LINES['notes']}); the last value is used"]

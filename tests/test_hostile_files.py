"""A hostile corpus: every bad file gets a clear problem line and nothing else is lost."""

from __future__ import annotations

import json
import re
from pathlib import Path

import feedparser
import lxml.html
import pytest
from click.testing import CliRunner
from lxml import etree

from feedpub.cli import main

GOOD = """\
title: "{title}"
publishedDateTime: 2021-01-0{day}T10:00:00Z
webUrl: "https://example.com/{n}"
provider:
  name: Example
  domain: example.com
topics: [AI]
"""


def article(n: int, *, day: int = 1, title: str | None = None, drop: str = "", extra: str = "",
            replace: tuple[str, str] = ("", "")) -> str:
    text = GOOD.format(n=n, day=day, title=title or f"Article {n}")
    if drop:
        text = "".join(line + "\n" for line in text.splitlines() if not line.startswith(drop))
    if replace[0]:
        assert replace[0] in text
        text = text.replace(*replace)
    return f"---\n{text}{extra}---\n"


# file name -> (content, severity, line or None, words the message must contain)
CASES: dict[str, tuple[str | bytes, str, int | None, str]] = {
    "invalid-yaml.md": ('---\ntitle: "x\nfoo: [1, 2\n---\n', "error", 4, "invalid YAML"),
    "no-front-matter.md": ("just some text\n", "error", 1, "no YAML front matter"),
    "empty.md": ("", "error", None, "empty file"),
    "binary.md": (b"\x89PNG\r\n\x1a\n\x00\x00garbage\xff", "error", 3, "binary file"),
    "latin1.md": ('---\ntitle: "Café"\n---\n'.encode("latin-1"), "error", 2, "not UTF-8"),
    "list.md": ("---\n- a\n- b\n---\n", "error", 2, "is a list, not a mapping"),
    "scalar.md": ("---\njust a string\n---\n", "error", 2, "not a mapping"),
    "unclosed.md": ("---\ntitle: x\nwebUrl: https://example.com/u\n", "error", 1, "never closes"),
    "no-title.md": (article(1, drop="title"), "error", None, "title: missing"),
    "no-url.md": (article(2, drop="webUrl"), "error", None, "no usable URL"),
    "impossible-date.md": (article(3, replace=("2021-01-01T10", "2021-02-30T10")), "error", 3, "publishedDateTime"),
    "garbage-date.md": (article(4, replace=("2021-01-01T10:00:00Z", "next tuesday")), "error", 3,
                        "not a valid date"),
    "plain-date.md": (article(5, replace=("2021-01-01T10:00:00Z", "2021-01-01")), "error", 3, "has no time"),
    "published-yes.md": (article(6, extra='published: "yes"\n'), "error", 9, "published: expected true or false"),
    "title-number.md": (article(7, replace=('title: "Article 7"', "title: 42")), "error", 2, "title: expected text"),
    "topics-string.md": (article(8, replace=("topics: [AI]", "topics: AI")), "warning", 8, "taken as one topic"),
    "provider-no-domain.md": (article(9, drop="  domain"), "error", 6, "provider: missing domain"),
    "image-sizes.md": (article(10, extra='images:\n  - url: "https://e.com/a.jpg"\n    width: "wide"\n'
                                         '    height: -5\n'), "warning", 11, "images[0].width"),
    "javascript-url.md": (article(11, replace=("https://example.com/11", "javascript:alert(1)"),
                                  extra='originalUrl: "https://example.com/11b"\n'), "warning", 4,
                          "javascript: URLs are not allowed"),
    "data-image.md": (article(12, extra='images:\n  - url: "data:image/png;base64,AAAA"\n'), "warning", 10,
                      "data: URLs are not allowed"),
    "vbscript-related.md": (article(13, extra='related:\n  - title: r\n    webUrl: "vbscript:msgbox"\n'),
                            "warning", 10, "related[0]"),
    "script-title.md": (article(14, title='<script>alert(1)</script>Hello &amp; ]]> 😀 שלום \\x01 end'),
                        "warning", 2, "removed HTML markup <script>"),
    "hostile-featured.md": (article(15, extra='featuredContent: "<p onload=\\"x()\\">hi<script>evil()</script>'
                                              '<a href=\\"javascript:alert(1)\\">x</a></p>"\n'),
                            "warning", 9, "featuredContent: removed <script>"),
    "alias-bomb.md": (article(16, extra="a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
                                        "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                                        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                                        "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"), "error", 9, "alias"),
    "python-tag.md": (article(17, extra='x: !!python/object/apply:os.system ["touch pwned"]\n'), "error", 9,
                      "could not determine a constructor"),
    "many-related.md": (article(18, extra="related:\n" + "".join(
        f'  - {{title: "r{i}", webUrl: "https://r.example/{i}"}}\n' for i in range(10_000))), "warning", 10,
        "10,000 items; only the first 50"),
    "mixed-case-domain.md": (article(19, replace=("domain: example.com", 'domain: "News.Example.COM."')),
                             None, None, ""),
    "dup-older.md": (article(20, day=1), "warning", None, "duplicate of"),
    "dup-newer.md": (article(20, day=2, title="Newer copy"), None, None, ""),
    "topic-collisions.md": (article(21, replace=("topics: [AI]", 'topics: ["All", "index", "Providers", "ai", "A I"]')),
                            None, None, ""),
    "good.md": (article(99, day=5), None, None, ""),
}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hostile")
    for name, (content, *_rest) in CASES.items():
        path = root / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    with open(root / "huge.md", "wb") as handle:  # 50 MB: refused by size before any parsing
        handle.write(b'---\ntitle: "x"\nexcerpt: "')
        handle.write(b"a" * (50 * 1024 * 1024))
        handle.write(b'"\n---\n')
    return root


@pytest.fixture(scope="module")
def checked(hostile: Path) -> tuple[int, list[str]]:
    result = CliRunner().invoke(main, ["check", "--seeds", str(hostile)])
    return result.exit_code, result.stderr.splitlines()


def _lines_for(lines: list[str], root: Path, name: str) -> list[str]:
    prefix = (root / name).as_posix()
    return [line for line in lines if line.startswith(prefix + ":")]


@pytest.mark.parametrize("name", [n for n, case in CASES.items() if case[1]])
def test_each_bad_file_gets_a_clear_problem_line(hostile: Path, checked: tuple[int, list[str]], name: str) -> None:
    _content, severity, line, words = CASES[name]
    lines = _lines_for(checked[1], hostile, name)
    where = f"{(hostile / name).as_posix()}:{line}" if line else (hostile / name).as_posix()
    wanted = [entry for entry in lines if entry.startswith(f"{where}: {severity}: ") and words in entry]
    assert wanted, f"no '{severity}' line at {where} containing {words!r} in {lines}"


def test_huge_file_is_refused_by_size(hostile: Path, checked: tuple[int, list[str]]) -> None:
    lines = _lines_for(checked[1], hostile, "huge.md")
    assert any("over the limit" in line and "FEEDPUB_MAX_FILE_BYTES" in line for line in lines)


def test_check_exit_code_and_topic_notes(checked: tuple[int, list[str]]) -> None:
    exit_code, lines = checked
    assert exit_code == 1
    notes = [line for line in lines if line.startswith("warning: topic")]
    assert len(notes) == 4  # All, index, Providers -> reserved; ai -> taken by AI ("A I" slugs to a-i)
    assert not Path("pwned").exists()


def test_build_publishes_every_good_article_and_valid_feeds(hostile: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["build", "--seeds", str(hostile), "--out", str(out)])
    assert result.exit_code == 0, result.output
    strict = CliRunner().invoke(main, ["build", "--strict", "--seeds", str(hostile), "--out", str(out)])
    assert strict.exit_code == 1
    items = json.loads((out / "all.json").read_text("utf-8"))["items"]
    ids = {item["id"] for item in items}
    published = {f"https://example.com/{n}" for n in (8, 10, 12, 13, 14, 15, 18, 19, 20, 21, 99)}
    assert ids == published | {"https://example.com/11b"}
    titles = {item["id"]: item["title"] for item in items}
    assert titles["https://example.com/20"] == "Newer copy"
    assert titles["https://example.com/14"] == "Hello & ]]> 😀 שלום end"
    for path in out.rglob("*"):
        if path.suffix in (".xml", ".atom", ".opml"):
            etree.parse(str(path))  # well-formed, or this raises
            text = path.read_text("utf-8")
            assert "<script" not in text and "javascript:" not in text and "onload" not in text
            assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f]", text)
            if path.suffix != ".opml":
                assert not feedparser.parse(path.read_bytes()).bozo, path
        elif path.suffix == ".json":
            json.loads(path.read_text("utf-8"))
        elif path.suffix == ".html":
            text = path.read_text("utf-8")
            root = lxml.html.document_fromstring(text)
            assert root.getroottree().docinfo.doctype == "<!DOCTYPE html>", path
            assert "<script" not in text.lower() and "javascript:" not in text and "onload" not in text, path
            assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f]", text), path
            assert not root.xpath("//script | //@src | //@*[starts-with(name(), 'on')]"), path
    assert (out / "providers" / "news.example.com.xml").exists()
    # The hostile title reaches the page as text, escaped.
    page = lxml.html.document_fromstring((out / "all.html").read_bytes())
    assert "Hello & ]]> 😀 שלום end" in [a.text_content() for a in page.xpath("//ol[@class='entries']/li/h2/a")]
    assert {p.name for p in out.glob("*.xml")} >= {"all-6a7208.xml", "index-e540cd.xml", "ai.xml", "a-i.xml"}
    many = next(item for item in items if item["id"] == "https://example.com/18")
    assert len(many["_related"]["items"]) == 50


def test_hostile_html_is_sanitised_in_every_format(hostile: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    CliRunner().invoke(main, ["build", "--seeds", str(hostile), "--out", str(out)])
    item = next(i for i in json.loads((out / "all.json").read_text("utf-8"))["items"]
                if i["id"] == "https://example.com/15")
    assert "<p>hi" in item["content_html"]
    for bad in ("<script", "evil()", "onload", "javascript:"):
        assert bad not in item["content_html"]

"""Loading a seeds directory: which files count, duplicates, order, and broken files beside good ones."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest

from feedpub.ingest.loader import load
from feedpub.ingest.scan import scan
from feedpub.ingest.validate import parse_bytes

from .articles import WriteArticle, errors, front, line_of, load_dir, raw_front, strings, wrap

# -- helpers ---------------------------------------------------------------------------------------




# -- dedupe ----------------------------------------------------------------------------------------------

SAME = "https://example.com/same"


def test_duplicate_url_newer_wins_whatever_the_path_order(write_article: WriteArticle) -> None:
    write_article("a.md", front(title="Older", webUrl=SAME, publishedDateTime="2020-01-01T00:00:00Z"))
    write_article("b.md", front(title="Newer", webUrl=SAME, publishedDateTime="2020-06-01T00:00:00Z"))
    corpus = load_dir(write_article.root)  # type: ignore[attr-defined]
    assert [a.title for a in corpus.articles] == ["Newer"]
    [problem] = corpus.problems
    assert problem.path.endswith("a.md")
    assert "duplicate" in problem.message and "b.md" in problem.message


def test_duplicate_url_newer_wins_when_it_comes_first(write_article: WriteArticle) -> None:
    write_article("a.md", front(title="Newer", webUrl=SAME, publishedDateTime="2020-06-01T00:00:00Z"))
    write_article("b.md", front(title="Older", webUrl=SAME, publishedDateTime="2020-01-01T00:00:00Z"))
    corpus = load_dir(write_article.root)  # type: ignore[attr-defined]
    assert [a.title for a in corpus.articles] == ["Newer"]
    assert [p.path.rsplit("/", 1)[-1] for p in corpus.problems] == ["b.md"]


def test_duplicate_url_tie_keeps_the_first_path(write_article: WriteArticle) -> None:
    # Written in reverse order so that file-system order and path order differ.
    for name in ("c.md", "b.md", "sub/a.md"):
        write_article(name, front(title=name, webUrl=SAME))
    corpus = load_dir(write_article.root)  # type: ignore[attr-defined]
    assert [a.title for a in corpus.articles] == ["b.md"]
    assert sorted(p.path.rsplit("/", 1)[-1] for p in corpus.problems) == ["a.md", "c.md"]
    assert all("duplicate" in p.message for p in corpus.problems)


@pytest.mark.parametrize("unpublished_name", ["a.md", "z.md"])
def test_unpublished_copy_never_hides_a_published_one(write_article: WriteArticle, unpublished_name: str) -> None:
    write_article(unpublished_name, front(title="Draft", webUrl=SAME, published=False,
                                          publishedDateTime="2024-01-01T00:00:00Z"))
    write_article("m.md", front(title="Live", webUrl=SAME, publishedDateTime="2020-01-01T00:00:00Z"))
    corpus = load_dir(write_article.root)  # type: ignore[attr-defined]
    assert [a.title for a in corpus.articles] == ["Live"]
    assert corpus.rejected == 0


def test_duplicates_in_the_fixture_corpus_are_reported(corpus_dir: Path) -> None:
    corpus = load_dir(corpus_dir)
    urls = [a.url for a in corpus.articles]
    assert len(urls) == len(set(urls))
    # The fixture corpus holds one URL in two published files (as real corpora do): the older one is named.
    duplicates = [p for p in corpus.problems if "duplicate" in p.message]
    assert [(p.path.rsplit("/", 1)[-1], p.severity) for p in duplicates] == [
        ("2021-01-12-onboarding-external-users-with-a-portal.md", "warning")]
    assert "2021-02-09-walkthrough-onboarding-external-users-the-portal-way.md" in duplicates[0].message
    url = "https://blog.northwind.example/fluxo/onboarding-external-users-with-a-portal/"
    [kept] = [a for a in corpus.articles if a.url == url]
    assert kept.title == "Walkthrough: onboarding external users, the portal way"


# -- ordering --------------------------------------------------------------------------------------------


def test_articles_are_newest_first_then_url_ascending(write_article: WriteArticle) -> None:
    write_article("1.md", front(webUrl="https://example.com/b", publishedDateTime="2020-01-01T00:00:00Z"))
    write_article("2.md", front(webUrl="https://example.com/a", publishedDateTime="2020-01-01T01:00:00+01:00"))
    write_article("3.md", front(webUrl="https://example.com/c", publishedDateTime="2020-01-02T00:00:00Z"))
    write_article("4.md", front(webUrl="https://example.com/0", publishedDateTime="2019-12-31T00:00:00Z"))
    corpus = load_dir(write_article.root)  # type: ignore[attr-defined]
    assert [a.url.rsplit("/", 1)[1] for a in corpus.articles] == ["c", "a", "b", "0"]


# -- broken files ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "line", "reason"),
    [
        (b"---\ntitle: T\nexcerpt: x\n  bad: y\n---\n", 4, "invalid YAML"),
        (b"---\ntitle: T\ntopics: [a, b\nexcerpt: x\n---\n", 4, "invalid YAML"),
        (b"title: T\nwebUrl: https://example.com/x\n", 1, "no YAML front matter"),
        (b"---\ntitle: T\nwebUrl: https://example.com/x\n", 1, "never closes"),
        (b"", None, "empty"),
        (b"\n  \n\n", None, "empty"),
        (b"---\n---\nbody\n", 1, "empty"),
        (b"---\ntitle: T\nexcerpt: caf\xe9\n---\n", 3, "not UTF-8"),
        (b"---\n- title\n- excerpt\n---\n", 2, "not a mapping"),
        (b"---\njust some text\n---\n", 2, "not a mapping"),
        (b"---\ntitle: T\n\x00\x00\n---\n", 3, "binary"),
        (b"---\nwebUrl: https://example.com/x\npublishedDateTime: 2020-01-01T00:00:00Z\n"
         b"provider: {name: P, domain: p.example}\n---\n", None, "title: missing"),
        (b"---\ntitle: ''\nwebUrl: https://example.com/x\npublishedDateTime: 2020-01-01T00:00:00Z\n"
         b"provider: {name: P, domain: p.example}\n---\n", 2, "title: empty"),
        (b"---\ntitle: [a, b]\nwebUrl: https://example.com/x\n---\n", 2, "title: expected text"),
    ],
    ids=[
        "yaml-indent", "yaml-unclosed-list", "no-front-matter", "unclosed-front-matter", "empty", "blank",
        "empty-front-matter", "not-utf8", "list", "scalar", "nul-bytes", "missing-title", "empty-title",
        "title-not-text",
    ],
)
def test_broken_file_is_a_problem_and_others_still_load(
    write_article: WriteArticle, raw: bytes, line: int | None, reason: str
) -> None:
    write_article("a-good.md", front(webUrl="https://example.com/good-a"))
    write_article("b-broken.md", raw)
    write_article("c-good.md", front(webUrl="https://example.com/good-c"))
    corpus = load_dir(write_article.root)  # type: ignore[attr-defined]
    assert sorted(a.url for a in corpus.articles) == ["https://example.com/good-a", "https://example.com/good-c"]
    assert corpus.files == 3
    assert corpus.rejected == 1
    [problem] = corpus.problems
    assert problem.severity == "error"
    assert problem.path == (write_article.root / "b-broken.md").as_posix()  # type: ignore[attr-defined]
    assert problem.line == line
    assert reason in problem.message
    where = f"{problem.path}:{line}" if line else problem.path
    assert str(problem) == f"{where}: error: {problem.message}"


def test_oversized_file_is_refused(write_article: WriteArticle) -> None:
    write_article("big.md", front(excerpt="x" * 5000))
    corpus = load(write_article.root, 1000)  # type: ignore[attr-defined]
    assert corpus.articles == ()
    assert "over the limit" in errors(corpus.problems)[0].message


def test_the_size_limit_is_exact_and_the_refusal_names_the_real_size(write_article: WriteArticle) -> None:
    path = write_article("a.md", front(excerpt="x" * 5000))
    size = path.stat().st_size
    assert load(write_article.root, size).articles  # type: ignore[attr-defined]
    refused = load(write_article.root, size - 1)  # type: ignore[attr-defined]
    assert refused.articles == ()
    (problem,) = errors(refused.problems)
    assert f"file is {size:,} bytes, over the limit of {size - 1:,} (FEEDPUB_MAX_FILE_BYTES)" in problem.message


def test_yaml_is_loaded_safely(write_article: WriteArticle) -> None:
    write_article("evil.md", front() + "exploit: !!python/object/apply:os.system ['echo pwned']\n")
    corpus = load_dir(write_article.root)  # type: ignore[attr-defined]
    assert corpus.articles == ()
    assert "invalid YAML" in errors(corpus.problems)[0].message


def test_alias_bomb_is_refused(write_article: WriteArticle) -> None:
    bomb = ('a: &a ["x","x","x","x","x","x","x","x","x"]\n'
            'b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n'
            'c: [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n')
    write_article("bomb.md", front() + bomb)
    corpus = load_dir(write_article.root)  # type: ignore[attr-defined]
    assert corpus.articles == ()
    assert "alias" in errors(corpus.problems)[0].message


# -- which files count -------------------------------------------------------------------------------------


def test_hidden_files_and_other_suffixes_are_ignored_subdirectories_searched(write_article: WriteArticle) -> None:
    counted = ["a.md", "b.markdown", "c.txt", "D.MD", "sub/e.md", "sub/deeper/f.txt"]
    ignored = [".hidden.md", ".drafts/g.md", "sub/.h.md", "notes.json", "readme.rst", "i.yaml", "j.html", "k.md~", "md"]
    for index, name in enumerate(counted + ignored):
        write_article(name, front(title=name, webUrl=f"https://example.com/{index}"))
    root = write_article.root  # type: ignore[attr-defined]
    assert sorted(scan(root)) == sorted(counted)
    corpus = load_dir(root)
    assert corpus.files == len(counted)
    assert sorted(a.title for a in corpus.articles) == sorted(counted)
    assert corpus.problems == ()


def test_symlink_leaving_the_seeds_directory_is_not_followed(write_article: WriteArticle, tmp_path: Path) -> None:
    outside = tmp_path / "outside.md"
    outside.write_bytes(wrap(front(title="Outside", webUrl="https://example.com/outside")))
    write_article("inside.md", front(title="Inside"))
    root = write_article.root  # type: ignore[attr-defined]
    (root / "link.md").symlink_to(outside)
    assert [a.title for a in load_dir(root).articles] == ["Inside"]


def test_utf8_bom_is_accepted(write_article: WriteArticle) -> None:
    write_article("bom.md", b"\xef\xbb\xbf" + wrap(front(title="Réseaux de neurones")))
    corpus = load_dir(write_article.root)  # type: ignore[attr-defined]
    assert corpus.problems == ()
    assert [a.title for a in corpus.articles] == ["Réseaux de neurones"]


def test_crlf_file_loads_with_right_line_numbers(write_article: WriteArticle) -> None:
    text = front(title="Windows", excerpt="Line endings", topics="Single topic")
    path = write_article("crlf.md", wrap(text, "\r\n"))
    assert b"\r\n" in path.read_bytes()
    corpus = load_dir(write_article.root)  # type: ignore[attr-defined]
    [article] = corpus.articles
    assert (article.title, article.excerpt, article.topics) == ("Windows", "Line endings", ("Single topic",))
    assert all("\r" not in text for text in strings(article))
    [problem] = corpus.problems
    assert problem.line == line_of(path, "topics:")


def test_crlf_files_of_the_fixture_corpus_load(corpus_dir: Path) -> None:
    crlf = [p for p in sorted(corpus_dir.iterdir()) if b"\r\n" in p.read_bytes()]
    assert len(crlf) >= 3, "the fixture corpus is expected to hold CRLF files"
    for path in crlf:
        data = path.read_bytes()
        result = parse_bytes(str(path), data)
        assert result.article is not None, result.problems
        assert errors(result.problems) == []
        assert all("\r" not in text for text in strings(result.article))
        # Line endings change nothing but the digest of the bytes: with LF endings, the same article.
        lf = parse_bytes(str(path), data.replace(b"\r\n", b"\n")).article
        assert lf is not None and dataclasses.replace(lf, digest=result.article.digest) == result.article


def test_fixture_corpus_loads_without_crash(corpus_dir: Path) -> None:
    corpus = load_dir(corpus_dir)
    files = sorted(corpus_dir.iterdir())
    assert corpus.files == len(files)
    fronts = [raw_front(p) for p in files]
    live = {front.get("webUrl") or front["originalUrl"] for front in fronts if front["published"]}
    assert len(corpus.articles) == len(live)  # every published URL once, drafts left out
    assert corpus.rejected == 0
    for article in corpus.articles:
        assert article.published and article.published_at.utcoffset() == timedelta(0)
        assert article.url.startswith(("http://", "https://"))
    secrets = {raw_front(p)["secured"] for p in files}
    assert len(secrets) == len(files)
    texts = {text for article in corpus.articles for text in strings(article)}
    assert not [secret for secret in secrets for text in texts if secret[:24] in text]

"""Validating one article's fields: every field of the seeds, defaults, dates, URLs, providers, repairs."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from feedpub.ingest.validate import MAX_RELATED, parse_bytes
from feedpub.model import Article, Image, Kind, Problem, Provider, Related

from .articles import DROP, MINIMAL, WriteArticle, errors, front, line_of, load_dir, raw_front, strings, wrap

UTC = UTC
SEED_NAMES = [
    "000_cea38546ddfede18.txt",
    "001_c483bf4fbe8e96a5.txt",
    "002_882eb17234bc9889.txt",
    "003_9e7147b7d60c286a.txt",
    "004_fbf05e2be9931d54.txt",
]



# -- helpers ---------------------------------------------------------------------------------------


def parse(text: str) -> tuple[Article | None, tuple[Problem, ...]]:
    result = parse_bytes("x.md", wrap(text))
    return result.article, result.problems


def as_utc(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def image(item: dict[str, Any]) -> Image:
    return Image(url=item["url"], width=item.get("width"), height=item.get("height"), title=item.get("title"))




def warnings(problems: tuple[Problem, ...] | list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "warning"]


# -- every field of the seeds -----------------------------------------------------------------------


@pytest.mark.parametrize("name", SEED_NAMES)
def test_seed_parses_every_field(seeds: Path, name: str) -> None:
    path = seeds / name
    raw = raw_front(path)
    result = parse_bytes(str(path), path.read_bytes())
    article = result.article
    assert article is not None, result.problems
    assert errors(result.problems) == []

    assert article.path == str(path)
    assert article.title == raw["title"]
    assert article.excerpt == raw["excerpt"]
    assert article.url == raw["webUrl"]
    assert article.published_at == as_utc(raw["publishedDateTime"])
    assert article.published_at.utcoffset() == timedelta(0)
    assert article.published is raw.get("published", True)
    assert article.kind is Kind(raw["type"])
    assert article.topics == tuple(raw["topics"])
    assert article.quality == raw["quality"]
    # originalUrl is kept only when it differs from the canonical URL.
    original = raw.get("originalUrl")
    assert article.original_url == (original if original and original != raw["webUrl"] else None)

    provider = raw["provider"]
    logos = provider.get("images") or []
    assert article.provider == Provider(provider["name"], provider["domain"], image(logos[0]) if logos else None)
    assert article.images == tuple(image(item) for item in raw.get("images", []))
    assert article.image == (article.images[0] if article.images else None)

    expected_related = []
    seen = {raw["webUrl"]}  # a related URL repeating an earlier one (seed 004 has one) is dropped
    for item in raw.get("related", []):
        if item["webUrl"] in seen:
            continue
        seen.add(item["webUrl"])
        expected_related.append(
            Related(
                title=item["title"],
                url=item["webUrl"],
                published_at=as_utc(item["publishedDateTime"]),
                provider=Provider(item["provider"]["name"], item["provider"]["domain"]),
            )
        )
    assert article.related == tuple(expected_related)


def test_site_relative_provider_logo_is_kept_as_written(seeds: Path) -> None:
    """Resolution against the site URL is the renderer's job; the model keeps the path."""
    article = parse_bytes("000", (seeds / SEED_NAMES[0]).read_bytes()).article
    assert article is not None and article.provider.logo is not None
    assert article.provider.logo == Image("/assets/images/organizations/thenextweb.com-50x50.jpg", 50, 50)


def test_seeds_load_as_a_corpus(seeds: Path) -> None:
    corpus = load_dir(seeds)
    assert corpus.files == 5
    assert corpus.rejected == 0
    assert errors(corpus.problems) == []
    published = {n for n in SEED_NAMES if raw_front(seeds / n).get("published", True)}
    assert {Path(a.path).name for a in corpus.articles} == published
    assert all(a.published for a in corpus.articles)
    # Topics and providers of unpublished articles still count (they get feeds).
    all_topics = {t for n in SEED_NAMES for t in raw_front(seeds / n)["topics"]}
    assert set(corpus.topics) == all_topics
    assert set(corpus.providers) == {raw_front(seeds / n)["provider"]["domain"] for n in SEED_NAMES}
    assert corpus.newest == max(a.published_at for a in corpus.articles)


@pytest.mark.parametrize("name", SEED_NAMES)
def test_secured_is_never_stored(seeds: Path, name: str) -> None:
    path = seeds / name
    secret = raw_front(path)["secured"]
    assert len(secret) > 40
    article = parse_bytes(str(path), path.read_bytes()).article
    assert article is not None
    names = {spec.name for spec in dataclasses.fields(Article)}
    assert not names & {"secured", "heat", "amp_url", "cdn_amp_url"}
    texts = list(strings(article))
    assert not any(secret in text or secret.split(";")[0][:32] in text for text in texts)
    amp = raw_front(path).get("ampWebUrl")
    if amp:
        assert amp not in texts


def test_model_is_frozen(seeds: Path) -> None:
    corpus = load_dir(seeds)
    article = corpus.articles[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        article.title = "changed"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        article.provider.domain = "evil.example"  # type: ignore[misc]
    assert article.related
    with pytest.raises(dataclasses.FrozenInstanceError):
        article.related[0].url = "https://evil.example/"  # type: ignore[misc]
    assert article.image is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        article.image.url = "https://evil.example/x.jpg"  # type: ignore[misc]


# -- defaults ----------------------------------------------------------------------------------------


def test_defaults_of_a_minimal_article() -> None:
    article, problems = parse(front())
    assert problems == ()
    assert article is not None
    assert article.published is True  # missing flag means published, as in Jekyll
    assert article.kind is Kind.ARTICLE
    assert article.excerpt == ""
    assert article.topics == ()
    assert article.images == ()
    assert article.image is None
    assert article.related == ()
    assert article.featured_html == ""
    assert article.original_url is None
    assert article.provider.logo is None


@pytest.mark.parametrize(
    ("value", "published"), [(True, True), (False, False), (DROP, True)], ids=["true", "false", "missing"]
)
def test_published_flag(value: object, published: bool) -> None:
    article, _ = parse(front(published=value))
    assert article is not None and article.published is published


@pytest.mark.parametrize("value", ["yes please", 1, "false"])
def test_published_must_be_a_boolean(value: object) -> None:
    article, problems = parse(front(published=value))
    assert article is None
    assert "published" in errors(problems)[0].message


@pytest.mark.parametrize(
    ("value", "kind", "warned"),
    [(DROP, Kind.ARTICLE, False), ("article", Kind.ARTICLE, False), ("video", Kind.VIDEO, False),
     ("Video", Kind.VIDEO, False), ("podcast", Kind.ARTICLE, True)],
)
def test_type(value: object, kind: Kind, warned: bool) -> None:
    article, problems = parse(front(type=value))
    assert article is not None and article.kind is kind
    assert any("type" in p.message for p in warnings(problems)) is warned


def test_unpublished_articles_stay_out_of_the_feeds_but_name_topics(write_article: WriteArticle) -> None:
    write_article("on.md", front(title="On", webUrl="https://a.example/on", topics=["Shared"]))
    write_article(
        "off.md",
        front(title="Off", webUrl="https://a.example/off", published=False, topics=["Hidden topic"],
              provider={"name": "Quiet", "domain": "quiet.example"}),
    )
    corpus = load_dir(write_article.root)  # type: ignore[attr-defined]
    assert [a.title for a in corpus.articles] == ["On"]
    assert set(corpus.topics) == {"Shared", "Hidden topic"}
    assert set(corpus.providers) == {"example.com", "quiet.example"}
    assert corpus.rejected == 0


# -- dates ---------------------------------------------------------------------------------------------

MOMENT = datetime(2020, 1, 31, 22, 41, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "2020-01-31T22:41:00Z",
        "2020-01-31t22:41:00z",
        "2020-01-31T22:41:00+00:00",
        "2020-01-31T23:41:00+01:00",
        "2020-01-31T17:41:00-05:00",
        "2020-02-01T04:11:00+05:30",
        "2020-01-31T22:41:00",  # no zone: UTC
        "2020-01-31 22:41:00",
        "Fri, 31 Jan 2020 22:41:00 GMT",
    ],
)
def test_dates_become_aware_utc(text: str) -> None:
    article, problems = parse(front(publishedDateTime=text))
    assert problems == ()
    assert article is not None
    assert article.published_at == MOMENT
    assert article.published_at.tzinfo is not None
    assert article.published_at.utcoffset() == timedelta(0)


def test_unquoted_yaml_timestamp_is_parsed_too(write_article: WriteArticle) -> None:
    text = front(publishedDateTime=DROP) + "publishedDateTime: 2020-01-31T23:41:00+01:00\n"
    write_article("a.md", text)
    corpus = load_dir(write_article.root)  # type: ignore[attr-defined]
    assert [a.published_at for a in corpus.articles] == [MOMENT]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2021-01-01", "has no time"),
        ("'2021-01-01'", "has no time"),
        ("'20210101'", "has no time"),
        ("2021-W01-5", "has no time"),
        ("2021-w01-5", "has no time"),
        ("2020-02-30T00:00:00Z", "not a valid date"),
        ("2021-13-01T00:00:00Z", "not a valid date"),
        ("2020-01-31T25:00:00Z", "not a valid date"),
        ("'yesterday'", "not a valid date"),
        ("2020", "expected a date"),
        ("[2020-01-01T00:00:00Z]", "expected a date"),
        ("9999-12-31T23:59:59-05:00", "out of range"),
    ],
)
def test_bad_dates_reject_the_file_naming_the_field(write_article: WriteArticle, text: str, reason: str) -> None:
    path = write_article("bad.md", front(publishedDateTime=DROP) + f"publishedDateTime: {text}\n")
    write_article("good.md", front(webUrl="https://example.com/good"))
    corpus = load_dir(write_article.root)  # type: ignore[attr-defined]
    assert [a.url for a in corpus.articles] == ["https://example.com/good"]
    [problem] = errors(corpus.problems)
    assert problem.path.endswith("bad.md")
    assert "publishedDateTime" in problem.message
    assert reason in problem.message
    assert problem.line == line_of(path, "publishedDateTime:")


def test_missing_date_rejects_the_file() -> None:
    article, problems = parse(front(publishedDateTime=DROP))
    assert article is None
    assert "publishedDateTime: missing" in errors(problems)[0].message


def test_bad_related_date_drops_only_the_related_item() -> None:
    related = [
        {"title": "Good", "webUrl": "https://r.example/1", "publishedDateTime": "2020-01-01T10:00:00+02:00"},
        {"title": "Bad", "webUrl": "https://r.example/2", "publishedDateTime": "2020-01-01"},
        {"title": "Undated", "webUrl": "https://r.example/3"},
    ]
    article, problems = parse(front(related=related))
    assert article is not None
    assert [(r.title, r.published_at) for r in article.related] == [
        ("Good", datetime(2020, 1, 1, 8, tzinfo=UTC)),
        ("Undated", None),
    ]
    assert any("related[1]" in p.message for p in warnings(problems))


# -- canonical URL ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("web", "original", "url", "warned"),
    [
        ("https://w.example/a", "https://o.example/a", "https://w.example/a", False),
        ("http://w.example/a", DROP, "http://w.example/a", False),
        (DROP, "https://o.example/a", "https://o.example/a", False),
        ("/relative/path", "https://o.example/a", "https://o.example/a", True),
        ("//w.example/a", "https://o.example/a", "https://o.example/a", True),
        ("javascript:alert(1)", "https://o.example/a", "https://o.example/a", True),
        ("ftp://w.example/a", "https://o.example/a", "https://o.example/a", True),
        (42, "https://o.example/a", "https://o.example/a", True),
    ],
)
def test_canonical_url(web: object, original: object, url: str, warned: bool) -> None:
    article, problems = parse(front(webUrl=web, originalUrl=original))
    assert article is not None
    assert article.url == url
    assert any("webUrl" in p.message for p in warnings(problems)) is warned


def test_original_url_is_kept_when_it_differs() -> None:
    article, _ = parse(front(webUrl="https://w.example/a", originalUrl="https://o.example/a"))
    assert article is not None and article.original_url == "https://o.example/a"


@pytest.mark.parametrize(
    ("web", "original"),
    [(DROP, DROP), ("/relative", DROP), ("javascript:alert(1)", "mailto:x@example.com"), ("", "not a url")],
)
def test_no_usable_url_rejects_the_file(web: object, original: object) -> None:
    article, problems = parse(front(webUrl=web, originalUrl=original))
    assert article is None
    assert "no usable URL" in errors(problems)[0].message


# -- provider --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("domain", "expected"),
    [("wired.com", "wired.com"), ("WIRED.Com", "wired.com"), ("wired.com.", "wired.com"),
     (" Wired.COM. ", "wired.com")],
)
def test_provider_domain_is_normalised(domain: str, expected: str) -> None:
    article, _ = parse(front(provider={"name": "Wired", "domain": domain}))
    assert article is not None
    assert article.provider == Provider("Wired", expected)


@pytest.mark.parametrize(
    ("provider", "reason"),
    [
        (DROP, "provider: missing"),
        ({"name": "No domain"}, "missing domain"),
        ({"name": "Bad", "domain": "not a domain"}, "invalid domain"),
        ({"name": "Bad", "domain": "evil.example/../x"}, "invalid domain"),
        ("wired.com", "expected a mapping"),
    ],
)
def test_provider_without_usable_domain_rejects_the_file(provider: object, reason: str) -> None:
    article, problems = parse(front(provider=provider))
    assert article is None
    assert reason in errors(problems)[0].message


def test_provider_without_name_uses_the_domain() -> None:
    article, problems = parse(front(provider={"domain": "example.org"}))
    assert article is not None
    assert article.provider.name == "example.org"
    assert any("provider.name" in p.message for p in warnings(problems))


def test_provider_logo_from_any_article_is_kept(write_article: WriteArticle) -> None:
    logo = {"url": "/assets/logo.png", "width": 50, "height": 50}
    write_article("a.md", front(webUrl="https://example.com/1", publishedDateTime="2021-01-01T00:00:00Z"))
    write_article(
        "b.md",
        front(webUrl="https://example.com/2", provider={"name": "Example", "domain": "example.com", "images": [logo]}),
    )
    corpus = load_dir(write_article.root)  # type: ignore[attr-defined]
    assert corpus.providers["example.com"].logo == Image("/assets/logo.png", 50, 50)


# -- repaired data: warnings keep the article -----------------------------------------------------------


def test_topics_as_a_string_is_one_topic_with_a_warning(write_article: WriteArticle) -> None:
    path = write_article("a.md", front(topics="AI"))
    corpus = load_dir(write_article.root)  # type: ignore[attr-defined]
    assert [a.topics for a in corpus.articles] == [("AI",)]
    [problem] = corpus.problems
    assert problem.severity == "warning"
    assert "topics" in problem.message
    assert problem.line == line_of(path, "topics:")
    assert corpus.rejected == 0


def test_bad_topic_entries_are_dropped_and_duplicates_merged() -> None:
    article, problems = parse(front(topics=["AI", 3, "", "AI", "  Computer   Vision "]))
    assert article is not None
    assert article.topics == ("AI", "Computer Vision")
    assert len(warnings(problems)) == 2


def test_related_items_are_capped_at_50_in_file_order(write_article: WriteArticle) -> None:
    items = [{"title": f"Item {i}", "webUrl": f"https://r.example/{i}"} for i in range(MAX_RELATED + 10)]
    path = write_article("a.md", front(related=items))
    corpus = load_dir(write_article.root)  # type: ignore[attr-defined]
    [article] = corpus.articles
    assert MAX_RELATED == 50
    assert [r.title for r in article.related] == [f"Item {i}" for i in range(50)]
    [problem] = corpus.problems
    assert problem.severity == "warning" and "related" in problem.message and "50" in problem.message
    assert problem.line in (line_of(path, "related:"), line_of(path, "related:") + 1)


def test_related_items_repeating_a_url_or_the_article_are_dropped() -> None:
    items = [
        {"title": "Self", "webUrl": MINIMAL["webUrl"]},
        {"title": "One", "webUrl": "https://r.example/1"},
        {"title": "One again", "webUrl": "https://r.example/1"},
        {"title": "No URL"},
        {"webUrl": "https://r.example/no-title"},
        "not a mapping",
    ]
    article, problems = parse(front(related=items))
    assert article is not None
    assert [r.title for r in article.related] == ["One"]
    assert len(warnings(problems)) == 3  # no URL, no title, not a mapping


@pytest.mark.parametrize(
    "html",
    [
        '<p onclick="steal()">Hi</p><script>alert(1)</script>',
        '<a href="javascript:alert(1)">x</a><img src="x" onerror="alert(2)">',
        '<iframe src="https://www.youtube.com/embed/x" onload="alert(3)"></iframe><style>body{}</style>',
        '<a href=" JaVaScRiPt:alert(4)">x</a><object data="evil.swf"></object>',
    ],
)
def test_hostile_featured_content_is_sanitised_with_a_warning(html: str) -> None:
    article, problems = parse(front(featuredContent=html))
    assert article is not None
    lowered = article.featured_html.lower()
    for bad in ("<script", "onclick", "onerror", "onload", "javascript:", "<style", "<object", "alert(1)"):
        assert bad not in lowered
    assert warnings(problems)
    assert all("featuredContent" in p.message for p in problems)


def test_safe_featured_content_is_kept_without_warning() -> None:
    html = '<iframe width="800" height="500" src="https://www.youtube.com/embed/x" allowfullscreen></iframe>'
    article, problems = parse(front(featuredContent=html))
    assert article is not None
    assert 'src="https://www.youtube.com/embed/x"' in article.featured_html
    assert problems == ()


def test_markup_in_title_becomes_plain_text_with_a_warning() -> None:
    article, problems = parse(front(title="<b>Bold</b> news<script>alert(1)</script>", excerpt="Fish &amp; chips"))
    assert article is not None
    assert article.title == "Bold news"
    assert article.excerpt == "Fish & chips"
    assert any(p.message.startswith("title:") for p in warnings(problems))


def test_control_characters_are_removed_from_text() -> None:
    text = front() + 'excerpt: "tab\\tand\\x01bell\\x07 text"\n'
    article, problems = parse(text.replace("title: A title", 'title: "Bad\\x01\\x08\\x0b\\x1f\\ufffe title"'))
    assert article is not None
    assert article.title == "Bad title"
    assert article.excerpt == "tab andbell text"
    assert any("not allowed in XML" in p.message for p in warnings(problems))


@pytest.mark.parametrize(
    ("images", "kept"),
    [
        ([{"url": "https://i.example/a.jpg", "width": 10, "height": 20}], [("https://i.example/a.jpg", 10, 20)]),
        ([{"url": "https://i.example/a.jpg", "width": "10", "height": -5}], [("https://i.example/a.jpg", 10, None)]),
        ([{"url": "relative/a.jpg"}, {"url": "https://i.example/b.jpg"}], [("https://i.example/b.jpg", None, None)]),
        ([{"url": "javascript:alert(1)"}], []),
        ("https://i.example/a.jpg", []),
    ],
)
def test_images(images: object, kept: list[tuple[str, int | None, int | None]]) -> None:
    article, _ = parse(front(images=images))
    assert article is not None
    assert [(i.url, i.width, i.height) for i in article.images] == kept

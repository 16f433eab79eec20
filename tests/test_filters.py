"""Query filters on the live server: limit, min_quality and type, with their own cache entries."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from feedpub.web import create_app

ARTICLE = """\
title: "{title}"
publishedDateTime: 2021-01-{day:02d}T10:00:00Z
webUrl: "https://example.com/{n}"
type: {kind}
quality: {quality}
provider: {{name: Example, domain: example.com}}
topics: [AI]
"""


@pytest.fixture
def client(write_article) -> FlaskClient:
    # Days 1..20: even days are videos; quality = 10 * n.
    for n in range(1, 21):
        kind = "video" if n % 2 == 0 else "article"
        write_article(f"a{n:02d}.md", ARTICLE.format(title=f"Item {n}", day=n, n=n, kind=kind, quality=10 * n))
    app = create_app({"TESTING": True, "seeds_dir": str(write_article.root), "max_items": 5})
    return app.test_client()


def ids(client: FlaskClient, query: str) -> list[int]:
    response = client.get(f"/feeds/ai.json{query}")
    assert response.status_code == 200, response.data
    return [int(item["id"].rsplit("/", 1)[1]) for item in response.json["items"]]


def test_type_filters_before_trimming(client: FlaskClient) -> None:
    assert ids(client, "") == [20, 19, 18, 17, 16]
    assert ids(client, "?type=video") == [20, 18, 16, 14, 12]  # the newest five videos, not three of the newest five
    assert ids(client, "?type=article") == [19, 17, 15, 13, 11]


def test_min_quality_and_limit_combine(client: FlaskClient) -> None:
    assert ids(client, "?min_quality=185") == [20, 19]
    assert ids(client, "?min_quality=0&limit=2") == [20, 19]
    assert ids(client, "?type=video&min_quality=150&limit=2") == [20, 18]
    assert ids(client, "?min_quality=999") == []


def test_quality_is_never_printed(client: FlaskClient) -> None:
    for suffix in (".xml", ".atom", ".json"):
        body = client.get(f"/feeds/ai{suffix}?min_quality=10").data
        assert b"quality" not in body and b">190<" not in body


def test_every_format_and_the_preview_page_filter_alike(client: FlaskClient) -> None:
    rss = client.get("/feeds/ai.xml?type=video&limit=2").data.decode()
    atom = client.get("/feeds/ai.atom?type=video&limit=2").data.decode()
    page = client.get("/feeds/topics/ai.html?type=video&limit=2").data.decode()
    for text in (rss, atom, page):
        assert "https://example.com/20" in text and "https://example.com/18" in text
        assert "https://example.com/19" not in text and "https://example.com/16" not in text


def test_filtered_feeds_have_their_own_validators(client: FlaskClient) -> None:
    plain = client.get("/feeds/ai.xml")
    videos = client.get("/feeds/ai.xml?type=video")
    assert videos.headers["ETag"] != plain.headers["ETag"]
    assert client.get("/feeds/ai.xml?type=video", headers={"If-None-Match": videos.headers["ETag"]}).status_code == 304
    assert client.get("/feeds/ai.xml", headers={"If-None-Match": videos.headers["ETag"]}).status_code == 200
    articles = client.get("/feeds/ai.xml?type=article")
    # Dated as the whole feed: a subset changes only when its feed does, and its own newest entry
    # would not move for an edit of an older one (see tests/test_http_validators.py).
    assert articles.headers["Last-Modified"] == plain.headers["Last-Modified"]


def test_unknown_parameters_are_ignored(client: FlaskClient) -> None:
    plain = client.get("/feeds/ai.xml")
    tracked = client.get("/feeds/ai.xml?utm_source=reader&_=123")
    assert tracked.status_code == 200 and tracked.data == plain.data
    assert tracked.headers["ETag"] == plain.headers["ETag"]


@pytest.mark.parametrize("query", ["type=podcast", "type=", "type=Video", "min_quality=-1", "min_quality=x",
                                   "min_quality=1e3", "limit=0", "limit=6", "limit=two"])
def test_invalid_values_are_400(client: FlaskClient, query: str) -> None:
    response = client.get(f"/feeds/ai.xml?{query}")
    assert response.status_code == 400
    assert query.split("=")[0].encode() in response.data


def test_index_files_ignore_filters(client: FlaskClient) -> None:
    assert client.get("/feeds/index.json?type=podcast").status_code == 200

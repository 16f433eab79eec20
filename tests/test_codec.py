"""The cache's encoding of parse results: exact round trips, and damage refused, never trusted."""

from __future__ import annotations

import copy
import json
import pickle
import logging
import zlib
from pathlib import Path

import pytest

from feedpub.content import entry_html
from feedpub.codec import CodecError, Decoder, encode
from feedpub.corpus import discover, read_file
from feedpub.model import Coverage, Related

from .conftest import SEEDS


def _results(root: Path) -> list:
    return [read_file(root, rel, 8 << 20) for rel in discover(root)]


@pytest.mark.parametrize("which", ["seeds", "corpus_dir", "generated_dir"])
def test_every_result_survives_a_round_trip(which: str, request: pytest.FixtureRequest) -> None:
    root = SEEDS if which == "seeds" else request.getfixturevalue(which)
    decoder = Decoder()
    for result in _results(root):
        back = decoder.decode(encode(result), result.path)
        assert back == result, result.path
        if result.article is not None:
            assert back.article.related == result.article.related
            assert back.article.published_at.utcoffset() == result.article.published_at.utcoffset()


def test_providers_are_shared_between_results(corpus_dir: Path) -> None:
    decoder = Decoder()
    decoded = [decoder.decode(encode(r), r.path) for r in _results(corpus_dir) if r.article is not None]
    # Articles' providers only: related items stay packed bytes and are unpacked afresh when rendered.
    providers = [r.article.provider for r in decoded]
    by_value: dict = {}
    for provider in providers:
        by_value.setdefault(provider, []).append(provider)
    assert max(len(same) for same in by_value.values()) >= 2
    assert all(p is same[0] for same in by_value.values() for p in same)  # equal providers: one object


RELATED = -1  # the packed related items, after the JSON head


def _damaged(slot: int, value: object) -> bytes:
    result = next(r for r in _results(SEEDS) if r.article is not None and r.article.related)
    head, _, related = encode(result).partition(b"\0")
    body = json.loads(head)
    if slot == RELATED:
        related = json.dumps(value).encode()
    else:
        body[2][slot] = value
    return json.dumps(body).encode() + b"\0" + related


@pytest.mark.parametrize("slot, value", [
    (0, 42),  # url
    (1, None),  # title
    (2, "2020-01-01"),  # date as text
    (3, ["name", 7, None]),  # provider domain not text
    (5, ["list"]),  # excerpt
    (6, "podcast"),  # unknown kind
    (7, "AI"),  # topics as a string is fine for iteration but each must be text
    (RELATED, [[1, 2, 3, 4]]),  # related item with wrong types
    (RELATED, [["t", "u", 1.5, None]]),  # related date not an integer
    (RELATED, [["t", "u", None, ["name", None, None]]]),  # related provider without a domain
    (RELATED, [["t", "u", None]]),  # related item too short
    (RELATED, {"t": "u"}),  # not a list
    (3, ["n", "d", [{"nested": 1}, None, None, None]]),  # unhashable logo
])
def test_damaged_results_are_refused(slot: int, value: object) -> None:
    blob = _damaged(slot, value)
    if slot == 7:
        Decoder().decode(blob, "x.md")  # "AI" iterates as one-letter texts: shape-valid, and harmless
        return
    with pytest.raises(CodecError):
        Decoder().decode(blob, "x.md")


@pytest.mark.parametrize("value", [[[1, 2, 3, 4]], [["t", "u", 1.5, None]], [["t", "u", None, ["n", None, None]]],
                                   {"t": "u"}, [["t", "u", None]]])
def test_related_items_of_a_foreign_shape_are_left_out_not_fatal(value: object, caplog: pytest.LogCaptureFixture) -> None:
    # A row whose checksum matches but whose related items have another shape (a foreign writer):
    # the start does not build related items, so the entry that renders them loses them, not its feed.
    result = next(r for r in _results(SEEDS) if r.article is not None and r.article.related)
    head, _, _ = encode(result).partition(b"\0")
    related = json.dumps(value).encode()
    body = json.loads(head)
    body[3] = zlib.crc32(related)
    article = Decoder().decode(json.dumps(body).encode() + b"\0" + related, "x.md").article
    assert article is not None and article.title == result.article.title
    with caplog.at_level(logging.ERROR, "feedpub.model"):
        assert list(article.related) == [] and len(article.related) == 0 and not article.related
        entry = entry_html(article, "http://example.test")
    assert "related items left out" in caplog.text
    assert "Read the full" in entry and "Related coverage" not in entry
    assert "Related coverage" in entry_html(result.article, "http://example.test")


def test_packed_related_items_unpack_to_what_was_parsed(corpus_dir: Path, generated_dir: Path) -> None:
    results = [r for root in (SEEDS, corpus_dir, generated_dir) for r in _results(root)
               if r.article is not None and r.article.related]
    assert results
    for result in results:
        related = result.article.related
        items = tuple(related)
        assert all(isinstance(item, Related) for item in items)
        assert len(related) == len(items) and related[0] == items[0] and related == items
        assert Coverage.of(items) == related  # packing is deterministic
        assert pickle.loads(pickle.dumps(related)) == related and copy.deepcopy(related) == related
        assert len(related.packed) < sum(len(i.title) + len(i.url) for i in items) + 80 * len(items)


@pytest.mark.parametrize("blob", [b"", b"{}", b"[1,2]", b"\xff\xfe", b"[[], 3, null]", b'[[[1, "error"]], "d", null]', b'[[], "d", null]'])
def test_garbage_is_refused(blob: bytes) -> None:
    with pytest.raises(CodecError):
        Decoder().decode(blob, "x.md")

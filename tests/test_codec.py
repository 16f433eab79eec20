"""The cache's encoding of parse results: exact round trips, and damage refused, never trusted."""

from __future__ import annotations

import copy
import json
import logging
import pickle
import zlib
from pathlib import Path

import pytest

from feedpub.ingest.codec import CodecError, Decoder, encode
from feedpub.ingest.scan import read_file, scan
from feedpub.model import Coverage, Related
from feedpub.render.entry_content import entry_html

from .conftest import SEEDS


def _results(root: Path) -> list:
    return [read_file(root, rel, 8 << 20) for rel in sorted(scan(root))]


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


def _opened(blob: bytes) -> tuple[list, bytes]:
    """The JSON head and the packed related items of an encoded result."""
    head, _, related = blob[4:].partition(b"\0")
    return json.loads(head), related


def _sealed(body: list, related: bytes) -> bytes:
    """Bytes as a writer of the format would make them: with the checksum they must carry."""
    content = json.dumps(body).encode() + b"\0" + related
    return zlib.crc32(content).to_bytes(4, "big") + content


def _with_related() -> object:
    return next(r for r in _results(SEEDS) if r.article is not None and r.article.related)


def _damaged(slot: int, value: object) -> bytes:
    blob = encode(_with_related())
    body, related = _opened(blob)
    if slot == RELATED:  # changed behind the writer's back: the old seal no longer fits
        return blob[:4] + _sealed(body, json.dumps(value).encode())[4:]
    body[2][slot] = value  # a writer's bad shape, sealed: the shape checks must refuse it
    return _sealed(body, related)


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
def test_related_items_of_a_foreign_shape_are_left_out_not_fatal(value: object,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    # A row whose checksum matches but whose related items have another shape (a foreign writer):
    # the start does not build related items, so the entry that renders them loses them, not its feed.
    result = _with_related()
    body, _ = _opened(encode(result))
    article = Decoder().decode(_sealed(body, json.dumps(value).encode()), "x.md").article
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


@pytest.mark.parametrize("blob", [b"", b"{}", b"[1,2]", b"\xff\xfe", b"[[], 3, null]", b'[[[1, "error"]], "d", null]',
                                  b'[[], "d", null]'])
def test_garbage_is_refused(blob: bytes) -> None:
    with pytest.raises(CodecError):
        Decoder().decode(blob, "x.md")


def test_every_byte_of_a_row_is_covered_by_its_checksum() -> None:
    # One byte changed anywhere, in the title, the digest, a problem or a related item: the row is
    # refused (and so parsed again), never published as it reads now.
    decoder = Decoder()
    for result in _results(SEEDS):
        blob = encode(result)
        assert decoder.decode(blob, result.path) == result
        for offset in range(len(blob)):
            damaged = bytearray(blob)
            damaged[offset] ^= 0x01 if blob[offset] not in b"\0\x01" else 0x40  # stays UTF-8 and JSON-like
            with pytest.raises(CodecError):
                decoder.decode(bytes(damaged), result.path)


def test_a_changed_title_is_refused() -> None:
    result = _with_related()
    blob = encode(result)
    title = result.article.title.encode()
    at = blob.index(title)
    altered = blob[:at] + bytes([title[0] ^ 0x20]) + blob[at + 1:]  # a letter's case: still valid JSON text
    with pytest.raises(CodecError, match="checksum"):
        Decoder().decode(altered, result.path)
    # the seal is all that told
    assert Decoder().decode(_sealed(*_opened(altered)), result.path).article.title != result.article.title

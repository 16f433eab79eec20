"""The guard's quick look at the usual request (``guard._plain``) never lets through what its checks refuse."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from werkzeug.test import EnvironBuilder

from feedpub.web import guard

# Latin-1 text, as a WSGI server passes bytes: controls, DEL, C1 controls, '%', tabs and UTF-8 halves among it.
TEXT = st.lists(st.sampled_from([*"ab=&/ ?.%\t\r\n\x00\x01\x1b\x7f\x80\x85\xa0\xc3\xa9", "%0d", "%0A", "%7f", "%c3"]),
                max_size=12).map("".join)


def _environ(path: str, query: str, headers: dict[str, str]) -> dict[str, object]:
    environ = EnvironBuilder(path="/feeds/all.xml").get_environ()
    environ.update({"PATH_INFO": path, "QUERY_STRING": query, "SERVER_SOFTWARE": "gunicorn/23.0.0"})
    environ.update({f"HTTP_{name}": value for name, value in headers.items()})
    return environ


@given(path=TEXT, query=TEXT, headers=st.dictionaries(st.sampled_from(["X_A", "IF_NONE_MATCH", "USER_AGENT"]), TEXT))
@example(path="/feeds/all.xml", query="", headers={"IF_NONE_MATCH": '"abc"'})
@example(path="/feeds/all.xml", query="a=%0d", headers={})
@example(path="/feeds/all.xml", query="", headers={"X_A": "a\tb"})
@example(path="/feeds/\x01", query="", headers={})
def test_the_quick_look_answers_as_the_checks_do(path: str, query: str, headers: dict[str, str]) -> None:
    environ = _environ(path, query, headers)
    with pytest.MonkeyPatch.context() as patch:  # the checks alone, without the quick look
        patch.setattr(guard, "_plain", lambda environ: False)
        expected = guard.malformed(environ)
    assert guard.malformed(environ) == expected
    if guard._plain(environ):
        assert expected is None


def test_the_usual_request_is_plain_and_anything_odd_is_looked_at() -> None:
    assert guard._plain(_environ("/feeds/all.xml", "limit=5", {"IF_NONE_MATCH": '"abc"', "USER_AGENT": "wrk"}))
    for odd in (_environ("/feeds/all.xml", "a=%41", {}), _environ("/feeds/all.xml", "", {"X_A": "\t"}),
                _environ("/feeds/all.xml", "", {"X_A": "caf\xe9"}), {**_environ("/", "", {}), "QUERY_STRING": b""}):
        assert not guard._plain(odd)

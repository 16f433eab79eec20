"""Hostile requests: whatever arrives, the app answers 4xx (or a clean 3xx), never 5xx nor an exception;
and a failed precondition is a 412 without a body.

A control character in the query or a header is a one-line 400; in the path it names no feed, so it
is the 404 of any unknown path. Requests go in as a WSGI server hands them over (``send``): the
percent-decoded path and the raw query as latin-1 text of their bytes, headers as ``HTTP_*`` keys;
Flask's test client cannot send most of them (it strips or encodes what it finds unusual). One test
sends raw bytes to real servers, ``feedpub serve`` and gunicorn.
"""

from __future__ import annotations

import re
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from werkzeug.http import http_date
from werkzeug.test import EnvironBuilder

from feedpub.web import create_app

from .conftest import SEEDS, SITE_URL
from .test_gunicorn import _up, free_port, run_gunicorn, wait_for

Answer = tuple[int, list[tuple[str, str]], bytes]
CONTROLS = [chr(c) for c in range(0x20)] + ["\x7f"]
CONTROL = re.compile("[\x00-\x1f\x7f]")
CONDITIONAL = ["If-None-Match", "If-Match", "If-Modified-Since", "If-Unmodified-Since", "If-Range", "Range",
               "Accept-Encoding"]
ROUTES = [b"/feeds/ai.xml", b"/feeds/all.json", b"/feeds/ai.xml?limit=1", b"/", b"/feeds/", b"/topics/ai",
          b"/providers/wired.com", b"/feeds/index.json"]
NOT_FOUND = "Every feed is listed at"


@pytest.fixture(scope="module")
def hostile_app(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    seeds = tmp_path_factory.mktemp("requests") / "seeds"
    shutil.copytree(SEEDS, seeds)
    # Module-wide: its own cache directory, not the one the first test's environment names.
    cache = tmp_path_factory.mktemp("cache")
    return create_app({"TESTING": True, "seeds_dir": str(seeds), "site_url": SITE_URL, "cache_dir": str(cache)})


def send(app: Flask, target: bytes, headers: dict[str, str] | None = None, method: str = "GET") -> Answer:
    """``target`` (the request line's bytes) as a WSGI server passes it; the app called as a server calls it."""
    path, _, query = target.partition(b"?")
    environ = EnvironBuilder(method=method, base_url=SITE_URL).get_environ()
    environ.update(PATH_INFO=unquote_to_bytes(path).decode("latin-1"), QUERY_STRING=query.decode("latin-1"),
                   RAW_URI=target.decode("latin-1"), REQUEST_URI=target.decode("latin-1"))
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    started: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        started.append((status, response_headers))

    chunks = app(environ, start_response)
    try:
        body = b"".join(chunks)
    finally:
        getattr(chunks, "close", lambda: None)()
    status, response_headers = started[-1]
    return int(status.split()[0]), response_headers, body


def assert_clean_headers(headers: list[tuple[str, str]]) -> None:
    dirty = [(name, value) for name, value in headers if CONTROL.search(name + value)]
    assert not dirty, dirty


def assert_one_line_400(answer: Answer, reason: str = "") -> None:
    status, headers, body = answer
    assert status == 400, answer
    assert dict(headers)["Content-Type"] == "text/plain; charset=utf-8"
    text = body.decode("utf-8")
    assert text.startswith("Bad request: ") and text.endswith(".\n") and text.count("\n") == 1, text
    assert not CONTROL.search(text[:-1]), text  # the reason never quotes what it refuses
    assert reason in text
    assert_clean_headers(headers)


# --- the examples ------------------------------------------------------------------

@pytest.mark.parametrize("target", [
    b"/feeds?\r", b"/feeds?\n", b"/feeds/?\r\n", b"/feeds/ai.xml?limit=\r", b"/topics/ai?\x00",
    b"/feeds?%0d", b"/feeds?%0A", b"/feeds/?%0d%0a", b"/feeds/ai.xml?limit=%0d", b"/topics/ai?%00",
    b"/feeds?x=1%0d%0aSet-Cookie:%20a=b", b"/providers/wired.com?\x1b[31m", b"/?\x7f",
])
def test_control_characters_in_the_query_are_a_one_line_400(hostile_app: Flask, target: bytes) -> None:
    assert_one_line_400(send(hostile_app, target), "the query string contains a control character")


def assert_not_found(answer: Answer) -> None:
    status, headers, body = answer
    assert status == 404 and NOT_FOUND in body.decode("utf-8"), answer
    assert dict(headers)["Content-Type"] == "text/plain; charset=utf-8"
    assert_clean_headers(headers)


@pytest.mark.parametrize("target", [
    b"/feeds%0d", b"/feeds/%0d%0a", b"/feeds/ai.xml%00", b"/topics/ai%0a", b"/feeds/ai.xml\x00", b"/feeds\r",
    b"/feeds/%0d/", b"/providers/wired.com%7f", b"/%09", b"/%0d%0aLocation:%20x",
])
def test_control_characters_in_the_path_are_the_404_of_any_unknown_path(hostile_app: Flask, target: bytes) -> None:
    answer = send(hostile_app, target)
    assert_not_found(answer)
    assert answer[2].rstrip(b"\n").count(b"\n") == 0 and b"\r" not in answer[2]  # the reason stays one line


@pytest.mark.parametrize("form", ["raw", "encoded"])
def test_every_control_character_is_refused(hostile_app: Flask, form: str) -> None:
    for control in CONTROLS:
        char = control.encode("latin-1") if form == "raw" else b"%%%02x" % ord(control)
        assert_one_line_400(send(hostile_app, b"/feeds?limit=1" + char), "query string")
        assert_one_line_400(send(hostile_app, b"/feeds/ai.xml?limit=1&x=" + char), "query string")
        assert_not_found(send(hostile_app, b"/feeds/ai.xml" + char))
        assert_not_found(send(hostile_app, b"/feeds" + char))


@pytest.mark.parametrize("header", [*CONDITIONAL, "Host", "User-Agent"])
@pytest.mark.parametrize("value", ["\r\nx", "\nx", "x\r", "\x00", "W/\"a\"\x01", "\x7f"])
def test_control_characters_in_a_header_are_a_one_line_400(hostile_app: Flask, header: str, value: str) -> None:
    assert_one_line_400(send(hostile_app, b"/feeds/ai.xml", {header: value}), f"the {header} header")
    assert_one_line_400(send(hostile_app, b"/feeds", {header: value}))  # before the trailing-slash redirect


def test_a_head_request_is_refused_the_same_way(hostile_app: Flask) -> None:
    status, headers, body = send(hostile_app, b"/feeds?\r", method="HEAD")
    assert (status, body) == (400, b"")
    assert_clean_headers(headers)


def test_a_raw_query_that_is_not_utf8_is_a_400(hostile_app: Flask) -> None:
    assert_one_line_400(send(hostile_app, b"/feeds/ai.xml?limit=\xff"), "not UTF-8")
    # Percent-encoded it is werkzeug's to decode (leniently): an unknown parameter, ignored.
    assert send(hostile_app, b"/feeds/ai.xml?x=%ff")[0] == 200


@pytest.mark.parametrize("key", ["PATH_INFO", "QUERY_STRING", "SCRIPT_NAME"])
def test_text_no_server_could_have_read_is_a_400(hostile_app: Flask, key: str) -> None:
    """PEP 3333 strings carry bytes (as latin-1); a wider character made werkzeug raise."""
    environ = EnvironBuilder(path="/feeds/ai.xml", base_url=SITE_URL).get_environ()
    environ[key] = environ[key] + "\u0100"
    started: list[str] = []
    body = b"".join(hostile_app(environ, lambda status, headers, exc_info=None: started.append(status)))
    assert started == ["400 BAD REQUEST"] and body.startswith(b"Bad request: ") and body.count(b"\n") == 1


@pytest.mark.parametrize("target", [
    b"/feeds/%ff%fe", b"/feeds/\xff\xfe.xml", b"/topics/%c0%af", b"/feeds/" + b"a" * 3000 + b".xml",
    b"/topics/" + "é".encode() * 1500, b"/feeds/" + b"%e2%82%ac" * 1000, b"/providers/" + b"x" * 100_000,
])
def test_undecodable_and_overlong_paths_are_404(hostile_app: Flask, target: bytes) -> None:
    assert_not_found(send(hostile_app, target))


@pytest.mark.parametrize("query", [b"", b"a=1", b"q=%C3%A9", "q=é".encode(), b"x=%25%30d", b"y=" + b"z" * 5000])
def test_the_trailing_slash_redirect_has_a_clean_location(hostile_app: Flask, query: bytes) -> None:
    status, headers, _ = send(hostile_app, b"/feeds?" + query if query else b"/feeds")
    assert status == 308
    assert_clean_headers(headers)
    location = dict(headers)["Location"]
    assert location.startswith(f"{SITE_URL}/feeds/") and location.isascii() and " " not in location


# --- properties ----------------------------------------------------------------------------

BASES = st.sampled_from([b"/feeds", b"/feeds/", b"/feeds/ai.xml", b"/", b"/topics/ai", b"/providers/wired.com",
                         b"/healthz", b"/feeds/all.json?limit=1", b"/nope"])


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(base=BASES, control=st.sampled_from(CONTROLS), where=st.sampled_from(["path", "query", "header"]),
       encoded=st.booleans(), at=st.integers(min_value=1, max_value=40), header=st.sampled_from(CONDITIONAL),
       method=st.sampled_from(["GET", "HEAD", "POST"]))
def test_a_control_character_anywhere_is_refused(hostile_app: Flask, base: bytes, control: str, where: str,
                                               encoded: bool, at: int, header: str, method: str) -> None:
    assume(not (where == "header" and control == "\t"))  # a tab may be part of a header value
    char = b"%%%02X" % ord(control) if encoded else control.encode("latin-1")
    path, _, query = base.partition(b"?")
    headers = {}
    if where == "path":
        at = min(at, len(path))
        path = path[:at] + char + path[at:]
    elif where == "query":
        query = query[:at] + char + query[at:]
    else:
        headers[header] = f'"{base.hex()}"{control}'
    status, response_headers, body = send(hostile_app, path + b"?" + query, headers, method)
    assert_clean_headers(response_headers)
    if where == "path":  # no feed has such a name: the 404 of an unknown path (a 405 where a route takes any name)
        assert status in ((404, 405) if method == "POST" else (404,)), (path, status)
        return
    assert status == 400, (path, query, headers, status, body)
    assert body == (b"" if method == "HEAD" else body.split(b"\n")[0] + b"\n")


LATIN1 = st.text(alphabet=st.characters(max_codepoint=0xFF), max_size=30)


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(base=BASES, path=LATIN1, query=st.one_of(LATIN1, st.builds(lambda s: f"limit={s}", LATIN1)),
       headers=st.dictionaries(st.sampled_from([*CONDITIONAL, "Host"]), LATIN1, max_size=4),
       method=st.sampled_from(["GET", "HEAD", "POST", "OPTIONS"]))
@example(base=b"/feeds", path="", query="\r", headers={}, method="GET")  # the redirect's Location raised
@example(base=b"/feeds/ai.xml", path="", query="\x80", headers={}, method="GET")  # werkzeug's strict decoding raised
def test_any_bytes_anywhere_never_fail(hostile_app: Flask, base: bytes, path: str, query: str,
                                       headers: dict[str, str], method: str) -> None:
    target = base.partition(b"?")[0] + path.encode("latin-1") + b"?" + query.encode("latin-1")
    status, response_headers, _ = send(hostile_app, target, headers, method)
    assert status < 500
    assert_clean_headers(response_headers)


# --- failed preconditions ------------------------------------------------------------------

@pytest.mark.parametrize("route", [r.decode() for r in ROUTES])
@pytest.mark.parametrize("encoding", ["identity", "gzip"])
def test_a_failed_if_match_is_412_without_a_body(client: FlaskClient, route: str, encoding: str) -> None:
    current = client.get(route, headers={"Accept-Encoding": encoding})
    assert current.status_code == 200 and current.data
    for method in (client.get, client.head):
        failed = method(route, headers={"If-Match": "garbage", "Accept-Encoding": encoding})
        assert failed.status_code == 412
        assert failed.data == b"" and failed.headers["Content-Length"] == "0"
        assert failed.headers["ETag"] == current.headers["ETag"]
        assert failed.headers["Last-Modified"] == current.headers["Last-Modified"]
        # No representation, so nothing describing one; and nothing that lets a cache keep the 412.
        for name in ("Content-Encoding", "Content-Type", "Cache-Control"):
            assert name not in failed.headers, name
    etag = current.headers["ETag"]
    weak = client.get(route, headers={"If-Match": "W/" + etag, "Accept-Encoding": encoding})
    assert weak.status_code == 412 and weak.data == b""  # If-Match compares strongly (RFC 9110, 13.1.1)
    for match in (etag, "*", f'"nope", {etag}'):
        passed = client.get(route, headers={"If-Match": match, "Accept-Encoding": encoding})
        assert passed.status_code == 200 and passed.data == current.data
        # Passed, it hands over to If-None-Match (RFC 9110, 13.2.2), which may still answer 304.
        both = client.get(route, headers={"If-Match": match, "If-None-Match": etag, "Accept-Encoding": encoding})
        assert both.status_code == 304 and both.data == b""


def test_if_unmodified_since_is_evaluated(client: FlaskClient) -> None:
    current = client.get("/feeds/ai.xml")
    last_modified = current.headers["Last-Modified"]
    earlier = http_date(parsedate_to_datetime(last_modified) - timedelta(seconds=1))
    failed = client.get("/feeds/ai.xml", headers={"If-Unmodified-Since": earlier})
    assert failed.status_code == 412 and failed.data == b""
    assert failed.headers["ETag"] == current.headers["ETag"] and failed.headers["Last-Modified"] == last_modified
    # RFC 9110, 13.2.2: it fails before If-None-Match is looked at; If-Match, when present, decides instead.
    both = {"If-Unmodified-Since": earlier, "If-None-Match": current.headers["ETag"]}
    assert client.get("/feeds/ai.xml", headers=both).status_code == 412
    with_match = {"If-Unmodified-Since": earlier, "If-Match": current.headers["ETag"]}
    assert client.get("/feeds/ai.xml", headers=with_match).data == current.data
    for since in (last_modified, http_date(parsedate_to_datetime(last_modified) + timedelta(days=1)),
                  "garbage"):  # an invalid date is ignored (13.1.4)
        passed = client.get("/feeds/ai.xml", headers={"If-Unmodified-Since": since})
        assert passed.status_code == 200 and passed.data == current.data


# --- real servers --------------------------------------------------------------------------

@contextmanager
def _serve(seeds: Path, tmp_path: Path, server: str) -> Iterator[int]:
    """``feedpub serve`` (werkzeug's server, through for_development_server) or gunicorn; yields its port."""
    import subprocess
    import sys

    if server == "gunicorn":
        with run_gunicorn(seeds, tmp_path / "gunicorn.log") as (base, _):
            yield int(base.rsplit(":", 1)[1])
        return
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "feedpub", "serve", "--seeds", str(seeds), "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _up(f"http://127.0.0.1:{port}"), 30, "feedpub serve to listen")
        yield port
    finally:
        process.terminate()
        process.wait(10)


def _raw_get(port: int, target: bytes, header: bytes = b"") -> tuple[int, bytes, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" + header + b"\r\n")
        data = b"".join(iter(lambda: sock.recv(65536), b""))
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), head, body


@pytest.mark.parametrize("server", ["serve", "gunicorn"])
def test_real_servers_answer_the_same(seeds: Path, tmp_path: Path, server: str) -> None:
    with _serve(seeds, tmp_path, server) as port:
        for target in (b"/feeds?%0d", b"/feeds/?%0d%0a", b"/feeds/ai.xml?limit=%00", b"/topics/ai?%1b"):
            status, _, body = _raw_get(port, target)
            assert status == 400 and body.startswith(b"Bad request: ") and body.count(b"\n") == 1, (target, body)
        status, _, body = _raw_get(port, b"/feeds/%0d%0a")
        assert status == 404 and NOT_FOUND.encode() in body
        # Raw bytes that gunicorn refuses itself (with its own 400) and werkzeug's server passes on.
        for target, header in ((b"/topics/ai?\x00", b""), (b"/feeds?\x01", b""),
                               (b"/feeds/ai.xml", b"If-Modified-Since: \x01x\r\n")):
            status, _, body = _raw_get(port, target, header)
            assert status == 400, (target, header, body)
            if server == "serve":
                assert body.startswith(b"Bad request: "), body
        status, head, body = _raw_get(port, b"/feeds/ai.xml", b"If-Match: garbage\r\n")
        assert status == 412 and body == b"" and b"\r\nETag: " in head

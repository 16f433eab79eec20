"""The pages in a real browser: headless Chromium (Debian's ``chromium``) driven by Playwright.

A real HTTP server (werkzeug, threaded, on 127.0.0.1) serves a copy of the bundled seeds.
The browser loads the front page, reads the autodiscovery links from the DOM, renders the
light and the dark colour scheme, checks that a phone-sized viewport never scrolls sideways,
and clicks through to a topic page and then to a feed. Screenshots go to
``test-output/screenshots/`` (light, dark, mobile).

Playwright's PyPI wheel carries its own driver; the browser is the system's
``/usr/bin/chromium`` (never ``playwright install``). Locally a missing chromium or playwright
skips these tests with a message; with ``FEEDPUB_REQUIRE_READERS=1`` (CI) they fail instead.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from werkzeug.serving import make_server

from feedpub.web import create_app

from .readers_support import ROOT, SEEDS, fetch, free_port, need, need_module

SCREENSHOTS = ROOT / "test-output" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
    "--no-proxy-server",  # talk to 127.0.0.1 directly even where a proxy is configured
]
DESKTOP = {"width": 1200, "height": 800}
PHONE = {"width": 360, "height": 740}
FEED_TYPES = {".xml": "application/rss+xml", ".atom": "application/atom+xml", ".json": "application/feed+json"}


class Server:
    """``create_app`` behind werkzeug's threaded server on a free 127.0.0.1 port; records every path asked for."""

    def __init__(self, seeds_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        app = create_app({"TESTING": True, "seeds_dir": str(seeds_dir), "site_url": self.url})
        self.paths: list[str] = []
        self._lock = threading.Lock()

        def recording(environ: dict[str, Any], start_response: Any) -> Any:
            with self._lock:
                self.paths.append(environ.get("PATH_INFO", ""))
            return app(environ, start_response)

        self._server = make_server("127.0.0.1", self.port, recording, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, name="browser-test-server", daemon=True)

    def __enter__(self) -> Server:
        self._thread.start()
        status, _, _ = fetch(self.url + "/healthz")
        assert status == 200
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def asked(self) -> list[str]:
        with self._lock:
            taken, self.paths = self.paths, []
        return taken


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    seeds = tmp_path_factory.mktemp("browser") / "seeds"
    shutil.copytree(SEEDS, seeds)
    with Server(seeds) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = need("chromium")
    sync_api = need_module("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def context_factory(browser: Any, server: Server) -> Iterator[Any]:
    """New browser contexts that may reach the test server only: any other request is blocked and reported."""
    contexts: list[Any] = []
    blocked: list[str] = []

    def make(**options: Any) -> Any:
        context = browser.new_context(**options)

        def guard(route: Any) -> None:
            if route.request.url.startswith(server.url + "/"):
                route.continue_()
            else:
                blocked.append(route.request.url)
                route.abort()

        context.route("**/*", guard)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()
    assert blocked == [], f"the pages asked for something outside the site: {blocked}"


def screenshot(page: Any, name: str, **options: Any) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=str(path), **options)
    assert path.stat().st_size > 1000
    return path


def index_feeds(server: Server) -> list[dict[str, Any]]:
    status, _, body = fetch(server.url + "/feeds/index.json")
    assert status == 200
    feeds: list[dict[str, Any]] = json.loads(body)["feeds"]
    return feeds


# -- tests ----------------------------------------------------------------------------------------------


def test_front_page_autodiscovery_in_the_dom(context_factory: Any, server: Server) -> None:
    page = context_factory(viewport=DESKTOP).new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    server.asked()
    response = page.goto(server.url + "/")
    assert response.status == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    page.wait_for_load_state("load")
    # Standards mode (the doctype took), UTF-8, the declared language and title.
    assert page.evaluate("document.compatMode") == "CSS1Compat"
    assert page.evaluate("document.characterSet") == "UTF-8"
    assert page.evaluate("document.documentElement.lang") == "en"
    assert page.title() == "feedpub"
    # The page loaded nothing but itself: no stylesheet, script, image or font.
    assert [p for p in server.asked() if p != "/favicon.ico"] == ["/"]
    assert page.evaluate("document.scripts.length + document.images.length + document.styleSheets.length") == 1
    assert errors == []

    links = page.evaluate("""[...document.querySelectorAll('link[rel~="alternate"]')].map(l => ({
        type: l.type, title: l.title, href: l.href, inHead: l.parentElement === document.head}))""")
    main_feeds = [feed for feed in index_feeds(server) if feed["kind"] in ("all", "topic")]
    labels = {"application/rss+xml": ("rss", "RSS"), "application/atom+xml": ("atom", "Atom"),
              "application/feed+json": ("json", "JSON Feed")}
    expected = [{"type": mimetype, "title": f"{feed['title']} ({label})", "href": feed["urls"][key], "inHead": True}
                for feed in main_feeds for mimetype, (key, label) in labels.items()]
    assert links == expected
    for link in links:
        assert urlsplit(link["href"]).netloc == f"127.0.0.1:{server.port}"
        answer = page.request.get(link["href"])
        assert answer.status == 200, link["href"]
        assert answer.headers["content-type"] == f"{link['type']}; charset=utf-8", link["href"]


def _colors(page: Any) -> dict[str, str]:
    return page.evaluate("""(() => { const body = getComputedStyle(document.body);
        const link = getComputedStyle(document.querySelector('main a'));
        return {background: body.backgroundColor, text: body.color, link: link.color,
                scheme: getComputedStyle(document.documentElement).colorScheme}; })()""")


def _luminance(css_color: str) -> float:
    """Relative luminance (WCAG 2) of an ``rgb(r, g, b)`` computed colour."""
    channels = [int(part) / 255 for part in css_color.removeprefix("rgb(").removesuffix(")").split(",")[:3]]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(one: str, two: str) -> float:
    high, low = sorted((_luminance(one), _luminance(two)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_light_and_dark_color_schemes_render(context_factory: Any, server: Server) -> None:
    shots = {}
    colors = {}
    for scheme in ("light", "dark"):
        page = context_factory(viewport=DESKTOP, color_scheme=scheme).new_page()
        assert page.goto(server.url + "/").status == 200
        assert page.evaluate(f"matchMedia('(prefers-color-scheme: {scheme})').matches") is True
        colors[scheme] = _colors(page)
        shots[scheme] = screenshot(page, f"front-{scheme}.png")
        # The same page, switched by media emulation alone, renders the other scheme's colours.
        other = "dark" if scheme == "light" else "light"
        page.emulate_media(color_scheme=other)
        assert _colors(page)["background"] != colors[scheme]["background"]
    light, dark = colors["light"], colors["dark"]
    assert light["background"] != dark["background"] and light["text"] != dark["text"]
    assert _luminance(light["background"]) > 0.8 > 0.05 > _luminance(dark["background"])
    for scheme, found in colors.items():
        assert _contrast(found["background"], found["text"]) >= 7, (scheme, found)  # WCAG AAA body text
        assert _contrast(found["background"], found["link"]) >= 4.5, (scheme, found)  # WCAG AA links
    assert shots["light"].read_bytes() != shots["dark"].read_bytes()


@pytest.mark.parametrize("path", ["/", "/topics/ai", "/feeds/all.html", "/providers/thenextweb.com"])
def test_a_phone_never_scrolls_sideways(context_factory: Any, server: Server, path: str) -> None:
    context = context_factory(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    assert page.goto(server.url + path).status == 200
    widths = page.evaluate("""({scroll: document.documentElement.scrollWidth,
        client: document.documentElement.clientWidth, inner: window.innerWidth, body: document.body.scrollWidth})""")
    assert widths["inner"] == PHONE["width"], widths  # the viewport meta tag took effect
    assert widths["scroll"] <= widths["client"] and widths["body"] <= widths["client"], widths
    # Nothing sticks out to the right either (a wide table or an unbroken title).
    wide = page.evaluate("""[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right
        > document.documentElement.clientWidth + 0.5).map(e => e.tagName + '.' + e.className).slice(0, 10)""")
    assert wide == []
    if path == "/":
        screenshot(page, "front-mobile.png", full_page=True)


def test_click_through_to_a_topic_and_a_feed(context_factory: Any, server: Server) -> None:
    page = context_factory(viewport=DESKTOP).new_page()
    assert page.goto(server.url + "/").status == 200
    topic_page = f"{server.url}/feeds/topics/ai.html"
    page.locator("section#topics").get_by_role("link", name="AI", exact=True).click()
    page.wait_for_url(topic_page)
    assert page.locator("h1").inner_text() == "AI"
    assert page.title() == "feedpub – AI"
    discovered = page.evaluate("[...document.querySelectorAll('head link[rel=alternate]')].map(l => l.href)")
    assert discovered == [f"{server.url}/feeds/ai{suffix}" for suffix in FEED_TYPES]
    headlines = page.locator("ol.entries > li > h2 > a").all_inner_texts()
    items = json.loads(fetch(f"{server.url}/feeds/ai.json")[2])["items"]
    assert headlines == [item["title"] for item in items]
    screenshot(page, "topic-ai-light.png", full_page=True)

    for label, suffix in (("RSS", ".xml"), ("Atom", ".atom"), ("JSON Feed", ".json")):
        feed_url = f"{server.url}/feeds/ai{suffix}"
        with page.expect_response(feed_url) as answer:
            page.locator("header .subscribe").get_by_role("link", name=label, exact=True).click()
        page.wait_for_url(feed_url)
        response = answer.value
        assert response.status == 200, feed_url
        assert response.headers["content-type"] == f"{FEED_TYPES[suffix]}; charset=utf-8", feed_url
        assert response.request.is_navigation_request()
        if suffix == ".json":
            assert json.loads(response.body())["feed_url"] == feed_url
        else:
            assert f'href="{feed_url}"'.encode() in response.body()
        page.go_back()
        page.wait_for_url(topic_page)


def test_a_script_on_another_origin_revalidates_a_feed(browser: Any, server: Server) -> None:
    # If-None-Match is not a CORS-safelisted header: the browser asks the feed's server with OPTIONS
    # first, and sends the request only if that answer allows it. Another port is another origin.
    page_port = free_port()

    def blank(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [b"<!doctype html><title>a reader</title>"]

    other = make_server("127.0.0.1", page_port, blank)
    thread = threading.Thread(target=other.serve_forever, daemon=True)
    thread.start()
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{page_port}/")
        server.asked()
        first, etag, again = page.evaluate("""async (url) => {
            const first = await fetch(url);
            const etag = first.headers.get('ETag');
            const again = await fetch(url, {headers: {'If-None-Match': etag}, cache: 'no-store'});
            return [first.status, etag, again.status];
        }""", f"{server.url}/feeds/ai.json")
    finally:
        context.close()
        other.shutdown()
        other.server_close()
    assert first == 200 and etag  # the ETag is exposed to the script
    assert again == 304
    assert server.asked().count("/feeds/ai.json") == 3  # the feed, the preflight and the revalidation

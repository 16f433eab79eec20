"""Cleaning text, HTML and URLs from article data.

Sanitising is nh3's job (a maintained, allow-list sanitiser); this module only
chooses the policy and says, in words an editor understands, what was removed.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import nh3

# What lxml refuses (everything outside XML 1.0's Char production), DEL, and Unicode's noncharacters
# (reserved for a program's own use: U+FDD0-FDEF and the last two of each plane). One range stands
# for the noncharacters above the BMP, so the pattern stays a fast one; _unfit tells them apart.
_ILLEGAL = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff\U0001fffe-\U0010ffff"
_ILLEGAL_XML = re.compile(f"[{_ILLEGAL}]")
_WHITESPACE = re.compile(r"\s+")
_NEEDS_WORK = re.compile(f"[<&{_ILLEGAL}]")
# Never in a URL: white space and controls, and what RFC 3987 keeps out of IRIs (C1 controls,
# surrogates, noncharacters, U+FFF0-FFFF and bidirectional formatting characters).
_NOT_IN_URL = re.compile("[\x00-\x20\x7f-\x9f\u200e\u200f\u202a-\u202e\ud800-\udfff"
                         "\ufdd0-\ufdef\ufff0-\uffff\U0001fffe-\U0010ffff]")


def _unfit(char: str) -> bool:
    """Whether a character the patterns above found is one they mean (above the BMP: a noncharacter)."""
    return char < "\U0001fffe" or ord(char) & 0xFFFE == 0xFFFE


def _first_unfit(text: str, pattern: re.Pattern[str]) -> str | None:
    return next((m.group() for m in pattern.finditer(text) if _unfit(m.group())), None)


def _drop_unfit(match: re.Match[str]) -> str:
    return "" if _unfit(match.group()) else match.group()


# scheme://host[:port][/path...] with a plain host name and nothing a browser would read otherwise.
_SIMPLE_URL = re.compile(r"https?://[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,4})?(?:[/?#][!-~]*)?\Z")

URL_SCHEMES = frozenset({"http", "https"})

# Tags and attributes kept in featuredContent: nh3's safe defaults plus video embeds.
_TAGS = set(nh3.ALLOWED_TAGS) | {"iframe"}
_ATTRIBUTES: dict[str, set[str]] = {tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()}
_ATTRIBUTES.setdefault("iframe", set()).update(
    {"src", "width", "height", "title", "allow", "allowfullscreen", "frameborder", "loading"}
)
_ATTRIBUTES.setdefault("img", set()).update({"src", "alt", "width", "height", "title"})
_ATTRIBUTES.setdefault("a", set()).update({"href", "title"})


def strip_illegal_xml(text: str) -> tuple[str, bool]:
    """Remove characters that are illegal in XML 1.0; say whether any were."""
    cleaned = _ILLEGAL_XML.sub(_drop_unfit, text)
    return cleaned, cleaned != text


def squash(text: str) -> str:
    """Collapse runs of white space (titles and names are single-line)."""
    return _WHITESPACE.sub(" ", text).strip()


def plain_text(text: str) -> tuple[str, list[str]]:
    """Turn a title or excerpt into plain text; return it with notes on what changed.

    Markup is removed (script and style bodies included) and entities decoded,
    so the value can be escaped exactly once by the feed writers.
    """
    if not _NEEDS_WORK.search(text):
        return squash(text), []  # the common case: nothing to strip, decode or remove
    notes: list[str] = []
    text, illegal = strip_illegal_xml(text)
    if illegal:
        notes.append("removed characters that are not allowed in XML")
    found = _scan(text)
    if found.tags:
        text = nh3.clean(text, tags=set(), attributes={}, strip_comments=True)
        notes.append("removed HTML markup " + ", ".join(f"<{t}>" for t in sorted(found.tags)))
    if "&" in text:
        text = html.unescape(text)  # silently: entity-encoded text is normal, the reader sees what was meant
    text, _ = strip_illegal_xml(text)  # entities such as &#1; decode to illegal characters
    return squash(text), notes


def clean_html(fragment: str) -> tuple[str, list[str]]:
    """Sanitise an HTML fragment; return it with notes on anything dangerous removed."""
    fragment, illegal = strip_illegal_xml(fragment)
    cleaned = nh3.clean(
        fragment,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes=set(URL_SCHEMES),
        link_rel="noopener noreferrer",
        strip_comments=True,
    )
    before, after = _scan(fragment), _scan(cleaned)
    notes = []
    if illegal:
        notes.append("removed characters that are not allowed in XML")
    removed_tags = sorted(before.tags - after.tags)
    if removed_tags:
        notes.append("removed " + ", ".join(f"<{t}>" for t in removed_tags))
    removed_attrs = sorted(before.attributes - after.attributes - {"rel"})
    if removed_attrs:
        notes.append("removed attributes " + ", ".join(removed_attrs))
    if before.bad_urls:
        notes.append("removed URLs with schemes " + ", ".join(sorted(before.bad_urls)))
    return cleaned.strip(), notes


_URL_ATTRIBUTES = frozenset({"href", "src", "cite"})


def absolute_html(fragment: str, site_url: str) -> str:
    """Sanitised HTML with site-relative URLs resolved against the site and other relative URLs dropped."""

    def resolve(tag: str, attribute: str, value: str) -> str | None:
        return absolute(value.strip(), site_url) if attribute in _URL_ATTRIBUTES else value

    return nh3.clean(
        fragment,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        attribute_filter=resolve,
        url_schemes=set(URL_SCHEMES),
        link_rel="noopener noreferrer",
        strip_comments=True,
    )


class _Scan(HTMLParser):
    """Inventory of a fragment's tags, attributes and URL schemes (reporting only)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self.bad_urls: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        for name, value in attrs:
            self.attributes.add(name)
            if name in ("href", "src") and value and ":" in value:
                scheme = url_scheme(value)
                if scheme and scheme not in URL_SCHEMES:
                    self.bad_urls.add(scheme + ":")

    handle_startendtag = handle_starttag


def _scan(fragment: str) -> _Scan:
    scan = _Scan()
    if "<" in fragment:
        scan.feed(fragment)
        scan.close()
    return scan


def unfit_url_character(url: str) -> str | None:
    """The first character no URL may carry (as ``U+XXXX``), if any."""
    found = _first_unfit(url, _NOT_IN_URL)
    return f"U+{ord(found):04X}" if found else None


def quote(value: str, limit: int = 40) -> str:
    """A short, escaped prefix of ``value`` for a message: never the whole of a long text."""
    return repr(value[:limit]) + ("..." if len(value) > limit else "")


def clip(message: str, limit: int = 200) -> str:
    """A third party's message (PyYAML's) on one line and short, whatever it quotes."""
    return quote(message, limit)[1:-1] if len(message) <= limit else quote(message, limit)


def url_scheme(url: str) -> str:
    """The scheme as a browser would read it (control characters and spaces ignored)."""
    squeezed = re.sub(r"[\x00-\x20]", "", url)
    match = re.match(r"([a-zA-Z][a-zA-Z0-9+.\-]*):", squeezed)
    return match.group(1).lower() if match else ""


def is_absolute_url(url: str) -> bool:
    """An absolute http(s) URL with a host and no white space or control characters."""
    if _SIMPLE_URL.match(url):
        return True  # the common shape, settled without urlsplit
    if not url or _first_unfit(url, _NOT_IN_URL):
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return False
    return parts.scheme.lower() in URL_SCHEMES and bool(parts.hostname)


def is_site_relative(url: str) -> bool:
    """A path on this site such as ``/assets/logo.jpg`` (but not ``//host/...``)."""
    return url.startswith("/") and not url.startswith("//") and "\\" not in url and not _first_unfit(url, _NOT_IN_URL)


def absolute(url: str | None, site_url: str) -> str | None:
    """Resolve a site-relative URL against the site; ``None`` for anything not publishable."""
    if not url:
        return None
    if is_absolute_url(url):
        return url
    if is_site_relative(url):
        return urljoin(site_url + "/", url)
    return None

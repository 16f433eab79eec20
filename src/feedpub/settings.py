"""Site settings, declared once as data.

Every setting is a field of :class:`Settings` whose metadata carries its help
text, its parser and whether it changes the output. The environment variable (``FEEDPUB_<NAME>``), the CLI
option and the README table are all derived from that one declaration, and the
layering is always defaults -> environment -> explicit overrides.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ENV_PREFIX = "FEEDPUB_"


class SettingsError(ValueError):
    """A setting has a value that cannot be used."""


def _site_url(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError(f"site URL must be an absolute http(s) URL, got {value!r}")
    return value.strip().rstrip("/")


def _hub_url(value: str) -> str:
    """An absolute http(s) URL, or empty for no hub."""
    text = str(value).strip()
    if text:
        _site_url(text)  # the same check: absolute http(s)
    return text


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise SettingsError(f"expected a whole number, got {value!r}") from None
    if number < 1:
        raise SettingsError(f"expected a number of at least 1, got {number}")
    return number


def _non_negative_int(value: str) -> int:
    if str(value).strip() == "0":
        return 0
    return _positive_int(value)


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise SettingsError(f"expected a number, got {value!r}") from None
    if not number > 0:
        raise SettingsError(f"expected a positive number, got {value!r}")
    return number


def _text(value: str) -> str:
    text = str(value).strip()
    if not text:
        raise SettingsError("must not be empty")
    return text


def _path(value: str) -> Path:
    return Path(_text(value))


def _flag(value: str) -> bool:
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"expected true or false, got {value!r}")


def _default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/feedpub, else ~/.cache/feedpub"""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "feedpub"


def _setting(default: Any, help: str, parse: Callable[[str], Any], cli: str | None = None, *, output: bool) -> Any:
    """One setting. ``output`` says whether it changes the bytes rendered from a corpus: the rendering key
    is made of those settings (a build re-renders every feed when one changes), hence no default."""
    metadata = {"help": help, "parse": parse, "cli": cli, "output": output}
    if callable(default):  # worked out when settings are loaded, not at import
        return field(default_factory=default, metadata={**metadata, "shown": default.__doc__})
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Settings:
    """The resolved settings of one site; frozen so a build cannot drift mid-way."""

    seeds_dir: Path = _setting(Path("seeds"), "Directory of article files (searched recursively).", _path, "--seeds",
                               output=False)
    out_dir: Path = _setting(Path("feeds"), "Output directory of the static build.", _path, "--out", output=False)
    site_url: str = _setting(
        "http://127.0.0.1:8000",
        "Absolute base URL of the site; feeds live under <site URL>/feeds/.",
        _site_url,
        "--site-url",
        output=True,
    )
    site_title: str = _setting("feedpub", "Site title, the first part of every feed title.", _text, "--site-title",
                               output=True)
    max_items: int = _setting(50, "Most entries in one feed (newest first).", _positive_int, "--max-items",
                              output=True)
    language: str = _setting("en", "Language of the feeds (RSS <language>, Atom xml:lang).", _text, "--language",
                             output=True)
    max_age: int = _setting(
        300,
        "Seconds a reader or cache may keep a feed: HTTP Cache-Control max-age and RSS <ttl> (in minutes).",
        _non_negative_int,
        "--max-age",
        output=True,  # RSS <ttl>
    )
    reload_interval: float = _setting(
        2.0,
        "Longest delay before the server sees a change to the seeds directory: with file-system events it"
        " reloads at once, without them it scans this often.",
        _positive_float,
        "--reload-interval",
        output=False,
    )
    identity_cache_mb: int = _setting(
        64,
        "MiB a server worker keeps of the outputs it served lately: gzip bodies read from the shared store,"
        " and as much again of uncompressed bodies for clients without gzip (decompressed on demand).",
        _non_negative_int,
        output=False,
    )
    max_file_bytes: int = _setting(
        8 * 1024 * 1024, "Largest article file accepted, in bytes; larger files are refused.", _positive_int,
        output=False,  # it decides which articles there are, and each feed's fingerprint has its articles
    )
    cache_dir: Path = _setting(
        _default_cache_dir,
        "Directory of the parse cache (safe to delete; shared by every process).",
        _path,
        "--cache-dir",
        output=False,
    )
    cache: bool = _setting(True, "Use the parse cache, the entries kept in it and the last build's record"
                                 " (--no-cache parses every file, renders every entry and always builds).", _flag,
                           "--cache/--no-cache", output=False)
    one_builder: bool = _setting(
        True,
        "Serving processes share one builder: one loads and renders each change and publishes it to a store in"
        " cache_dir that every process serves from (off: each process loads and renders for itself).",
        _flag,
        output=False,
    )
    archives: bool = _setting(
        True, "Write RFC 5005 monthly archives of topic and provider feeds beyond max_items (RSS and Atom).", _flag,
        "--archives/--no-archives", output=True,
    )
    websub_hub: str = _setting(
        "", "WebSub hub URL: advertised in every feed and pinged when a feed changes (empty: none).", _hub_url,
        "--websub-hub", output=True,
    )
    delta_feeds: bool = _setting(
        False,
        "Answer RFC 3229 'A-IM: feed' with only the new or changed entries (226 IM Used). Off by default:"
        " feedparser 6 asks for it on behalf of applications that may show a 226 as the whole feed.",
        _flag, "--delta-feeds/--no-delta-feeds", output=False,
    )
    stale_while_revalidate: int = _setting(
        60, "Seconds a cache may serve a feed past max-age while it fetches a fresh one (0: not sent).",
        _non_negative_int, "--stale-while-revalidate", output=False,
    )
    stale_if_error: int = _setting(
        86400, "Seconds a cache may serve a feed past max-age while the server fails or is unreachable (0: not sent).",
        _non_negative_int, "--stale-if-error", output=False,
    )
    purge_url: str = _setting(
        "", "URL that receives a JSON POST of the surrogate keys and URLs a reload or build changed, for a CDN"
        " purge (empty: none).", _hub_url, "--purge-url", output=False,
    )

    @property
    def feeds_url(self) -> str:
        """Absolute URL of the directory holding every feed."""
        return f"{self.site_url}/feeds/"

    @property
    def ttl_minutes(self) -> int:
        """RSS <ttl> matching max-age, rounded up to whole minutes."""
        return -(-self.max_age // 60)

    @classmethod
    def load(
        cls,
        overrides: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Settings:
        """Defaults, then ``FEEDPUB_*`` variables, then explicit overrides (``None`` values skipped)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for spec in setting_fields():
            parse = spec.metadata["parse"]
            raw = environ.get(env_name(spec.name))
            if raw is not None and raw != "":
                values[spec.name] = _parse(spec.name, parse, raw, source=env_name(spec.name))
        for name, raw in (overrides or {}).items():
            if raw is None:
                continue
            spec = _field(name)
            if isinstance(raw, str):
                raw = _parse(name, spec.metadata["parse"], raw, source=name)
            elif isinstance(raw, (int, float)) and not isinstance(raw, bool) and spec.type not in ("bool", bool):
                # Typed values (click options, app config) get the same checks as text.
                raw = _parse(name, spec.metadata["parse"], str(raw), source=name)
            values[name] = raw
        return cls(**values)


def _parse(name: str, parse: Callable[[str], Any], raw: str, source: str) -> Any:
    try:
        return parse(raw)
    except SettingsError as exc:
        raise SettingsError(f"{source}: {exc}") from None


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


def setting_fields() -> Iterator[dataclasses.Field[Any]]:
    yield from dataclasses.fields(Settings)


def output_fields() -> Iterator[dataclasses.Field[Any]]:
    """The settings that change the bytes rendered from a corpus (declared ``output=True``)."""
    return (spec for spec in setting_fields() if spec.metadata["output"])


def _field(name: str) -> dataclasses.Field[Any]:
    for spec in setting_fields():
        if spec.name == name:
            return spec
    raise SettingsError(f"unknown setting {name!r}")


def describe() -> list[tuple[str, str, str, str]]:
    """(environment variable, CLI option, default, help) for docs and ``feedpub settings``."""
    rows = []
    for spec in setting_fields():
        default = spec.metadata.get("shown") or str(spec.default)
        rows.append((env_name(spec.name), spec.metadata["cli"] or "", default, spec.metadata["help"]))
    return rows

"""What the last build of an output directory saw and said, so a build with nothing to do ends after a look.

A build whose inputs are what the last build saw (every article file's size and
mtime, the same settings and feedpub version) and whose output directory is as
that build left it (every listed file with the size and mtime it was given, the
manifest untouched) would load, render and write nothing new. It is answered
from this record instead: the same summary, the same problems, in the time it
takes to stat the files. The parse cache trusts the same stamps (see
:mod:`feedpub.ingest.loader`), so this skips nothing a build would have seen.

The record lives in the cache directory, not in the output directory: an
output directory is often published as it is, and its problems are for the
operator. It is only kept while the parse cache is on.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import __version__
from .settings import Settings, setting_fields
from .static_tree import MANIFEST, listed_files, read_manifest

log = logging.getLogger(__name__)
RECORDS = "last-build"  # under the cache directory: one record per output directory


@dataclass(frozen=True)
class Summary:
    """What a build reports at its end, to be said again by a build with nothing to do."""

    files: int
    articles: int
    rejected: int
    warnings: int
    feeds: int
    outputs: int
    problems: tuple[str, ...] = ()  # one line each, as a build prints them
    notes: tuple[str, ...] = ()  # the render's warnings (e.g. topic slugs that collide)


def inputs_key(settings: Settings, stamps: Mapping[str, tuple[int, int]]) -> str:
    """Everything a build's outputs come from: feedpub's version, every setting, each article file's stamp."""
    digest = hashlib.blake2b(digest_size=20)
    digest.update(repr((__version__, *((spec.name, getattr(settings, spec.name)) for spec in setting_fields())))
                  .encode())
    digest.update("\0".join(f"{rel}\1{size}\1{mtime}" for rel, (size, mtime) in stamps.items()).encode("utf-8",
                                                                                                       "surrogateescape"))
    return digest.hexdigest()


def outputs_key(out_dir: Path, names: list[str] | None = None) -> str | None:
    """The state of an output directory as a build left it: its manifest's and every listed file's stat.

    ``names`` are the files the manifest lists (read from it when not given); None when any is missing.
    """
    root = os.fspath(out_dir)
    if names is None:
        names = sorted(listed_files(read_manifest(out_dir)))
    try:
        parts = [_stat_of(os.path.join(root, MANIFEST)), *(_stat_of(f"{root}/{name}") for name in names)]
    except OSError:
        return None
    return hashlib.blake2b("\0".join(parts).encode(), digest_size=20).hexdigest()


def _stat_of(path: str) -> str:
    info = os.lstat(path)
    return f"{info.st_mode}\1{info.st_size}\1{info.st_mtime_ns}\1{info.st_ino}"


class LastBuild:
    """The record of one output directory's last build, in the cache directory."""

    def __init__(self, settings: Settings) -> None:
        self.out_dir = settings.out_dir
        where = hashlib.blake2b(os.fsencode(os.path.realpath(settings.out_dir)), digest_size=12).hexdigest()
        self.path = settings.cache_dir / RECORDS / f"{where}.json"

    @classmethod
    def of(cls, settings: Settings) -> LastBuild | None:
        """The record for ``settings``' output directory, or None when the parse cache is off."""
        return cls(settings) if settings.cache else None

    def unchanged(self, inputs: str) -> Summary | None:
        """The last build's summary if ``inputs`` are what it saw and its outputs are as it left them."""
        try:
            record = json.loads(self.path.read_bytes())
            if record.get("inputs") != inputs:
                return None
            summary = record["summary"]
            found = Summary(**{**summary, "problems": tuple(summary["problems"]), "notes": tuple(summary["notes"])})
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            log.warning("last build record %s unreadable (%s); building", self.path, type(exc).__name__)
            return None
        if record.get("outputs") != outputs_key(self.out_dir):
            return None  # touched, replaced or removed since: a build puts it right
        return found

    def save(self, inputs: str, summary: Summary, names: list[str]) -> None:
        """Note a finished build (call it with the output directory still locked, after the manifest is written)."""
        outputs = outputs_key(self.out_dir, names)
        if outputs is None:
            self.forget()
            return
        document: dict[str, Any] = {"inputs": inputs, "outputs": outputs, "summary": dataclasses.asdict(summary)}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_text(json.dumps(document), "utf-8")
            os.replace(temporary, self.path)
        except OSError as exc:  # the build itself is done: the next one just does its whole work
            log.warning("cannot keep the last build record %s (%s)", self.path, exc)

    def forget(self) -> None:
        with suppress(OSError):
            self.path.unlink()

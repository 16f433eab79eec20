"""Finding article files and assembling them into a corpus.

Parsing is per file (:mod:`feedpub.ingest.validate`), loading fast is
:mod:`feedpub.ingest.loader`'s job; this module decides which files count, removes duplicate URLs among published articles and collects every
topic and provider so each gets a feed even when it has no published article.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from ..model import EPOCH, Article, Problem, Provider
from ..walk import walk
from .validate import ParseResult, parse_bytes

SUFFIXES = frozenset({".md", ".markdown", ".txt"})


@dataclass(frozen=True)
class Corpus:
    """The published articles of a seeds directory, and what was wrong with the rest."""

    articles: tuple[Article, ...]
    topics: tuple[str, ...]
    providers: Mapping[str, Provider]
    problems: tuple[Problem, ...] = ()
    files: int = 0
    _rejected: frozenset[str] = field(default=frozenset(), repr=False)

    @property
    def rejected(self) -> int:
        """How many files could not be published at all."""
        return len(self._rejected)

    @property
    def newest(self) -> datetime:
        """Date of the newest published article: the stand-in for "now" in empty feeds."""
        return self.articles[0].published_at if self.articles else EPOCH


def discover(root: Path) -> list[str]:
    """Article files under ``root`` as sorted relative POSIX paths; hidden names and links out are skipped."""
    return sorted(scan(root))


def scan(root: Path) -> dict[str, tuple[int, int]]:
    """Each article file under ``root`` with its (size, mtime_ns), from one pass of ``os.scandir``.

    Directories that are links are not entered; a file that is a link is
    read only when it points inside the seeds directory.
    """
    found: dict[str, tuple[int, int]] = {}
    real_root = os.path.realpath(root)
    for rel, entry in walk(root, skip=_hidden):
        if not _article_name(entry.name):
            continue
        try:
            if entry.is_symlink() and _leaves(real_root, entry.path):
                continue
            info = entry.stat()
            if entry.is_file():
                found[rel] = (info.st_size, info.st_mtime_ns)
        except OSError:
            continue  # gone while we looked, or unreadable: not there
    return found


def rescan(root: Path, known: Mapping[str, tuple[int, int]], paths: Iterable[str]) -> dict[str, tuple[int, int]]:
    """``known`` (a previous :func:`scan`) brought up to date for the files at ``paths`` only.

    For a reload after a file-system event: stating a handful of files instead
    of every file, by :func:`scan`'s rules. Returned in path order, as
    :func:`scan`'s result is used.
    """
    stamps = dict(known)
    real_root = os.path.realpath(root)
    added = False
    for path in paths:
        rel = os.path.relpath(path, root)
        if rel.startswith("..") or os.path.isabs(rel):
            continue
        rel = rel.replace(os.sep, "/")
        stamp = _stamp_one(root, rel, real_root)
        if stamp is None:
            stamps.pop(rel, None)
        else:
            added = added or rel not in stamps
            stamps[rel] = stamp
    return dict(sorted(stamps.items())) if added else stamps


def _hidden(name: str) -> bool:
    return name.startswith(".")


_ENDINGS = tuple(SUFFIXES)


def _article_name(name: str) -> bool:
    # Called for every file of every scan: str.endswith rather than splitext, with splitext's answer
    # for a name that is only a suffix (".md" has no extension).
    return name.lower().endswith(_ENDINGS) and not name.startswith(".")


def _leaves(real_root: str, path: str) -> bool:
    """A link that leads out of the seeds directory is never read."""
    return os.path.commonpath([real_root, os.path.realpath(path)]) != real_root


def _stamp_one(root: Path, rel: str, real_root: str) -> tuple[int, int] | None:
    parts = rel.split("/")
    if any(_hidden(part) or not part for part in parts) or not _article_name(parts[-1]):
        return None
    try:
        directory = os.fspath(root)
        for part in parts[:-1]:  # scan does not enter linked directories
            directory = os.path.join(directory, part)
            if os.path.islink(directory) or not os.path.isdir(directory):
                return None
        target = os.path.join(directory, parts[-1])
        if os.path.islink(target) and _leaves(real_root, target):
            return None
        info = os.stat(target)
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return (info.st_size, info.st_mtime_ns)


def display_path(root: Path, relpath: str) -> str:
    """How a file is named in problems and logs: printable, whatever bytes its name holds.

    A name that is not UTF-8 reaches Python with surrogates, which no UTF-8
    output (a terminal, a log, SQLite, JSON) accepts; such bytes are shown as
    ``\\xe9``, control characters (a newline could forge a line of output) likewise.
    """
    return printable((root / relpath).as_posix())


def printable(text: str) -> str:
    """``text`` with undecodable bytes (surrogates) and unprintable characters escaped as Python writes them."""
    if text.isprintable():
        return text
    return "".join(map(_printable_char, text))


def _printable_char(char: str) -> str:
    if char.isprintable():
        return char
    if "\udc80" <= char <= "\udcff":  # a byte os.fsdecode could not decode
        return f"\\x{ord(char) - 0xDC00:02x}"
    return ascii(char)[1:-1]


def read_file(root: Path, relpath: str, max_bytes: int) -> ParseResult:
    """Read and parse one file; I/O errors become problems like any other."""
    display = display_path(root, relpath)
    try:
        with open(root / relpath, "rb") as handle:
            raw = handle.read(max_bytes + 1)
    except OSError as exc:
        return ParseResult(display, None, (Problem(display, None, "error", f"cannot read: {exc.strerror}"),))
    if len(raw) > max_bytes:
        size = os.path.getsize(root / relpath)
        message = f"file is {size:,} bytes, over the limit of {max_bytes:,} (FEEDPUB_MAX_FILE_BYTES)"
        return ParseResult(display, None, (Problem(display, None, "error", message),))
    return parse_bytes(display, raw, max_bytes)


def without(corpus: Corpus, dropped: Mapping[str, str]) -> Corpus:
    """``corpus`` less the articles at the paths in ``dropped``, each with its reason as an error."""
    problems = [Problem(path, None, "error", reason) for path, reason in sorted(dropped.items())]
    return replace(corpus, articles=tuple(a for a in corpus.articles if a.path not in dropped),
                   problems=(*corpus.problems, *problems), _rejected=corpus._rejected | dropped.keys())


def assemble(results: Iterable[ParseResult]) -> Corpus:
    """Combine per-file results (in path order) into a corpus."""
    results = list(results)
    problems = [p for r in results for p in r.problems]
    rejected = {r.path for r in results if r.article is None}
    everything = [r.article for r in results if r.article is not None]

    winners: dict[str, Article] = {}
    for article in everything:
        if not article.published:
            continue
        kept = winners.get(article.url)
        if kept is None:
            winners[article.url] = article
            continue
        newer, older = (article, kept) if article.published_at > kept.published_at else (kept, article)
        winners[article.url] = newer
        problems.append(
            Problem(older.path, None, "warning", f"duplicate of {newer.path} (same URL {older.url}); the newer one is published")
        )

    articles = tuple(sorted(winners.values(), key=lambda a: a.sort_key))
    ranked = list(articles) + sorted((a for a in everything if not a.published), key=lambda a: a.sort_key)
    providers: dict[str, Provider] = {}
    for article in ranked:
        known = providers.get(article.provider.domain)
        if known is None:
            providers[article.provider.domain] = article.provider
        elif known.logo is None and article.provider.logo is not None:
            providers[article.provider.domain] = Provider(known.name, known.domain, article.provider.logo)
    topics = sorted({topic for article in everything for topic in article.topics})
    return Corpus(
        articles=articles,
        topics=tuple(topics),
        providers=dict(sorted(providers.items())),
        problems=tuple(problems),
        files=len(results),
        _rejected=frozenset(rejected),
    )

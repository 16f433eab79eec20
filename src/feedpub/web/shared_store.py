"""The site as one builder publishes it, read by every serving process: versions in one SQLite file.

gunicorn's workers are separate processes. Rather than each loading the corpus and
rendering the whole site, one of them (the builder: :mod:`feedpub.web.builder_lease`)
publishes each new version here: every output's gzip bytes and validators, and for
the live feeds what their filtered views are made from (each member's kind and
quality, and the articles themselves, stored once). A serving process reads the
version that is current when a request starts; a version stays whole until
:data:`KEEP_VERSIONS` newer ones exist, so a request never sees a mix. An output
row holds the versions it is part of (``first`` to ``last``; ``last`` NULL while
current), so a publish writes only the outputs that changed, not a copy of every
row (at 100k articles, 28k rows per version). WAL lets readers go on while the
builder writes. The file is in the cache directory and safe to delete (the next
builder publishes everything again).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .. import shared_db
from ..catalog.feeds import Feed, FeedKind, FeedSpec, trim
from ..first_published import from_micros, to_micros
from ..ingest.codec import Decoder, encode
from ..ingest.validate import ParseResult
from ..model import Article, Kind, image_fields, image_from

FILENAME = "served.sqlite3"
KEEP_VERSIONS = 3  # a request reading one version while two more are published still finds it whole
BODY_BATCH = 256  # outputs written per transaction while a render runs (readers never wait long)


@dataclass(frozen=True, slots=True)
class Row:
    """One output of one version, without its bytes (they are in ``bodies``, by ETag)."""

    mimetype: str
    last_modified: int  # microseconds since the epoch
    etag: str
    size: int
    fingerprint: str  # of the feed it was rendered from ("" for the index files)
    archive: bool
    tag: str | None = None  # its purge key (Surrogate-Key, Cache-Tag)
    public: bool = False  # readable by other origins' scripts (CORS)


@dataclass(frozen=True, slots=True)
class Member:
    """One published article of a live feed, as much as a filter needs to pick it."""

    id: int
    kind: Kind
    quality: int | None


@dataclass(frozen=True)
class Source:
    """A live feed as stored: everything but its articles, which are read when a view needs them."""

    spec: FeedSpec
    updated: int
    prev_archive: str | None
    next_archive: str | None
    complete: bool
    members: tuple[Member, ...]


SCHEMA = 4  # PRAGMA user_version of the file: another means a file of another feedpub, published afresh
_TABLES = ("versions", "outputs", "bodies", "sources", "articles")


def _create(db: sqlite3.Connection) -> None:
    if db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA:
        return
    with shared_db.transaction(db):
        if db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA:
            return  # another process made it meanwhile
        for table in _TABLES:
            db.execute(f"DROP TABLE IF EXISTS {table}")
        db.execute("CREATE TABLE versions (site TEXT NOT NULL, id INTEGER NOT NULL, status TEXT NOT NULL,"
                   " PRIMARY KEY (site, id)) WITHOUT ROWID")
        db.execute("CREATE TABLE outputs (site TEXT NOT NULL, name TEXT NOT NULL, first INTEGER NOT NULL, last INTEGER,"
                   " mimetype TEXT NOT NULL, last_modified INTEGER NOT NULL, etag TEXT NOT NULL, size INTEGER NOT NULL,"
                   " fingerprint TEXT NOT NULL, archive INTEGER NOT NULL, tag TEXT, public INTEGER NOT NULL,"
                   " source TEXT,"
                   " PRIMARY KEY (site, name, first)) WITHOUT ROWID")
        # What pruning looks up: the rows that left the kept versions, and who else holds a body or a source.
        db.execute("CREATE INDEX outputs_last ON outputs (site, last)")
        db.execute("CREATE INDEX outputs_etag ON outputs (site, etag)")
        db.execute("CREATE INDEX outputs_source ON outputs (source)")
        # Per site: a builder writes bodies while it renders, before a version refers to them, and only
        # its own site's pruning (which it alone does) may remove them.
        db.execute("CREATE TABLE bodies (site TEXT NOT NULL, etag TEXT NOT NULL, gzipped BLOB NOT NULL,"
                   " PRIMARY KEY (site, etag)) WITHOUT ROWID")
        db.execute("CREATE TABLE sources (hash TEXT PRIMARY KEY, data BLOB NOT NULL)")
        db.execute("CREATE TABLE articles (id INTEGER PRIMARY KEY, key TEXT UNIQUE NOT NULL, data BLOB NOT NULL,"
                   " fragments BLOB)")
        db.execute(f"PRAGMA user_version = {SCHEMA}")


class SharedStore:
    """One site's versions in ``directory/served.sqlite3``: written by the builder, read by every process.

    Connections are per thread (gunicorn ``--threads``) and per process (never across a fork).
    """

    def __init__(self, directory: Path, site: str) -> None:
        self.path = directory / FILENAME
        self.site = site
        self._local = threading.local()

    def db(self) -> sqlite3.Connection:
        local = self._local
        if getattr(local, "db", None) is None or local.pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            local.db = shared_db.connect(self.path, _create)
            local.pid = os.getpid()
            local.seen = None
        db: sqlite3.Connection = local.db
        return db

    # -- reading ------------------------------------------------------------------------------

    def changed(self) -> bool:
        """Whether anything was committed since this thread last asked (cheap: once per request)."""
        db = self.db()
        seen = db.execute("PRAGMA data_version").fetchone()[0]
        if seen == self._local.seen:
            return False
        self._local.seen = seen
        return True

    def current(self) -> tuple[int, dict[str, Any]] | None:
        """The newest version and its status, or None before the first is published."""
        row = self.db().execute("SELECT id, status FROM versions WHERE site = ? ORDER BY id DESC LIMIT 1",
                                (self.site,)).fetchone()
        return None if row is None else (row[0], json.loads(row[1]))

    def output(self, version: int, name: str) -> tuple[Row, bytes] | None:
        found = self.db().execute(
            "SELECT mimetype, last_modified, etag, size, fingerprint, archive, tag, public, gzipped FROM outputs"
            f" JOIN bodies USING (site, etag) WHERE site = ? AND name = ? AND {_IN_VERSION}",
            (self.site, name, version, version)).fetchone()
        return None if found is None else (_row(found), found[8])

    def rows(self, version: int) -> dict[str, Row]:
        """Every output of ``version``, without bytes: a new builder's memo."""
        return {found[0]: _row(found[1:]) for found in self.db().execute(
            "SELECT name, mimetype, last_modified, etag, size, fingerprint, archive, tag, public FROM outputs"
            f" WHERE site = ? AND {_IN_VERSION}", (self.site, version, version))}

    def source_hashes(self, version: int) -> dict[str, str]:
        return dict(self.db().execute(f"SELECT name, source FROM outputs WHERE site = ? AND {_IN_VERSION}"
                                      " AND source IS NOT NULL", (self.site, version, version)))

    def source(self, version: int, name: str) -> Source | None:
        found = self.db().execute(
            "SELECT data FROM outputs JOIN sources ON sources.hash = outputs.source"
            f" WHERE site = ? AND name = ? AND {_IN_VERSION}", (self.site, name, version, version)).fetchone()
        return None if found is None else _source(json.loads(zlib.decompress(found[0])))

    def articles(self, ids: Iterable[int]) -> dict[int, tuple[Article, dict[str, bytes]]]:
        """Articles by id, each with the entry fragments the builder made of it (by format)."""
        wanted = list(ids)
        decoder = Decoder()
        found: dict[int, tuple[Article, dict[str, bytes]]] = {}
        for start in range(0, len(wanted), 500):  # SQLite's limit on parameters
            chunk = wanted[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for id_, key, data, fragments in self.db().execute(
                    f"SELECT id, key, data, fragments FROM articles WHERE id IN ({marks})", chunk):
                article = decoder.decode(data, key.split("\0", 2)[1]).article
                if article is not None:
                    found[id_] = (article, _fragments(fragments))
        return found

    def fragments(self, id_: int) -> dict[str, bytes]:
        found = self.db().execute("SELECT fragments FROM articles WHERE id = ?", (id_,)).fetchone()
        return _fragments(found[0]) if found is not None else {}

    def article_ids(self, prefix: str) -> dict[str, int]:
        """The stored articles of one site and rendering, by key."""
        low, high = prefix + "\0", prefix + "\1"
        return dict(self.db().execute("SELECT key, id FROM articles WHERE key >= ? AND key < ?", (low, high)))

    # -- writing (the builder alone) ----------------------------------------------------------

    def add_bodies(self, bodies: Iterable[tuple[str, bytes]]) -> None:
        db = self.db()
        with shared_db.transaction(db):
            db.executemany("INSERT OR IGNORE INTO bodies (site, etag, gzipped) VALUES (?, ?, ?)",
                           ((self.site, etag, gzipped) for etag, gzipped in bodies))

    def add_articles(self, articles: Iterable[tuple[str, Article]],
                     fragments: Callable[[Article], Mapping[str, bytes]]) -> list[int]:
        """Store each article under its key (:func:`article_key`) with its ``fragments``; their ids."""
        db = self.db()
        ids = []
        with shared_db.transaction(db):
            for key, article in articles:
                blob = encode(ParseResult(article.path, article, (), article.digest))
                made = fragments(article)
                packed = zlib.compress(json.dumps({k: v.decode() for k, v in made.items()}).encode(), 6)
                ids.append(db.execute("INSERT INTO articles (key, data, fragments) VALUES (?, ?, ?)",
                                      (key, blob, packed if made else None)).lastrowid or 0)
        return ids

    def publish(self, rows: Mapping[str, Row], sources: Mapping[str, str], changed: Iterable[str],
                removed: Iterable[str], new_sources: Mapping[str, bytes], status: Mapping[str, Any],
                sweep: bool = False) -> int:
        """Make a new version current: the current one's outputs, less ``removed``, with the ``changed``
        names taken from ``rows``; ``sources`` names each live feed output's data by hash, ``new_sources``
        holds the data not stored yet. ``sweep``: also drop every body no version lists (see :meth:`_prune`)."""
        db = self.db()
        with shared_db.transaction(db):
            last = db.execute("SELECT max(id) FROM versions WHERE site = ?", (self.site,)).fetchone()[0]
            version = (last or 0) + 1
            db.executemany("INSERT OR IGNORE INTO sources (hash, data) VALUES (?, ?)", new_sources.items())
            names = set(changed) if last is not None else set(rows)
            db.executemany("UPDATE outputs SET last = ? WHERE site = ? AND name = ? AND last IS NULL",
                           ((last, self.site, name) for name in (*names, *removed)))
            db.executemany(
                "INSERT INTO outputs (site, name, first, last, mimetype, last_modified, etag, size,"
                " fingerprint, archive, tag, public, source) VALUES (?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                ((self.site, name, version, r.mimetype, r.last_modified, r.etag, r.size, r.fingerprint,
                  int(r.archive), r.tag, int(r.public), sources.get(name)) for name in names for r in (rows[name],)))
            db.execute("INSERT INTO versions (site, id, status) VALUES (?, ?, ?)",
                       (self.site, version, json.dumps(dict(status))))
            self._prune(db, version, sweep)
        return version

    def restate(self, version: int, status: Mapping[str, Any]) -> None:
        """Update what /healthz says of ``version`` (a failed reload, a new load time) without a new version."""
        db = self.db()
        with shared_db.transaction(db):
            db.execute("UPDATE versions SET status = ? WHERE site = ? AND id = ?",
                       (json.dumps(dict(status)), self.site, version))

    def forget_articles(self, ids: Iterable[int]) -> None:
        db = self.db()
        with shared_db.transaction(db):
            db.executemany("DELETE FROM articles WHERE id = ?", ((i,) for i in ids))

    def _prune(self, db: sqlite3.Connection, version: int, sweep: bool) -> None:
        """Drop the versions before the kept ones, and the bodies and sources only they listed.

        A body written for a render that was never published is listed by no row at all:
        ``sweep`` looks at every body of the site for those (after a failed render, or a
        builder that died while rendering).
        """
        oldest = version - KEEP_VERSIONS + 1
        gone = db.execute("SELECT etag, source FROM outputs WHERE site = ? AND last < ?",
                          (self.site, oldest)).fetchall()
        db.execute("DELETE FROM outputs WHERE site = ? AND last < ?", (self.site, oldest))
        db.execute("DELETE FROM versions WHERE site = ? AND id < ?", (self.site, oldest))
        if sweep:  # every body no row lists, those of the pruned rows among them
            db.execute("DELETE FROM bodies WHERE site = ? AND etag NOT IN (SELECT etag FROM outputs WHERE site = ?)",
                       (self.site, self.site))
        else:
            db.executemany("DELETE FROM bodies WHERE site = ? AND etag = ? AND NOT EXISTS"
                           " (SELECT 1 FROM outputs WHERE site = ? AND etag = ?)",
                           ((self.site, etag, self.site, etag) for etag in {etag for etag, _ in gone}))
        db.executemany("DELETE FROM sources WHERE hash = ? AND NOT EXISTS (SELECT 1 FROM outputs WHERE source = ?)",
                       ((source, source) for source in {source for _, source in gone if source is not None}))


_IN_VERSION = "first <= ? AND (last IS NULL OR last >= ?)"  # the rows of one version


def _fragments(packed: bytes | None) -> dict[str, bytes]:
    if not packed:
        return {}
    return {name: text.encode() for name, text in json.loads(zlib.decompress(packed)).items()}


def _row(found: tuple[Any, ...]) -> Row:
    mimetype, last_modified, etag, size, fingerprint, archive, tag, public = found[:8]
    return Row(mimetype, last_modified, etag, size, fingerprint, bool(archive), tag, bool(public))


def article_key(prefix: str, article: Article) -> str:
    """An article's identity in the store: the site and rendering (``prefix``: its fragments depend on
    them), its file and its source's digest (an edit is a new row)."""
    return f"{prefix}\0{article.path}\0{article.digest}"


def member_json(id_: int, article: Article) -> str:
    """One member of a stored feed (see :class:`Member`) as JSON: its article's id, kind and quality."""
    return json.dumps([id_, article.kind.value, article.quality], separators=(",", ":"))


def encode_source(feed: Feed, members: str) -> bytes:
    """A live feed's stored data; ``members``: its members' :func:`member_json`, comma-separated."""
    spec = feed.spec
    data = {
        "spec": [spec.kind.value, spec.key, spec.name, spec.slug, spec.path, image_fields(spec.logo), spec.archive],
        "updated": to_micros(feed.updated), "prev": feed.prev_archive, "next": feed.next_archive,
        "complete": feed.complete,
    }
    head = json.dumps(data, separators=(",", ":"))
    # Level 1: the ``all`` feed's 100k members are encoded on every reload that changes one, in ~10 ms, not ~35.
    return zlib.compress(f'{head[:-1]},"members":[{members}]}}'.encode(), 1)


def _source(data: dict[str, Any]) -> Source:
    kind, key, name, slug, path, logo, archive = data["spec"]
    spec = FeedSpec(FeedKind(kind), key, name, slug, path, image_from(logo) if logo else None, archive)
    members = tuple(Member(id_, Kind(k), quality) for id_, k, quality in data["members"])
    return Source(spec, data["updated"], data["prev"], data["next"], data["complete"], members)


def source_feed(source: Source, members: tuple[Article, ...], limit: int) -> Feed:
    """The live feed ``source`` describes, its members being ``members`` (those of its members a view needs)."""
    feed = trim(source.spec, members, limit, from_micros(source.updated),
                prev_archive=source.prev_archive, next_archive=source.next_archive)
    return replace(feed, updated=from_micros(source.updated), complete=source.complete)


def source_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()

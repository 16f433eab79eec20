"""The builder's half of the shared store: each render published as one new version.

Outputs are compressed and written as the render makes them (a cold start at
100k articles never holds the whole site in memory); a version becomes current
in one transaction with every output's validators and the data filtered views
need. What the current version already holds is the next render's memo, so a
builder that takes over after another died renders nothing that did not change.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from ..catalog.feeds import Feed
from ..first_published import Claim, from_micros, to_micros
from ..model import Article, same_articles
from ..purge import GONE, items
from ..render.formats import Format
from ..render.site import Output, Site
from ..settings import Settings
from .headers import tag_of
from .shared_store import BODY_BATCH, Row, SharedStore, encode_source, source_hash
from .store import prepare
from .stored_articles import StoredArticles

# When each output's current bytes were first published: claimed for the new ones.
Dating = Callable[[Sequence[Claim]], list[datetime]]


class StoreBuilder:
    """What this process last published (or found published), and the render on its way to the next version."""

    def __init__(self, store: SharedStore, prefix: str, settings: Settings) -> None:
        self.store = store
        self.store_settings = settings
        self.version: int | None = None
        self.rows: dict[str, Row] = {}
        self.status: dict[str, Any] = {}
        self.articles = StoredArticles(store, prefix)
        self._fresh: dict[str, Row] = {}
        self._pending: list[tuple[str, bytes]] = []
        self._change: tuple[dict[str, Row], dict[str, Row], list[str]] = ({}, {}, [])
        self._source_of: dict[str, str] = {}  # each live feed output's source hash in the current version
        # By feed path: its members, what else its stored data says, and the data's hash.
        self._encoded: dict[str, tuple[tuple[Article, ...], tuple[object, ...], str]] = {}
        self._sweep = True  # bodies no version lists may be in the store (a render abandoned, a builder died)
        # Each output's purge key and CORS flag (see headers.tag_of): given by its name and the formats.
        # The formats of the last publish: an output's purge key and CORS flag (headers.tag_of) follow from its
        # name and these, so with the same formats its current row's are still right.
        self._tag_formats: tuple[Format, ...] = ()

    def take_over(self) -> bool:
        """Become the builder: say so in the current version; True if this process must look at every file
        (another builder published since this process last did, or it never did)."""
        current = self.store.current()
        stale = current is None or current[0] != self.version
        if stale:
            self.sync()
        elif current is not None:
            self.status = current[1]  # what another builder said of it since (a failed reload)
        self.restate({**self.status, "builder": os.getpid()})
        return stale

    def sync(self) -> None:
        """Start from the store's current version: its outputs are the memo of the next render."""
        current = self.store.current()
        self.version, self.status = current if current is not None else (None, {})
        self.rows = self.store.rows(self.version) if self.version is not None else {}
        self._source_of = self.store.source_hashes(self.version) if self.version is not None else {}
        self._encoded = {}
        self._tag_formats = ()  # the rows were published by another process
        self.articles.sync()
        self._sweep = True

    # -- during a render: the memo and the store callback of render_site ----------------------

    def bodies(self, feed: Feed, fingerprint: str, formats: Sequence[Format]) -> Mapping[str, bytes | None] | None:
        for fmt in formats:
            row = self.rows.get(fmt.output_name(feed.spec))
            if row is None or row.fingerprint != fingerprint:
                return None
        return dict.fromkeys((fmt.name for fmt in formats), None)

    def stored(self, article: Article) -> Mapping[str, bytes]:
        """The entry fragments published with ``article`` (render_site's ``stored``): none for a new one."""
        found = self.articles.id_of(article)
        return self.store.fragments(found) if found is not None else {}

    def keep(self, name: str, output: Output) -> Output:
        prepared = prepare(output)
        self._fresh[name] = Row(prepared.mimetype, to_micros(prepared.last_modified), prepared.etag, prepared.size,
                                "", False)
        self._pending.append((prepared.etag, prepared.gzipped))
        if len(self._pending) >= BODY_BATCH:
            self._flush()
        return Output(None, output.mimetype, output.last_modified)  # held in the store, not here

    def _flush(self) -> None:
        if self._pending:
            self.store.add_bodies(self._pending)
            self._pending = []

    def abandon(self) -> None:
        """A render that failed: what it made is not published (its bodies are pruned with the next version)."""
        self._fresh, self._pending = {}, []
        self._sweep = True

    # -- after it ----------------------------------------------------------------------------

    def publish(self, site: Site, status: Mapping[str, Any], dating: Dating) -> list[str]:
        """Make ``site`` the current version if any output changed; return the names whose bytes changed."""
        self._flush()
        fresh, self._fresh = self._fresh, {}
        places = _places(site)
        rows: dict[str, Row] = {}
        new: dict[str, Row] = {}
        same_formats = self._tag_formats == site.formats
        for name in site.outputs:
            before, made = self.rows.get(name), fresh.get(name)
            fingerprint, archive = places.get(name, ("", False))
            tag, public = (before.tag, before.public) if before is not None and same_formats else tag_of(site, name)
            if made is None or (before is not None and (before.etag, before.mimetype) == (made.etag, made.mimetype)):
                assert before is not None  # not rendered means taken from the current version
                same = (before.fingerprint, before.archive, before.tag, before.public) == (fingerprint, archive,
                                                                                          tag, public)
                rows[name] = before if same else replace(before, fingerprint=fingerprint, archive=archive, tag=tag,
                                                         public=public)
            else:
                new[name] = replace(made, fingerprint=fingerprint, archive=archive, tag=tag, public=public)
        claims = [Claim(name, row.etag, from_micros(row.last_modified)) for name, row in new.items()]
        for (name, row), time in zip(new.items(), dating(claims), strict=True):
            rows[name] = replace(row, last_modified=to_micros(time))
        changed = sorted(new)
        self._tag_formats = site.formats
        old = self.rows
        self._change = (old, rows, changed)
        fragments = site.context.fragments.kept if site.context else (lambda article: {})
        self.articles.add(site.corpus.articles, fragments)
        sources, new_sources = self._sources(site)
        moved = [name for name, row in rows.items() if old.get(name) is not row or sources.get(name) !=
                 self._source_of.get(name)]
        if not moved and old.keys() == rows.keys() and self.version is not None:
            self.status = dict(status)
            self.store.restate(self.version, self.status)  # same outputs: only what /healthz says is new
            return changed
        self.version = self.store.publish(rows, sources, moved, old.keys() - rows.keys(), new_sources, status,
                                          self._sweep)
        self._sweep = False
        self.rows, self.status, self._source_of = rows, dict(status), sources
        self.articles.forget()
        return changed

    def _sources(self, site: Site) -> tuple[dict[str, str], dict[str, bytes]]:
        """Each live feed output's stored data, by hash, and the data not stored yet; a feed whose members
        are the very objects they were at the last publish is not encoded again."""
        sources: dict[str, str] = {}
        new: dict[str, bytes] = {}
        encoded: dict[str, tuple[tuple[Article, ...], tuple[object, ...], str]] = {}
        for feed in site.feeds:
            members = feed.members or feed.entries
            # What encode_source writes besides the members: a new month moves every feed's archive links.
            head = (feed.spec, feed.updated, feed.prev_archive, feed.next_archive, feed.complete)
            known = self._encoded.get(feed.spec.path)
            if known is not None and known[1] == head and same_articles(known[0], members):
                digest = known[2]
            else:
                data = encode_source(feed, self.articles.members(members))
                digest = source_hash(data)
                new[digest] = data
            encoded[feed.spec.path] = (members, head, digest)
            for fmt in site.formats:
                sources[fmt.output_name(feed.spec)] = digest
        self._encoded = encoded
        return sources, new

    def purge_items(self) -> dict[str, str]:
        """What the purge hook is told of the last publish: each changed or removed output, by its key."""
        old, new, changed = self._change
        versions = {name: new[name].etag for name in changed}
        versions.update(dict.fromkeys(old.keys() - new.keys(), GONE))

        def key_of(name: str) -> str | None:
            row = new.get(name) or old.get(name)
            return row.tag if row is not None else None

        return items(self.store_settings, versions, key_of)

    def restate(self, status: Mapping[str, Any]) -> None:
        if self.version is not None:
            self.status = dict(status)
            self.store.restate(self.version, self.status)


def _places(site: Site) -> dict[str, tuple[str, bool]]:
    """Each feed output's fingerprint (the next render's memo) and whether it is an archive page."""
    places: dict[str, tuple[str, bool]] = {}
    for feeds, archive in ((site.feeds, False), (site.archives, True)):
        formats = [fmt for fmt in site.formats if fmt.archived or not archive]  # an archive has no page
        for feed in feeds:
            fingerprint = site.fingerprints.get(feed.spec.path, "")
            for fmt in formats:
                places[fmt.output_name(feed.spec)] = (fingerprint, archive)
    return places

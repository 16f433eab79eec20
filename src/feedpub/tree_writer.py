"""Writing a site's outputs as the render makes them, so a build never holds the whole tree in memory.

At 100k articles a site is 28,653 files and 2.7 GiB: kept until the render
ends, they were most of a build's peak memory. :class:`TreeWriter` is the
render's ``store`` (see :func:`feedpub.render.site.render_site`): each output is
compared with what is on disk, dated, written (in batches, see below) and then
dropped, and the site keeps only its media type and date.

The rules are :mod:`feedpub.static_tree`'s: every file is renamed into place
whole and dated; unchanged files keep their bytes and mtime; before any file is
touched, the manifest lists every file this build may leave behind and no
fingerprints (a build killed half-way is finished by the next one); only files a
manifest listed are ever removed. Outputs are written a batch at a time so that
the manifest is rewritten once per batch of new names, not once per file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from .first_published import Dated, next_time
from .render.site import Output, Site, body_version
from .static_tree import (
    OutputError,
    Resolver,
    atomic_write,
    listed_files,
    mtime_ns,
    on_disk,
    published_times,
    read_manifest,
    remove_leftovers,
    remove_stale,
    same_bytes,
    write_manifest,
)

BATCH_BYTES = 32 << 20  # changed outputs held before they are written (and the manifest lists them)


@dataclass(frozen=True)
class BuildReport:
    written: int
    unchanged: int
    removed: int
    changed: tuple[str, ...] = ()  # names of the files written
    versions: Mapping[str, str] = field(default_factory=dict)  # each written file's version (its body hash)
    gone: tuple[str, ...] = ()  # names of the files removed


def write_site(site: Site, out_dir: Path, now: datetime | None = None) -> BuildReport:
    """Write a site rendered beforehand (hold :func:`~feedpub.static_tree.locked` around the render and this)."""
    writer = TreeWriter(out_dir, now)
    for name, output in site.outputs.items():
        writer(name, output)
    return writer.finish(site)


class TreeWriter:
    """One build's writes to ``out_dir``; ``now`` dates bytes never published before (see first_published)."""

    def __init__(self, out_dir: Path, now: datetime | None = None) -> None:
        self.out_dir = out_dir
        self.now = now or datetime.now(UTC)
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            self.root = out_dir.resolve()
            manifest = read_manifest(out_dir)
            # Temporary files only outlive a build that was killed, and such a build leaves a manifest
            # without fingerprints: then look everywhere; otherwise only where the manifest is written.
            remove_leftovers(self.root, everywhere="feeds" not in manifest)
        except OSError as exc:
            raise OutputError(exc.filename or out_dir, exc) from None
        self.previous = listed_files(manifest)
        self.published = published_times(manifest)
        self.inside = Resolver(self.root)
        self.dates: dict[str, Dated] = {}
        self.versions: dict[str, str] = {}  # written by this build, by name
        self.listed: set[str] | None = None  # what the manifest lists since this build first rewrote it
        self._pending: list[tuple[str, str, bytes, int]] = []
        self._pending_bytes = 0

    def __call__(self, name: str, output: Output) -> Output:
        """Take one output: write it if its bytes are new, and give it back without them."""
        try:
            self._take(name, output)
        except OSError as exc:
            raise OutputError(exc.filename or self.out_dir / name, exc) from None
        return Output(None, output.mimetype, output.last_modified)

    def _take(self, name: str, output: Output) -> None:
        before = self.published.get(name)
        body = output.body
        if body is None:  # the memo found it on disk with this record's time
            if before is not None:
                self.dates[name] = before
            return
        target = self.inside(name)
        same = same_bytes(target, body)
        if before is None and not same:
            before = on_disk(target)  # written by a build that kept no times: what nginx served
        version = body_version(body)
        dated = self.dates[name] = Dated(version, next_time(before, version, output.last_modified, self.now))
        mtime = mtime_ns(dated.time)
        if not same:
            self.versions[name] = version
            self._pending.append((name, target, body, mtime))
            self._pending_bytes += len(body)
            if self._pending_bytes >= BATCH_BYTES:
                self._flush()
        elif os.stat(target).st_mtime_ns != mtime:
            os.utime(target, ns=(mtime, mtime))

    def _flush(self) -> None:
        if not self._pending:
            return
        self._list({name for name, *_ in self._pending})
        for _, target, body, mtime in self._pending:
            atomic_write(Path(target), body, mtime)
        self._pending, self._pending_bytes = [], 0

    def _list(self, names: set[str]) -> None:
        """Make the manifest list ``names`` too, before any of them is written (and drop its fingerprints)."""
        if self.listed is not None and names <= self.listed:
            return
        self.listed = (self.listed if self.listed is not None else set(self.previous)) | names
        write_manifest(self.out_dir, sorted(self.listed), {**self.published, **self.dates})

    def finish(self, site: Site) -> BuildReport:
        """Write what is left, remove what the site no longer has, and write the whole manifest."""
        try:
            return self._finish(site)
        except OSError as exc:
            raise OutputError(exc.filename or self.out_dir, exc) from None

    def _finish(self, site: Site) -> BuildReport:
        self._flush()
        outputs = site.outputs
        # Also what an earlier try of this render wrote and the site dropped (an unrenderable article's feed).
        stale = sorted((self.previous | self.versions.keys()) - outputs.keys())
        if stale:
            self._list(set())
        dates = {name: self.dates.get(name) or self.published[name] for name in outputs}
        gone = remove_stale(self.root, self.inside, stale)
        write_manifest(self.out_dir, sorted(outputs), dates, site.fingerprints)
        changed = tuple(name for name in outputs if name in self.versions)
        return BuildReport(len(changed), len(outputs) - len(changed), len(gone), changed,
                           {name: self.versions[name] for name in changed}, tuple(gone))

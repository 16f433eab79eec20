"""Writing a site's outputs as the render makes them, so a build never holds the whole tree in memory.

At 100k articles a site is 28,653 files and 2.7 GiB: kept until the render
ends, they were most of a build's peak memory. :class:`TreeWriter` is the
render's ``store`` (see :func:`feedpub.render.site.render_site`): each output is
compared with what is on disk, dated, written (in batches, see below) and then
dropped, and the site keeps only its media type and date.

The rules are :mod:`feedpub.static_tree`'s: every file is renamed into place
whole and dated; unchanged files keep their bytes and mtime; only files a
manifest listed are ever removed, and every file is listed before it is written.
Before the first file is touched the manifest is rewritten without fingerprints
(a build killed half-way is redone whole by the next one); the new names of
later batches go to the journal (:data:`~feedpub.static_tree.JOURNAL`), one
line each, rather than into a rewritten manifest (3 MiB at 100k articles).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from .first_published import Dated, next_time
from .render.site import Output, Site, body_version
from .static_tree import (
    BuildReport,
    OutputError,
    Resolver,
    atomic_write,
    close_journal,
    listed_files,
    mtime_ns,
    note_in_journal,
    on_disk,
    published_times,
    read_journal,
    read_manifest,
    remove_leftovers,
    remove_stale,
    same_bytes,
    write_manifest,
)

BATCH_BYTES = 32 << 20  # changed outputs held before they are written (and the manifest lists them)


def write_site(site: Site, out_dir: Path, now: datetime | None = None) -> BuildReport:
    """Write a site rendered beforehand (hold :func:`~feedpub.static_tree.locked` around the render and this)."""
    with TreeWriter(out_dir, now) as writer:
        for name, output in site.outputs.items():
            writer(name, output)
        return writer.finish(site)


class TreeWriter:
    """One build's writes to ``out_dir``; ``now`` dates bytes never published before (see first_published).

    A batch is written by a thread of its own while the render goes on (one batch at a
    time: writing is mostly the kernel's work, which the other core does meanwhile).
    Use it as a context manager: leaving it waits for the batch being written, so a
    build that fails or is interrupted leaves its directory as the manifest says.
    """

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
        journal = read_journal(out_dir)  # what a killed build wrote beyond its manifest
        self.previous = listed_files(manifest) | journal.keys()
        self.published = {**published_times(manifest), **journal}
        self.inside = Resolver(self.root)
        self.dates: dict[str, Dated] = {}
        self.versions: dict[str, str] = {}  # written by this build, by name
        self.listed: set[str] | None = None  # what the manifest and journal list since this build first wrote
        self._pending: list[tuple[str, str, bytes, int]] = []
        self._pending_bytes = 0
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="feedpub-write")
        self._writing: Future[None] | None = None

    def __enter__(self) -> TreeWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        try:
            self._wait()
        except OutputError:
            if kind is None:
                raise  # otherwise the error that stopped the build is the one to tell
        finally:
            self._thread.shutdown()

    def __call__(self, name: str, output: Output) -> Output:
        """Take one output: write it if its bytes are new, and give it back without them."""
        try:
            self._take(name, output)
        except OSError as exc:
            raise OutputError(exc.filename or self.out_dir / name, exc) from None
        return Output(None, output.mimetype, output.last_modified)

    def _take(self, name: str, output: Output) -> None:
        body = output.body
        if body is None:  # the memo found it on disk with its manifest record's time (see finish)
            return
        before = self.published.get(name)
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
        self._wait()  # one batch in memory besides the one being filled
        listing = self._listing({name for name, *_ in self._pending})
        batch, self._pending, self._pending_bytes = self._pending, [], 0
        self._writing = self._thread.submit(self._write, listing, batch)

    def _write(self, listing: Callable[[], None], batch: list[tuple[str, str, bytes, int]]) -> None:
        try:
            listing()
            for _, target, body, mtime in batch:
                atomic_write(Path(target), body, mtime)
        except OSError as exc:
            raise OutputError(exc.filename or self.out_dir, exc) from None

    def _wait(self) -> None:
        writing, self._writing = self._writing, None
        if writing is not None:
            writing.result()  # raises what the thread met

    def _listing(self, names: set[str]) -> Callable[[], None]:
        """What makes ``names`` listed before any of them is written.

        The first time, the manifest, without fingerprints: a build killed from then on is redone
        whole by the next one. Afterwards, only new names, appended to the journal.
        """
        out_dir, dates = self.out_dir, self.dates
        if self.listed is None:
            self.listed = self.previous | names
            listed, published = sorted(self.listed), {**self.published, **dates}
            return lambda: write_manifest(out_dir, listed, published)
        new = names - self.listed
        self.listed |= new
        noted = {name: dates[name] for name in sorted(new)}
        return (lambda: note_in_journal(out_dir, noted)) if noted else (lambda: None)

    def finish(self, site: Site) -> BuildReport:
        """Write what is left, remove what the site no longer has, and write the whole manifest."""
        try:
            return self._finish(site)
        except OSError as exc:
            raise OutputError(exc.filename or self.out_dir, exc) from None

    def _finish(self, site: Site) -> BuildReport:
        self._flush()
        self._wait()
        outputs = site.outputs
        # Also what an earlier try of this render wrote and the site dropped (an unrenderable article's feed).
        stale = sorted((self.previous | self.versions.keys()) - outputs.keys())
        if stale:
            self._listing(set())()  # the fingerprints go before any file does
        dates = {name: self.dates.get(name) or self.published[name] for name in outputs}
        gone = remove_stale(self.root, self.inside, stale)
        write_manifest(self.out_dir, sorted(outputs), dates, site.fingerprints)
        close_journal(self.out_dir)
        changed = tuple(name for name in outputs if name in self.versions)
        return BuildReport(len(changed), len(outputs) - len(changed), len(gone), changed,
                           {name: self.versions[name] for name in changed}, tuple(gone))

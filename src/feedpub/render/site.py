"""Rendering a whole site to bytes: the one code path behind ``feedpub build`` and the server.

A :class:`Site` maps each path under ``/feeds/`` to its finished bytes. The
static build writes them, the server serves them: the same settings give the
same bytes. Given the previous site, only feeds whose entries changed are
rendered again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from operator import attrgetter
from typing import TYPE_CHECKING, Protocol

from .. import __version__
from ..catalog.archives import Earlier, earlier_pages, with_archives
from ..catalog.feeds import Feed, plan
from ..model import Article, Corpus, without
from ..settings import Settings, output_fields
from .common import Draft, SiteContext
from .entry_content import entry_html
from .formats import INDEX_FILES, Format, registered
from .fragments import Fragments
from .prefill import made_on_every_core

if TYPE_CHECKING:
    from .kept import KeptFragments

log = logging.getLogger(__name__)
HTML_KEPT = 1024  # entries whose HTML a render keeps when nothing smaller is asked for (see site_context)
# An article's entry fragments as an earlier render of the same settings kept them, by format (none: {}).
Stored = Callable[[Article], Mapping[str, bytes]]


@dataclass(frozen=True, slots=True)
class Output:
    """One finished file: its bytes, media type and the date of its newest content.

    That date is a floor: the build and the server date an output by the later of it
    and when its current bytes were first published (see :mod:`feedpub.first_published`).
    """

    body: bytes | None  # None: held elsewhere, unchanged (on disk from an earlier build, or compressed by the server)
    mimetype: str
    last_modified: datetime

    @property
    def kept(self) -> bool:
        """Whether the bytes are held elsewhere, not here."""
        return self.body is None


@dataclass(frozen=True)
class Site:
    """Every output of one corpus under one set of settings: each path under ``/feeds/`` with its :class:`Output`."""

    settings: Settings
    corpus: Corpus
    feeds: tuple[Feed, ...]
    outputs: Mapping[str, Output]
    notes: tuple[str, ...] = ()
    rendered: int = field(default=0, compare=False)
    fingerprints: Mapping[str, str] = field(default_factory=dict, compare=False)
    archives: tuple[Feed, ...] = field(default=(), compare=False)
    deferred: Mapping[str, tuple[Feed, Format]] = field(default_factory=dict, compare=False)
    # The formats it was rendered in: the registry as it was then.
    formats: tuple[Format, ...] = field(default_factory=registered, compare=False)
    # What it was rendered with, entry fragments included: filtered views and archive pages reuse them.
    context: SiteContext | None = field(default=None, compare=False, repr=False)

    def bodies(self, feed: Feed, fingerprint: str, formats: Sequence[Format]) -> dict[str, bytes | None] | None:
        """This site as the next render's memo (see :class:`Memo`)."""
        spec = feed.spec
        if self.fingerprints.get(spec.path) != fingerprint:
            return None
        return {fmt.name: self.outputs[fmt.output_name(spec)].body for fmt in formats}

    def feed_urls(self, names: Iterable[str], version: Callable[[str], str] | None = None) -> dict[str, str]:
        """The absolute URL and a version (by default the body hash) of each feed among ``names``.

        Pages and index files are left out: WebSub announces feeds.
        """
        suffixes = tuple(fmt.suffix for fmt in self.formats if fmt.feed)
        version = version or self._version
        return {self.settings.feeds_url + name: version(name)
                for name in names if name.endswith(suffixes) and name not in INDEX_FILES}

    def _version(self, name: str) -> str:
        body = self.outputs[name].body
        if body is None:
            raise ValueError(f"{name} is held elsewhere: its version must be given")
        return body_version(body)

    def feed_and_format(self, path: str) -> tuple[Feed, Format] | None:
        """The feed and format behind an output path, e.g. ``ai.xml``; ``None`` for index files."""
        return self._sources.get(path)

    @cached_property
    def _sources(self) -> dict[str, tuple[Feed, Format]]:
        return {fmt.output_name(feed.spec): (feed, fmt) for feed in self.feeds for fmt in self.formats}


def body_version(body: bytes) -> str:
    """A strong validator of a body: its ETag, and the version WebSub announces."""
    return hashlib.sha256(body).hexdigest()[:32]


def site_context(settings: Settings, formats: Sequence[Format], html_cache_size: int | None = None,
                 stored: Stored | None = None, kept: KeptFragments | None = None) -> SiteContext:
    """A context whose entry HTML and fragments are made once per article.

    An entry's HTML is kept only while its fragments are being made (:data:`HTML_KEPT`
    articles at most). With ``html_cache_size`` only that many recent articles' HTML and fragments are
    kept (least recently used first out): the server renders most entries for about
    one feed, so keeping them all would only raise its peak memory (memory per worker,
    benchmarks/RESULTS.md). The static build keeps every fragment: its archive pages
    use each article again in every topic and provider. The server keeps the context
    of its current site for its request threads: hence the lock.
    """
    html_cache: OrderedDict[str, str] = OrderedDict()
    lock = threading.Lock()
    # An entry's HTML is only read to make its fragments, one format after another: a few are enough.
    html_kept = html_cache_size if html_cache_size is not None else HTML_KEPT

    def html(article: Article) -> str:
        with lock:
            cached = html_cache.get(article.url)
            if cached is None:
                cached = html_cache[article.url] = entry_html(article, settings.site_url)
                if len(html_cache) > html_kept:
                    html_cache.popitem(last=False)
            else:
                html_cache.move_to_end(article.url)
            return cached

    return SiteContext(settings, html, formats, Fragments(html_cache_size, stored, kept.made if kept else None))


def render_feed(feed: Feed, fmt: Format, settings: Settings, ctx: SiteContext | None = None) -> bytes:
    """One feed in one format, outside a full site render (trimmed feeds, archive pages on demand).

    Given the context of the site the feed comes from (:attr:`Site.context`), its
    entries' fragments are taken from there. Entries no renderer takes are left out
    here too (see :func:`render_site`).
    """
    ctx = ctx if ctx is not None else site_context(settings, registered())
    try:
        return _render_feed(fmt, Draft(feed, ctx))
    except Unrenderable as exc:
        kept = tuple(a for a in feed.entries if a.path not in exc.culprits)
        return fmt.render(Draft(dataclasses.replace(feed, entries=kept), ctx), fmt)


class Memo(Protocol):
    """Where already-rendered feeds can be found: the previous site in memory, or the output directory."""

    def bodies(self, feed: Feed, fingerprint: str,
               formats: Sequence[Format]) -> Mapping[str, bytes | None] | None:
        """The bytes of each format (by name) of a feed if it was rendered with ``fingerprint``.

        ``None`` for a format means "unchanged, and held elsewhere": the output is
        kept where it is without being loaded (a file on disk, or the server's
        compressed copy).
        """


def fingerprint(feed: Feed, rendering: bytes) -> str:
    """Everything a feed's bytes depend on: ``rendering`` (:func:`rendering_key`), identity, date, entry sources.

    It runs for every feed and archive page of every build ("nothing changed" in benchmarks/RESULTS.md),
    so it joins plain fields rather than formatting whole objects.
    """
    digest = hashlib.blake2b(rendering, digest_size=16)
    spec = feed.spec
    digest.update("\0".join((
        spec.kind.value, spec.key, spec.name, spec.slug, spec.path, repr(spec.logo), spec.archive or "",
        repr(feed.updated.timestamp()), feed.prev_archive or "", feed.next_archive or "", feed.current or "",
        "complete" if feed.complete else "",
    )).encode())
    digest.update("\0".join(map(_URL, feed.entries)).encode())
    digest.update(b"\1")
    digest.update("\0".join(map(_SOURCE_DIGEST, feed.entries)).encode())
    return digest.hexdigest()


_URL, _SOURCE_DIGEST = attrgetter("url"), attrgetter("digest")


def rendering_key(settings: Settings) -> bytes:
    """What every feed's bytes depend on besides its own entries: the version and every output setting."""
    return repr((__version__, *((spec.name, getattr(settings, spec.name)) for spec in output_fields()))).encode()


def _keep_all(name: str, output: Output) -> Output:
    return output


def _earlier_pages(earlier: Site | None, corpus: Corpus) -> Earlier | None:
    if earlier is None or not earlier.archives:
        return None
    return earlier_pages(earlier.feeds, earlier.archives, earlier.corpus.newest, corpus.newest)


class Unrenderable(Exception):
    """Some articles make a renderer fail: their paths, each with the reason."""

    def __init__(self, culprits: dict[str, str]) -> None:
        super().__init__(f"{len(culprits)} articles cannot be rendered")
        self.culprits = culprits


def render_site(corpus: Corpus, settings: Settings, previous: Memo | None = None, *,
                render_archives: bool = True, store: Callable[[str, Output], Output] = _keep_all,
                html_cache_size: int | None = None, stored: Stored | None = None, earlier: Site | None = None,
                workers: int = 1, kept: KeptFragments | None = None) -> Site:
    """Every feed of ``corpus`` (see :func:`_render_site`), less any article no renderer can take.

    Such an article is an error of its file, and the site is rendered again
    without it, so it is missing from every feed alike and the rest is published.
    """
    dropped: dict[str, str] = {}
    while True:
        try:
            return _render_site(without(corpus, dropped) if dropped else corpus, settings, previous,
                                render_archives=render_archives, store=store, html_cache_size=html_cache_size,
                                stored=stored, earlier=earlier, workers=workers, kept=kept)
        except Unrenderable as exc:  # each round takes articles out: it ends
            dropped.update(exc.culprits)


def _render_feed(fmt: Format, draft: Draft) -> bytes:
    """One feed in one format; if that fails, raise :class:`Unrenderable` naming the entries to blame."""
    try:
        return fmt.render(draft, fmt)
    except Exception as exc:
        feed, ctx = draft.feed, draft.ctx
        try:
            fmt.render(Draft(dataclasses.replace(feed, entries=()), ctx), fmt)
        except Exception:
            raise exc from None  # the feed itself, not one of its entries: nothing to isolate
        culprits: dict[str, str] = {}
        for article in feed.entries:
            try:
                fmt.render(Draft(dataclasses.replace(feed, entries=(article,)), ctx), fmt)
            except Exception as alone:
                # The type and where, never the message: it may quote a value.
                log.error("%s: cannot be rendered as %s (%s); leaving it out", article.path, fmt.name,
                          type(alone).__name__)
                culprits[article.path] = (f"could not be rendered as {fmt.name} ({type(alone).__name__});"
                                          " left out of every feed")
        if not culprits:
            raise
        raise Unrenderable(culprits) from exc


def _render_site(corpus: Corpus, settings: Settings, previous: Memo | None = None, *,
                 render_archives: bool = True, store: Callable[[str, Output], Output] = _keep_all,
                 html_cache_size: int | None = None, stored: Stored | None = None, earlier: Site | None = None,
                 workers: int = 1, kept: KeptFragments | None = None) -> Site:
    """Render every feed; take the bytes of feeds whose fingerprint ``previous`` already has.

    Without ``render_archives`` (the server) archive pages are only listed in
    ``Site.deferred``, to be rendered by the same code when first asked for.
    Each output with bytes goes through ``store`` as soon as it is made, and the
    site keeps what that returns: the server compresses it there and keeps no
    plain copy, so a whole site never sits in memory uncompressed; ``html_cache_size``
    bounds the entry HTML kept meanwhile (see :func:`site_context`); ``stored`` gives the entry
    fragments an earlier render kept (the server's builder: its store), so only new entries are made.
    ``earlier``, the last site rendered with the same settings, lends its archive pages (and their
    fingerprints) to each feed whose articles are the same objects (see :func:`with_archives`).
    With ``workers`` > 1 a large render's entries are made by that many child processes while the feeds
    are assembled here (:func:`~feedpub.render.prefill.made_on_every_core`; never in a process with other threads).
    ``kept``: entry fragments kept across builds (:mod:`feedpub.render.kept`), looked up first and given the rest.
    """
    formats = registered()
    archived = tuple(fmt for fmt in formats if fmt.archived)
    ctx = site_context(settings, formats, html_cache_size, stored, kept)
    feeds, notes = plan(corpus, settings.max_items)
    outputs: dict[str, Output] = {}
    rendered = 0
    archives: tuple[Feed, ...] = ()
    if earlier is not None and earlier.settings != settings:
        earlier = None
    if settings.archives:
        feeds, archives = with_archives(feeds, corpus.newest, _earlier_pages(earlier, corpus))
    reused = ({id(feed): earlier.fingerprints.get(feed.spec.path) for feed in earlier.archives}
              if earlier is not None and render_archives else {})  # archive pages are rendered here or not at all
    deferred = {} if render_archives else {
        fmt.output_name(feed.spec): (feed, fmt) for feed in archives for fmt in archived}
    jobs = [(feed, formats) for feed in feeds]
    if render_archives:
        jobs += [(feed, archived) for feed in archives]
    rendering = rendering_key(settings)
    fingerprints = {feed.spec.path: reused.get(id(feed)) or fingerprint(feed, rendering) for feed, _ in jobs}
    planned = [(feed, output_formats, previous.bodies(feed, fingerprints[feed.spec.path], output_formats)
                if previous is not None else None) for feed, output_formats in jobs]
    with made_on_every_core(ctx, planned, workers, kept) as entries:
        for job, (feed, output_formats, known) in enumerate(planned):
            entries.ready(job)
            draft = Draft(feed, ctx)  # what this feed's formats share, and no other feed's
            for fmt in output_formats:
                name = fmt.output_name(feed.spec)
                if known is not None and fmt.name in known:
                    body = known[fmt.name]
                    if body is None:  # the memo holds it already (on disk, or prepared by the server): not read
                        outputs[name] = Output(None, fmt.media_type, feed.updated)
                        continue
                else:
                    body = _render_feed(fmt, draft)
                    rendered += 1
                outputs[name] = store(name, Output(body, fmt.media_type, feed.updated))
    for index in INDEX_FILES.values():
        output = Output(index.render(feeds, ctx, corpus), index.media_type, corpus.newest)
        outputs[index.name] = store(index.name, output)
    return Site(settings, corpus, feeds, outputs, notes, rendered, fingerprints, archives, deferred, formats, ctx)

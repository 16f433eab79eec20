"""The ``feedpub`` command: build, check, serve, settings.

Options are generated from the settings declaration, so the CLI, the
environment and the server always agree on names, defaults and help.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from . import __version__
from .ingest.frontmatter import HAVE_LIBYAML, NO_LIBYAML_WARNING
from .ingest.loader import CorpusLoader, SeedsUnavailable
from .last_build import LastBuild, Summary, inputs_key
from .model import Corpus, printable
from .settings import Settings, SettingsError, describe, env_name, setting_fields
from .static_tree import BuildReport, OutputBusy, OutputError, OutputMemo, locked, sweep

if TYPE_CHECKING:
    from .ingest.parse_cache import ParseCache
    from .render.site import Site

# The renderers, feedgen and the notifiers are imported where they are used: a build with nothing to
# do (feedpub.last_build) costs little more than stating the files, and importing them cost 60 ms of it.

F = TypeVar("F", bound=Callable[..., Any])
_CLICK_TYPES: dict[str, Any] = {"Path": click.Path(path_type=Path), "int": int, "float": float, "str": str}


def setting_options(*names: str) -> Callable[[F], F]:
    """Add a CLI option for each named setting, with help and default taken from its declaration."""
    fields = {spec.name: spec for spec in setting_fields()}

    def decorate(func: F) -> F:
        for name in reversed(names):
            spec = fields[name]
            kind = spec.type if isinstance(spec.type, str) else spec.type.__name__
            default = spec.metadata.get("shown") or spec.default
            help_text = f"{spec.metadata['help']} [env {env_name(name)}; default: {default}]"
            if kind == "bool":
                func = click.option(spec.metadata["cli"], name, default=None, help=help_text)(func)
            else:
                func = click.option(spec.metadata["cli"], name, type=_CLICK_TYPES[kind], default=None,
                                    help=help_text)(func)
        return func

    return decorate


def _settings(options: dict[str, Any]) -> Settings:
    if not HAVE_LIBYAML:
        click.echo(f"warning: {NO_LIBYAML_WARNING}", err=True)
    try:
        return Settings.load(options)
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None


def _loader(settings: Settings) -> CorpusLoader:
    return CorpusLoader(settings.seeds_dir, settings.max_file_bytes,
                        cache_dir=settings.cache_dir if settings.cache else None, pause_gc=True)


def _scan(loader: CorpusLoader) -> dict[str, tuple[int, int]]:
    try:
        return loader.scan()
    except SeedsUnavailable as exc:
        raise click.UsageError(str(exc)) from None


def _load(loader: CorpusLoader, stamps: dict[str, tuple[int, int]] | None = None) -> Corpus:
    try:
        with _Progress("Loading articles") as progress:
            return loader.load(progress, stamps)
    except SeedsUnavailable as exc:
        raise click.UsageError(str(exc)) from None


class _Progress:
    """A progress bar on a terminal for big loads; silent when piped or small."""

    MIN_FILES = 2000

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar: Any = None
        self.enabled = sys.stderr.isatty()

    def __enter__(self) -> _Progress:
        return self

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total < self.MIN_FILES:
            return
        if self.bar is None:
            self.bar = click.progressbar(length=total, label=self.label, file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(done)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)


def _report(corpus: Corpus) -> None:
    for problem in corpus.problems:
        click.echo(str(problem), err=True)


@click.group()
@click.version_option(__version__, prog_name="feedpub")
def main() -> None:
    """Publish a directory of articles as RSS, Atom and JSON feeds per topic and provider."""


@main.command()
@setting_options("seeds_dir", "out_dir", "site_url", "site_title", "max_items", "language", "max_age", "cache_dir",
                 "cache", "websub_hub", "archives", "purge_url")
@click.option("--strict", is_flag=True, help="Exit 1 when any file was rejected.")
@click.option("--lock-wait", default=30.0, show_default=True, type=click.FloatRange(min=0), metavar="SECONDS",
              help="How long to wait for another build writing the same output directory.")
def build(strict: bool, lock_wait: float, **options: Any) -> None:
    """Write every feed, index.json and index.opml under the output directory."""
    settings = _settings(options)
    loader = _loader(settings)
    try:
        stamps = _scan(loader)
        record = LastBuild.of(settings)
        inputs = inputs_key(settings, stamps)
        done = _unchanged(settings, record, inputs, lock_wait)
        if done is None:
            done = _render_and_write(settings, _load(loader, stamps), lock_wait, record, inputs, loader.cache())
    finally:
        loader.close()
    summary, site, report = done.summary, done.site, done.report
    for line in summary.problems:
        click.echo(line, err=True)
    if settings.websub_hub:  # also when nothing changed: pings an earlier run could not send are due
        from .websub import announce

        changed = site.feed_urls(report.changed, report.versions.__getitem__) if site else {}
        pings = announce(settings.websub_hub, settings.cache_dir, changed)
        if pings.sent:
            click.echo(f"WebSub: {pings.sent} pings accepted by {settings.websub_hub}", err=True)
        if pings.pending:
            later = "the next build or reload will retry them" if pings.kept else "no ledger keeps them for later"
            click.echo(f"warning: WebSub: {pings.pending} pings pending"
                       f" ({pings.problem or 'not sent in time'}); {later}", err=True)
    if settings.purge_url:
        _purge(settings, site, report)
    out = printable(str(settings.out_dir))  # a name need not be UTF-8; the terminal needs it to be
    click.echo(
        f"{summary.files} files: {summary.articles} published articles, {summary.rejected} rejected, "
        f"{summary.warnings} warnings. {summary.feeds} feeds in {out}/ ({site.rendered if site else 0} rendered): "
        f"{report.written} files written, {report.unchanged} unchanged, {report.removed} removed."
    )
    if strict and summary.rejected:
        sys.exit(1)


@dataclass(frozen=True)
class _Built:
    """A build's outcome; without a site when the last build's stands (nothing changed)."""

    summary: Summary
    report: BuildReport
    site: Site | None = None


def _purge(settings: Settings, site: Site | None, report: BuildReport) -> None:
    """Tell the purge hook which keys and URLs this build changed (and what earlier runs left pending)."""
    from .purge import GONE, announce_build, items, surrogate_key

    versions = {**{name: report.versions[name] for name in report.changed}, **dict.fromkeys(report.gone, GONE)}
    sent = announce_build(settings.purge_url, settings.cache_dir,
                          items(settings, versions, lambda name: surrogate_key(site, name) if site else None))
    if sent.pending:
        later = "the next build or reload will retry them" if sent.kept else "no ledger keeps them for later"
        click.echo(f"warning: purge hook: {sent.pending} keys and URLs pending"
                   f" ({sent.problem or 'not sent in time'}); {later}", err=True)


def _waiting(settings: Settings) -> str:
    return f"waiting for another build writing {printable(str(settings.out_dir))}"


def _unchanged(settings: Settings, record: LastBuild | None, inputs: str, lock_wait: float) -> _Built | None:
    """The last build's outcome when it saw these inputs and its outputs are untouched: nothing to do."""
    if record is None:
        return None
    try:
        with locked(settings.out_dir, lock_wait, lambda: click.echo(_waiting(settings), err=True)):
            summary = record.unchanged(inputs)
            if summary is not None:
                sweep(settings.out_dir)
    except (OutputError, OutputBusy) as exc:
        raise click.ClickException(printable(str(exc))) from None
    if summary is None:
        return None
    for note in summary.notes:
        click.echo(f"warning: {note}", err=True)
    return _Built(summary, BuildReport(0, summary.outputs, 0))


def _render_and_write(settings: Settings, corpus: Corpus, lock_wait: float, record: LastBuild | None,
                      inputs: str, cache: ParseCache | None) -> _Built:
    """Render against what the output directory holds and write it, one build at a time.

    A second build waits (a build is usually seconds) rather than failing at once,
    but not forever: builds started by a timer must not pile up behind a stuck one.
    """
    from .render.kept import kept_fragments
    from .render.site import render_site, rendering_key
    from .tree_writer import TreeWriter

    out = settings.out_dir
    try:
        with locked(out, lock_wait, lambda: click.echo(_waiting(settings), err=True)):
            if record is not None:
                record.forget()  # until this build is whole: one killed half-way leaves no record behind
            # Each output is written as soon as it is rendered: the tree is never in memory whole.
            # Entry fragments are kept beside the parse results: the next build makes only new or edited ones.
            with TreeWriter(out) as writer, kept_fragments(cache, rendering_key(settings)) as kept:
                site = render_site(corpus, settings, OutputMemo(out), store=writer, workers=os.cpu_count() or 1,
                                   kept=kept)
                for note in site.notes:
                    click.echo(f"warning: {note}", err=True)
                report = writer.finish(site)
            summary = _summary(site)
            if record is not None:
                record.save(inputs, summary, sorted(site.outputs))
            return _Built(summary, report, site)
    except (OutputError, OutputBusy) as exc:
        raise click.ClickException(printable(str(exc))) from None


def _summary(site: Site) -> Summary:
    corpus = site.corpus  # with any article no renderer could take among its problems
    return Summary(files=corpus.files, articles=len(corpus.articles), rejected=corpus.rejected,
                   warnings=sum(1 for p in corpus.problems if p.severity == "warning"), feeds=len(site.feeds),
                   outputs=len(site.outputs), problems=tuple(str(p) for p in corpus.problems), notes=site.notes)


@main.command()
@setting_options("seeds_dir", "cache_dir", "cache")
def check(**options: Any) -> None:
    """Validate the articles only: one line per problem; exit 1 when a file is rejected."""
    settings = _settings(options)
    loader = _loader(settings)
    try:
        corpus = _load(loader)
    finally:
        loader.close()
    _report(corpus)
    from .catalog.feeds import topic_slugs

    for note in topic_slugs(corpus.topics)[1]:
        click.echo(f"warning: {note}", err=True)
    click.echo(f"{corpus.files} files checked: {corpus.rejected} rejected, {len(corpus.problems)} problems.", err=True)
    if corpus.rejected:
        sys.exit(1)


@main.command()
@setting_options("seeds_dir", "site_url", "site_title", "max_items", "language", "max_age", "reload_interval",
                 "cache_dir", "cache", "websub_hub", "archives", "delta_feeds", "stale_while_revalidate",
                 "stale_if_error", "purge_url")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
def serve(host: str, port: int, **options: Any) -> None:
    """Serve the feeds with the development server (use gunicorn in production)."""
    from .web import create_app, for_development_server

    settings = _settings(options)
    try:
        app = create_app(settings=settings)
    except SeedsUnavailable as exc:
        raise click.UsageError(str(exc)) from None
    seeds = printable(str(settings.seeds_dir))
    click.echo(f"Serving {seeds} on http://{host}:{port}/ (feeds under /feeds/)", err=True)
    for_development_server(app).run(host=host, port=port, threaded=True)


@main.command("settings")
def show_settings() -> None:
    """List every setting with its environment variable, option and default."""
    for env, option, default, help_text in describe():
        click.echo(f"{env:<26} {option or '-':<18} {default:<24} {help_text}")


if __name__ == "__main__":
    main()

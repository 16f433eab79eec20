"""The reload thread: file-system events drive reloads; without events it falls back to scanning."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from feedpub.web import create_app
from feedpub.web import watcher as watcher_module

from .test_gunicorn import wait_for


def _edit(seeds: Path, marker: str) -> None:
    wired = next(p for p in seeds.iterdir() if "domain: wired.com" in p.read_text("utf-8"))
    wired.write_text(wired.read_text("utf-8").replace('title: "', f'title: "{marker}: ', 1), "utf-8")


def _titles(app) -> list[str]:  # type: ignore[no-untyped-def]
    return [item["title"] for item in app.test_client().get("/feeds/all.json").json["items"]]


def _events_available(tmp: Path) -> bool:
    """Whether this machine gives file-system events (inotify) to watchdog, as the server needs them."""
    from watchdog.observers import Observer

    observer = Observer()
    try:
        observer.schedule(watcher_module._Changed(), str(tmp), recursive=True)
        observer.start()
    except (OSError, RuntimeError):
        return False
    observer.stop()
    observer.join(5)
    return True


needs_events = pytest.mark.skipif(not _events_available(Path(__file__).parent),
                                  reason="no file-system events (inotify) here: the server polls instead")


def _start(app) -> None:  # type: ignore[no-untyped-def]
    """The first request starts the reload thread of the process."""
    _titles(app)


@needs_events
def test_events_trigger_a_reload_without_full_scans(seeds: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watcher_module, "FULL_SCAN_EVERY", 3600.0)  # only an event can cause the reload
    app = create_app({"seeds_dir": str(seeds), "reload_interval": 0.1})
    _start(app)
    time.sleep(0.3)  # the observer is watching
    _edit(seeds, "Evented")
    wait_for(lambda: any(t.startswith("Evented:") for t in _titles(app)), 10, "an event-driven reload")


def test_first_request_of_a_process_sees_changes_made_since_the_app_was_built(seeds: Path) -> None:
    # A gunicorn worker (or a --preload fork) may build its snapshot long before its first
    # request; that request must not be answered from the old files.
    app = create_app({"seeds_dir": str(seeds), "reload_interval": 30})
    _edit(seeds, "Meanwhile")
    assert any(t.startswith("Meanwhile:") for t in _titles(app))


def test_without_events_every_tick_scans(seeds: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watcher_module, "_observe", lambda root, flag: None)
    app = create_app({"seeds_dir": str(seeds), "reload_interval": 0.1})
    _start(app)
    _edit(seeds, "Polled")
    wait_for(lambda: any(t.startswith("Polled:") for t in _titles(app)), 10, "a polling reload")


@needs_events
def test_idle_ticks_do_not_scan(seeds: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watcher_module, "FULL_SCAN_EVERY", 3600.0)
    app = create_app({"seeds_dir": str(seeds), "reload_interval": 0.05})
    feed_state = app.extensions["feedpub"]
    _start(app)
    time.sleep(0.3)
    calls = []
    monkeypatch.setattr(feed_state.loader, "scan", lambda: calls.append(1) or {})
    time.sleep(0.5)  # ten quiet ticks
    assert calls == []


@needs_events
@pytest.mark.parametrize("linked", [False, True], ids=["directory", "symlink"])
def test_events_reload_only_the_files_they_name(seeds: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                linked: bool) -> None:
    monkeypatch.setattr(watcher_module, "FULL_SCAN_EVERY", 3600.0)
    served = seeds
    if linked:  # a deploy's "current" link: events come from the directory it leads to
        served = tmp_path / "current"
        served.symlink_to(seeds, target_is_directory=True)
    app = create_app({"seeds_dir": str(served), "reload_interval": 5.0})  # events, not ticks, must drive it
    feed_state = app.extensions["feedpub"]
    _start(app)
    time.sleep(0.3)
    _edit(seeds, "Warm")  # the watcher's first round scans everything, whatever woke it
    wait_for(lambda: any(t.startswith("Warm:") for t in _titles(app)), 6, "the first reload")
    scans: list[int] = []
    real_scan = feed_state.loader.scan
    monkeypatch.setattr(feed_state.loader, "scan", lambda: scans.append(1) or real_scan())
    started = time.monotonic()
    _edit(seeds, "Named")
    wait_for(lambda: any(t.startswith("Named:") for t in _titles(app)), 4, "a reload well within the interval")
    assert time.monotonic() - started < 4
    copy = seeds / "sub" / "copy.md"
    copy.parent.mkdir()
    wired = next(p for p in seeds.iterdir() if p.is_file() and "domain: wired.com" in p.read_text("utf-8"))
    text = wired.read_text("utf-8").replace("https://www.wired.com/", "https://www.wired.com/copy/")
    copy.write_text(text.replace('title: "Named: ', 'title: "Copied: ', 1), "utf-8")
    wait_for(lambda: any(t.startswith("Copied:") for t in _titles(app)), 4, "a new file in a new directory")
    copy.unlink()
    wait_for(lambda: not any(t.startswith("Copied:") for t in _titles(app)), 4, "a deleted file")
    assert feed_state._stamp == real_scan()  # what the events told it is what a full scan finds
    assert len(scans) <= 1  # a new directory may ask for one full scan; the edits and the delete never do


def test_rescan_follows_the_rules_of_a_full_scan(tmp_path: Path) -> None:
    from feedpub.ingest.scan import rescan, scan

    root = tmp_path / "seeds"
    (root / "a").mkdir(parents=True)
    (root / ".hidden").mkdir()
    for name in ("a/one.md", "two.txt", "gone.md"):
        (root / name).write_text("---\ntitle: x\n---\n")
    before = scan(root)
    outside = tmp_path / "outside.md"
    outside.write_text("---\ntitle: out\n---\n")
    changes = {
        "a/one.md": lambda p: p.write_text("---\ntitle: longer now\n---\n"),
        "a/new.markdown": lambda p: p.write_text("---\ntitle: new\n---\n"),
        "gone.md": lambda p: p.unlink(),
        ".hidden/secret.md": lambda p: p.write_text("---\n---\n"),
        ".dot.md": lambda p: p.write_text("---\n---\n"),
        "notes.rst": lambda p: p.write_text("not an article"),
        "link-out.md": lambda p: p.symlink_to(outside),
        "link-in.md": lambda p: p.symlink_to(root / "two.txt"),
        "a/dir.md": lambda p: p.mkdir(),
    }
    for name, change in changes.items():
        change(root / name)
    paths = [str(root / name) for name in changes] + [str(outside), str(tmp_path / "elsewhere.md")]
    after = rescan(root, before, paths)
    assert after == scan(root)
    assert list(after) == sorted(after)
    assert set(after) == {"a/new.markdown", "a/one.md", "link-in.md", "two.txt"}


def test_the_reload_thread_settles_the_heap_after_each_render_of_its_own(seeds: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The corpus and site a render left alive are frozen for the collector (see feedpub.web.heap);
    a round that found nothing to render leaves the heap as it is."""
    settled: list[int] = []

    class Recording:
        def settle(self, articles: int) -> None:
            settled.append(articles)

    monkeypatch.setattr(watcher_module, "_observe", lambda root, flag: None)  # every tick scans
    monkeypatch.setattr(watcher_module, "HEAP", Recording())
    app = create_app({"seeds_dir": str(seeds), "reload_interval": 0.05, "one_builder": False})
    _start(app)
    articles = len(app.extensions["feedpub"].site.corpus.articles)
    wait_for(lambda: settled == [articles], 5, "the first round's settle")
    time.sleep(0.3)  # quiet ticks: nothing rendered
    assert settled == [articles]
    _edit(seeds, "Settled")
    wait_for(lambda: len(settled) == 2, 5, "a settle after the reload")
    assert any(t.startswith("Settled:") for t in _titles(app)) and settled == [articles, articles]

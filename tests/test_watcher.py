"""The reload thread: file-system events drive reloads; without events it falls back to scanning."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from feedpub.web import create_app, state as state_module

from .test_gunicorn import wait_for


def _edit(seeds: Path, marker: str) -> None:
    wired = next(p for p in seeds.iterdir() if "domain: wired.com" in p.read_text("utf-8"))
    wired.write_text(wired.read_text("utf-8").replace('title: "', f'title: "{marker}: ', 1), "utf-8")


def _titles(app) -> list[str]:  # type: ignore[no-untyped-def]
    return [item["title"] for item in app.test_client().get("/feeds/all.json").json["items"]]


def _start(app) -> None:  # type: ignore[no-untyped-def]
    """The first request starts the reload thread of the process."""
    _titles(app)


def test_events_trigger_a_reload_without_full_scans(seeds: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state_module, "FULL_SCAN_EVERY", 3600.0)  # only an event can cause the reload
    app = create_app({"seeds_dir": str(seeds), "reload_interval": 0.1})
    _start(app)
    time.sleep(0.3)  # the observer is watching
    _edit(seeds, "Evented")
    wait_for(lambda: any(t.startswith("Evented:") for t in _titles(app)), 10, "an event-driven reload")


def test_without_events_every_tick_scans(seeds: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state_module, "_observe", lambda root, flag: None)
    app = create_app({"seeds_dir": str(seeds), "reload_interval": 0.1})
    _start(app)
    _edit(seeds, "Polled")
    wait_for(lambda: any(t.startswith("Polled:") for t in _titles(app)), 10, "a polling reload")


def test_idle_ticks_do_not_scan(seeds: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state_module, "FULL_SCAN_EVERY", 3600.0)
    app = create_app({"seeds_dir": str(seeds), "reload_interval": 0.05})
    feed_state = app.extensions["feedpub"]
    _start(app)
    time.sleep(0.3)
    calls = []
    monkeypatch.setattr(feed_state.loader, "scan", lambda: calls.append(1) or {})
    time.sleep(0.5)  # ten quiet ticks
    assert calls == []

"""Fixtures for every test: the Flask trio (app, client, runner), the corpora on disk, Hypothesis profiles."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, settings

from feedpub.web import create_app

from .readers_support import FIXTURE_CORPUS, generated_corpus

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
SITE_URL = "http://feeds.example.test"

# Hypothesis: the same examples on every run (plain pytest, `make test`, CI), so a pass can be reproduced
# and a failure is not a coin toss; `make fuzz` (profile "fuzz"; or HYPOTHESIS_PROFILE=fuzz) searches
# widely for new failures, each of which becomes an @example. Nothing timing-based may fail a run on a
# slow, busy machine (no deadline, no too_slow). `--hypothesis-profile NAME` still wins: Hypothesis'
# plugin applies it after this file is loaded.
_STEADY = settings(database=None, print_blob=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("deterministic", _STEADY, derandomize=True)
settings.register_profile("fuzz", _STEADY, derandomize=False, max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or "deterministic")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tests never see the developer's FEEDPUB_* settings nor touch their parse cache."""
    for name in list(os.environ):
        if name.startswith("FEEDPUB_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))


@pytest.fixture
def seeds(tmp_path: Path) -> Path:
    """A private copy of the bundled seeds that a test may change."""
    target = tmp_path / "seeds"
    shutil.copytree(SEEDS, target)
    return target


@pytest.fixture
def corpus_dir() -> Path:
    """The handwritten fixture corpus (read only: copy it before changing anything)."""
    return FIXTURE_CORPUS


@pytest.fixture(scope="session")
def generated_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few hundred articles from the project's deterministic generator, for tests that need volume."""
    return generated_corpus(tmp_path_factory.mktemp("generated"))


@pytest.fixture
def write_article(tmp_path: Path) -> Callable[..., Path]:
    """Write an article file from front-matter text into a fresh seeds directory."""
    root = tmp_path / "articles"
    root.mkdir(exist_ok=True)

    def write(name: str, front: str | bytes, *, raw: bool = False) -> Path:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(front, bytes):
            path.write_bytes(front)
        else:
            path.write_text(front if raw else f"---\n{front.strip()}\n---\n", encoding="utf-8")
        return path

    write.root = root  # type: ignore[attr-defined]
    return write


@pytest.fixture
def app(seeds: Path) -> Flask:
    app = create_app({"TESTING": True, "seeds_dir": str(seeds), "site_url": SITE_URL})
    return app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()

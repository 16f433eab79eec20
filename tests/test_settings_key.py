"""The rendering key is derived from the settings' own declaration of what changes the output.

A static build keeps a feed's file when its fingerprint (the rendering key, the feed's identity and
its entries) is unchanged, so a setting that changes the bytes but is left out of the key would
leave stale files behind. These tests change each setting in turn and check the declaration
against both the key and the rendered bytes.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from feedpub.ingest.loader import load
from feedpub.model import Corpus
from feedpub.render.site import render_site, rendering_key
from feedpub.settings import Settings, SettingsError, setting_fields

# A small max_items, so the fixture corpus has feeds beyond it and therefore archives: otherwise
# every feed is RFC 5005 complete and `archives` would change no byte.
BASE = Settings(max_items=3, cache_dir=Path("cache"))
# Tried in order; the first the setting's own parser accepts and that differs from the default is used.
TEXTS = ("changed", "https://changed.example.test")


def changed_value(spec: dataclasses.Field[Any]) -> Any:
    """A valid value other than the default, made by the setting's parser from text of its type."""
    default = getattr(BASE, spec.name)
    parse = spec.metadata["parse"]
    if isinstance(default, bool):
        texts: tuple[str, ...] = (str(not default),)
    elif isinstance(default, (int, float)):
        texts = ("1", "2")  # max_items=1 trims every feed of two entries or more; max_age=1 is a 1-minute ttl
    elif isinstance(default, (str, Path)):
        texts = TEXTS
    else:
        pytest.fail(f"{spec.name}: teach changed_value to change a {type(default).__name__} setting")
    for text in texts:
        try:
            value = parse(text)
        except SettingsError:
            continue
        if value != default:
            return value
    pytest.fail(f"{spec.name}: none of {texts} is a valid value other than the default")


SETTINGS = [pytest.param(spec, id=spec.name) for spec in setting_fields()]


@pytest.fixture(scope="module", autouse=True)
def _in_a_temporary_directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """BASE was made at import, before the test environment: its cache dir, and relative ones, land here."""
    here = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("settings-key"))
    try:
        yield
    finally:
        os.chdir(here)


def test_every_setting_says_whether_it_changes_the_output() -> None:
    # A field declared without _setting (or whose metadata loses the flag) would silently never be in the key.
    for spec in setting_fields():
        assert isinstance(spec.metadata.get("output"), bool), f"{spec.name}: no output=True/False in its declaration"


@pytest.mark.parametrize("spec", SETTINGS)
def test_a_setting_changes_the_key_exactly_when_declared_as_output(spec: dataclasses.Field[Any]) -> None:
    other = dataclasses.replace(BASE, **{spec.name: changed_value(spec)})
    assert (rendering_key(other) != rendering_key(BASE)) is spec.metadata["output"]


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    from .readers_support import FIXTURE_CORPUS

    return load(FIXTURE_CORPUS, BASE.max_file_bytes)


@pytest.fixture(scope="module")
def base_bodies(corpus: Corpus) -> dict[str, bytes]:
    return {name: output.body for name, output in render_site(corpus, BASE).outputs.items()}


@pytest.mark.parametrize("spec", SETTINGS)
def test_a_setting_changes_the_bytes_exactly_when_declared_as_output(
    spec: dataclasses.Field[Any], corpus: Corpus, base_bodies: dict[str, bytes]
) -> None:
    # The declaration must be true, not just consistent with the key: an output setting marked
    # output=False would pass the key test above and still leave stale files.
    other = dataclasses.replace(BASE, **{spec.name: changed_value(spec)})
    bodies = {name: output.body for name, output in render_site(corpus, other).outputs.items()}
    assert (bodies != base_bodies) is spec.metadata["output"]

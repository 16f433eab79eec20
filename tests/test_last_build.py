"""A build with nothing to do answers from the last build's record, and only then."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from feedpub.ingest.loader import CorpusLoader
from feedpub.last_build import RECORDS
from feedpub.render import site as site_module

from .readers_support import clean_environ
from .test_cli import SITE_URL, WIRED_SEED, build, snapshot

BROKEN = "zz_broken.md"


def _summary(result: Result) -> str:
    return result.stdout.strip().splitlines()[-1]


def _problems(result: Result) -> list[str]:
    return result.stderr.splitlines()


@pytest.fixture
def forbid_loading(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """After this is called, loading or rendering fails the build: only the record may answer it."""

    def forbid() -> None:
        def refuse(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("a build with nothing to do loaded or rendered")

        monkeypatch.setattr(CorpusLoader, "load", refuse)
        monkeypatch.setattr(site_module, "render_site", refuse)  # what the build imports when it renders

    return forbid


def _with_a_broken_file(seeds: Path) -> Path:
    (seeds / BROKEN).write_text("---\ntitle: [unclosed\n---\n", "utf-8")
    return seeds


def test_nothing_changed_says_what_the_last_build_said_without_loading(
        runner: CliRunner, seeds: Path, tmp_path: Path, forbid_loading: Callable[[], None]) -> None:
    seeds, out = _with_a_broken_file(seeds), tmp_path / "out"
    first = build(runner, seeds, out, "--site-url", SITE_URL, "--strict")
    assert first.exit_code == 1 and BROKEN in first.stderr
    full = build(runner, seeds, out, "--site-url", SITE_URL, "--strict", "--no-cache")  # loads: no record used
    before = snapshot(out)
    forbid_loading()
    quick = build(runner, seeds, out, "--site-url", SITE_URL, "--strict")
    assert quick.exit_code == 1  # --strict still sees the rejected file
    assert _problems(quick) == _problems(full) and any(BROKEN in line for line in _problems(quick))
    assert _summary(quick) == _summary(full)
    assert " (0 rendered): 0 files written, " in _summary(quick) and " 0 removed." in _summary(quick)
    assert snapshot(out) == before  # not a byte, inode or mtime touched


def _edit_an_article(seeds: Path, out: Path) -> None:
    path = seeds / WIRED_SEED
    path.write_text(path.read_text("utf-8").replace('title: "', 'title: "Edited: ', 1), "utf-8")


def _add_an_article(seeds: Path, out: Path) -> None:
    shutil.copy(seeds / WIRED_SEED, seeds / "zz_copy.txt")


def _remove_an_article(seeds: Path, out: Path) -> None:
    (seeds / WIRED_SEED).unlink()


def _damage_an_output(seeds: Path, out: Path) -> None:
    (out / "all.xml").write_bytes(b"<rss>damaged by hand</rss>")


def _delete_an_output(seeds: Path, out: Path) -> None:
    (out / "all.json").unlink()


def _touch_an_output(seeds: Path, out: Path) -> None:
    target = out / "all.atom"
    target.touch()  # same bytes, another mtime: a plain web server's Last-Modified and ETag would move


@pytest.mark.parametrize("change", [_edit_an_article, _add_an_article, _remove_an_article, _damage_an_output,
                                    _delete_an_output, _touch_an_output])
def test_any_change_to_the_inputs_or_the_outputs_makes_a_real_build(
        runner: CliRunner, seeds: Path, tmp_path: Path, change: Callable[[Path, Path], None]) -> None:
    out = tmp_path / "out"
    assert build(runner, seeds, out, "--site-url", SITE_URL).exit_code == 0
    before = {name: mtime for name, (_, mtime, _) in snapshot(out).items() if not name.startswith(".")}
    change(seeds, out)
    assert build(runner, seeds, out, "--site-url", SITE_URL).exit_code == 0
    # What a build from nothing makes of the same seeds, elsewhere, with its own cache.
    fresh = tmp_path / "fresh"
    result = build(runner, seeds, fresh, "--site-url", SITE_URL, "--cache-dir", str(tmp_path / "fresh-cache"))
    assert result.exit_code == 0
    ours = {name: item for name, item in snapshot(out).items() if not name.startswith(".")}
    theirs = {name: item for name, item in snapshot(fresh).items() if not name.startswith(".")}
    assert {name: body for name, (_, _, body) in ours.items()} == {name: body for name, (_, _, body) in theirs.items()}
    if change in (_damage_an_output, _delete_an_output, _touch_an_output):  # the same bytes: dated as before
        assert {name: mtime for name, (_, mtime, _) in ours.items()} == before


def test_a_different_setting_makes_a_real_build(runner: CliRunner, seeds: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert build(runner, seeds, out, "--site-url", SITE_URL).exit_code == 0
    result = build(runner, seeds, out, "--site-url", SITE_URL, "--site-title", "Another title")
    assert result.exit_code == 0 and " 0 files written" not in result.stdout
    assert json.loads((out / "index.json").read_text("utf-8"))["title"] == "Another title"


def test_without_the_parse_cache_no_record_is_kept_or_used(runner: CliRunner, seeds: Path, tmp_path: Path,
                                                           forbid_loading: Callable[[], None]) -> None:
    out, cache = tmp_path / "out", tmp_path / "cache"
    for _ in range(2):
        assert build(runner, seeds, out, "--cache-dir", str(cache), "--no-cache").exit_code == 0
    assert not (cache / RECORDS).exists()
    forbid_loading()
    with pytest.raises(AssertionError, match="nothing to do loaded"):
        build(runner, seeds, out, "--cache-dir", str(cache), "--no-cache")


def test_a_damaged_record_means_a_real_build(runner: CliRunner, seeds: Path, tmp_path: Path) -> None:
    out, cache = tmp_path / "out", tmp_path / "cache"
    assert build(runner, seeds, out, "--cache-dir", str(cache)).exit_code == 0
    [record] = (cache / RECORDS).iterdir()
    record.write_text('{"inputs": ', "utf-8")
    result = build(runner, seeds, out, "--cache-dir", str(cache))
    assert result.exit_code == 0 and " 0 files written" in result.stdout
    assert json.loads(record.read_text("utf-8"))["inputs"]  # written again whole


def test_a_build_with_nothing_to_do_imports_no_renderer(seeds: Path, tmp_path: Path) -> None:
    # Importing feedgen, lxml and Jinja was a third of such a build's time.
    args = ["build", "--seeds", str(seeds), "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache")]
    code = ("import sys\nfrom feedpub.cli import main\nmain.main(sys.argv[1:], standalone_mode=False)\n"
            "print(sorted(m for m in ('feedgen', 'jinja2', 'feedpub.render.site') if m in sys.modules))")
    runs = [subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True,
                           env=clean_environ()) for _ in range(2)]
    assert runs[0].stdout.splitlines()[-1] == "['feedgen', 'feedpub.render.site', 'jinja2']"  # it rendered
    assert runs[1].stdout.splitlines()[-1] == "[]" and " 0 files written" in runs[1].stdout

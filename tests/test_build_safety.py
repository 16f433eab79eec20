"""``feedpub build`` against other builds and a hostile output directory: one line, exit 1, old output intact."""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

import pytest
import yaml
from click.testing import CliRunner, Result

from feedpub import static_tree as build_module
from feedpub import tree_writer
from feedpub.cli import main
from feedpub.render.formats import FORMATS

from .readers_support import clean_environ


def make_seeds(root: Path, count: int) -> Path:
    """``count`` articles over several topics, providers and months: many outputs, in several directories."""
    root.mkdir(parents=True, exist_ok=True)
    for n in range(count):
        domain = f"p{n % 23}.example"
        data = {"title": f"Article {n}", "webUrl": f"https://{domain}/a{n}",
                "publishedDateTime": f"2020-{1 + n % 6:02d}-{1 + n % 27:02d}T10:00:00Z",
                "provider": {"name": domain, "domain": domain}, "topics": [f"Topic {n % 41}", f"Theme {n % 37}"]}
        (root / f"a{n:04d}.md").write_text("---\n" + yaml.safe_dump(data, sort_keys=False) + "---\n", "utf-8")
    return root


def invoke(seeds: Path, out: Path, *extra: str) -> Result:
    return CliRunner().invoke(main, ["build", "--seeds", str(seeds), "--out", str(out), "--no-cache", *extra])


def tree(out: Path) -> dict[str, bytes]:
    """Every file under ``out`` but the manifest, by name."""
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name != ".feedpub-manifest.json"}


def dated_tree(out: Path) -> dict[str, tuple[int, bytes]]:
    return {p.relative_to(out).as_posix(): (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(out.rglob("*"))
            if p.is_file() and p.name != ".feedpub-manifest.json"}


# -- concurrent builds -------------------------------------------------------------------------------------


# ``feedpub build`` in a process of its own whose renames take a millisecond, as on a busy disk: each
# temporary file then lives long enough for another build's clean-up to find it, every time.
SLOW_DISK_BUILD = """
import os, sys, time
rename = os.replace
os.replace = lambda src, dst: (time.sleep(0.001), rename(src, dst))[1]
from feedpub.cli import main
sys.exit(main())
"""


def test_concurrent_builds_into_one_directory_take_turns(tmp_path: Path) -> None:
    seeds = make_seeds(tmp_path / "seeds", 300)
    out = tmp_path / "out"
    env = clean_environ(XDG_CACHE_HOME=str(tmp_path / "cache"))
    command = [sys.executable, "-c", SLOW_DISK_BUILD, "build", "--seeds", str(seeds), "--out", str(out), "--no-cache"]
    builds = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
    for process in builds:
        stdout, stderr = process.communicate(timeout=120)
        assert process.returncode == 0 and b"Traceback" not in stderr, stderr.decode()
        assert b"files written" in stdout
    fresh = tmp_path / "fresh"
    assert invoke(seeds, fresh).exit_code == 0
    assert tree(out) == tree(fresh)  # complete, and nothing left over (no temporary files)
    assert invoke(seeds, out).stdout.endswith(f"0 files written, {len(tree(fresh))} unchanged, 0 removed.\n")


@contextmanager
def holding_the_lock(out: Path) -> Iterator[None]:
    """Hold the output directory's build lock as another build would (its own open file, its own flock)."""
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def test_a_build_waits_for_the_one_holding_the_directory(tmp_path: Path) -> None:
    seeds = make_seeds(tmp_path / "seeds", 12)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "feedpub", "build", "--seeds", str(seeds), "--out", str(out), "--no-cache"]
    with holding_the_lock(out):
        waiting = subprocess.Popen(command, env=clean_environ(XDG_CACHE_HOME=str(tmp_path / "cache")),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(2)
        assert waiting.poll() is None and not (out / "all.xml").exists()
    _, stderr = waiting.communicate(timeout=60)
    assert waiting.returncode == 0
    assert f"waiting for another build writing {out}" in stderr.decode()
    assert (out / "all.xml").is_file()


def test_a_lock_held_too_long_is_one_line_and_exit_1(tmp_path: Path) -> None:
    seeds = make_seeds(tmp_path / "seeds", 12)
    out = tmp_path / "out"
    with holding_the_lock(out):
        result = invoke(seeds, out, "--lock-wait", "0.3")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"waiting for another build writing {out}",
        f"Error: another feedpub build is writing to {out}; gave up waiting after 0.3 s",
    ]
    assert list(out.iterdir()) == []


# -- an output directory that cannot be written ------------------------------------------------------------


def test_an_output_path_under_a_file_is_one_line(tmp_path: Path) -> None:
    seeds = make_seeds(tmp_path / "seeds", 12)
    blocker = tmp_path / "plain-file"
    blocker.write_text("not a directory")
    result = invoke(seeds, blocker / "out")
    assert result.exit_code == 1
    assert result.stderr == f"Error: cannot write {blocker / 'out'}: Not a directory\n"


def test_a_subdirectory_that_cannot_be_made_is_one_line_and_keeps_the_rest(tmp_path: Path) -> None:
    seeds = make_seeds(tmp_path / "seeds", 12)
    out = tmp_path / "out"
    out.mkdir()
    (out / "providers").write_text("a file where the build needs a directory")
    result = invoke(seeds, out)
    assert result.exit_code == 1
    assert re.fullmatch(rf"Error: cannot write {re.escape(str(out.resolve()))}/providers/[a-z0-9.]+\.\w+: "
                        r"(File exists|Not a directory)\n", result.stderr), result.stderr
    assert (out / "providers").read_text() == "a file where the build needs a directory"


def test_permission_denied_names_the_file_and_keeps_the_previous_output(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seeds = make_seeds(tmp_path / "seeds", 12)
    out = tmp_path / "out"
    assert invoke(seeds, out).exit_code == 0
    before = dated_tree(out)
    make_seeds(tmp_path / "seeds", 13)  # one more article: most outputs change
    real_mkstemp = build_module.tempfile.mkstemp

    def refused(*args: Any, **kwargs: Any) -> tuple[int, str]:
        if kwargs.get("prefix") != f".{build_module.MANIFEST}.":
            raise PermissionError(errno.EACCES, "Permission denied", f"{kwargs['dir']}/.x.feedpub-tmp")
        return real_mkstemp(*args, **kwargs)

    monkeypatch.setattr(build_module.tempfile, "mkstemp", refused)
    result = invoke(seeds, out)
    assert result.exit_code == 1
    assert re.fullmatch(rf"Error: cannot write {re.escape(str(out.resolve()))}/\S+: Permission denied\n",
                        result.stderr), result.stderr
    assert dated_tree(out) == before


def test_a_full_disk_is_one_line_leaves_no_debris_and_the_next_build_completes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seeds = make_seeds(tmp_path / "seeds", 12)
    out = tmp_path / "out"
    assert invoke(seeds, out).exit_code == 0
    before = dated_tree(out)
    make_seeds(tmp_path / "seeds", 13)
    real_fdopen = os.fdopen
    written: list[str] = []

    class Full:
        """A file on a full disk: the first feed written after the manifest fails, as write(2) would."""

        def __init__(self, handle: Any) -> None:
            self.handle = handle

        def __enter__(self) -> Self:
            return self

        def __exit__(self, *exc: object) -> None:
            self.handle.close()

        def write(self, data: bytes) -> int:
            written.append(os.readlink(f"/proc/self/fd/{self.handle.fileno()}"))
            if build_module.MANIFEST not in written[-1] and len(written) > 2:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return int(self.handle.write(data))

    monkeypatch.setattr(build_module.os, "fdopen", lambda fd, mode: Full(real_fdopen(fd, mode)))
    result = invoke(seeds, out)
    monkeypatch.undo()
    assert result.exit_code == 1
    assert re.fullmatch(rf"Error: cannot write {re.escape(str(out.resolve()))}/\S+: No space left on device\n",
                        result.stderr), result.stderr
    after = dated_tree(out)
    assert set(after) == set(before)  # no temporary file left behind, nothing half-written
    assert sum(after[name] != before[name] for name in before) == 1  # one feed replaced whole before the failure
    assert invoke(seeds, out).exit_code == 0
    fresh = tmp_path / "fresh"
    assert invoke(seeds, fresh).exit_code == 0
    assert tree(out) == tree(fresh)


# -- written as rendered ---------------------------------------------------------------------------------


def _spying_on(monkeypatch: pytest.MonkeyPatch, name: str, spy: Any) -> None:
    """Run ``spy(draft)`` before each render of format ``name``."""
    fmt = FORMATS[name]

    def render(draft: Any, fmt: Any) -> bytes:
        spy(draft)
        return untimed(draft, fmt)

    untimed = fmt.render
    monkeypatch.setitem(FORMATS, name, dataclasses.replace(fmt, render=render))


def test_outputs_are_written_while_the_site_is_rendered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # What keeps a build's memory from growing with its output: no output waits for the whole render.
    seeds, out = make_seeds(tmp_path / "seeds", 60), tmp_path / "out"
    monkeypatch.setattr(tree_writer, "BATCH_BYTES", 1)
    on_disk: list[int] = []
    _spying_on(monkeypatch, "html", lambda draft: on_disk.append(sum(1 for p in out.rglob("*.xml"))))
    held: list[int] = []
    finish = tree_writer.TreeWriter.finish
    monkeypatch.setattr(tree_writer.TreeWriter, "finish", lambda self, site: (
        held.append(sum(len(o.body or b"") for o in site.outputs.values())), finish(self, site))[1])
    assert invoke(seeds, out).exit_code == 0
    # When the n-th feed's page is made, the RSS of that feed and of every one before it is on disk.
    assert on_disk and all(seen >= n for n, seen in enumerate(on_disk, 1))
    assert held == [0]  # the rendered site keeps no output's bytes
    fresh = tmp_path / "fresh"
    monkeypatch.undo()
    assert invoke(seeds, fresh).exit_code == 0
    assert tree(out) == tree(fresh)


def test_a_build_killed_while_writing_leaves_every_file_listed_and_the_next_build_finishes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seeds, out = make_seeds(tmp_path / "seeds", 30), tmp_path / "out"
    assert invoke(seeds, out).exit_code == 0
    make_seeds(tmp_path / "seeds", 45)  # new feeds and new bytes for old ones
    monkeypatch.setattr(tree_writer, "BATCH_BYTES", 1)
    renders: list[str] = []

    def killed(draft: Any) -> None:
        renders.append(draft.feed.spec.path)
        if len(renders) == 40:
            raise KeyboardInterrupt  # as a build stopped by ^C or a kill: nothing after it runs

    _spying_on(monkeypatch, "json", killed)
    assert invoke(seeds, out).exit_code != 0
    monkeypatch.undo()
    manifest = json.loads((out / build_module.MANIFEST).read_text("utf-8"))
    assert "feeds" not in manifest  # no fingerprints: the next build looks at everything again
    journal = [json.loads(line)[0] for line in (out / build_module.JOURNAL).read_text("utf-8").splitlines()]
    assert len(journal) > 1 and not set(journal) & set(manifest["files"])  # new names, each listed once
    # Every file written so far is one the next build may remove.
    assert set(tree(out)) - {build_module.JOURNAL} <= set(manifest["files"]) | set(journal)
    assert invoke(seeds, out).exit_code == 0
    fresh = tmp_path / "fresh"
    assert invoke(seeds, fresh).exit_code == 0
    assert dated_tree(out).keys() == dated_tree(fresh).keys() and tree(out) == tree(fresh)  # no journal left

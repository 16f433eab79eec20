"""The ``feedpub`` command: exit codes, summaries, atomic and incremental writes, settings."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from lxml import etree

from feedpub.cli import main

SITE_URL = "http://feeds.example.test"
NS = {"atom": "http://www.w3.org/2005/Atom"}
THENEXTWEB_SEED = "000_cea38546ddfede18.txt"
WIRED_SEED = "002_882eb17234bc9889.txt"
WriteArticle = Callable[..., Path]

Snapshot = dict[str, tuple[int, int, bytes]]


def run(runner: CliRunner, *args: str, env: dict[str, str] | None = None) -> Result:
    return runner.invoke(main, list(args), env=env, catch_exceptions=False)


def build(runner: CliRunner, seeds: Path, out: Path, *extra: str, env: dict[str, str] | None = None) -> Result:
    return run(runner, "build", "--seeds", str(seeds), "--out", str(out), *extra, env=env)


def snapshot(out: Path) -> Snapshot:
    """Every file under ``out``: inode, mtime (ns) and bytes."""
    files = {}
    for path in sorted(out.rglob("*")):
        if path.is_file():
            info = path.stat()
            files[path.relative_to(out).as_posix()] = (info.st_ino, info.st_mtime_ns, path.read_bytes())
    return files


def summary_counts(output: str) -> dict[str, int]:
    match = re.search(r"(\d+) files written, (\d+) unchanged, (\d+) removed", output)
    assert match, output
    written, unchanged, removed = map(int, match.groups())
    return {"written": written, "unchanged": unchanged, "removed": removed}


def article(title: str, url: str, **fields: Any) -> str:
    data = {"title": title, "webUrl": url, "publishedDateTime": "2020-01-01T00:00:00Z",
            "provider": {"name": "Example", "domain": "example.com"}, **fields}
    return yaml.safe_dump(data, sort_keys=False)


def add_file(seeds: Path, name: str, front: str | bytes) -> Path:
    path = seeds / name
    if isinstance(front, bytes):
        path.write_bytes(front)
    else:
        path.write_text(f"---\n{front}---\n", encoding="utf-8")
    return path


def problem_lines(text: str, root: Path) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(root.as_posix() + "/")]


def index_of(out: Path) -> dict[str, Any]:
    document = json.loads((out / "index.json").read_text("utf-8"))
    assert isinstance(document, dict)
    return document


def leftovers(out: Path) -> list[str]:
    return [p.name for p in out.rglob("*")
            if p.is_file() and p.name.startswith(".") and p.name != ".feedpub-manifest.json"]


# -- build -------------------------------------------------------------------------------------------


def test_build_writes_the_tree_and_prints_a_summary(runner: CliRunner, seeds: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = build(runner, seeds, out, "--site-url", SITE_URL)
    assert result.exit_code == 0, result.output
    feeds = index_of(out)["feeds"]
    assert len(feeds) == 10  # all + 4 topics + 5 providers
    for entry in feeds:
        for url in entry["urls"].values():
            assert (out / url.removeprefix(f"{SITE_URL}/feeds/")).is_file()
    assert (out / "index.opml").is_file()
    # Each feed also has a readable page, and the front page lists them all.
    for entry in feeds:
        page = f"topics/{entry['slug']}.html" if entry["kind"] == "topic" else \
            entry["urls"]["rss"].removeprefix(f"{SITE_URL}/feeds/").removesuffix(".xml") + ".html"
        assert (out / page).is_file(), page
    assert (out / "index.html").is_file()
    assert "5 files: 2 published articles, 0 rejected, 0 warnings." in result.stdout
    assert f"10 feeds in {out}/" in result.stdout
    # 10 feeds x (RSS, Atom, JSON Feed, page) + index.json, index.opml, index.html
    assert summary_counts(result.stdout) == {"written": 43, "unchanged": 0, "removed": 0}
    assert result.stderr == ""


def test_build_reports_problems_and_still_publishes(runner: CliRunner, seeds: Path, tmp_path: Path) -> None:
    add_file(seeds, "broken.md", b"no front matter here\n")
    add_file(seeds, "warned.md", article("Warned", "https://example.com/w", topics="Single"))
    out = tmp_path / "out"
    result = build(runner, seeds, out)
    assert result.exit_code == 0
    assert "7 files: 3 published articles, 1 rejected, 1 warnings." in result.stdout
    lines = problem_lines(result.stderr, seeds)
    assert len(lines) == 2
    assert any("broken.md:1: error: no YAML front matter" in line for line in lines)
    assert any("warned.md" in line and ": warning: topics" in line for line in lines)
    assert "Warned" in (out / "single.xml").read_text("utf-8")


def test_strict_fails_on_a_rejected_file(runner: CliRunner, seeds: Path, tmp_path: Path) -> None:
    add_file(seeds, "bad-date.md", article("Plain date", "https://example.com/d", publishedDateTime="2021-01-01"))
    result = build(runner, seeds, tmp_path / "out", "--strict")
    assert result.exit_code == 1
    assert "publishedDateTime" in result.stderr
    assert "1 rejected" in result.stdout
    assert (tmp_path / "out" / "all.xml").is_file()  # the good articles are still published


def test_strict_passes_with_warnings_only(runner: CliRunner, seeds: Path, tmp_path: Path) -> None:
    add_file(seeds, "warned.md", article("Warned", "https://example.com/w", topics="Single",
                                         featuredContent="<p onclick='x()'>Hi</p><script>alert(1)</script>"))
    result = build(runner, seeds, tmp_path / "out", "--strict")
    assert result.exit_code == 0, result.output
    assert len(problem_lines(result.stderr, seeds)) >= 2
    assert "0 rejected" in result.stdout


@pytest.mark.parametrize("command", ["build", "check"])
def test_missing_seeds_directory_is_a_usage_error(runner: CliRunner, tmp_path: Path, command: str) -> None:
    missing = tmp_path / "nowhere"
    out = tmp_path / "out"
    args = [command, "--seeds", str(missing)] + (["--out", str(out)] if command == "build" else [])
    result = run(runner, *args)
    assert result.exit_code == 2
    assert "missing or unreadable" in result.stderr
    assert not out.exists()


def test_seeds_path_that_is_a_file_is_a_usage_error(runner: CliRunner, tmp_path: Path) -> None:
    not_a_dir = tmp_path / "seeds.md"
    not_a_dir.write_text("---\ntitle: x\n---\n")
    assert build(runner, not_a_dir, tmp_path / "out").exit_code == 2


def test_default_output_directory_is_feeds(runner: CliRunner, seeds: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    result = run(runner, "build", "--seeds", str(seeds))
    assert result.exit_code == 0, result.output
    assert (cwd / "feeds" / "ai.xml").is_file()
    assert (cwd / "feeds" / "providers" / "wired.com.xml").is_file()


# -- check -------------------------------------------------------------------------------------------


def test_check_clean_corpus(runner: CliRunner, seeds: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    result = run(runner, "check", "--seeds", str(seeds))
    assert os.listdir(cwd) == []  # check writes nothing
    assert result.exit_code == 0
    assert problem_lines(result.stderr, seeds) == []
    assert "5 files checked: 0 rejected, 0 problems." in result.stderr


def test_check_with_warnings_only_exits_0(runner: CliRunner, seeds: Path) -> None:
    add_file(seeds, "a.md", article("A", "https://example.com/a", topics="Single"))
    add_file(seeds, "b.md", article("B", "https://example.com/b", type="podcast"))
    result = run(runner, "check", "--seeds", str(seeds))
    assert result.exit_code == 0
    lines = problem_lines(result.stderr, seeds)
    assert len(lines) == 2
    assert all(": warning: " in line for line in lines)


def test_check_prints_one_line_per_problem_and_exits_1_on_rejection(runner: CliRunner, seeds: Path) -> None:
    add_file(seeds, "1-no-title.md", article("x", "https://example.com/1").replace("title: x\n", ""))
    add_file(seeds, "2-bad-yaml.md", "title: T\nexcerpt: x\n  bad: y\n")
    add_file(seeds, "3-warned.md", article("W", "https://example.com/3", topics="Single"))
    add_file(seeds, "4-dup.md", article("Dup", "https://example.com/3", publishedDateTime="2019-01-01T00:00:00Z"))
    result = run(runner, "check", "--seeds", str(seeds))
    assert result.exit_code == 1
    lines = problem_lines(result.stderr, seeds)
    assert len(lines) == 4
    by_file = {line.split(":", 1)[0].rsplit("/", 1)[1]: line for line in lines}
    assert set(by_file) == {"1-no-title.md", "2-bad-yaml.md", "3-warned.md", "4-dup.md"}
    assert ": error: title: missing" in by_file["1-no-title.md"]
    assert "2-bad-yaml.md:4: error: invalid YAML" in by_file["2-bad-yaml.md"]
    assert ": warning: topics" in by_file["3-warned.md"]
    assert ": warning: duplicate" in by_file["4-dup.md"]
    assert "9 files checked: 2 rejected, 4 problems." in result.stderr


# -- incremental, atomic writes --------------------------------------------------------------------------


def test_second_build_rewrites_nothing(runner: CliRunner, seeds: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = build(runner, seeds, out)
    before = snapshot(out)
    second = build(runner, seeds, out)
    assert second.exit_code == 0
    assert summary_counts(second.stdout) == {"written": 0, "unchanged": summary_counts(first.stdout)["written"],
                                             "removed": 0}
    assert snapshot(out) == before  # same inodes, mtimes and bytes, manifest included


def test_builds_are_byte_identical_after_a_clean_rebuild(runner: CliRunner, seeds: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build(runner, seeds, out)
    first = {name: data for name, (_, _, data) in snapshot(out).items()}
    for path in sorted(out.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    build(runner, seeds, out)
    assert {name: data for name, (_, _, data) in snapshot(out).items()} == first


def test_changed_file_is_replaced_by_rename_and_others_untouched(runner: CliRunner, seeds: Path,
                                                                  tmp_path: Path) -> None:
    out = tmp_path / "out"
    build(runner, seeds, out)
    before = snapshot(out)
    wired = seeds / WIRED_SEED
    wired.write_text(wired.read_text("utf-8").replace(
        'title: "Amazon Doubles Down', 'title: "Retitled: Amazon Doubles Down'), encoding="utf-8")
    result = build(runner, seeds, out)
    after = snapshot(out)
    changed = {name for name in before if before[name][2] != after[name][2]}
    assert "providers/wired.com.xml" in changed and "ai.atom" in changed
    assert "providers/thenextweb.com.xml" not in changed
    # The manifest records each feed's fingerprint, so it changes too; it is not a feed.
    assert summary_counts(result.stdout)["written"] == len(changed - {".feedpub-manifest.json"})
    for name in before:
        if name in changed:
            assert after[name][0] != before[name][0], name  # a new inode: renamed into place, not rewritten
            assert b"Retitled" in after[name][2] or name.startswith((".", "index"))
        else:
            assert after[name][:2] == before[name][:2], name
    assert leftovers(out) == []


def test_no_temporary_files_are_left_behind(runner: CliRunner, seeds: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build(runner, seeds, out)
    (seeds / THENEXTWEB_SEED).unlink()
    build(runner, seeds, out)
    assert leftovers(out) == []
    assert not [p for p in out.rglob("*") if re.search(r"tmp", p.name)]


def test_failed_write_leaves_the_old_file_whole(runner: CliRunner, seeds: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    build(runner, seeds, out)
    old = (out / "providers" / "wired.com.xml").read_bytes()
    wired = seeds / WIRED_SEED
    wired.write_text(wired.read_text("utf-8").replace("title: \"Amazon", "title: \"New Amazon", 1), encoding="utf-8")

    real_replace = os.replace

    def failing_replace(src: Any, dst: Any) -> None:
        if str(dst).endswith("wired.com.xml"):
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    result = runner.invoke(main, ["build", "--seeds", str(seeds), "--out", str(out)])
    assert result.exit_code == 1
    assert result.stderr == f"Error: cannot write {out.resolve()}/providers/wired.com.xml: No space left on device\n"
    assert (out / "providers" / "wired.com.xml").read_bytes() == old
    assert leftovers(out) == []

    monkeypatch.setattr(os, "replace", real_replace)
    assert build(runner, seeds, out).exit_code == 0
    assert b"New Amazon" in (out / "providers" / "wired.com.xml").read_bytes()


def test_file_mtimes_are_the_feeds_newest_entry(runner: CliRunner, seeds: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build(runner, seeds, out, "--site-url", SITE_URL)
    index = index_of(out)
    for feed in index["feeds"]:
        expected = int(datetime.fromisoformat(feed["updated"].replace("Z", "+00:00")).timestamp() * 1_000_000_000)
        for url in feed["urls"].values():
            path = out / url.removeprefix(f"{SITE_URL}/feeds/")
            assert path.stat().st_mtime_ns == expected, path
    newest = int(datetime.fromisoformat(index["updated"].replace("Z", "+00:00")).timestamp() * 1_000_000_000)
    assert (out / "index.json").stat().st_mtime_ns == newest
    assert (out / "index.opml").stat().st_mtime_ns == newest
    # Seed 000, the newest AI article, is dated 2020-01-31T22:41:00Z.
    assert (out / "ai.xml").stat().st_mtime == datetime.fromisoformat("2020-01-31T22:41:00+00:00").timestamp()


def test_a_date_with_a_fraction_of_a_second_is_the_exact_mtime_and_needs_no_render_again(
        runner: CliRunner, seeds: Path, tmp_path: Path) -> None:
    add_file(seeds, "fraction.md", article("Fraction", "https://example.com/fraction",
                                           publishedDateTime="2030-05-06T07:08:09.123457Z"))
    out = tmp_path / "out"
    build(runner, seeds, out)
    expected = datetime(2030, 5, 6, 7, 8, 9, 123457, tzinfo=UTC)
    assert (out / "all.xml").stat().st_mtime_ns == int(expected.timestamp()) * 10**9 + 123457000
    again = build(runner, seeds, out)
    assert "(0 rendered)" in again.stdout, again.stdout


def test_mtime_is_restored_even_when_bytes_are_unchanged(runner: CliRunner, seeds: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build(runner, seeds, out)
    expected = (out / "ai.xml").stat().st_mtime_ns
    os.utime(out / "ai.xml", (1, 1))
    result = build(runner, seeds, out)
    assert summary_counts(result.stdout)["written"] == 0
    assert (out / "ai.xml").stat().st_mtime_ns == expected


# -- stale files -----------------------------------------------------------------------------------------


def test_feeds_that_no_longer_exist_are_removed_foreign_files_kept(runner: CliRunner, seeds: Path,
                                                                  tmp_path: Path) -> None:
    out = tmp_path / "out"
    build(runner, seeds, out)
    foreign = {
        "README.txt": b"mine",
        "old-topic.xml": b"<rss/>",
        "providers/custom.xml": b"<rss/>",
        "assets/logo.png": b"\x89PNG",
    }
    for name, data in foreign.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(data)
    # thenextweb.com is named only by seed 000: without it, its provider feeds disappear.
    (seeds / THENEXTWEB_SEED).unlink()
    result = build(runner, seeds, out)
    assert result.exit_code == 0
    assert summary_counts(result.stdout)["removed"] == 4  # its three feeds and its page
    for suffix in (".xml", ".atom", ".json", ".html"):
        assert not (out / "providers" / f"thenextweb.com{suffix}").exists()
        assert (out / "providers" / f"wired.com{suffix}").exists()
    for name, data in foreign.items():
        assert (out / name).read_bytes() == data
    assert "thenextweb" not in (out / "index.json").read_text("utf-8")


def test_removed_topic_feeds_go_and_empty_directories_are_pruned(runner: CliRunner, write_article: WriteArticle,
                                                                tmp_path: Path) -> None:
    path = write_article("a.md", article("A", "https://example.com/a", topics=["Gone", "Kept"]))
    out = tmp_path / "out"
    build(runner, write_article.root, out)  # type: ignore[attr-defined]
    assert (out / "gone.atom").is_file()
    assert (out / "topics" / "gone.html").is_file()
    path.write_text("---\n" + article("A", "https://other.example/a", topics=["Kept"],
                                      provider={"name": "Other", "domain": "other.example"}) + "---\n")
    result = build(runner, write_article.root, out)  # type: ignore[attr-defined]
    # gone.*, topics/gone.html, providers/example.com.* (three feeds and the page)
    assert summary_counts(result.stdout)["removed"] == 8
    assert not list(out.glob("gone.*"))
    assert sorted(p.name for p in (out / "topics").iterdir()) == ["kept.html"]
    assert sorted(p.name for p in (out / "providers").iterdir()) == [
        "other.example.atom", "other.example.html", "other.example.json", "other.example.xml"]
    # The last topic goes: topics/ is left empty, so it is pruned.
    path.write_text("---\n" + article("A", "https://other.example/a",
                                      provider={"name": "Other", "domain": "other.example"}) + "---\n")
    result = build(runner, write_article.root, out)  # type: ignore[attr-defined]
    assert summary_counts(result.stdout)["removed"] == 4  # kept.* and topics/kept.html
    assert not (out / "topics").exists()
    assert (out / "providers" / "other.example.html").is_file()


def test_files_a_broken_manifest_lists_are_not_trusted_outside_out(runner: CliRunner, seeds: Path,
                                                                   tmp_path: Path) -> None:
    out = tmp_path / "out"
    build(runner, seeds, out)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    manifest = out / ".feedpub-manifest.json"
    data = json.loads(manifest.read_text())
    data["files"] += ["../victim.txt", str(victim)]
    manifest.write_text(json.dumps(data))
    assert build(runner, seeds, out).exit_code == 0
    assert victim.read_text() == "precious"


# -- settings ----------------------------------------------------------------------------------------------


def self_link(out: Path, name: str = "ai.xml") -> str:
    root = etree.parse(str(out / name)).getroot()
    [href] = root.xpath("channel/atom:link[@rel='self']/@href", namespaces=NS)
    return str(href)


def channel(out: Path, tag: str, name: str = "ai.xml") -> str | None:
    return etree.parse(str(out / name)).getroot().findtext(f"channel/{tag}")


def test_defaults(runner: CliRunner, seeds: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build(runner, seeds, out)
    assert self_link(out) == "http://127.0.0.1:8000/feeds/ai.xml"
    assert channel(out, "title") == "feedpub – AI"
    assert channel(out, "language") == "en"
    assert channel(out, "ttl") == "5"


@pytest.mark.parametrize(
    ("env", "args", "expected"),
    [
        ({"FEEDPUB_SITE_URL": "https://env.example/"}, [], "https://env.example/feeds/ai.xml"),
        ({}, ["--site-url", "https://cli.example"], "https://cli.example/feeds/ai.xml"),
        ({"FEEDPUB_SITE_URL": "https://env.example"}, ["--site-url", "https://cli.example"],
         "https://cli.example/feeds/ai.xml"),
        ({"FEEDPUB_SITE_URL": "https://env.example/news"}, [], "https://env.example/news/feeds/ai.xml"),
    ],
)
def test_site_url(runner: CliRunner, seeds: Path, tmp_path: Path, env: dict[str, str], args: list[str],
                  expected: str) -> None:
    out = tmp_path / "out"
    assert build(runner, seeds, out, *args, env=env).exit_code == 0
    assert self_link(out) == expected
    assert all(u.startswith(expected.rsplit("/feeds/", 1)[0] + "/feeds/")
               for f in index_of(out)["feeds"] for u in f["urls"].values())


@pytest.mark.parametrize(
    ("env", "args", "count"),
    [({"FEEDPUB_MAX_ITEMS": "1"}, [], 1), ({}, ["--max-items", "1"], 1),
     ({"FEEDPUB_MAX_ITEMS": "1"}, ["--max-items", "2"], 2), ({}, [], 2)],
)
def test_max_items(runner: CliRunner, seeds: Path, tmp_path: Path, env: dict[str, str], args: list[str],
                   count: int) -> None:
    out = tmp_path / "out"
    assert build(runner, seeds, out, *args, env=env).exit_code == 0
    assert len(json.loads((out / "all.json").read_text("utf-8"))["items"]) == count
    assert len(etree.parse(str(out / "ai.atom")).getroot().findall("atom:entry", NS)) == count


@pytest.mark.parametrize(
    ("env", "args", "title"),
    [({"FEEDPUB_SITE_TITLE": "Env News"}, [], "Env News – AI"),
     ({}, ["--site-title", "CLI News"], "CLI News – AI"),
     ({"FEEDPUB_SITE_TITLE": "Env News"}, ["--site-title", "CLI News"], "CLI News – AI"),
     ({"FEEDPUB_SITE_TITLE": ""}, [], "feedpub – AI")],
)
def test_site_title(runner: CliRunner, seeds: Path, tmp_path: Path, env: dict[str, str], args: list[str],
                    title: str) -> None:
    out = tmp_path / "out"
    assert build(runner, seeds, out, *args, env=env).exit_code == 0
    assert channel(out, "title") == title
    assert json.loads((out / "ai.json").read_text("utf-8"))["title"] == title


def test_language_and_max_age(runner: CliRunner, seeds: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = build(runner, seeds, out, "--language", "fr", env={"FEEDPUB_MAX_AGE": "600", "FEEDPUB_LANGUAGE": "de"})
    assert result.exit_code == 0
    assert channel(out, "language") == "fr"
    assert channel(out, "ttl") == "10"


def test_seeds_and_out_from_the_environment(runner: CliRunner, seeds: Path, tmp_path: Path) -> None:
    out = tmp_path / "env-out"
    result = run(runner, "build", env={"FEEDPUB_SEEDS_DIR": str(seeds), "FEEDPUB_OUT_DIR": str(out)})
    assert result.exit_code == 0, result.output
    assert (out / "all.xml").is_file()
    result = run(runner, "check", env={"FEEDPUB_SEEDS_DIR": str(seeds)})
    assert result.exit_code == 0


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("FEEDPUB_MAX_ITEMS", "abc"),
        ("FEEDPUB_MAX_ITEMS", "0"),
        ("FEEDPUB_MAX_ITEMS", "-3"),
        ("FEEDPUB_SITE_URL", "ftp://example.com"),
        ("FEEDPUB_SITE_URL", "example.com"),
        ("FEEDPUB_MAX_AGE", "-5"),
        ("FEEDPUB_MAX_AGE", "five"),
        ("FEEDPUB_SITE_TITLE", "   "),
    ],
)
def test_bad_environment_value_is_a_usage_error(runner: CliRunner, seeds: Path, tmp_path: Path, variable: str,
                                                value: str) -> None:
    out = tmp_path / "out"
    result = build(runner, seeds, out, env={variable: value})
    assert result.exit_code == 2
    assert variable in result.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    "args",
    [["--max-items", "0"], ["--max-items", "-1"], ["--max-items", "many"], ["--site-url", "/relative"],
     ["--site-url", "javascript:alert(1)"], ["--max-age", "-60"], ["--site-title", ""], ["--no-such-option"]],
)
def test_bad_option_is_a_usage_error(runner: CliRunner, seeds: Path, tmp_path: Path, args: list[str]) -> None:
    out = tmp_path / "out"
    result = build(runner, seeds, out, *args)
    assert result.exit_code == 2
    assert "Error" in result.stderr
    assert not out.exists()


def test_settings_command_lists_every_variable(runner: CliRunner) -> None:
    result = run(runner, "settings")
    assert result.exit_code == 0
    for variable in ("FEEDPUB_SEEDS_DIR", "FEEDPUB_SITE_URL", "FEEDPUB_SITE_TITLE", "FEEDPUB_MAX_ITEMS",
                     "FEEDPUB_LANGUAGE", "FEEDPUB_MAX_AGE"):
        assert variable in result.stdout
    assert "http://127.0.0.1:8000" in result.stdout


def test_version(runner: CliRunner) -> None:
    result = run(runner, "--version")
    assert result.exit_code == 0 and "feedpub" in result.stdout


def test_a_killed_builds_temporary_files_are_swept_wherever_they_are(runner: CliRunner, seeds: Path,
                                                                     tmp_path: Path) -> None:
    out = tmp_path / "out"
    build(runner, seeds, out)
    stray = out / "providers" / ".wired.com.xml.k1ll3d_x.feedpub-tmp"
    stray.write_bytes(b"<rss>half")
    in_root = out / ".index.json.abcdefgh.feedpub-tmp"
    in_root.write_bytes(b"{")
    assert build(runner, seeds, out).exit_code == 0
    assert not in_root.exists()  # the root is always swept (the manifest itself is written there)
    manifest = out / ".feedpub-manifest.json"
    data = json.loads(manifest.read_text())
    del data["feeds"]  # what a build killed half-way leaves: the list written first, no fingerprints
    manifest.write_text(json.dumps(data))
    assert build(runner, seeds, out).exit_code == 0
    assert leftovers(out) == []


def test_a_symlinked_directory_leading_outside_is_not_written_through(runner: CliRunner, seeds: Path,
                                                                      tmp_path: Path) -> None:
    out = tmp_path / "out"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out.mkdir()
    (out / "providers").symlink_to(elsewhere, target_is_directory=True)
    result = runner.invoke(main, ["build", "--seeds", str(seeds), "--out", str(out)])
    assert result.exit_code != 0 and "refusing to write outside" in str(result.exception)
    assert list(elsewhere.iterdir()) == []


def test_output_names_resolve_inside_the_output_directory_only(tmp_path: Path) -> None:
    from feedpub.static_tree import Resolver

    root = tmp_path / "out"
    (root / "plain").mkdir(parents=True)
    (root / "inner").symlink_to(root / "plain", target_is_directory=True)
    (tmp_path / "elsewhere").mkdir()
    (root / "away").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    inside = Resolver(root.resolve())
    assert inside("a.xml") == f"{root.resolve()}/a.xml"
    assert inside("plain/x/y.xml") == f"{root.resolve()}/plain/x/y.xml"  # x not made yet
    assert inside("inner/b.xml") == f"{root.resolve()}/plain/b.xml"  # a link inside is followed
    for name in ("away/c.xml", "away/deeper/c.xml", "../c.xml", "plain/../../c.xml", "/etc/c.xml",
                 "plain//c.xml", "plain/.", "plain/", "nul\0/c.xml"):
        assert inside(name, strict=False) is None, name
        with pytest.raises(ValueError, match="refusing to write outside"):
            inside(name)


def test_an_output_deleted_by_hand_is_written_again(runner: CliRunner, seeds: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build(runner, seeds, out)
    original = (out / "providers" / "wired.com.atom").read_bytes()
    (out / "providers" / "wired.com.atom").unlink()
    result = build(runner, seeds, out)
    assert summary_counts(result.stdout)["written"] == 1
    assert (out / "providers" / "wired.com.atom").read_bytes() == original


def test_an_output_replaced_by_a_link_is_written_again_as_a_file(runner: CliRunner, seeds: Path,
                                                                 tmp_path: Path) -> None:
    out = tmp_path / "out"
    build(runner, seeds, out)
    target = out / "providers" / "wired.com.atom"
    original, mtime = target.read_bytes(), target.stat().st_mtime_ns
    copy = tmp_path / "copy.atom"
    copy.write_bytes(original)
    target.unlink()
    target.symlink_to(copy)
    result = build(runner, seeds, out)
    assert result.exit_code == 0
    assert not target.is_symlink() and target.read_bytes() == original and target.stat().st_mtime_ns == mtime


# -- serve -------------------------------------------------------------------------------------------


def test_serve_loads_its_settings_once_and_warns_once(runner: CliRunner, seeds: Path, monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    from flask import Flask

    import feedpub.cli
    import feedpub.ingest.frontmatter
    from feedpub.settings import Settings

    loads: list[Settings] = []
    real_load = Settings.load.__func__  # type: ignore[attr-defined]

    def counted(cls: type[Settings], *args: Any, **kwargs: Any) -> Settings:
        loads.append(real_load(cls, *args, **kwargs))
        return loads[-1]

    served: list[Flask] = []
    monkeypatch.setattr(Settings, "load", classmethod(counted))
    monkeypatch.setattr(Flask, "run", lambda app, **_options: served.append(app))
    monkeypatch.setattr(feedpub.cli, "HAVE_LIBYAML", False)
    monkeypatch.setattr(feedpub.ingest.frontmatter, "HAVE_LIBYAML", False)
    result = run(runner, "serve", "--seeds", str(seeds), "--site-title", "Served", "--max-items", "1")
    assert result.exit_code == 0, result.output
    assert len(loads) == 1
    assert (result.stderr + caplog.text).count("without libyaml") == 1
    (app,) = served
    assert app.extensions["feedpub"].settings == loads[0]
    assert (loads[0].site_title, loads[0].max_items, loads[0].seeds_dir) == ("Served", 1, seeds)

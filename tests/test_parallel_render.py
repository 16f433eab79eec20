"""A large render on every core (``render/prefill.py``): the same bytes as one process makes, whatever fails.

Each case runs in a fresh process, as ``feedpub build`` does: the render forks only where no other
thread runs, and pytest's process has some. The thresholds are lowered there so the generated
corpus (a few hundred articles) takes the path a large one takes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from .conftest import ROOT

PRELUDE = """
import json, os, sys, threading
from pathlib import Path
from feedpub.render import prefill
from feedpub.render.site import render_site
from feedpub.settings import Settings
from feedpub.ingest.loader import CorpusLoader

prefill.MIN_ARTICLES = 1
made = {"entries": 0}
kinds = []
import feedpub.render.site as site_module

def counted(*args, **kwargs):
    entries = prefill.made_on_every_core(*args, **kwargs)
    kinds.append(entries)
    return entries

site_module.made_on_every_core = counted

def count():
    made["entries"] = sum(entries.made for entries in kinds)
    return made

settings = Settings.load({"seeds_dir": sys.argv[1], "max_items": 5, "cache": False})
corpus = CorpusLoader(settings.seeds_dir, settings.max_file_bytes, workers=1).load()

def bodies(site):
    return {name: output.body.hex() for name, output in site.outputs.items()}
"""


def _run(script: str, seeds: Path) -> dict[str, object]:
    """Run ``script`` after :data:`PRELUDE` in a new interpreter; what it prints last, as JSON."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(script), str(seeds)], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    result["stderr"] = done.stderr
    return result


def test_every_core_renders_the_bytes_one_process_renders(generated_dir: Path) -> None:
    result = _run("""
        alone = render_site(corpus, settings)
        assert count() == {"entries": 0}
        shared = render_site(corpus, settings, workers=2)
        print(json.dumps({"same": bodies(alone) == bodies(shared), "outputs": len(shared.outputs),
                          "rendered": [alone.rendered, shared.rendered], "articles": len(corpus.articles),
                          **count()}))
    """, generated_dir)
    assert result["same"] is True
    rendered = result["rendered"]
    assert isinstance(rendered, list) and rendered[0] == rendered[1] > 0
    assert result["entries"] == result["articles"]  # every article's entries were made by the children


def test_an_entry_that_fails_in_a_child_fails_the_same_way_in_the_render(generated_dir: Path) -> None:
    """The children leave what they cannot make to the render, which drops its article from every feed."""
    result = _run("""
        from feedpub.render import json_feed
        victim = corpus.articles[len(corpus.articles) // 2]
        real = json_feed.json_entry

        def failing(article, ctx):
            if article.url == victim.url:
                raise ValueError("cannot")
            return real(article, ctx)

        import feedpub.render.formats as formats
        import dataclasses
        formats.FORMATS["json"] = dataclasses.replace(formats.FORMATS["json"], entry=failing)
        json_feed.json_entry = failing
        alone = render_site(corpus, settings)
        shared = render_site(corpus, settings, workers=2)
        listed = [name for name, output in shared.outputs.items() if victim.url.encode() in output.body]
        print(json.dumps({"same": bodies(alone) == bodies(shared), "listed": listed, **count()}))
    """, generated_dir)
    assert result["same"] is True and result["entries"]
    assert result["listed"] == []  # out of every feed alike, as one process leaves it out
    assert "cannot be rendered as json (ValueError); leaving it out" in str(result["stderr"])


def test_a_child_that_dies_costs_time_not_bytes(generated_dir: Path) -> None:
    result = _run("""
        prefill.CHUNK = 20
        real = prefill._make

        def dying(start):
            if start == 3 * prefill.CHUNK:
                os._exit(1)  # killed, as by the kernel out of memory
            return real(start)

        prefill._make = dying
        alone = render_site(corpus, settings)
        shared = render_site(corpus, settings, workers=2)
        print(json.dumps({"same": bodies(alone) == bodies(shared), "articles": len(corpus.articles), **count()}))
    """, generated_dir)
    assert result["same"] is True
    assert "entries rendered in one process (BrokenProcessPool" in str(result["stderr"])
    entries, articles = result["entries"], result["articles"]
    assert isinstance(entries, int) and isinstance(articles, int) and 0 < entries < articles


def test_a_render_that_cannot_fork_renders_alone(generated_dir: Path) -> None:
    result = _run("""
        def no_fork(*args, **kwargs):
            raise BlockingIOError(11, "Resource temporarily unavailable")  # fork's EAGAIN: a process limit

        prefill.ProcessPoolExecutor = no_fork
        alone = render_site(corpus, settings)
        shared = render_site(corpus, settings, workers=2)
        print(json.dumps({"same": bodies(alone) == bodies(shared), **count()}))
    """, generated_dir)
    assert result["same"] is True and result["entries"] == 0
    assert "entries rendered in one process (BlockingIOError" in str(result["stderr"])


def test_a_process_with_other_threads_renders_alone(generated_dir: Path) -> None:
    """A fork copies other threads' locks, not the threads: a server's reload thread renders by itself."""
    result = _run("""
        stop = threading.Event()
        threading.Thread(target=stop.wait, daemon=True).start()
        site = render_site(corpus, settings, workers=2)
        stop.set()
        print(json.dumps({"rendered": site.rendered, **count()}))
    """, generated_dir)
    assert result["entries"] == 0 and result["rendered"]


def test_feedpub_build_renders_on_every_core(generated_dir: Path, tmp_path: Path) -> None:
    """The command itself: a tree built on two cores is the tree built on one, byte for byte and date for date."""
    trees = {}
    for cores in (1, 2):
        out = tmp_path / f"out-{cores}"
        script = f"""
            os.cpu_count = lambda: {cores}
            from feedpub.cli import main
            sys.argv = ["feedpub", "build", "--seeds", sys.argv[1], "--out", {str(out)!r}, "--no-cache",
                        "--max-items", "5"]
            try:
                main()
            except SystemExit as exc:
                assert not exc.code, exc.code
            print(json.dumps(count()))
        """
        result = _run(script, generated_dir)
        assert (result["entries"] > 0) == (cores == 2), result  # type: ignore[operator]
        trees[cores] = {str(p.relative_to(out)): (p.read_bytes(), p.stat().st_mtime_ns)
                        for p in sorted(out.rglob("*")) if p.is_file() and not p.name.startswith(".")}
    assert trees[1] == trees[2] and len(trees[1]) > 100


def test_children_unpack_kept_entries_and_pack_what_they_make(generated_dir: Path, tmp_path: Path) -> None:
    """With fragments kept across builds: a cold render's children pack every entry they make, to be kept;
    a warm one's children unpack them (the render itself unpacks none) and make none; the same bytes throughout."""
    result = _run(f"""
        from feedpub.ingest.parse_cache import ParseCache
        from feedpub.render.kept import kept_fragments
        from feedpub.render.site import rendering_key
        from feedpub.render import fragments
        unpacked = []
        real_unpack = prefill.unpack
        prefill.unpack = lambda packed: (unpacked.append(1), real_unpack(packed))[1]  # children count their own
        cache = ParseCache(Path({str(tmp_path)!r}), settings.max_file_bytes)
        alone = render_site(corpus, settings)
        with kept_fragments(cache, rendering_key(settings)) as kept:
            cold = render_site(corpus, settings, workers=2, kept=kept)
        cold_kept = [kept.found, kept.written]
        with kept_fragments(cache, rendering_key(settings)) as kept:
            warm = render_site(corpus, settings, workers=2, kept=kept)
        rows = cache._db.execute("SELECT count(*) FROM fragments").fetchone()[0]
        print(json.dumps({{"same": bodies(alone) == bodies(cold) == bodies(warm), "cold": cold_kept,
                          "warm": [kept.found, kept.written], "rows": rows, "articles": len(corpus.articles),
                          "unpacked here": len(unpacked)}}))
    """, generated_dir)
    articles = result["articles"]
    assert result["same"] is True
    assert result["cold"] == [0, articles] and result["rows"] == articles
    assert result["warm"] == [articles, 0]
    assert result["unpacked here"] == 0

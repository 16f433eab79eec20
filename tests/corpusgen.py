"""Deterministic synthetic article corpus (``python -m tests.corpusgen OUT N``): volume for the tests, input for the
benchmarks (kept under tests/ so the suite imports it without the benchmark runner). Files are shaped like seeds/
(front matter only, same key order and blank lines), at ``out_dir/<index//1000:03d>/<index:06d>_<hex16>.txt``, hex
= blake2b-64 of the canonical URL (webUrl, else originalUrl), so deliberate duplicates share it. ~6 KB per file;
1-5 of 25 Zipf-weighted topics (incl. "Réseaux de neurones", "C#", "AR/VR", ".NET"); 2,000 Zipf-distributed
providers with a stable name/domain/URL scheme and a site-relative, absolute or no logo; 0-15 related items; 10 %
unpublished (heat -1); 5 % YouTube videos with an iframe featuredContent; ~6 % without webUrl; dates over
2019-2021, ~4 % sharing a timestamp; ~0.5 % deliberate duplicate URLs (within a subdirectory); ~20 % of files with
plain (unquoted) URLs; text with quotes, ``&``, ``<b>``, ``’“”`` and accents. Output depends only on (n, seed),
not on the worker count; a corpus of n is a prefix of one of n' > n. Existing files are overwritten, not deleted.
"""
from __future__ import annotations

import argparse
import base64
import bisect
import hashlib
import json
import os
import random
import re
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import accumulate
from pathlib import Path
from typing import Any

PER_DIR = 1000
Item = tuple[int, dict[str, Any], str]
Hist = dict[str, list[Any]]  # per-chunk history: earlier "times" (datetimes) and "urls" (URL-field dicts)
TOPICS = ["AI", "Machine Learning", "Computer Vision", "Natural Language Processing", "Cloud Computing",
          "Cybersecurity", "Kubernetes", "Open Source", "Power Apps", "AWS AI", "Deep Learning", "Data Privacy",
          "Réseaux de neurones", "DevOps", "Serverless", "Edge Computing", "Quantum Computing", "Robotics",
          "Teams integration", "Python", "Rust", "WebAssembly", "C#", "AR/VR", ".NET"]
_HEAD = [tuple(x.split("=")) for x in (  # most frequent providers (Zipf head), then 1,974 synthetic ones
    "TechCrunch=techcrunch.com|The Next Web=thenextweb.com|Wired=wired.com|theregister=theregister.com|ZDNet="
    "zdnet.com|VentureBeat=venturebeat.com|Microsoft=microsoft.com|Ars Technica=arstechnica.com|The Verge="
    "theverge.com|heise online=heise.de|Le Monde Informatique=lemondeinformatique.fr|Les Échos=lesechos.fr|"
    "Mail Online=dailymail.co.uk|Tom's Hardware=tomshardware.com|AUS&R=i-hls.com|openpr.com=openpr.com|"
    "Finanznachrichten=finanznachrichten.de|Golem.de=golem.de|On MSFT=onmsft.com|Courthouse News Service="
    "courthousenews.com|The New Stack=thenewstack.io|Numerama=numerama.com|Japan Today=japantoday.com|"
    "C-SPAN=c-span.org|MinnPost=minnpost.com|The Daily Dot=dailydot.com").split("|")]
_PRE = ("Tech Cloud Data Byte Code Silicon Digital Neural Quantum Cyber Dev Net Pixel Signal Circuit Open Future "
        "Smart Info Logic Stack Kernel Packet Vector Tensor Cluster Binary Hyper Micro Mega Nano Bright Blue "
        "Iron Crystal Nordic Pacific Atlantic Metro Capital").split()
_SUF = ("Crunch Wire Times Daily Insider Journal Report Post Herald Review Weekly Hub Beat Radar Pulse Today "
        "World News Gazette Monitor Digest Chronicle Observer Ledger Tribune Dispatch Bulletin Lab Zone").split()
_TLDS = ["com"] * 12 + ["co.uk", "de", "fr", "io", "net", "org", "com.au", "in", "es", "it"]
_SUBJ = ("Microsoft|Amazon|Google|Apple|Meta|IBM|Nvidia|OpenAI|Intel|Samsung|the European Commission|researchers "
         "at MIT|a Stanford team|the company|regulators|startups|developers|Baidu|SAP|Oracle|Red Hat|Mozilla|"
         "the Linux Foundation|Deutsche Telekom|Société Générale|Ubisoft|NEC|Finding Rover").split("|")
_VERB = ("announced|unveiled|launched|acquired|open-sourced|delayed|is testing|quietly updated|has banned|warned "
         "about|doubled down on|expanded|rolled out|deprecated|benchmarked|patched|extended the ban on").split("|")
_OBJ = ("a new {t} platform|its {t} roadmap|a $1.2 billion {t} fund|{t} tooling for enterprises|the “{t}” preview|"
        "a fresh {t} moratorium|{t} support in Teams|an open {t} benchmark|its controversial {t} product").split("|")
_TAIL = ["", "", "", " for enterprise customers", " in Europe", " after months of criticism", " (again)",
         " ahead of its developer conference", ", according to people familiar with the matter",
         " — and it’s a big deal", " amid \"serious concerns\"", ": here’s what you need to know",
         " with 40% faster inference", " & more", " in Montréal and Zürich"]
_FLAVOR = ["Shares rose 3% & analysts called it “a clear signal”.", "The <b>beta</b> ships today.",
           "It was not clear the degree to which police have used the systems.",
           'A spokesperson said the feature is "not a priority right now".', "Prices start at €9.99/month.",
           "Critics say it’s “too little, too late” — others aren't so sure.", "Stay tuned!", "  Here's the gist:  •"]
_WP = (6 * [1280, 1024, 800, 2000]) + [640, 1200, 796, 2300]
_EPOCH = datetime(2019, 1, 1, tzinfo=UTC)
_SPAN_MIN, _FMT = 3 * 365 * 24 * 60, "%Y-%m-%dT%H:%M:%SZ"
_SLUG = re.compile(r"[^a-z0-9]+")
_PLAIN_URL = re.compile(r"(?:https?:/)?/[^\s#\"']+")
_PLAIN = re.compile(r"[A-Za-zÀ-ÿ][A-Za-z0-9À-ÿ .&'+/-]*[A-Za-z0-9À-ÿ.]")
_PLAIN_KEYS = frozenset({"category", "type", "name", "domain", "topics"})
_URL_KEYS = frozenset({"url", "originalUrl", "webUrl", "ampWebUrl", "cdnAmpWebUrl"})
_BLANK_BEFORE = frozenset({"featuredContent", "provider", "topics", "images", "related", "secured"})
_IFRAME = ('<iframe width="800" height="500" frameborder="0" src="https://www.youtube.com/embed/{}" allow='
           '"accelerometer; autoplay; encrypted-media; gyroscope; picture-in-picture" allowfullscreen></iframe>')
_PROV_CUM = list(accumulate(1.0 / (k + 5) for k in range(2000)))  # Zipf-like long tail, top ~3.4 %
_TOPIC_CUM = list(accumulate(1.0 / (k + 2) for k in range(len(TOPICS))))
_q = json.encoder.encode_basestring  # same output as json.dumps(s, ensure_ascii=False): a YAML "..." scalar


class _Rng(random.Random):
    """random.Random with ~4x cheaper choice/randint (float-scaled; still fully deterministic)."""

    def choice(self, seq: Any) -> Any:
        return seq[int(self.random() * len(seq))]

    def randint(self, a: int, b: int) -> int:
        return a + int(self.random() * (b - a + 1))


def _pick(rng: random.Random, cum: list[float]) -> int:
    return bisect.bisect_right(cum, rng.random() * cum[-1])


@lru_cache(maxsize=1)
def _providers() -> list[dict[str, Any]]:
    """2,000 providers from a fixed RNG: names, domains, logos and URL schemes never depend on the seed."""
    rng, seen, names = _Rng("feedpub-providers-v1"), {d for _, d in _HEAD}, list(_HEAD)
    while len(names) < 2000:
        p, s = rng.choice(_PRE), rng.choice(_SUF)
        name = rng.choice([f"The {p} {s}", f"{p}{s}", f"{p} {s}", f"{p}{s}.{rng.choice(['com', 'io', 'net'])}"])
        dom = name.lower().removeprefix("the ").replace(" ", "")
        dom = dom if "." in dom else f"{dom}.{rng.choice(_TLDS)}"
        if dom not in seen:
            seen.add(dom)
            names.append((name, dom))
    out = []
    for name, dom in names:
        r, host = rng.random(), rng.choice([f"www.{dom}", dom])
        logo = (f"/assets/images/organizations/{dom}-50x50.jpg" if r < 0.45 else
                f"https://smartableai.github.io/feedpub/assets/images/organizations/{dom}-50x50.jpg" if r < 0.7
                else None)
        out.append({"name": name, "domain": dom, "host": host, "logo": logo, "scheme": rng.randrange(6),
                    "amp": rng.choice([None, None, "amp/", "?amp", "AMP"]), "cdn": rng.choice([host, f"cdn.{dom}"])})
    return out


@lru_cache(maxsize=1)
def _sentences() -> list[str]:
    rng, out = _Rng("feedpub-text-v1"), []
    for _ in range(3000):
        t = rng.choice(TOPICS)
        s = f"{rng.choice(_SUBJ)} {rng.choice(_VERB)} {rng.choice(_OBJ).format(t=t)}{rng.choice(_TAIL)}."
        out.append(rng.choice(_FLAVOR) if rng.random() < 0.1 else s[0].upper() + s[1:])
    return out


def _title(rng: random.Random, topic: str) -> str:
    r = rng.random()
    if r < 0.15:
        return f"Why {rng.choice(_SUBJ)}’s {topic} bet is a clear and present danger"
    if r < 0.25:
        return f"{topic}: {rng.randint(3, 12)} things developers should know in {rng.randint(2019, 2022)}"
    if r < 0.30:
        return f"Cramer: {rng.choice(_SUBJ)} {topic} Software Is 'Last Thing We Need Right Now'"
    s = f"{rng.choice(_SUBJ)} {rng.choice(_VERB)} {rng.choice(_OBJ).format(t=topic)}{rng.choice(_TAIL)}"
    return s[0].upper() + s[1:]


def _excerpt(rng: random.Random) -> str:
    text = " ".join([rng.choice(_sentences()) for _ in range(rng.randint(1, 4))])
    return text[:250].rsplit(" ", 1)[0] + " ..." if len(text) > 300 else text


def _urls(rng: random.Random, p: dict[str, Any], dt: datetime, slug: str, uid: int) -> dict[str, str]:
    h, y, m, d = p["host"], dt.year, f"{dt.month:02d}", f"{dt.day:02d}"
    path = [f"{y}/{m}/{d}/{slug}-{uid}/", f"archives/{uid}", f"news/{uid}/{slug}", f"article-{uid}/{slug}.html",
            f"?p={uid}", f"story/{slug}-{uid:x}/"][p["scheme"]]
    out = {"webUrl": f"https://{h}/{path}"}
    if p["amp"] and rng.random() < 0.8:
        web, kind = out["webUrl"], p["amp"]
        amp = (web + "&amp=1" if "?" in path else f"https://{h}/AMP/{path[5:]}" if path.startswith("news/")
               and kind == "AMP" else web + "?amp" if kind == "?amp" else web + ("amp/" if web[-1] == "/" else "/amp"))
        out["ampWebUrl"] = amp
        out["cdnAmpWebUrl"] = f"https://{h.replace('-', '--').replace('.', '-')}.cdn.ampproject.org/c/s/{amp[8:]}"
    return out


def _image(rng: random.Random, p: dict[str, Any], dt: datetime, slug: str) -> dict[str, Any]:
    w = rng.choice(_WP)
    url = rng.choice([f"https://{p['cdn']}/wp-content/uploads/{dt.year}/{dt.month:02d}/{slug[:40]}.jpg",
                      f"https://{p['cdn']}/images/{rng.getrandbits(48):012x}.png?w={w}&q=40&auto=format%2Ccompress"])
    img: dict[str, Any] = {"url": url, "width": w, "height": w * rng.choice([9, 10, 12]) // 16}
    if rng.random() < 0.6:
        img["isCached"] = True
    return img


def _article(rng: random.Random, index: int, hist: Hist | None) -> dict[str, Any]:
    """One article dict in file key order; ``hist`` (earlier timestamps/URLs) enables shared dates and dups."""
    provs = _providers()
    p, topics = provs[_pick(rng, _PROV_CUM)], []
    for _ in range(rng.choice((1, 1, 1, 2, 2, 2, 2, 3, 3, 4, 5))):
        t = TOPICS[_pick(rng, _TOPIC_CUM)]
        if t not in topics:
            topics.append(t)
    if hist and hist["times"] and rng.random() < 0.02:
        dt = rng.choice(hist["times"])
    else:
        dt = _EPOCH + timedelta(minutes=rng.randrange(_SPAN_MIN), seconds=rng.randrange(60) * (rng.random() < .15))
    title, is_video = _title(rng, topics[0]), rng.random() < 0.05
    slug = _SLUG.sub("-", title.lower()).strip("-")[:70]
    uid = 1_000_000 + index * 7 + rng.randrange(7)  # strictly increasing with index -> unique URLs
    if is_video:  # bijective 64-bit scramble of uid -> unique 11-char YouTube-like id
        vid = base64.urlsafe_b64encode(((uid * 0x9E3779B97F4A7C15) % 2**64).to_bytes(8, "big")).decode()[:11]
        urls = {"originalUrl": f"https://youtube.com/watch?v={vid}"}
    else:
        urls, r = _urls(rng, p, dt, slug, uid), rng.random()
        if r < 0.011:
            urls = {"originalUrl": urls["webUrl"]}
        elif r < 0.5:
            urls = {"originalUrl": urls["webUrl"], **urls}
    if hist is not None and hist["urls"] and rng.random() < 0.005:
        urls = rng.choice(hist["urls"])  # deliberate duplicate canonical URL
    published, quality = rng.random() >= 0.10, min(160, int(rng.gammavariate(2.0, 22.0)))
    a: dict[str, Any] = {"category": "news", "title": title, "excerpt": _excerpt(rng),
                         "publishedDateTime": dt.strftime(_FMT), **urls, "type": "video" if is_video else "article",
                         "quality": quality, "heat": max(0, quality + rng.randint(-10, 50)) if published else -1,
                         "published": published}
    if is_video:
        a["featuredContent"] = _IFRAME.format(vid)
    a["provider"] = {"name": p["name"], "domain": p["domain"]}
    if p["logo"]:
        a["provider"]["images"] = [{"url": p["logo"], "width": 50, "height": 50}]
    a["topics"] = topics
    if is_video:
        a["images"] = [{"url": f"https://i.ytimg.com/vi/{vid}/maxresdefault.jpg", "width": 1280, "height": 720,
                        "isCached": True}]
    elif rng.random() < 0.9:
        a["images"] = [_image(rng, p, dt, slug) for _ in range(1 + (rng.random() < 0.05))]
        if rng.random() < 0.5:
            a["images"][0]["title"] = title
    related = []
    for _ in range(0 if rng.random() < 0.15 else int(rng.triangular(1, 16, 6))):
        rp = provs[_pick(rng, _PROV_CUM)]
        rdt = dt + timedelta(minutes=rng.randint(-7 * 1440, 7 * 1440))
        rt = _title(rng, rng.choice(topics))
        rs = _SLUG.sub("-", rt.lower()).strip("-")[:70]
        item = {"title": rt, "excerpt": _excerpt(rng), "publishedDateTime": rdt.strftime(_FMT),
                **_urls(rng, rp, rdt, rs, rng.randrange(10**8)), "type": "article",
                "provider": {"name": rp["name"], "domain": rp["domain"]}, "quality": rng.randint(0, 99)}
        if rng.random() < 0.8:
            item["images"] = [_image(rng, rp, rdt, rs)]
        related.append(item)
    if related:
        a["related"] = related
    raw = rng.randbytes(16 * rng.randint(14, 22))
    a["secured"] = base64.b64encode(raw).decode() + ";" + base64.b64encode(rng.randbytes(16)).decode()
    if hist is not None:
        hist["times"].append(dt)
        hist["urls"].append(urls)
    return a


@lru_cache(maxsize=8192)
def _plain_ok(s: str) -> bool:  # safe as a YAML plain scalar (provider names/domains, topics, type)
    return bool(_PLAIN.fullmatch(s)) and s.lower() not in ("yes", "no", "on", "off", "true", "false", "null")


def _val(key: str, v: Any, plain_urls: bool) -> str:
    if type(v) is not str:
        return ("true" if v else "false") if type(v) is bool else str(v)
    if key == "publishedDateTime" or (key in _PLAIN_KEYS and _plain_ok(v)) or (
            plain_urls and key in _URL_KEYS and _PLAIN_URL.fullmatch(v)):
        return v
    return _q(v)


def _emit(out: list[str], d: dict[str, Any], pad: str, first: str, plain: bool) -> list[str]:
    lead = first
    for k, v in d.items():
        if not pad and k in _BLANK_BEFORE:
            out.append("\n")
        if type(v) is dict:
            out.append(f"{lead}{k}:\n")
            _emit(out, v, pad + "  ", pad + "  ", plain)
        elif type(v) is list:
            out.append(f"{lead}{k}:\n")
            for it in v:
                if type(it) is dict:
                    _emit(out, it, pad + "    ", pad + "  - ", plain)
                else:
                    out.append(f"{pad}  - {_val(k, it, plain)}\n")
        else:
            out.append(f"{lead}{k}: {_val(k, v, plain)}\n")
        lead = pad
    return out


def render(article: dict[str, Any], plain_urls: bool = False) -> str:
    """Serialise one article dict as a front-matter-only file (``---\\n<yaml>\\n---\\n``)."""
    return "".join(_emit(["---\n"], article, "", "", plain_urls)) + "---\n"


def iter_articles(n: int, seed: int = 0, chunks: Iterable[int] | None = None) -> Iterator[Item]:
    """Yield (index, article dict, file text) of corpus (n, seed) without touching disk.  Each chunk
    (subdirectory of PER_DIR files) has its own RNG and history, so chunks can be built in parallel."""
    for chunk in range(-(-n // PER_DIR)) if chunks is None else chunks:
        rng, hist = _Rng(f"feedpub-{seed}-{chunk}"), Hist(times=[], urls=[])
        for i in range(chunk * PER_DIR, min(n, (chunk + 1) * PER_DIR)):
            a = _article(rng, i, hist)
            yield i, a, render(a, rng.random() < 0.2)


def _write(out_dir: Path, index: int, a: dict[str, Any], text: str) -> tuple[Path, int]:
    h = hashlib.blake2b((a.get("webUrl") or a["originalUrl"]).encode(), digest_size=8).hexdigest()
    path = Path(out_dir) / f"{index // PER_DIR:03d}" / f"{index:06d}_{h}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path, path.write_bytes(text.encode())


def _write_chunk(job: tuple[Path, int, int, int]) -> int:
    out_dir, seed, chunk, n = job
    return sum(_write(out_dir, i, a, text)[1] for i, a, text in iter_articles(n, seed, [chunk]))


def generate(out_dir: Path, n: int, seed: int = 0, workers: int | None = None) -> int:
    """Write n articles under out_dir with ``workers`` processes (default: all CPUs; 1 = in-process); bytes written."""
    jobs = [(Path(out_dir), seed, chunk, n) for chunk in range(-(-n // PER_DIR))]
    workers = min(len(jobs), workers or os.cpu_count() or 1)
    if workers <= 1:
        return sum(map(_write_chunk, jobs))
    with ProcessPoolExecutor(workers) as pool:  # output is identical whatever the worker count
        return sum(pool.map(_write_chunk, jobs))


def touch_one(out_dir: Path, index: int) -> Path:
    """Edit article ``index`` in place: its title gains/increments a " (rev N)" suffix. Returns its path."""
    hits = sorted((Path(out_dir) / f"{index // PER_DIR:03d}").glob(f"{index:06d}_*.txt"))
    if not hits:
        raise FileNotFoundError(f"no article with index {index} under {out_dir}")
    text = hits[0].read_text(encoding="utf-8")
    m = re.search(r'^title: (".*")$', text, re.M)
    if not m:
        raise ValueError(f"{hits[0]}: no double-quoted top-level title line")
    title = json.loads(m.group(1))
    rev = re.search(r" \(rev (\d+)\)$", title)
    new = f"{title[:rev.start()]} (rev {int(rev.group(1)) + 1})" if rev else f"{title} (rev 1)"
    hits[0].write_bytes((text[:m.start(1)] + _q(new) + text[m.end(1):]).encode())
    return hits[0]


def add_one(out_dir: Path, seed: int) -> Path:
    """Add one new article generated from ``seed`` at index (highest existing index + 1). Returns its path."""
    out_dir = Path(out_dir)
    dirs = sorted((int(d.name), d) for d in out_dir.iterdir() if d.is_dir() and d.name.isdigit())
    last = max((int(f.name.split("_", 1)[0]) for _, d in dirs[-1:] for f in d.glob("*_*.txt")), default=-1)
    rng = _Rng(f"feedpub-add-{seed}")
    a = _article(rng, last + 1, None)
    return _write(out_dir, last + 1, a, render(a, rng.random() < 0.2))[0]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Generate a deterministic synthetic feedpub article corpus.")
    ap.add_argument("out_dir", type=Path, help="output directory (created if missing)")
    ap.add_argument("n", type=int, help="number of articles")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument("--workers", type=int, default=None, help="processes (default: CPU count)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    size = generate(args.out_dir, args.n, args.seed, args.workers)
    print(f"wrote {args.n} files, {size} bytes ({size / max(args.n, 1) / 1024:.1f} KiB avg) "
          f"to {args.out_dir} in {time.perf_counter() - t0:.2f}s")


if __name__ == "__main__":
    main()

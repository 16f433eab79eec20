"""The purge hook: after a reload or build changes feeds, POST the changed surrogate keys and URLs.

One JSON body, ``{"keys": [...], "urls": [...]}``, to ``FEEDPUB_PURGE_URL``: the keys are those of
``Surrogate-Key`` and ``Cache-Tag`` (:mod:`feedpub.web.headers`), the URLs every address the
changed outputs are served at. A CDN's purge API wants its own body and credentials, so the hook
is meant for a small relay of the operator's (docs/production.md has one).

It is sent the way WebSub pings are (:mod:`feedpub.websub`): each key and URL is noted in a
ledger every process shares, with a version, and sent under a lease, so one change is announced
by one worker only; what the receiver did not take stays pending and goes with the next round.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path

from .render.common import FRONT_PAGE, PAGE_SUFFIX
from .render.formats import INDEX_FILES
from .render.site import Site
from .settings import Settings
from .websub import BUILD_BUDGET, Ledger, Publisher, Round, _Progress, announce, open_ledger

PURGE_LEDGER = "purge-ledger.sqlite3"
BATCH = 256  # keys and URLs in one POST at most (Fastly takes 256 keys a call; a relay may split further)
KEY, URL = "key:", "url:"  # what a ledger item is
INDEX_KEY = "index"  # the key of the files about the whole site: index.json, index.opml, the front page
GONE = "gone"  # the version of an output a reload or build removed


def items(settings: Settings, versions: Mapping[str, str], key_of: Callable[[str], str | None]) -> dict[str, str]:
    """The ledger items of changed outputs (``versions``: output name -> its new version, or ``gone``).

    A key's version is made of its changed outputs' versions: every process that sees one
    change notes the same, so the change is announced once.
    """
    noted: dict[str, str] = {}
    by_key: dict[str, list[str]] = defaultdict(list)
    for name, version in sorted(versions.items()):
        for url in urls(settings, name):
            noted[URL + url] = version
        key = key_of(name)
        if key is not None:
            by_key[key].append(f"{name}={version}")
    for key, parts in by_key.items():
        noted[KEY + key] = hashlib.blake2b("\n".join(parts).encode(), digest_size=16).hexdigest()
    return noted


def surrogate_key(site: Site, name: str) -> str | None:
    """The purge key of the output ``name`` of ``site``: a feed's path without suffix, its page's too.

    A feed file ``site`` does not list (an archive page of a build, a removed feed) is known by its
    suffix; ``None`` for a page or index file it does not have.
    """
    if name in INDEX_FILES:
        return INDEX_KEY
    found = site.feed_and_format(name) or site.deferred.get(name)
    if found is not None:
        return found[0].spec.path
    return next((name.removesuffix(fmt.suffix) for fmt in site.formats if fmt.feed and name.endswith(fmt.suffix)),
                None)


def urls(settings: Settings, name: str) -> list[str]:
    """Every URL the server answers with the output ``name`` (pages have short aliases)."""
    found = [settings.feeds_url + name]
    if name == FRONT_PAGE:
        found += [settings.site_url + "/", settings.feeds_url]
    elif name.endswith(PAGE_SUFFIX) and name.startswith(("topics/", "providers/")) and name.count("/") == 1:
        found.append(f"{settings.site_url}/{name.removesuffix(PAGE_SUFFIX)}")
    return found


def body(held: list[str]) -> bytes:
    """The JSON the hook receives for the ledger items ``held``."""
    keys = sorted(item.removeprefix(KEY) for item in held if item.startswith(KEY))
    return json.dumps({"keys": keys, "urls": sorted(item.removeprefix(URL) for item in held
                                                    if item.startswith(URL))}).encode()


class Purger(Publisher):
    """A :class:`~feedpub.websub.Publisher` that sends what is pending in batches, as JSON, to the hook."""

    what = "purge hook"

    def __init__(self, hook: str, ledger: Ledger, *, settle: float = 0.0) -> None:
        super().__init__(hook, ledger, senders=1)  # one POST at a time: each holds a whole batch
        self.settle = settle

    def send_pending(self, budget: float) -> Round:
        # The server's other workers reload the same change a moment later: a CDN told to purge
        # before then could fetch the old bytes again from one of them.
        time.sleep(self.settle)
        return super().send_pending(budget)

    def _send_next(self, progress: _Progress) -> bool:
        held: list[tuple[str, str]] = []
        with progress.lock:
            while len(held) < BATCH and (leased := self.ledger.lease(progress.cursor)) is not None:
                progress.cursor = leased[0]
                held.append(leased)
        if not held:
            return False
        if self._post(body([item for item, _ in held]), "application/json", f"{len(held)} keys and URLs", progress):
            for item, version in held:
                self.ledger.announced(item, version)
            with progress.lock:
                progress.sent += len(held)
        else:
            for item, _ in held:
                self.ledger.release(item)
        return True


def for_server(settings: Settings) -> Purger | None:
    """The server's purger when a hook is set; it waits for the other workers' reload before sending."""
    if not settings.purge_url:
        return None
    return Purger(settings.purge_url, open_ledger(settings.cache_dir, PURGE_LEDGER), settle=settings.reload_interval)


def announce_build(hook: str, directory: Path, noted: Mapping[str, str], budget: float = BUILD_BUDGET) -> Round:
    """A build's purge: note ``noted`` (see :func:`items`), then send everything pending within ``budget``."""
    return announce(hook, directory, noted, budget, sender=Purger, ledger_name=PURGE_LEDGER)

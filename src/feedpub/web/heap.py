"""A server process's long-lived objects, kept out of the cycle collector's way between reloads.

A builder holds its corpus (at 100k articles some 600k objects the collector
tracks) from one reload to the next. Each reload allocates enough for CPython to
start a full collection about once per reload, and that scans the whole corpus
again (0.4-1 s at 100k), holding the GIL while a change waits to be published.
After each reload the watcher freezes what is alive (:func:`gc.freeze`), so the
collector only looks at what was made since. Frozen objects are still freed by
reference counting; only those that die in a cycle would stay, so once the frozen
heap has grown by a quarter since its last full collection (CPython's own rule for
starting one) it is unfrozen and collected whole, which bounds that garbage. A
small corpus is left to the collector as it is: collecting it whole takes
milliseconds, and its garbage is then never frozen.
"""

from __future__ import annotations

import gc

GROWTH = 1.25  # a full collection once the frozen objects are this many times as many as after the last
LARGE = 5_000  # articles from which the heap is frozen (some 6 tracked objects each)


class FrozenHeap:
    """When to collect everything, and freezing the rest of the time; one per process (the GC is)."""

    def __init__(self) -> None:
        self.baseline: int | None = None  # objects frozen right after the last full collection
        self.full_collections = 0

    def settle(self, articles: int) -> None:
        """After a reload to ``articles`` articles: freeze what is alive now, first collecting everything
        if the frozen objects grew too many; below :data:`LARGE` articles, freeze nothing."""
        if articles < LARGE:
            if self.baseline is not None:  # the corpus shrank: back to the collector's usual rounds
                gc.unfreeze()
                self.baseline = None
            return
        if self.baseline is None or gc.get_freeze_count() > self.baseline * GROWTH:
            gc.unfreeze()
            gc.collect()
            self.full_collections += 1
            gc.freeze()
            self.baseline = gc.get_freeze_count()
        else:
            gc.freeze()

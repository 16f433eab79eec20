"""A bounded, thread-safe memo of what is made when first asked for."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class OnDemand(Generic[T]):
    """What is made when first asked for (archive pages, filtered feeds, live feeds read back): at most
    ``size``, the least recently used out; thread-safe.

    A render runs outside the lock, so a slow one holds up no other request. Two
    requests for one key at the same time may both render it; the first stored is
    what both, and every later request, are given.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._made: OrderedDict[Hashable, T] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, make: Callable[[], T]) -> T:
        with self._lock:
            if key in self._made:  # None too, when that is what was made (an output with no live feed)
                self._made.move_to_end(key)
                return self._made[key]
        made = make()
        with self._lock:
            found = self._made.setdefault(key, made)
            self._made.move_to_end(key)
            while len(self._made) > self.size:
                self._made.popitem(last=False)
        return found

    def __len__(self) -> int:
        with self._lock:
            return len(self._made)

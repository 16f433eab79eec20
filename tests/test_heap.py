"""The builder's heap: frozen between reloads, and its frozen garbage collected once it grew a quarter."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from feedpub.web.heap import GROWTH, LARGE, FrozenHeap


class Node:
    """An object in a cycle with itself: only the cycle collector frees it."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def heap() -> Iterator[FrozenHeap]:
    try:
        yield FrozenHeap()
    finally:
        gc.unfreeze()  # the rest of the test session is collected as usual


def test_a_large_corpus_is_frozen_and_frozen_garbage_is_collected_once_it_grew_a_quarter(heap: FrozenHeap) -> None:
    heap.settle(LARGE)
    assert heap.full_collections == 1
    baseline = heap.baseline
    assert baseline is not None and gc.get_freeze_count() == baseline
    batch = baseline // 10 + 1
    dead: list[weakref.ref[Node]] = []
    while heap.full_collections == 1:
        nodes = [Node() for _ in range(batch)]  # alive through a reload...
        heap.settle(LARGE)
        assert gc.get_freeze_count() <= baseline * GROWTH + 2 * batch  # each node: itself and its __dict__
        dead.append(weakref.ref(nodes[0]))
        del nodes  # ...then garbage, but frozen
        gc.collect()
        if heap.full_collections == 1:
            assert all(ref() is not None for ref in dead)  # an ordinary collection leaves frozen cycles
        assert len(dead) < 10
    # That settle collected the garbage frozen before it; the batch alive at it is frozen garbage now.
    assert all(ref() is None for ref in dead[:-1]) and dead[-1]() is not None
    assert gc.get_freeze_count() < baseline * GROWTH


def test_a_small_corpus_is_left_to_the_collector(heap: FrozenHeap) -> None:
    heap.settle(LARGE - 1)
    assert gc.get_freeze_count() == 0 and heap.full_collections == 0
    heap.settle(LARGE)
    assert gc.get_freeze_count() > 0
    heap.settle(LARGE - 1)  # the corpus shrank: nothing stays frozen
    assert gc.get_freeze_count() == 0 and heap.baseline is None

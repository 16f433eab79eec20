"""Fresh locks in a forked child, with one fork hook per process.

A lock that another thread held at fork time stays held forever in the child
(gunicorn ``--preload`` forks its workers from a master that built the app).
Objects holding locks register here: ``os.register_at_fork`` is called once, at
import, however many such objects a process makes, and the registry holds them
weakly, so it keeps none of them alive.
"""

from __future__ import annotations

import os
import weakref
from typing import Protocol


class ForkAware(Protocol):
    def after_fork(self) -> None:
        """Replace what must not cross a fork; runs in the child, which has only the forking thread."""


_live: weakref.WeakSet[ForkAware] = weakref.WeakSet()


def renew_after_fork(holder: ForkAware) -> None:
    """Call ``holder.after_fork()`` in every child this process forks from now on, while ``holder`` lives."""
    _live.add(holder)


def _in_child() -> None:
    for holder in list(_live):
        holder.after_fork()


os.register_at_fork(after_in_child=_in_child)

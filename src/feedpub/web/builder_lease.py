"""Which serving process builds: the one holding an exclusive lock on a file in the cache directory.

``flock`` is released by the kernel when its holder dies, however it dies
(``kill -9`` included), so another process can take over at its next try
without any lease to expire. The lock is per open file, and a forked child
shares its parent's: so neither side of a fork keeps it (gunicorn ``--preload``
builds in the master, which then only forks and watches), and each process takes
it again only from its own thread after the fork.
"""

from __future__ import annotations

import fcntl
import os
import weakref
from pathlib import Path

from ..after_fork import renew_after_fork


class BuilderLease:
    """The right to build one site (``site``: a name for its seeds, URL and rendering), held by at most one process."""

    def __init__(self, directory: Path, site: str) -> None:
        self.path = directory / f"builder-{site}.lock"
        self._fd: int | None = None
        self._finalizer: weakref.finalize[..., BuilderLease] | None = None
        renew_after_fork(self)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_take(self) -> bool:
        """Take the lease if no other process holds it; True if this one holds it now."""
        if self._fd is not None:
            return True
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        # Released when this object goes away (an app a test dropped), not only when the process ends.
        self._finalizer = weakref.finalize(self, os.close, fd)
        return True

    def release(self) -> None:
        """Let go of the lease. In a forked child (``after_fork``) this closes only the child's copy of the
        file, which the parent still holds open: the lock stays the parent's."""
        if self._finalizer is not None:
            self._finalizer()  # closing the last copy of the file releases the lock
        self._fd, self._finalizer = None, None

    after_fork = release

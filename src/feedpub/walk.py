"""Walking a directory tree in one pass of ``os.scandir``, never into linked directories.

The seeds scan and the static build's look at its output directory both need
this; ``os.walk`` would stat every entry a second time to tell files from
directories.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path


def walk(root: Path, skip: Callable[[str], bool] = lambda name: False) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """``(relative POSIX path, entry)`` for every entry under ``root`` that is not a directory.

    Names ``skip`` accepts are passed over, directories included; so is a
    directory below ``root`` that cannot be read, or an entry gone while we looked.
    ``root`` itself that cannot be read raises :class:`OSError`: it is not empty.
    """
    pending = [("", os.fspath(root))]
    while pending:
        prefix, directory = pending.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:
            if not prefix:
                raise
            continue
        for entry in entries:
            if skip(entry.name):
                continue
            try:
                is_directory = entry.is_dir(follow_symlinks=False)
            except OSError:
                continue
            if is_directory:
                pending.append((f"{prefix}{entry.name}/", entry.path))
            else:
                yield prefix + entry.name, entry

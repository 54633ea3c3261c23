"""One build at a time in a folder, across the suite's parallel workers (pytest-xdist).

The browser, sample and JS SDK tests install packages (``npm ci``) and bundle them in
folders of the source tree, which the workers share: two workers building at once would
each see the other's half-written ``node_modules``. :func:`one_at_a_time` makes them take
turns, and the second then finds the work done.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

__all__ = ["one_at_a_time"]


@contextlib.contextmanager
def one_at_a_time(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder``'s ``.build.lock`` for the block (waiting for it as long as it takes).

    Args:
        folder: the folder the block installs or builds into.
    """
    with (folder / ".build.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)

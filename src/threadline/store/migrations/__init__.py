"""Versioned schema migrations, one folder of numbered ``.sql`` files per engine.

``0001_initial.sql`` is version 1. Each engine records the versions it has
applied in a ``schema_migrations`` table and applies the rest, in order, each
in its own transaction.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from importlib import resources

__all__ = ["Migration", "load"]


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load(engine: str) -> list[Migration]:
    """Return the migrations of an engine (``sqlite`` or ``postgres``), oldest first.

    Raises:
        ValueError: two files share a version number.
    """
    folder = resources.files(__package__).joinpath(engine)
    found: list[Migration] = []
    for entry in folder.iterdir():
        name = entry.name
        if not name.endswith(".sql"):
            continue
        number, _, rest = name.partition("_")
        found.append(Migration(int(number), rest.removesuffix(".sql"), entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    for earlier, later in itertools.pairwise(found):
        if earlier.version == later.version:  # two branches took one number: never skip one silently
            raise ValueError(f"two {engine} migrations have version {later.version}: {earlier.name}, {later.name}")
    return found

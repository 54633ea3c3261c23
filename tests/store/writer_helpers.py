"""Helpers of the SQLite writer tests: a scratch table and writes into it."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    return conn


def setup(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")


def rows(path: Path) -> list[tuple[int, str]]:
    with sqlite3.connect(str(path)) as conn:
        return [tuple(r) for r in conn.execute("SELECT k, v FROM t ORDER BY k")]


def insert(k: int, fail: bool = False):  # type: ignore[no-untyped-def]
    def run(conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO t (k, v) VALUES (?, ?)", (k, f"v{k}"))
        if fail:
            raise ValueError(f"write {k} fails after inserting")
        return threading.get_ident()
    return run

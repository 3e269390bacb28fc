"""Small SQL helpers that several parts of the SQLite store share (those both
backends use are in `mailstack.store.sqltext`)."""

from __future__ import annotations

import sqlite3
from typing import Any


def insert_rows(c: sqlite3.Connection, into: str, rows: list[tuple[Any, ...]]) -> None:
    """Multi-row INSERTs: one statement per hundred rows, not one per row."""
    for start in range(0, len(rows), 100):
        chunk = rows[start : start + 100]
        row = "(" + ", ".join("?" * len(chunk[0])) + ")"
        c.execute(
            f"INSERT INTO {into} VALUES " + ", ".join([row] * len(chunk)),
            [value for values in chunk for value in values],
        )

"""Small SQL helpers that several parts of the SQLite store share."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any


def flags_text(flags: Iterable[str]) -> str:
    return " ".join(sorted(set(flags)))


def flags_set(text: str) -> frozenset[str]:
    return frozenset(text.split()) if text else frozenset()


def like_escape(text: str) -> str:
    """text as a LIKE pattern that matches only itself (with ESCAPE '\\')."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def like_prefix(prefix: str) -> str:
    return like_escape(prefix) + "%"


def like_suffix(suffix: str) -> str:
    return "%" + like_escape(suffix)


def insert_rows(c: sqlite3.Connection, into: str, rows: list[tuple[Any, ...]]) -> None:
    """Multi-row INSERTs: one statement per hundred rows, not one per row."""
    for start in range(0, len(rows), 100):
        chunk = rows[start : start + 100]
        row = "(" + ", ".join("?" * len(chunk[0])) + ")"
        c.execute(
            f"INSERT INTO {into} VALUES " + ", ".join([row] * len(chunk)),
            [value for values in chunk for value in values],
        )

"""How both SQL backends write what they keep as text: a message's flags
(sorted, space-separated) and LIKE patterns that match only what they say
(with backslash as the escape, SQLite's ``ESCAPE '\\'`` and PostgreSQL's
default)."""

from __future__ import annotations

from collections.abc import Iterable


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

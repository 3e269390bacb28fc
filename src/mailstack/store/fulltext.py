"""The full-text index both backends keep (issue 16, "search that scales").

What is indexed is what SEARCH matches today (``imap/matching.py``): a
message's decoded header lines (``Name: value``, one a line) and its
searchable body text, both case-folded with ``str.casefold`` -- the folding
the scan applies to both sides -- once per stored message content (a blob,
shared by every copy), and the decoded lines of each message's own trace
prefix (Return-Path, Delivered-To, Received: per copy) once per email. The
store's codec (``ParseCodec.search_text``/``prefix_text``) says what the
texts are; the store never parses mail.

A needle is looked up as a case-folded substring: SQLite's FTS5 ``trigram``
tokenizer, PostgreSQL's ``pg_trgm`` GIN index under ``LIKE``. Both need
three characters; a shorter needle, or one holding a line break (which
could span two lines of the scanned text), gets None and the caller scans.
Because the texts are the scanned ones, folded alike, the answer for
``body`` and ``text`` is exact; for ``header`` it is every message whose
header lines hold the needle, which the caller narrows to one field.
"""

from __future__ import annotations

from typing import Any, Literal

from mailstack.store.contract.messages import ParseCodec

__all__ = ["FIELDS", "Field", "MIN_NEEDLE", "fold", "lookup", "needle", "prefix_text", "texts"]

Field = Literal["text", "body", "header"]
FIELDS: tuple[Field, ...] = ("text", "body", "header")
# Both indexes work on trigrams: a shorter needle has none.
MIN_NEEDLE = 3
# What stands for a character neither backend can keep (NUL; a lone
# surrogate): a needle holding it is never answered from the index.
_REPLACEMENT = "\ufffd"


def fold(text: str) -> str:
    """Text as the index keeps it: case-folded, NUL and lone surrogates
    replaced (PostgreSQL's text holds neither, SQLite's UTF-8 no surrogate)."""
    folded = text.casefold()
    if "\x00" in folded:
        folded = folded.replace("\x00", _REPLACEMENT)
    try:
        folded.encode("utf-8")
    except UnicodeEncodeError:
        folded = "".join(_REPLACEMENT if 0xD800 <= ord(c) <= 0xDFFF else c for c in folded)
    return folded


def needle(text: str) -> str | None:
    """The folded needle the index can answer for, or None (too short, a
    line break, or a character the index does not keep as it is)."""
    folded = text.casefold()
    if len(folded) < MIN_NEEDLE or "\n" in folded or _REPLACEMENT in folded:
        return None
    if "\x00" in folded:
        return None
    try:
        folded.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return folded


def lookup(field: str, text: str) -> str | None:
    """``needle`` of a ``search_text`` call, its field checked first
    (ValueError: not one of FIELDS)."""
    if field not in FIELDS:
        raise ValueError(f"no searchable field {field}")
    return needle(text)


def texts(codec: ParseCodec[Any], stored: bytes) -> tuple[str, str]:
    """The folded header lines and body text of a kept parse; a parse the
    codec cannot read (never one it made) has none."""
    try:
        head, body = codec.search_text(stored)
    except ValueError:
        return "", ""
    return fold(head), fold(body)


def prefix_text(codec: ParseCodec[Any], prefix: bytes) -> str:
    """The folded header lines of a message's own trace prefix."""
    if not prefix:
        return ""
    try:
        return fold(codec.prefix_text(prefix))
    except ValueError:
        return ""

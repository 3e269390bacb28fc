"""A message's parse as the store keeps it.

Callers parse a message once, at delivery or APPEND, and hand the store the
encoded parse with the bytes (``parse_for_store``); the store, opened with
``PARSE_CODEC``, packs it on its writer thread and reads it back on a reader
thread for IMAP FETCH/SEARCH, so neither the parse nor its decoding runs
twice, and the store never imports this package.
"""

from __future__ import annotations

import asyncio

from mailstack.mime.message import (
    ParsedMessage,
    parse,
    prefix_header_text,
    stored_fields,
    stored_search_text,
)
from mailstack.mime.sortkeys import SortKeys
from mailstack.mime.subject import base_subject, message_ids
from mailstack.store.contract.messages import EmailKeys

# The fields threading reads (the first of each).
_THREAD_FIELDS = frozenset(("message-id", "references", "in-reply-to", "subject"))
# Parsing a small message (~80 µs for 2 KiB) costs less than a hop to a thread.
INLINE_PARSE = 32 * 1024


async def parse_for_store(raw: bytes) -> bytes:
    """The parse of raw, encoded but not yet packed (the store's writer packs it)."""
    if len(raw) <= INLINE_PARSE:
        return parse(raw).encode()
    return await asyncio.to_thread(lambda: parse(raw).encode())


class StoredParse:
    """The store's ``ParseCodec`` for ``ParsedMessage``."""

    def pack(self, encoded: bytes) -> bytes:
        return ParsedMessage.pack(encoded)

    def unpack(self, stored: bytes, prefix: bytes) -> ParsedMessage:
        """The parse of ``prefix + raw``: trace fields in front of the shared bytes."""
        parsed = ParsedMessage.from_bytes(stored)
        return parsed.prepend(prefix) if prefix else parsed

    def keys(self, encoded: bytes) -> EmailKeys:
        """Message-ID, In-Reply-To and References ids, and the base subject
        (RFC 5256 §2.1, case-folded so that "Re: Lunch" and "LUNCH" agree)
        of the first of each field; ``encoded`` may also be what ``pack``
        kept (a store threading messages it kept before it had threads)."""
        first: dict[str, str] = {}
        for name, value in stored_fields(encoded):
            if name in _THREAD_FIELDS and name not in first:
                first[name] = value
        own = message_ids(first["message-id"]) if "message-id" in first else []
        # RFC 5322 §3.6.4: References holds the ancestors, In-Reply-To the parents.
        refs: tuple[str, ...] = ()
        if "references" in first or "in-reply-to" in first:
            refs = tuple(dict.fromkeys(
                message_ids(first.get("references", ""))
                + message_ids(first.get("in-reply-to", ""))
            ))
        return EmailKeys(
            own[0] if own else None, refs, base_subject(first.get("subject", "")).casefold()
        )

    def search_text(self, stored: bytes) -> tuple[str, str]:
        """The decoded header lines and the body text SEARCH matches, of
        what ``pack`` kept (the store's full-text index holds them)."""
        return stored_search_text(stored)

    def prefix_text(self, prefix: bytes) -> str:
        """The decoded header lines of a message's own trace fields."""
        return prefix_header_text(prefix)

    def sort_record(self, stored: bytes) -> bytes:
        """The SORT/THREAD keys (mime.sortkeys) of what ``pack`` kept."""
        try:
            parsed = ParsedMessage.from_bytes(stored)
        except (IndexError, KeyError, TypeError, ValueError) as exc:
            raise ValueError("not a kept parse") from exc
        return SortKeys.of(parsed).record()


PARSE_CODEC = StoredParse()

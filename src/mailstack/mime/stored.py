"""A message's parse as the store keeps it.

Callers parse a message once, at delivery or APPEND, and hand the store the
encoded parse with the bytes (``parse_for_store``); the store, opened with
``PARSE_CODEC``, packs it on its writer thread and reads it back on a reader
thread for IMAP FETCH/SEARCH, so neither the parse nor its decoding runs
twice, and the store never imports this package.
"""

from __future__ import annotations

import asyncio

from mailstack.mime.message import ParsedMessage, parse

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


PARSE_CODEC = StoredParse()

"""An LRU of stored parse results, for FETCH and SEARCH.

A message's bytes never change once it has a UID (RFC 3501 §2.3.1.1), so the
parse the store keeps for (mailbox, UIDVALIDITY, UID) can be decoded once and
shared by every session of a listener (one cache per store: it lives in the
session Context); the key carries UIDVALIDITY so a mailbox id reused after a
DELETE never serves a stale entry.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from mailstack.imap.ordering import MessageKeys

if TYPE_CHECKING:
    from mailstack.mime import ParsedMessage
    from mailstack.store import MessageMeta, Store

__all__ = ["ExpungedCache", "MetaInterner", "ParsedCache", "SortKeyCache"]


class ParsedCache:
    """Parse results by (mailbox id, UIDVALIDITY, UID), and the ENVELOPE and
    BODYSTRUCTURE renderings made from them (immutable too)."""

    def __init__(self, capacity: int = 8192) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[tuple[int, int, int], ParsedMessage] = OrderedDict()
        self._rendered: OrderedDict[tuple[int, int, int, str], bytes] = OrderedDict()

    def rendered(self, key: tuple[int, int, int, str], render: Callable[[], bytes]) -> bytes:
        """The cached rendering under key, made by render() on a miss."""
        data = self._rendered.get(key)
        if data is None:
            data = render()
            self._rendered[key] = data
            if len(self._rendered) > 2 * self.capacity:
                self._rendered.popitem(last=False)
        return data

    def peek(self, key: tuple[int, int, int]) -> ParsedMessage | None:
        """The cached parse under key, if any, leaving the LRU order alone."""
        return self._entries.get(key)

    async def get_many(
        self, store: Store[ParsedMessage], mailbox_id: int, uidvalidity: int, uids: Sequence[int]
    ) -> dict[int, ParsedMessage]:
        found: dict[int, ParsedMessage] = {}
        missing: list[int] = []
        entries = self._entries
        for uid in uids:
            key = (mailbox_id, uidvalidity, uid)
            parsed = entries.get(key)
            if parsed is None:
                missing.append(uid)
            else:
                entries.move_to_end(key)
                found[uid] = parsed
        if missing:
            loaded = await store.messages_parsed(mailbox_id, missing)
            for uid, parsed in loaded.items():
                entries[(mailbox_id, uidvalidity, uid)] = parsed
                found[uid] = parsed
            while len(entries) > self.capacity:
                entries.popitem(last=False)
        return found


class SortKeyCache:
    """The SORT and THREAD keys of messages (ordering.MessageKeys), by
    (mailbox id, UIDVALIDITY, UID): made once from the stored parse, a few
    short strings each, so a mailbox is sorted again without reading its
    messages. At most ``capacity`` entries, the first made dropped first
    (no reordering on a hit: a SORT touches every message of a mailbox)."""

    _CHUNK = 500  # parses read from the store per round trip

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._entries: dict[tuple[int, int, int], MessageKeys] = {}

    async def get_many(
        self,
        store: Store[ParsedMessage],
        parsed: ParsedCache,
        mailbox_id: int,
        uidvalidity: int,
        uids: Sequence[int],
    ) -> dict[int, MessageKeys]:
        found: dict[int, MessageKeys] = {}
        missing: list[int] = []
        entries = self._entries
        for uid in uids:
            key = (mailbox_id, uidvalidity, uid)
            keys = entries.get(key)
            if keys is None:
                cached = parsed.peek(key)
                if cached is None:
                    missing.append(uid)
                    continue
                keys = entries[key] = MessageKeys.of(cached)
            found[uid] = keys
        for start in range(0, len(missing), self._CHUNK):
            loaded = await store.messages_parsed(mailbox_id, missing[start : start + self._CHUNK])
            for uid, message in loaded.items():
                keys = entries[(mailbox_id, uidvalidity, uid)] = MessageKeys.of(message)
                found[uid] = keys
        if len(entries) > self.capacity:
            for key in list(itertools.islice(entries, len(entries) - self.capacity)):
                del entries[key]
        return found


class MetaInterner:
    """One shared MessageMeta (and flag set) for every session that has the
    same mailbox selected: a thousand sessions idling on one INBOX then hold
    one copy of its message list's objects, not a thousand."""

    def __init__(self, capacity: int = 200_000) -> None:
        self.capacity = capacity
        self._metas: OrderedDict[tuple[int, int], MessageMeta] = OrderedDict()
        self._flag_sets: dict[frozenset[str], frozenset[str]] = {}

    def intern(self, mailbox_id: int, metas: list[MessageMeta]) -> list[MessageMeta]:
        out = []
        entries = self._metas
        for meta in metas:
            key = (mailbox_id, meta.uid)
            known = entries.get(key)
            if known is not None and known == meta:
                out.append(known)
                continue
            flags = self._flag_sets.setdefault(meta.flags, meta.flags)
            if flags is not meta.flags:
                meta = replace(meta, flags=flags)
            entries[key] = meta
            out.append(meta)
        while len(entries) > self.capacity:
            entries.popitem(last=False)
        if len(self._flag_sets) > 10_000:
            self._flag_sets.clear()
        return out


class ExpungedCache:
    """Messages one session of the node expunged while another session had
    their mailbox selected, kept so that session can still FETCH them until
    it is told of the expunge (RFC 2180 §4.1.1, as Dovecot serves them).

    Entries are (octets, parse) by (mailbox id, UIDVALIDITY, UID), the
    oldest dropped first once their octets pass ``budget``; a message larger
    than the budget is never kept (its FETCH gets NO [EXPUNGEISSUED]).
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._size = 0
        self._entries: OrderedDict[tuple[int, int, int], tuple[bytes, ParsedMessage | None]] = (
            OrderedDict()
        )

    def put(self, key: tuple[int, int, int], raw: bytes, parsed: ParsedMessage | None) -> None:
        if len(raw) > self.budget or key in self._entries:
            return
        self._entries[key] = (raw, parsed)
        self._size += len(raw)
        while self._size > self.budget:
            _key, (old, _parsed) = self._entries.popitem(last=False)
            self._size -= len(old)

    def get(self, key: tuple[int, int, int]) -> tuple[bytes, ParsedMessage | None] | None:
        return self._entries.get(key)

"""An LRU of stored parse results, for FETCH and SEARCH.

A message's bytes never change once it has a UID (RFC 3501 §2.3.1.1), so the
parse the store keeps for (mailbox, UIDVALIDITY, UID) can be decoded once and
shared by every session of a listener (one cache per store: it lives in the
session Context); the key carries UIDVALIDITY so a mailbox id reused after a
DELETE never serves a stale entry.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from mailstack.imap.ordering import MessageKeys

if TYPE_CHECKING:
    from mailstack.mime import ParsedMessage
    from mailstack.store import Mailbox, MessageMeta, Store

__all__ = ["ExpungedCache", "MailboxList", "MetaInterner", "ParsedCache", "SortKeyCache"]


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
    (mailbox id, UIDVALIDITY) then UID: read from the record the store made
    at delivery (``messages_sort_records``; the parse only for a message
    kept without one), a few short strings each, so a mailbox is sorted
    again without reading its messages. At most ``capacity`` messages' keys;
    past it the mailboxes least recently sorted are dropped, whole (a SORT
    touches every message of a mailbox), the one being sorted last."""

    _CHUNK = 500  # parses read from the store per round trip
    _RECORDS = 5000  # sort records (a few hundred octets each) per round trip

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        # One dict per mailbox: no (mailbox, UIDVALIDITY, UID) key per message.
        self._mailboxes: OrderedDict[tuple[int, int], dict[int, MessageKeys]] = OrderedDict()
        self._count = 0

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
        box = (mailbox_id, uidvalidity)
        entries = self._mailboxes.pop(box, None)
        if entries is None:
            entries = {}
        self._count -= len(entries)
        for uid in uids:
            keys = entries.get(uid)
            if keys is None:
                cached = parsed.peek((mailbox_id, uidvalidity, uid))
                if cached is None:
                    missing.append(uid)
                    continue
                keys = entries[uid] = MessageKeys.of(cached)
            found[uid] = keys
        unrecorded: list[int] = []
        shared: dict[str, str] = {}  # equal strings of this mailbox's keys as one
        for start in range(0, len(missing), self._RECORDS):
            chunk = missing[start : start + self._RECORDS]
            records = await store.messages_sort_records(mailbox_id, chunk)
            # Keyed by the caller's UIDs (the view's int objects), not the
            # store's copies: one int per message kept, not two.
            recorded = [uid for uid in chunk if uid in records]
            unrecorded += [uid for uid in chunk if uid not in records]
            made_all = MessageKeys.from_records([records[uid] for uid in recorded], shared)
            for uid, made in zip(recorded, made_all, strict=True):
                if made is None:
                    unrecorded.append(uid)
                else:
                    entries[uid] = found[uid] = made
            del records, made_all
        del shared
        # Expunged meanwhile, or kept without a record: from the parse.
        for start in range(0, len(unrecorded), self._CHUNK):
            loaded = await store.messages_parsed(
                mailbox_id, unrecorded[start : start + self._CHUNK]
            )
            for uid, message in loaded.items():
                entries[uid] = found[uid] = MessageKeys.of(message)
        # Another SORT of this mailbox may have kept keys meanwhile: one count.
        self._count -= len(self._mailboxes.pop(box, {}))
        if len(entries) <= self.capacity:
            self._mailboxes[box] = entries
            self._count += len(entries)
            while self._count > self.capacity:
                _box, dropped = self._mailboxes.popitem(last=False)
                self._count -= len(dropped)
        return found


class MailboxList:
    """A mailbox's messages as of one HIGHESTMODSEQ, ascending by UID, in
    the forms a selected view reads: the UIDs, the MessageMeta by UID and
    the keywords in use. Made once per version of the list and shared by
    every session that selects it, never changed: a view that changes
    copies first (``SelectedMailbox``), so a SELECT of a mailbox some
    session selected before copies nothing (100,000 messages: ~7 ms less)."""

    __slots__ = ("metas", "uids", "meta", "keywords", "_first_unseen", "_flags")

    def __init__(self, metas: list[MessageMeta]) -> None:
        self.metas = metas
        self.uids: list[int] = [m.uid for m in metas]
        self.meta: dict[int, MessageMeta] = dict(zip(self.uids, metas, strict=True))
        keywords: set[str] = set()
        for flags in {m.flags for m in metas}:  # few distinct sets
            keywords.update(f for f in flags if not f.startswith("\\"))
        self.keywords = frozenset(keywords)
        self._first_unseen: int | None = -1  # not looked for yet
        self._flags: list[frozenset[str]] | None = None

    @property
    def flags(self) -> list[frozenset[str]]:
        """The flag set of each message, in ``uids`` order (made once)."""
        if self._flags is None:
            self._flags = [m.flags for m in self.metas]
        return self._flags

    def first_unseen(self) -> int | None:
        """The index in ``uids`` of the first message without \\Seen."""
        if self._first_unseen == -1:
            self._first_unseen = next(
                (i for i, m in enumerate(self.metas) if "\\Seen" not in m.flags), None
            )
        return self._first_unseen


class MetaInterner:
    """The message lists of the mailboxes sessions of the node selected, and
    one shared MessageMeta (and flag set) for every session that has the same
    mailbox selected: a thousand sessions idling on one INBOX then hold one
    copy of its message list's objects, not a thousand.

    A list is kept with the HIGHESTMODSEQ read before it (``select``): the
    next SELECT of the mailbox reads only what changed since (RFC 7162
    CHANGEDSINCE, from the store's modseq index) instead of every message
    row. At most ``capacity`` messages over all lists, the least recently
    selected dropped first; ``recent`` metas met in session polls.
    """

    def __init__(self, capacity: int = 200_000, recent: int = 10_000) -> None:
        self.capacity = capacity
        self.recent = recent
        self._metas: OrderedDict[tuple[int, int], MessageMeta] = OrderedDict()
        self._flag_sets: dict[frozenset[str], frozenset[str]] = {}
        # mailbox id -> (UIDVALIDITY, HIGHESTMODSEQ before the read, messages)
        self._lists: OrderedDict[int, tuple[int, int, MailboxList]] = OrderedDict()
        self._listed = 0  # messages over all lists

    def _shared(self, meta: MessageMeta) -> MessageMeta:
        flags = self._flag_sets.get(meta.flags)
        if flags is None:
            if len(self._flag_sets) > 10_000:
                self._flag_sets.clear()
            flags = self._flag_sets[meta.flags] = meta.flags
        return meta if flags is meta.flags else replace(meta, flags=flags)

    def intern(self, mailbox_id: int, metas: list[MessageMeta]) -> list[MessageMeta]:
        out = []
        entries = self._metas
        for meta in metas:
            key = (mailbox_id, meta.uid)
            known = entries.get(key)
            if (
                known is not None
                and known.modseq == meta.modseq
                and known.email_id == meta.email_id
                and known.flags == meta.flags
            ):
                out.append(known)
                continue
            entries[key] = meta = self._shared(meta)
            out.append(meta)
        while len(entries) > self.recent:
            entries.popitem(last=False)
        return out

    async def select(self, store: Store[ParsedMessage], mailbox: Mailbox) -> MailboxList:
        """The messages of mailbox, ascending by UID, as of its
        ``highest_modseq`` or later (read from the store before this call)."""
        lists = self._lists
        hit = lists.pop(mailbox.id, None)
        if hit is not None:
            self._listed -= len(hit[2].metas)
        if hit is not None and hit[0] == mailbox.uidvalidity and hit[1] <= mailbox.highest_modseq:
            listing = hit[2]
            if hit[1] < mailbox.highest_modseq:
                changed, vanished = await store.changes_since(mailbox.id, hit[1])
                metas = _merged(listing.metas, [self._shared(m) for m in changed], vanished)
                if metas is not listing.metas:
                    listing = MailboxList(metas)
        else:
            flag_sets: dict[frozenset[str], frozenset[str]] = {}
            metas = []
            for meta in await store.messages(mailbox.id):
                # One flag set per distinct value (few in a mailbox).
                flags = flag_sets.setdefault(meta.flags, meta.flags)
                metas.append(meta if flags is meta.flags else replace(meta, flags=flags))
            listing = MailboxList(metas)
        if len(listing.metas) <= self.capacity:
            lists[mailbox.id] = (mailbox.uidvalidity, mailbox.highest_modseq, listing)
            self._listed += len(listing.metas)
            while self._listed > self.capacity:
                _id, (_v, _m, dropped) = lists.popitem(last=False)
                self._listed -= len(dropped.metas)
        return listing


def _merged(
    old: list[MessageMeta], changed: list[MessageMeta], vanished: list[int]
) -> list[MessageMeta]:
    """old (ascending by UID) with changed put in and vanished taken out."""
    if not changed and not vanished:
        return old
    by_uid = {m.uid: m for m in changed}
    gone = set(vanished)
    out = [by_uid.pop(m.uid, m) for m in old if m.uid not in gone]
    added = sorted((m for m in by_uid.values() if m.uid not in gone), key=lambda m: m.uid)
    if added and out and added[0].uid < out[-1].uid:
        return sorted(out + added, key=lambda m: m.uid)
    return out + added


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

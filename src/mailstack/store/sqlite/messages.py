"""The message part of the SQLite store: delivery, APPEND, flags, expunge,
copy and move, and reading messages back (RFC 3501, RFC 7162).

A message's bytes are a blob kept once, with a reference count, however many
mailboxes hold it; each copy has its own trace prefix. The deliveries of one
group commit are filed together with a few multi-row statements
(``_file_many``): every statement lets go of the GIL and has to win it back
from the busy event loop, so statements are what costs.
"""

from __future__ import annotations

import datetime
import functools
import sqlite3
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic

from mailstack.errors import NotFound, QuotaExceeded
from mailstack.store.contract.messages import (
    DeliveryTarget,
    FlagMode,
    FlagResult,
    MessageMeta,
    ParseCodec,
    Parsed,
    canonical_name,
    new_flags,
)
from mailstack.store.sqlite.engine import Engine, GroupWrite, WriteConnection
from mailstack.store.sqlite.sql import insert_rows
from mailstack.store.sqltext import flags_set, flags_text

# Octets of a message read per read transaction by message_chunks().
READ_CHUNK = 128 * 1024


def _meta(row: tuple[Any, ...]) -> MessageMeta:
    uid, flags, internaldate, size, modseq = row
    return MessageMeta(
        uid, flags_set(flags), datetime.datetime.fromisoformat(internaldate), size, modseq
    )


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).astimezone().isoformat()


@dataclass(eq=False, slots=True)
class _Delivery(GroupWrite):
    """A deliver() waiting for the writer: filed on its own, or with its
    neighbours in the same commit."""

    store: MessagesPart[Any]
    raw: bytes
    parsed: bytes  # the caller's encoded parse, not yet packed
    targets: list[DeliveryTarget]
    now: str
    partial: bool = False  # deliver_some(): targets without room are left out

    def __call__(self, c: WriteConnection) -> list[tuple[int, int] | None]:
        return self.store._file_one(c, self)

    def file_together(self, c: WriteConnection, group: list[Any]) -> list[Any]:
        return self.store._file_many(c, group)


class MessagesPart(Engine, Generic[Parsed]):
    _codec: ParseCodec[Parsed]

    async def deliver(
        self, raw: bytes, parsed: bytes, targets: Sequence[DeliveryTarget]
    ) -> list[tuple[int, int]]:
        # Without ``partial`` every target is filed or the delivery raises.
        placed: list[Any] = await self._write(_Delivery(self, raw, parsed, list(targets), _now()))
        return placed

    async def deliver_some(
        self, raw: bytes, parsed: bytes, targets: Sequence[DeliveryTarget]
    ) -> list[tuple[int, int] | None]:
        return await self._write(_Delivery(self, raw, parsed, list(targets), _now(), True))

    def _file_one(self, c: WriteConnection, d: _Delivery) -> list[tuple[int, int] | None]:
        """One delivery on its own: what a group falls back to (see _file_many)."""
        blob_id = c.execute(
            "INSERT INTO blobs (refs, data, parsed) VALUES (?, ?, ?)",
            (len(d.targets), d.raw, self._codec.pack(d.parsed)),
        ).lastrowid
        assert blob_id is not None
        placed: list[tuple[int, int] | None] = []
        for target in d.targets:
            size = len(d.raw) + len(target.prefix)
            charged = c.execute(
                "UPDATE accounts SET used = used + ?"
                " WHERE id = ? AND (quota = 0 OR used + ? <= quota)",
                (size, target.account_id, size),
            ).rowcount
            if not charged:
                if not d.partial:
                    check_quota(c, target.account_id, size)  # says why
                placed.append(None)
                continue
            mailbox_id = delivery_mailbox(c, target)
            uid = insert_message(
                c, mailbox_id, blob_id, target.prefix, size, target.flags, d.now, charge=False
            )
            placed.append((mailbox_id, uid))
        filed = sum(where is not None for where in placed)
        if not filed:
            raise QuotaExceeded("no recipient has room for the message")
        if filed < len(d.targets):
            c.execute("UPDATE blobs SET refs = ? WHERE id = ?", (filed, blob_id))
        return placed

    def _file_many(
        self, c: WriteConnection, deliveries: list[_Delivery]
    ) -> list[list[tuple[int, int]]]:
        """The deliveries waiting in one group commit, filed together.

        Here a whole group takes a handful of statements (per account, per
        mailbox, and one multi-row INSERT per table) instead of eight per
        delivery. Raises when any delivery would fail (a full mailbox, a
        missing INBOX); the caller then rolls the group back and files each
        one on its own, so that only that one fails.
        """
        mailbox_of: dict[tuple[int, str], int] = {}
        charges: dict[int, int] = {}
        arrivals: dict[int, int] = {}
        for d in deliveries:
            for target in d.targets:
                key = (target.account_id, canonical_name(target.mailbox))
                if key not in mailbox_of:
                    mailbox_of[key] = delivery_mailbox(c, target)
                mailbox_id = mailbox_of[key]
                arrivals[mailbox_id] = arrivals.get(mailbox_id, 0) + 1
                size = len(d.raw) + len(target.prefix)
                charges[target.account_id] = charges.get(target.account_id, 0) + size
        for account_id, size in charges.items():
            if not c.execute(
                "UPDATE accounts SET used = used + ?"
                " WHERE id = ? AND (quota = 0 OR used + ? <= quota)",
                (size, account_id, size),
            ).rowcount:
                raise QuotaExceeded("a recipient is near their quota")
        last_blob = c.execute("SELECT coalesce(max(id), 0) FROM blobs").fetchone()[0]
        pack = self._codec.pack
        insert_rows(c, "blobs (id, refs, data, parsed)", [
            (last_blob + n, len(d.targets), d.raw, pack(d.parsed))
            for n, d in enumerate(deliveries, 1)
        ])
        # uidnext and highest_modseq move once per mailbox for all its arrivals.
        next_uid: dict[int, int] = {}
        last_modseq: dict[int, int] = {}
        for mailbox_id, count in arrivals.items():
            uid, modseq = c.execute(
                "UPDATE mailboxes SET uidnext = uidnext + ?, highest_modseq = highest_modseq + ?"
                " WHERE id = ? RETURNING uidnext - ?, highest_modseq - ?",
                (count, count, mailbox_id, count, count),
            ).fetchone()
            next_uid[mailbox_id], last_modseq[mailbox_id] = uid, modseq
            c.touch(mailbox_id)
        rows = []
        placed: list[list[tuple[int, int]]] = []
        for n, d in enumerate(deliveries, 1):
            filed = []
            for target in d.targets:
                mailbox_id = mailbox_of[(target.account_id, canonical_name(target.mailbox))]
                uid = next_uid[mailbox_id]
                modseq = last_modseq[mailbox_id] + 1
                next_uid[mailbox_id], last_modseq[mailbox_id] = uid + 1, modseq
                rows.append((
                    mailbox_id, uid, modseq, flags_text(target.flags), d.now,
                    len(d.raw) + len(target.prefix), last_blob + n, target.prefix,
                ))
                filed.append((mailbox_id, uid))
            placed.append(filed)
        insert_rows(c, "messages", rows)
        return placed

    async def append(
        self,
        mailbox_id: int,
        raw: bytes,
        parsed: bytes,
        flags: Iterable[str] = (),
        internaldate: datetime.datetime | None = None,
    ) -> int:
        when = internaldate or datetime.datetime.now(datetime.UTC).astimezone()
        flag_list = list(flags)

        def op(c: WriteConnection) -> int:
            row = c.execute(
                "SELECT account_id FROM mailboxes WHERE id = ?", (mailbox_id,)
            ).fetchone()
            if row is None:
                raise NotFound("no such mailbox")
            check_quota(c, row[0], len(raw))
            cur = c.execute(
                "INSERT INTO blobs (refs, data, parsed) VALUES (0, ?, ?)",
                (raw, self._codec.pack(parsed)),
            )
            assert cur.lastrowid is not None
            return insert_message(
                c, mailbox_id, cur.lastrowid, b"", len(raw), flag_list, when.isoformat()
            )

        return await self._write(op)

    async def messages(self, mailbox_id: int) -> list[MessageMeta]:
        return await self._read(
            lambda c: [
                _meta(r)
                for r in c.execute(
                    "SELECT uid, flags, internaldate, size, modseq FROM messages"
                    " WHERE mailbox_id = ? ORDER BY uid",
                    (mailbox_id,),
                )
            ]
        )

    async def message_bytes(self, mailbox_id: int, uid: int) -> bytes:
        def op(c: sqlite3.Connection) -> bytes:
            row = c.execute(
                "SELECT m.prefix, b.data FROM messages m JOIN blobs b ON b.id = m.blob_id"
                " WHERE m.mailbox_id = ? AND m.uid = ?",
                (mailbox_id, uid),
            ).fetchone()
            if row is None:
                raise NotFound(f"no message with UID {uid}")
            return bytes(row[0]) + bytes(row[1]) if row[0] else bytes(row[1])

        return await self._read(op)

    async def messages_bytes(self, mailbox_id: int, uids: Sequence[int]) -> dict[int, bytes]:
        wanted = list(uids)

        def op(c: sqlite3.Connection) -> dict[int, bytes]:
            found: dict[int, bytes] = {}
            for uid, prefix, data in _with_blob(c, "data", mailbox_id, wanted):
                found[uid] = bytes(prefix) + bytes(data) if prefix else bytes(data)
            return found

        return await self._read(op)

    async def message_chunks(
        self, mailbox_id: int, uid: int, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        at = start
        while True:
            chunk, total = await self._read(
                functools.partial(_read_range, mailbox_id=mailbox_id, uid=uid, at=at, end=end)
            )
            if chunk:
                yield chunk
            at += len(chunk)
            if not chunk or at >= (total if end is None else min(end, total)):
                return

    async def messages_parsed(self, mailbox_id: int, uids: Sequence[int]) -> dict[int, Parsed]:
        wanted = list(uids)
        unpack = self._codec.unpack

        def op(c: sqlite3.Connection) -> dict[int, Parsed]:
            return {
                uid: unpack(bytes(stored), bytes(prefix))
                for uid, prefix, stored in _with_blob(c, "parsed", mailbox_id, wanted)
            }

        return await self._read(op)

    async def message_parsed(self, mailbox_id: int, uid: int) -> Parsed:
        found = await self.messages_parsed(mailbox_id, [uid])
        if uid not in found:
            raise NotFound(f"no message with UID {uid}")
        return found[uid]

    async def store_flags(
        self,
        mailbox_id: int,
        uids: Iterable[int],
        flags: Iterable[str],
        mode: FlagMode,
        unchanged_since: int | None = None,
    ) -> FlagResult:
        uid_list = sorted(set(uids))
        flag_set = frozenset(flags)

        def op(c: WriteConnection) -> FlagResult:
            changed: list[MessageMeta] = []
            modified: list[int] = []
            modseq: int | None = None
            for uid in uid_list:
                row = c.execute(
                    "SELECT uid, flags, internaldate, size, modseq FROM messages"
                    " WHERE mailbox_id = ? AND uid = ?",
                    (mailbox_id, uid),
                ).fetchone()
                if row is None:
                    continue
                meta = _meta(row)
                if unchanged_since is not None and meta.modseq > unchanged_since:
                    modified.append(uid)
                    continue
                new = new_flags(meta.flags, flag_set, mode)
                if new == meta.flags:
                    continue
                if modseq is None:
                    modseq = bump_modseq(c, mailbox_id)
                c.execute(
                    "UPDATE messages SET flags = ?, modseq = ? WHERE mailbox_id = ? AND uid = ?",
                    (flags_text(new), modseq, mailbox_id, uid),
                )
                changed.append(MessageMeta(uid, new, meta.internaldate, meta.size, modseq))
            return FlagResult(changed, modified)

        return await self._write(op)

    async def expunge(
        self, mailbox_id: int, uids: Iterable[int] | None = None, *, require_deleted: bool = True
    ) -> list[int]:
        wanted = None if uids is None else set(uids)

        def op(c: WriteConnection) -> list[int]:
            rows = c.execute(
                "SELECT uid, flags FROM messages WHERE mailbox_id = ? ORDER BY uid", (mailbox_id,)
            ).fetchall()
            gone = [
                uid
                for uid, flags in rows
                if (wanted is None or uid in wanted)
                and (not require_deleted or "\\Deleted" in flags.split())
            ]
            expunge_uids(c, mailbox_id, gone)
            return gone

        return await self._write(op)

    async def copy(
        self, mailbox_id: int, uids: Iterable[int], dest_mailbox_id: int
    ) -> list[tuple[int, int]]:
        uid_list = list(uids)

        def op(c: WriteConnection) -> list[tuple[int, int]]:
            owner = c.execute(
                "SELECT account_id FROM mailboxes WHERE id = ?", (dest_mailbox_id,)
            ).fetchone()
            if owner is None:
                raise NotFound("no such mailbox")
            # All the copies together must fit, not each one alone.
            total = 0
            distinct = sorted(set(uid_list))
            for start in range(0, len(distinct), 500):
                chunk = distinct[start : start + 500]
                total += c.execute(
                    "SELECT coalesce(sum(size), 0) FROM messages WHERE mailbox_id = ?"
                    f" AND uid IN ({','.join('?' * len(chunk))})",
                    (mailbox_id, *chunk),
                ).fetchone()[0]
            if total:
                check_quota(c, owner[0], total)
            return copy_messages(c, mailbox_id, uid_list, dest_mailbox_id, move=False)

        return await self._write(op)

    async def move(
        self, mailbox_id: int, uids: Iterable[int], dest_mailbox_id: int
    ) -> list[tuple[int, int]]:
        uid_list = list(uids)
        return await self._write(
            lambda c: copy_messages(c, mailbox_id, uid_list, dest_mailbox_id, move=True)
        )

    async def claim_recent(self, mailbox_id: int) -> int:
        def op(c: WriteConnection) -> int:
            row = c.execute(
                "SELECT recent_uid, uidnext FROM mailboxes WHERE id = ?", (mailbox_id,)
            ).fetchone()
            if row is None:
                raise NotFound("no such mailbox")
            c.execute("UPDATE mailboxes SET recent_uid = ? WHERE id = ?", (row[1], mailbox_id))
            return int(row[0])

        return await self._write(op)

    async def changes_since(
        self, mailbox_id: int, modseq: int
    ) -> tuple[list[MessageMeta], list[int]]:
        return await self._read(lambda c: changes(c, mailbox_id, modseq))


def bump_modseq(c: WriteConnection, mailbox_id: int) -> int:
    row = c.execute(
        "UPDATE mailboxes SET highest_modseq = highest_modseq + 1 WHERE id = ?"
        " RETURNING highest_modseq",
        (mailbox_id,),
    ).fetchone()
    if row is None:
        raise NotFound("no such mailbox")
    c.touch(mailbox_id)
    return int(row[0])


def insert_message(
    c: WriteConnection,
    mailbox_id: int,
    blob_id: int,
    prefix: bytes,
    size: int,
    flags: Iterable[str],
    internaldate: str,
    *,
    charge: bool = True,
) -> int:
    """File a message; `charge=False` when the caller already counted the
    blob reference and the account's usage."""
    row = c.execute(
        "UPDATE mailboxes SET uidnext = uidnext + 1, highest_modseq = highest_modseq + 1"
        " WHERE id = ? RETURNING uidnext - 1, highest_modseq, account_id",
        (mailbox_id,),
    ).fetchone()
    if row is None:
        raise NotFound("no such mailbox")
    uid, modseq, account_id = row
    c.execute(
        "INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (mailbox_id, uid, modseq, flags_text(flags), internaldate, size, blob_id, prefix),
    )
    if charge:
        c.execute("UPDATE blobs SET refs = refs + 1 WHERE id = ?", (blob_id,))
        c.execute("UPDATE accounts SET used = used + ? WHERE id = ?", (size, account_id))
    c.touch(mailbox_id)
    return int(uid)


def check_quota(c: sqlite3.Connection, account_id: int, size: int) -> None:
    row = c.execute("SELECT quota, used FROM accounts WHERE id = ?", (account_id,)).fetchone()
    if row is None:
        raise NotFound("no such account")
    quota, used = row
    if quota and used + size > quota:
        raise QuotaExceeded(f"quota of {quota} octets exceeded")


def delivery_mailbox(c: sqlite3.Connection, target: DeliveryTarget) -> int:
    row = c.execute(
        "SELECT id FROM mailboxes WHERE account_id = ? AND name IN (?, 'INBOX')"
        " ORDER BY name = 'INBOX' LIMIT 1",
        (target.account_id, canonical_name(target.mailbox)),
    ).fetchone()
    if row is None:
        raise NotFound("the recipient has no INBOX")
    return int(row[0])


def unref_messages(c: sqlite3.Connection, mailbox_id: int, uids: list[int] | None) -> None:
    """Delete messages (all of the mailbox's when uids is None), give their
    octets back to the account and free blobs no message holds any more."""
    if uids is None:
        rows = c.execute(
            "SELECT blob_id, size FROM messages WHERE mailbox_id = ?", (mailbox_id,)
        ).fetchall()
        c.execute("DELETE FROM messages WHERE mailbox_id = ?", (mailbox_id,))
    else:
        rows = []
        for uid in uids:
            row = c.execute(
                "DELETE FROM messages WHERE mailbox_id = ? AND uid = ? RETURNING blob_id, size",
                (mailbox_id, uid),
            ).fetchone()
            if row:
                rows.append(row)
    freed = sum(size for _blob, size in rows)
    if freed:
        c.execute(
            "UPDATE accounts SET used = max(0, used - ?)"
            " WHERE id = (SELECT account_id FROM mailboxes WHERE id = ?)",
            (freed, mailbox_id),
        )
    for blob_id, _size in rows:
        c.execute("UPDATE blobs SET refs = refs - 1 WHERE id = ?", (blob_id,))
        c.execute("DELETE FROM blobs WHERE id = ? AND refs <= 0", (blob_id,))


def expunge_uids(c: WriteConnection, mailbox_id: int, uids: list[int]) -> None:
    if not uids:
        return
    modseq = bump_modseq(c, mailbox_id)
    unref_messages(c, mailbox_id, uids)
    c.executemany(
        "INSERT OR REPLACE INTO expunged VALUES (?, ?, ?)",
        [(mailbox_id, uid, modseq) for uid in uids],
    )


def copy_messages(
    c: WriteConnection, mailbox_id: int, uids: Iterable[int], dest: int, *, move: bool
) -> list[tuple[int, int]]:
    pairs = []
    for uid in sorted(set(uids)):
        row = c.execute(
            "SELECT flags, internaldate, size, blob_id, prefix FROM messages"
            " WHERE mailbox_id = ? AND uid = ?",
            (mailbox_id, uid),
        ).fetchone()
        if row is None:
            continue
        flags, internaldate, size, blob_id, prefix = row
        new_uid = insert_message(
            c, dest, blob_id, bytes(prefix), size, flags.split(), internaldate
        )
        pairs.append((uid, new_uid))
    if move:
        expunge_uids(c, mailbox_id, [uid for uid, _ in pairs])
    return pairs


def changes(
    c: sqlite3.Connection, mailbox_id: int, modseq: int
) -> tuple[list[MessageMeta], list[int]]:
    """Messages changed after modseq, and UIDs expunged after it."""
    changed = [
        _meta(r)
        for r in c.execute(
            "SELECT uid, flags, internaldate, size, modseq FROM messages"
            " WHERE mailbox_id = ? AND modseq > ? ORDER BY uid",
            (mailbox_id, modseq),
        )
    ]
    vanished = [
        r[0]
        for r in c.execute(
            "SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ? ORDER BY uid",
            (mailbox_id, modseq),
        )
    ]
    return changed, vanished


def _read_range(
    c: sqlite3.Connection, *, mailbox_id: int, uid: int, at: int, end: int | None
) -> tuple[bytes, int]:
    """Up to READ_CHUNK octets from ``at`` (not past ``end``) of prefix + blob,
    and the message's size. The blob is read with incremental blob I/O, so
    only the pages asked for are loaded; the message row is looked up again
    for every chunk, so an expunged message (its blob id perhaps reused) is
    never read on."""
    row = c.execute(
        "SELECT prefix, blob_id FROM messages WHERE mailbox_id = ? AND uid = ?",
        (mailbox_id, uid),
    ).fetchone()
    if row is None:
        raise NotFound(f"no message with UID {uid}")
    prefix = bytes(row[0])
    with c.blobopen("blobs", "data", row[1], readonly=True) as blob:
        total = len(prefix) + len(blob)
        stop = min(at + READ_CHUNK, total if end is None else min(end, total))
        if stop <= at:
            return b"", total
        head = prefix[at:stop]
        if stop <= len(prefix):
            return head, total
        from_blob = max(at - len(prefix), 0)
        blob.seek(from_blob)
        return head + blob.read(stop - len(prefix) - from_blob), total


def _with_blob(
    c: sqlite3.Connection, column: str, mailbox_id: int, uids: list[int]
) -> Iterator[tuple[int, bytes, bytes]]:
    """(uid, prefix, blob column) of many messages, five hundred UIDs a query."""
    for start in range(0, len(uids), 500):
        chunk = uids[start : start + 500]
        yield from c.execute(
            f"SELECT m.uid, m.prefix, b.{column} FROM messages m JOIN blobs b"
            " ON b.id = m.blob_id WHERE m.mailbox_id = ?"
            f" AND m.uid IN ({','.join('?' * len(chunk))})",
            (mailbox_id, *chunk),
        )

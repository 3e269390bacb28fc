"""The message part of the SQLite store: delivery, APPEND, flags, expunge,
copy and move, and reading messages back (RFC 3501, RFC 7162).

A message's bytes are a blob kept once, with a reference count, however many
mailboxes hold it; each copy has its own trace prefix. The deliveries of one
group commit are filed together with a few multi-row statements
(``_file_many``): every statement lets go of the GIL and has to win it back
from the busy event loop, so statements are what costs.

Every message is an email with an id unique in the store (kept by a move
within the account, new for a copy) and a thread (``threads``), given when
it arrives; MODSEQs come from the account's counter (``counters``), one per
message changed, and deleted emails leave tombstones.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic

from mailstack.errors import NotFound, QuotaExceeded
from mailstack.store import fulltext
from mailstack.store.contract.messages import (
    DeliveryTarget,
    EmailKeys,
    FlagMode,
    FlagResult,
    MessageMeta,
    ParseCodec,
    Parsed,
    canonical_name,
    new_flags,
)
from mailstack.store.sqlite.counters import (
    bump_mailbox,
    count_messages,
    counts_of,
    mailbox_account,
    mailbox_modseq,
    next_id,
    next_modseq,
)
from mailstack.store.sqlite.engine import Engine, GroupWrite, WriteConnection
from mailstack.store.sqlite.sql import insert_rows
from mailstack.store.sqlite.threads import Threader
from mailstack.store.sqltext import flags_set, flags_text
from mailstack.store.threadkeys import email_keys

# Octets of a message read per read transaction by message_chunks().
READ_CHUNK = 128 * 1024


META_COLUMNS = "uid, flags, internaldate, size, modseq, email_id, thread_id"


def _meta(row: tuple[Any, ...]) -> MessageMeta:
    uid, flags, internaldate, size, modseq, email_id, thread_id = row
    return MessageMeta(
        uid, flags_set(flags), datetime.datetime.fromisoformat(internaldate), size, modseq,
        email_id, thread_id,
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

    def _thread_keys(self, stored: bytes) -> EmailKeys:
        return email_keys(self._codec, stored)

    def _search_codec(self) -> Any:
        return self._codec

    def _keep_sort_record(self, c: sqlite3.Connection, blob_id: int, packed: bytes) -> None:
        """Keep what SORT and THREAD read of a new blob; a parse the codec
        cannot read (never one it made) gets no record, and its messages
        are sorted from their parse."""
        try:
            record = self._codec.sort_record(packed)
        except ValueError:
            return
        c.execute("INSERT OR REPLACE INTO sort_records VALUES (?, ?)", (blob_id, record))

    def _fill_sort_records(self, conn: sqlite3.Connection) -> None:
        """Records for the messages kept before sort_records was (the
        schema step leaves a marker in ``meta``), a thousand at a time."""
        if conn.execute("SELECT 1 FROM meta WHERE key = 'sort_records_pending'").fetchone() is None:
            return
        last = 0
        while True:
            conn.execute("BEGIN IMMEDIATE")
            try:
                rows = conn.execute(
                    "SELECT b.id, b.parsed FROM blobs b WHERE b.id > ? AND NOT EXISTS"
                    " (SELECT 1 FROM sort_records s WHERE s.blob_id = b.id)"
                    " ORDER BY b.id LIMIT 1000",
                    (last,),
                ).fetchall()
                for blob_id, packed in rows:
                    self._keep_sort_record(conn, blob_id, bytes(packed))
                if not rows:
                    conn.execute("DELETE FROM meta WHERE key = 'sort_records_pending'")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            if not rows:
                return
            last = rows[-1][0]

    async def messages_sort_records(
        self, mailbox_id: int, uids: Sequence[int]
    ) -> dict[int, bytes]:
        wanted = list(uids)

        def op(c: sqlite3.Connection) -> dict[int, bytes]:
            found: dict[int, bytes] = {}
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                for uid, record in c.execute(
                    "SELECT m.uid, s.record FROM messages m JOIN sort_records s"
                    " ON s.blob_id = m.blob_id WHERE m.mailbox_id = ?"
                    f" AND m.uid IN ({','.join('?' * len(chunk))})",
                    (mailbox_id, *chunk),
                ):
                    found[uid] = bytes(record)
            return found

        return await self._read(op)

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
        packed = self._codec.pack(d.parsed)
        blob_id = c.execute(
            "INSERT INTO blobs (refs, data, parsed) VALUES (?, ?, ?)",
            (len(d.targets), d.raw, packed),
        ).lastrowid
        assert blob_id is not None
        index_blob(c, blob_id, fulltext.texts(self._codec, packed))
        self._keep_sort_record(c, blob_id, packed)
        placed: list[tuple[int, int] | None] = []
        keys = email_keys(self._codec, d.parsed)
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
                c, mailbox_id, blob_id, target.prefix, size, target.flags, d.now, keys,
                charge=False, search_prefix=fulltext.prefix_text(self._codec, target.prefix),
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
        mailbox, one indexed thread lookup per delivery with a Message-ID or
        references, and one multi-row INSERT per table) instead of eight per
        delivery. Raises when any delivery would fail (a full mailbox, a
        missing INBOX); the caller then rolls the group back and files each
        one on its own, so that only that one fails.
        """
        mailbox_of: dict[tuple[int, str], int] = {}
        charges: dict[int, int] = {}
        per_account: dict[int, int] = {}
        arrivals: dict[int, int] = {}
        boxes_of: list[list[int]] = []  # each target's mailbox, per delivery
        for d in deliveries:
            boxes_of.append([])
            for target in d.targets:
                key = (target.account_id, canonical_name(target.mailbox))
                if key not in mailbox_of:
                    mailbox_of[key] = delivery_mailbox(c, target)
                mailbox_id = mailbox_of[key]
                boxes_of[-1].append(mailbox_id)
                arrivals[mailbox_id] = arrivals.get(mailbox_id, 0) + 1
                size = len(d.raw) + len(target.prefix)
                charges[target.account_id] = charges.get(target.account_id, 0) + size
                per_account[target.account_id] = per_account.get(target.account_id, 0) + 1
        # Quota and the account's counter move once per account for all its
        # arrivals, uidnext once per mailbox, email ids once for the group.
        next_modseq_of: dict[int, int] = {}
        for account_id, size in charges.items():
            count = per_account[account_id]
            row = c.execute(
                "UPDATE accounts SET used = used + ?, modseq = modseq + ?"
                " WHERE id = ? AND (quota = 0 OR used + ? <= quota) RETURNING modseq",
                (size, count, account_id, size),
            ).fetchone()
            if row is None:
                raise QuotaExceeded("a recipient is near their quota")
            next_modseq_of[account_id] = row[0] - count + 1
            c.touch_account(account_id)
        last_blob = c.execute("SELECT coalesce(max(id), 0) FROM blobs").fetchone()[0]
        packed = [self._codec.pack(d.parsed) for d in deliveries]
        insert_rows(c, "blobs (id, refs, data, parsed)", [
            (last_blob + n, len(d.targets), d.raw, stored)
            for n, (d, stored) in enumerate(zip(deliveries, packed, strict=True), 1)
        ])
        insert_rows(c, "search_blobs (rowid, head, body)", [
            (last_blob + n, *fulltext.texts(self._codec, stored))
            for n, stored in enumerate(packed, 1)
        ])
        prefixes: list[tuple[int, str]] = []
        for n, kept in enumerate(packed, 1):
            self._keep_sort_record(c, last_blob + n, kept)
        # Each copy's MODSEQ (ascending per account), and so each mailbox's
        # HIGHESTMODSEQ, set with its uidnext.
        modseqs: list[list[int]] = []
        highest: dict[int, int] = {}
        for d, boxes in zip(deliveries, boxes_of, strict=True):
            modseqs.append([])
            for target, mailbox_id in zip(d.targets, boxes, strict=True):
                modseq = next_modseq_of[target.account_id]
                next_modseq_of[target.account_id] = modseq + 1
                modseqs[-1].append(modseq)
                highest[mailbox_id] = modseq
        next_uid: dict[int, int] = {}
        for mailbox_id, count in arrivals.items():
            next_uid[mailbox_id] = c.execute(
                "UPDATE mailboxes SET uidnext = uidnext + ?, highest_modseq = ?"
                " WHERE id = ? RETURNING uidnext - ?",
                (count, highest[mailbox_id], mailbox_id, count),
            ).fetchone()[0]
            c.touch(mailbox_id)
        email_id = next_id(c, "email_id", sum(len(d.targets) for d in deliveries))
        keys_of = [email_keys(self._codec, d.parsed) for d in deliveries]
        threader = Threader(c)
        threader.prefetch(
            (target.account_id, keys) for d, keys in zip(deliveries, keys_of, strict=True)
            for target in d.targets
        )
        rows = []
        placed: list[list[tuple[int, int]]] = []
        for n, (d, keys) in enumerate(zip(deliveries, keys_of, strict=True), 1):
            filed = []
            for target, mailbox_id, modseq in zip(
                d.targets, boxes_of[n - 1], modseqs[n - 1], strict=True
            ):
                uid = next_uid[mailbox_id]
                next_uid[mailbox_id] = uid + 1
                thread_id = threader.thread(target.account_id, keys, email_id)
                if target.prefix:
                    prefixes.append((email_id, fulltext.prefix_text(self._codec, target.prefix)))
                rows.append((
                    mailbox_id, uid, modseq, flags_text(target.flags), d.now,
                    len(d.raw) + len(target.prefix), last_blob + n, target.prefix,
                    email_id, thread_id, modseq, d.now,
                ))
                email_id += 1
                filed.append((mailbox_id, uid))
            placed.append(filed)
        insert_rows(c, "messages", rows)
        if prefixes:
            insert_rows(c, "search_prefixes (rowid, head)", prefixes)
        threader.flush()
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
            packed = self._codec.pack(parsed)
            cur = c.execute(
                "INSERT INTO blobs (refs, data, parsed) VALUES (0, ?, ?)", (raw, packed)
            )
            assert cur.lastrowid is not None
            index_blob(c, cur.lastrowid, fulltext.texts(self._codec, packed))
            self._keep_sort_record(c, cur.lastrowid, packed)
            return insert_message(
                c, mailbox_id, cur.lastrowid, b"", len(raw), flag_list, when.isoformat(),
                email_keys(self._codec, parsed),
            )

        return await self._write(op)

    async def messages(self, mailbox_id: int) -> list[MessageMeta]:
        def op(c: sqlite3.Connection) -> list[MessageMeta]:
            # A mailbox has few distinct flag sets: each is split once and
            # shared (a SELECT of a big mailbox makes one list per message).
            flag_sets: dict[str, frozenset[str]] = {}
            when = datetime.datetime.fromisoformat
            out = []
            for uid, flags, internaldate, size, modseq, email_id, thread_id in c.execute(
                f"SELECT {META_COLUMNS} FROM messages WHERE mailbox_id = ? ORDER BY uid",
                (mailbox_id,),
            ):
                shared = flag_sets.get(flags)
                if shared is None:
                    shared = flag_sets[flags] = flags_set(flags)
                out.append(
                    MessageMeta(
                        uid, shared, when(internaldate), size, modseq, email_id, thread_id
                    )
                )
            return out

        return await self._read(op)

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

    async def search_text(self, mailbox_id: int, field: str, needle: str) -> set[int] | None:
        folded = fulltext.lookup(field, needle)
        if folded is None:
            return None
        # An FTS5 phrase: the trigram tokenizer matches it as a substring.
        phrase = '"' + folded.replace('"', '""') + '"'
        column = {"text": "{head body}", "body": "body", "header": "head"}[field]

        # Both index tables are read first (as lists), then the mailbox's
        # rows checked against them: a join would look the index up once
        # per message instead.
        query = (
            "SELECT uid FROM messages WHERE mailbox_id = ? AND (blob_id IN"
            " (SELECT rowid FROM search_blobs WHERE search_blobs MATCH ?)"
        )
        args: tuple[object, ...] = (mailbox_id, f"{column} : {phrase}")
        if field != "body":
            query += (
                " OR email_id IN (SELECT rowid FROM search_prefixes WHERE search_prefixes MATCH ?)"
            )
            args += (phrase,)
        query += ")"

        def op(c: sqlite3.Connection) -> set[int]:
            return {uid for (uid,) in c.execute(query, args)}

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
            to_change: list[tuple[MessageMeta, frozenset[str]]] = []
            modified: list[int] = []
            for uid in uid_list:
                row = c.execute(
                    f"SELECT {META_COLUMNS} FROM messages WHERE mailbox_id = ? AND uid = ?",
                    (mailbox_id, uid),
                ).fetchone()
                if row is None:
                    continue
                meta = _meta(row)
                if unchanged_since is not None and meta.modseq > unchanged_since:
                    modified.append(uid)
                    continue
                new = new_flags(meta.flags, flag_set, mode)
                if new != meta.flags:
                    to_change.append((meta, new))
            changed: list[MessageMeta] = []
            if to_change:
                # Each message its own MODSEQ: changes can then be paged
                # between any two (RFC 7162 allows it; JMAP maxChanges).
                modseq = bump_mailbox(c, mailbox_id, len(to_change))
                unseen = deleted = 0  # the changes to the mailbox's counts
                for meta, new in to_change:
                    c.execute(
                        "UPDATE messages SET flags = ?, modseq = ?"
                        " WHERE mailbox_id = ? AND uid = ?",
                        (flags_text(new), modseq, mailbox_id, meta.uid),
                    )
                    changed.append(dataclasses.replace(meta, flags=new, modseq=modseq))
                    modseq += 1
                    unseen += ("\\Seen" in meta.flags) - ("\\Seen" in new)
                    deleted += ("\\Deleted" in new) - ("\\Deleted" in meta.flags)
                count_messages(c, mailbox_id, (0, 0, unseen, deleted))
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
            return copy_messages(
                c, mailbox_id, uid_list, dest_mailbox_id, move=False, keys=self._thread_keys
            )

        return await self._write(op)

    async def move(
        self, mailbox_id: int, uids: Iterable[int], dest_mailbox_id: int
    ) -> list[tuple[int, int]]:
        uid_list = list(uids)
        return await self._write(
            lambda c: copy_messages(
                c, mailbox_id, uid_list, dest_mailbox_id, move=True, keys=self._thread_keys
            )
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

    async def message_savedates(
        self, mailbox_id: int, uids: Sequence[int]
    ) -> dict[int, datetime.datetime]:
        wanted = sorted(set(uids))

        def op(c: sqlite3.Connection) -> dict[int, datetime.datetime]:
            found = {}
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                for uid, saved in c.execute(
                    "SELECT uid, coalesce(savedate, internaldate) FROM messages"
                    f" WHERE mailbox_id = ? AND uid IN ({','.join('?' * len(chunk))})",
                    (mailbox_id, *chunk),
                ):
                    found[uid] = datetime.datetime.fromisoformat(saved)
            return found

        return await self._read(op)


def insert_message(
    c: WriteConnection,
    mailbox_id: int,
    blob_id: int,
    prefix: bytes,
    size: int,
    flags: Iterable[str],
    internaldate: str,
    thread: EmailKeys | int,
    *,
    charge: bool = True,
    search_prefix: str = "",
) -> int:
    """File a message as a new email, in the thread ``thread`` (an id) or
    the one its keys lead to; `charge=False` when the caller already
    counted the blob reference and the account's usage; ``search_prefix``
    is the folded text of its prefix for the full-text index."""
    account_id, modseq = mailbox_modseq(c, mailbox_id)
    text = flags_text(flags)
    _n, _octets, unseen, deleted = counts_of([(text, size)])
    (uid,) = c.execute(
        "UPDATE mailboxes SET uidnext = uidnext + 1, highest_modseq = ?, messages = messages + 1,"
        " octets = octets + ?, unseen = unseen + ?, deleted = deleted + ?"
        " WHERE id = ? RETURNING uidnext - 1",
        (modseq, size, unseen, deleted, mailbox_id),
    ).fetchone()
    email_id = next_id(c, "email_id")
    if isinstance(thread, EmailKeys):
        threader = Threader(c)
        threader.prefetch([(account_id, thread)])
        thread_id = threader.thread(account_id, thread, email_id)
        threader.flush()
    else:
        thread_id = thread
    c.execute(
        "INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (mailbox_id, uid, modseq, text, internaldate, size, blob_id, prefix,
         email_id, thread_id, modseq, _now()),
    )
    if search_prefix:
        c.execute(
            "INSERT INTO search_prefixes (rowid, head) VALUES (?, ?)", (email_id, search_prefix)
        )
    if charge:
        c.execute("UPDATE blobs SET refs = refs + 1 WHERE id = ?", (blob_id,))
        c.execute("UPDATE accounts SET used = used + ? WHERE id = ?", (size, account_id))
    c.touch(mailbox_id)
    return int(uid)


def index_blob(c: sqlite3.Connection, blob_id: int, texts: tuple[str, str]) -> None:
    """A new blob's folded header lines and body text into the full-text index."""
    c.execute("INSERT INTO search_blobs (rowid, head, body) VALUES (?, ?, ?)", (blob_id, *texts))


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


def unref_messages(
    c: WriteConnection, mailbox_id: int, uids: list[int] | None, modseq: int
) -> None:
    """Delete messages (all of the mailbox's when uids is None), leave a
    tombstone of each email with its MODSEQ (``modseq``, ``modseq + 1``, ...
    in the order deleted), give their octets back to the account and free
    blobs no message holds any more."""
    returning = " RETURNING blob_id, size, email_id, thread_id, created_modseq, flags"
    if uids is None:
        rows = c.execute(
            "DELETE FROM messages WHERE mailbox_id = ?" + returning, (mailbox_id,)
        ).fetchall()
    else:
        rows = []
        for uid in uids:
            row = c.execute(
                "DELETE FROM messages WHERE mailbox_id = ? AND uid = ?" + returning,
                (mailbox_id, uid),
            ).fetchone()
            if row:
                rows.append(row)
    if not rows:
        return
    count_messages(c, mailbox_id, counts_of((row[5], row[1]) for row in rows), -1)
    account_id = mailbox_account(c, mailbox_id)
    c.executemany(
        "INSERT OR REPLACE INTO email_tombstones VALUES (?, ?, ?, ?, ?)",
        [
            (email_id, account_id, thread_id, created, modseq + n)
            for n, (_blob, _size, email_id, thread_id, created, _flags) in enumerate(rows)
        ],
    )
    freed = sum(row[1] for row in rows)
    if freed:
        c.execute(
            "UPDATE accounts SET used = max(0, used - ?) WHERE id = ?", (freed, account_id)
        )
    c.executemany(
        "DELETE FROM search_prefixes WHERE rowid = ?", [(row[2],) for row in rows]
    )
    for blob_id, *_rest in rows:
        c.execute("UPDATE blobs SET refs = refs - 1 WHERE id = ?", (blob_id,))
        if c.execute("DELETE FROM blobs WHERE id = ? AND refs <= 0", (blob_id,)).rowcount:
            c.execute("DELETE FROM search_blobs WHERE rowid = ?", (blob_id,))


def expunge_uids(c: WriteConnection, mailbox_id: int, uids: list[int]) -> None:
    if not uids:
        return
    modseq = bump_mailbox(c, mailbox_id, len(uids))
    unref_messages(c, mailbox_id, uids, modseq)
    c.executemany(
        "INSERT OR REPLACE INTO expunged VALUES (?, ?, ?)",
        [(mailbox_id, uid, modseq + n) for n, uid in enumerate(uids)],
    )


def copy_messages(
    c: WriteConnection,
    mailbox_id: int,
    uids: Iterable[int],
    dest: int,
    *,
    move: bool,
    keys: Callable[[bytes], EmailKeys] | None = None,
) -> list[tuple[int, int]]:
    """Copy (new emails, in the same threads within an account) or move
    (the same emails, when both mailboxes are the account's; between
    accounts a move is a copy and an expunge, threaded in the other account
    by ``keys`` of the kept parse)."""
    source_account = mailbox_account(c, mailbox_id)
    dest_account = mailbox_account(c, dest)
    if move and source_account == dest_account:
        return _move_within(c, mailbox_id, sorted(set(uids)), dest, dest_account)
    pairs = []
    for uid in sorted(set(uids)):
        row = c.execute(
            "SELECT flags, internaldate, size, blob_id, prefix, thread_id FROM messages"
            " WHERE mailbox_id = ? AND uid = ?",
            (mailbox_id, uid),
        ).fetchone()
        if row is None:
            continue
        flags, internaldate, size, blob_id, prefix, thread_id = row
        thread: EmailKeys | int = thread_id
        if source_account != dest_account:
            parsed = c.execute("SELECT parsed FROM blobs WHERE id = ?", (blob_id,)).fetchone()[0]
            thread = keys(bytes(parsed)) if keys else EmailKeys(None, (), "")
        kept = c.execute(
            "SELECT p.head FROM search_prefixes p JOIN messages m ON p.rowid = m.email_id"
            " WHERE m.mailbox_id = ? AND m.uid = ?",
            (mailbox_id, uid),
        ).fetchone()
        new_uid = insert_message(
            c, dest, blob_id, bytes(prefix), size, flags.split(), internaldate, thread,
            search_prefix=kept[0] if kept else "",
        )
        pairs.append((uid, new_uid))
    if move:
        expunge_uids(c, mailbox_id, [uid for uid, _ in pairs])
    return pairs


def _move_within(
    c: WriteConnection, mailbox_id: int, uids: list[int], dest: int, account_id: int
) -> list[tuple[int, int]]:
    """RFC 6851 MOVE inside one account: each message keeps its email id
    (JMAP: its mailboxIds changed), gets a UID in dest and a MODSEQ; the
    source remembers the UIDs expunged, with MODSEQs of their own."""
    rows = [
        (uid, row)
        for uid in uids
        if (
            row := c.execute(
                "SELECT flags, size FROM messages WHERE mailbox_id = ? AND uid = ?",
                (mailbox_id, uid),
            ).fetchone()
        )
    ]
    if not rows:
        return []
    found = [uid for uid, _row in rows]
    counts = counts_of(row for _uid, row in rows)
    count_messages(c, mailbox_id, counts, -1)
    count_messages(c, dest, counts)
    count = len(found)
    modseq = next_modseq(c, account_id, count)
    (uid_next,) = c.execute(
        "UPDATE mailboxes SET uidnext = uidnext + ?, highest_modseq = ?"
        " WHERE id = ? RETURNING uidnext - ?",
        (count, modseq + count - 1, dest, count),
    ).fetchone()
    pairs = []
    saved = _now()  # RFC 8514 §3: a moved message is saved anew
    for n, uid in enumerate(found):
        c.execute(
            "UPDATE messages SET mailbox_id = ?, uid = ?, modseq = ?, savedate = ?"
            " WHERE mailbox_id = ? AND uid = ?",
            (dest, uid_next + n, modseq + n, saved, mailbox_id, uid),
        )
        pairs.append((uid, uid_next + n))
    c.touch(dest)
    gone = bump_mailbox(c, mailbox_id, count)
    c.executemany(
        "INSERT OR REPLACE INTO expunged VALUES (?, ?, ?)",
        [(mailbox_id, uid, gone + n) for n, uid in enumerate(found)],
    )
    return pairs


# Fewer changed messages than this are read through the (mailbox_id, modseq)
# index; more, by walking the mailbox in UID order (see changes).
_FEW_CHANGES = 1000


def changes(
    c: sqlite3.Connection, mailbox_id: int, modseq: int
) -> tuple[list[MessageMeta], list[int]]:
    """Messages changed after modseq, and UIDs expunged after it.

    A session catching up asks for what changed since a MODSEQ near the
    mailbox's highest: a few rows, found in the modseq index. SQLite, with
    no statistics, would walk every message of the mailbox in UID order for
    the ORDER BY (8 ms at 100,000 messages, for none changed), the better
    plan only when most of them changed; a count through the index, capped,
    tells which case this is."""
    (few,) = c.execute(
        "SELECT count(*) < ? FROM (SELECT 1 FROM messages INDEXED BY messages_modseq"
        " WHERE mailbox_id = ? AND modseq > ? LIMIT ?)",
        (_FEW_CHANGES, mailbox_id, modseq, _FEW_CHANGES),
    ).fetchone()
    index = "INDEXED BY messages_modseq" if few else "NOT INDEXED"
    changed = [
        _meta(r)
        for r in c.execute(
            f"SELECT {META_COLUMNS} FROM messages {index}"
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

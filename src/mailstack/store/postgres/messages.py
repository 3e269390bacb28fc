"""The message part of the PostgreSQL store: delivery, APPEND, flags,
expunge, copy and move, and reading messages back (RFC 3501, RFC 7162).

A message's bytes are content-addressed: one ``blobs`` row per SHA-256 of
the bytes, with a reference count, however many mailboxes (and deliveries:
the same message sent twice) hold it; each copy has its own trace prefix.
UIDs and MODSEQs come from ``UPDATE mailboxes ... RETURNING``, which locks
the mailbox's row until the commit: nodes delivering into one mailbox at once
take their UIDs one after the other, strictly ascending, and none is lost.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import hashlib
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic

from mailstack.errors import NotFound, QuotaExceeded, StoreError
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
from mailstack.store.postgres.counters import (
    bump_mailbox,
    mailbox_account,
    mailbox_modseq,
    next_email_ids,
    next_modseq,
)
from mailstack.store.postgres.engine import CHANNEL, GroupWrite, PgEngine, Tx
from mailstack.store.postgres.threads import Threader
from mailstack.store.sqltext import flags_set, flags_text
from mailstack.store.threadkeys import email_keys

# Octets of a message read per read transaction by message_chunks().
READ_CHUNK = 128 * 1024
_META = "SELECT uid, flags, internaldate, size, modseq, email_id, thread_id FROM messages"


def _meta(row: Any) -> MessageMeta:
    uid, flags, internaldate, size, modseq, email_id, thread_id = row
    return MessageMeta(
        int(uid), flags_set(flags), datetime.datetime.fromisoformat(internaldate), int(size),
        int(modseq), int(email_id), int(thread_id),
    )


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).astimezone().isoformat()


async def _keep_blob(
    c: Any, raw: bytes, packed: bytes, refs: int, texts: tuple[str, str], record: bytes | None
) -> bytes:
    """The digest of raw, kept once with ``refs`` more references, its
    searchable texts in the full-text index and its SORT/THREAD record."""
    digest = hashlib.sha256(raw).digest()
    await c.execute(
        "INSERT INTO blobs (digest, refs, data, parsed) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (digest) DO UPDATE SET refs = blobs.refs + excluded.refs",
        digest, refs, raw, packed,
    )
    await c.execute(
        "INSERT INTO search_blobs VALUES ($1, $2, $3) ON CONFLICT (digest) DO NOTHING",
        digest, *texts,
    )
    if record is not None:
        await c.execute(
            "INSERT INTO sort_records (digest, record) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            digest, record,
        )
    return digest


# Past this many octets a message's searchable texts and SORT record are
# made on a thread, not on the event loop (as mime.parse_for_store does with
# the parse itself).
_INLINE_DERIVE = 32 * 1024


async def _derived(
    codec: ParseCodec[Any], packed: bytes, size: int
) -> tuple[tuple[str, str], bytes | None]:
    """The full-text index's texts and the SORT/THREAD record of a packed
    parse, for a message of ``size`` octets."""

    def derive() -> tuple[tuple[str, str], bytes | None]:
        return fulltext.texts(codec, packed), _sort_record(codec, packed)

    return derive() if size <= _INLINE_DERIVE else await asyncio.to_thread(derive)


def _sort_record(codec: ParseCodec[Any], packed: bytes) -> bytes | None:
    """What SORT and THREAD read of a packed parse; None for one the codec
    cannot read (never one it made): its messages are sorted from their parse."""
    try:
        return codec.sort_record(packed)
    except ValueError:
        return None


@dataclass(eq=False, slots=True)
class _Delivery(GroupWrite):
    """A deliver() waiting for the writer: filed on its own, or with its
    neighbours in the same commit."""

    store: MessagesPart[Any]
    raw: bytes
    packed: bytes  # the codec's packing of the caller's parse
    keys: EmailKeys  # what it is threaded by
    texts: tuple[str, str]  # folded header lines and body text (fulltext)
    record: bytes | None  # what SORT and THREAD read (ParseCodec.sort_record)
    targets: list[DeliveryTarget]
    now: str
    partial: bool = False  # deliver_some(): targets without room are left out

    async def __call__(self, t: Tx) -> list[tuple[int, int] | None]:
        return await self.store._file_one(t, self)

    async def file_together(self, t: Tx, group: list[Any]) -> list[Any]:
        return await self.store._file_many(t, group)


class MessagesPart(PgEngine, Generic[Parsed]):
    _codec: ParseCodec[Parsed]

    def _thread_keys(self, stored: bytes) -> EmailKeys:
        return email_keys(self._codec, stored)

    def _search_codec(self) -> Any:
        return self._codec

    async def deliver(
        self, raw: bytes, parsed: bytes, targets: Sequence[DeliveryTarget]
    ) -> list[tuple[int, int]]:
        placed: list[Any] = await self._deliver(raw, parsed, targets, partial=False)
        return placed

    async def deliver_some(
        self, raw: bytes, parsed: bytes, targets: Sequence[DeliveryTarget]
    ) -> list[tuple[int, int] | None]:
        return await self._deliver(raw, parsed, targets, partial=True)

    async def _deliver(
        self, raw: bytes, parsed: bytes, targets: Sequence[DeliveryTarget], *, partial: bool
    ) -> list[tuple[int, int] | None]:
        packed = self._codec.pack(parsed)
        keys = email_keys(self._codec, parsed)
        texts, record = await _derived(self._codec, packed, len(raw))
        return await self._write(
            _Delivery(self, raw, packed, keys, texts, record, list(targets), _now(), partial)
        )

    async def _file_one(self, t: Tx, d: _Delivery) -> list[tuple[int, int] | None]:
        """One delivery on its own: what a group falls back to (see _file_many)."""
        c = t.conn
        placed: list[tuple[int, int] | None] = []
        digest = hashlib.sha256(d.raw).digest()
        for target in d.targets:
            size = len(d.raw) + len(target.prefix)
            charged = await c.fetchval(
                "UPDATE accounts SET used = used + $1"
                " WHERE id = $2 AND (quota = 0 OR used + $1 <= quota) RETURNING 1",
                size, target.account_id,
            )
            if charged is None:
                if not d.partial:
                    await check_quota(c, target.account_id, size)  # says why
                placed.append(None)
                continue
            mailbox_id = await delivery_mailbox(c, target)
            uid = await insert_message(
                t, mailbox_id, digest, target.prefix, size, target.flags, d.now, d.keys,
                charge=False, search_prefix=fulltext.prefix_text(self._codec, target.prefix),
            )
            placed.append((mailbox_id, uid))
        filed = sum(where is not None for where in placed)
        if not filed:
            raise QuotaExceeded("no recipient has room for the message")
        await _keep_blob(c, d.raw, d.packed, filed, d.texts, d.record)
        return placed

    async def _file_many(self, t: Tx, deliveries: list[_Delivery]) -> list[list[tuple[int, int]]]:
        """The deliveries waiting in one group commit, filed together: four
        statements for the whole group (mailboxes with the email ids, quotas,
        UIDs with HIGHESTMODSEQs, blobs with messages; two more for threads
        when the messages have ids to thread by) instead of some eight per
        delivery, each a round trip.
        Raises when any delivery would fail (a full mailbox, a missing INBOX);
        the caller then rolls the group back and files each one on its own,
        so that only that one fails."""
        c = t.conn
        keys = sorted({
            (target.account_id, canonical_name(target.mailbox))
            for d in deliveries for target in d.targets
        })
        rows = await c.fetch(
            "SELECT k.a, k.n, (SELECT id FROM mailboxes WHERE account_id = k.a"
            " AND name IN (k.n, 'INBOX') ORDER BY name = 'INBOX' LIMIT 1),"
            " CASE WHEN k.o = 1 THEN (SELECT array_agg(v ORDER BY v) FROM"
            " (SELECT nextval('email_ids') AS v FROM generate_series(1, $3)) AS s) END"
            " FROM unnest($1::bigint[], $2::text[]) WITH ORDINALITY AS k(a, n, o)",
            [a for a, _ in keys], [n for _, n in keys],
            sum(len(d.targets) for d in deliveries),
        )
        mailbox_of = {(int(r[0]), str(r[1])): r[2] for r in rows}
        email_ids = iter(next(r[3] for r in rows if r[3] is not None))
        if any(found is None for found in mailbox_of.values()):
            raise NotFound("a recipient has no INBOX")
        charges: dict[int, int] = {}
        per_account: dict[int, int] = {}
        arrivals: dict[int, int] = {}
        refs: dict[bytes, list[Any]] = {}
        digests = []
        for d in deliveries:
            digest = hashlib.sha256(d.raw).digest()
            digests.append(digest)
            refs.setdefault(digest, [0, d.raw, d.packed, d.texts, d.record])[0] += len(d.targets)
            for target in d.targets:
                mailbox_id = int(mailbox_of[(target.account_id, canonical_name(target.mailbox))])
                arrivals[mailbox_id] = arrivals.get(mailbox_id, 0) + 1
                charges[target.account_id] = (
                    charges.get(target.account_id, 0) + len(d.raw) + len(target.prefix)
                )
                per_account[target.account_id] = per_account.get(target.account_id, 0) + 1
        # Quota and the account's counter move once per account (accounts
        # locked in one order, then mailboxes), uidnext once per mailbox.
        accounts = sorted(charges)
        charged = await c.fetch(
            "UPDATE accounts SET used = used + g.size, modseq = modseq + g.n"
            " FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS g(id, size, n)"
            " WHERE accounts.id = g.id AND (quota = 0 OR used + g.size <= quota)"
            " RETURNING accounts.id, accounts.modseq - g.n",
            accounts, [charges[a] for a in accounts], [per_account[a] for a in accounts],
        )
        if len(charged) != len(accounts):
            raise QuotaExceeded("a recipient is near their quota")
        next_modseq_of = {int(r[0]): int(r[1]) + 1 for r in charged}
        for account_id in accounts:
            t.touch_account(account_id)
        # Each target's MODSEQ, in delivery order: so each mailbox's
        # HIGHESTMODSEQ is known before its UIDs are taken, in one statement.
        modseqs: list[list[int]] = []
        highest: dict[int, int] = {}
        for d in deliveries:
            modseqs.append([])
            for target in d.targets:
                mailbox_id = int(mailbox_of[(target.account_id, canonical_name(target.mailbox))])
                modseq = next_modseq_of[target.account_id]
                next_modseq_of[target.account_id] = modseq + 1
                highest[mailbox_id] = modseq
                modseqs[-1].append(modseq)
        mailboxes = sorted(arrivals)
        next_uid: dict[int, int] = {}
        for r in await c.fetch(
            "UPDATE mailboxes m SET uidnext = uidnext + g.n, highest_modseq = g.modseq"
            " FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS g(id, n, modseq)"
            " WHERE m.id = g.id RETURNING m.id, m.uidnext - g.n",
            mailboxes, [arrivals[m] for m in mailboxes], [highest[m] for m in mailboxes],
        ):
            next_uid[int(r[0])] = int(r[1])
            t.touch(int(r[0]))
        threader = Threader(c)
        await threader.prefetch(
            (target.account_id, d.keys) for d in deliveries for target in d.targets
        )
        kept = sorted(refs)
        await c.execute(
            "INSERT INTO search_blobs SELECT * FROM unnest($1::bytea[], $2::text[], $3::text[])"
            " ON CONFLICT (digest) DO NOTHING",
            kept, [refs[k][3][0] for k in kept], [refs[k][3][1] for k in kept],
        )
        prefixes: tuple[list[int], list[str]] = ([], [])
        columns: list[list[Any]] = [[] for _ in range(12)]
        placed: list[list[tuple[int, int]]] = []
        for d, digest, modseqs_of_d in zip(deliveries, digests, modseqs, strict=True):
            filed = []
            for target, modseq in zip(d.targets, modseqs_of_d, strict=True):
                mailbox_id = int(mailbox_of[(target.account_id, canonical_name(target.mailbox))])
                uid = next_uid[mailbox_id]
                next_uid[mailbox_id] = uid + 1
                email_id = next(email_ids)
                if target.prefix:
                    prefixes[0].append(email_id)
                    prefixes[1].append(fulltext.prefix_text(self._codec, target.prefix))
                row = (
                    mailbox_id, uid, modseq, flags_text(target.flags), d.now,
                    len(d.raw) + len(target.prefix), digest, target.prefix, email_id,
                    threader.thread(target.account_id, d.keys, email_id), modseq, d.now,
                )
                for column, value in zip(columns, row, strict=True):
                    column.append(value)
                filed.append((mailbox_id, uid))
            placed.append(filed)
        # One statement: the blobs (a CTE that changes rows always runs), the
        # messages that name them by digest (no foreign key between them),
        # and the notification of the mailboxes and accounts they changed
        # (sent at the COMMIT, as the writer's own would be).
        await c.execute(
            "WITH kept AS (INSERT INTO blobs (digest, refs, data, parsed)"
            " SELECT * FROM unnest($1::bytea[], $2::bigint[], $3::bytea[], $4::bytea[])"
            " ON CONFLICT (digest) DO UPDATE SET refs = blobs.refs + excluded.refs)"
            " INSERT INTO messages SELECT u.* FROM unnest($5::bigint[], $6::bigint[],"
            " $7::bigint[], $8::text[], $9::text[], $10::bigint[], $11::bytea[], $12::bytea[],"
            " $13::bigint[], $14::bigint[], $15::bigint[], $16::text[]) AS u"
            " CROSS JOIN (SELECT pg_notify($17, $18)) AS told",
            kept, [refs[k][0] for k in kept], [refs[k][1] for k in kept],
            [refs[k][2] for k in kept], *columns, CHANNEL, t.notice(self),
        )
        # What refers to the blobs just kept: after them.
        recorded = [k for k in kept if refs[k][4] is not None]
        await c.execute(
            "INSERT INTO sort_records (digest, record)"
            " SELECT * FROM unnest($1::bytea[], $2::bytea[]) ON CONFLICT DO NOTHING",
            recorded, [refs[k][4] for k in recorded],
        )
        if prefixes[0]:
            await c.execute(
                "INSERT INTO search_prefixes SELECT * FROM unnest($1::bigint[], $2::text[])",
                *prefixes,
            )
        await threader.flush()
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
        packed = self._codec.pack(parsed)
        keys = email_keys(self._codec, parsed)
        texts, record = await _derived(self._codec, packed, len(raw))

        async def op(t: Tx) -> int:
            account_id = await t.conn.fetchval(
                "SELECT account_id FROM mailboxes WHERE id = $1", mailbox_id
            )
            if account_id is None:
                raise NotFound("no such mailbox")
            await check_quota(t.conn, account_id, len(raw))
            digest = await _keep_blob(t.conn, raw, packed, 0, texts, record)
            return await insert_message(
                t, mailbox_id, digest, b"", len(raw), flag_list, when.isoformat(), keys
            )

        return await self._write(op)

    async def messages(self, mailbox_id: int) -> list[MessageMeta]:
        async def op(c: Any) -> list[MessageMeta]:
            rows = await c.fetch(_META + " WHERE mailbox_id = $1 ORDER BY uid", mailbox_id)
            return [_meta(r) for r in rows]

        return await self._read_one(op)

    async def message_bytes(self, mailbox_id: int, uid: int) -> bytes:
        found = await self.messages_bytes(mailbox_id, [uid])
        if uid not in found:
            raise NotFound(f"no message with UID {uid}")
        return found[uid]

    async def messages_bytes(self, mailbox_id: int, uids: Sequence[int]) -> dict[int, bytes]:
        async def op(c: Any) -> dict[int, bytes]:
            rows = await _with_blob(c, "data", mailbox_id, uids)
            return {int(uid): bytes(prefix) + bytes(data) for uid, prefix, data in rows}

        return await self._read_one(op)

    async def message_chunks(
        self, mailbox_id: int, uid: int, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        at = start
        while True:
            chunk, total = await self._read(_ReadRange(mailbox_id, uid, at, end))
            if chunk:
                yield chunk
            at += len(chunk)
            if not chunk or at >= (total if end is None else min(end, total)):
                return

    async def messages_parsed(self, mailbox_id: int, uids: Sequence[int]) -> dict[int, Parsed]:
        unpack = self._codec.unpack

        async def op(c: Any) -> list[Any]:
            return list(await _with_blob(c, "parsed", mailbox_id, uids))

        rows = await self._read_one(op)
        return {int(uid): unpack(bytes(stored), bytes(prefix)) for uid, prefix, stored in rows}

    async def search_text(self, mailbox_id: int, field: str, needle: str) -> set[int] | None:
        folded = fulltext.lookup(field, needle)
        if folded is None:
            return None
        # LIKE on the folded text (pg_trgm's GIN indexes serve it): the
        # needle's own wildcards and escapes are escaped. The pattern is
        # written into the statement as a string constant (quotes doubled;
        # standard_conforming_strings is on, the default since PostgreSQL
        # 9.1, and the needle holds no NUL): planned for a parameter, the
        # GIN index's cost is unknown and a scan is chosen instead.
        pattern = "%" + "".join("\\" + ch if ch in "\\%_" else ch for ch in folded) + "%"
        like = "'" + pattern.replace("'", "''") + "'"
        # One LIKE per branch: an OR of two is not planned as two GIN lookups.
        columns = {"text": ("head", "body"), "body": ("body",), "header": ("head",)}[field]
        found = " UNION ALL ".join(
            f"SELECT s.digest FROM search_blobs s WHERE s.{column} LIKE {like}"
            for column in columns
        )
        query = f"SELECT m.uid FROM messages m WHERE m.mailbox_id = $1 AND m.digest IN ({found})"
        if field != "body":
            query += (
                " UNION SELECT m.uid FROM search_prefixes s JOIN messages m"
                f" ON m.email_id = s.email_id WHERE s.head LIKE {like} AND m.mailbox_id = $1"
            )

        async def op(c: Any) -> set[int]:
            if await c.fetchval("SHOW standard_conforming_strings") != "on":
                raise StoreError("standard_conforming_strings must be on")
            # The texts live out of line (TOAST), which the planner does not
            # count: it would scan them rather than use the GIN indexes.
            # For this read transaction only.
            await c.execute("SET LOCAL enable_seqscan = off")
            return {int(r[0]) for r in await c.fetch(query, mailbox_id)}

        return await self._read(op)

    async def messages_sort_records(
        self, mailbox_id: int, uids: Sequence[int]
    ) -> dict[int, bytes]:
        async def op(c: Any) -> list[Any]:
            return list(
                await c.fetch(
                    "SELECT m.uid, s.record FROM messages m JOIN sort_records s"
                    " ON s.digest = m.digest WHERE m.mailbox_id = $1"
                    " AND m.uid = ANY($2::bigint[])",
                    mailbox_id, list(uids),
                )
            )  # fmt: skip

        return {int(uid): bytes(record) for uid, record in await self._read(op)}

    async def _fill_sort_records(self, conn: Any) -> None:
        """Records for the messages kept before sort_records was (the
        schema step leaves a marker in ``meta``), a thousand at a time;
        several nodes may do it at once (each record is the same)."""
        if await conn.fetchval("SELECT 1 FROM meta WHERE key = 'sort_records_pending'") is None:
            return
        last = b""
        while True:
            rows = await conn.fetch(
                "SELECT b.digest, b.parsed FROM blobs b WHERE b.digest > $1 AND NOT EXISTS"
                " (SELECT 1 FROM sort_records s WHERE s.digest = b.digest)"
                " ORDER BY b.digest LIMIT 1000",
                last,
            )
            if not rows:
                await conn.execute("DELETE FROM meta WHERE key = 'sort_records_pending'")
                return
            made = [(bytes(d), _sort_record(self._codec, bytes(p))) for d, p in rows]
            kept = [(d, r) for d, r in made if r is not None]
            # A blob freed meanwhile has no row to refer to: skipped.
            await conn.execute(
                "INSERT INTO sort_records (digest, record)"
                " SELECT g.d, g.r FROM unnest($1::bytea[], $2::bytea[]) AS g(d, r)"
                " WHERE EXISTS (SELECT 1 FROM blobs WHERE digest = g.d) ON CONFLICT DO NOTHING",
                [d for d, _ in kept], [r for _, r in kept],
            )
            last = made[-1][0]

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

        async def op(t: Tx) -> FlagResult:
            c = t.conn
            to_change: list[tuple[MessageMeta, frozenset[str]]] = []
            modified: list[int] = []
            rows = await c.fetch(
                _META + " WHERE mailbox_id = $1 AND uid = ANY($2::bigint[]) ORDER BY uid",
                mailbox_id, uid_list,
            )
            for row in rows:
                meta = _meta(row)
                if unchanged_since is not None and meta.modseq > unchanged_since:
                    modified.append(meta.uid)
                    continue
                new = new_flags(meta.flags, flag_set, mode)
                if new != meta.flags:
                    to_change.append((meta, new))
            changed: list[MessageMeta] = []
            if to_change:
                # Each message its own MODSEQ: changes can then be paged
                # between any two (RFC 7162 allows it; JMAP maxChanges).
                first = await bump_mailbox(t, mailbox_id, len(to_change))
                changed = [
                    dataclasses.replace(meta, flags=new, modseq=first + n)
                    for n, (meta, new) in enumerate(to_change)
                ]
                await c.execute(
                    "UPDATE messages m SET flags = g.flags, modseq = g.modseq"
                    " FROM unnest($2::bigint[], $3::text[], $4::bigint[]) AS g(uid, flags, modseq)"
                    " WHERE m.mailbox_id = $1 AND m.uid = g.uid",
                    mailbox_id, [m.uid for m in changed], [flags_text(m.flags) for m in changed],
                    [m.modseq for m in changed],
                )
            return FlagResult(changed, modified)

        return await self._write(op)

    async def expunge(
        self, mailbox_id: int, uids: Iterable[int] | None = None, *, require_deleted: bool = True
    ) -> list[int]:
        wanted = None if uids is None else set(uids)

        async def op(t: Tx) -> list[int]:
            rows = await t.conn.fetch(
                "SELECT uid, flags FROM messages WHERE mailbox_id = $1 ORDER BY uid", mailbox_id
            )
            gone = [
                int(uid)
                for uid, flags in rows
                if (wanted is None or uid in wanted)
                and (not require_deleted or "\\Deleted" in flags.split())
            ]
            await expunge_uids(t, mailbox_id, gone)
            return gone

        return await self._write(op)

    async def copy(
        self, mailbox_id: int, uids: Iterable[int], dest_mailbox_id: int
    ) -> list[tuple[int, int]]:
        uid_list = sorted(set(uids))

        async def op(t: Tx) -> list[tuple[int, int]]:
            c = t.conn
            owner = await c.fetchval(
                "SELECT account_id FROM mailboxes WHERE id = $1", dest_mailbox_id
            )
            if owner is None:
                raise NotFound("no such mailbox")
            # All the copies together must fit, not each one alone.
            total = await c.fetchval(
                "SELECT coalesce(sum(size), 0) FROM messages WHERE mailbox_id = $1"
                " AND uid = ANY($2::bigint[])",
                mailbox_id, uid_list,
            )
            if total:
                await check_quota(c, owner, int(total))
            return await copy_messages(
                t, mailbox_id, uid_list, dest_mailbox_id, move=False, keys=self._thread_keys
            )

        return await self._write(op)

    async def move(
        self, mailbox_id: int, uids: Iterable[int], dest_mailbox_id: int
    ) -> list[tuple[int, int]]:
        uid_list = list(uids)

        async def op(t: Tx) -> list[tuple[int, int]]:
            return await copy_messages(
                t, mailbox_id, uid_list, dest_mailbox_id, move=True, keys=self._thread_keys
            )

        return await self._write(op)

    async def claim_recent(self, mailbox_id: int) -> int:
        async def op(t: Tx) -> int:
            # The old value, read under the row lock the UPDATE takes.
            row = await t.conn.fetchrow(
                "UPDATE mailboxes m SET recent_uid = m.uidnext FROM"
                " (SELECT recent_uid FROM mailboxes WHERE id = $1 FOR UPDATE) old"
                " WHERE m.id = $1 RETURNING old.recent_uid",
                mailbox_id,
            )
            if row is None:
                raise NotFound("no such mailbox")
            return int(row[0])

        return await self._write(op)

    async def changes_since(
        self, mailbox_id: int, modseq: int
    ) -> tuple[list[MessageMeta], list[int]]:
        async def op(c: Any) -> tuple[list[MessageMeta], list[int]]:
            return await changes(c, mailbox_id, modseq)

        return await self._read(op)

    async def message_savedates(
        self, mailbox_id: int, uids: Sequence[int]
    ) -> dict[int, datetime.datetime]:
        async def op(c: Any) -> dict[int, datetime.datetime]:
            rows = await c.fetch(
                "SELECT uid, coalesce(savedate, internaldate) FROM messages"
                " WHERE mailbox_id = $1 AND uid = ANY($2::bigint[])",
                mailbox_id, sorted(set(uids)),
            )
            return {int(r[0]): datetime.datetime.fromisoformat(r[1]) for r in rows}

        return await self._read(op)


async def insert_message(
    t: Tx,
    mailbox_id: int,
    digest: bytes,
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
    the one its keys lead to; ``charge=False`` when the caller counts the
    blob reference and the account's usage itself; ``search_prefix`` is the
    folded text of its prefix for the full-text index."""
    c = t.conn
    account_id, modseq = await mailbox_modseq(t, mailbox_id)
    uid = await c.fetchval(
        "UPDATE mailboxes SET uidnext = uidnext + 1, highest_modseq = $2"
        " WHERE id = $1 RETURNING uidnext - 1",
        mailbox_id, modseq,
    )
    (email_id,) = await next_email_ids(c, 1)
    if isinstance(thread, EmailKeys):
        threader = Threader(c)
        await threader.prefetch([(account_id, thread)])
        thread_id = threader.thread(account_id, thread, email_id)
        await threader.flush()
    else:
        thread_id = thread
    await c.execute(
        "INSERT INTO messages VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        mailbox_id, uid, modseq, flags_text(flags), internaldate, size, digest, prefix,
        email_id, thread_id, modseq, _now(),
    )
    if search_prefix:
        await c.execute("INSERT INTO search_prefixes VALUES ($1, $2)", email_id, search_prefix)
    if charge:
        await c.execute("UPDATE blobs SET refs = refs + 1 WHERE digest = $1", digest)
        await c.execute("UPDATE accounts SET used = used + $1 WHERE id = $2", size, account_id)
    t.touch(mailbox_id)
    return int(uid)


async def check_quota(c: Any, account_id: int, size: int) -> None:
    row = await c.fetchrow("SELECT quota, used FROM accounts WHERE id = $1", account_id)
    if row is None:
        raise NotFound("no such account")
    quota, used = row
    if quota and used + size > quota:
        raise QuotaExceeded(f"quota of {quota} octets exceeded")


async def delivery_mailbox(c: Any, target: DeliveryTarget) -> int:
    found = await c.fetchval(
        "SELECT id FROM mailboxes WHERE account_id = $1 AND name IN ($2, 'INBOX')"
        " ORDER BY name = 'INBOX' LIMIT 1",
        target.account_id, canonical_name(target.mailbox),
    )
    if found is None:
        raise NotFound("the recipient has no INBOX")
    return int(found)


async def unref_messages(
    c: Any, mailbox_id: int, uids: list[int] | None, modseq: int
) -> None:
    """Delete messages (all of the mailbox's when uids is None), leave a
    tombstone of each email with its MODSEQ (``modseq``, ``modseq + 1``, ...
    in UID order), give their octets back to the account and free blobs no
    message holds any more."""
    returning = " RETURNING uid, digest, size, email_id, thread_id, created_modseq"
    if uids is None:
        rows = await c.fetch(
            "DELETE FROM messages WHERE mailbox_id = $1" + returning, mailbox_id
        )
    else:
        rows = await c.fetch(
            "DELETE FROM messages WHERE mailbox_id = $1 AND uid = ANY($2::bigint[])" + returning,
            mailbox_id, uids,
        )
    if not rows:
        return
    rows = sorted(rows, key=lambda row: int(row[0]))
    account_id = await mailbox_account(c, mailbox_id)
    await c.execute(
        "INSERT INTO email_tombstones SELECT g.email_id, $1, g.thread_id, g.created, g.modseq"
        " FROM unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[])"
        " AS g(email_id, thread_id, created, modseq)"
        " ON CONFLICT (email_id) DO UPDATE SET modseq = excluded.modseq",
        account_id, [r[3] for r in rows], [r[4] for r in rows], [r[5] for r in rows],
        [modseq + n for n in range(len(rows))],
    )
    freed = sum(int(row[2]) for row in rows)
    if freed:
        await c.execute(
            "UPDATE accounts SET used = greatest(0, used - $1) WHERE id = $2", freed, account_id
        )
    counts: dict[bytes, int] = {}
    for row in rows:
        counts[bytes(row[1])] = counts.get(bytes(row[1]), 0) + 1
    # Sorted: nodes freeing the same blobs lock them in one order.
    ordered = sorted(counts)
    await c.execute(
        "UPDATE blobs b SET refs = b.refs - g.n FROM unnest($1::bytea[], $2::bigint[])"
        " AS g(digest, n) WHERE b.digest = g.digest",
        ordered, [counts[d] for d in ordered],
    )
    await c.execute(
        "DELETE FROM search_prefixes WHERE email_id = ANY($1::bigint[])", [r[3] for r in rows]
    )
    gone = await c.fetch(
        "DELETE FROM blobs WHERE digest = ANY($1::bytea[]) AND refs <= 0 RETURNING digest", ordered
    )
    if gone:
        await c.execute(
            "DELETE FROM search_blobs WHERE digest = ANY($1::bytea[])", [r[0] for r in gone]
        )


async def expunge_uids(t: Tx, mailbox_id: int, uids: list[int]) -> None:
    if not uids:
        return
    uids = sorted(uids)
    modseq = await bump_mailbox(t, mailbox_id, len(uids))
    await unref_messages(t.conn, mailbox_id, uids, modseq)
    await _remember_expunged(t, mailbox_id, uids, modseq)


async def _remember_expunged(t: Tx, mailbox_id: int, uids: list[int], modseq: int) -> None:
    await t.conn.execute(
        "INSERT INTO expunged SELECT $1, g.uid, g.modseq"
        " FROM unnest($2::bigint[], $3::bigint[]) AS g(uid, modseq)"
        " ON CONFLICT (mailbox_id, uid) DO UPDATE SET modseq = excluded.modseq",
        mailbox_id, uids, [modseq + n for n in range(len(uids))],
    )


async def copy_messages(
    t: Tx,
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
    source_account = await mailbox_account(t.conn, mailbox_id)
    dest_account = await mailbox_account(t.conn, dest)
    if move and source_account == dest_account:
        return await _move_within(t, mailbox_id, sorted(set(uids)), dest, dest_account)
    pairs = []
    rows = await t.conn.fetch(
        "SELECT m.uid, m.flags, m.internaldate, m.size, m.digest, m.prefix, m.thread_id,"
        " b.parsed, p.head FROM messages m JOIN blobs b ON b.digest = m.digest"
        " LEFT JOIN search_prefixes p ON p.email_id = m.email_id"
        " WHERE m.mailbox_id = $1 AND m.uid = ANY($2::bigint[]) ORDER BY m.uid",
        mailbox_id, sorted(set(uids)),
    )
    for uid, flags, internaldate, size, digest, prefix, thread_id, parsed, head in rows:
        thread: EmailKeys | int = int(thread_id)
        if source_account != dest_account:
            thread = keys(bytes(parsed)) if keys else EmailKeys(None, (), "")
        new_uid = await insert_message(
            t, dest, bytes(digest), bytes(prefix), int(size), flags.split(), internaldate, thread,
            search_prefix=head or "",
        )
        pairs.append((int(uid), new_uid))
    if move:
        await expunge_uids(t, mailbox_id, [uid for uid, _ in pairs])
    return pairs


async def _move_within(
    t: Tx, mailbox_id: int, uids: list[int], dest: int, account_id: int
) -> list[tuple[int, int]]:
    """RFC 6851 MOVE inside one account: each message keeps its email id
    (JMAP: its mailboxIds changed), gets a UID in dest and a MODSEQ; the
    source remembers the UIDs expunged, with MODSEQs of their own."""
    c = t.conn
    found = [
        int(r[0]) for r in await c.fetch(
            "SELECT uid FROM messages WHERE mailbox_id = $1 AND uid = ANY($2::bigint[])"
            " ORDER BY uid",
            mailbox_id, uids,
        )
    ]
    if not found:
        return []
    count = len(found)
    modseq = await next_modseq(t, account_id, count)
    uid_next = int(await c.fetchval(
        "UPDATE mailboxes SET uidnext = uidnext + $2, highest_modseq = $3"
        " WHERE id = $1 RETURNING uidnext - $2",
        dest, count, modseq + count - 1,
    ))
    pairs = [(uid, uid_next + n) for n, uid in enumerate(found)]
    # RFC 8514 §3: a moved message is saved anew.
    await c.execute(
        "UPDATE messages m SET mailbox_id = $2, uid = g.new, modseq = g.modseq, savedate = $6"
        " FROM unnest($3::bigint[], $4::bigint[], $5::bigint[]) AS g(old, new, modseq)"
        " WHERE m.mailbox_id = $1 AND m.uid = g.old",
        mailbox_id, dest, found, [new for _, new in pairs],
        [modseq + n for n in range(count)], _now(),
    )
    t.touch(dest)
    gone = await bump_mailbox(t, mailbox_id, count)
    await _remember_expunged(t, mailbox_id, found, gone)
    return pairs


async def changes(c: Any, mailbox_id: int, modseq: int) -> tuple[list[MessageMeta], list[int]]:
    """Messages changed after modseq, and UIDs expunged after it."""
    changed = [
        _meta(r)
        for r in await c.fetch(
            _META + " WHERE mailbox_id = $1 AND modseq > $2 ORDER BY uid", mailbox_id, modseq
        )
    ]
    vanished = [
        int(r[0])
        for r in await c.fetch(
            "SELECT uid FROM expunged WHERE mailbox_id = $1 AND modseq > $2 ORDER BY uid",
            mailbox_id, modseq,
        )
    ]
    return changed, vanished


class _ReadRange:
    """Up to READ_CHUNK octets from ``at`` (not past ``end``) of prefix +
    blob, and the message's size. ``substring`` of an EXTERNAL (uncompressed,
    out-of-line) bytea reads only the TOAST chunks it needs; the message row
    is looked up again for every chunk, so an expunged message is never read
    on."""

    def __init__(self, mailbox_id: int, uid: int, at: int, end: int | None) -> None:
        self.mailbox_id, self.uid, self.at, self.end = mailbox_id, uid, at, end

    async def __call__(self, c: Any) -> tuple[bytes, int]:
        row = await c.fetchrow(
            "SELECT m.prefix, octet_length(b.data), m.digest FROM messages m"
            " JOIN blobs b ON b.digest = m.digest WHERE m.mailbox_id = $1 AND m.uid = $2",
            self.mailbox_id, self.uid,
        )
        if row is None:
            raise NotFound(f"no message with UID {self.uid}")
        prefix, at = bytes(row[0]), self.at
        total = len(prefix) + int(row[1])
        stop = min(at + READ_CHUNK, total if self.end is None else min(self.end, total))
        if stop <= at:
            return b"", total
        head = prefix[at:stop]
        if stop <= len(prefix):
            return head, total
        from_blob = max(at - len(prefix), 0)
        body = await c.fetchval(
            "SELECT substring(data FROM $2 FOR $3) FROM blobs WHERE digest = $1",
            row[2], from_blob + 1, stop - len(prefix) - from_blob,
        )
        return head + bytes(body), total


async def _with_blob(c: Any, column: str, mailbox_id: int, uids: Sequence[int]) -> Any:
    """(uid, prefix, blob column) of many messages in one query."""
    return await c.fetch(
        f"SELECT m.uid, m.prefix, b.{column} FROM messages m JOIN blobs b"
        " ON b.digest = m.digest WHERE m.mailbox_id = $1 AND m.uid = ANY($2::bigint[])",
        mailbox_id, list(uids),
    )

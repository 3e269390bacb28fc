"""The outbound-queue part of the PostgreSQL store (RFC 5321 §4.5.4, RFC
3461): one row per message, one per recipient with its state and next
attempt. Entry ids come from an identity column, never handed out twice.

``queue_due`` claims: it locks the due entries it returns with ``FOR UPDATE
SKIP LOCKED``, so a node asking while another node's claim is being taken
passes those entries by instead of waiting for them or taking them too.

Leases: a serving node (a store with a ``node`` name) leases the due
recipients it claims, and those it queues itself, to its name until ``now
+ lease``; its heartbeat moves the expiry on (see ``engine``), and
``queue_update`` ends the lease with the attempt's outcome. The other nodes
pass leased recipients by, and see them due when the lease runs out: the
recipients of a node that died are retried by the others ``lease`` seconds
after its last heartbeat, and a recipient is attempted by one node at a time.
A store without a node name (the command line) neither takes nor honours
leases of its own, but sees the nodes' leases as everyone does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mailstack.errors import NotFound
from mailstack.store.contract.queue import (
    HELD,
    QUEUED,
    NewEntry,
    QueuedRecipient,
    QueueEntry,
    RecipientUpdate,
)
from mailstack.store.postgres.engine import PgEngine, Tx

_ENTRY_COLUMNS = "id, mail_from, created, expires, envid, ret, smtputf8, body, octet_length(data)"
_RECIPIENT_COLUMNS = (
    "id, message_id, address, state, attempts, {due}, last_reply, notify, orcpt,"
    " delay_notified"
)
# When a recipient is due for node $1: when it is leased to another node, not
# before the lease runs out.
_DUE = (
    "CASE WHEN lease_node IS NOT NULL AND lease_node IS DISTINCT FROM $1::text"
    " THEN greatest(next_attempt, lease_until) ELSE next_attempt END"
)


async def _insert(c: Any, entry: NewEntry, node: str | None = None, lease: float = 0) -> int:
    entry_id = int(await c.fetchval(
        "INSERT INTO queue_messages (mail_from, data, created, expires, envid, ret, smtputf8,"
        " body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        entry.mail_from, entry.data, entry.now, entry.expires, entry.envid, entry.ret,
        entry.smtputf8, entry.body,
    ))
    await c.executemany(
        "INSERT INTO queue_recipients (message_id, address, state, next_attempt, notify, orcpt,"
        " lease_node, lease_until) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        [
            (entry_id, r.address, QUEUED, entry.now, r.notify, r.orcpt, node,
             None if node is None else entry.now + lease)
            for r in entry.recipients
        ],
    )
    return entry_id


async def _load(c: Any, rows: Any, node: str | None = None) -> list[QueueEntry]:
    """The entries of ``rows`` with their recipients, as node ``node`` sees
    them: a recipient leased to another node is due when its lease ends."""
    if not rows:
        return []
    ids = [int(row[0]) for row in rows]
    recipients: dict[int, list[QueuedRecipient]] = {entry_id: [] for entry_id in ids}
    for r in await c.fetch(
        f"SELECT {_RECIPIENT_COLUMNS.format(due=_DUE)} FROM queue_recipients"
        " WHERE message_id = ANY($2::bigint[]) ORDER BY id",
        node, ids,
    ):
        recipients[int(r[1])].append(QueuedRecipient(
            int(r[0]), r[2], r[3], int(r[4]), float(r[5]), r[6], r[7], r[8], bool(r[9])
        ))
    return [
        QueueEntry(
            int(row[0]), row[1], float(row[2]), float(row[3]), row[4], row[5], bool(row[6]),
            row[7], int(row[8]), tuple(recipients[int(row[0])]),
        )
        for row in rows
    ]


class QueuePart(PgEngine):
    # Whether this node leases what it queues to itself (its queue runner
    # hands new entries to its workers at once); else only queue_due claims.
    claim_queued = False

    def _claimer(self) -> str | None:
        return self.node if self.claim_queued else None

    async def queue_add(self, entry: NewEntry) -> int:
        async def op(t: Tx) -> int:
            return await _insert(t.conn, entry, self._claimer(), self.lease)

        return await self._write(op)

    async def new_run_number(self) -> int:
        async def op(t: Tx) -> int:
            return int(await t.conn.fetchval(
                "INSERT INTO meta (key, value) VALUES ('runs', 1)"
                " ON CONFLICT (key) DO UPDATE SET value = meta.value + 1 RETURNING value"
            ))

        return await self._write(op)

    async def queue_get(self, entry_id: int) -> QueueEntry:
        async def op(c: Any) -> QueueEntry:
            rows = await c.fetch(
                f"SELECT {_ENTRY_COLUMNS} FROM queue_messages WHERE id = $1", entry_id
            )
            if not rows:
                raise NotFound(f"no queue entry {entry_id}")
            return (await _load(c, rows, self.node))[0]

        return await self._read(op)

    async def queue_data(self, entry_id: int) -> bytes:
        async def op(c: Any) -> bytes:
            data = await c.fetchval("SELECT data FROM queue_messages WHERE id = $1", entry_id)
            if data is None:
                raise NotFound(f"no queue entry {entry_id}")
            return bytes(data)

        return await self._read(op)

    async def queue_list(self) -> list[QueueEntry]:
        async def op(c: Any) -> list[QueueEntry]:
            return await _load(
                c,
                await c.fetch(f"SELECT {_ENTRY_COLUMNS} FROM queue_messages ORDER BY id"),
                self.node,
            )

        return await self._read(op)

    async def queue_due(self, now: float, limit: int = 1000) -> list[QueueEntry]:
        async def op(t: Tx) -> list[QueueEntry]:
            c = t.conn
            rows = await c.fetch(
                f"SELECT {_ENTRY_COLUMNS} FROM queue_messages WHERE id IN"
                " (SELECT message_id FROM queue_recipients WHERE state = $2"
                f" AND {_DUE} <= $3)"
                " ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED",
                self.node, QUEUED, now, limit,
            )
            if rows and self.node is not None:
                # Under the entries' row locks: no other node claims them now.
                await c.execute(
                    "UPDATE queue_recipients SET lease_node = $1, lease_until = $2"
                    " WHERE message_id = ANY($3::bigint[]) AND state = $4"
                    f" AND {_DUE} <= $5",
                    self.node, now + self.lease, [int(row[0]) for row in rows], QUEUED, now,
                )
            return await _load(c, rows, self.node)

        return await self._write(op)

    async def queue_next_due(self, after: float | None = None) -> float | None:
        async def op(c: Any) -> float | None:
            found = await c.fetchval(
                f"SELECT min({_DUE}) FROM queue_recipients WHERE state = $2 AND {_DUE} > $3",
                self.node, QUEUED, float("-inf") if after is None else after,
            )
            return None if found is None else float(found)

        return await self._read(op)

    async def queue_update(
        self, entry_id: int, updates: Sequence[RecipientUpdate], reports: Sequence[NewEntry] = ()
    ) -> list[int]:
        async def op(t: Tx) -> list[int]:
            c = t.conn
            # The entry's row first: updates of one entry from two nodes queue up here.
            await c.execute("SELECT 1 FROM queue_messages WHERE id = $1 FOR UPDATE", entry_id)
            await c.executemany(
                "UPDATE queue_recipients SET state = $1, next_attempt = $2, last_reply = $3,"
                " attempts = attempts + $4, delay_notified = delay_notified OR $5,"
                " lease_node = NULL, lease_until = NULL"
                " WHERE id = $6 AND message_id = $7",
                [
                    (u.state, u.next_attempt, u.last_reply, int(u.counted), u.delay_notified,
                     u.recipient_id, entry_id)
                    for u in updates
                ],
            )
            report_ids = [
                await _insert(c, report, self._claimer(), self.lease) for report in reports
            ]
            left = await c.fetchval(
                "SELECT count(*) FROM queue_recipients WHERE message_id = $1"
                " AND state IN ($2, $3)",
                entry_id, QUEUED, HELD,
            )
            if not left:
                await c.execute("DELETE FROM queue_messages WHERE id = $1", entry_id)
            return report_ids

        return await self._write(op)

    async def queue_retry(self, now: float, entry_id: int | None = None) -> int:
        async def op(t: Tx) -> int:
            c = t.conn
            if entry_id is None:
                rows = await c.fetch(
                    "UPDATE queue_recipients SET next_attempt = $1 WHERE state = $2 RETURNING 1",
                    now, QUEUED,
                )
            else:
                found = await c.fetchval("SELECT 1 FROM queue_messages WHERE id = $1", entry_id)
                if found is None:
                    raise NotFound(f"no queue entry {entry_id}")
                rows = await c.fetch(
                    "UPDATE queue_recipients SET next_attempt = $1 WHERE state = $2"
                    " AND message_id = $3 RETURNING 1",
                    now, QUEUED, entry_id,
                )
            if rows:
                t.change_queue()
            return len(rows)

        return await self._write(op)

    async def queue_hold(self, entry_id: int, held: bool, now: float) -> int:
        before, after = (QUEUED, HELD) if held else (HELD, QUEUED)

        async def op(t: Tx) -> int:
            c = t.conn
            if await c.fetchval("SELECT 1 FROM queue_messages WHERE id = $1", entry_id) is None:
                raise NotFound(f"no queue entry {entry_id}")
            rows = await c.fetch(
                "UPDATE queue_recipients SET state = $1, next_attempt = $2"
                " WHERE message_id = $3 AND state = $4 RETURNING 1",
                after, now, entry_id, before,
            )
            if rows and not held:
                t.change_queue()
            return len(rows)

        return await self._write(op)

    async def queue_remove(self, entry_id: int) -> None:
        async def op(t: Tx) -> None:
            # Its recipients go with it (ON DELETE CASCADE).
            gone = await t.conn.fetch(
                "DELETE FROM queue_messages WHERE id = $1 RETURNING 1", entry_id
            )
            if not gone:
                raise NotFound(f"no queue entry {entry_id}")

        await self._write(op)

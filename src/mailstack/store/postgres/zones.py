"""The zone part of the PostgreSQL store: managed DNS zones, their records
as presentation text and the journal IXFR serves (RFC 1995), and the history
of zones served from files; serials follow RFC 1982. A change locks its
zone's row (``FOR UPDATE``), so nodes changing one zone at once bump its
serial one after the other."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from mailstack.errors import AlreadyExists, NotFound, StoreError
from mailstack.store.contract.directory import ZoneAddition
from mailstack.store.contract.zones import (
    JOURNAL_LENGTH,
    JournalEntry,
    ManagedZone,
    ZoneRecord,
    canonical_origin,
    make_record,
    new_zone_records,
    next_serial,
    notify_key,
    owner_and_type,
    records_from_text,
    records_text,
    serial_gt,
)
from mailstack.store.postgres.engine import PgEngine, Tx


def _record(row: Any) -> ZoneRecord:
    return ZoneRecord(str(row[0]), str(row[1]), int(row[2]), str(row[3]))


def _entries(rows: Any) -> list[JournalEntry]:
    return [
        JournalEntry(int(old), int(new), records_from_text(deleted), records_from_text(added))
        for old, new, deleted, added in rows
    ]


class ZonesPart(PgEngine):
    async def zone_create(
        self,
        origin: str,
        *,
        nameservers: Sequence[str],
        hostmaster: str,
        ttl: int = 3600,
        serial: int = 1,
    ) -> ManagedZone:
        origin = canonical_origin(origin)
        records = new_zone_records(origin, nameservers, hostmaster, ttl, serial)

        async def op(t: Tx) -> None:
            await _create(t.conn, origin, serial, records)

        await self._write(op)
        return await self.zone_get(origin)

    async def zone_list(self) -> list[tuple[str, int]]:
        async def op(c: Any) -> list[tuple[str, int]]:
            rows = await c.fetch("SELECT origin, serial FROM dns_zones ORDER BY origin")
            return [(str(origin), int(serial)) for origin, serial in rows]

        return await self._read(op)

    async def zone_serials(self) -> dict[str, int]:
        return dict(await self.zone_list())

    async def zone_get(self, origin: str) -> ManagedZone:
        origin = canonical_origin(origin)

        async def op(c: Any) -> ManagedZone:
            zone_id, serial = await _zone_row(c, origin)
            return ManagedZone(origin, serial, await _records(c, zone_id, serial))

        return await self._read(op)

    async def zone_remove(self, origin: str) -> None:
        origin = canonical_origin(origin)

        async def op(t: Tx) -> None:
            zone_id, _ = await _zone_row(t.conn, origin, lock=True)
            # The records and the journal go with it (ON DELETE CASCADE).
            await t.conn.execute("DELETE FROM dns_zones WHERE id = $1", zone_id)

        await self._write(op)

    async def record_add(
        self, origin: str, name: str, rdtype: str, value: str, ttl: int | None = None
    ) -> int:
        origin = canonical_origin(origin)
        if rdtype.upper() == "SOA":
            raise StoreError("the SOA is managed by mailstack")
        record = make_record(origin, name, rdtype, value, ttl if ttl is not None else 3600)

        async def op(t: Tx) -> int:
            c = t.conn
            zone_id, serial = await _zone_row(c, origin, lock=True)
            if ttl is None:
                # RFC 2181 §5.2: records of one RRset share a TTL; join the set's.
                found = await c.fetchval(
                    "SELECT ttl FROM dns_records WHERE zone_id=$1 AND name=$2 AND rdtype=$3"
                    " LIMIT 1",
                    zone_id, record.name, record.rdtype,
                )
                default = int(found) if found is not None else await _soa_ttl(c, zone_id)
                fixed = ZoneRecord(record.name, record.rdtype, default, record.rdata)
            else:
                fixed = record
            if await _exists(c, zone_id, fixed):
                raise AlreadyExists(f"record {fixed.to_text()} exists")
            return await _change(c, zone_id, serial, [], [fixed])

        return await self._write(op)

    async def record_remove(
        self, origin: str, name: str, rdtype: str, value: str | None = None
    ) -> int:
        origin = canonical_origin(origin)
        if rdtype.upper() == "SOA":
            raise StoreError("the SOA is managed by mailstack")
        owner, mnemonic = owner_and_type(origin, name, rdtype)
        rdata = make_record(origin, name, rdtype, value, 0).rdata if value is not None else None

        async def op(t: Tx) -> int:
            c = t.conn
            zone_id, serial = await _zone_row(c, origin, lock=True)
            rows = await c.fetch(
                "SELECT name, rdtype, ttl, rdata FROM dns_records "
                "WHERE zone_id=$1 AND name=$2 AND rdtype=$3",
                zone_id, owner, mnemonic,
            )
            doomed = [_record(row) for row in rows if rdata is None or row[3] == rdata]
            if not doomed:
                raise NotFound(f"no such {mnemonic} record at {owner}")
            if mnemonic == "NS" and owner == origin and len(doomed) == len(rows):
                raise StoreError("a zone keeps at least one NS record at its apex")
            return await _change(c, zone_id, serial, doomed, [])

        return await self._write(op)

    async def zone_apply(
        self,
        origin: str,
        deleted: Sequence[ZoneRecord],
        added: Sequence[ZoneRecord],
        new_serial: int | None = None,
    ) -> int:
        origin = canonical_origin(origin)

        async def op(t: Tx) -> int:
            zone_id, serial = await _zone_row(t.conn, origin, lock=True)
            return await _change(t.conn, zone_id, serial, list(deleted), list(added), new_serial)

        return await self._write(op)

    async def zone_journal(self, origin: str) -> list[JournalEntry]:
        origin = canonical_origin(origin)

        async def op(c: Any) -> list[JournalEntry]:
            zone_id, _ = await _zone_row(c, origin)
            return _entries(await c.fetch(
                "SELECT old_serial, new_serial, deleted, added FROM dns_journal "
                "WHERE zone_id = $1 ORDER BY id",
                zone_id,
            ))

        return await self._read(op)

    async def zone_history_add(self, origin: str, entry: JournalEntry) -> None:
        origin = canonical_origin(origin)

        async def op(t: Tx) -> None:
            c = t.conn
            # One writer per origin at a time, across nodes.
            await c.execute("SELECT pg_advisory_xact_lock(hashtext($1))", "history " + origin)
            last = await c.fetchval(
                "SELECT new_serial FROM dns_history WHERE origin = $1 ORDER BY id DESC LIMIT 1",
                origin,
            )
            if last is not None and int(last) != entry.old_serial:
                await c.execute("DELETE FROM dns_history WHERE origin = $1", origin)
            await c.execute(
                "INSERT INTO dns_history (origin, old_serial, new_serial, deleted, added) "
                "VALUES ($1, $2, $3, $4, $5)",
                origin, entry.old_serial, entry.new_serial,
                records_text(entry.deleted), records_text(entry.added),
            )
            await c.execute(
                "DELETE FROM dns_history WHERE origin = $1 AND id NOT IN "
                "(SELECT id FROM dns_history WHERE origin = $1 ORDER BY id DESC LIMIT $2)",
                origin, JOURNAL_LENGTH,
            )

        await self._write(op)

    async def zone_notify_claim(self, origin: str, serial: int) -> bool:
        key = notify_key(origin)

        async def op(t: Tx) -> bool:
            # The row lock of the upsert orders nodes claiming at once: the
            # second sees the first's serial and updates nothing.
            claimed = await t.conn.fetchval(
                "INSERT INTO meta VALUES ($1, $2) ON CONFLICT (key) DO UPDATE"
                " SET value = excluded.value WHERE meta.value <> excluded.value RETURNING 1",
                key, serial,
            )
            return claimed is not None

        return await self._write(op)

    async def zone_history(self, origin: str) -> list[JournalEntry]:
        origin = canonical_origin(origin)

        async def op(c: Any) -> list[JournalEntry]:
            return _entries(await c.fetch(
                "SELECT old_serial, new_serial, deleted, added FROM dns_history "
                "WHERE origin = $1 ORDER BY id",
                origin,
            ))

        return await self._read(op)


async def _create(c: Any, origin: str, serial: int, records: Sequence[ZoneRecord]) -> int:
    try:
        zone_id = int(await c.fetchval(
            "INSERT INTO dns_zones (origin, serial) VALUES ($1, $2) RETURNING id", origin, serial
        ))
    except asyncpg.UniqueViolationError:
        raise AlreadyExists(f"zone {origin} exists") from None
    await _insert(c, zone_id, records)
    return zone_id


async def add_to_zone(c: Any, addition: ZoneAddition) -> int:
    """Add ``addition``'s records the zone lacks, creating the zone if the
    node does not serve it; inside the caller's transaction. Returns the serial."""
    origin = canonical_origin(addition.origin)
    row = await c.fetchrow(
        "SELECT id, serial FROM dns_zones WHERE origin = $1 FOR UPDATE", origin
    )
    if row is None:
        soa_and_ns = new_zone_records(origin, addition.nameservers, addition.hostmaster, 3600, 1)
        zone_id, serial = await _create(c, origin, 1, soa_and_ns), 1
    else:
        zone_id, serial = int(row[0]), int(row[1])
    for record in addition.records:
        if record.name != origin and not record.name.endswith("." + origin):
            raise StoreError(f"{record.name} is not inside zone {origin}")
    added = [
        r for r in addition.records if r.rdtype != "SOA" and not await _exists(c, zone_id, r)
    ]
    if not added:
        return serial
    return await _change(c, zone_id, serial, [], added)


async def _zone_row(c: Any, origin: str, *, lock: bool = False) -> tuple[int, int]:
    row = await c.fetchrow(
        "SELECT id, serial FROM dns_zones WHERE origin = $1" + (" FOR UPDATE" if lock else ""),
        origin,
    )
    if row is None:
        raise NotFound(f"no zone {origin}")
    return int(row[0]), int(row[1])


async def _records(c: Any, zone_id: int, serial: int) -> tuple[ZoneRecord, ...]:
    rows = await c.fetch(
        "SELECT name, rdtype, ttl, rdata FROM dns_records WHERE zone_id = $1 "
        "ORDER BY rdtype != 'SOA', name COLLATE \"C\", rdtype COLLATE \"C\", rdata COLLATE \"C\"",
        zone_id,
    )
    records = [_record(row) for row in rows]
    if records and records[0].rdtype == "SOA":
        fields = records[0].rdata.split()
        fields[2] = str(serial)
        records[0] = ZoneRecord(records[0].name, "SOA", records[0].ttl, " ".join(fields))
    return tuple(records)


async def _soa_ttl(c: Any, zone_id: int) -> int:
    found = await c.fetchval(
        "SELECT ttl FROM dns_records WHERE zone_id=$1 AND rdtype='SOA'", zone_id
    )
    return int(found) if found is not None else 3600


async def _exists(c: Any, zone_id: int, record: ZoneRecord) -> bool:
    found = await c.fetchval(
        "SELECT 1 FROM dns_records WHERE zone_id=$1 AND name=$2 AND rdtype=$3 AND rdata=$4",
        zone_id, record.name, record.rdtype, record.rdata,
    )
    return found is not None


async def _insert(c: Any, zone_id: int, records: Sequence[ZoneRecord]) -> None:
    await c.executemany(
        "INSERT INTO dns_records (zone_id, name, rdtype, ttl, rdata) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (zone_id, name, rdtype, rdata) DO UPDATE SET ttl = excluded.ttl",
        [(zone_id, r.name, r.rdtype, r.ttl, r.rdata) for r in records],
    )


async def _change(
    c: Any,
    zone_id: int,
    serial: int,
    deleted: list[ZoneRecord],
    added: list[ZoneRecord],
    new_serial: int | None = None,
) -> int:
    """Apply, bump the serial, journal; inside the caller's transaction,
    with the zone's row locked."""
    deleted = [r for r in deleted if r.rdtype != "SOA"]
    added = [r for r in added if r.rdtype != "SOA"]
    if deleted:
        await c.executemany(
            "DELETE FROM dns_records WHERE zone_id=$1 AND name=$2 AND rdtype=$3 AND rdata=$4",
            [(zone_id, r.name, r.rdtype, r.rdata) for r in deleted],
        )
    await _insert(c, zone_id, added)
    bumped = next_serial(serial)
    if new_serial is not None and serial_gt(new_serial, serial):
        bumped = new_serial
    await c.execute("UPDATE dns_zones SET serial = $1 WHERE id = $2", bumped, zone_id)
    await c.execute(
        "INSERT INTO dns_journal (zone_id, old_serial, new_serial, deleted, added) "
        "VALUES ($1, $2, $3, $4, $5)",
        zone_id, serial, bumped, records_text(deleted), records_text(added),
    )
    await c.execute(
        "DELETE FROM dns_journal WHERE zone_id = $1 AND id NOT IN "
        "(SELECT id FROM dns_journal WHERE zone_id = $1 ORDER BY id DESC LIMIT $2)",
        zone_id, JOURNAL_LENGTH,
    )
    return bumped

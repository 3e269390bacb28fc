"""The zone part of the SQLite store: managed DNS zones, their records as
presentation text and the journal IXFR serves (RFC 1995), and the history of
zones served from files; serials follow RFC 1982."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

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
from mailstack.store.sqlite.engine import Engine, WriteConnection


class ZonesPart(Engine):
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

        def op(c: WriteConnection) -> None:
            _create(c, origin, serial, records)

        await self._write(op)
        return await self.zone_get(origin)

    async def zone_list(self) -> list[tuple[str, int]]:
        def op(c: sqlite3.Connection) -> list[tuple[str, int]]:
            rows = c.execute("SELECT origin, serial FROM dns_zones ORDER BY origin").fetchall()
            return [(str(origin), int(serial)) for origin, serial in rows]

        return await self._read(op)

    async def zone_serials(self) -> dict[str, int]:
        return dict(await self.zone_list())

    async def zone_get(self, origin: str) -> ManagedZone:
        origin = canonical_origin(origin)

        def op(c: sqlite3.Connection) -> ManagedZone:
            zone_id, serial = _zone_row(c, origin)
            return ManagedZone(origin, serial, _records(c, zone_id, serial))

        return await self._read(op)

    async def zone_remove(self, origin: str) -> None:
        origin = canonical_origin(origin)

        def op(c: WriteConnection) -> None:
            zone_id, _ = _zone_row(c, origin)
            c.execute("DELETE FROM dns_journal WHERE zone_id = ?", (zone_id,))
            c.execute("DELETE FROM dns_records WHERE zone_id = ?", (zone_id,))
            c.execute("DELETE FROM dns_zones WHERE id = ?", (zone_id,))

        await self._write(op)

    async def record_add(
        self, origin: str, name: str, rdtype: str, value: str, ttl: int | None = None
    ) -> int:
        origin = canonical_origin(origin)
        if rdtype.upper() == "SOA":
            raise StoreError("the SOA is managed by mailstack")
        record = make_record(origin, name, rdtype, value, ttl if ttl is not None else 3600)

        def op(c: WriteConnection) -> int:
            zone_id, serial = _zone_row(c, origin)
            if ttl is None:
                # RFC 2181 §5.2: records of one RRset share a TTL; join the set's.
                row = c.execute(
                    "SELECT ttl FROM dns_records WHERE zone_id=? AND name=? AND rdtype=?",
                    (zone_id, record.name, record.rdtype),
                ).fetchone()
                default = row[0] if row else _soa_ttl(c, zone_id)
                fixed = ZoneRecord(record.name, record.rdtype, default, record.rdata)
            else:
                fixed = record
            if _exists(c, zone_id, fixed):
                raise AlreadyExists(f"record {fixed.to_text()} exists")
            return _change(c, zone_id, origin, serial, [], [fixed])

        return await self._write(op)

    async def record_remove(
        self, origin: str, name: str, rdtype: str, value: str | None = None
    ) -> int:
        origin = canonical_origin(origin)
        if rdtype.upper() == "SOA":
            raise StoreError("the SOA is managed by mailstack")
        owner, mnemonic = owner_and_type(origin, name, rdtype)
        rdata = make_record(origin, name, rdtype, value, 0).rdata if value is not None else None

        def op(c: WriteConnection) -> int:
            zone_id, serial = _zone_row(c, origin)
            rows = c.execute(
                "SELECT name, rdtype, ttl, rdata FROM dns_records "
                "WHERE zone_id=? AND name=? AND rdtype=?",
                (zone_id, owner, mnemonic),
            ).fetchall()
            doomed = [ZoneRecord(*row) for row in rows if rdata is None or row[3] == rdata]
            if not doomed:
                raise NotFound(f"no such {mnemonic} record at {owner}")
            if mnemonic == "NS" and owner == origin and len(doomed) == len(rows):
                raise StoreError("a zone keeps at least one NS record at its apex")
            return _change(c, zone_id, origin, serial, doomed, [])

        return await self._write(op)

    async def zone_apply(
        self,
        origin: str,
        deleted: Sequence[ZoneRecord],
        added: Sequence[ZoneRecord],
        new_serial: int | None = None,
    ) -> int:
        origin = canonical_origin(origin)

        def op(c: WriteConnection) -> int:
            zone_id, serial = _zone_row(c, origin)
            return _change(c, zone_id, origin, serial, list(deleted), list(added), new_serial)

        return await self._write(op)

    async def zone_journal(self, origin: str) -> list[JournalEntry]:
        origin = canonical_origin(origin)

        def op(c: sqlite3.Connection) -> list[JournalEntry]:
            zone_id, _ = _zone_row(c, origin)
            rows = c.execute(
                "SELECT old_serial, new_serial, deleted, added FROM dns_journal "
                "WHERE zone_id = ? ORDER BY id",
                (zone_id,),
            ).fetchall()
            return [
                JournalEntry(old, new, records_from_text(deleted), records_from_text(added))
                for old, new, deleted, added in rows
            ]

        return await self._read(op)

    async def zone_history_add(self, origin: str, entry: JournalEntry) -> None:
        origin = canonical_origin(origin)

        def op(c: WriteConnection) -> None:
            last = c.execute(
                "SELECT new_serial FROM dns_history WHERE origin = ? ORDER BY id DESC LIMIT 1",
                (origin,),
            ).fetchone()
            if last is not None and int(last[0]) != entry.old_serial:
                c.execute("DELETE FROM dns_history WHERE origin = ?", (origin,))
            c.execute(
                "INSERT INTO dns_history (origin, old_serial, new_serial, deleted, added) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    origin,
                    entry.old_serial,
                    entry.new_serial,
                    records_text(entry.deleted),
                    records_text(entry.added),
                ),
            )
            c.execute(
                "DELETE FROM dns_history WHERE origin = ? AND id NOT IN "
                "(SELECT id FROM dns_history WHERE origin = ? ORDER BY id DESC LIMIT ?)",
                (origin, origin, JOURNAL_LENGTH),
            )

        await self._write(op)

    async def zone_notify_claim(self, origin: str, serial: int) -> bool:
        key = notify_key(origin)

        def op(c: WriteConnection) -> bool:
            # One writer: the read and the write cannot interleave with another's.
            row = c.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            if row is not None and int(row[0]) == serial:
                return False
            c.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, serial))
            return True

        return await self._write(op)

    async def zone_history(self, origin: str) -> list[JournalEntry]:
        origin = canonical_origin(origin)

        def op(c: sqlite3.Connection) -> list[JournalEntry]:
            rows = c.execute(
                "SELECT old_serial, new_serial, deleted, added FROM dns_history "
                "WHERE origin = ? ORDER BY id",
                (origin,),
            ).fetchall()
            return [
                JournalEntry(old, new, records_from_text(deleted), records_from_text(added))
                for old, new, deleted, added in rows
            ]

        return await self._read(op)

def _create(
    c: sqlite3.Connection, origin: str, serial: int, records: Sequence[ZoneRecord]
) -> int:
    try:
        cur = c.execute("INSERT INTO dns_zones (origin, serial) VALUES (?, ?)", (origin, serial))
    except sqlite3.IntegrityError:
        raise AlreadyExists(f"zone {origin} exists") from None
    assert cur.lastrowid is not None
    _insert(c, cur.lastrowid, records)
    return cur.lastrowid


def add_to_zone(c: sqlite3.Connection, addition: ZoneAddition) -> int:
    """Add ``addition``'s records the zone lacks, creating the zone if the
    node does not serve it; inside the caller's transaction. Returns the serial."""
    origin = canonical_origin(addition.origin)
    row = c.execute("SELECT id, serial FROM dns_zones WHERE origin = ?", (origin,)).fetchone()
    if row is None:
        soa_and_ns = new_zone_records(origin, addition.nameservers, addition.hostmaster, 3600, 1)
        zone_id, serial = _create(c, origin, 1, soa_and_ns), 1
    else:
        zone_id, serial = int(row[0]), int(row[1])
    for record in addition.records:
        if record.name != origin and not record.name.endswith("." + origin):
            raise StoreError(f"{record.name} is not inside zone {origin}")
    added = [r for r in addition.records if r.rdtype != "SOA" and not _exists(c, zone_id, r)]
    if not added:
        return serial
    return _change(c, zone_id, origin, serial, [], added)


def _zone_row(c: sqlite3.Connection, origin: str) -> tuple[int, int]:
    row = c.execute("SELECT id, serial FROM dns_zones WHERE origin = ?", (origin,)).fetchone()
    if row is None:
        raise NotFound(f"no zone {origin}")
    return int(row[0]), int(row[1])


def _records(c: sqlite3.Connection, zone_id: int, serial: int) -> tuple[ZoneRecord, ...]:
    rows = c.execute(
        "SELECT name, rdtype, ttl, rdata FROM dns_records WHERE zone_id = ? "
        "ORDER BY rdtype != 'SOA', name, rdtype, rdata",
        (zone_id,),
    ).fetchall()
    records = [ZoneRecord(*row) for row in rows]
    if records and records[0].rdtype == "SOA":
        fields = records[0].rdata.split()
        fields[2] = str(serial)
        records[0] = ZoneRecord(records[0].name, "SOA", records[0].ttl, " ".join(fields))
    return tuple(records)


def _soa_ttl(c: sqlite3.Connection, zone_id: int) -> int:
    row = c.execute(
        "SELECT ttl FROM dns_records WHERE zone_id=? AND rdtype='SOA'", (zone_id,)
    ).fetchone()
    return int(row[0]) if row else 3600


def _exists(c: sqlite3.Connection, zone_id: int, record: ZoneRecord) -> bool:
    return (
        c.execute(
            "SELECT 1 FROM dns_records WHERE zone_id=? AND name=? AND rdtype=? AND rdata=?",
            (zone_id, record.name, record.rdtype, record.rdata),
        ).fetchone()
        is not None
    )


def _insert(c: sqlite3.Connection, zone_id: int | None, records: Sequence[ZoneRecord]) -> None:
    c.executemany(
        "INSERT OR REPLACE INTO dns_records (zone_id, name, rdtype, ttl, rdata) "
        "VALUES (?, ?, ?, ?, ?)",
        [(zone_id, r.name, r.rdtype, r.ttl, r.rdata) for r in records],
    )


def _change(
    c: sqlite3.Connection,
    zone_id: int,
    origin: str,
    serial: int,
    deleted: list[ZoneRecord],
    added: list[ZoneRecord],
    new_serial: int | None = None,
) -> int:
    """Apply, bump the serial, journal; inside the caller's transaction."""
    deleted = [r for r in deleted if r.rdtype != "SOA"]
    added = [r for r in added if r.rdtype != "SOA"]
    for record in deleted:
        c.execute(
            "DELETE FROM dns_records WHERE zone_id=? AND name=? AND rdtype=? AND rdata=?",
            (zone_id, record.name, record.rdtype, record.rdata),
        )
    _insert(c, zone_id, added)
    bumped = next_serial(serial)
    if new_serial is not None and serial_gt(new_serial, serial):
        bumped = new_serial
    c.execute("UPDATE dns_zones SET serial = ? WHERE id = ?", (bumped, zone_id))
    c.execute(
        "INSERT INTO dns_journal (zone_id, old_serial, new_serial, deleted, added) "
        "VALUES (?, ?, ?, ?, ?)",
        (zone_id, serial, bumped, records_text(deleted), records_text(added)),
    )
    c.execute(
        "DELETE FROM dns_journal WHERE zone_id = ? AND id NOT IN "
        "(SELECT id FROM dns_journal WHERE zone_id = ? ORDER BY id DESC LIMIT ?)",
        (zone_id, zone_id, JOURNAL_LENGTH),
    )
    return bumped

"""The zone part of the store: DNS zones mailstack manages.

A managed zone is its SOA fields plus records kept as presentation text
(absolute owner names, canonical rdata), so any process (the CLI, the node's
DNS service, a later doctor) reads the same thing. Every change bumps the SOA
serial (RFC 1982 arithmetic) and writes a journal entry, which is what IXFR
(RFC 1995) serves; the change is committed and fsynced before the call
returns (the store's group commit).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from mailstack.common.serial import next_serial, serial_gt
from mailstack.errors import AlreadyExists, NotFound, StoreError

T = TypeVar("T")

ZONES_SCHEMA = """
CREATE TABLE IF NOT EXISTS dns_zones (
    id INTEGER PRIMARY KEY,
    origin TEXT NOT NULL UNIQUE,
    serial INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS dns_records (
    id INTEGER PRIMARY KEY,
    zone_id INTEGER NOT NULL REFERENCES dns_zones(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    rdtype TEXT NOT NULL,
    ttl INTEGER NOT NULL,
    rdata TEXT NOT NULL,
    UNIQUE (zone_id, name, rdtype, rdata)
);
CREATE INDEX IF NOT EXISTS dns_records_zone ON dns_records (zone_id);
CREATE TABLE IF NOT EXISTS dns_journal (
    id INTEGER PRIMARY KEY,
    zone_id INTEGER NOT NULL REFERENCES dns_zones(id) ON DELETE CASCADE,
    old_serial INTEGER NOT NULL,
    new_serial INTEGER NOT NULL,
    deleted TEXT NOT NULL,
    added TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS dns_journal_zone ON dns_journal (zone_id, id);
"""

# Journal entries kept per zone; older history answers IXFR with a full zone.
JOURNAL_LENGTH = 200


@dataclass(frozen=True, slots=True, order=True)
class ZoneRecord:
    """One record: absolute owner name, type mnemonic, TTL, canonical rdata text."""

    name: str
    rdtype: str
    ttl: int
    rdata: str

    def to_text(self) -> str:
        return f"{self.name} {self.ttl} IN {self.rdtype} {self.rdata}"


@dataclass(frozen=True, slots=True)
class ManagedZone:
    origin: str
    serial: int
    records: tuple[ZoneRecord, ...]  # the SOA first, carrying ``serial``


@dataclass(frozen=True, slots=True)
class JournalEntry:
    old_serial: int
    new_serial: int
    deleted: tuple[ZoneRecord, ...]
    added: tuple[ZoneRecord, ...]


class ZoneStore(Protocol):
    async def zone_create(
        self, origin: str, *, nameservers: Sequence[str], hostmaster: str, ttl: int = 3600
    ) -> ManagedZone: ...
    async def zone_list(self) -> list[tuple[str, int]]: ...
    async def zone_get(self, origin: str) -> ManagedZone: ...
    async def zone_remove(self, origin: str) -> None: ...
    async def zone_serials(self) -> dict[str, int]: ...
    async def record_add(
        self, origin: str, name: str, rdtype: str, value: str, ttl: int | None = None
    ) -> int: ...
    async def record_remove(
        self, origin: str, name: str, rdtype: str, value: str | None = None
    ) -> int: ...
    async def zone_apply(
        self,
        origin: str,
        deleted: Sequence[ZoneRecord],
        added: Sequence[ZoneRecord],
        new_serial: int | None = None,
    ) -> int: ...
    async def zone_journal(self, origin: str) -> list[JournalEntry]: ...


def canonical_origin(origin: str) -> str:
    try:
        return dns.name.from_text(origin).to_text().lower()
    except dns.exception.DNSException as exc:
        raise StoreError(f"bad zone name {origin!r}: {exc}") from exc


def owner_and_type(origin: str, name: str, rdtype: str) -> tuple[str, str]:
    """The absolute owner (``@`` = apex, relative names under ``origin``) and type mnemonic."""
    zone = dns.name.from_text(origin)
    try:
        owner = dns.name.from_text(name, origin=zone)
        mnemonic = dns.rdatatype.to_text(dns.rdatatype.from_text(rdtype))
    except (dns.exception.DNSException, ValueError) as exc:
        raise StoreError(f"bad record {name} {rdtype}: {exc}") from exc
    if not owner.is_subdomain(zone):
        raise StoreError(f"{owner} is not inside zone {zone}")
    return owner.to_text().lower(), mnemonic


def make_record(origin: str, name: str, rdtype: str, value: str, ttl: int) -> ZoneRecord:
    """A record from user text: ``name`` relative to the zone (``@`` = apex) or absolute."""
    zone = dns.name.from_text(origin)
    try:
        owner = dns.name.from_text(name, origin=zone)
        rdtype_value = dns.rdatatype.from_text(rdtype)
        rdata = dns.rdata.from_text(
            dns.rdataclass.IN, rdtype_value, value, origin=zone, relativize=False
        )
    except (dns.exception.DNSException, ValueError) as exc:
        raise StoreError(f"bad record {name} {rdtype} {value!r}: {exc}") from exc
    if not owner.is_subdomain(zone):
        raise StoreError(f"{owner} is not inside zone {zone}")
    if not 0 <= ttl < 2**31:
        raise StoreError(f"bad TTL {ttl}")
    return ZoneRecord(
        owner.to_text().lower(),
        dns.rdatatype.to_text(rdtype_value),
        ttl,
        rdata.to_text(),
    )


class SqliteZonesMixin:
    """Zone methods of SqliteStore, over its ``_read``/``_write`` primitives."""

    _read: Callable[[Callable[[sqlite3.Connection], T]], Awaitable[T]]
    _write: Callable[[Callable[[sqlite3.Connection], T]], Awaitable[T]]

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
        if not nameservers:
            raise StoreError("a zone needs at least one name server")
        rname = hostmaster
        if "@" in hostmaster:
            # RFC 1035 §8: the mailbox's "@" becomes a dot; the name is absolute.
            rname = hostmaster.replace("@", ".", 1).rstrip(".") + "."
        # RFC 1912 §2.2 style timers; MINIMUM is the negative-caching TTL (RFC 2308 §4).
        soa = make_record(
            origin, "@", "SOA", f"{nameservers[0]} {rname} {serial} 3600 900 1209600 300", ttl
        )
        records = [soa] + [make_record(origin, "@", "NS", ns, ttl) for ns in nameservers]

        def op(c: sqlite3.Connection) -> None:
            try:
                cur = c.execute(
                    "INSERT INTO dns_zones (origin, serial) VALUES (?, ?)", (origin, serial)
                )
            except sqlite3.IntegrityError:
                raise AlreadyExists(f"zone {origin} exists") from None
            _insert(c, cur.lastrowid, records)

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

        def op(c: sqlite3.Connection) -> None:
            zone_id, _ = _zone_row(c, origin)
            c.execute("DELETE FROM dns_journal WHERE zone_id = ?", (zone_id,))
            c.execute("DELETE FROM dns_records WHERE zone_id = ?", (zone_id,))
            c.execute("DELETE FROM dns_zones WHERE id = ?", (zone_id,))

        await self._write(op)

    async def record_add(
        self, origin: str, name: str, rdtype: str, value: str, ttl: int | None = None
    ) -> int:
        """Add one record; returns the new serial."""
        origin = canonical_origin(origin)
        if rdtype.upper() == "SOA":
            raise StoreError("the SOA is managed by mailstack")
        record = make_record(origin, name, rdtype, value, ttl if ttl is not None else 3600)

        def op(c: sqlite3.Connection) -> int:
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
        """Remove one record, or the whole RRset when ``value`` is None."""
        origin = canonical_origin(origin)
        if rdtype.upper() == "SOA":
            raise StoreError("the SOA is managed by mailstack")
        owner, mnemonic = owner_and_type(origin, name, rdtype)
        rdata = make_record(origin, name, rdtype, value, 0).rdata if value is not None else None

        def op(c: sqlite3.Connection) -> int:
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
        """Apply a change computed elsewhere (a DNS UPDATE), atomically; returns the serial."""
        origin = canonical_origin(origin)

        def op(c: sqlite3.Connection) -> int:
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
                JournalEntry(old, new, _parse_lines(deleted), _parse_lines(added))
                for old, new, deleted, added in rows
            ]

        return await self._read(op)


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
        (zone_id, serial, bumped, _lines(deleted), _lines(added)),
    )
    c.execute(
        "DELETE FROM dns_journal WHERE zone_id = ? AND id NOT IN "
        "(SELECT id FROM dns_journal WHERE zone_id = ? ORDER BY id DESC LIMIT ?)",
        (zone_id, zone_id, JOURNAL_LENGTH),
    )
    return bumped


def _lines(records: Sequence[ZoneRecord]) -> str:
    return "\n".join(f"{r.name}\t{r.rdtype}\t{r.ttl}\t{r.rdata}" for r in records)


def _parse_lines(text: str) -> tuple[ZoneRecord, ...]:
    out = []
    for line in text.splitlines():
        name, rdtype, ttl, rdata = line.split("\t", 3)
        out.append(ZoneRecord(name, rdtype, int(ttl), rdata))
    return tuple(out)

"""The zone part of the store contract: DNS zones mailstack manages.

Zones served from master files or pulled from a primary are not kept here,
but their change history is (``zone_history``), so IXFR survives a restart.

A managed zone is its SOA fields plus records kept as presentation text
(absolute owner names, canonical rdata), so any process (the CLI, the node's
DNS service, a later doctor) reads the same thing. Every change bumps the SOA
serial (RFC 1982 arithmetic) and writes a journal entry, which is what IXFR
(RFC 1995) serves; the change is committed and fsynced before the call
returns (the store's group commit).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from mailstack.errors import StoreError

# Journal entries kept per zone; older history answers IXFR with a full zone.
JOURNAL_LENGTH = 200


def next_serial(serial: int) -> int:
    """The serial after ``serial`` in RFC 1982 arithmetic (never 0 wrap issues)."""
    return (serial + 1) % (1 << 32) or 1


def serial_gt(a: int, b: int) -> bool:
    """RFC 1982 §3.2: serial a is greater than serial b."""
    return a != b and ((a > b and a - b < 2**31) or (a < b and b - a > 2**31))


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
        self,
        origin: str,
        *,
        nameservers: Sequence[str],
        hostmaster: str,
        ttl: int = 3600,
        serial: int = 1,
    ) -> ManagedZone: ...
    async def zone_list(self) -> list[tuple[str, int]]: ...
    async def zone_get(self, origin: str) -> ManagedZone: ...
    async def zone_remove(self, origin: str) -> None: ...
    async def zone_serials(self) -> dict[str, int]: ...
    async def record_add(
        self, origin: str, name: str, rdtype: str, value: str, ttl: int | None = None
    ) -> int:
        """Add one record; returns the new serial."""
        ...

    async def record_remove(
        self, origin: str, name: str, rdtype: str, value: str | None = None
    ) -> int:
        """Remove one record, or the whole RRset when ``value`` is None."""
        ...

    async def zone_apply(
        self,
        origin: str,
        deleted: Sequence[ZoneRecord],
        added: Sequence[ZoneRecord],
        new_serial: int | None = None,
    ) -> int:
        """Apply a change computed elsewhere (a DNS UPDATE), atomically; returns the serial."""
        ...

    async def zone_journal(self, origin: str) -> list[JournalEntry]: ...
    async def zone_history_add(self, origin: str, entry: JournalEntry) -> None:
        """Keep one change of a zone served from a file or a transfer, durably.

        A change that does not follow the last one kept (the zone was replaced
        meanwhile) starts the history afresh; the newest ``JOURNAL_LENGTH``
        changes are kept.
        """
        ...

    async def zone_history(self, origin: str) -> list[JournalEntry]:
        """The changes ``zone_history_add`` kept, oldest first."""
        ...

    async def zone_notify_claim(self, origin: str, serial: int) -> bool:
        """Whether the caller is the one to send NOTIFY (RFC 1996) for this
        serial of the zone: True once per serial among every node sharing the
        store, False to the others (they see the same change)."""
        ...


def notify_key(origin: str) -> str:
    """The ``meta`` row where a backend keeps the last serial NOTIFY was
    claimed for (``zone_notify_claim``)."""
    return f"notified:{canonical_origin(origin)}"


def records_text(records: Sequence[ZoneRecord]) -> str:
    """Records as a backend keeps them in a journal entry: one per line, tab-separated."""
    return "\n".join(f"{r.name}\t{r.rdtype}\t{r.ttl}\t{r.rdata}" for r in records)


def records_from_text(text: str) -> tuple[ZoneRecord, ...]:
    """The records ``records_text`` wrote."""
    out = []
    for line in text.splitlines():
        name, rdtype, ttl, rdata = line.split("\t", 3)
        out.append(ZoneRecord(name, rdtype, int(ttl), rdata))
    return tuple(out)


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


def new_zone_records(
    origin: str, nameservers: Sequence[str], hostmaster: str, ttl: int, serial: int
) -> list[ZoneRecord]:
    """The SOA and apex NS records of a new zone."""
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
    return [soa] + [make_record(origin, "@", "NS", ns, ttl) for ns in nameservers]

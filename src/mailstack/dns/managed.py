"""Between the store's zones and journals (text records) and served ``Zone``
snapshots and ``ZoneDiff`` changes."""

from __future__ import annotations

from collections.abc import Iterable

import dns.name
import dns.rdatatype
import dns.rrset

from mailstack.dns.zone import Zone, ZoneDiff, rrset_from_text
from mailstack.store import JournalEntry, ManagedZone, ZoneRecord


def to_zone(managed: ManagedZone) -> Zone:
    origin = dns.name.from_text(managed.origin)
    rrsets = [
        rrset_from_text(dns.name.from_text(r.name), r.ttl, r.rdtype, r.rdata, dns.name.root)
        for r in managed.records
    ]
    return Zone.from_rrsets(origin, rrsets)


def to_records(rrsets: Iterable[dns.rrset.RRset]) -> list[ZoneRecord]:
    return [
        ZoneRecord(
            rrset.name.to_text().lower(),
            dns.rdatatype.to_text(rrset.rdtype),
            rrset.ttl,
            rdata.to_text(origin=dns.name.root, relativize=False),
        )
        for rrset in rrsets
        for rdata in rrset
    ]


def to_entry(change: ZoneDiff) -> JournalEntry:
    """An IXFR difference as the store keeps it (the SOAs are the serials)."""
    return JournalEntry(
        change.old_serial,
        change.new_serial,
        tuple(to_records(r for r in change.deleted if r.rdtype != dns.rdatatype.SOA)),
        tuple(to_records(r for r in change.added if r.rdtype != dns.rdatatype.SOA)),
    )


def to_diff(entry: JournalEntry, zone: Zone) -> ZoneDiff:
    """A stored journal entry as an IXFR difference (SOAs rebuilt from the serials)."""
    soa = zone.soa

    def soa_with(serial: int) -> dns.rrset.RRset:
        out = dns.rrset.RRset(soa.name, soa.rdclass, soa.rdtype)
        out.add(soa[0].replace(serial=serial), soa.ttl)
        return out

    def rrsets(records: Iterable[ZoneRecord]) -> list[dns.rrset.RRset]:
        return [
            rrset_from_text(dns.name.from_text(r.name), r.ttl, r.rdtype, r.rdata, dns.name.root)
            for r in records
        ]

    return ZoneDiff(
        entry.old_serial,
        entry.new_serial,
        (soa_with(entry.old_serial), *rrsets(entry.deleted)),
        (soa_with(entry.new_serial), *rrsets(entry.added)),
    )

"""Zone data: an immutable snapshot of one zone's records.

A ``Zone`` is built once (from an RFC 1035 §5 master file, from the store, or
from a transfer) and never mutated; a change produces a new ``Zone`` and a
``ZoneDiff`` that IXFR (RFC 1995) serves. The authoritative answer logic reads
it without locks.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone

from mailstack.errors import ConfigError

SOA = dns.rdatatype.SOA
NS = dns.rdatatype.NS
CNAME = dns.rdatatype.CNAME
DNAME = dns.rdatatype.DNAME

Node = dict[int, dns.rrset.RRset]


class ZoneError(ConfigError):
    """The zone data is invalid."""


@dataclass(frozen=True, slots=True)
class ZoneDiff:
    """One serial change (RFC 1995 §4): the records removed and added."""

    old_serial: int
    new_serial: int
    deleted: tuple[dns.rrset.RRset, ...]
    added: tuple[dns.rrset.RRset, ...]


@dataclass(slots=True)
class Zone:
    """The records of one zone, indexed for the answer algorithm."""

    origin: dns.name.Name
    nodes: dict[dns.name.Name, Node]
    # Every name that exists, including empty non-terminals (RFC 4592 §2.2.2).
    existing: set[dns.name.Name] = field(default_factory=set)
    # Zone cuts below the apex: names that own NS records (RFC 1034 §4.2.1).
    cuts: set[dns.name.Name] = field(default_factory=set)
    # Names that own a DNAME (RFC 6672 §2.3): their descendants are redirected.
    dnames: set[dns.name.Name] = field(default_factory=set)

    def __post_init__(self) -> None:
        if SOA not in self.nodes.get(self.origin, {}):
            raise ZoneError(f"zone {self.origin} has no SOA record at its apex")
        if NS not in self.nodes[self.origin]:
            raise ZoneError(f"zone {self.origin} has no NS records at its apex")
        for owner, node in self.nodes.items():
            if not owner.is_subdomain(self.origin):
                raise ZoneError(f"{owner} is outside zone {self.origin}")
            name = owner
            while name != self.origin and name not in self.existing:
                self.existing.add(name)
                name = name.parent()
            if owner != self.origin and NS in node:
                self.cuts.add(owner)
            if DNAME in node:
                self.dnames.add(owner)
        self.existing.add(self.origin)

    @property
    def soa(self) -> dns.rrset.RRset:
        return self.nodes[self.origin][SOA]

    @property
    def serial(self) -> int:
        return int(self.soa[0].serial)

    def rrsets(self) -> Iterator[dns.rrset.RRset]:
        """Every RRset, the apex SOA first (the AXFR order, RFC 5936 §2.2)."""
        yield self.soa
        for owner in sorted(self.nodes):
            for rdtype, rrset in sorted(self.nodes[owner].items()):
                if not (owner == self.origin and rdtype == SOA):
                    yield rrset

    def get(self, name: dns.name.Name, rdtype: int) -> dns.rrset.RRset | None:
        node = self.nodes.get(name)
        return node.get(rdtype) if node else None

    def to_text(self) -> str:
        """The zone as an RFC 1035 master file."""
        lines = [f"$ORIGIN {self.origin.to_text()}"]
        lines += [rrset.to_text(origin=self.origin, relativize=True) for rrset in self.rrsets()]
        return "\n".join(lines) + "\n"

    # -- building -----------------------------------------------------------

    @classmethod
    def from_rrsets(cls, origin: dns.name.Name, rrsets: Iterable[dns.rrset.RRset]) -> Zone:
        nodes: dict[dns.name.Name, Node] = {}
        for rrset in rrsets:
            if rrset.rdclass != dns.rdataclass.IN:
                raise ZoneError(f"{rrset.name}: only class IN is served")
            node = nodes.setdefault(rrset.name, {})
            existing = node.get(rrset.rdtype)
            if existing is None:
                node[rrset.rdtype] = dns.rrset.RRset(rrset.name, rrset.rdclass, rrset.rdtype)
                existing = node[rrset.rdtype]
            # RFC 2181 §5.2: all records of an RRset share one TTL (the lowest).
            existing.update(rrset)
        return cls(origin, nodes)

    @classmethod
    def from_text(cls, text: str, origin: dns.name.Name | str | None = None) -> Zone:
        try:
            zone = dns.zone.from_text(text, origin=origin, relativize=False, check_origin=False)
        except dns.exception.DNSException as exc:
            raise ZoneError(f"zone {origin}: {exc}") from exc
        assert zone.origin is not None
        return cls.from_rrsets(zone.origin, _rrsets_of(zone, zone.origin))

    @classmethod
    def from_file(cls, path: Path, origin: dns.name.Name | str | None = None) -> Zone:
        """Load a master file; the origin is its $ORIGIN, else the file name."""
        text = path.read_text()
        if origin is None and not _has_origin(text):
            stem = path.name.removesuffix(".zone")
            origin = dns.name.from_text(stem)
        try:
            return cls.from_text(text, origin)
        except ZoneError as exc:
            raise ZoneError(f"{path}: {exc}") from exc

    def with_changes(
        self, deleted: Iterable[dns.rrset.RRset], added: Iterable[dns.rrset.RRset]
    ) -> Zone:
        """A new zone with records removed then added (the SOA is not bumped)."""
        nodes = {owner: dict(node) for owner, node in self.nodes.items()}
        for rrset in deleted:
            node = nodes.get(rrset.name, {})
            current = node.get(rrset.rdtype)
            if current is None:
                continue
            remaining = dns.rrset.RRset(current.name, current.rdclass, current.rdtype)
            remaining.update(current)
            for rdata in rrset:
                remaining.discard(rdata)
            if remaining:
                node[rrset.rdtype] = remaining
            else:
                del node[rrset.rdtype]
                if not node:
                    del nodes[rrset.name]
        for rrset in added:
            node = nodes.setdefault(rrset.name, {})
            merged = dns.rrset.RRset(rrset.name, rrset.rdclass, rrset.rdtype)
            if rrset.rdtype in node and rrset.rdtype != SOA:
                merged.update(node[rrset.rdtype])
            merged.update(rrset)
            node[rrset.rdtype] = merged
        return Zone(self.origin, nodes)

    def with_serial(self, serial: int) -> Zone:
        soa = self.soa
        new = dns.rrset.RRset(soa.name, soa.rdclass, SOA)
        new.add(soa[0].replace(serial=serial), soa.ttl)
        return self.with_changes([], [new])


def diff(old: Zone, new: Zone) -> ZoneDiff:
    """The records that turn ``old`` into ``new`` (SOAs included, RFC 1995 §4)."""
    deleted: list[dns.rrset.RRset] = [old.soa]
    added: list[dns.rrset.RRset] = [new.soa]
    for owner in set(old.nodes) | set(new.nodes):
        before = old.nodes.get(owner, {})
        after = new.nodes.get(owner, {})
        for rdtype in set(before) | set(after):
            if rdtype == SOA and owner == old.origin:
                continue
            a = before.get(rdtype)
            b = after.get(rdtype)
            gone = _minus(a, b)
            came = _minus(b, a)
            if gone:
                deleted.append(gone)
            if came:
                added.append(came)
    return ZoneDiff(old.serial, new.serial, tuple(deleted), tuple(added))


def _minus(a: dns.rrset.RRset | None, b: dns.rrset.RRset | None) -> dns.rrset.RRset | None:
    if a is None:
        return None
    out = dns.rrset.RRset(a.name, a.rdclass, a.rdtype)
    for rdata in a:
        if b is None or rdata not in b or b.ttl != a.ttl:
            out.add(rdata, a.ttl)
    return out or None


def _rrsets_of(zone: dns.zone.Zone, origin: dns.name.Name) -> Iterator[dns.rrset.RRset]:
    for name, node in zone.nodes.items():
        owner = name.derelativize(origin)
        for rdataset in node.rdatasets:
            rrset = dns.rrset.RRset(owner, rdataset.rdclass, rdataset.rdtype, rdataset.covers)
            rrset.update(rdataset)
            yield rrset


def _has_origin(text: str) -> bool:
    return any(line.lstrip().upper().startswith("$ORIGIN") for line in text.splitlines())


def rrset_from_text(
    name: dns.name.Name, ttl: int, rdtype: str | int, value: str, origin: dns.name.Name
) -> dns.rrset.RRset:
    """One record from its presentation form (``MX``, ``10 mx``) relative to ``origin``."""
    try:
        rdtype_value = (
            dns.rdatatype.from_text(rdtype)
            if isinstance(rdtype, str)
            else dns.rdatatype.RdataType(rdtype)
        )
        rdata = dns.rdata.from_text(
            dns.rdataclass.IN, rdtype_value, value, origin=origin, relativize=False
        )
    except (dns.exception.DNSException, ValueError) as exc:
        raise ZoneError(f"{name} {rdtype} {value!r}: {exc}") from exc
    rrset = dns.rrset.RRset(name, dns.rdataclass.IN, rdtype_value)
    rrset.add(rdata, ttl)
    return rrset

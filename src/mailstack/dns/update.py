"""Dynamic UPDATE (RFC 2136), without I/O.

``apply_update`` checks the prerequisites (§3.2), prescans the update section
(§3.4.1) and applies it (§3.4.2) to a copy of the zone, all or nothing. The
serial is bumped when anything changed (§3.6). The server makes the result
durable before it answers (§3.5: the reply follows the commit).

``ReplayGuard`` refuses a signed UPDATE captured and sent again: TSIG (RFC
8945) only bounds a request's age by its fudge, so within that window the same
signed message would verify again.
"""

from __future__ import annotations

from collections import OrderedDict

import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.update

from mailstack.dns.zone import CNAME, NS, SOA, Node, Zone
from mailstack.errors import DnsError

# SOA serials move by the rule the store keeps for managed zones (RFC 1982).
from mailstack.store import next_serial, serial_gt

ANY = dns.rdataclass.ANY
NONE = dns.rdataclass.NONE
_META = {
    dns.rdatatype.AXFR,
    dns.rdatatype.IXFR,
    dns.rdatatype.MAILA,
    dns.rdatatype.MAILB,
    dns.rdatatype.OPT,
    dns.rdatatype.TSIG,
}


class ReplayGuard:
    """RFC 8945 §5.2.3: signed requests seen before are refused with BADTIME.

    A MAC already seen within its request's time window (Time Signed plus or
    minus Fudge; past it the TSIG check itself fails) is a replay. Like a zone
    serial, a key's Time Signed may only move forward: a request signed
    earlier than the last one accepted from the same key is refused too (the
    RFC's SHOULD), which also covers a restart forgetting the MACs. At most
    ``size`` MACs are kept, the oldest forgotten first.
    """

    def __init__(self, size: int = 100_000) -> None:
        self.size = size
        self._seen: OrderedDict[bytes, int] = OrderedDict()  # MAC -> end of its window
        self._latest: dict[dns.name.Name, int] = {}  # key name -> latest Time Signed

    def admit(self, request: dns.message.Message, now: float) -> bool:
        """True, once, for a verified signed request; False for a replay."""
        if request.tsig is None or request.mac is None or request.keyname is None:
            return False
        key_name = request.keyname
        tsig = request.tsig[0]
        time_signed, window_end = tsig.time_signed, tsig.time_signed + tsig.fudge
        while self._seen and next(iter(self._seen.values())) < now:
            self._seen.popitem(last=False)
        mac = bytes(request.mac)
        if mac in self._seen:
            return False
        latest = self._latest.get(key_name)
        if latest is not None and time_signed < latest:
            return False
        self._seen[mac] = window_end
        if len(self._seen) > self.size:
            self._seen.popitem(last=False)
        self._latest[key_name] = time_signed
        return True


def apply_update(zone: Zone, message: dns.message.Message) -> Zone:
    """The zone after ``message``; raises ``DnsError`` with the RCODE to send."""
    if not isinstance(message, dns.update.UpdateMessage):
        raise DnsError(dns.rcode.FORMERR)
    origin = zone.origin
    nodes: dict[dns.name.Name, Node] = {o: dict(n) for o, n in zone.nodes.items()}
    _check_prerequisites(zone, message.prerequisite)
    for rrset in message.update:
        # RFC 2136 §3.4.1.3: the prescan.
        if not rrset.name.is_subdomain(origin):
            raise DnsError(dns.rcode.NOTZONE)
        deleting = getattr(rrset, "deleting", None)
        if deleting is None and (rrset.rdtype in _META or rrset.rdtype == dns.rdatatype.ANY):
            raise DnsError(dns.rcode.FORMERR)
        if deleting is not None and rrset.ttl != 0:
            raise DnsError(dns.rcode.FORMERR)
    old_soa = zone.soa
    for rrset in message.update:
        _apply_one(nodes, origin, rrset)
    if nodes == zone.nodes:
        return zone
    new_soa = nodes[origin][SOA]
    serial = int(new_soa[0].serial)
    if not serial_gt(serial, int(old_soa[0].serial)):
        # RFC 2136 §3.6: the serial grows with every change.
        bumped = dns.rrset.RRset(origin, dns.rdataclass.IN, SOA)
        bumped.add(new_soa[0].replace(serial=next_serial(int(old_soa[0].serial))), new_soa.ttl)
        nodes[origin][SOA] = bumped
    return Zone(origin, nodes)


def _check_prerequisites(zone: Zone, prerequisites: list[dns.rrset.RRset]) -> None:
    """RFC 2136 §3.2."""
    value_sets: dict[tuple[dns.name.Name, int], dns.rrset.RRset] = {}
    for rrset in prerequisites:
        if rrset.ttl != 0:
            raise DnsError(dns.rcode.FORMERR)
        if not rrset.name.is_subdomain(zone.origin):
            raise DnsError(dns.rcode.NOTZONE)
        node = zone.nodes.get(rrset.name, {})
        deleting = getattr(rrset, "deleting", None)
        if deleting == ANY:
            if rrset.rdtype == dns.rdatatype.ANY:
                if not node:
                    raise DnsError(dns.rcode.NXDOMAIN)
            elif rrset.rdtype not in node:
                raise DnsError(dns.rcode.NXRRSET)
        elif deleting == NONE:
            if rrset.rdtype == dns.rdatatype.ANY:
                if node:
                    raise DnsError(dns.rcode.YXDOMAIN)
            elif rrset.rdtype in node:
                raise DnsError(dns.rcode.YXRRSET)
        elif rrset.rdclass == dns.rdataclass.IN:
            key = (rrset.name, rrset.rdtype)
            collected = value_sets.setdefault(
                key, dns.rrset.RRset(rrset.name, dns.rdataclass.IN, rrset.rdtype)
            )
            for rdata in rrset:
                collected.add(rdata)
        else:
            raise DnsError(dns.rcode.FORMERR)
    for (name, rdtype), wanted in value_sets.items():
        # §3.2.3: the RRset must exist with exactly these values.
        have = zone.get(name, rdtype)
        if have is None or set(have) != set(wanted):
            raise DnsError(dns.rcode.NXRRSET)


def _apply_one(
    nodes: dict[dns.name.Name, Node], origin: dns.name.Name, rrset: dns.rrset.RRset
) -> None:
    """RFC 2136 §3.4.2."""
    deleting = getattr(rrset, "deleting", None)
    name, rdtype = rrset.name, rrset.rdtype
    node = nodes.get(name, {})
    if deleting is None:
        if rdtype == CNAME and any(t != CNAME for t in node):
            return  # §3.4.2.2: CNAME beside other data is ignored
        if rdtype != CNAME and CNAME in node:
            return
        if rdtype == SOA:
            if name != origin:
                return
            if serial_gt(int(rrset[0].serial), int(node[SOA][0].serial)):
                node[SOA] = rrset
            return
        merged = dns.rrset.RRset(name, dns.rdataclass.IN, rdtype)
        if rdtype in node:
            merged.update(node[rdtype])
        for rdata in rrset:
            merged.add(rdata, rrset.ttl)
        node[rdtype] = merged
        nodes[name] = node
        return
    if name not in nodes:
        return
    if deleting == ANY:
        doomed = list(node) if rdtype == dns.rdatatype.ANY else [rdtype]
        for t in doomed:
            if name == origin and t in (SOA, NS):
                continue  # §3.4.2.3: the apex SOA and NS stay
            node.pop(t, None)
    else:
        current = node.get(rdtype)
        if current is None or rdtype == SOA:
            return
        remaining = dns.rrset.RRset(name, dns.rdataclass.IN, rdtype)
        remaining.update(current)
        for rdata in rrset:
            remaining.discard(rdata)
        if not remaining and name == origin and rdtype == NS:
            return  # §3.4.2.4: never the last apex NS
        if remaining:
            node[rdtype] = remaining
        else:
            del node[rdtype]
    if not node:
        del nodes[name]



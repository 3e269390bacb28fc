"""The authoritative answer algorithm (RFC 1034 §4.3.2), without I/O.

``Authority`` holds the zones a server is authoritative for and turns a
parsed query into a response: answers with AA set, CNAMEs chased within one
zone (never into another, RFC 1034 §4.3.2 step 3a as Knot and NSD read it),
DNAME substitution with a synthesised CNAME (RFC 6672), wildcard synthesis
(RFC 4592), referrals with glue for delegated children, DS from the parent
side of a cut (RFC 4035 §3.1.4.1), NXDOMAIN and NODATA with the SOA for
negative caching (RFC 2308 §3), and ANY answered with one RRset (RFC 8482
§4.1). Names keep the case the zone gives them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CNAME
import dns.rrset

from mailstack.dns.zone import CNAME, DNAME, NS, SOA, Zone

A = dns.rdatatype.A
AAAA = dns.rdatatype.AAAA
ANY = dns.rdatatype.ANY
DS = dns.rdatatype.DS
MX = dns.rdatatype.MX
SRV = dns.rdatatype.SRV

# A CNAME chain longer than this inside our own zones is answered as far as
# it got; the client's resolver continues (RFC 1034 §3.6.2 warns of loops).
MAX_CNAME_CHAIN = 8
WILDCARD = dns.name.Name([b"*"])


@dataclass(slots=True)
class Lookup:
    """The sections of an authoritative answer."""

    rcode: int = dns.rcode.NOERROR
    authoritative: bool = True
    answer: list[dns.rrset.RRset] = field(default_factory=list)
    authority: list[dns.rrset.RRset] = field(default_factory=list)
    additional: list[dns.rrset.RRset] = field(default_factory=list)
    referral: bool = False


class Authority:
    """The zones this server serves, and the answers it gives from them."""

    def __init__(self, zones: list[Zone] | None = None) -> None:
        self._zones: dict[dns.name.Name, Zone] = {}
        # Secondary zones past SOA EXPIRE without a refresh (RFC 1034 §4.3.5).
        self.expired: set[dns.name.Name] = set()
        # Bumped on every change, so precomputed wire answers can be dropped.
        self.generation = 0
        for zone in zones or []:
            self.set_zone(zone)

    @property
    def zones(self) -> dict[dns.name.Name, Zone]:
        return self._zones

    def set_zone(self, zone: Zone) -> None:
        self._zones[zone.origin] = zone
        self.expired.discard(zone.origin)
        self.generation += 1

    def remove_zone(self, origin: dns.name.Name) -> None:
        self.expired.discard(origin)
        if self._zones.pop(origin, None) is not None:
            self.generation += 1

    def set_expired(self, origin: dns.name.Name, expired: bool) -> None:
        """RFC 1034 §4.3.5: an expired zone's data is no longer authoritative;
        its questions get SERVFAIL until a refresh succeeds."""
        if expired != (origin in self.expired):
            if expired:
                self.expired.add(origin)
            else:
                self.expired.discard(origin)
            self.generation += 1

    def find_zone(self, qname: dns.name.Name) -> Zone | None:
        """The zone closest to ``qname`` (the longest matching origin)."""
        if not qname.is_absolute():
            return None
        name = qname
        while True:
            zone = self._zones.get(name)
            if zone is not None:
                return zone
            if name == dns.name.root:
                return None
            name = name.parent()

    # -- the algorithm ------------------------------------------------------

    def lookup(self, qname: dns.name.Name, qtype: int) -> Lookup | None:
        """RFC 1034 §4.3.2 for class IN; ``None`` when no zone of ours holds qname."""
        zone = self.find_zone(qname)
        if zone is None:
            return None
        if qtype == DS and qname == zone.origin and qname != dns.name.root:
            # RFC 4035 §3.1.4.1: DS lives on the parent side of the cut; when we
            # serve the parent too, answer from it.
            zone = self.find_zone(qname.parent()) or zone
        if zone.origin in self.expired:
            return Lookup(rcode=dns.rcode.SERVFAIL, authoritative=False)
        result = Lookup()
        seen: set[dns.name.Name] = set()
        name = qname
        for _ in range(MAX_CNAME_CHAIN):
            seen.add(name)
            target = self._lookup_in_zone(zone, name, qtype, result)
            if target is None or target in seen or not target.is_subdomain(zone.origin):
                # RFC 1034 §4.3.2 step 3a restarts at step 1 only for data of
                # this zone: a target in another zone, even one we serve, is
                # the resolver's to follow (as Knot and NSD read it).
                break
            name = target
        self._add_additional(zone, result)
        return result

    def _lookup_in_zone(
        self, zone: Zone, qname: dns.name.Name, qtype: int, result: Lookup
    ) -> dns.name.Name | None:
        """Fill ``result`` from one zone; returns a CNAME target to chase."""
        kind, owner = _closest_redirect(zone, qname, qtype)
        if kind == NS:
            # RFC 1034 §4.3.2 step 3b: a referral, NS in authority, glue in
            # additional; not authoritative for the child's data.
            ns = zone.nodes[owner][NS]
            result.referral = True
            result.authoritative = bool(result.answer)
            result.authority.append(ns)
            for rdata in ns:
                for rdtype in (A, AAAA):
                    glue = zone.get(rdata.target, rdtype)
                    if glue is not None and glue not in result.additional:
                        result.additional.append(glue)
            return None
        if kind == DNAME:
            target = _substitute(zone.nodes[owner][DNAME], qname, result)
            # A CNAME question is answered by the synthesised CNAME itself.
            return None if qtype == CNAME else target
        node = zone.nodes.get(qname)
        owner = qname
        if node is None and qname not in zone.existing:
            # RFC 4592 §4.1: a wildcard at the closest encloser synthesises.
            source = WILDCARD.concatenate(_closest_encloser(zone, qname))
            node = zone.nodes.get(source)
            if node is None:
                result.rcode = dns.rcode.NXDOMAIN
                result.authority.append(_negative_soa(zone))
                return None
            owner = source
        if node is None:
            # An empty non-terminal: the name exists, with no data (RFC 8020).
            result.authority.append(_negative_soa(zone))
            return None
        if qtype == ANY:
            # RFC 8482 §4.1: one RRset rather than all of them; the one with
            # the lowest type, as Knot chooses, so the answer is deterministic.
            result.answer.append(_owned_by(node[min(node)], qname, owner))
            return None
        found = node.get(qtype)
        if found is not None:
            result.answer.append(_owned_by(found, qname, owner))
            return None
        cname = node.get(CNAME)
        if cname is not None:
            result.answer.append(_owned_by(cname, qname, owner))
            return cname[0].target
        result.authority.append(_negative_soa(zone))
        return None

    @staticmethod
    def _add_additional(zone: Zone, result: Lookup) -> None:
        """RFC 1035 §3.3.9, RFC 2782: addresses of MX, NS and SRV targets the
        answering zone holds (another zone's data is not added, as in Knot)."""
        if result.referral:
            return
        for rrset in list(result.answer) + [r for r in result.authority if r.rdtype == NS]:
            if rrset.rdtype not in (MX, NS, SRV):
                continue
            for rdata in rrset:
                target = rdata.exchange if rrset.rdtype == MX else rdata.target
                if not target.is_subdomain(zone.origin) or _closest_redirect(zone, target, A)[0]:
                    continue
                for rdtype in (A, AAAA):
                    glue = zone.get(target, rdtype)
                    if glue is not None and glue not in result.additional:
                        result.additional.append(glue)

    # -- messages -----------------------------------------------------------

    def respond(self, query: dns.message.Message, payload: int = 1232) -> dns.message.Message:
        """The response to a standard query, or REFUSED when it is not ours."""
        response = dns.message.make_response(query, our_payload=payload)
        question = query.question[0]
        lookup = None
        if question.rdclass == dns.rdataclass.IN:
            lookup = self.lookup(question.name, question.rdtype)
        if lookup is None:
            # RFC 1034 §4.3.1: not a name we serve and no recursion for you.
            response.set_rcode(dns.rcode.REFUSED)
            return response
        fill(response, lookup)
        return response


def fill(response: dns.message.Message, lookup: Lookup) -> None:
    response.set_rcode(dns.rcode.Rcode(lookup.rcode))
    if lookup.authoritative:
        response.flags |= dns.flags.AA
    response.answer = list(lookup.answer)
    response.authority = list(lookup.authority)
    response.additional = list(lookup.additional)


def _closest_redirect(
    zone: Zone, qname: dns.name.Name, qtype: int
) -> tuple[int, dns.name.Name]:
    """The first zone cut (NS) or DNAME met going down from the apex to qname.

    A cut at qname itself counts (DS excepted: it belongs to the parent side,
    RFC 4035 §2.4); a DNAME redirects only the names below its owner (RFC 6672
    §2.3). Returns ``(NS, cut)``, ``(DNAME, owner)`` or ``(0, qname)``.
    """
    if not zone.cuts and not zone.dnames:
        return 0, qname
    depth = len(zone.origin)
    for labels in range(depth, len(qname) + 1):
        name = qname if labels == len(qname) else qname.split(labels)[1]
        if labels > depth and name in zone.cuts and not (name == qname and qtype == DS):
            return NS, name
        if name in zone.dnames and labels < len(qname):
            return DNAME, name
    return 0, qname


def _substitute(
    dname: dns.rrset.RRset, qname: dns.name.Name, result: Lookup
) -> dns.name.Name | None:
    """RFC 6672 §3.2: the DNAME, and a CNAME synthesised from it, in the answer.

    The synthesised CNAME has the DNAME's TTL (§3.1); a name made too long by
    the substitution is YXDOMAIN (§2.2).
    """
    result.answer.append(dname)
    try:
        # The query's labels in lower case, as Knot writes them.
        target = qname.relativize(dname.name).concatenate(dname[0].target).canonicalize()
    except dns.name.NameTooLong:
        result.rcode = dns.rcode.YXDOMAIN
        return None
    cname = dns.rrset.RRset(qname, dname.rdclass, CNAME)
    cname.add(dns.rdtypes.ANY.CNAME.CNAME(dname.rdclass, CNAME, target), dname.ttl)
    result.answer.append(cname)
    return target


def _closest_encloser(zone: Zone, qname: dns.name.Name) -> dns.name.Name:
    name = qname.parent()
    while name not in zone.existing:
        name = name.parent()
    return name


def _negative_soa(zone: Zone) -> dns.rrset.RRset:
    """RFC 2308 §3: the SOA's TTL in a negative answer is min(TTL, MINIMUM)."""
    soa = zone.soa
    ttl = min(soa.ttl, soa[0].minimum)
    if ttl == soa.ttl:
        return soa
    out = dns.rrset.RRset(soa.name, soa.rdclass, SOA)
    out.update(soa)
    out.ttl = ttl
    return out


def _owned_by(
    rrset: dns.rrset.RRset, qname: dns.name.Name, owner: dns.name.Name
) -> dns.rrset.RRset:
    """The RRset as answered for qname (a wildcard's records take qname's name)."""
    if owner == qname:
        return rrset
    out = dns.rrset.RRset(qname, rrset.rdclass, rrset.rdtype)
    out.update(rrset)
    return out

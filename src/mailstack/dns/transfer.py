"""Zone transfer replies (AXFR RFC 5936, IXFR RFC 1995) and NOTIFY (RFC 1996).

Builds the response messages; the server renders them in order on one TCP
connection, chaining TSIG over the whole sequence (RFC 8945 §5.3.1).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from mailstack.dns.catalog import Catalog
from mailstack.dns.proto import OUR_PAYLOAD
from mailstack.dns.zone import SOA, Zone, ZoneDiff

# RRsets per message: keeps each message far below the 64 KiB TCP limit for
# ordinary records while amortising the header (RFC 5936 §2.2 allows many).
RRSETS_PER_MESSAGE = 64


def transfer_replies(
    catalog: Catalog, query: dns.message.Message, client: str
) -> list[dns.message.Message]:
    """The replies to an AXFR or IXFR query, or a single error reply."""
    question = query.question[0]
    zone = catalog.authority.zones.get(question.name)
    if zone is None or question.rdclass != dns.rdataclass.IN:
        return [_error(query, dns.rcode.NOTAUTH)]
    if zone.origin in catalog.authority.expired:
        # RFC 1034 §4.3.5: an expired copy is not handed on.
        return [_error(query, dns.rcode.SERVFAIL)]
    key_name = query.keyname if query.had_tsig else None
    if not catalog.transfer_acl.allows(client, key_name):
        # RFC 5936 §6: transfers only to whom the operator allows.
        return [_error(query, dns.rcode.REFUSED, dns.edns.EDECode.PROHIBITED)]
    if question.rdtype == dns.rdatatype.IXFR:
        client_serial = _client_serial(query)
        if client_serial is None:
            return [_error(query, dns.rcode.FORMERR)]
        if not _serial_lt(client_serial, zone.serial):
            # RFC 1995 §2: the client is current; the SOA alone says so.
            return list(_pack(query, [zone.soa]))
        changes = catalog.changes_since(zone.origin, client_serial)
        if changes is not None:
            return list(_pack(query, ixfr_records(zone, changes)))
        # RFC 1995 §4: without the history, a full zone in AXFR form.
    return list(_pack(query, axfr_records(zone)))


def axfr_records(zone: Zone) -> list[dns.rrset.RRset]:
    """RFC 5936 §2.2: SOA, every other record, SOA again."""
    records = list(zone.rrsets())
    return records + [zone.soa]


def ixfr_records(zone: Zone, changes: Iterable[ZoneDiff]) -> list[dns.rrset.RRset]:
    """RFC 1995 §4: new SOA, then per change old SOA, deletions, new SOA, additions."""
    records = [zone.soa]
    for change in changes:
        records += list(change.deleted) + list(change.added)
    records.append(zone.soa)
    return records


def _pack(
    query: dns.message.Message, rrsets: list[dns.rrset.RRset]
) -> Iterator[dns.message.Message]:
    for start in range(0, len(rrsets), RRSETS_PER_MESSAGE):
        response = dns.message.make_response(query, our_payload=OUR_PAYLOAD)
        response.flags |= dns.flags.AA
        if start:
            # RFC 5936 §2.2.1: later messages need not repeat the question.
            response.question = []
        response.answer = rrsets[start : start + RRSETS_PER_MESSAGE]
        yield response


def _client_serial(query: dns.message.Message) -> int | None:
    for rrset in query.authority:
        if rrset.rdtype == SOA and len(rrset):
            return int(rrset[0].serial)
    return None


def _serial_lt(a: int, b: int) -> bool:
    """RFC 1982 §3.2 serial number comparison."""
    return a != b and ((a < b and b - a < 2**31) or (a > b and a - b > 2**31))


def _error(
    query: dns.message.Message, rcode: int, ede: dns.edns.EDECode | None = None
) -> dns.message.Message:
    response = dns.message.make_response(query, our_payload=OUR_PAYLOAD)
    response.set_rcode(dns.rcode.Rcode(rcode))
    if ede is not None and response.edns >= 0:
        # RFC 8914 §2: the reason, for the client's logs.
        response.use_edns(0, 0, OUR_PAYLOAD, options=[dns.edns.EDEOption(ede)])
    return response


def notify_message(zone: Zone) -> dns.message.Message:
    """RFC 1996 §3.7: a NOTIFY for the zone, with its current SOA as a hint."""
    message = dns.message.make_query(zone.origin, dns.rdatatype.SOA)
    message.flags = dns.flags.AA
    message.set_opcode(dns.opcode.NOTIFY)
    message.answer = [zone.soa]
    return message

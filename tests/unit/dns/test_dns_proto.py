"""From query bytes to reply bytes: malformed input, EDNS, truncation, limits."""

from __future__ import annotations

import struct

import dns.edns
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.rrset
import dns.tsig
import dns.tsigkeyring
import dns.update
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailstack.dns.catalog import Acl
from mailstack.dns.proto import (
    Notify,
    QueryHandler,
    Recurse,
    Transfer,
    Update,
)


def header(ident=0x4242, flags=0x0100, qd=1, an=0, ns=0, ar=0) -> bytes:
    return struct.pack("!HHHHHH", ident, flags, qd, an, ns, ar)


QUESTION = b"\x07example\x00\x00\x01\x00\x01"


def rcode_of(reply: bytes) -> int:
    return struct.unpack("!H", reply[2:4])[0] & 0xF


def test_short_packets_are_dropped(authority):
    handler = QueryHandler(authority)
    for length in range(12):
        assert handler.handle(b"\x00" * length, "192.0.2.1") is None


def test_responses_are_never_answered(authority):
    assert QueryHandler(authority).handle(header(flags=0x8100) + QUESTION, "192.0.2.1") is None


def test_counts_that_lie_get_formerr(authority):
    reply = QueryHandler(authority).handle(header(qd=3) + QUESTION, "192.0.2.1")
    assert rcode_of(reply) == dns.rcode.FORMERR
    assert reply[:2] == b"\x42\x42" and reply[2] & 0x80


def test_truncated_question_gets_formerr(authority):
    reply = QueryHandler(authority).handle(header() + QUESTION[:-3], "192.0.2.1")
    assert rcode_of(reply) == dns.rcode.FORMERR


def test_compression_pointer_loop_gets_formerr(authority):
    # The name at offset 12 is a pointer to itself.
    reply = QueryHandler(authority).handle(header() + b"\xc0\x0c\x00\x01\x00\x01", "x")
    assert rcode_of(reply) == dns.rcode.FORMERR


def test_forward_compression_pointer_gets_formerr(authority):
    reply = QueryHandler(authority).handle(header() + b"\xc0\x12\x00\x01\x00\x01\x00", "x")
    assert rcode_of(reply) == dns.rcode.FORMERR


def test_label_over_63_gets_formerr(authority):
    name = b"\x40" + b"a" * 64 + b"\x00"
    reply = QueryHandler(authority).handle(header() + name + b"\x00\x01\x00\x01", "x")
    assert rcode_of(reply) == dns.rcode.FORMERR


def test_name_over_255_gets_formerr(authority):
    name = (b"\x3f" + b"a" * 63) * 4 + b"\x00"
    reply = QueryHandler(authority).handle(header() + name + b"\x00\x01\x00\x01", "x")
    assert rcode_of(reply) == dns.rcode.FORMERR


def test_unknown_class_is_refused(authority):
    reply = QueryHandler(authority).handle(header() + QUESTION[:-2] + b"\x00\x09", "x")
    assert rcode_of(reply) == dns.rcode.REFUSED


def test_unknown_type_is_nodata(authority):
    reply = QueryHandler(authority).handle(header() + QUESTION[:-4] + b"\xfe\x00\x00\x01", "x")
    parsed = dns.message.from_wire(reply)
    assert parsed.rcode() == dns.rcode.NOERROR and not parsed.answer
    assert parsed.authority[0].rdtype == dns.rdatatype.SOA


def test_unknown_opcode_is_notimp(authority):
    query = dns.message.make_query("example.", "A")
    query.set_opcode(dns.opcode.STATUS)
    reply = QueryHandler(authority).handle(query.to_wire(), "x")
    assert rcode_of(reply) == dns.rcode.NOTIMP


def test_edns_unknown_version_is_badvers(authority):
    query = dns.message.make_query("example.", "A", use_edns=1)
    reply = dns.message.from_wire(QueryHandler(authority).handle(query.to_wire(), "x"))
    assert reply.rcode() == dns.rcode.BADVERS and reply.edns == 0


def test_edns_opt_is_echoed_with_our_payload(authority):
    query = dns.message.make_query("example.", "A", use_edns=0, payload=4096)
    reply = dns.message.from_wire(QueryHandler(authority).handle(query.to_wire(), "x"))
    assert reply.edns == 0 and reply.payload == 1232


def test_truncation_sets_tc_without_edns(authority):
    query = dns.message.make_query("big.example.", "TXT")
    wire = QueryHandler(authority).handle(query.to_wire(), "x")
    assert len(wire) <= 512
    reply = dns.message.from_wire(wire)
    assert reply.flags & dns.flags.TC and not reply.answer
    tcp = dns.message.from_wire(QueryHandler(authority).handle(query.to_wire(), "x", tcp=True))
    assert not tcp.flags & dns.flags.TC and len(tcp.answer[0]) == 5


def test_large_edns_buffer_avoids_truncation(authority):
    query = dns.message.make_query("big.example.", "TXT", use_edns=0, payload=1232)
    reply = dns.message.from_wire(QueryHandler(authority).handle(query.to_wire(), "x"))
    assert not reply.flags & dns.flags.TC and len(reply.answer[0]) == 5


def test_axfr_over_udp_is_notimp_and_over_tcp_an_event(authority):
    query = dns.message.make_query("example.", "AXFR")
    handler = QueryHandler(authority)
    assert rcode_of(handler.handle(query.to_wire(), "x")) == dns.rcode.NOTIMP
    assert isinstance(handler.handle(query.to_wire(), "x", tcp=True), Transfer)


def test_ixfr_over_udp_answers_the_soa_to_whom_may_transfer(authority):
    query = dns.message.make_query("example.", "IXFR", use_edns=0)
    allowed = QueryHandler(authority, transfer_acl=Acl.of(["192.0.2.0/24"]))
    reply = dns.message.from_wire(allowed.handle(query.to_wire(), "192.0.2.9"))
    assert reply.answer[0].rdtype == dns.rdatatype.SOA
    refused = dns.message.from_wire(allowed.handle(query.to_wire(), "198.51.100.1"))
    assert refused.rcode() == dns.rcode.REFUSED and not refused.answer
    assert [o.code for o in refused.options] == [dns.edns.EDECode.PROHIBITED]


def test_update_and_notify_are_events(authority):
    handler = QueryHandler(authority)
    update = dns.update.UpdateMessage("example.")
    update.add("x.example.", 60, "A", "192.0.2.1")
    assert isinstance(handler.handle(update.to_wire(), "x"), Update)
    notify = dns.message.make_query("example.", "SOA")
    notify.set_opcode(dns.opcode.NOTIFY)
    assert isinstance(handler.handle(notify.to_wire(), "x"), Notify)


def test_recursion_only_for_allowed_clients(authority):
    handler = QueryHandler(authority, may_recurse=lambda client: client == "127.0.0.1")
    query = dns.message.make_query("example.com.", "A")
    assert isinstance(handler.handle(query.to_wire(), "127.0.0.1"), Recurse)
    refused = handler.handle(query.to_wire(), "192.0.2.9")
    assert rcode_of(refused) == dns.rcode.REFUSED
    query.flags &= ~dns.flags.RD
    assert rcode_of(handler.handle(query.to_wire(), "127.0.0.1")) == dns.rcode.REFUSED


def test_bad_tsig_gets_notauth(authority):
    keyring = dns.tsigkeyring.from_text({"k.": ("hmac-sha256", "c2VjcmV0c2VjcmV0")})
    other = dns.tsigkeyring.from_text({"k.": ("hmac-sha256", "b3RoZXJvdGhlcg==")})
    query = dns.message.make_query("example.", "A")
    query.use_tsig(other)
    reply = QueryHandler(authority, keyring=keyring).handle(query.to_wire(), "x")
    assert rcode_of(reply) == dns.rcode.NOTAUTH


def test_signed_query_gets_signed_reply(authority):
    keyring = dns.tsigkeyring.from_text({"k.": ("hmac-sha256", "c2VjcmV0c2VjcmV0")})
    query = dns.message.make_query("example.", "A")
    query.use_tsig(keyring)
    reply = QueryHandler(authority, keyring=keyring).handle(query.to_wire(), "x")
    parsed = dns.message.from_wire(reply, keyring=keyring, request_mac=query.mac)
    assert parsed.had_tsig and parsed.answer


def test_precomputed_answers_drop_on_zone_change(authority, example_zone):
    handler = QueryHandler(authority)
    query = dns.message.make_query("web.example.", "A").to_wire()
    first = dns.message.from_wire(handler.handle(query, "x"))
    assert first.answer[0][0].address == "192.0.2.80"
    authority.remove_zone(example_zone.origin)
    assert rcode_of(handler.handle(query, "x")) == dns.rcode.REFUSED


VALID = [
    dns.message.make_query(name, rdtype, use_edns=edns).to_wire()
    for name, rdtype, edns in [
        ("www.example.", "A", False),
        ("example.", "MX", 0),
        ("x.wild.example.", "ANY", 0),
        ("a.sub.example.", "NS", False),
    ]
]


def _check(handler: QueryHandler, wire: bytes) -> None:
    out = handler.handle(wire, "192.0.2.1")
    out_tcp = handler.handle(wire, "192.0.2.1", tcp=True)
    for result in (out, out_tcp):
        assert result is None or isinstance(result, bytes | Recurse | Transfer | Update | Notify)
        if isinstance(result, bytes):
            assert result[:2] == wire[:2] and result[2] & 0x80
            assert len(result) <= 65535


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=600))
def test_random_bytes_never_crash(authority, data):
    _check(QueryHandler(authority), data)


@settings(max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.sampled_from(VALID),
    st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), min_size=1, max_size=6),
    st.integers(0, 80),
)
def test_mutated_queries_never_crash(authority, wire, flips, cut):
    data = bytearray(wire)
    for position, value in flips:
        if position < len(data):
            data[position] = value
    if cut:
        data = data[: max(0, len(data) - cut)]
    _check(QueryHandler(authority, may_recurse=lambda c: True), bytes(data))


def test_recursive_replies_replay_with_aged_ttls(authority):
    handler = QueryHandler(authority, may_recurse=lambda client: True)
    query = dns.message.make_query("gaia.cs.umass.edu.", "A", use_edns=0)
    event = handler.handle(query.to_wire(), "127.0.0.1", now=100.0)
    assert isinstance(event, Recurse)
    response = dns.message.make_response(query)
    response.answer = [dns.rrset.from_text("gaia.cs.umass.edu.", 60, "IN", "A", "128.119.245.12")]
    handler.remember_recursive(event.cache_key, response.to_wire(), 100.0)
    later = handler.handle(b"\x00\x07" + query.to_wire()[2:], "127.0.0.1", now=130.5)
    parsed = dns.message.from_wire(later)
    assert parsed.id == 7 and parsed.answer[0].ttl == 30 and parsed.edns == 0
    expired = handler.handle(query.to_wire(), "127.0.0.1", now=160.0)
    assert isinstance(expired, Recurse)


def test_a_recursive_reply_sized_for_tcp_is_not_replayed_over_udp(authority):
    """RFC 1035 §4.2.1: over UDP, 512 octets without EDNS; a reply remembered
    from TCP must not be replayed to the same question over UDP."""
    handler = QueryHandler(authority, may_recurse=lambda client: True)
    query = dns.message.make_query("big.umass.edu.", "TXT")
    event = handler.handle(query.to_wire(), "127.0.0.1", now=100.0, tcp=True)
    assert isinstance(event, Recurse) and event.tcp
    response = dns.message.make_response(query)
    response.answer = [dns.rrset.from_text(
        "big.umass.edu.", 60, "IN", "TXT", *[f'"{"x" * 200} {n}"' for n in range(10)])]
    handler.remember_recursive(event.cache_key, response.to_wire(), 100.0)
    over_tcp = handler.handle(query.to_wire(), "127.0.0.1", now=101.0, tcp=True)
    assert isinstance(over_tcp, bytes) and len(over_tcp) > 512
    over_udp = handler.handle(query.to_wire(), "127.0.0.1", now=101.0)
    assert isinstance(over_udp, Recurse) and not over_udp.tcp

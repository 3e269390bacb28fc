"""The authoritative answer algorithm (RFC 1034 §4.3.2), without sockets."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype

from mailstack.dns.authority import Authority
from mailstack.dns.proto import QueryHandler
from mailstack.dns.zone import Zone


def n(text: str) -> dns.name.Name:
    return dns.name.from_text(text)


def ask(authority: Authority, name: str, rdtype: str) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    return authority.respond(query)


# A query for www.example. A with ID 0x1234, RD set, no EDNS.
QUERY_WWW = bytes.fromhex("12340100000100000000000003777777076578616d706c650000010001")
# Its reply: QR AA RD, the question, CNAME www -> web (compressed), web A 192.0.2.80.
REPLY_WWW = bytes.fromhex(
    "12348500000100020000000003777777076578616d706c650000010001"
    "c00c0005000100000e10000603776562c010"
    "c0290001000100000e100004c0000250"
)


def test_golden_reply_wire(authority):
    reply = QueryHandler(authority).handle(QUERY_WWW, "192.0.2.1")
    assert isinstance(reply, bytes)
    parsed = dns.message.from_wire(reply)
    assert parsed.id == 0x1234 and parsed.flags & dns.flags.AA and parsed.flags & dns.flags.RD
    assert [r.rdtype for r in parsed.answer] == [dns.rdatatype.CNAME, dns.rdatatype.A]
    assert reply == REPLY_WWW
    # The second time it comes from the precomputed answers, with the new ID.
    again = QueryHandler(authority)
    again.handle(QUERY_WWW, "192.0.2.1")
    assert again.handle(b"\xab\xcd" + QUERY_WWW[2:], "192.0.2.1") == b"\xab\xcd" + REPLY_WWW[2:]


def test_answer_is_authoritative(authority):
    reply = ask(authority, "mail.example.", "A")
    assert reply.flags & dns.flags.AA
    assert reply.answer[0][0].address == "192.0.2.25"


def test_cname_chased_inside_our_zones(authority):
    reply = ask(authority, "www.example.", "A")
    assert [(r.name.to_text(), r.rdtype) for r in reply.answer] == [
        ("www.example.", dns.rdatatype.CNAME),
        ("web.example.", dns.rdatatype.A),
    ]


def test_cname_leaving_our_zones_is_not_followed(authority):
    reply = ask(authority, "ext.example.", "A")
    assert len(reply.answer) == 1 and reply.answer[0].rdtype == dns.rdatatype.CNAME


def test_cname_loop_terminates(authority):
    reply = ask(authority, "loop1.example.", "A")
    assert reply.rcode() == dns.rcode.NOERROR
    assert len(reply.answer) == 2


def test_cname_query_returns_the_cname_itself(authority):
    reply = ask(authority, "www.example.", "CNAME")
    assert len(reply.answer) == 1 and reply.answer[0][0].target == n("web.example.")


def test_wildcard_synthesis_takes_the_query_name(authority):
    reply = ask(authority, "host.wild.example.", "A")
    assert reply.answer[0].name == n("host.wild.example.")
    assert reply.answer[0][0].address == "192.0.2.99"


def test_wildcard_does_not_cover_existing_names_or_other_types(authority):
    reply = ask(authority, "host.wild.example.", "TXT")
    assert reply.rcode() == dns.rcode.NOERROR and not reply.answer
    assert reply.authority[0].rdtype == dns.rdatatype.SOA


def test_wildcard_does_not_apply_below_an_empty_non_terminal(authority):
    # ent.example exists (a.b.ent), so *.example would not apply; there is no
    # *.example anyway, and x.ent.example is NXDOMAIN (RFC 4592 §2.2.2).
    reply = ask(authority, "x.ent.example.", "A")
    assert reply.rcode() == dns.rcode.NXDOMAIN


def test_nxdomain_has_soa_with_negative_ttl(authority):
    reply = ask(authority, "missing.example.", "A")
    assert reply.rcode() == dns.rcode.NXDOMAIN and reply.flags & dns.flags.AA
    soa = reply.authority[0]
    assert soa.rdtype == dns.rdatatype.SOA and soa.ttl == 300  # min(TTL, MINIMUM)


def test_nodata_and_empty_non_terminal(authority):
    for name in ("web.example.", "b.ent.example.", "ent.example."):
        reply = ask(authority, name, "MX")
        assert reply.rcode() == dns.rcode.NOERROR and not reply.answer, name
        assert reply.authority[0].rdtype == dns.rdatatype.SOA


def test_referral_with_glue(authority):
    reply = ask(authority, "host.sub.example.", "A")
    assert not reply.flags & dns.flags.AA
    assert reply.rcode() == dns.rcode.NOERROR and not reply.answer
    assert reply.authority[0].rdtype == dns.rdatatype.NS
    assert reply.authority[0].name == n("sub.example.")
    assert [r.name for r in reply.additional] == [n("ns.sub.example.")]


def test_ds_at_the_cut_is_answered_by_the_parent(authority):
    reply = ask(authority, "sub.example.", "DS")
    assert reply.flags & dns.flags.AA and not reply.answer
    assert reply.authority[0].rdtype == dns.rdatatype.SOA


def test_mx_additional_addresses(authority):
    reply = ask(authority, "example.", "MX")
    assert {(r.name, r.rdtype) for r in reply.additional} == {
        (n("mail.example."), dns.rdatatype.A),
        (n("mail.example."), dns.rdatatype.AAAA),
    }


def test_any_gets_one_rrset(authority):
    reply = ask(authority, "example.", "ANY")
    assert len(reply.answer) == 1


def test_refused_outside_our_zones(authority):
    reply = ask(authority, "example.com.", "A")
    assert reply.rcode() == dns.rcode.REFUSED and not reply.flags & dns.flags.AA


def test_deepest_zone_wins():
    parent = Zone.from_text(
        "@ 60 SOA ns h 1 1 1 1 1\n@ 60 NS ns\nns 60 A 192.0.2.1\nchild 60 NS ns\n", "test."
    )
    child = Zone.from_text(
        "@ 60 SOA ns h 1 1 1 1 1\n@ 60 NS ns\nns 60 A 192.0.2.2\nwww 60 A 192.0.2.3\n",
        "child.test.",
    )
    authority = Authority([parent, child])
    reply = ask(authority, "www.child.test.", "A")
    assert reply.flags & dns.flags.AA and reply.answer[0][0].address == "192.0.2.3"

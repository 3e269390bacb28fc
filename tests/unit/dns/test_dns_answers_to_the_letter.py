"""Authoritative answers to the letter (issue 11 item 13): DNAME, ANY, DS at a
cut, CNAMEs into another zone, DO, NSID, EDE, CHAOS, QTYPE 0, class ANY, case."""

from __future__ import annotations

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import pytest

from mailstack.dns.authority import Authority
from mailstack.dns.proto import QueryHandler
from mailstack.dns.zone import Zone

PARENT = """$ORIGIN example.
$TTL 3600
@ SOA ns1 hostmaster 1 7200 900 1209600 300
@ NS ns1
@ A 192.0.2.1
@ MX 10 MaIl.Example.
ns1 A 192.0.2.53
web A 192.0.2.80
MaIl A 192.0.2.25
dn DNAME other.test.
dnl DNAME target.example.
host.target A 192.0.2.111
toother CNAME host.other.test.
sub NS ns.sub
sub DS 12345 8 2 49FD46E6C4B45C55D4AC69CBD3CD34AC1AFE51DE60F9AA7C3C6DAB3D0C6BA2A6
ns.sub A 192.0.2.200
"""
CHILD = """$ORIGIN sub.example.
$TTL 600
@ SOA ns hostmaster 3 3600 600 86400 120
@ NS ns
ns A 192.0.2.200
"""
OTHER = """$ORIGIN other.test.
$TTL 1800
@ SOA ns admin 7 3600 600 86400 60
@ NS ns
ns A 192.0.2.54
host A 192.0.2.55
"""


@pytest.fixture
def handler() -> QueryHandler:
    zones = [Zone.from_text(text) for text in (PARENT, CHILD, OTHER)]
    return QueryHandler(Authority(zones), nsid=b"ns.test", identity="ns.test", version="9.9")


def ask(
    handler: QueryHandler, name: str, rdtype: str | int, rdclass: str = "IN", **edns: object
) -> dns.message.Message:
    query = dns.message.make_query(
        name,
        dns.rdatatype.RdataType.make(rdtype),
        dns.rdataclass.RdataClass.make(rdclass),
        use_edns=0,
        **edns,  # type: ignore[arg-type]
    )
    reply = handler.handle(query.to_wire(), "192.0.2.9")
    assert isinstance(reply, bytes)
    return dns.message.from_wire(reply)


def lines(section: list) -> list[str]:
    return [line for rrset in section for line in rrset.to_text().splitlines()]


def test_dname_substitutes_and_synthesises_a_cname(handler):
    reply = ask(handler, "www.dn.example.", "A")
    assert reply.rcode() == dns.rcode.NOERROR and reply.flags & dns.flags.AA
    assert lines(reply.answer) == [
        "dn.example. 3600 IN DNAME other.test.",
        "www.dn.example. 3600 IN CNAME www.other.test.",
    ]


def test_dname_inside_the_zone_is_followed(handler):
    reply = ask(handler, "host.dnl.example.", "A")
    assert lines(reply.answer)[-1] == "host.target.example. 3600 IN A 192.0.2.111"
    nx = ask(handler, "nx.dnl.example.", "A")
    assert nx.rcode() == dns.rcode.NXDOMAIN and len(nx.answer) == 2


def test_dname_owner_answers_for_itself(handler):
    assert lines(ask(handler, "dn.example.", "DNAME").answer) == [
        "dn.example. 3600 IN DNAME other.test."
    ]
    assert ask(handler, "dn.example.", "A").authority[0].rdtype == dns.rdatatype.SOA


def test_dname_making_a_name_too_long_is_yxdomain(handler):
    # 255 octets under dnl.example.; under target.example. it would be 258.
    long_name = ".".join(["a" * 63] * 3 + ["b" * 49]) + ".dnl.example."
    assert len(dns.name.from_text(long_name).to_wire()) == 255
    reply = ask(handler, long_name, "A")
    assert reply.rcode() == dns.rcode.YXDOMAIN


def test_cname_into_another_zone_we_serve_is_not_chased(handler):
    assert lines(ask(handler, "toother.example.", "A").answer) == [
        "toother.example. 3600 IN CNAME host.other.test."
    ]


def test_any_answers_the_lowest_type(handler):
    assert lines(ask(handler, "example.", "ANY").answer) == ["example. 3600 IN A 192.0.2.1"]
    assert ask(handler, "sub.example.", "ANY").answer[0].rdtype == dns.rdatatype.NS


def test_ds_at_a_cut_comes_from_the_parent_we_also_serve(handler):
    reply = ask(handler, "sub.example.", "DS")
    assert reply.answer[0].rdtype == dns.rdatatype.DS and reply.flags & dns.flags.AA


def test_names_in_rdata_keep_their_case(handler):
    # Asked in the zone's case, compression cannot borrow another spelling.
    mx = ask(handler, "Example.", "MX")
    assert lines(mx.answer) == ["Example. 3600 IN MX 10 MaIl.Example."]


def test_do_bit_is_copied(handler):
    assert ask(handler, "example.", "A", want_dnssec=True).ednsflags & dns.flags.DO
    assert not ask(handler, "example.", "A").ednsflags & dns.flags.DO
    refused = ask(handler, "nowhere.test.", "A", want_dnssec=True)
    assert refused.ednsflags & dns.flags.DO


def test_nsid_only_to_who_asks(handler):
    option = dns.edns.GenericOption(dns.edns.NSID, b"")
    reply = ask(handler, "example.", "A", options=[option])
    assert [(o.otype, o.to_wire()) for o in reply.options] == [(dns.edns.NSID, b"ns.test")]
    assert ask(handler, "example.", "A").options == ()


def test_refused_outside_our_zones_says_not_authoritative(handler):
    reply = ask(handler, "nowhere.test.", "A")
    assert reply.rcode() == dns.rcode.REFUSED
    assert [o.code for o in reply.options] == [dns.edns.EDECode.NOT_AUTHORITATIVE]


def test_chaos_identity_and_version(handler):
    assert lines(ask(handler, "version.bind.", "TXT", "CH").answer) == [
        'version.bind. 0 CH TXT "9.9"'
    ]
    assert lines(ask(handler, "id.server.", "TXT", "CH").answer) == [
        'id.server. 0 CH TXT "ns.test"'
    ]
    assert ask(handler, "version.bind.", "A", "CH").rcode() == dns.rcode.REFUSED
    assert ask(handler, "authors.bind.", "TXT", "CH").rcode() == dns.rcode.REFUSED


def test_chaos_is_refused_by_default():
    plain = QueryHandler(Authority([Zone.from_text(PARENT)]))
    for name in ("version.bind.", "id.server.", "hostname.bind.", "version.server."):
        assert ask(plain, name, "TXT", "CH").rcode() == dns.rcode.REFUSED


def test_qtype_zero_is_notimp(handler):
    assert ask(handler, "example.", 0).rcode() == dns.rcode.NOTIMP


def test_class_any_is_answered_from_class_in(handler):
    reply = ask(handler, "example.", "SOA", "ANY")
    assert reply.rcode() == dns.rcode.NOERROR and reply.answer[0].rdclass == dns.rdataclass.IN


def test_meta_types_in_our_zones_are_nodata(handler):
    for rdtype in ("MAILA", "MAILB", "TKEY"):
        reply = ask(handler, "example.", rdtype)
        assert reply.rcode() == dns.rcode.NOERROR and not reply.answer
        assert reply.authority[0].rdtype == dns.rdatatype.SOA


def test_formerr_echoes_a_readable_question(handler):
    query = dns.message.make_query("example.", "A")
    reply = handler.handle(query.to_wire() + b"junk", "192.0.2.9")
    assert isinstance(reply, bytes)
    parsed = dns.message.from_wire(reply)
    assert parsed.rcode() == dns.rcode.FORMERR
    assert parsed.question[0].name == dns.name.from_text("example.")

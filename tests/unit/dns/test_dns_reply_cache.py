"""The server's reply cache: keyed on the normalised question, bounded in
octets; questions a resolver must never send upstream (RFC 6895 §3.1)."""

from __future__ import annotations

import random

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from mailstack.dns.authority import Authority
from mailstack.dns.cache import ReplyCache
from mailstack.dns.proto import QueryHandler, Recurse, question_key
from mailstack.dns.zone import Zone


def random_case(name: str, rng: random.Random) -> str:
    return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in name)


def random_option(rng: random.Random) -> dns.edns.GenericOption:
    return dns.edns.GenericOption(rng.randrange(65001, 65534), rng.randbytes(8))


def test_random_case_and_edns_options_make_no_new_entries(authority):
    handler = QueryHandler(authority)
    rng = random.Random(7)
    for _ in range(200):
        name = random_case("web.example.", rng)
        query = dns.message.make_query(name, "A", use_edns=0, options=[random_option(rng)])
        reply = dns.message.from_wire(handler.handle(query.to_wire(), "192.0.2.1"))
        # 0x20: the question comes back exactly as asked.
        assert reply.question[0].name.to_text() == name
        assert reply.id == query.id and reply.answer[0][0].address == "192.0.2.80"
    assert len(handler.replies) == 1


def test_what_the_reply_depends_on_is_in_the_key():
    key = lambda query, tcp=False: question_key(query.to_wire(), tcp=tcp)[0]  # noqa: E731
    plain = dns.message.make_query("a.example.", "A")
    assert key(plain) == key(dns.message.make_query("A.EXAMPLE.", "A"))
    assert key(plain) != key(plain, tcp=True)
    assert key(plain) != key(dns.message.make_query("a.example.", "AAAA"))
    assert key(plain) != key(dns.message.make_query("a.example.", "A", use_edns=0))
    small = dns.message.make_query("a.example.", "A", use_edns=0, payload=600)
    assert key(small) != key(dns.message.make_query("a.example.", "A", use_edns=0))
    padded = dns.message.make_query("a.example.", "A", use_edns=0, pad=128)
    assert key(padded) != key(dns.message.make_query("a.example.", "A", use_edns=0))
    dnssec = dns.message.make_query("a.example.", "A", want_dnssec=True)
    assert key(dnssec) != key(dns.message.make_query("a.example.", "A", use_edns=0))
    no_rd = dns.message.make_query("a.example.", "A")
    no_rd.flags &= ~dns.flags.RD
    assert key(no_rd) != key(plain)
    # The type's octets are not lower-cased: TYPE 65 is not TYPE 97.
    assert key(dns.message.make_query("a.example.", 65)) != key(
        dns.message.make_query("a.example.", 97)
    )


def test_unusual_queries_have_no_key():
    signed = dns.message.make_query("a.example.", "A")
    signed.use_tsig({dns.name.from_text("k."): b"secret-secret-secret"}, dns.name.from_text("k."))
    assert question_key(signed.to_wire(), tcp=False) is None
    wire = dns.message.make_query("a.example.", "A").to_wire()
    assert question_key(wire + b"\x00", tcp=False) is None
    assert question_key(wire[:-1], tcp=False) is None
    badvers = dns.message.make_query("a.example.", "A", use_edns=1)
    assert question_key(badvers.to_wire(), tcp=False) is None


def test_a_padded_query_gets_a_padded_reply_from_the_cache_too(authority):
    handler = QueryHandler(authority)
    for _ in range(2):
        query = dns.message.make_query("web.example.", "A", use_edns=0, pad=128)
        reply = handler.handle(query.to_wire(), "192.0.2.1")
        assert len(reply) % 468 == 0  # RFC 8467 §4.1: the server pads to 468
    plain = dns.message.make_query("web.example.", "A", use_edns=0)
    assert len(handler.handle(plain.to_wire(), "192.0.2.1")) < 468


def test_the_reply_cache_is_bounded_in_octets():
    big = "\n".join(f'@ 60 TXT "{"x" * 250}" "{n}"' for n in range(200))
    text = "@ 60 SOA ns h 1 1 1 1 1\n@ 60 NS ns\nns 60 A 192.0.2.1\n" + big.replace(
        "@ 60 TXT", "* 60 TXT"
    )
    authority = Authority([Zone.from_text(text, "big.test.")])
    handler = QueryHandler(authority, reply_cache_bytes=1_000_000)
    for i in range(100):
        query = dns.message.make_query(f"n{i}.big.test.", "TXT")
        reply = handler.handle(query.to_wire(), "192.0.2.1", tcp=True)
        assert len(reply) > 50_000
    assert handler.replies.size <= 1_000_000
    assert 10 <= len(handler.replies) <= 20


def test_reply_cache_evicts_least_recently_used_and_refuses_oversized():
    cache: ReplyCache[bytes] = ReplyCache(2_500)
    for name in (b"a", b"b", b"c"):
        cache.put(name, b"x" * 500, 500)
    assert cache.get(b"a") is not None  # a is now the most recent
    cache.put(b"d", b"x" * 500, 500)
    assert cache.get(b"b") is None and cache.get(b"a") is not None
    cache.put(b"huge", b"x" * 5_000, 5_000)
    assert cache.get(b"huge") is None and cache.size <= 2_500


@pytest.mark.parametrize(
    ("rdtype", "rcode"),
    [
        (dns.rdatatype.OPT, dns.rcode.FORMERR),
        (dns.rdatatype.TSIG, dns.rcode.FORMERR),
        (dns.rdatatype.TKEY, dns.rcode.FORMERR),
        (128, dns.rcode.FORMERR),
        (248, dns.rcode.FORMERR),
        (dns.rdatatype.MAILA, dns.rcode.NOTIMP),
        (dns.rdatatype.MAILB, dns.rcode.NOTIMP),
    ],
)
def test_meta_types_are_answered_at_once_never_recursed(authority, rdtype, rcode):
    handler = QueryHandler(authority, may_recurse=lambda client: True)
    query = dns.message.make_query("gaia.cs.umass.edu.", rdtype)
    reply = handler.handle(query.to_wire(), "127.0.0.1")
    assert isinstance(reply, bytes)
    assert dns.message.from_wire(reply).rcode() == rcode
    ordinary = dns.message.make_query("gaia.cs.umass.edu.", "TXT")
    assert isinstance(handler.handle(ordinary.to_wire(), "127.0.0.1"), Recurse)


def test_a_recursive_reply_replays_under_the_normalised_question(authority):
    handler = QueryHandler(authority, may_recurse=lambda client: True)
    query = dns.message.make_query("gaia.cs.umass.edu.", "A")
    event = handler.handle(query.to_wire(), "127.0.0.1", now=10.0)
    response = dns.message.make_response(query)
    response.answer = [dns.rrset.from_text("gaia.cs.umass.edu.", 60, "IN", "A", "128.119.245.12")]
    handler.remember_recursive(event.cache_key, response.to_wire(), 10.0)
    again = dns.message.make_query("GAIA.cs.UMASS.edu.", "A")
    reply = dns.message.from_wire(handler.handle(again.to_wire(), "127.0.0.1", now=20.0))
    assert reply.question[0].name.to_text() == "GAIA.cs.UMASS.edu."
    assert reply.id == again.id and reply.answer[0].ttl == 50

"""The iterative resolution state machine, fed made-up replies (no sockets)."""

from __future__ import annotations

import random

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

from mailstack.dns.cache import Cache, Trust
from mailstack.dns.resolution import Ask, Done, Resolution

ROOT = [(dns.name.from_text("a.root."), "127.0.0.1")]


def n(text: str) -> dns.name.Name:
    return dns.name.from_text(text)


def rrset(name: str, rdtype: str, *values: str, ttl: int = 300) -> dns.rrset.RRset:
    return dns.rrset.from_text(name, ttl, "IN", rdtype, *values)


def reply_to(ask: Ask, *, answer=(), authority=(), additional=(), aa=False, rcode=0):
    query = dns.message.make_query(ask.qname, ask.qtype)
    response = dns.message.make_response(query)
    response.answer = list(answer)
    response.authority = list(authority)
    response.additional = list(additional)
    if aa:
        response.flags |= dns.flags.AA
    response.set_rcode(rcode)
    return response


def start(qname="www.example.com.", qtype="A", cache=None, **options) -> Resolution:
    return Resolution(
        n(qname),
        dns.rdatatype.from_text(qtype),
        cache if cache is not None else Cache(),
        ROOT,
        0.0,
        rng=random.Random(1),
        **options,
    )


def referral_to_com(ask: Ask, glue: str = "127.0.0.2", extra=()):
    return reply_to(
        ask,
        authority=[rrset("com.", "NS", "ns.com.")],
        additional=[rrset("ns.com.", "A", glue), *extra],
    )


def test_follows_referrals_and_minimises():
    resolution = start()
    ask = resolution.next()
    assert isinstance(ask, Ask) and ask.address == "127.0.0.1"
    assert ask.qname == n("com.") and ask.qtype == dns.rdatatype.A
    resolution.on_response(ask, referral_to_com(ask), 0.0)
    ask = resolution.next()
    assert ask.address == "127.0.0.2" and ask.qname == n("example.com.")
    resolution.on_response(
        ask,
        reply_to(
            ask,
            authority=[rrset("example.com.", "NS", "ns.example.com.")],
            additional=[rrset("ns.example.com.", "A", "127.0.0.3")],
        ),
        0.0,
    )
    ask = resolution.next()
    assert ask.address == "127.0.0.3" and ask.qname == n("www.example.com.")
    resolution.on_response(
        ask, reply_to(ask, answer=[rrset("www.example.com.", "A", "192.0.2.1")], aa=True), 0.0
    )
    done = resolution.next()
    assert isinstance(done, Done) and done.result.answer[0][0].address == "192.0.2.1"


def test_out_of_bailiwick_glue_is_discarded():
    cache = Cache()
    resolution = start(cache=cache)
    ask = resolution.next()
    # The root may give glue for anything; ask a .com server and it may not.
    resolution.on_response(ask, referral_to_com(ask), 0.0)
    ask = resolution.next()
    poison = rrset("www.victim.org.", "A", "6.6.6.6")
    resolution.on_response(
        ask,
        reply_to(
            ask,
            authority=[rrset("example.com.", "NS", "ns.example.com.")],
            additional=[rrset("ns.example.com.", "A", "127.0.0.3"), poison],
        ),
        0.0,
    )
    assert cache.get(n("www.victim.org."), dns.rdatatype.A, 0.0) is None
    assert cache.get(n("ns.example.com."), dns.rdatatype.A, 0.0) is not None


def test_out_of_bailiwick_answer_is_discarded():
    cache = Cache()
    resolution = start(cache=cache, qname_minimisation=False)
    ask = resolution.next()
    resolution.on_response(ask, referral_to_com(ask), 0.0)
    ask = resolution.next()
    resolution.on_response(
        ask,
        reply_to(
            ask,
            answer=[
                rrset("www.example.com.", "CNAME", "www.victim.org."),
                rrset("www.victim.org.", "A", "6.6.6.6"),
            ],
            aa=True,
        ),
        0.0,
    )
    assert cache.get(n("www.victim.org."), dns.rdatatype.A, 0.0) is None
    ask = resolution.next()
    assert isinstance(ask, Ask) and ask.qname in (n("org."), n("www.victim.org."))


def test_reply_to_another_question_is_ignored():
    resolution = start(qname_minimisation=False)
    ask = resolution.next()
    wrong = Ask(ask.address, ask.server_name, n("other.com."), ask.qtype, ask.zone)
    resolution.on_response(ask, reply_to(wrong, answer=[rrset("other.com.", "A", "1.2.3.4")]), 0.0)
    assert isinstance(resolution.next(), Done)  # the only server is used up
    assert resolution.next().result.rcode == dns.rcode.SERVFAIL


def test_failure_moves_to_the_next_server():
    servers = [(n("a.root."), "127.0.0.1"), (n("b.root."), "127.0.0.9")]
    resolution = Resolution(
        n("com."), dns.rdatatype.NS, Cache(), servers, 0.0, rng=random.Random(2)
    )
    first = resolution.next()
    resolution.on_failure(first, "timeout", 0.0)
    second = resolution.next()
    assert isinstance(second, Ask) and second.address != first.address


def test_cname_loop_is_stopped():
    cache = Cache()
    cache.put(rrset("a.example.", "CNAME", "b.example."), 0.0)
    cache.put(rrset("b.example.", "CNAME", "a.example."), 0.0)
    resolution = start("a.example.", cache=cache)
    done = resolution.next()
    assert isinstance(done, Done) and done.result.rcode == dns.rcode.SERVFAIL


def test_query_budget_bounds_the_work():
    resolution = start(qname_minimisation=False)
    asks = 0
    while isinstance(step := resolution.next(), Ask):
        asks += 1
        # A malicious server that refers to itself under a new name forever.
        child = f"l{asks}." + step.zone.to_text() if step.zone != dns.name.root else "com."
        resolution.on_response(
            step, reply_to(step, authority=[rrset(child, "NS", "ns." + child)]), 0.0
        )
    assert asks <= 60 and step.result.rcode == dns.rcode.SERVFAIL


def test_nxdomain_negative_cached_with_soa_minimum():
    cache = Cache()
    resolution = start("nope.com.", cache=cache)
    ask = resolution.next()
    resolution.on_response(ask, referral_to_com(ask), 0.0)
    ask = resolution.next()
    soa = rrset("com.", "SOA", "ns.com. h.com. 1 2 3 4 60", ttl=900)
    resolution.on_response(
        ask, reply_to(ask, authority=[soa], aa=True, rcode=dns.rcode.NXDOMAIN), 0.0
    )
    assert resolution.next().result.rcode == dns.rcode.NXDOMAIN
    assert cache.get_negative(n("nope.com."), dns.rdatatype.MX, 59.0) is not None
    assert cache.get_negative(n("nope.com."), dns.rdatatype.MX, 61.0) is None


def test_cache_ttls_count_down_and_trust_is_respected():
    cache = Cache()
    cache.put(rrset("ns.com.", "A", "192.0.2.1", ttl=100), 0.0, Trust.ANSWER)
    cache.put(rrset("ns.com.", "A", "6.6.6.6", ttl=100), 1.0, Trust.GLUE)
    got = cache.get(n("ns.com."), dns.rdatatype.A, 40.0)
    assert got[0].address == "192.0.2.1" and got.ttl == 60
    assert cache.get(n("ns.com."), dns.rdatatype.A, 100.0) is None


def test_cache_is_bounded():
    cache = Cache(max_entries=10)
    for i in range(50):
        cache.put(rrset(f"h{i}.example.", "A", "192.0.2.1"), 0.0)
    assert len(cache) == 10
    assert cache.get(n("h49.example."), dns.rdatatype.A, 0.0) is not None


def test_forwarding_asks_with_rd_and_accepts_the_answer():
    resolution = start(forwarders=["127.0.0.5"])
    ask = resolution.next()
    assert ask.address == "127.0.0.5" and ask.recursion_desired
    assert ask.qname == n("www.example.com.")
    assert ask.message().flags & dns.flags.RD
    resolution.on_response(
        ask, reply_to(ask, answer=[rrset("www.example.com.", "A", "192.0.2.7")]), 0.0
    )
    assert resolution.next().result.answer[0][0].address == "192.0.2.7"

"""RFC 9520 in the resolution state machine and the cache: failed questions
and unresponsive servers held down, with backoff; the cache's octet bound."""

from __future__ import annotations

import random

import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

from mailstack.dns.cache import MAX_FAILURE_TTL, Cache
from mailstack.dns.resolution import Ask, Done, Resolution, not_resolvable

FORWARDERS = ["127.0.0.5", "127.0.0.6"]


def n(text: str) -> dns.name.Name:
    return dns.name.from_text(text)


def resolve(cache: Cache, now: float, qname: str = "dead.test.", forwarders=FORWARDERS):
    return Resolution(
        n(qname),
        dns.rdatatype.TXT,
        cache,
        [],
        now,
        forwarders=list(forwarders),
        rng=random.Random(1),
    )


def fail_all(resolution: Resolution, now: float) -> list[str]:
    """Fail every server asked; the addresses asked, in order."""
    asked = []
    while isinstance(step := resolution.next(now), Ask):
        asked.append(step.address)
        resolution.on_failure(step, "timeout", now)
    assert step.result.rcode == dns.rcode.SERVFAIL
    return asked


def test_a_failed_question_is_answered_from_the_cache_with_backoff():
    cache = Cache(failure_ttl=5.0)
    assert fail_all(resolve(cache, 0.0), 0.0) == FORWARDERS
    # Within five seconds: SERVFAIL at once, nobody asked.
    again = resolve(cache, 3.0).next(3.0)
    assert isinstance(again, Done) and again.result.rcode == dns.rcode.SERVFAIL
    # Later, the servers are tried again; failing again doubles the hold-down.
    assert fail_all(resolve(cache, 6.0), 6.0) == FORWARDERS
    assert isinstance(resolve(cache, 15.0).next(15.0), Done)
    assert isinstance(resolve(cache, 16.5).next(16.5), Ask)


def test_an_unresponsive_server_is_skipped_for_other_questions():
    cache = Cache()
    first = resolve(cache, 0.0, "a.test.")
    ask = first.next(0.0)
    assert ask.address == "127.0.0.5"
    first.on_failure(ask, "refused (ICMP port unreachable)", 0.0)
    assert first.next(0.0).address == "127.0.0.6"
    other = resolve(cache, 1.0, "b.test.")
    assert other.next(1.0).address == "127.0.0.6"
    # An answer from the server ends its hold-down.
    cache.server_answered("127.0.0.5")
    assert resolve(cache, 2.0, "c.test.").next(2.0).address == "127.0.0.5"


def test_an_answer_clears_the_failure():
    cache = Cache()
    cache.put_failure(n("x.test."), dns.rdatatype.A, 0.0)
    assert cache.failed(n("x.test."), dns.rdatatype.A, 1.0)
    cache.put(dns.rrset.from_text("x.test.", 60, "IN", "A", "192.0.2.1"), 2.0)
    assert not cache.failed(n("x.test."), dns.rdatatype.A, 2.0)


def test_failure_durations_stay_within_rfc_9520():
    cache = Cache(failure_ttl=0.1, failure_max_ttl=10_000.0)
    assert cache.failure_ttl == 1.0 and cache.failure_max_ttl == MAX_FAILURE_TTL
    now = 0.0
    for _ in range(20):
        cache.put_failure(n("x.test."), dns.rdatatype.A, now)
        entry = cache._failures[(n("x.test."), dns.rdatatype.A)]
        now = entry.expires + 0.5
    assert entry.duration == MAX_FAILURE_TTL


def test_the_cache_is_bounded_in_octets():
    cache = Cache(max_bytes=200_000)
    strings = " ".join(f'"{"x" * 250}"' for _ in range(40))
    for i in range(100):
        cache.put(dns.rrset.from_text(f"h{i}.test.", 60, "IN", "TXT", strings), 0.0)
    assert cache.size <= 200_000
    assert 10 <= len(cache) <= 20
    assert cache.get(n("h99.test."), dns.rdatatype.TXT, 1.0) is not None
    assert cache.get(n("h0.test."), dns.rdatatype.TXT, 1.0) is None


def test_meta_types_are_not_resolvable():
    assert not_resolvable(dns.rdatatype.OPT) == dns.rcode.FORMERR
    assert not_resolvable(dns.rdatatype.MAILB) == dns.rcode.NOTIMP
    assert not_resolvable(dns.rdatatype.A) is None
    assert not_resolvable(dns.rdatatype.ANY) is None

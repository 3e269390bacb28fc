"""Response rate limiting: accounts per client network and per response,
slip (TC=1) and leak, as BIND and Knot do it."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.rcode
import dns.rrset

from mailstack.dns.proto import ResponseRateLimiter, response_account, truncated


def answer(name: str = "www.example.", rdtype: str = "A", value: str = "192.0.2.1") -> bytes:
    query = dns.message.make_query(name, rdtype)
    response = dns.message.make_response(query)
    response.answer = [dns.rrset.from_text(name, 60, "IN", rdtype, value)]
    return response.to_wire()


def nxdomain(name: str, zone: str = "example.") -> bytes:
    query = dns.message.make_query(name, "A")
    response = dns.message.make_response(query)
    response.set_rcode(dns.rcode.NXDOMAIN)
    response.authority = [dns.rrset.from_text(zone, 60, "IN", "SOA", "ns. h. 1 1 1 1 60")]
    return response.to_wire()


def outcomes(limiter: ResponseRateLimiter, client: str, reply: bytes, n: int, now: float):
    sent = [limiter.check(client, reply, now) for _ in range(n)]
    return ["drop" if out is None else "tc" if out != reply else "full" for out in sent]


def test_a_response_past_its_rate_slips_every_second_one():
    limiter = ResponseRateLimiter(3, slip=2)
    got = outcomes(limiter, "192.0.2.7", answer(), 7, 10.0)
    assert got == ["full", "full", "full", "drop", "tc", "drop", "tc"]


def test_the_truncated_reply_keeps_the_question_and_sets_tc():
    reply = answer()
    slipped = dns.message.from_wire(truncated(reply))
    assert slipped.flags & dns.flags.TC and slipped.flags & dns.flags.QR
    assert slipped.question[0].name.to_text() == "www.example." and not slipped.answer
    assert slipped.id == dns.message.from_wire(reply).id


def test_leak_sends_every_nth_limited_reply_whole():
    limiter = ResponseRateLimiter(1, slip=0, leak=3)
    assert outcomes(limiter, "192.0.2.7", answer(), 7, 10.0) == [
        "full",
        "drop",
        "drop",
        "full",
        "drop",
        "drop",
        "full",
    ]


def test_accounts_are_per_network_prefix():
    limiter = ResponseRateLimiter(2, slip=0, ipv4_prefix=24, ipv6_prefix=56)
    reply = answer()
    assert outcomes(limiter, "192.0.2.7", reply, 2, 1.0) == ["full", "full"]
    # Another address of the same /24 shares the account; another /24 does not.
    assert limiter.check("192.0.2.200", reply, 1.0) is None
    assert limiter.check("192.0.3.7", reply, 1.0) == reply
    assert outcomes(limiter, "2001:db8:0:aa::1", reply, 2, 1.0) == ["full", "full"]
    assert limiter.check("2001:db8:0:ab::9", reply, 1.0) is None  # same /56
    assert limiter.check("2001:db8:0:100::1", reply, 1.0) == reply


def test_accounts_are_per_response():
    limiter = ResponseRateLimiter(1, slip=0)
    client = "198.51.100.1"
    assert limiter.check(client, answer("www.example."), 1.0) is not None
    assert limiter.check(client, answer("www.example."), 1.0) is None
    assert limiter.check(client, answer("mail.example."), 1.0) is not None
    assert limiter.check(client, answer("www.example.", "TXT", '"x"'), 1.0) is not None
    # Name case does not make a new account.
    assert limiter.check(client, answer("WWW.Example."), 1.0) is None


def test_nxdomain_is_counted_per_zone_so_random_names_share_one_account():
    assert response_account(nxdomain("a1.example.")) == response_account(nxdomain("zz.example."))
    limiter = ResponseRateLimiter(5, slip=0)
    sent = [limiter.check("203.0.113.9", nxdomain(f"r{i}.example."), 1.0) for i in range(50)]
    assert sum(out is not None for out in sent) == 5


def test_the_rate_refills_with_time_up_to_one_second():
    limiter = ResponseRateLimiter(10, slip=0)
    reply = answer()
    assert outcomes(limiter, "192.0.2.1", reply, 12, 0.0).count("full") == 10
    assert outcomes(limiter, "192.0.2.1", reply, 12, 0.5).count("full") == 5
    # A long pause earns one second's worth, not more.
    assert outcomes(limiter, "192.0.2.1", reply, 30, 100.0).count("full") == 10


def test_all_rate_bounds_every_kind_of_reply_to_a_network():
    limiter = ResponseRateLimiter(0, all_rate=3, slip=0)
    sent = [limiter.check("192.0.2.1", answer(f"h{i}.example."), 1.0) for i in range(10)]
    assert sum(out is not None for out in sent) == 3


def test_zero_switches_the_limit_off_and_the_table_is_bounded():
    off = ResponseRateLimiter(0)
    assert all(off.check("192.0.2.1", answer(), 1.0) is not None for _ in range(1000))
    limiter = ResponseRateLimiter(1, table=100)
    for i in range(1000):
        limiter.check(f"10.{i // 250}.{i % 250}.1", answer(), 1.0)
    assert len(limiter._accounts) <= 100


def test_garbage_replies_count_as_errors():
    assert response_account(b"\x00" * 5) == b"E"
    assert response_account(answer()[:20]) == b"E"

"""Properties of the answer logic and the resolution machine over random data."""

from __future__ import annotations

import random

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
from hypothesis import given, settings
from hypothesis import strategies as st

from mailstack.dns.authority import Authority
from mailstack.dns.cache import Cache
from mailstack.dns.resolution import Ask, Done, Resolution
from mailstack.dns.zone import Zone

ORIGIN = dns.name.from_text("prop.test.")
labels = st.sampled_from(["a", "b", "c", "www", "mail"])
relative_names = st.lists(labels, min_size=1, max_size=3).map(".".join)


def build(owners: list[str]) -> Zone:
    text = "@ 60 SOA ns h 1 1 1 1 30\n@ 60 NS ns\nns 60 A 192.0.2.1\n"
    text += "".join(f"{owner} 60 A 192.0.2.2\n" for owner in owners)
    return Zone.from_text(text, ORIGIN)


@settings(max_examples=200)
@given(st.lists(relative_names, max_size=8), relative_names, st.sampled_from(["A", "MX"]))
def test_rcode_follows_existence(owners, asked, rdtype):
    zone = build(owners)
    qname = dns.name.from_text(asked, ORIGIN)
    reply = Authority([zone]).respond(dns.message.make_query(qname, rdtype))
    assert reply.flags & dns.flags.AA
    if qname in zone.existing:
        assert reply.rcode() == dns.rcode.NOERROR
        has_data = qname in zone.nodes and rdtype == "A"
        assert bool(reply.answer) == has_data
    else:
        assert reply.rcode() == dns.rcode.NXDOMAIN
    for rrset in reply.answer:
        assert rrset.name == qname
    if not reply.answer:
        assert reply.authority[0].rdtype == dns.rdatatype.SOA


names = st.sampled_from(["com.", "example.com.", "www.example.com.", "org.", "x.org.", "."])
rdtypes = st.sampled_from(["A", "NS", "CNAME", "SOA", "AAAA"])
values = {
    "A": "192.0.2.9",
    "AAAA": "2001:db8::9",
    "NS": "ns.example.com.",
    "CNAME": "www.example.com.",
    "SOA": "ns.com. h.com. 1 2 3 4 5",
}
records = st.lists(st.tuples(names, rdtypes), max_size=5)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(records, records, records, st.booleans(), st.sampled_from([0, 2, 3, 5])),
        max_size=70,
    )
)
def test_resolution_terminates_on_any_replies(script):
    """Whatever servers say, the machine ends within its budget, without an exception."""
    resolution = Resolution(
        dns.name.from_text("www.example.com."),
        dns.rdatatype.A,
        Cache(),
        [(dns.name.from_text("a.root."), "127.0.0.1")],
        0.0,
        rng=random.Random(0),
    )
    steps = 0
    for answer, authority, additional, aa, rcode in script:
        step = resolution.next()
        if isinstance(step, Done):
            break
        assert isinstance(step, Ask)
        steps += 1
        response = dns.message.make_response(step.message())
        for section, items in (
            (response.answer, answer),
            (response.authority, authority),
            (response.additional, additional),
        ):
            for owner, rdtype in items:
                section.append(dns.rrset.from_text(owner, 60, "IN", rdtype, values[rdtype]))
        if aa:
            response.flags |= dns.flags.AA
        response.set_rcode(dns.rcode.Rcode(rcode))
        resolution.on_response(step, response, 0.0)
    else:
        while isinstance(step := resolution.next(), Ask):
            steps += 1
            resolution.on_failure(step, "timeout", 0.0)
    assert steps <= 61

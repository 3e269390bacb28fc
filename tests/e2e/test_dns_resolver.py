"""The resolver against an in-process hierarchy: root, TLDs, authoritative servers.

Every server listens on its own 127.0.0.x address and the same port, so glue
addresses work as in the real tree with a test-chosen port.
"""

from __future__ import annotations

import asyncio

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import pytest

from mailstack.dns.resolution import Step
from mailstack.dns.resolver import Resolver, parse_root_hints
from mailstack.dns.server import DnsServer, serve_zones
from mailstack.dns.zone import Zone

ROOT = """
$TTL 86400
@ SOA a.root-servers.net. nstld.verisign-grs.com. 1 1800 900 604800 86400
@ NS a.root-servers.net.
a.root-servers.net. A 127.0.0.21
edu. NS a.edu-servers.net.
a.edu-servers.net. A 127.0.0.22
com. NS ns.com.
ns.com. A 127.0.0.23
"""
EDU = """
$TTL 172800
@ SOA a.edu-servers.net. hostmaster.edu. 1 1800 900 604800 3600
@ NS a.edu-servers.net.
umass NS dns.umass
dns.umass A 127.0.0.24
poly NS ns.example.com.
"""
COM = """
$TTL 172800
@ SOA ns.com. hostmaster.com. 1 1800 900 604800 3600
@ NS ns.com.
ns A 127.0.0.23
example NS ns.example
ns.example A 127.0.0.25
flaky NS ns1.flaky
flaky NS ns.example
ns1.flaky A 127.0.0.29
"""
UMASS = """
$TTL 300
@ SOA dns hostmaster 7 3600 600 86400 60
@ NS dns
@ MX 10 mail
@ MX 20 mail2.example.com.
dns A 127.0.0.24
mail A 192.0.2.25
gaia.cs A 128.119.245.12
www CNAME www.example.com.
web CNAME gaia.cs
evil A 192.0.2.66
"""
EXAMPLE_COM = """
$TTL 300
@ SOA ns hostmaster 1 3600 600 86400 60
@ NS ns
ns A 127.0.0.25
www A 192.0.2.80
mail2 A 192.0.2.26
big TXT "a" "b"
""" + "".join(f'huge TXT "{i:02d}{"x" * 200}"\n' for i in range(10))
FLAKY = """
$TTL 300
@ SOA ns.example.com. hostmaster 1 3600 600 86400 60
@ NS ns1
@ NS ns.example.com.
ns1 A 127.0.0.29
www A 192.0.2.77
"""
POLY = """
$TTL 300
@ SOA ns.example.com. hostmaster 1 3600 600 86400 60
@ NS ns.example.com.
dns A 192.0.2.53
"""

HINTS = """
.                  3600000  NS  a.root-servers.net.
a.root-servers.net. 3600000 A   127.0.0.21
"""


async def start_hierarchy() -> tuple[list[DnsServer], int]:
    layout = [
        ("127.0.0.21", [(ROOT, ".")]),
        ("127.0.0.22", [(EDU, "edu.")]),
        ("127.0.0.23", [(COM, "com.")]),
        ("127.0.0.24", [(UMASS, "umass.edu.")]),
        ("127.0.0.25", [(EXAMPLE_COM, "example.com."), (POLY, "poly.edu."), (FLAKY, "flaky.com.")]),
    ]
    for _attempt in range(5):
        servers: list[DnsServer] = []
        port = 0
        try:
            for host, zones in layout:
                built = [Zone.from_text(text, origin) for text, origin in zones]
                server = await serve_zones(built, host, port)
                port = server.bound[0][1]
                servers.append(server)
            return servers, port
        except OSError:
            for server in servers:
                await server.stop()
    raise RuntimeError("no common port free on the test addresses")


@pytest.fixture
async def hierarchy():
    servers, port = await start_hierarchy()
    yield port
    for server in servers:
        await server.stop()


def resolver_for(port: int, **options) -> Resolver:
    return Resolver(root_hints=parse_root_hints(HINTS), port=port, timeout=0.5, **options)


async def test_walks_from_the_root_to_the_authoritative_server(hierarchy):
    resolver = resolver_for(hierarchy)
    trace: list[Step] = []
    result = await resolver.resolve("gaia.cs.umass.edu.", "A", trace=trace)
    assert result.rcode == dns.rcode.NOERROR
    assert [r.address for r in result.answer[0]] == ["128.119.245.12"]
    asked = [step.address for step in trace if step.address]
    assert asked[0] == "127.0.0.21" and "127.0.0.22" in asked and asked[-1] == "127.0.0.24"
    assert any("referral to edu." in step.outcome for step in trace)


async def test_queries_leave_from_the_source_address_when_one_is_set():
    # The root's server sees the walk come from the source address; without
    # one, the system picks 127.0.0.1 for every loopback destination.
    servers, port = await start_hierarchy()
    seen: list[str] = []
    servers[0].on_exchange = lambda client, *_: seen.append(client)
    try:
        for source in ("127.0.0.26", None):
            resolver = resolver_for(port, source=source)
            result = await resolver.resolve("gaia.cs.umass.edu.", "A")
            assert result.rcode == dns.rcode.NOERROR
    finally:
        for server in servers:
            await server.stop()
    assert seen == ["127.0.0.26", "127.0.0.1"]


async def test_qname_minimisation_hides_the_full_name_from_the_root(hierarchy):
    resolver = resolver_for(hierarchy)
    trace: list[Step] = []
    await resolver.resolve("gaia.cs.umass.edu.", "A", trace=trace)
    root_questions = {step.qname for step in trace if step.address == "127.0.0.21"}
    assert root_questions == {dns.name.from_text("edu.")}


async def test_without_minimisation_the_full_name_is_sent(hierarchy):
    resolver = resolver_for(hierarchy, qname_minimisation=False)
    trace: list[Step] = []
    await resolver.resolve("gaia.cs.umass.edu.", "A", trace=trace)
    root_questions = {step.qname for step in trace if step.address == "127.0.0.21"}
    assert root_questions == {dns.name.from_text("gaia.cs.umass.edu.")}


async def test_second_lookup_under_a_tld_skips_the_root(hierarchy):
    resolver = resolver_for(hierarchy)
    await resolver.resolve("gaia.cs.umass.edu.", "A")
    trace: list[Step] = []
    result = await resolver.resolve("mail.umass.edu.", "A", trace=trace)
    assert result.rcode == dns.rcode.NOERROR
    asked = [step.address for step in trace if step.address and not step.from_cache]
    assert asked == ["127.0.0.24"]


async def test_cached_answer_needs_no_query(hierarchy):
    resolver = resolver_for(hierarchy)
    await resolver.resolve("gaia.cs.umass.edu.", "A")
    trace: list[Step] = []
    result = await resolver.resolve("gaia.cs.umass.edu.", "A", trace=trace)
    assert result.answer and all(step.from_cache for step in trace)


async def test_cname_chased_across_zones(hierarchy):
    resolver = resolver_for(hierarchy)
    result = await resolver.resolve("www.umass.edu.", "A")
    assert [r.rdtype for r in result.answer] == [dns.rdatatype.CNAME, dns.rdatatype.A]
    assert result.answer[-1][0].address == "192.0.2.80"


async def test_glueless_delegation_resolves_the_ns_name(hierarchy):
    resolver = resolver_for(hierarchy)
    result = await resolver.resolve("dns.poly.edu.", "A")
    assert result.rcode == dns.rcode.NOERROR
    assert result.answer[0][0].address == "192.0.2.53"


async def test_nxdomain_is_cached_negatively(hierarchy):
    resolver = resolver_for(hierarchy)
    result = await resolver.resolve("nope.umass.edu.", "A")
    assert result.rcode == dns.rcode.NXDOMAIN
    assert result.authority[0].rdtype == dns.rdatatype.SOA
    trace: list[Step] = []
    again = await resolver.resolve("nope.umass.edu.", "MX", trace=trace)
    assert again.rcode == dns.rcode.NXDOMAIN and all(s.from_cache for s in trace)


async def test_nodata(hierarchy):
    resolver = resolver_for(hierarchy)
    result = await resolver.resolve("gaia.cs.umass.edu.", "MX")
    assert result.rcode == dns.rcode.NOERROR and result.answer == []
    assert result.authority[0].rdtype == dns.rdatatype.SOA


async def test_mx_sorted_by_preference(hierarchy):
    resolver = resolver_for(hierarchy)
    hosts = await resolver.mx("umass.edu")
    assert hosts == [
        (10, dns.name.from_text("mail.umass.edu.")),
        (20, dns.name.from_text("mail2.example.com.")),
    ]
    assert await resolver.addresses("mail2.example.com") == ["192.0.2.26"]


async def test_unreachable_servers_give_servfail():
    resolver = Resolver(root_hints=parse_root_hints(HINTS), port=9, timeout=0.2)
    result = await resolver.resolve("gaia.cs.umass.edu.", "A")
    assert result.rcode == dns.rcode.SERVFAIL


async def test_forwarding_mode(hierarchy):
    upstream = resolver_for(hierarchy)
    from mailstack.dns.catalog import Catalog
    from mailstack.dns.proto import QueryHandler

    catalog = Catalog()
    server = DnsServer(
        catalog,
        QueryHandler(catalog.authority, may_recurse=lambda client: True),
        recursive=upstream.resolve_message,
    )
    await server.start("127.0.0.26", 0)
    try:
        forwarder = Resolver(forwarders=[server.bound[0]], timeout=1)
        result = await forwarder.resolve("www.umass.edu.", "A")
        assert result.answer[-1][0].address == "192.0.2.80"
        # Too big for UDP: retried over TCP to the forwarder's own port.
        huge = await forwarder.resolve("huge.example.com.", "TXT")
        assert huge.rcode == dns.rcode.NOERROR and len(huge.answer[0]) == 10
    finally:
        await server.stop()


async def test_concurrent_identical_questions_share_one_resolution(hierarchy):
    resolver = resolver_for(hierarchy)
    results = await asyncio.gather(*(resolver.resolve("gaia.cs.umass.edu.", "A") for _ in range(5)))
    assert all(r.answer[0][0].address == "128.119.245.12" for r in results)


async def test_truncated_reply_is_retried_over_tcp(hierarchy):
    resolver = resolver_for(hierarchy)
    result = await resolver.resolve("huge.example.com.", "TXT")
    assert result.rcode == dns.rcode.NOERROR
    assert len(result.answer[0]) == 10


async def test_dead_server_of_a_zone_is_skipped(hierarchy):
    for _ in range(3):  # whichever server the random order picks first
        resolver = resolver_for(hierarchy)
        trace: list[Step] = []
        result = await resolver.resolve("www.flaky.com.", "A", trace=trace)
        assert result.answer[0][0].address == "192.0.2.77"

"""Secondary zones on their SOA timers, and IXFR history across a restart
(RFC 1034 §4.3.5, RFC 1995, RFC 1996), driven by dnspython."""

from __future__ import annotations

import asyncio
import base64
import shutil
import time
from pathlib import Path

import dns.asyncquery
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import dns.tsigkeyring
import dns.update

from mailstack.dns.catalog import Acl, Catalog
from mailstack.dns.proto import QueryHandler
from mailstack.dns.server import DnsServer
from mailstack.dns.zone import Zone

from support import TestNode, open_fast_store

EXAMPLE = Path(__file__).parent.parent / "unit" / "dns" / "data" / "example.zone"
SECRET = base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
KEY = {"name": "update-key.", "secret": SECRET, "algorithm": "hmac-sha256"}

# REFRESH 1 s and RETRY 1 s, so a test sees several checks; EXPIRE an hour,
# which the test reaches by moving the secondary's clock.
PRIMARY_ZONE = """$ORIGIN timers.test.
$TTL 60
@   SOA ns hostmaster 1 1 1 3600 60
@   NS  ns
ns  A   192.0.2.53
www A   192.0.2.80
"""


async def start_primary(port: int = 0) -> DnsServer:
    catalog = Catalog(transfer_acl=Acl.of(["127.0.0.0/8"]))
    catalog.publish(Zone.from_text(PRIMARY_ZONE))
    handler = QueryHandler(catalog.authority, transfer_acl=catalog.transfer_acl)
    server = DnsServer(catalog, handler)
    await server.start("127.0.0.1", port)
    return server


async def rcode_of_www(port: int) -> int:
    query = dns.message.make_query("www.timers.test.", "A")
    reply = await dns.asyncquery.udp(query, "127.0.0.1", port=port, timeout=2)
    return reply.rcode()


async def wait_for_rcode(port: int, rcode: int, seconds: float = 10.0) -> int:
    deadline = time.monotonic() + seconds
    got = await rcode_of_www(port)
    while got != rcode and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        got = await rcode_of_www(port)
    return got


async def test_secondary_expires_without_refresh_and_recovers_on_retry(node_factory, tmp_path):
    primary = await start_primary()
    primary_port = primary.bound[0][1]
    try:
        secondary = await node_factory(
            listen=("dns",),
            dns={
                "zones_dir": str(tmp_path / "none"),
                "secondary": [
                    {"origin": "timers.test.", "primaries": [f"127.0.0.1:{primary_port}"]}
                ],
            },
        )
        port = secondary.port("dns")
        assert await wait_for_rcode(port, dns.rcode.NOERROR) == dns.rcode.NOERROR
        service = secondary.services["dns"]
        # The primary goes away: refreshes fail, every RETRY second.
        await primary.stop()
        # Before EXPIRE the copy is still served...
        await asyncio.sleep(2.5)
        assert await rcode_of_www(port) == dns.rcode.NOERROR
        # ...an hour later (the secondary's clock moved) it is SERVFAIL.
        service.clock = lambda: time.time() + 3600
        assert await wait_for_rcode(port, dns.rcode.SERVFAIL) == dns.rcode.SERVFAIL
        soa = dns.message.make_query("timers.test.", "SOA")
        reply = await dns.asyncquery.udp(soa, "127.0.0.1", port=port, timeout=2)
        assert reply.rcode() == dns.rcode.SERVFAIL and not reply.answer
        # The primary is back: the next try, RETRY seconds on, refreshes the zone.
        primary = await start_primary(primary_port)
        assert await wait_for_rcode(port, dns.rcode.NOERROR) == dns.rcode.NOERROR
    finally:
        await primary.stop()


async def test_ixfr_history_of_a_file_zone_survives_a_restart(node_factory, tmp_path):
    zones = tmp_path / "zones"
    zones.mkdir()
    shutil.copy(EXAMPLE, zones / "example.zone")
    node = await node_factory(
        listen=("dns",),
        dns={
            "zones_dir": str(zones),
            "key": [KEY],
            "allow_update": ["update-key."],
            "allow_transfer": ["127.0.0.0/8"],
        },
    )
    keyring = dns.tsigkeyring.from_text({"update-key.": SECRET})
    update = dns.update.UpdateMessage("example.", keyring=keyring)
    update.add("new.example.", 300, "A", "192.0.2.77")
    reply = await dns.asyncquery.tcp(update, "127.0.0.1", port=node.port("dns"), timeout=5)
    assert reply.rcode() == dns.rcode.NOERROR
    await node.stop()

    restarted = TestNode(node.config, store_factory=open_fast_store)
    await restarted.start()
    try:
        ixfr = dns.message.make_query("example.", "IXFR")
        ixfr.authority.append(
            dns.rrset.from_text("example.", 0, "IN", "SOA", ". . 2024010101 0 0 0 0")
        )
        reply = await dns.asyncquery.tcp(
            ixfr, "127.0.0.1", port=restarted.port("dns"), timeout=5, one_rr_per_rrset=True
        )
    finally:
        await restarted.stop()
    # RFC 1995 §4: the incremental form (new SOA, old SOA, deletions, new SOA,
    # additions, new SOA), not the whole zone.
    records = [(r.name.to_text(), r.rdtype) for r in reply.answer]
    serials = [r[0].serial for r in reply.answer if r.rdtype == dns.rdatatype.SOA]
    assert serials == [2024010102, 2024010101, 2024010102, 2024010102]
    assert ("new.example.", dns.rdatatype.A) in records
    assert len(records) == 5

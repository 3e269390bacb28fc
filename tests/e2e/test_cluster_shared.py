"""What two nodes on one PostgreSQL store share beyond mail: a managed
zone's change is announced to a secondary once (not once per node), and a
JMAP upload made through one node is usable through the other."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import dns.asyncquery
import dns.message
import dns.opcode
import dns.rdatatype
import pytest

from support import PostgresDatabase, TestNode, make_config

HOSTS = ("127.0.0.31", "127.0.0.32")


class NotifyCounter(asyncio.DatagramProtocol):
    """A secondary's UDP port that only counts the NOTIFYs it is sent
    (RFC 1996), answering each so that the primary does not send it again."""

    def __init__(self) -> None:
        self.serials: list[int] = []
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        query = dns.message.from_wire(data)
        if query.opcode() != dns.opcode.NOTIFY:
            return
        soa = [rrset for rrset in query.answer if rrset.rdtype == dns.rdatatype.SOA]
        self.serials.append(soa[0][0].serial if soa else 0)
        reply = dns.message.make_response(query)
        self.transport.sendto(reply.to_wire(), addr)


@pytest.fixture
async def secondary() -> AsyncIterator[tuple[NotifyCounter, int]]:
    loop = asyncio.get_running_loop()
    transport, counter = await loop.create_datagram_endpoint(
        NotifyCounter, local_addr=("127.0.0.1", 0)
    )
    try:
        yield counter, transport.get_extra_info("sockname")[1]
    finally:
        transport.close()


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    database = PostgresDatabase()
    url = await database.create()
    started: list[TestNode] = []

    async def start(listen: tuple[str, ...], **tables: Any) -> list[TestNode]:
        for n, host in enumerate(HOSTS):
            config = make_config(
                tmp_path / f"node{n}", listen, host=host,
                table={"store": {"backend": "postgresql", "url": url, "pool_size": 4}, **tables},
            )
            node = TestNode(config)
            await node.start()
            started.append(node)
        return started

    try:
        yield start
    finally:
        for node in started:
            await node.stop()
        await database.drop()


async def soa_serial(node: TestNode, origin: str) -> int:
    query = dns.message.make_query(origin, "SOA")
    reply = await dns.asyncquery.udp(query, node.config.listen["dns"][0], port=node.port("dns"),
                                     timeout=2)
    return int(reply.answer[0][0].serial) if reply.answer else 0


async def served_everywhere(nodes: list[TestNode], origin: str, serial: int) -> None:
    """Until every node answers the serial (each looks at the store once a second)."""
    for _ in range(100):
        if all([await soa_serial(node, origin) == serial for node in nodes]):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not every node serves serial {serial}")


async def test_a_managed_zone_change_is_notified_once_across_nodes(cluster, secondary) -> None:
    counter, port = secondary
    nodes = await cluster(("dns",), dns={"recursion": [], "notify": [f"127.0.0.1:{port}"]})
    store = nodes[0].store
    await store.zone_create("shared.test", nameservers=["ns.shared.test."],
                            hostmaster="hostmaster@shared.test")
    await served_everywhere(nodes, "shared.test.", 1)
    for serial in (2, 3):
        assert await store.record_add("shared.test", "www", "A", f"192.0.2.{serial}") == serial
        await served_everywhere(nodes, "shared.test.", serial)
    # Both nodes published every serial; a duplicate would come at most a
    # poll period later. Give it a few.
    for _ in range(30):
        await asyncio.sleep(0.1)
    assert sorted(counter.serials) == [1, 2, 3]


async def test_notify_claims_once_per_serial(cluster) -> None:
    nodes = await cluster(("smtp",))
    a, b = (node.store for node in nodes)
    claims = await asyncio.gather(*(s.zone_notify_claim("z.test", 7) for s in (a, b, a, b)))
    assert sorted(claims) == [False, False, False, True]
    assert await b.zone_notify_claim("Z.TEST.", 8) is True
    assert await a.zone_notify_claim("z.test", 8) is False

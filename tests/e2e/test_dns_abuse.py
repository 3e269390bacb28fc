"""Bad input at the sockets: garbage, lying length prefixes, slow clients, floods."""

from __future__ import annotations

import asyncio
import socket
import struct

import dns.asyncquery
import dns.message
import dns.rcode
import pytest

from mailstack.dns.server import serve_zones
from mailstack.dns.zone import Zone
from mailstack.limits import Limits

ZONE = "@ 60 SOA ns h 1 1 1 1 1\n@ 60 NS ns\nns 60 A 192.0.2.1\nwww 60 A 192.0.2.2\n"


@pytest.fixture
async def server():
    limits = Limits().replace(dns_tcp_idle_timeout=0.5, dns_udp_rate=50, dns_tcp_connections=5)
    started = await serve_zones([Zone.from_text(ZONE, "abuse.test.")], "127.0.0.1", limits=limits)
    yield started
    await started.stop()


async def still_answers(port: int) -> bool:
    query = dns.message.make_query("www.abuse.test.", "A")
    reply = await dns.asyncquery.tcp(query, "127.0.0.1", port=port, timeout=2)
    return reply.answer[0][0].address == "192.0.2.2"


async def test_udp_garbage_is_dropped_or_formerr(server):
    port = server.bound[0][1]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    try:
        await loop.sock_connect(sock, ("127.0.0.1", port))
        for packet in (
            b"",
            b"\x01",
            b"\xff" * 11,
            b"\x12\x34" + b"\x00\x00" + b"\xff" * 8,
            b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01",
        ):
            await loop.sock_sendall(sock, packet)
        reply = await asyncio.wait_for(loop.sock_recv(sock, 512), 2)
        assert reply[:2] == b"\x12\x34"
        assert reply[3] & 0x0F in (dns.rcode.FORMERR, dns.rcode.REFUSED)
    finally:
        sock.close()
    assert await still_answers(port)


async def test_short_tcp_length_prefix_closes(server):
    port = server.bound[0][1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(struct.pack("!H", 3) + b"abc")
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 2) == b""
    writer.close()
    assert await still_answers(port)


async def test_lying_length_prefix_and_slow_client_time_out(server):
    port = server.bound[0][1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    # Claims 65535 octets and sends ten: the server must not wait forever.
    writer.write(struct.pack("!H", 65535) + b"\x00" * 10)
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    assert await still_answers(port)


async def test_tcp_connection_limit(server):
    port = server.bound[0][1]
    held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(5)]
    extra_reader, extra_writer = await asyncio.open_connection("127.0.0.1", port)
    assert await asyncio.wait_for(extra_reader.read(), 2) == b""
    for _, writer in held:
        writer.close()
    extra_writer.close()
    await asyncio.sleep(0.1)
    assert await still_answers(port)


async def test_udp_flood_is_rate_limited(server):
    port = server.bound[0][1]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    wire = dns.message.make_query("www.abuse.test.", "A").to_wire()
    received = 0
    try:
        await loop.sock_connect(sock, ("127.0.0.1", port))
        for _ in range(200):
            await loop.sock_sendall(sock, wire)
        while True:
            try:
                await asyncio.wait_for(loop.sock_recv(sock, 512), 0.5)
            except TimeoutError:
                break
            received += 1
    finally:
        sock.close()
    # 50 a second are answered; the flood within one or two seconds gets at most 100.
    assert 0 < received <= 100


async def test_concurrent_recursions_are_bounded():
    from mailstack.dns.catalog import Catalog
    from mailstack.dns.proto import QueryHandler
    from mailstack.dns.server import DnsServer

    release = asyncio.Event()

    async def slow_resolver(query):
        await release.wait()
        return dns.message.make_response(query)

    catalog = Catalog()
    limits = Limits().replace(dns_recursive_clients=2)
    server = DnsServer(
        catalog,
        QueryHandler(catalog.authority, may_recurse=lambda c: True),
        limits=limits,
        recursive=slow_resolver,
    )
    await server.start("127.0.0.1", 0)
    port = server.bound[0][1]
    try:
        queries = [dns.message.make_query(f"q{i}.example.net.", "A") for i in range(3)]
        pending = [
            asyncio.create_task(dns.asyncquery.udp(q, "127.0.0.1", port=port, timeout=3))
            for q in queries[:2]
        ]
        await asyncio.sleep(0.2)
        third = await dns.asyncquery.udp(queries[2], "127.0.0.1", port=port, timeout=3)
        assert third.rcode() == dns.rcode.SERVFAIL
        release.set()
        assert all(r.rcode() == dns.rcode.NOERROR for r in await asyncio.gather(*pending))
    finally:
        await server.stop()

"""The outbound SMTP connection against scripted servers on 127.0.0.1: what
goes on the wire with and without PIPELINING and CHUNKING, STARTTLS that
fails, a server that hangs up."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable

import pytest

from mailstack.common.trace import Tracer
from mailstack.smtp.client import ConnectFailed, Connection, Delivery
from mailstack.smtp.client_proto import Host
from mailstack.store import QUEUED, QueuedRecipient, QueueEntry

DATA = b"Subject: x\r\n\r\n.dot\r\nbody\r\n"

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, list[bytes]], Awaitable[None]]


def entry(*addresses: str) -> tuple[QueueEntry, list[QueuedRecipient]]:
    rcpts = [
        QueuedRecipient(i, a, QUEUED, 0, 0.0, "", None, None, False)
        for i, a in enumerate(addresses, 1)
    ]
    return QueueEntry(1, "alice@crepes.fr", 0, 1, None, None, False, None, 9, tuple(rcpts)), rcpts


async def serve(script: Script) -> tuple[asyncio.Server, list[bytes], list[int]]:
    """A server on 127.0.0.1 running ``script`` per connection; what it read, per chunk."""
    received: list[bytes] = []
    connections: list[int] = []

    async def handle(reader, writer):
        connections.append(1)
        try:
            await script(reader, writer, received)
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, received, connections


async def read_until(reader: asyncio.StreamReader, marker: bytes, received: list[bytes]) -> bytes:
    data = b""
    while marker not in data:
        chunk = await reader.read(65536)
        if not chunk:
            break
        data += chunk
    received.append(data)
    return data


async def greet(reader, writer, received, features: bytes) -> None:
    writer.write(b"220 mx.test ESMTP\r\n")
    await read_until(reader, b"\r\n", received)
    writer.write(b"250-mx.test\r\n" + features + b"250 HELP\r\n")


async def connect(server: asyncio.Server) -> Connection:
    port = server.sockets[0].getsockname()[1]
    return await Connection.open(
        Host("mx.test", ("127.0.0.1",)), port=port, helo="crepes.fr", connect_timeout=5
    )


async def test_pipelining_sends_the_envelope_and_data_in_one_write():
    async def script(reader, writer, received):
        await greet(reader, writer, received, b"250-PIPELINING\r\n")
        await read_until(reader, b"DATA\r\n", received)
        writer.write(b"250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 unknown\r\n354 go\r\n")
        await read_until(reader, b"\r\n.\r\n", received)
        writer.write(b"250 2.0.0 queued\r\n")
        await read_until(reader, b"QUIT\r\n", received)
        writer.write(b"221 bye\r\n")

    server, received, _ = await serve(script)
    async with server:
        connection = await connect(server)
        e, rcpts = entry("bob@hamburger.edu", "nobody@hamburger.edu")
        outcomes = await connection.send(Delivery(e, rcpts, DATA))
        await connection.close()
    assert received[1] == (
        b"MAIL FROM:<alice@crepes.fr>\r\nRCPT TO:<bob@hamburger.edu>\r\n"
        b"RCPT TO:<nobody@hamburger.edu>\r\nDATA\r\n"
    )
    assert received[2] == b"Subject: x\r\n\r\n..dot\r\nbody\r\n.\r\n"
    assert outcomes[1].kind == "delivered" and outcomes[1].reply == "250 2.0.0 queued"
    assert (outcomes[2].kind, outcomes[2].status) == ("permanent", "5.1.1")


async def test_chunking_sends_bdat_with_the_octets_unchanged():
    async def script(reader, writer, received):
        await greet(reader, writer, received, b"250-PIPELINING\r\n250-CHUNKING\r\n250-SIZE 100\r\n")
        await read_until(reader, b"RCPT TO:<bob@hamburger.edu>\r\n", received)
        writer.write(b"250 ok\r\n250 ok\r\n")
        data = await read_until(reader, DATA, received)
        assert data == f"BDAT {len(DATA)} LAST\r\n".encode() + DATA
        writer.write(b"250 2.0.0 chunked\r\n")
        await reader.read(100)

    server, received, _ = await serve(script)
    async with server:
        connection = await connect(server)
        e, rcpts = entry("bob@hamburger.edu")
        outcomes = await connection.send(Delivery(e, rcpts, DATA))
        await connection.close()
    assert received[1] == (
        f"MAIL FROM:<alice@crepes.fr> SIZE={len(DATA)}\r\n".encode()
        + b"RCPT TO:<bob@hamburger.edu>\r\n"
    )
    assert outcomes[1].reply == "250 2.0.0 chunked"


async def test_without_pipelining_one_command_at_a_time():
    async def script(reader, writer, received):
        await greet(reader, writer, received, b"")
        for reply in (b"250 ok\r\n", b"250 ok\r\n", b"354 go\r\n"):
            await read_until(reader, b"\r\n", received)
            writer.write(reply)
        await read_until(reader, b"\r\n.\r\n", received)
        writer.write(b"250 done\r\n")
        await reader.read(100)

    server, received, _ = await serve(script)
    async with server:
        connection = await connect(server)
        e, rcpts = entry("bob@hamburger.edu")
        outcomes = await connection.send(Delivery(e, rcpts, DATA))
        await connection.close()
    assert received[1:4] == [
        b"MAIL FROM:<alice@crepes.fr>\r\n",
        b"RCPT TO:<bob@hamburger.edu>\r\n",
        b"DATA\r\n",
    ]
    assert outcomes[1].kind == "delivered"


async def test_all_recipients_refused_resets_without_data():
    async def script(reader, writer, received):
        await greet(reader, writer, received, b"250-PIPELINING\r\n")
        await read_until(reader, b"DATA\r\n", received)
        writer.write(b"250 ok\r\n450 4.2.1 busy\r\n554 5.5.1 no valid recipients\r\n")
        await read_until(reader, b"RSET\r\n", received)
        writer.write(b"250 reset\r\n")
        await reader.read(100)

    server, received, _ = await serve(script)
    async with server:
        connection = await connect(server)
        e, rcpts = entry("bob@hamburger.edu")
        outcomes = await connection.send(Delivery(e, rcpts, DATA))
        assert connection.usable
        await connection.close()
    assert (outcomes[1].kind, outcomes[1].status) == ("temporary", "4.2.1")
    assert received[2] == b"RSET\r\n"


async def test_failed_starttls_is_retried_in_clear():
    async def script(reader, writer, received):
        await greet(reader, writer, received, b"250-STARTTLS\r\n")
        line = await read_until(reader, b"\r\n", received)
        if line == b"STARTTLS\r\n":
            writer.write(b"220 go ahead\r\n")
            await writer.drain()
            writer.write(b"this is not a TLS handshake\r\n" * 10)
            await writer.drain()
            await reader.read(100)
        else:
            writer.write(b"250 ok\r\n")
            await reader.read(100)

    server, received, connections = await serve(script)
    async with server:
        connection = await connect(server)
        assert not connection.tls
        assert len(connections) == 2  # the second time without STARTTLS
        connection._abort()


async def test_a_554_greeting_is_a_refusal():
    async def script(reader, writer, received):
        writer.write(b"554 5.3.2 not here\r\n")
        await reader.read(100)

    server, _, _ = await serve(script)
    async with server:
        with pytest.raises(ConnectFailed) as caught:
            await connect(server)
    assert caught.value.outcome.kind == "temporary" and "554" in caught.value.outcome.reply


async def test_hang_up_mid_transaction_is_temporary():
    async def script(reader, writer, received):
        await greet(reader, writer, received, b"250-PIPELINING\r\n")
        await read_until(reader, b"DATA\r\n", received)
        writer.write(b"250 ok\r\n")  # and then nothing more

    server, _, _ = await serve(script)
    async with server:
        connection = await connect(server)
        e, rcpts = entry("bob@hamburger.edu")
        outcomes = await connection.send(Delivery(e, rcpts, DATA))
    assert (outcomes[1].kind, outcomes[1].status) == ("temporary", "4.4.2")
    assert not connection.usable


async def test_the_dialogue_is_traced():
    async def script(reader, writer, received):
        await greet(reader, writer, received, b"250-PIPELINING\r\n")
        await read_until(reader, b"DATA\r\n", received)
        writer.write(b"250 ok\r\n250 ok\r\n354 go\r\n")
        await read_until(reader, b"\r\n.\r\n", received)
        writer.write(b"250 2.0.0 queued\r\n")
        await read_until(reader, b"QUIT\r\n", received)
        writer.write(b"221 bye\r\n")

    out = io.StringIO()
    server, _, _ = await serve(script)
    async with server:
        port = server.sockets[0].getsockname()[1]
        connection = await Connection.open(
            Host("mx.test", ("127.0.0.1",)),
            port=port,
            helo="crepes.fr",
            connect_timeout=5,
            tracer=Tracer(enabled=True, out=out),
        )
        e, rcpts = entry("bob@hamburger.edu")
        await connection.send(Delivery(e, rcpts, DATA))
        await connection.close()
    lines = [line.split(" ", 2)[2] for line in out.getvalue().splitlines()]
    assert lines[0] == f"-- connection from 127.0.0.1:{port}"
    assert "S: 220 mx.test ESMTP" in lines
    assert "C: EHLO crepes.fr" in lines
    assert "S: 250-PIPELINING" in lines
    assert "C: MAIL FROM:<alice@crepes.fr>" in lines
    assert "C: Subject: x" in lines  # the message, traced as a body
    assert "S: 250 2.0.0 queued" in lines and "C: QUIT" in lines
    assert lines[-1] == "-- closed"


async def test_a_trickling_server_times_out(monkeypatch):
    import mailstack.smtp.client as client

    monkeypatch.setattr(client, "GREETING_TIMEOUT", 0.3)

    async def script(reader, writer, received):
        for octet in b"220 slow server ESMTP\r\n":
            writer.write(bytes([octet]))
            await writer.drain()
            await asyncio.sleep(0.05)
        # A well-behaved session from here on: only the trickle is at fault.
        await read_until(reader, b"\r\n", received)
        writer.write(b"250 slow server\r\n")
        await reader.read(100)

    server, _, _ = await serve(script)
    async with server:
        with pytest.raises(ConnectFailed) as caught:
            await connect(server)
    assert caught.value.outcome.kind == "temporary"


async def test_nothing_leaves_loopback_in_the_test_suite():
    # tests/conftest.py sets MAILSTACK_LOOPBACK_ONLY=1.
    with pytest.raises(ConnectFailed) as caught:
        await Connection.open(
            Host("mx.example", ("192.0.2.1", "2001:db8::1")),
            port=25,
            helo="crepes.fr",
            connect_timeout=5,
        )
    assert "MAILSTACK_LOOPBACK_ONLY" in caught.value.outcome.reply

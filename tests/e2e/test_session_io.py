"""SessionIO, the stream wrapper every line server uses."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

from mailstack.common.server import SessionIO
from mailstack.common.tls import Tls
from mailstack.common.trace import Tracer

from support import write_certificate


async def test_start_tls_drops_plaintext_buffered_before_the_handshake(tmp_path: Path):
    """CVE-2011-0411: bytes that arrived in clear behind STARTTLS, and sat in
    the stream's buffer, must not be read back as if they came over TLS."""
    write_certificate(tmp_path, "mx.test")
    tls = Tls(tmp_path / "tls" / "cert.pem", tmp_path / "tls" / "key.pem")
    after_tls: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        io = SessionIO(reader, writer, Tracer().session("t", "peer"), 5.0, False)
        assert await reader.readline() == b"STARTTLS\r\n"
        # Let the injected line arrive and sit in the stream's buffer.
        await asyncio.sleep(0.2)
        io.write(b"220 go ahead\r\n")
        await io.start_tls(tls.server_context())
        after_tls.set_result(await io.read())
        await io.close()

    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"STARTTLS\r\n")
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.write(b"MAIL FROM:<injected@evil.example>\r\n")
    await writer.drain()
    assert await reader.readline() == b"220 go ahead\r\n"
    await writer.start_tls(ssl._create_unverified_context())
    writer.write(b"EHLO after.tls\r\n")
    await writer.drain()
    got = await asyncio.wait_for(after_tls, 10)
    assert got == b"EHLO after.tls\r\n"
    writer.close()
    server.close()
    await server.wait_closed()

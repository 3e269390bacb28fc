"""The queue runner over a real store, a fake resolver, a fake clock and a
scripted SMTP server on 127.0.0.1: stopping lets a transaction finish."""

from __future__ import annotations

import asyncio
import dataclasses
from types import SimpleNamespace

import dns.name
import pytest

from mailstack.queue.config import QueueConfig
from mailstack.queue.runner import QueueRunner
from mailstack.store import NewRecipient

MESSAGE = b"From: alice@crepes.fr\r\nSubject: x\r\n\r\nhi\r\n"


class Resolver:
    async def mx(self, domain):
        return [(10, dns.name.from_text("mx.poly.edu"))]

    async def addresses(self, host):
        return ["127.0.0.1"]


class Clock:
    now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def slow_server():
    """Answers DATA only when told to; counts transactions."""
    release = asyncio.Event()
    data_seen = asyncio.Event()
    accepted: list[bytes] = []

    async def handle(reader, writer):
        writer.write(b"220 mx.poly.edu ESMTP\r\n")
        buffer = b""
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                break
            buffer += chunk
            while b"\r\n" in buffer:
                if buffer.startswith(b"EHLO"):
                    writer.write(b"250-mx.poly.edu\r\n250 PIPELINING\r\n")
                elif buffer.startswith((b"MAIL", b"RCPT")):
                    writer.write(b"250 ok\r\n")
                elif buffer.startswith(b"DATA"):
                    writer.write(b"354 go\r\n")
                elif buffer.startswith(b"QUIT"):
                    writer.write(b"221 bye\r\n")
                elif b"\r\n.\r\n" in buffer:
                    message, _, buffer = buffer.partition(b"\r\n.\r\n")
                    data_seen.set()
                    await release.wait()
                    accepted.append(message)
                    writer.write(b"250 2.0.0 taken\r\n")
                    continue
                else:
                    break
                buffer = buffer.split(b"\r\n", 1)[1]
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1], release, data_seen, accepted


async def test_stop_lets_a_transaction_under_way_finish(store, slow_server, tmp_path):
    port, release, data_seen, accepted = slow_server
    await store.domain_add("crepes.fr")
    config = dataclasses.replace(QueueConfig(), port=port)
    node = SimpleNamespace(
        config=SimpleNamespace(queue=config, data_dir=tmp_path),
        store=store,
        hostname="mail.crepes.fr",
    )
    runner = QueueRunner(node, clock=Clock(), resolver=Resolver())  # type: ignore[arg-type]
    await runner.start()
    entry_id = await runner.enqueue(
        runner.new_entry("alice@crepes.fr", [NewRecipient("ann@poly.edu")], MESSAGE)
    )
    await asyncio.wait_for(data_seen.wait(), 10)
    stopping = asyncio.create_task(runner.stop())
    await asyncio.sleep(0.05)
    assert not stopping.done()  # waiting for the remote's reply
    release.set()
    await asyncio.wait_for(stopping, 10)
    assert len(accepted) == 1
    # The outcome was recorded: nothing is left to send again after a restart.
    assert await store.queue_list() == []
    assert entry_id > 0

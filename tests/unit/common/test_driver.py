"""The one session driver: reads on NeedData, dispatches by an explicit table,
traces both directions, turns the idle timeout into the protocol's event."""

from __future__ import annotations

import io
from dataclasses import dataclass

import pytest

from mailstack.common.driver import SessionDriver
from mailstack.common.lines import LineBuffer, NeedData
from mailstack.common.server import IdleTimeout
from mailstack.common.trace import SessionTrace


@dataclass(frozen=True)
class Line:
    text: bytes


@dataclass(frozen=True)
class Bye:
    farewell: bytes


class EchoProtocol:
    """A line protocol: every line is an event, b"" ends, idleness says bye."""

    def __init__(self) -> None:
        self.lines = LineBuffer(100)
        self.eof = False
        self.tls = False

    def receive_data(self, data: bytes) -> None:
        self.eof = self.eof or not data
        self.lines.feed(data)

    def next_event(self) -> object:
        line = self.lines.next_line()
        if line is not None:
            return Line(line)
        return Bye(b"") if self.eof else NeedData()

    def timed_out(self) -> Bye:
        return Bye(b"idle\r\n")

    def tls_started(self) -> None:
        self.tls = True


class FakeIO:
    """Stands in for SessionIO: scripted reads, recorded writes."""

    def __init__(self, reads: list[bytes | Exception]) -> None:
        self.reads = reads
        self.written = bytearray()
        self.drains = 0
        self.out = io.StringIO()
        self.trace = SessionTrace(self.out, "[t 1]")

    async def read(self) -> bytes:
        item = self.reads.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    def write(self, data: bytes) -> None:
        self.written += data

    async def drain(self) -> None:
        self.drains += 1

    async def start_tls(self, context: object) -> None:
        self.tls_context = context


class Echo(SessionDriver[EchoProtocol]):
    def __init__(self, fake: FakeIO) -> None:
        super().__init__(fake, EchoProtocol())  # type: ignore[arg-type]
        self.handlers = {Line: self.echo, Bye: self.bye}

    async def echo(self, event: Line) -> bool:
        self.send(b"> " + event.text)
        return event.text.strip() == b"QUIT"

    async def bye(self, event: Bye) -> bool:
        self.send(event.farewell)
        return True

    def trace_received(self, data: bytes) -> None:
        self.io.trace.client(data)


async def test_events_go_to_their_handlers_until_one_ends_the_session():
    fake = FakeIO([b"HELLO\r\nQU", b"IT\r\nNOT READ\r\n"])
    await Echo(fake).run(b"hi\r\n")
    assert bytes(fake.written) == b"hi\r\n> HELLO\r\n> QUIT\r\n"
    assert fake.reads == []
    assert fake.drains == 2  # before each read


async def test_end_of_file_is_the_protocols_event():
    fake = FakeIO([b"A\r\n", b""])
    await Echo(fake).run(b"")
    assert bytes(fake.written) == b"> A\r\n"


async def test_the_idle_timeout_gives_the_protocols_timeout_event():
    fake = FakeIO([b"A\r\n", IdleTimeout()])
    await Echo(fake).run(b"")
    assert bytes(fake.written) == b"> A\r\nidle\r\n"
    assert "-- idle timeout" in fake.out.getvalue()


async def test_an_event_without_a_handler_is_a_bug_not_a_silent_skip():
    class Deaf(Echo):
        def __init__(self, fake: FakeIO) -> None:
            super().__init__(fake)
            del self.handlers[Line]

    with pytest.raises(KeyError):
        await Deaf(FakeIO([b"A\r\n"])).run(b"")


async def test_the_trace_shows_both_directions():
    fake = FakeIO([b"HELLO\r\n", b""])
    await Echo(fake).run(b"hi\r\n")
    assert fake.out.getvalue().splitlines() == [
        "[t 1] S: hi",
        "[t 1] C: HELLO",
        "[t 1] S: > HELLO",
    ]


async def test_starttls_flushes_then_upgrades_then_tells_the_protocol():
    fake = FakeIO([])
    echo = Echo(fake)
    context = object()
    await echo.upgrade_to_tls(context)  # type: ignore[arg-type]
    assert fake.drains == 1 and fake.tls_context is context and echo.proto.tls

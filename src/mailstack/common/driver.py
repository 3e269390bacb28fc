"""The one session driver: a protocol object run over a `SessionIO`.

SMTP (both roles, RFC 5321 and RFC 6409), POP3 (RFC 1939) and IMAP (RFC 3501)
sessions are this loop::

    event = proto.next_event()
    NeedData        -> flush what is queued, drain, read, feed the bytes
                       (the idle timeout feeds nothing: the protocol's
                       timed_out() event is handled and the session ends)
    anything else   -> the handler registered for its type; True ends it

Handlers are an explicit table per session, never looked up by name. The
S:/C: trace of both directions is written here: server bytes as they are
sent, client bytes as they arrive (`trace_received`) or, where a secret must
be elided, per event (`trace_event`). STARTTLS is one step for every
protocol: flush the reply, hand the stream to TLS (SessionIO drops the
plaintext the stream buffered) and tell the protocol, which drops what its
framer buffered (RFC 3207 §4.2, RFC 2595 §4, RFC 3501 §6.2.1; CVE-2011-0411).
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from typing import Any, Generic, Protocol, TypeVar

from mailstack.common.lines import NeedData
from mailstack.common.server import IdleTimeout, SessionIO

__all__ = ["Handler", "SessionDriver", "SessionProtocol"]


class SessionProtocol(Protocol):
    """What the driver needs of a protocol module: bytes in, events out."""

    def receive_data(self, data: bytes) -> None:
        """Bytes from the peer; ``b""`` at end of file."""

    def next_event(self) -> object: ...

    def timed_out(self) -> object:
        """The event that ends a session idle for too long."""

    def tls_started(self) -> None:
        """The stream is TLS now: forget what arrived in clear."""


P = TypeVar("P", bound=SessionProtocol)
# A handler answers one event; True when the session is over.
Handler = Callable[[Any], Awaitable[bool | None]]


class SessionDriver(Generic[P]):
    """Runs ``proto`` over ``io`` with the handlers a service registers."""

    def __init__(self, io: SessionIO, proto: P) -> None:
        self.io = io
        self.proto = proto
        self.handlers: dict[type, Handler] = {}

    async def run(self, greeting: bytes) -> None:
        io, proto, handlers = self.io, self.proto, self.handlers
        self.send(greeting)
        while True:
            event = proto.next_event()
            if isinstance(event, NeedData):
                await self.flush()
                try:
                    await self.receive()
                except IdleTimeout:
                    io.trace.note("idle timeout")
                    timeout = proto.timed_out()
                    await handlers[type(timeout)](timeout)
                    return
                continue
            if io.trace.enabled:
                self.trace_event(event)
            if await handlers[type(event)](event):
                return

    async def receive(self) -> None:
        """Read what the peer sent next and feed it to the protocol.

        Raises IdleTimeout when nothing came within the idle timeout.
        """
        data = await self.io.read()
        if data and self.io.trace.enabled:
            self.trace_received(data)
        self.proto.receive_data(data)

    def send(self, data: bytes) -> None:
        if data:
            self.trace_sent(data)
            self.io.write(data)

    async def flush(self) -> None:
        """Send what the session has queued and wait for the socket to take it."""
        await self.io.drain()

    async def upgrade_to_tls(self, context: ssl.SSLContext) -> None:
        await self.flush()
        await self.io.start_tls(context)
        self.proto.tls_started()

    # The trace: each protocol says what of the client's bytes may be shown.

    def trace_sent(self, data: bytes) -> None:
        self.io.trace.server(data)

    def trace_received(self, data: bytes) -> None:
        """Client bytes as they arrive; nothing here where a secret could pass."""

    def trace_event(self, event: object) -> None:
        """The client input behind ``event``, secrets elided."""

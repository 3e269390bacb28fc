"""One SMTP session over the common driver, for the MX (RFC 5321) and
submission (RFC 6409) servers alike.

`SmtpListener` is what both listeners share: one session per connection,
and 421 when they are too many or the node stops. `SmtpSession` is the I/O
glue both roles share: STARTTLS (RFC 3207 §4.2:
the reply in clear, then the handshake, then a session that forgot all said
before), QUIT and close, the trace of commands and of message text. A role
registers its decisions (MAIL, RCPT, the message, AUTH) with `answer` (the
message with `answer_message`, which hands the decision the whole message
from the session's spool); the protocol machine does the rest.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import TypeVar

from mailstack.common.driver import Handler, SessionDriver
from mailstack.common.server import SessionIO, TcpService
from mailstack.common.tls import Tls
from mailstack.smtp.proto import (
    Close,
    MessageComplete,
    MessageData,
    Quit,
    SmtpServerProtocol,
    StartTls,
    State,
)
from mailstack.smtp.replies import Reply
from mailstack.smtp.spool import Spool

__all__ = ["SmtpListener", "SmtpSession"]

# RFC 5321 §3.8: a server that cannot serve the session answers 421 and closes.
TOO_MANY_SESSIONS = b"421 4.3.2 Too many connections, try again later\r\n"

E = TypeVar("E")


class SmtpSession(SessionDriver[SmtpServerProtocol]):
    """An SMTP session: the role adds its handlers to ``self.handlers``."""

    def __init__(
        self, io: SessionIO, proto: SmtpServerProtocol, tls: Tls, spool: Spool | None = None
    ) -> None:
        super().__init__(io, proto)
        self.tls = tls
        # With a spool, the machine hands message data up as it arrives.
        self.spool = spool
        proto.stream_data = spool is not None
        self.handlers = {
            StartTls: self.start_tls,
            Quit: self.close,
            Close: self.close,
            MessageData: self.spool_data,
        }

    async def run(self, greeting: bytes) -> None:
        try:
            await super().run(greeting)
        finally:
            if self.spool is not None:
                self.spool.discard()

    async def spool_data(self, event: MessageData) -> None:
        assert self.spool is not None
        await self.spool.add(event.data, event.first)

    def answer_message(self, decide: Callable[[MessageComplete], Awaitable[Reply]]) -> Handler:
        """The handler of MessageComplete: ``decide`` gets the whole message."""

        async def respond(event: MessageComplete) -> None:
            if self.spool is None:
                reply = await decide(event)
            else:
                async with self.spool.message(event.data, streamed=event.streamed) as data:
                    reply = await decide(dataclasses.replace(event, data=data))
            self.proto.respond(reply)

        return respond

    def answer(self, decide: Callable[[E], Awaitable[Reply]]) -> Handler:
        """The handler of an event the role decides: its Reply answers it."""

        async def respond(event: E) -> None:
            self.proto.respond(await decide(event))

        return respond

    async def flush(self) -> None:
        self.send(self.proto.data_to_send())
        await self.io.drain()

    async def start_tls(self, event: StartTls) -> None:
        await self.upgrade_to_tls(self.tls.server_context())

    async def close(self, event: Quit | Close) -> bool:
        await self.flush()
        return True

    def trace_received(self, data: bytes) -> None:
        if self.proto.state is State.DATA or self.proto.state is State.CHUNK:
            self.io.trace.body(data)
        else:
            self.io.trace.client(data)


class SmtpListener(TcpService):
    """An SMTP listener: each role says how its sessions are made."""

    shutdown_message = b"421 4.3.2 Service shutting down, try again later\r\n"

    def new_session(self, io: SessionIO) -> SmtpSession:
        raise NotImplementedError

    async def session(self, io: SessionIO) -> None:
        session = self.new_session(io)
        await session.run(session.proto.greeting())

    async def refuse(self, io: SessionIO) -> None:
        io.write(TOO_MANY_SESSIONS)
        io.trace.server(TOO_MANY_SESSIONS)

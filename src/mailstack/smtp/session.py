"""One SMTP session over the common driver, for the MX (RFC 5321) and
submission (RFC 6409) servers alike.

`SmtpListener` is what both listeners share: one session per connection,
and 421 when they are too many (in all, from one address or network, or
not logged in) or the node stops. `SmtpSession` is the I/O
glue both roles share: STARTTLS (RFC 3207 §4.2:
the reply in clear, then the handshake, then a session that forgot all said
before), QUIT and close, the trace of commands and of message text. A role
registers its decisions (MAIL, RCPT, the message, AUTH) with `answer` (the
message with `answer_message`, which hands the decision the whole message
from the session's spool); the protocol machine does the rest.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from mailstack.common.clients import CapReached
from mailstack.common.driver import Handler, SessionDriver
from mailstack.common.events import log_event
from mailstack.common.server import SessionIO, TcpService
from mailstack.common.tls import Tls
from mailstack.common.trace import CREDENTIALS_ELIDED
from mailstack.errors import StoreUnavailable
from mailstack.smtp.proto import (
    Close,
    MessageComplete,
    MessageData,
    Quit,
    SmtpServerProtocol,
    StartTls,
    State,
)
from mailstack.smtp.replies import LOCAL_ERROR, Reply
from mailstack.smtp.spool import Spool

__all__ = [
    "SmtpListener",
    "SmtpSession",
    "log_message",
    "log_refused",
    "message_fields",
    "tls_comment",
    "tls_version",
]

# RFC 5321 §3.8: a server that cannot serve the session answers 421 and
# closes; RFC 3463 X.3.2 "System not accepting network messages" when it is
# full, X.7.0 (a policy) when the client's address or network holds its share.
TOO_MANY_SESSIONS = b"421 4.3.2 Too many connections, try again later\r\n"
TOO_MANY_FROM_CLIENT = b"421 4.7.0 Too many connections from your address, try again later\r\n"
TOO_MANY_FROM_NETWORK = b"421 4.7.0 Too many connections from your network, try again later\r\n"
TOO_MANY_UNAUTHENTICATED = (
    b"421 4.7.0 Too many connections not logged in from your address, try again later\r\n"
)
REFUSALS = {
    CapReached.TOTAL: TOO_MANY_SESSIONS,
    CapReached.ADDRESS: TOO_MANY_FROM_CLIENT,
    CapReached.PREFIX: TOO_MANY_FROM_NETWORK,
    CapReached.LOGIN: TOO_MANY_UNAUTHENTICATED,
}

log = logging.getLogger(__name__)
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
            try:
                if self.spool is None:
                    reply = await decide(event)
                else:
                    async with self.spool.message(event.data, streamed=event.streamed) as data:
                        reply = await decide(dataclasses.replace(event, data=data))
            except StoreUnavailable as exc:
                reply = self.store_away(exc)
            self.proto.respond(reply)

        return respond

    def answer(self, decide: Callable[[E], Awaitable[Reply]]) -> Handler:
        """The handler of an event the role decides: its Reply answers it."""

        async def respond(event: E) -> None:
            try:
                reply = await decide(event)
            except StoreUnavailable as exc:
                reply = self.store_away(exc)
            self.proto.respond(reply)

        return respond

    def store_away(self, exc: StoreUnavailable) -> Reply:
        """Any command that needs a store that cannot be reached now (a
        PostgreSQL restart) is answered 451 4.3.0, and the session goes on."""
        log.warning("smtp session from %s: %s", self.io.peer[0], exc)
        return LOCAL_ERROR

    async def flush(self) -> None:
        self.send(self.proto.data_to_send())
        await self.io.drain()

    async def start_tls(self, event: StartTls) -> None:
        await self.upgrade_to_tls(self.tls.server_context())
        self.io.trace.drop_partial()

    async def close(self, event: Quit | Close) -> bool:
        await self.flush()
        return True

    def trace_received(self, data: bytes) -> None:
        """Commands line by line, message text as a body; AUTH's initial
        response and every SASL line after a 334 (RFC 4954 §4) are elided."""
        trace = self.io.trace
        if self.proto.state is State.DATA or self.proto.state is State.CHUNK:
            trace.drop_partial()
            trace.body(data)
            return
        # Waiting for the answer to a 334: every line is a SASL response.
        sasl = self.proto.state is State.AUTH
        for line in trace.client_lines(data):
            if sasl:
                trace.client(CREDENTIALS_ELIDED)
                continue
            words = line.split()
            if words and words[0].upper() == b"AUTH":
                shown = b" ".join(words[:2])
                if len(words) > 2:
                    shown += b" " + CREDENTIALS_ELIDED.encode()
                trace.client(shown)
                # What follows AUTH before the server's answer is the exchange's.
                sasl = True
            else:
                trace.client(line)


# -- the log lines of both roles (docs/configuration.md, "Log") -------------------


def tls_version(io: SessionIO) -> str:
    """The session's TLS version ("TLSv1.3"), or "no"."""
    ssl_object = io.writer.get_extra_info("ssl_object")
    return str(ssl_object.version()) if ssl_object is not None else "no"


def tls_comment(io: SessionIO) -> str:
    """The session's TLS for the Received: field ("TLSv1.3 with cipher
    TLS_AES_256_GCM_SHA384"), or "" in clear."""
    ssl_object = io.writer.get_extra_info("ssl_object")
    if ssl_object is None:
        return ""
    cipher = ssl_object.cipher()
    name = f" with cipher {cipher[0]}" if cipher else ""
    return f"{ssl_object.version()}{name}"


def message_fields(
    protocol: str, event: MessageComplete, io: SessionIO, message_id: str
) -> dict[str, object]:
    """What every `message accepted`/`message refused` line says of a message."""
    return {
        "protocol": protocol,
        "id": message_id,
        "from": f"<{event.mail_from}>",
        "to": ",".join(f"<{rcpt}>" for rcpt in event.rcpt_to),
        "size": len(event.data),
        "client": io.peer[0],
        "helo": event.helo or None,
        "tls": tls_version(io),
    }


def log_message(log: logging.Logger, reply: Reply, fields: dict[str, object]) -> None:
    """One line for a message at its end: accepted, or refused and why."""
    if reply.is_positive:
        log_event(log, logging.INFO, "message accepted", fields)
    else:
        log_event(log, logging.INFO, "message refused", fields | {"reply": _text(reply)})


def log_refused(
    log: logging.Logger,
    what: str,
    protocol: str,
    io: SessionIO,
    reply: Reply,
    *,
    sender: str,
    recipient: str | None = None,
) -> None:
    """One line for a refused sender or recipient (``what``) and the reply."""
    fields = {
        "protocol": protocol,
        "from": f"<{sender}>",
        "to": f"<{recipient}>" if recipient is not None else None,
        "client": io.peer[0],
        "reply": _text(reply),
    }
    log_event(log, logging.INFO, f"{what} refused", fields)


def _text(reply: Reply) -> str:
    return reply.to_bytes().decode("utf-8", "replace").strip().replace("\r\n", " ")


class SmtpListener(TcpService):
    """An SMTP listener: each role says how its sessions are made."""

    shutdown_message = b"421 4.3.2 Service shutting down, try again later\r\n"

    def new_session(self, io: SessionIO) -> SmtpSession:
        raise NotImplementedError

    async def session(self, io: SessionIO) -> None:
        session = self.new_session(io)
        await session.run(session.proto.greeting())

    def refusal(self, cap: CapReached) -> bytes:
        return REFUSALS[cap]

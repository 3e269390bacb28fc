"""The IMAP listener: sockets for imap (143, STARTTLS) and imaps (993,
implicit TLS, RFC 8314), around the I/O-free command reader and the session.
"""

from __future__ import annotations

import asyncio
import re
import zlib
from typing import TYPE_CHECKING

from mailstack.common.clients import CapReached
from mailstack.common.driver import SessionDriver
from mailstack.common.logins import answered, kicked
from mailstack.common.server import SessionIO, TcpService
from mailstack.imap.proto.lexer import (
    CommandReader,
    FramingError,
    Hangup,
    NeedLiteral,
    RawCommand,
)
from mailstack.imap.proto.response import continuation
from mailstack.imap.session import Context, Session

if TYPE_CHECKING:
    from mailstack.app import Node

__all__ = ["ImapService"]

# Flush pending output once this much has been written during one command.
_FLUSH_AT = 256 * 1024
# Under COMPRESS=DEFLATE, octets inflated at a time: the reader takes each
# piece before the next is made, so a small "deflate bomb" never becomes a
# big buffer.
_INFLATE_PIECE = 64 * 1024
_TRACE_LINES = 8  # lines of one response shown by --trace


class _Connection(SessionDriver[CommandReader]):
    """One connection: the driver over the command reader, and the
    session's Channel (coalesced writes, line reads, STARTTLS)."""

    def __init__(self, io: SessionIO, reader: CommandReader, service: ImapService) -> None:
        super().__init__(io, reader)
        self.service = service
        self.tls_active = io.tls_active
        self._out: list[bytes] = []
        self._buffered = 0
        self._traced = 0  # parts of the current command already traced
        # RFC 4978 COMPRESS=DEFLATE, once the session turned it on.
        self._deflate: zlib._Compress | None = None
        self._inflate: zlib._Decompress | None = None
        self._inflated = 0
        self.session = Session(service.context, self, io.peer[0], on_login=io.authenticated)
        self.handlers = {
            RawCommand: self.command,
            NeedLiteral: self.continue_literal,
            FramingError: self.refuse,
            Hangup: self.hang_up,
        }

    async def run(self, greeting: bytes) -> None:
        try:
            await super().run(greeting)
        except asyncio.CancelledError as exc:
            if not kicked(exc):
                # The node is stopping (RFC 3501 §7.1.5: BYE before closing).
                self.write(b"* BYE [UNAVAILABLE] Server shutting down\r\n")
                raise
            # The account was disabled or removed (common/logins.py).
            self.write(b"* BYE Account disabled or removed\r\n")
            answered()
        finally:
            await self.flush()
            await self.session.close()

    async def command(self, event: RawCommand) -> bool:
        await self.session.run(event.lines, event.literals)
        await self.maybe_flush()
        return self.session.closing

    async def continue_literal(self, event: NeedLiteral) -> None:
        # RFC 3501 §7.5: the continuation that lets the literal come.
        self.write(continuation("Ready for literal data"))
        await self.flush()

    async def refuse(self, event: FramingError) -> bool:
        self.write(event.error.line(event.tag))
        if event.fatal:
            self.write(b"* BYE Protocol error\r\n")
        return event.fatal

    async def hang_up(self, event: Hangup) -> bool:
        self.write(event.farewell)
        return True

    def trace_event(self, event: object) -> None:
        if isinstance(event, NeedLiteral):
            self._traced = _trace_parts(self.io, self.proto.parts, self._traced)
        elif isinstance(event, RawCommand):
            _trace_parts(self.io, event.parts, self._traced)
            self._traced = 0

    def trace_sent(self, data: bytes) -> None:
        _trace_server(self.io, data)

    # The Channel

    def write(self, data: bytes) -> None:
        if not data:
            return
        if self.io.trace.enabled:
            self.trace_sent(data)
        # Responses are gathered and sent in one write per flush: a syscall
        # per response line would dominate FETCH of many messages.
        self._out.append(data)
        self._buffered += len(data)

    async def flush(self) -> None:
        if self._out:
            data = b"".join(self._out)
            if self._deflate is not None:
                # RFC 4978 §4: each flush ends on a byte boundary (Z_SYNC_FLUSH)
                # so the client can inflate all it has been sent.
                data = self._deflate.compress(data) + self._deflate.flush(zlib.Z_SYNC_FLUSH)
            self.io.write(data)
            self._out.clear()
        self._buffered = 0
        await self.io.drain()

    async def maybe_flush(self) -> None:
        if self._buffered >= _FLUSH_AT:
            await self.flush()

    async def read_line(self) -> bytes | None:
        while True:
            line = self.proto.next_line()
            if line is not None:
                if self.io.trace.enabled:
                    # IDLE's DONE, or an AUTHENTICATE response (credentials).
                    done = line.strip().upper() == b"DONE"
                    self.io.trace.client(line if done else b"[SASL response elided]")
                return line
            if self.proto.at_eof:
                return None
            await self.receive()

    def start_compression(self) -> None:
        """RFC 4978 §3: both directions are raw DEFLATE (RFC 1951) from now on."""
        self._deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
        self._inflate = zlib.decompressobj(-15)

    async def receive(self) -> None:
        inflate = self._inflate
        if inflate is None:
            await super().receive()
            return
        piece = b""
        try:
            while not piece:
                pending = inflate.unconsumed_tail
                if not pending:
                    pending = await self.io.read()
                    if not pending:
                        self.proto.receive_data(b"")
                        return
                piece = inflate.decompress(pending, _INFLATE_PIECE)
        except zlib.error:
            self.write(b"* BYE Bad compressed data\r\n")
            self.proto.receive_data(b"")
            return
        self._inflated += len(piece)
        if self._inflated > self.service.node.limits.imap_inflated:
            self.write(b"* BYE [LIMIT] Too much data for one session\r\n")
            self.proto.receive_data(b"")
            return
        self.proto.receive_data(piece)

    async def start_tls(self) -> None:
        await self.upgrade_to_tls(self.service.node.tls.server_context())
        self.tls_active = True


_CREDENTIALS = re.compile(rb"([^ ]+ (?:LOGIN|AUTHENTICATE [^ \r\n]+))", re.IGNORECASE)


def _trace_parts(io: SessionIO, parts: tuple[bytes, ...], start: int) -> int:
    """Trace a command's lines and literals from ``start``; passwords elided,
    literals shown as their first lines (the lectures' C: form)."""
    if parts and start == 0:
        m = _CREDENTIALS.match(parts[0])
        if m:
            io.trace.client(m.group(1) + b" [credentials elided]")
            return len(parts)
    elif parts and _CREDENTIALS.match(parts[0]):
        return len(parts)
    for i in range(start, len(parts)):
        if i % 2:
            io.trace.body(parts[i])
        else:
            io.trace.client(parts[i])
    return len(parts)


def _trace_server(io: SessionIO, data: bytes) -> None:
    """Trace a response; a long one (a message in a FETCH) is cut short."""
    lines = data.split(b"\r\n")
    if lines and not lines[-1]:
        lines.pop()
    if len(lines) <= _TRACE_LINES:
        io.trace.server(data)
        return
    for line in lines[: _TRACE_LINES - 1]:
        io.trace.server(line)
    io.trace.server(f"... ({len(lines) - _TRACE_LINES + 1} more lines, {len(data)} octets)")


_REFUSALS = {
    CapReached.TOTAL: b"Too many connections",
    CapReached.ADDRESS: b"Too many connections from your address",
    CapReached.PREFIX: b"Too many connections from your network",
    CapReached.LOGIN: b"Too many connections not logged in from your address",
}


class ImapService(TcpService):
    protocol = "imap"
    takes_logins = True
    implicit_tls_names = frozenset({"imaps"})

    def __init__(self, node: Node, name: str, host: str, port: int) -> None:
        super().__init__(node, name, host, port)
        limits = node.limits
        self.max_sessions = limits.imap_sessions
        self.max_sessions_per_address = limits.imap_sessions_per_address
        self.max_sessions_per_prefix = limits.imap_sessions_per_prefix
        self.idle_timeout = limits.imap_idle_timeout
        config = node.config.imap
        tls_ok = bool(node.tls.available)
        shared = node.imap_shared
        self.context = Context(
            store=node.store,  # type: ignore[arg-type]
            limits=limits,
            config=config,
            hostname=node.hostname,
            authenticator=node.authenticator,
            starttls_available=config.starttls and tls_ok and not self.implicit_tls,
            user_sessions=shared.user_sessions,
            parsed=shared.parsed,
            metas=shared.metas,
            sort_keys=shared.sort_keys,
        )
        shared.sort_keys.capacity = limits.imap_sort_keys

    def refusal(self, cap: CapReached) -> bytes:
        # RFC 3501 §7.1.5: BYE as the greeting; RFC 5530 UNAVAILABLE.
        return b"* BYE [UNAVAILABLE] " + _REFUSALS[cap] + b"\r\n"

    async def session(self, io: SessionIO) -> None:
        limits = self.node.limits
        self.context.store = self.node.store  # type: ignore[assignment]
        # A literal is an APPEND's message: past APPENDLIMIT (the smaller of
        # the literal and message limits) it is refused before it is read.
        literal = min(limits.imap_literal, limits.message_size)
        reader = CommandReader(
            max_line=limits.imap_line,
            max_literal=literal,
            max_command=literal + limits.imap_line * 4,
        )
        connection = _Connection(io, reader, self)
        await connection.run(connection.session.greeting())

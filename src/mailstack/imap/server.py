"""The IMAP listener: sockets for imap (143, STARTTLS) and imaps (993,
implicit TLS, RFC 8314), around the I/O-free command reader and the session.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING

from mailstack.common.server import IdleTimeout, SessionIO, TcpService
from mailstack.imap.proto.lexer import CommandReader, FramingError, NeedData, NeedLiteral
from mailstack.imap.proto.response import continuation
from mailstack.imap.session import Context, Session

if TYPE_CHECKING:
    from mailstack.app import Node

__all__ = ["ImapService"]

# Flush pending output once this much has been written during one command.
_FLUSH_AT = 256 * 1024
_TRACE_LINES = 8  # lines of one response shown by --trace


class _Connection:
    """The session's Channel over a SessionIO and the shared command reader."""

    def __init__(self, io: SessionIO, reader: CommandReader, service: ImapService) -> None:
        self.io = io
        self.reader = reader
        self.service = service
        self.tls_active = io.tls_active
        self._out: list[bytes] = []
        self._buffered = 0

    def write(self, data: bytes) -> None:
        if not data:
            return
        if self.io.trace.enabled:
            _trace_server(self.io, data)
        # Responses are gathered and sent in one write per flush: a syscall
        # per response line would dominate FETCH of many messages.
        self._out.append(data)
        self._buffered += len(data)

    async def flush(self) -> None:
        if self._out:
            self.io.write(b"".join(self._out))
            self._out.clear()
        self._buffered = 0
        await self.io.drain()

    async def maybe_flush(self) -> None:
        if self._buffered >= _FLUSH_AT:
            await self.flush()

    async def read_line(self) -> bytes | None:
        while True:
            line = self.reader.next_line()
            if line is not None:
                if self.io.trace.enabled:
                    # IDLE's DONE, or an AUTHENTICATE response (credentials).
                    done = line.strip().upper() == b"DONE"
                    self.io.trace.client(line if done else b"[SASL response elided]")
                return line
            data = await self.io.read()
            if not data:
                return None
            self.reader.feed(data)

    async def start_tls(self) -> None:
        # RFC 3501 §6.2.1 / RFC 7817 §3: anything pipelined after STARTTLS in
        # plaintext is discarded, never executed after the upgrade.
        self.reader.discard()
        # Plaintext that reached the stream's own buffer before the handshake
        # is dropped too (asyncio would hand it over as if it came over TLS).
        buffered = getattr(self.io.reader, "_buffer", None)
        if isinstance(buffered, bytearray):
            buffered.clear()
        await self.io.start_tls(self.service.node.tls.server_context())
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


class ImapService(TcpService):
    protocol = "imap"
    implicit_tls_names = frozenset({"imaps"})

    def __init__(self, node: Node, name: str, host: str, port: int) -> None:
        super().__init__(node, name, host, port)
        limits = node.limits
        self.max_sessions = limits.imap_sessions
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
        )

    async def refuse(self, io: SessionIO) -> None:
        io.write(b"* BYE [UNAVAILABLE] Too many connections\r\n")

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
        conn = _Connection(io, reader, self)
        session = Session(self.context, conn, io.peer[0])
        conn.write(session.greeting())
        await conn.flush()
        traced = 0  # parts of the current command already traced
        try:
            while not session.closing:
                event = reader.next_event()
                if isinstance(event, NeedData):
                    await conn.flush()
                    try:
                        data = await io.read()
                    except IdleTimeout:
                        # RFC 3501 §5.4: the autologout timer ran out.
                        conn.write(b"* BYE Autologout; idle for too long\r\n")
                        return
                    if not data:
                        return
                    reader.feed(data)
                    continue
                if isinstance(event, NeedLiteral):
                    if io.trace.enabled:
                        traced = _trace_parts(io, reader.parts, traced)
                    # RFC 3501 §7.5: the continuation that lets the literal come.
                    conn.write(continuation("Ready for literal data"))
                    await conn.flush()
                    continue
                if isinstance(event, FramingError):
                    conn.write(event.error.line(event.tag))
                    if event.fatal:
                        conn.write(b"* BYE Protocol error\r\n")
                        return
                    continue
                if io.trace.enabled:
                    _trace_parts(io, event.parts, traced)
                traced = 0
                await session.run(event.lines, event.literals)
                await conn.maybe_flush()
        except asyncio.CancelledError:
            # The node is stopping (RFC 3501 §7.1.5: BYE before closing).
            conn.write(b"* BYE [UNAVAILABLE] Server shutting down\r\n")
            raise
        finally:
            await conn.flush()
            await session.close()

"""The TCP service base shared by the SMTP, POP3 and IMAP servers.

A `TcpService` listens on one address (implicit TLS when its listen name says
so), bounds its concurrent sessions in all, per client address and per
network prefix (`clients.SessionCounts`), and for the listeners that take
passwords the node's sessions not yet logged in per address (the
authenticator's count); past a cap a session gets the protocol's reply
(`refusal`) and a log line, and is closed. Otherwise it runs `session(io)`.
`SessionIO` wraps the stream with the idle timeout, the trace and the
STARTTLS upgrade. Only `server.py` modules use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mailstack.common.clients import CapReached, SessionCounts
from mailstack.common.events import log_event
from mailstack.common.logins import kicked
from mailstack.common.trace import SessionTrace

if TYPE_CHECKING:
    from mailstack.app import Node

log = logging.getLogger(__name__)

READ_SIZE = 256 * 1024


class IdleTimeout(Exception):
    """The peer sent nothing for longer than the idle timeout."""


class SessionIO:
    __slots__ = (
        "reader", "writer", "peer", "local", "trace", "idle_timeout", "tls_active",
        "_loop", "_read_since", "_timer", "_login_release",
    )

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        trace: SessionTrace,
        idle_timeout: float,
        tls_active: bool,
    ) -> None:
        self.reader = reader
        self.writer = writer
        peer = writer.get_extra_info("peername") or ("?", 0)
        local = writer.get_extra_info("sockname") or ("?", 0)
        self.peer: tuple[str, int] = (peer[0], peer[1])
        self.local: tuple[str, int] = (local[0], local[1])
        self.trace = trace
        self.idle_timeout = idle_timeout
        self.tls_active = tls_active
        self._loop = asyncio.get_running_loop()
        # When the read in progress began (None: no read waiting), and the
        # one timer that watches it.
        self._read_since: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        # Ends this session's count among its address's sessions not yet
        # logged in (listeners that take passwords only).
        self._login_release: Callable[[], None] | None = None

    def awaiting_login(self, release: Callable[[], None]) -> None:
        """The session counts as not logged in until `authenticated`, which
        calls ``release``."""
        self._login_release = release

    def authenticated(self) -> None:
        """The session logged in (or ended): it no longer counts against
        its address's cap on sessions not logged in."""
        release, self._login_release = self._login_release, None
        if release is not None:
            release()

    async def read(self) -> bytes:
        """Whatever has arrived (b"" at EOF); IdleTimeout after the idle limit.

        A busy session reads several times per message, so a read only notes
        when it began: one long-lived timer per session checks that time and
        re-arms itself, instead of a timer made and cancelled per read.
        """
        loop = self._loop
        self._read_since = loop.time()
        if self._timer is None:
            self._timer = loop.call_at(self._read_since + self.idle_timeout, self._check_idle)
        try:
            return await self.reader.read(READ_SIZE)
        except (ConnectionError, ssl.SSLError, OSError):
            return b""
        finally:
            self._read_since = None

    def _check_idle(self) -> None:
        loop = self._loop
        since = self._read_since
        if since is not None and loop.time() - since >= self.idle_timeout:
            self._timer = None
            self.reader.set_exception(IdleTimeout())
            return
        start = loop.time() if since is None else since
        self._timer = loop.call_at(start + self.idle_timeout, self._check_idle)

    def write(self, data: bytes) -> None:
        if data and not self.writer.is_closing():
            self.writer.write(data)

    async def drain(self) -> None:
        # The transport sent everything already (the usual case: it writes at
        # once when it can): nothing to wait for, and no coroutines to make.
        if not self.writer.transport.get_write_buffer_size():
            return
        try:
            await self.writer.drain()
        except (ConnectionError, OSError):
            pass

    async def start_tls(self, context: ssl.SSLContext) -> None:
        await self.drain()
        # RFC 3207 §4.2, RFC 2595 §3.1 (CVE-2011-0411): plaintext that arrived
        # behind the STARTTLS command must not be read as if it came over TLS.
        # The protocol machines drop what they buffered; this drops what the
        # stream buffered.
        self.reader._buffer.clear()  # type: ignore[attr-defined]
        await self.writer.start_tls(context)
        self.tls_active = True

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self.writer.is_closing():
            with contextlib.suppress(ConnectionError, OSError):
                await self.writer.drain()
            self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), 2)


class TcpService:
    """Subclasses set `protocol`, the caps, and implement `session()` and
    `refusal()`."""

    protocol = "tcp"
    implicit_tls_names: frozenset[str] = frozenset()
    # Listeners that take passwords (POP3, IMAP, submission) also cap their
    # client address's sessions not yet logged in, node-wide.
    takes_logins = False

    def __init__(self, node: Node, name: str, host: str, port: int) -> None:
        self.node = node
        self.name = name
        self.host = host
        self.port = port
        self.implicit_tls = name in self.implicit_tls_names
        self.bound: list[tuple[str, int]] = []
        self._server: asyncio.base_events.Server | None = None
        self._sessions: set[asyncio.Task[Any]] = set()
        self.counts: SessionCounts | None = None

    # Subclass hooks
    max_sessions: int = 500
    max_sessions_per_address: int = 500
    max_sessions_per_prefix: int = 500
    idle_timeout: float = 300.0
    # Sent to every open session when the node stops (SMTP 421, IMAP BYE ...).
    shutdown_message: bytes = b""
    # What a session logged in to an account disabled or removed is told as
    # it is ended (common/logins.py).
    kicked_message: bytes = b""

    async def session(self, io: SessionIO) -> None:
        raise NotImplementedError

    def refusal(self, cap: CapReached) -> bytes:
        """What a session refused by ``cap`` is told before it is closed."""
        raise NotImplementedError

    async def start(self) -> None:
        limits = self.node.limits
        self.counts = SessionCounts(
            total=self.max_sessions,
            per_address=self.max_sessions_per_address,
            per_prefix=self.max_sessions_per_prefix,
            ipv4=limits.client_ipv4_prefix,
            ipv6=limits.client_ipv6_prefix,
        )
        ctx = self.node.tls.server_context() if self.implicit_tls else None
        self._server = await asyncio.start_server(
            self._accept, self.host, self.port, ssl=ctx, limit=READ_SIZE, reuse_address=True
        )
        self.bound = [s.getsockname()[:2] for s in self._server.sockets]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._sessions):
            task.cancel()
        if self._sessions:
            await asyncio.wait(self._sessions, timeout=5)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    def _admit(self, io: SessionIO) -> CapReached | None:
        counts = self.counts
        assert counts is not None  # made by start()
        client = io.peer[0]
        cap = counts.admit(client)
        if cap is None and self.takes_logins:
            authenticator = self.node.authenticator
            if authenticator.session_started(client):
                io.awaiting_login(lambda: authenticator.session_ended(client))
            else:
                counts.release(client)
                cap = CapReached.LOGIN
        if cap is not None:
            log_event(
                log,
                logging.WARNING,
                "session refused",
                {
                    "protocol": self.protocol,
                    "listener": self.name,
                    "client": client,
                    "cap": cap.value,
                },
            )
        return cap

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        peer = writer.get_extra_info("peername") or ("?", 0)
        trace = self.node.tracer.session(self.protocol, f"{peer[0]}:{peer[1]}")
        io = SessionIO(reader, writer, trace, self.idle_timeout, self.implicit_tls)
        cap = self._admit(io)
        if cap is not None:
            reply = self.refusal(cap)
            io.write(reply)
            trace.server(reply)
            trace.close()
            await io.close()
            return
        self._sessions.add(task)
        try:
            await self.session(io)
        except asyncio.CancelledError as exc:
            farewell = self.kicked_message if kicked(exc) else self.shutdown_message
            if farewell:
                io.write(farewell)
                io.trace.server(farewell)
        except IdleTimeout:
            pass
        except (ConnectionError, ssl.SSLError):
            pass
        except Exception:
            log.exception("%s session from %s failed", self.protocol, peer)
        finally:
            self._sessions.discard(task)
            assert self.counts is not None
            self.counts.release(io.peer[0])
            io.authenticated()
            trace.close()
            await io.close()

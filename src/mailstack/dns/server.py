"""The DNS server's sockets: UDP and TCP (RFC 1035 §4.2, RFC 7766).

UDP datagrams go through a per-client rate limit, then ``QueryHandler``. TCP
connections carry many length-prefixed queries (RFC 7766 §6.2.1), answered as
they complete, possibly out of order; each connection has an idle timeout and
the number of connections is bounded (``Limits``).
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Awaitable, Callable

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from mailstack.dns.catalog import Catalog
from mailstack.dns.proto import (
    Notify,
    QueryHandler,
    RateLimiter,
    Recurse,
    Transfer,
    Update,
    render,
)
from mailstack.dns.transfer import transfer_replies
from mailstack.dns.update import apply_update
from mailstack.dns.zone import Zone, diff
from mailstack.errors import DnsError
from mailstack.limits import Limits

log = logging.getLogger(__name__)

RecursiveAnswer = Callable[[dns.message.Message], Awaitable[dns.message.Message]]
NotifyHook = Callable[[dns.name.Name, str], Awaitable[bool]]
ExchangeHook = Callable[[str, str, bytes, list[bytes]], None]


class DnsServer:
    """Serves one ``Catalog`` (and optionally recursion) on one address."""

    def __init__(
        self,
        catalog: Catalog,
        handler: QueryHandler,
        *,
        limits: Limits | None = None,
        recursive: RecursiveAnswer | None = None,
        on_notify: NotifyHook | None = None,
    ) -> None:
        self.catalog = catalog
        self.handler = handler
        self.limits = limits or Limits()
        self.recursive = recursive
        self.on_notify = on_notify
        # Called with (client, transport, query, replies) when tracing is on.
        self.on_exchange: ExchangeHook | None = None
        # Asked before a question no zone answers is resolved: True when the
        # zones changed since (a zone added by another process), so that the
        # question is answered from them instead.
        self.on_miss: Callable[[], Awaitable[bool]] | None = None
        self.bound: list[tuple[str, int]] = []
        self._rate = RateLimiter(self.limits.dns_udp_rate)
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._update_lock = asyncio.Lock()
        self._recursing = 0

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self._tcp = await asyncio.start_server(self._serve_tcp, host, port)
        tcp_port = self._tcp.sockets[0].getsockname()[1]
        # UDP on the port TCP got, so one "host:port" names both (RFC 7766 §5).
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(self), local_addr=(host, tcp_port)
        )
        self._udp = transport
        self.bound = [(host, tcp_port)]

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
        for task in list(self._connections) + list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._connections, *self._tasks, return_exceptions=True)
        if self._tcp is not None:
            await self._tcp.wait_closed()

    # -- UDP ----------------------------------------------------------------

    def datagram(self, wire: bytes, addr: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if not self._rate.allow(addr[0], now):
            return
        try:
            event = self.handler.handle(wire, addr[0], now=now)
        except Exception:
            # A bug must cost one query, never the server (and never leak text).
            log.exception("DNS query from %s failed", addr[0])
            return
        if event is None:
            return
        if isinstance(event, bytes):
            assert self._udp is not None
            self._udp.sendto(event, addr)
            if self.on_exchange is not None:
                self.on_exchange(addr[0], "udp", wire, [event])
            return
        self._spawn(self._complete_udp(wire, event, addr))

    async def _complete_udp(self, wire: bytes, event: object, addr: tuple[str, int]) -> None:
        replies = await self.complete(event, addr[0])
        if self.on_exchange is not None:
            self.on_exchange(addr[0], "udp", wire, replies)
        if self._udp is not None and not self._udp.is_closing():
            for reply in replies:
                self._udp.sendto(reply, addr)

    # -- TCP ----------------------------------------------------------------

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._connections) >= self.limits.dns_tcp_connections:
            writer.close()
            return
        self._connections.add(task)
        client = writer.get_extra_info("peername")[0]
        lock = asyncio.Lock()
        pending: set[asyncio.Task[None]] = set()
        try:
            while True:
                # RFC 7766 §6.2.3: idle connections are closed by the server.
                prefix = await asyncio.wait_for(
                    reader.readexactly(2), self.limits.dns_tcp_idle_timeout
                )
                (length,) = struct.unpack("!H", prefix)
                if length < 12:
                    break
                wire = await asyncio.wait_for(
                    reader.readexactly(length), self.limits.dns_tcp_idle_timeout
                )
                now = asyncio.get_running_loop().time()
                try:
                    event = self.handler.handle(wire, client, tcp=True, now=now)
                except Exception:
                    log.exception("DNS query from %s failed", client)
                    break
                if event is None:
                    continue
                if isinstance(event, bytes):
                    if self.on_exchange is not None:
                        self.on_exchange(client, "tcp", wire, [event])
                    await _send(writer, lock, [event])
                    continue
                job = asyncio.create_task(self._complete_tcp(wire, event, client, writer, lock))
                pending.add(job)
                job.add_done_callback(pending.discard)
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            for job in pending:
                job.cancel()
            self._connections.discard(task)
            writer.close()

    async def _complete_tcp(
        self,
        wire: bytes,
        event: object,
        client: str,
        writer: asyncio.StreamWriter,
        lock: asyncio.Lock,
    ) -> None:
        replies = await self.complete(event, client, tcp=True)
        if self.on_exchange is not None:
            self.on_exchange(client, "tcp", wire, replies)
        try:
            await _send(writer, lock, replies)
        except ConnectionError:
            pass

    # -- events that need more than the zones -------------------------------

    async def complete(self, event: object, client: str, *, tcp: bool = False) -> list[bytes]:
        """Turn a handler event into the wire replies to send."""
        try:
            if isinstance(event, Recurse):
                if self.on_miss is not None and await self.on_miss():
                    now = asyncio.get_running_loop().time()
                    again = self.handler.handle(event.query.to_wire(), client, tcp=tcp, now=now)
                    if isinstance(again, bytes):
                        return [again]
                return [await self._recurse(event)]
            if isinstance(event, Transfer):
                return _render_sequence(transfer_replies(self.catalog, event.query, client))
            if isinstance(event, Update):
                return [await self._update(event.query)]
            if isinstance(event, Notify):
                return [await self._notify(event.query, client)]
        except Exception:
            # Never exception text to a peer: log it, answer SERVFAIL.
            log.exception("DNS request from %s failed", client)
            query = getattr(event, "query", None)
            if query is not None:
                response = dns.message.make_response(query)
                response.set_rcode(dns.rcode.SERVFAIL)
                return [response.to_wire()]
        return []

    async def _recurse(self, event: Recurse) -> bytes:
        assert self.recursive is not None
        if self._recursing >= self.limits.dns_recursive_clients:
            # A flood of distinct questions must not grow tasks without bound.
            busy = dns.message.make_response(event.query)
            busy.flags |= dns.flags.RA
            busy.set_rcode(dns.rcode.SERVFAIL)
            return busy.to_wire()
        self._recursing += 1
        try:
            response = await self.recursive(event.query)
        finally:
            self._recursing -= 1
        response.flags |= dns.flags.RA
        wire = render(response, event.max_size)
        if event.cache_key is not None and response.rcode() != dns.rcode.SERVFAIL:
            now = asyncio.get_running_loop().time()
            self.handler.remember_recursive(event.cache_key, wire, now, tcp=event.tcp)
        return wire

    async def _update(self, query: dns.message.Message) -> bytes:
        response = dns.message.make_response(query)
        origin = query.question[0].name if query.question else None
        zone = self.catalog.authority.zones.get(origin) if origin else None
        key_name = query.keyname if query.had_tsig else None
        if zone is None or origin not in self.catalog.persisters:
            response.set_rcode(dns.rcode.NOTAUTH)
        elif key_name is None or not self.catalog.update_acl.allows("", key_name):
            # RFC 2136 §3.3 with RFC 8945: only a known key may change a zone.
            response.set_rcode(dns.rcode.REFUSED)
        else:
            async with self._update_lock:
                zone = self.catalog.authority.zones[origin]
                try:
                    new = apply_update(zone, query)
                except DnsError as exc:
                    response.set_rcode(dns.rcode.Rcode(exc.rcode))
                else:
                    if new is not zone:
                        change = diff(zone, new)
                        # RFC 2136 §3.5: durable before the reply.
                        await self.catalog.persisters[origin](new, change)
                        self.catalog.publish(new)
        return response.to_wire()

    async def _notify(self, query: dns.message.Message, client: str) -> bytes:
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        name = query.question[0].name if query.question else None
        accepted = False
        if name is not None and self.on_notify is not None:
            accepted = await self.on_notify(name, client)
        if not accepted:
            # RFC 1996 §4.7: NOTIFY for a zone we are no secondary of.
            response.set_rcode(dns.rcode.NOTAUTH)
        return response.to_wire()

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.server.datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("UDP error: %s", exc)


async def _send(writer: asyncio.StreamWriter, lock: asyncio.Lock, replies: list[bytes]) -> None:
    async with lock:
        for reply in replies:
            writer.write(struct.pack("!H", len(reply)) + reply)
        await writer.drain()


def _render_sequence(messages: list[dns.message.Message]) -> list[bytes]:
    """Render a multi-message reply, TSIG chained across the messages (RFC 8945 §5.3.1)."""
    out = []
    tsig_ctx = None
    for message in messages:
        out.append(message.to_wire(max_size=65535, multi=len(messages) > 1, tsig_ctx=tsig_ctx))
        tsig_ctx = message.tsig_ctx
    return out


async def serve_zones(
    zones: list[Zone],
    host: str,
    port: int = 0,
    *,
    limits: Limits | None = None,
) -> DnsServer:
    """An authoritative-only server for ``zones``, started (for the lab and tests)."""
    catalog = Catalog()
    for zone in zones:
        catalog.publish(zone)
    server = DnsServer(catalog, QueryHandler(catalog.authority), limits=limits)
    await server.start(host, port)
    return server


def describe(wire: bytes) -> str:
    """One line for a trace: ``query 4660 www.example. IN A +rd`` or a reply's gist."""
    try:
        message = dns.message.from_wire(wire, ignore_trailing=True, keyring=False)
    except Exception:
        return f"unparsable message ({len(wire)} octets)"
    question = message.question[0] if message.question else None
    asked = ""
    if question is not None:
        rdclass = dns.rdataclass.to_text(question.rdclass)
        asked = f" {question.name} {rdclass} {dns.rdatatype.to_text(question.rdtype)}"
    flags = dns.flags.to_text(message.flags).lower()
    if not message.flags & dns.flags.QR:
        opcode = dns.opcode.to_text(message.opcode()).lower()
        return f"{opcode} {message.id}{asked} [{flags}]"
    parts = []
    for rrset in message.answer[:4]:
        values = ", ".join(rdata.to_text() for rdata in list(rrset)[:3])
        parts.append(f"{rrset.name} {dns.rdatatype.to_text(rrset.rdtype)} {values}")
    if len(message.answer) > 4:
        parts.append(f"... {len(message.answer) - 4} more")
    if not message.answer and message.authority:
        rrset = message.authority[0]
        parts.append(f"authority {rrset.name} {dns.rdatatype.to_text(rrset.rdtype)}")
    rcode = dns.rcode.to_text(message.rcode())
    return f"{rcode} {message.id} [{flags}]" + (": " + "; ".join(parts) if parts else "")

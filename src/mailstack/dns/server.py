"""The DNS server's sockets: UDP and TCP (RFC 1035 §4.2, RFC 7766).

UDP datagrams go to ``QueryHandler`` and their replies through response rate
limiting (``ResponseRateLimiter``). TCP connections carry many length-prefixed
queries (RFC 7766 §6.2.1), answered as they complete, possibly out of order.
Each connection has an idle timeout and a write timeout (a client that does
not read its replies is cut off); connections are bounded in all and per
client address, and when either bound is reached the oldest idle connection
is closed to make room (RFC 7766 §6.2.3), so one client cannot shut others out.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import struct
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

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
    Recurse,
    ResponseRateLimiter,
    Transfer,
    Update,
    render,
)
from mailstack.dns.transfer import transfer_replies
from mailstack.dns.update import ReplayGuard, apply_update
from mailstack.dns.zone import Zone, diff
from mailstack.errors import DnsError
from mailstack.limits import Limits

log = logging.getLogger(__name__)

RecursiveAnswer = Callable[[dns.message.Message], Awaitable[dns.message.Message]]
NotifyHook = Callable[[dns.name.Name, str], Awaitable[bool]]
# (client, transport, query, replies, when the query came: seconds since the epoch)
ExchangeHook = Callable[[str, str, bytes, list[bytes], float], None]


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
        # Called with (client, transport, query, replies, received) when
        # tracing is on, once the replies are ready.
        self.on_exchange: ExchangeHook | None = None
        # Asked before a question no zone answers is resolved: True when the
        # zones changed since (a zone added by another process), so that the
        # question is answered from them instead.
        self.on_miss: Callable[[], Awaitable[bool]] | None = None
        self.bound: list[tuple[str, int]] = []
        limits = self.limits
        self.rrl = ResponseRateLimiter(
            limits.dns_rrl_rate,
            all_rate=limits.dns_udp_rate,
            slip=limits.dns_rrl_slip,
            leak=limits.dns_rrl_leak,
            ipv4_prefix=limits.dns_rrl_ipv4_prefix,
            ipv6_prefix=limits.dns_rrl_ipv6_prefix,
            table=limits.dns_rrl_table,
        )
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], _Connection] = {}
        self._per_client: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        self._update_lock = asyncio.Lock()
        self._replays = ReplayGuard(limits.dns_tsig_seen)
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
        now = asyncio.get_running_loop().time()
        try:
            event = self.handler.handle(wire, addr[0], now=now)
        except Exception:
            # A bug must cost one query, never the server (and never leak text).
            log.exception("DNS query from %s failed", addr[0])
            return
        if event is None:
            return
        received = time.time()
        if isinstance(event, bytes):
            self._send_udp(wire, [event], addr, now, received)
            return
        self._spawn(self._complete_udp(wire, event, addr, received))

    async def _complete_udp(
        self, wire: bytes, event: object, addr: tuple[str, int], received: float
    ) -> None:
        replies = await self.complete(event, addr[0])
        self._send_udp(wire, replies, addr, asyncio.get_running_loop().time(), received)

    def _send_udp(
        self,
        wire: bytes,
        replies: list[bytes],
        addr: tuple[str, int],
        now: float,
        received: float,
    ) -> None:
        sent = []
        for reply in replies:
            out = self.rrl.check(addr[0], reply, now)
            if out is not None:
                sent.append(out)
        if self.on_exchange is not None:
            self.on_exchange(addr[0], "udp", wire, sent, received)
        if self._udp is not None and not self._udp.is_closing():
            for reply in sent:
                self._udp.sendto(reply, addr)

    # -- TCP ----------------------------------------------------------------

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        client = writer.get_extra_info("peername")[0]
        owner = _client_of(client)
        if not self._make_room(owner):
            log.info("DNS TCP connection from %s refused: no idle connection to close", client)
            writer.close()
            return
        connection = _Connection(task, owner, writer, loop.time())
        self._connections[task] = connection
        self._per_client[owner] += 1
        limits = self.limits
        lock = asyncio.Lock()
        pending: set[asyncio.Task[None]] = set()
        try:
            while True:
                connection.last_active = loop.time()
                # RFC 7766 §6.2.3: idle connections are closed by the server.
                prefix = await asyncio.wait_for(reader.readexactly(2), limits.dns_tcp_idle_timeout)
                (length,) = struct.unpack("!H", prefix)
                if length < 12:
                    break
                wire = await asyncio.wait_for(
                    reader.readexactly(length), limits.dns_tcp_idle_timeout
                )
                now = loop.time()
                try:
                    event = self.handler.handle(wire, client, tcp=True, now=now)
                except Exception:
                    log.exception("DNS query from %s failed", client)
                    break
                if event is None:
                    continue
                if isinstance(event, bytes):
                    if self.on_exchange is not None:
                        self.on_exchange(client, "tcp", wire, [event], time.time())
                    await self._send_tcp(connection, lock, [event])
                    continue
                connection.busy += 1
                job = asyncio.create_task(
                    self._complete_tcp(wire, event, connection, lock, time.time())
                )
                pending.add(job)
                job.add_done_callback(pending.discard)
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            for job in pending:
                job.cancel()
            self._forget(connection)
            writer.close()

    def _make_room(self, owner: str) -> bool:
        """Room for one more connection from ``owner``: past its share or the
        total, the oldest idle connection (its own first) is closed (RFC 7766
        §6.2.3); with none idle, False."""
        limits = self.limits
        if self._per_client[owner] >= limits.dns_tcp_connections_per_client:
            if not self._close_oldest_idle(owner):
                return False
        if len(self._connections) >= limits.dns_tcp_connections:
            return self._close_oldest_idle(None)
        return True

    def _close_oldest_idle(self, owner: str | None) -> bool:
        idle = [
            c
            for c in self._connections.values()
            if not c.busy and (owner is None or c.owner == owner)
        ]
        if not idle:
            return False
        oldest = min(idle, key=lambda c: c.last_active)
        self._forget(oldest)
        oldest.writer.close()  # its reader sees the end and the session ends
        return True

    def _forget(self, connection: _Connection) -> None:
        if self._connections.pop(connection.task, None) is not None:
            self._per_client[connection.owner] -= 1
            if not self._per_client[connection.owner]:
                del self._per_client[connection.owner]

    async def _send_tcp(
        self, connection: _Connection, lock: asyncio.Lock, replies: list[bytes]
    ) -> None:
        """Write ``replies``; a client that does not take them within the write
        timeout loses its connection."""
        connection.busy += 1
        try:
            async with lock:
                for reply in replies:
                    connection.writer.write(struct.pack("!H", len(reply)) + reply)
                await asyncio.wait_for(connection.writer.drain(), self.limits.dns_tcp_write_timeout)
        except TimeoutError:
            connection.writer.transport.abort()  # replies it never read: drop them
            raise
        finally:
            connection.busy -= 1
            connection.last_active = asyncio.get_running_loop().time()

    async def _complete_tcp(
        self,
        wire: bytes,
        event: object,
        connection: _Connection,
        lock: asyncio.Lock,
        received: float,
    ) -> None:
        try:
            peer = connection.writer.get_extra_info("peername")[0]
            replies = await self.complete(event, peer, tcp=True)
            if self.on_exchange is not None:
                self.on_exchange(peer, "tcp", wire, replies, received)
            await self._send_tcp(connection, lock, replies)
        except (TimeoutError, ConnectionError):
            pass
        finally:
            connection.busy -= 1

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
            self.handler.remember_recursive(event.cache_key, wire, now)
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
        elif not self._replays.admit(query, time.time()):
            # RFC 8945 §5.2.3: a replayed request gets BADTIME, signed.
            log.warning("replayed UPDATE for %s signed by %s refused", origin, key_name)
            response = dns.message.make_response(query, tsig_error=dns.rcode.BADTIME)
            response.set_rcode(dns.rcode.NOTAUTH)
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


@dataclass(eq=False, slots=True)
class _Connection:
    """One DNS TCP connection: whose (``owner``), when it last did anything,
    how many of its replies are being made or written (``busy``: not idle)."""

    task: asyncio.Task[None]
    owner: str
    writer: asyncio.StreamWriter
    last_active: float
    busy: int = 0


def _client_of(address: str) -> str:
    """Whose connection this is: the IPv4 address, or the IPv6 /64 (one host's
    share of addresses)."""
    if ":" not in address:
        return address
    try:
        return str(ipaddress.ip_network(f"{address.partition('%')[0]}/64", strict=False))
    except ValueError:
        return address


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
    limits = limits or Limits()
    handler = QueryHandler(catalog.authority, reply_cache_bytes=limits.dns_reply_cache)
    server = DnsServer(catalog, handler, limits=limits)
    await server.start(host, port)
    return server


def message_text(wire: bytes) -> str:
    """The whole message in dig's presentation format (RFC 1035 §5 records),
    for a trace's detail."""
    try:
        return str(dns.message.from_wire(wire, ignore_trailing=True, keyring=False).to_text())
    except Exception:
        return f"unparsable message ({len(wire)} octets)"


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

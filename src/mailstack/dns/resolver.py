"""``Resolver``: the caching resolver the DNS service, the mail queue and the CLI share.

It drives ``resolution.Resolution`` (the algorithm) over the network: each
query from a fresh connected socket on a random port with a random ID, replies
accepted only from the address asked and only if they match the question (RFC
5452 §9.1), retried over TCP when truncated (RFC 7766 §5), and given up on
after a timeout so the next server of the zone is tried. The socket is
connected so that an ICMP error (port unreachable: ``ECONNREFUSED``) fails
that server at once instead of after the timeout. A resolution runs to its
end even when every asker has stopped waiting, so its failure is cached (RFC
9520) for the next asker.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import dns.zonefile

from mailstack.common.netguard import OutsideLoopback, check_destination
from mailstack.dns.cache import Cache
from mailstack.dns.resolution import (
    Ask,
    Done,
    Resolution,
    Result,
    Server,
    Step,
    not_resolvable,
)
from mailstack.errors import ConfigError, DnsError

# The root servers (https://www.iana.org/domains/root/servers). Only used when
# a configuration asks for real resolution; tests and the lab give their own.
ROOT_SERVERS = {
    "a": ("198.41.0.4", "2001:503:ba3e::2:30"),
    "b": ("170.247.170.2", "2801:1b8:10::b"),
    "c": ("192.33.4.12", "2001:500:2::c"),
    "d": ("199.7.91.13", "2001:500:2d::d"),
    "e": ("192.203.230.10", "2001:500:a8::e"),
    "f": ("192.5.5.241", "2001:500:2f::f"),
    "g": ("192.112.36.4", "2001:500:12::d0d"),
    "h": ("198.97.190.53", "2001:500:1::53"),
    "i": ("192.36.148.17", "2001:7fe::53"),
    "j": ("192.58.128.30", "2001:503:c27::2:30"),
    "k": ("193.0.14.129", "2001:7fd::1"),
    "l": ("199.7.83.42", "2001:500:9f::42"),
    "m": ("202.12.27.33", "2001:dc3::35"),
}


def default_root_hints() -> list[Server]:
    hints: list[Server] = []
    for letter, (v4, v6) in ROOT_SERVERS.items():
        name = dns.name.from_text(f"{letter}.root-servers.net.")
        hints += [(name, v4), (name, v6)]
    return hints


def parse_root_hints(text: str) -> list[Server]:
    """Root hints in the ``named.root`` form: ``.`` NS records and their addresses."""
    try:
        rrsets = dns.zonefile.read_rrsets(text, origin=dns.name.root, relativize=False)
    except dns.exception.DNSException as exc:
        raise ConfigError(f"root hints: {exc}") from exc
    names = [r.target for rrset in rrsets if rrset.rdtype == dns.rdatatype.NS for r in rrset]
    hints: list[Server] = []
    for name in names:
        for rrset in rrsets:
            if rrset.name == name and rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                hints += [(name, rdata.address) for rdata in rrset]
    if not hints:
        raise ConfigError("root hints: no root server with an address")
    return hints


def load_root_hints(path: Path) -> list[Server]:
    try:
        return parse_root_hints(path.read_text())
    except OSError as exc:
        raise ConfigError(f"root hints: cannot read {path}: {exc.strerror}") from exc


class ResolutionFailed(DnsError):
    """The name could not be resolved (SERVFAIL)."""

    def __init__(self, result: Result) -> None:
        super().__init__(
            result.rcode, f"resolution failed: {dns.rcode.to_text(dns.rcode.Rcode(result.rcode))}"
        )
        self.result = result


class Resolver:
    """Iterative from root hints, or forwarding to upstreams; with one cache."""

    @classmethod
    def from_settings(cls, settings: Any, data_dir: Path) -> Resolver:
        """A resolver as `[dns.resolver]` describes it (root hints relative to
        the data directory; the real root servers when none are named)."""
        if settings.root_hints:
            path = Path(settings.root_hints)
            hints = load_root_hints(path if path.is_absolute() else data_dir / path)
        else:
            hints = default_root_hints()
        return cls(
            root_hints=hints,
            forwarders=list(settings.forwarders),
            cache=Cache(
                settings.cache_bytes,
                max_entries=settings.cache_size,
                failure_ttl=settings.failure_ttl,
                failure_max_ttl=settings.failure_max_ttl,
            ),
            port=settings.port,
            qname_minimisation=settings.qname_minimisation,
            timeout=settings.timeout,
            source=settings.source or None,
        )

    def __init__(
        self,
        *,
        root_hints: list[Server] | None = None,
        forwarders: list[tuple[str, int]] | None = None,
        cache: Cache | None = None,
        port: int = 53,
        qname_minimisation: bool = True,
        timeout: float = 1.5,
        clock: Callable[[], float] = time.monotonic,
        source: str | None = None,
    ) -> None:
        self.root_hints = root_hints if root_hints is not None else default_root_hints()
        self.forwarders = [host for host, _ in forwarders or []]
        # A forwarder may listen on its own port; everything else on ``port``.
        self._ports = {host: number for host, number in forwarders or []}
        self.cache = cache if cache is not None else Cache()
        self.port = port
        self.qname_minimisation = qname_minimisation
        self.timeout = timeout
        self.clock = clock
        # The local address queries leave from (a server on one address of
        # several answers its peers from it, as BIND's query-source does).
        self.source = source
        self._rng = random.SystemRandom()
        self._inflight: dict[tuple[dns.name.Name, int], asyncio.Task[Result]] = {}

    async def resolve(
        self,
        name: dns.name.Name | str,
        rdtype: int | str = dns.rdatatype.A,
        *,
        trace: list[Step] | None = None,
    ) -> Result:
        """The answer chain for name/rdtype (NXDOMAIN and NODATA are results too)."""
        qname = dns.name.from_text(name) if isinstance(name, str) else name
        qtype = dns.rdatatype.from_text(rdtype) if isinstance(rdtype, str) else rdtype
        refused = not_resolvable(qtype)
        if refused is not None:
            return Result(refused)  # RFC 6895 §3.1: never asked of anyone
        if trace is not None:
            return await self._run(qname, qtype, trace)
        key = (qname, qtype)
        task = self._inflight.get(key)
        if task is None:
            # One resolution serves every concurrent asker of the question, and
            # finishes (caching what it learns) even if they all stop waiting.
            task = asyncio.ensure_future(self._run(qname, qtype, None))
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        return await asyncio.shield(task)

    def _finished(self, key: tuple[dns.name.Name, int], task: asyncio.Task[Result]) -> None:
        del self._inflight[key]
        if not task.cancelled():
            task.exception()  # retrieved: an asker that left must not leave it unseen

    async def _run(self, qname: dns.name.Name, qtype: int, trace: list[Step] | None) -> Result:
        resolution = Resolution(
            qname,
            qtype,
            self.cache,
            self.root_hints,
            self.clock(),
            forwarders=self.forwarders,
            qname_minimisation=self.qname_minimisation,
            rng=self._rng,
            trace=trace,
        )
        while True:
            step = resolution.next(self.clock())
            if isinstance(step, Done):
                return step.result
            before = len(resolution.trace)
            started = self.clock()
            try:
                response = await self._exchange(step)
            except (OSError, TimeoutError, dns.exception.DNSException, OutsideLoopback) as exc:
                resolution.on_failure(step, _reason(exc), self.clock())
            else:
                resolution.on_response(step, response, self.clock())
            elapsed = self.clock() - started
            for record in resolution.trace[before:]:
                record.elapsed = elapsed

    async def _exchange(self, ask: Ask) -> dns.message.Message:
        check_destination(ask.address)
        query = ask.message()
        port = self._ports.get(ask.address, self.port)
        response = await udp_exchange(query, ask.address, port, self.timeout, self.source)
        if response.flags & dns.flags.TC:
            # RFC 7766 §5: a truncated UDP reply is retried over TCP.
            return await dns.asyncquery.tcp(
                query, ask.address, timeout=self.timeout, port=port, source=self.source
            )
        return response

    # -- conveniences --------------------------------------------------------------

    async def resolve_message(self, query: dns.message.Message) -> dns.message.Message:
        """The recursive service's reply to a client's query (RFC 1034 §4.3.1)."""
        question = query.question[0]
        response = dns.message.make_response(query, recursion_available=True)
        result = await self.resolve(question.name, question.rdtype)
        response.set_rcode(dns.rcode.Rcode(result.rcode))
        response.answer = result.answer
        response.authority = result.authority
        return response

    async def pass_on(self, query: dns.message.Message, servers: list[str]) -> dns.message.Message:
        """The reply to a client's query from the first of ``servers`` that
        answers it, asked with recursion desired (RFC 1034 §4.3.1: a server
        in recursive mode may pass the request on); SERVFAIL when none does."""
        question = query.question[0]
        upstream = dns.message.make_query(question.name, question.rdtype, use_edns=0)
        response = dns.message.make_response(query, recursion_available=True)
        for address in servers:
            try:
                check_destination(address)
                reply = await udp_exchange(upstream, address, self.port, self.timeout, self.source)
            except (OSError, TimeoutError, dns.exception.DNSException, OutsideLoopback):
                continue
            if reply.flags & dns.flags.TC:
                continue
            response.set_rcode(reply.rcode())
            response.answer = reply.answer
            response.authority = reply.authority
            return response
        response.set_rcode(dns.rcode.SERVFAIL)
        return response

    async def mx(self, domain: dns.name.Name | str) -> list[tuple[int, dns.name.Name]]:
        """MX hosts by preference (RFC 5321 §5.1); [] for a null MX (RFC 7505).

        Without MX records the domain itself is the implicit MX (RFC 5321
        §5.1); NXDOMAIN raises ``DnsError``.
        """
        qname = dns.name.from_text(domain) if isinstance(domain, str) else domain
        result = await self.resolve(qname, dns.rdatatype.MX)
        _raise_for(result)
        records = [
            (rdata.preference, rdata.exchange)
            for rrset in result.answer
            if rrset.rdtype == dns.rdatatype.MX
            for rdata in rrset
        ]
        if not records:
            return [(0, qname)]
        if len(records) == 1 and records[0][1] == dns.name.root:
            return []
        self._rng.shuffle(records)  # RFC 5321 §5.1: equal preferences in random order
        return sorted(records, key=lambda record: record[0])

    async def addresses(self, host: dns.name.Name | str) -> list[str]:
        """IPv6 and IPv4 addresses of a host (AAAA first, RFC 6724 style)."""
        out: list[str] = []
        for rdtype in (dns.rdatatype.AAAA, dns.rdatatype.A):
            result = await self.resolve(host, rdtype)
            if result.rcode == dns.rcode.NXDOMAIN:
                return []
            _raise_for(result)
            out += [r.address for rrset in result.answer if rrset.rdtype == rdtype for r in rrset]
        return out


class _Exchange(asyncio.DatagramProtocol):
    """One query over a connected UDP socket: the first reply that answers it
    (RFC 5452 §9.1: same ID and question; anything else is ignored), or the
    ICMP error the kernel reports for the socket."""

    def __init__(self, query: dns.message.Message) -> None:
        self.query = query
        self.reply: asyncio.Future[dns.message.Message] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.reply.done():
            return
        try:
            message = dns.message.from_wire(data, ignore_trailing=True)
        except dns.exception.DNSException:
            return
        if self.query.is_response(message):
            self.reply.set_result(message)

    def error_received(self, exc: Exception) -> None:
        if not self.reply.done():
            self.reply.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.reply.done():
            self.reply.set_exception(exc or ConnectionError("socket closed"))


async def udp_exchange(
    query: dns.message.Message,
    address: str,
    port: int,
    timeout: float,
    source: str | None = None,
) -> dns.message.Message:
    """Send ``query`` to address:port over UDP (from ``source`` when given);
    its reply, ``TimeoutError``, or at once ``ConnectionRefusedError`` when
    the host says nobody listens."""
    loop = asyncio.get_running_loop()
    transport, exchange = await loop.create_datagram_endpoint(
        lambda: _Exchange(query),
        remote_addr=(address, port),
        local_addr=(source, 0) if source else None,
    )
    try:
        transport.sendto(query.to_wire())
        return await asyncio.wait_for(exchange.reply, timeout)
    finally:
        transport.close()
        if not exchange.reply.done():
            exchange.reply.cancel()


def _raise_for(result: Result) -> None:
    if result.rcode == dns.rcode.NXDOMAIN:
        raise DnsError(dns.rcode.NXDOMAIN, "no such domain")
    if result.rcode != dns.rcode.NOERROR:
        raise ResolutionFailed(result)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | dns.exception.Timeout):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "refused (ICMP port unreachable)"
    return type(exc).__name__

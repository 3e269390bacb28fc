"""Where the user agent connects: servers given, found by SRV (RFC 6186), or by MX.

An `Endpoint` is a server by name (what TLS verifies and what messages say)
with the addresses to connect to and the kind of TLS it speaks. They come
from three places:

* `--server`/`--imap`/`--pop3 HOST:PORT` (`endpoint`);
* the SRV records of the user's domain (`by_srv`): RFC 6186 §3.1 services
  (``_submission._tcp``, ``_imap._tcp``, ``_pop3._tcp``) and RFC 8314 §5.1
  ones with implicit TLS (``_submissions._tcp``, ``_imaps._tcp``,
  ``_pop3s._tcp``), which §5.1 says to prefer; each set in RFC 2782 order
  (lowest priority first, weighted random within a priority); a target of
  "." means the service is not offered (RFC 6186 §3.4);
* the recipient domain's MX hosts for `--direct` (`by_mx`, the queue's
  RFC 5321 §5.1 routing).

Names are resolved through mailstack's own `Resolver` forwarding to one DNS
server (the `--dns` one, or the node's), never the system's resolver.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

import dns.exception
import dns.rcode
import dns.rdatatype

from mailstack.dns.resolver import Resolver
from mailstack.errors import DnsError, MailstackError
from mailstack.queue.routing import route

__all__ = [
    "DiscoveryError",
    "Endpoint",
    "TlsMode",
    "by_mx",
    "by_srv",
    "endpoint",
    "parse_host_port",
    "resolver_for",
]

# "opportunistic" is a sending server's STARTTLS (RFC 7435): used when the
# peer offers it, its certificate unchecked; the others are what a user asks.
TlsMode = Literal["starttls", "implicit", "none", "opportunistic"]

# RFC 8314 §5.1 first (implicit TLS), then RFC 6186 §3.1 (STARTTLS).
SRV_LABELS: dict[str, tuple[tuple[str, TlsMode], ...]] = {
    "submission": (("_submissions._tcp", "implicit"), ("_submission._tcp", "starttls")),
    "imap": (("_imaps._tcp", "implicit"), ("_imap._tcp", "starttls")),
    "pop3": (("_pop3s._tcp", "implicit"), ("_pop3._tcp", "starttls")),
}
# Ports where a service speaks TLS from the first octet (RFC 8314 §7).
IMPLICIT_TLS_PORTS = frozenset({465, 993, 995})
DNS_TIMEOUT = 3.0


class DiscoveryError(MailstackError):
    """No server could be found."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    addresses: tuple[str, ...]
    port: int
    tls: TlsMode

    def __str__(self) -> str:
        return f"{self.name}:{self.port}"


def parse_host_port(value: str, option: str, default_port: int | None = None) -> tuple[str, int]:
    """``HOST:PORT``, ``[IPv6]:PORT`` or, with a default port, ``HOST``."""
    host, port_text = value, ""
    if value.startswith("["):
        host, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise MailstackError(f"{option} {value!r}: expected HOST:PORT")
        port_text = rest[1:]
    elif value.count(":") == 1:
        host, _, port_text = value.partition(":")
    if not port_text and default_port is not None:
        port_text = str(default_port)
    if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise MailstackError(f"{option} {value!r}: expected HOST:PORT")
    return host, int(port_text)


def endpoint(value: str, option: str, tls: TlsMode | None, default_port: int) -> Endpoint:
    """A server the user named; without ``tls``, implicit on the RFC 8314 ports."""
    host, port = parse_host_port(value, option, default_port)
    mode: TlsMode = tls or ("implicit" if port in IMPLICIT_TLS_PORTS else "starttls")
    return Endpoint(host, (host,), port, mode)


def resolver_for(server: tuple[str, int]) -> Resolver:
    """A resolver that asks only ``server`` (no root hints: nothing beyond it)."""
    return Resolver(root_hints=[], forwarders=[server], timeout=DNS_TIMEOUT)


def _rfc2782_order(
    records: list[tuple[int, int, int, str]], rng: random.Random
) -> list[tuple[int, int, int, str]]:
    """RFC 2782: by priority; within one, a weighted random draw, repeatedly."""
    ordered: list[tuple[int, int, int, str]] = []
    for priority in sorted({r[0] for r in records}):
        group = [r for r in records if r[0] == priority]
        while group:
            total = sum(r[1] for r in group)
            pick = rng.uniform(0, total) if total else 0
            running = 0
            for record in group:
                running += record[1]
                if running >= pick:
                    break
            group.remove(record)
            ordered.append(record)
    return ordered


async def _addresses(resolver: Resolver, host: str, what: str) -> tuple[str, ...]:
    try:
        return tuple(await resolver.addresses(host))
    except (DnsError, OSError, TimeoutError, dns.exception.DNSException) as exc:
        raise DiscoveryError(f"{what}: cannot resolve {host}: {exc}") from None


async def by_srv(
    service: Literal["submission", "imap", "pop3"],
    domain: str,
    resolver: Resolver,
    *,
    rng: random.Random | None = None,
) -> list[Endpoint]:
    """The servers of ``domain`` for ``service``, in the order to try them."""
    rng = rng or random.Random()
    found: list[Endpoint] = []
    for label, tls in SRV_LABELS[service]:
        qname = f"{label}.{domain}"
        try:
            result = await resolver.resolve(qname, dns.rdatatype.SRV)
        except (OSError, TimeoutError, dns.exception.DNSException) as exc:
            raise DiscoveryError(f"cannot look up {qname}: {exc}") from None
        if result.rcode == dns.rcode.SERVFAIL:
            raise DiscoveryError(f"cannot look up {qname}: the DNS server gave no answer")
        records = [
            (rdata.priority, rdata.weight, rdata.port, rdata.target.to_text(omit_final_dot=True))
            for rrset in result.answer
            if rrset.rdtype == dns.rdatatype.SRV
            for rdata in rrset
        ]
        for _priority, _weight, port, target in _rfc2782_order(records, rng):
            if target in ("", "."):
                continue  # RFC 6186 §3.4: "not available"
            addresses = await _addresses(resolver, target, qname)
            if addresses:
                found.append(Endpoint(target, addresses, port, tls))
    if not found:
        names = " or ".join(f"{label}.{domain}" for label, _ in SRV_LABELS[service])
        raise DiscoveryError(f"no {service} server found for {domain} (no SRV record {names})")
    return found


async def by_mx(domain: str, resolver: Resolver, port: int, tls: TlsMode) -> list[Endpoint]:
    """The mail exchangers of ``domain`` (RFC 5321 §5.1); `RouteError` says
    why there are none, with the status a sending server would give."""
    hosts = await route(domain, resolver)
    return [Endpoint(host.name, host.addresses, port, tls) for host in hosts]

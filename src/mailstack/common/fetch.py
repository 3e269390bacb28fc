"""Fetches the node makes on someone else's say-so: an MTA-STS policy, a
TLS-RPT upload, a remote image for the webmail, a push URL.

No SSRF: the host's addresses come from the node's resolver (never the
system's) or are the address literal given; only public addresses are used,
or those inside networks the configuration allows, so a name that resolves
inside the node's network cannot reach it. The connection goes to an
address that was checked (a rebinding name gets no second lookup), TLS is
verified (the system's CA bundle, ``SSL_CERT_FILE`` honoured, or a given
one), no cookie is kept or sent, and the caller follows no redirect unless
it checks the next hop the same way.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from mailstack.common.netguard import OutsideLoopback, check_destination
from mailstack.errors import MailstackError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Refused(MailstackError):
    """A destination we will not fetch from; the text says why (safe to show)."""


def allowed(address: str, allow: Iterable[Network] = ()) -> bool:
    """A global (public) address, or one inside a network ``allow`` names;
    private, loopback, link-local, multicast and reserved ones are not."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0].strip("[]"))
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip in network for network in allow):
        return True
    return ip.is_global and not ip.is_multicast


def networks(texts: Iterable[str]) -> list[Network]:
    """Networks from configuration text (``127.0.0.0/8``, ``::1``)."""
    return [ipaddress.ip_network(text, strict=False) for text in texts]


async def usable_addresses(
    host: str,
    resolve: Callable[[str], Awaitable[list[str]]],
    allow: Sequence[Network] = (),
) -> list[str]:
    """The addresses of ``host`` a fetch may connect to; Refused when none."""
    try:
        found = [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        try:
            found = await resolve(host)
        except Exception:  # noqa: BLE001 (any failure to resolve is a refusal)
            raise Refused(f"{host} does not resolve") from None
    usable = []
    for address in found:
        if not allowed(address, allow):
            continue
        try:
            check_destination(address)
        except OutsideLoopback:
            continue
        usable.append(address)
    if not usable:
        why = "has no address" if not found else "is on a network we may not fetch from"
        raise Refused(f"{host} {why}")
    return usable


class PinnedResolver(AbstractResolver):
    """aiohttp's resolver answering with addresses already checked."""

    def __init__(self, addresses: Sequence[str]) -> None:
        self.addresses = list(addresses)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in self.addresses
        ]

    async def close(self) -> None:
        return None


def session(
    addresses: Sequence[str], *, ca_file: str = "", timeout: float = 30.0
) -> aiohttp.ClientSession:
    """A client session that connects only to ``addresses``, verifies TLS
    and keeps no cookies."""
    context = ssl.create_default_context(cafile=ca_file or None)
    connector = aiohttp.TCPConnector(
        resolver=PinnedResolver(addresses), ssl=context, use_dns_cache=False
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout),
        cookie_jar=aiohttp.DummyCookieJar(),
    )

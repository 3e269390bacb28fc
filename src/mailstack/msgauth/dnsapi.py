"""The DNS questions SPF, DKIM and DMARC ask, as a small Protocol.

The checks take an ``AuthResolver`` as an argument (ARCHITECTURE rule 3), so
unit tests pass a dictionary-backed fake and the MX passes
``ResolverAdapter`` around the node's caching resolver (`dns/resolver.py`).

Both "no such name" (NXDOMAIN) and "no records of that type" (NODATA) come
back as an empty list: RFC 7208 §4.6.4 counts both as void lookups and none of
the three protocols tells them apart otherwise. A server failure or a
timeout raises ``DnsTempError``, which each protocol turns into its
``temperror`` result (RFC 7208 §2.6.6, RFC 6376 §6.1.2, RFC 7489 §6.6.3),
saying only its ``problem`` (our words) in Authentication-Results.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

import dns.exception
import dns.name
import dns.rcode
import dns.rdatatype
import dns.reversename

from mailstack.errors import MailstackError


class DnsTempError(MailstackError):
    """A DNS lookup failed for a reason that may go away (timeout, SERVFAIL).

    The message is for the log and may quote a library; ``problem`` is the
    fixed phrase a stored Authentication-Results comment may carry.
    """

    def __init__(self, detail: str, problem: str = "DNS lookup failed") -> None:
        super().__init__(detail)
        self.problem = problem


class AuthResolver(Protocol):
    async def txt(self, name: str) -> list[str]:
        """TXT records at ``name``, each record's strings joined (RFC 7208 §3.3)."""
        ...

    async def a(self, name: str) -> list[str]: ...

    async def aaaa(self, name: str) -> list[str]: ...

    async def mx(self, name: str) -> list[tuple[int, str]]:
        """(preference, exchange) pairs; exchange names without the trailing dot."""
        ...

    async def ptr(self, address: str) -> list[str]:
        """Names of ``address`` (an IPv4 or IPv6 address in text form)."""
        ...


def _text(name: dns.name.Name) -> str:
    return name.to_text(omit_final_dot=True)


class ResolverAdapter:
    """``AuthResolver`` over mailstack's ``dns.resolver.Resolver``, with a time limit.

    Every question is bounded by ``timeout`` seconds so a slow or broken
    name server never makes the MX hang: past it the lookup is a temperror.
    """

    def __init__(self, resolver: Any, *, timeout: float = 5.0) -> None:
        self.resolver = resolver
        self.timeout = timeout

    async def _records(
        self, name: str | dns.name.Name, rdtype: dns.rdatatype.RdataType
    ) -> list[Any]:
        try:
            qname = dns.name.from_text(name) if isinstance(name, str) else name
        except dns.exception.DNSException:
            return []
        try:
            result = await asyncio.wait_for(self.resolver.resolve(qname, rdtype), self.timeout)
        except (TimeoutError, dns.exception.Timeout) as exc:
            question = f"{name}/{dns.rdatatype.to_text(rdtype)}"
            raise DnsTempError(f"{question}: {exc!r}", "DNS lookup timed out") from None
        except (OSError, dns.exception.DNSException) as exc:
            raise DnsTempError(f"{name}/{dns.rdatatype.to_text(rdtype)}: {exc!r}") from None
        if result.rcode == dns.rcode.NXDOMAIN:
            return []
        if result.rcode != dns.rcode.NOERROR:
            rcode = dns.rcode.to_text(result.rcode)
            question = f"{name}/{dns.rdatatype.to_text(rdtype)}"
            raise DnsTempError(f"{question}: rcode {rcode}", f"DNS server answered {rcode}")
        return [rdata for rrset in result.answer if rrset.rdtype == rdtype for rdata in rrset]

    async def txt(self, name: str) -> list[str]:
        records = await self._records(name, dns.rdatatype.TXT)
        return [b"".join(r.strings).decode("utf-8", "replace") for r in records]

    async def a(self, name: str) -> list[str]:
        return [r.address for r in await self._records(name, dns.rdatatype.A)]

    async def aaaa(self, name: str) -> list[str]:
        return [r.address for r in await self._records(name, dns.rdatatype.AAAA)]

    async def mx(self, name: str) -> list[tuple[int, str]]:
        records = await self._records(name, dns.rdatatype.MX)
        return [(r.preference, _text(r.exchange)) for r in records]

    async def ptr(self, address: str) -> list[str]:
        try:
            qname = dns.reversename.from_address(address)
        except (dns.exception.DNSException, ValueError):
            return []
        return [_text(r.target) for r in await self._records(qname, dns.rdatatype.PTR)]

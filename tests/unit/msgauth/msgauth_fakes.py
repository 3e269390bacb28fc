"""A dictionary-backed ``AuthResolver`` for the SPF, DKIM and DMARC tests, and
a table-backed stand-in for mailstack's Resolver under ``ResolverAdapter``."""

from __future__ import annotations

import asyncio

import dns.name
import dns.rcode
import dns.rdatatype

from mailstack.dns.resolution import Result
from mailstack.msgauth.dnsapi import DnsTempError


class FakeResolver:
    """Records by (lowercase name, type); names in ``failing`` raise temperror.

    ``txt`` values are strings, ``a``/``aaaa``/``ptr`` strings, ``mx``
    (preference, exchange) pairs. Every question asked is kept in ``asked``.
    """

    def __init__(
        self,
        records: dict[tuple[str, str], list] | None = None,
        failing: set[str] | None = None,
    ) -> None:
        self.records: dict[tuple[str, str], list] = {}
        for (name, rdtype), values in (records or {}).items():
            self.add(name, rdtype, *values)
        self.failing = {name.lower().rstrip(".") for name in failing or ()}
        self.asked: list[tuple[str, str]] = []

    def add(self, name: str, rdtype: str, *values: object) -> None:
        key = (name.lower().rstrip("."), rdtype.upper())
        self.records.setdefault(key, []).extend(values)

    def _get(self, name: str, rdtype: str) -> list:
        key = (name.lower().rstrip("."), rdtype)
        self.asked.append(key)
        if key[0] in self.failing:
            # A library's words in the message; ours in ``problem``.
            raise DnsTempError(
                f"{name}: Timeout('The DNS operation timed out')", "DNS lookup timed out"
            )
        return list(self.records.get(key, []))

    async def txt(self, name: str) -> list[str]:
        return self._get(name, "TXT")

    async def a(self, name: str) -> list[str]:
        return self._get(name, "A")

    async def aaaa(self, name: str) -> list[str]:
        return self._get(name, "AAAA")

    async def mx(self, name: str) -> list[tuple[int, str]]:
        return self._get(name, "MX")

    async def ptr(self, address: str) -> list[str]:
        return self._get(address, "PTR")


class TableResolver:
    """Answers `resolve()` the way mailstack's Resolver does, from a table."""

    def __init__(self, answers: dict[tuple[str, str], Result], hang: bool = False) -> None:
        self.answers = answers
        self.hang = hang

    async def resolve(self, name: dns.name.Name, rdtype: int) -> Result:
        if self.hang:
            await asyncio.sleep(30)
        key = (name.to_text(), dns.rdatatype.to_text(rdtype))
        return self.answers.get(key, Result(dns.rcode.NXDOMAIN))

"""ResolverAdapter over mailstack's resolver results, and the MX's InboundChecker."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
from msgauth_fakes import FakeResolver, TableResolver

from mailstack.dns.resolution import Result
from mailstack.limits import Limits
from mailstack.msgauth import check
from mailstack.msgauth.dnsapi import DnsTempError, ResolverAdapter


def answer(name: str, rdtype: str, *values: str) -> Result:
    return Result(dns.rcode.NOERROR, [dns.rrset.from_text(name, 300, "IN", rdtype, *values)])


async def test_adapter_answers() -> None:
    adapter = ResolverAdapter(
        TableResolver(
            {
                ("crepes.fr.", "TXT"): answer("crepes.fr.", "TXT", '"v=spf1 " "mx -all"'),
                ("crepes.fr.", "MX"): answer("crepes.fr.", "MX", "10 mail.crepes.fr."),
                ("mail.crepes.fr.", "A"): answer("mail.crepes.fr.", "A", "192.0.2.1"),
                ("mail.crepes.fr.", "AAAA"): answer("mail.crepes.fr.", "AAAA", "2001:db8::1"),
                ("1.2.0.192.in-addr.arpa.", "PTR"): answer(
                    "1.2.0.192.in-addr.arpa.", "PTR", "mail.crepes.fr."
                ),
            }
        )
    )
    assert await adapter.txt("crepes.fr") == ["v=spf1 mx -all"]  # strings joined
    assert await adapter.mx("crepes.fr") == [(10, "mail.crepes.fr")]
    assert await adapter.a("mail.crepes.fr") == ["192.0.2.1"]
    assert await adapter.aaaa("mail.crepes.fr") == ["2001:db8::1"]
    assert await adapter.ptr("192.0.2.1") == ["mail.crepes.fr"]
    assert await adapter.txt("nowhere.example") == []  # NXDOMAIN
    assert await adapter.txt("bad..name") == []


async def test_adapter_failures_are_temperrors() -> None:
    servfail = ResolverAdapter(TableResolver({("crepes.fr.", "TXT"): Result(dns.rcode.SERVFAIL)}))
    with pytest.raises(DnsTempError):
        await servfail.txt("crepes.fr")
    hanging = ResolverAdapter(TableResolver({}, hang=True), timeout=0.01)
    with pytest.raises(DnsTempError):
        await asyncio.wait_for(hanging.a("crepes.fr"), 5)


def fake_node(resolver=None) -> SimpleNamespace:
    return SimpleNamespace(
        limits=Limits(), resolver=resolver, resolver_configured=resolver is not None
    )


FORGED = b"Authentication-Results: mx.test; spf=pass\r\nFrom: a@crepes.fr\r\n\r\nhi\r\n"


async def test_checker_off_changes_nothing() -> None:
    checker = check.InboundChecker(fake_node(), mode="off", authserv_id="mx.test")
    inbound = await checker.check(FORGED, client_ip="192.0.2.1", helo="h", mail_from="a@crepes.fr")
    assert (inbound.message, inbound.header, inbound.action) == (FORGED, b"", "accept")


async def test_checker_without_resolver_only_strips_forgeries() -> None:
    checker = check.InboundChecker(fake_node(), mode="enforce", authserv_id="mx.test")
    inbound = await checker.check(FORGED, client_ip="192.0.2.1", helo="h", mail_from="a@crepes.fr")
    assert inbound.message == b"From: a@crepes.fr\r\n\r\nhi\r\n" and inbound.header == b""
    assert inbound.summary() == "message authentication: not checked"


async def test_checker_uses_the_nodes_resolver() -> None:
    resolver = TableResolver(
        {("crepes.fr.", "TXT"): answer("crepes.fr.", "TXT", '"v=spf1 ip4:192.0.2.0/24 -all"')}
    )
    checker = check.InboundChecker(fake_node(resolver), mode="record", authserv_id="mx.test")
    inbound = await checker.check(FORGED, client_ip="192.0.2.1", helo="h", mail_from="a@crepes.fr")
    assert inbound.header.startswith(b"Authentication-Results: mx.test;\r\n\tspf=pass")
    assert "spf=pass dkim=none dmarc=none action=accept" in inbound.summary()


async def test_fake_resolver_records_questions() -> None:
    fake = FakeResolver({("a.example", "A"): ["192.0.2.1"]})
    assert await fake.a("A.example.") == ["192.0.2.1"]
    assert fake.asked == [("a.example", "A")]

"""The Authentication-Results field and the inbound check as a whole."""

from __future__ import annotations

import asyncio
import email

from msgauth_fakes import FakeResolver

from mailstack.msgauth import check, dkim, keys, results
from mailstack.msgauth.dkim import DkimResult
from mailstack.msgauth.dmarc import DmarcResult
from mailstack.msgauth.spf import SpfResult

MESSAGE = b"From: Alice <alice@crepes.fr>\r\nTo: bob@hamburger.edu\r\nSubject: hi\r\n\r\nsalut\r\n"


def test_header_lists_every_method() -> None:
    field = results.header(
        "mx.hamburger.edu",
        spf=SpfResult("pass", "crepes.fr"),
        spf_identity="alice@crepes.fr",
        helo="mail.crepes.fr",
        dkim=[DkimResult("pass", "crepes.fr", "s1-rsa", "rsa-sha256", "abcdefgh")],
        dmarc=DmarcResult("pass", "crepes.fr", "reject", "none"),
    )
    assert field.endswith(b"\r\n") and b"\n\t" in field
    parsed = email.message_from_bytes(field + b"\r\n")
    value = " ".join(parsed["Authentication-Results"].split())
    assert value == (
        "mx.hamburger.edu; spf=pass smtp.mailfrom=alice@crepes.fr smtp.helo=mail.crepes.fr;"
        " dkim=pass header.d=crepes.fr header.s=s1-rsa header.a=rsa-sha256 header.b=abcdefgh;"
        " dmarc=pass (p=reject dis=none) header.from=crepes.fr"
    )


def test_header_quotes_odd_values_and_says_none() -> None:
    field = results.header("mx", spf=SpfResult("fail", "x"), spf_identity='we"ird@x y')
    assert b'smtp.mailfrom="we\\"ird@x y"' in field and b"dkim=none" in field
    assert results.header("mx") == b"Authentication-Results: mx;\r\n\tnone\r\n"


def test_strip_ours_keeps_others() -> None:
    forged = (
        b"Authentication-Results: MX.hamburger.edu;\r\n\tspf=pass\r\n"
        b"Authentication-Results: other.example; dkim=fail\r\n"
        b"Authentication-Results: (comment) mx.hamburger.edu; dmarc=pass\r\n"
    )
    stripped = results.strip_ours(forged + MESSAGE, "mx.hamburger.edu")
    assert stripped == b"Authentication-Results: other.example; dkim=fail\r\n" + MESSAGE
    assert results.strip_ours(MESSAGE, "mx.hamburger.edu") is MESSAGE


def world() -> tuple[FakeResolver, list]:
    pair = keys.new_keys("crepes.fr", "t")
    resolver = FakeResolver(
        {
            ("crepes.fr", "TXT"): ["v=spf1 ip4:127.0.0.2 -all"],
            ("_dmarc.crepes.fr", "TXT"): ["v=DMARC1; p=reject"],
        }
    )
    for key in pair:
        resolver.add(keys.txt_owner(key), "TXT", keys.txt_value(key))
    return resolver, pair


async def run(message: bytes, ip: str, resolver, *, enforce: bool = True, **kw):
    return await check.check_inbound(
        message,
        client_ip=ip,
        helo="mail.crepes.fr",
        mail_from="alice@crepes.fr",
        resolver=resolver,
        authserv_id="mx.hamburger.edu",
        enforce=enforce,
        **kw,
    )


async def test_inbound_pass() -> None:
    resolver, pair = world()
    signed = dkim.sign_with(MESSAGE, pair) + MESSAGE
    verdict = await run(signed, "127.0.0.2", resolver)
    assert verdict.action == "accept"
    assert (verdict.spf.result, [r.result for r in verdict.dkim], verdict.dmarc.result) == (
        "pass",
        ["pass", "pass"],
        "pass",
    )
    assert b"spf=pass" in verdict.header and b"dmarc=pass" in verdict.header


async def test_inbound_forgery_rejected_only_when_enforcing() -> None:
    resolver, _ = world()
    verdict = await run(MESSAGE, "127.0.0.66", resolver)
    assert (verdict.spf.result, verdict.dmarc.result, verdict.action) == ("fail", "fail", "reject")
    recorded = await run(MESSAGE, "127.0.0.66", resolver, enforce=False)
    assert recorded.action == "accept" and b"spf=fail" in recorded.header


class SlowResolver(FakeResolver):
    async def txt(self, name: str) -> list[str]:
        await asyncio.sleep(30)
        return []


async def test_a_hanging_resolver_gives_temperror_not_a_hang() -> None:
    verdict = await asyncio.wait_for(run(MESSAGE, "127.0.0.2", SlowResolver(), deadline=0.05), 5)
    assert verdict.spf.result == "temperror" and verdict.dmarc.result == "temperror"
    assert verdict.action == "accept"

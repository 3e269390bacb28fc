"""SPF behaviour beyond the openspf suite: RFC 7208 examples and our MX's use."""

from __future__ import annotations

import pytest
from msgauth_fakes import FakeResolver

from mailstack.msgauth import spf


def crepes() -> FakeResolver:
    return FakeResolver(
        {
            ("crepes.fr", "TXT"): ["v=spf1 mx -all", "google-site-verification=x"],
            ("crepes.fr", "MX"): [(10, "mail.crepes.fr")],
            ("mail.crepes.fr", "A"): ["127.0.0.2"],
            ("mail.crepes.fr", "AAAA"): ["2001:db8::2"],
        }
    )


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("127.0.0.2", "pass"),
        ("127.0.0.3", "fail"),
        ("2001:db8::2", "pass"),
        ("::ffff:127.0.0.2", "pass"),
    ],
)
async def test_mx_all(ip: str, expected: str) -> None:
    result = await spf.check_host(ip, "crepes.fr", "alice@crepes.fr", crepes())
    assert result.result == expected
    assert result.mechanism == ("mx" if expected == "pass" else "-all")


async def test_no_record_is_none_and_dns_failure_is_temperror() -> None:
    assert (
        await spf.check_host("1.2.3.4", "none.example", "a@none.example", FakeResolver())
    ).result == "none"
    failing = FakeResolver(failing={"crepes.fr"})
    result = await spf.check_host("1.2.3.4", "crepes.fr", "a@crepes.fr", failing)
    assert result.result == "temperror"


async def test_check_mail_uses_helo_for_null_sender() -> None:
    resolver = crepes()
    resolver.add("mail.crepes.fr", "TXT", "v=spf1 a -all")
    result, identity = await spf.check_mail("127.0.0.2", "", "mail.crepes.fr", resolver)
    assert (result.result, identity) == ("pass", "postmaster@mail.crepes.fr")
    result, identity = await spf.check_mail("127.0.0.9", "bob@crepes.fr", "x", resolver)
    assert (result.result, identity) == ("fail", "bob@crepes.fr")


async def test_rfc7208_macro_examples() -> None:
    # RFC 7208 §7.4: sender strong-bad@email.example.com, IPv4 192.0.2.3.
    resolver = FakeResolver(
        {
            ("email.example.com", "TXT"): ["v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} -all"],
            ("3.2.0.192.strong._spf.email.example.com", "A"): ["127.0.0.2"],
        }
    )
    result = await spf.check_host(
        "192.0.2.3", "email.example.com", "strong-bad@email.example.com", resolver
    )
    assert result.result == "pass"
    assert ("3.2.0.192.strong._spf.email.example.com", "A") in resolver.asked


async def test_ten_lookup_limit() -> None:
    records = {("d0.example", "TXT"): ["v=spf1 include:d1.example -all"]}
    for n in range(1, 12):
        records[(f"d{n}.example", "TXT")] = [
            f"v=spf1 a:nowhere{n}.example include:d{n + 1}.example"
        ]
    result = await spf.check_host("192.0.2.1", "d0.example", "x@d0.example", FakeResolver(records))
    assert result.result == "permerror"


async def test_explanation_macro() -> None:
    resolver = FakeResolver(
        {
            ("example.com", "TXT"): ["v=spf1 -all exp=explain.example.com"],
            ("explain.example.com", "TXT"): ["%{i} is not one of %{d}'s designated mail servers."],
        }
    )
    result = await spf.check_host("192.0.2.9", "example.com", "a@example.com", resolver)
    assert result.result == "fail"
    assert result.explanation == "192.0.2.9 is not one of example.com's designated mail servers."

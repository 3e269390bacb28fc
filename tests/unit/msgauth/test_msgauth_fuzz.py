"""Hostile input never raises out of the checks: SPF records, DKIM-Signature
fields, DMARC records and whole messages from hypothesis."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from msgauth_fakes import FakeResolver

from mailstack.msgauth import check, dkim, dmarc, spf

SPF_RESULTS = {"none", "neutral", "pass", "fail", "softfail", "temperror", "permerror"}
TERMS = st.sampled_from(
    [
        "mx",
        "a",
        "ptr",
        "all",
        "-all",
        "~all",
        "?all",
        "include:",
        "exists:",
        "ip4:",
        "ip6:",
        "redirect=",
        "exp=",
        "/24",
        "//64",
        "%{i}",
        "%{d2r}",
        "%{l-}",
        "%%",
        "%",
        ":",
        "=",
        ".",
        "crepes.fr",
        "192.0.2.1",
        "::1",
        " ",
        "é",
        "a:%{ir}.x",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(TERMS, max_size=8).map("".join))
async def test_spf_record_never_raises(text: str) -> None:
    resolver = FakeResolver(
        {
            ("crepes.fr", "TXT"): ["v=spf1 " + text],
            ("crepes.fr", "MX"): [(10, "mail.crepes.fr")],
            ("mail.crepes.fr", "A"): ["192.0.2.1"],
        }
    )
    result = await spf.check_host("192.0.2.1", "crepes.fr", "a@crepes.fr", resolver)
    assert result.result in SPF_RESULTS


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=120))
def test_dmarc_record_never_raises(text: str) -> None:
    record = dmarc.parse_record(text)
    assert record is None or record.policy in dmarc.POLICIES


HEADERS = st.sampled_from(
    [
        b"From: a@crepes.fr\r\n",
        b"From: \r\n",
        b"DKIM-Signature: v=1; a=rsa-sha256; d=crepes.fr; s=s; h=from; bh=; b=\r\n",
        b"DKIM-Signature: v=1; a=ed25519-sha256; d=crepes.fr; s=s; b=!!; bh=x\r\n",
        b"DKIM-Signature: d=; s=\r\n",
        b"DKIM-Signature:\r\n",
        b" folded\r\n",
        b"Subject: =?utf-8?q?x?=\r\n",
        b"\xff\xfe: \x00\r\n",
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(HEADERS, max_size=6).map(b"".join), st.binary(max_size=40))
async def test_inbound_checks_never_raise(head: bytes, body: bytes) -> None:
    resolver = FakeResolver(
        {
            ("s._domainkey.crepes.fr", "TXT"): ["v=DKIM1; k=rsa; p=MIIBIjANBgkq"],
            ("_dmarc.crepes.fr", "TXT"): ["v=DMARC1; p=reject"],
        }
    )
    message = head + b"\r\n" + body
    verdict = await check.check_inbound(
        message,
        client_ip="192.0.2.1",
        helo="h",
        mail_from="a@crepes.fr",
        resolver=resolver,
        authserv_id="mx.test",
        enforce=True,
    )
    assert verdict.header.startswith(b"Authentication-Results: mx.test;")
    assert all(
        r.result in {"pass", "fail", "neutral", "permerror", "temperror"} for r in verdict.dkim
    )
    assert len(await dkim.verify(message, resolver)) == len(verdict.dkim)

"""DMARC: record parsing, discovery, alignment, the disposition."""

from __future__ import annotations

import pytest
from msgauth_fakes import FakeResolver

from mailstack.msgauth import dmarc
from mailstack.msgauth.dkim import DkimResult

FROM_CREPES = b"From: Alice <alice@crepes.fr>\r\nSubject: x\r\n\r\nbody\r\n"


def test_organizational_domain_from_the_psl() -> None:
    assert dmarc.organizational_domain("mail.crepes.fr") == "crepes.fr"
    assert dmarc.organizational_domain("a.b.example.co.uk") == "example.co.uk"
    assert dmarc.organizational_domain("co.uk") == "co.uk"
    assert dmarc.aligned("mail.crepes.fr", "crepes.fr", "r")
    assert not dmarc.aligned("mail.crepes.fr", "crepes.fr", "s")
    assert not dmarc.aligned("crepes.fr", "hamburger.edu", "r")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("v=DMARC1; p=reject", dmarc.DmarcRecord("reject", "reject")),
        (
            "v=DMARC1; p=quarantine; sp=none; adkim=s; aspf=s; pct=20",
            dmarc.DmarcRecord("quarantine", "none", "s", "s", 20),
        ),
        ("v=DMARC1; p=bogus; rua=mailto:d@crepes.fr", dmarc.DmarcRecord("none", "none")),
        ("v=DMARC1; p=bogus", None),
        ("p=reject; v=DMARC1", None),
        ("v=DMARC2; p=reject", None),
    ],
)
def test_parse_record(text: str, expected: dmarc.DmarcRecord | None) -> None:
    assert dmarc.parse_record(text) == expected


@pytest.mark.parametrize(
    ("message", "domain"),
    [
        (FROM_CREPES, "crepes.fr"),
        (b"From: a@x.example, b@y.example\r\n\r\n", None),
        (b"From: a@x.example\r\nFrom: b@x.example\r\n\r\n", None),
        (b"Subject: no from\r\n\r\n", None),
    ],
)
def test_header_from(message: bytes, domain: str | None) -> None:
    assert dmarc.header_from_domain(message) == domain


def resolver(record: str = "v=DMARC1; p=reject", owner: str = "_dmarc.crepes.fr") -> FakeResolver:
    return FakeResolver({(owner, "TXT"): [record]})


async def evaluate(res: FakeResolver, spf: tuple[str, str], dkim: list, message=FROM_CREPES, **kw):
    return await dmarc.evaluate(
        message, spf_result=spf[0], spf_domain=spf[1], dkim_results=dkim, resolver=res, **kw
    )


async def test_aligned_spf_passes() -> None:
    result = await evaluate(resolver(), ("pass", "crepes.fr"), [])
    assert (result.result, result.policy, result.disposition) == ("pass", "reject", "none")


async def test_aligned_dkim_passes_when_spf_fails() -> None:
    signature = DkimResult("pass", "mail.crepes.fr", "s")
    result = await evaluate(resolver(), ("fail", "crepes.fr"), [signature])
    assert result.result == "pass"


async def test_unaligned_pass_is_a_fail_with_the_policy() -> None:
    signature = DkimResult("pass", "evil.example", "s")
    result = await evaluate(resolver(), ("pass", "evil.example"), [signature])
    assert (result.result, result.disposition, result.header_from) == (
        "fail",
        "reject",
        "crepes.fr",
    )


async def test_subdomain_uses_sp_from_the_organizational_domain() -> None:
    message = b"From: a@news.crepes.fr\r\n\r\n"
    res = resolver("v=DMARC1; p=reject; sp=quarantine")
    result = await evaluate(res, ("none", "news.crepes.fr"), [], message=message)
    assert (result.result, result.policy, result.disposition) == (
        "fail",
        "quarantine",
        "quarantine",
    )
    assert ("_dmarc.news.crepes.fr", "TXT") in res.asked


async def test_pct_sampling_downgrades() -> None:
    res = resolver("v=DMARC1; p=reject; pct=10")
    outside = await evaluate(res, ("fail", "crepes.fr"), [], sample=lambda: 0.5)
    inside = await evaluate(res, ("fail", "crepes.fr"), [], sample=lambda: 0.05)
    assert (outside.disposition, inside.disposition) == ("quarantine", "reject")


async def test_no_record_none_and_dns_failure_temperror() -> None:
    assert (await evaluate(FakeResolver(), ("fail", "crepes.fr"), [])).result == "none"
    failing = FakeResolver(failing={"_dmarc.crepes.fr"})
    assert (await evaluate(failing, ("pass", "crepes.fr"), [])).result == "temperror"
    two = FakeResolver({("_dmarc.crepes.fr", "TXT"): ["v=DMARC1; p=reject", "v=DMARC1; p=none"]})
    assert (await evaluate(two, ("fail", "crepes.fr"), [])).result == "none"


async def test_several_records_at_a_subdomain_end_discovery() -> None:
    """§6.6.3: several records mean no DMARC; only "no record at all" goes on
    to the organizational domain, so duplicates never inherit its p=reject."""
    message = b"From: a@news.crepes.fr\r\n\r\n"
    res = FakeResolver({
        ("_dmarc.news.crepes.fr", "TXT"): ["v=DMARC1; p=none", "v=DMARC1; p=none"],
        ("_dmarc.crepes.fr", "TXT"): ["v=DMARC1; p=reject"],
    })
    result = await evaluate(res, ("fail", "news.crepes.fr"), [], message=message)
    assert (result.result, result.disposition) == ("none", "none")
    assert ("_dmarc.crepes.fr", "TXT") not in res.asked

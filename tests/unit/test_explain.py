"""Explain this message (webmail/explain.py) on trace fields as real servers
write them: mailstack's own, Postfix's and Gmail's, and broken ones."""

from __future__ import annotations

from mailstack.webmail.explain import explain, parse_authentication_results, parse_received

POSTFIX = (
    "from mail.crepes.fr (mail.crepes.fr [192.0.2.2])\r\n"
    "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))\r\n"
    "\t(No client certificate requested)\r\n"
    "\tby mx.hamburger.edu (Postfix) with ESMTP id 4F1C2A0B3\r\n"
    "\tfor <bob@hamburger.edu>; Sun, 6 Dec 2026 10:00:07 +0000 (UTC)"
)
GMAIL = (
    "from mail-sor-f41.google.com (mail-sor-f41.google.com. [209.85.220.41])\r\n"
    "        by mx.google.com with SMTPS id a1sor123456;\r\n"
    "        Sun, 06 Dec 2026 02:00:05 -0800 (PST)"
)
MSA = (
    "from [192.168.1.20] ([198.51.100.7])\r\n"
    "\tby mail.crepes.fr (mailstack) with ESMTPSA id RUN-1-42\r\n"
    "\tfor <bob@hamburger.edu>;\r\n\tSun, 06 Dec 2026 11:00:00 +0100"
)


def test_hops_come_out_oldest_first_with_delays_and_tls() -> None:
    # Header order is newest first: Postfix's MX added its field above the MSA's.
    result = explain([POSTFIX, MSA], [])
    first, second = result.hops
    assert first.by == "mail.crepes.fr" and first.protocol == "ESMTPSA"
    assert first.tls is True and first.authenticated and first.from_ip == "198.51.100.7"
    assert second.by == "mx.hamburger.edu" and second.from_host == "mail.crepes.fr"
    assert second.from_ip == "192.0.2.2" and second.id == "4F1C2A0B3"
    # "with ESMTP" but the comment says TLSv1.3: encrypted.
    assert second.tls is True and not second.authenticated
    assert second.recipient == "bob@hamburger.edu"
    assert second.delay == 7 and result.total_delay == 7
    assert "7 seconds after the hop before" in second.sentence()
    assert "the sender logged in" in first.sentence()


def test_protocol_names_of_rfc_3848_and_unknown_ones() -> None:
    assert parse_received(GMAIL).tls is None  # "SMTPS" is no RFC 3848 name
    plain = parse_received("from a.example ([192.0.2.9]) by b.example with SMTP; junk date")
    assert plain.tls is False and plain.when is None and plain.by == "b.example"
    broken = parse_received("this is not a received field at all")
    assert broken.by == "" and broken.protocol == "" and broken.when is None
    assert "a host received it" in broken.sentence()


def test_authentication_results_in_plain_words() -> None:
    field = (
        "mail.hamburger.edu; spf=pass smtp.mailfrom=alice@crepes.fr;\r\n"
        " dkim=pass header.d=crepes.fr header.s=path-rsa header.a=rsa-sha256;\r\n"
        " dmarc=fail (p=reject dis=none) header.from=crepes.fr"
    )
    spf, dkim, dmarc = parse_authentication_results(field)
    assert (spf.method, spf.result, spf.properties["smtp.mailfrom"]) == (
        "spf", "pass", "alice@crepes.fr",
    )  # fmt: skip
    assert dkim.properties["header.d"] == "crepes.fr" and dkim.by == "mail.hamburger.edu"
    assert dmarc.reason == "p=reject dis=none"
    assert "crepes.fr lists as allowed" in spf.sentence()
    assert "crepes.fr sent it, unchanged since" in dkim.sentence()
    assert "the sender may be pretending" in dmarc.sentence()


def test_only_trusted_results_count() -> None:
    ours = "mail.hamburger.edu; spf=fail smtp.mailfrom=president@crepes.fr"
    forged = "mail.hamburger.edu.evil.test; spf=pass smtp.mailfrom=president@crepes.fr"
    result = explain([], [ours, forged], trusted={"mail.hamburger.edu"})
    assert [(c.by, c.result) for c in result.checks] == [("mail.hamburger.edu", "fail")]
    assert parse_authentication_results("garbage without structure") == []
    assert parse_authentication_results("") == []

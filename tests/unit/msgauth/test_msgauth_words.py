"""Authentication-Results comments are our words, never a library's exception text
(they are stored with the mail)."""

from __future__ import annotations

import dns.rcode
from msgauth_fakes import FakeResolver, TableResolver

from mailstack.dns.resolution import Result
from mailstack.msgauth import dkim, dmarc, keys, results, spf
from mailstack.msgauth.dnsapi import ResolverAdapter

MESSAGE = b"From: Alice <alice@crepes.fr>\r\nSubject: crepes\r\n\r\nune crepe?\r\n"
LIBRARY_WORDS = ("Timeout(", "operation timed out", "body hash", "rcode")


async def test_dns_failures_say_our_phrase() -> None:
    failing = FakeResolver(failing={"crepes.fr", "_dmarc.crepes.fr"})
    spf_result = await spf.check_host("192.0.2.1", "crepes.fr", "a@crepes.fr", failing)
    dmarc_result = await dmarc.evaluate(
        MESSAGE, spf_result="none", spf_domain="", dkim_results=[], resolver=failing
    )
    assert spf_result.problem == dmarc_result.problem == "DNS lookup timed out"


async def test_the_adapter_names_timeouts_and_server_failures() -> None:
    servfail = ResolverAdapter(TableResolver({("crepes.fr.", "TXT"): Result(dns.rcode.SERVFAIL)}))
    result = await spf.check_host("192.0.2.1", "crepes.fr", "a@crepes.fr", servfail)
    assert result.problem == "DNS server answered SERVFAIL"
    hanging = ResolverAdapter(TableResolver({}, hang=True), timeout=0.01)
    result = await spf.check_host("192.0.2.1", "crepes.fr", "a@crepes.fr", hanging)
    assert result.problem == "DNS lookup timed out"


async def test_a_broken_signature_says_it_did_not_verify() -> None:
    pair = keys.new_keys("crepes.fr", "t1")[1:]  # ed25519: quick
    resolver = FakeResolver()
    resolver.add(keys.txt_owner(pair[0]), "TXT", keys.txt_value(pair[0]))
    signed = dkim.sign_with(MESSAGE, pair) + MESSAGE.replace(b"une crepe", b"un burger")
    [result] = await dkim.verify(signed, resolver)
    assert (result.result, result.problem) == ("fail", "signature did not verify")
    failing = FakeResolver(failing={keys.txt_owner(pair[0])})
    [temp] = await dkim.verify(signed, failing)
    spf_result = await spf.check_host("192.0.2.1", "crepes.fr", "a@crepes.fr", failing)
    field = results.header("mx.test", spf=spf_result, dkim=[result, temp]).decode()
    assert "(signature did not verify)" in field and "(DNS lookup timed out)" in field
    assert not any(words in field for words in LIBRARY_WORDS)

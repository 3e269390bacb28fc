"""`domain check`: the published records against the ones the domain needs."""

from __future__ import annotations

from msgauth_fakes import FakeResolver

from mailstack.msgauth import doctor, keys, records
from mailstack.msgauth.records import quoted_txt


def expected(pair: list) -> list:
    return records.mail_records("crepes.fr", "mail.crepes.fr", addresses=["192.0.2.1"], keys=pair)


def published(pair: list) -> FakeResolver:
    resolver = FakeResolver(
        {
            ("crepes.fr", "MX"): [(10, "mail.crepes.fr")],
            ("mail.crepes.fr", "A"): ["192.0.2.1"],
            ("crepes.fr", "TXT"): ["v=spf1 mx -all"],
            ("_dmarc.crepes.fr", "TXT"): ["v=DMARC1; p=reject"],
        }
    )
    for key in pair:
        resolver.add(keys.txt_owner(key), "TXT", keys.txt_value(key))
    return resolver


async def test_all_published_is_ok() -> None:
    pair = keys.new_keys("crepes.fr", "d")
    findings = await doctor.check_published(published(pair), expected(pair))
    assert [f.status for f in findings] == ["ok"] * 6
    assert findings[0].to_text().startswith("ok        crepes.fr. MX")


async def test_missing_and_different_say_what_to_publish() -> None:
    pair = keys.new_keys("crepes.fr", "d")
    resolver = published(pair[1:])  # the RSA key is not published
    resolver.records[("crepes.fr", "TXT")] = ["v=spf1 ip4:198.51.100.0/24 -all"]
    findings = {
        (f.record.name, f.record.rdata[:12]): f
        for f in await doctor.check_published(resolver, expected(pair))
    }
    spf = findings[("crepes.fr.", quoted_txt("v=spf1 mx -all")[:12])]
    assert spf.status == "different" and "ip4:198.51.100.0/24" in spf.to_text()
    assert 'publish: crepes.fr. 3600 IN TXT "v=spf1 mx -all"' in spf.to_text()
    rsa = [f for f in findings.values() if f.record.name.startswith("d-rsa.")]
    assert rsa[0].status == "missing" and "found: nothing" in rsa[0].to_text()


async def test_an_own_spf_that_allows_us_is_ok() -> None:
    pair = keys.new_keys("crepes.fr", "d")
    resolver = published(pair)
    resolver.records[("crepes.fr", "TXT")] = ["v=spf1 ip4:192.0.2.0/24 include:other.example ~all"]
    findings = await doctor.check_published(resolver, expected(pair))
    assert all(f.status == "ok" for f in findings)


async def test_dns_failure_is_an_error_finding() -> None:
    pair = keys.new_keys("crepes.fr", "d")
    resolver = published(pair)
    resolver.failing = {"_dmarc.crepes.fr"}
    statuses = [f.status for f in await doctor.check_published(resolver, expected(pair))]
    assert statuses.count("error") == 1


async def test_an_mx_host_without_address_is_unresolved() -> None:
    pair = keys.new_keys("crepes.fr", "d")
    # The host is outside the domain (no A record expected) and has no address.
    wanted = records.mail_records("crepes.fr", "vm", keys=pair)
    resolver = published(pair)
    resolver.records[("crepes.fr", "MX")] = [(10, "vm")]
    [mx] = [f for f in await doctor.check_published(resolver, wanted) if f.record.rdtype == "MX"]
    assert mx.status == "unresolved"
    assert "publish: an A or AAAA record for vm. (the MX host)" in mx.to_text()
    resolver.add("vm", "AAAA", "2001:db8::25")
    [mx] = [f for f in await doctor.check_published(resolver, wanted) if f.record.rdtype == "MX"]
    assert mx.status == "ok"

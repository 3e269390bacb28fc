"""The records a mail domain publishes, the managed zone, and the CLI commands."""

from __future__ import annotations

from pathlib import Path

import dns.zone
import pytest

from mailstack.cli import main
from mailstack.msgauth import keys, records

PORTS = {"smtp": 25, "submission": 587, "submissions": 465, "imaps": 993}


@pytest.fixture(scope="module")
def pair() -> list:
    return keys.new_keys("crepes.fr", "s1")


def test_mail_records(pair: list) -> None:
    wanted = records.mail_records(
        "crepes.fr",
        "mail.crepes.fr",
        addresses=["192.0.2.1", "2001:db8::1"],
        ports=PORTS,
        keys=pair,
    )
    text = {(r.name, r.rdtype): r.rdata for r in wanted}
    assert text[("crepes.fr.", "MX")] == "10 mail.crepes.fr."
    assert text[("mail.crepes.fr.", "A")] == "192.0.2.1"
    assert text[("mail.crepes.fr.", "AAAA")] == "2001:db8::1"
    assert text[("crepes.fr.", "TXT")] == '"v=spf1 mx -all"'
    assert text[("_dmarc.crepes.fr.", "TXT")].startswith('"v=DMARC1; p=quarantine')
    assert text[("_submission._tcp.crepes.fr.", "SRV")] == "0 1 587 mail.crepes.fr."
    assert text[("_submissions._tcp.crepes.fr.", "SRV")] == "0 1 465 mail.crepes.fr."
    assert ("_pop3._tcp.crepes.fr.", "SRV") not in text  # not listening: not advertised
    rsa = text[("s1-rsa._domainkey.crepes.fr.", "TXT")]
    # RFC 1035 §3.3.14: the 2048-bit key needs two character-strings.
    assert rsa.count('" "') == 1 and rsa.replace('" "', "").strip('"') == keys.txt_value(pair[0])


def test_host_outside_the_domain_gets_no_address_record() -> None:
    wanted = records.mail_records("hamburger.edu", "mx.example.net", addresses=["192.0.2.9"])
    # No A record; the autoconfig/autodiscover names point at the host.
    assert [r.rdtype for r in wanted] == ["MX", "TXT", "TXT", "CNAME", "CNAME"]
    assert {r.name: r.rdata for r in wanted if r.rdtype == "CNAME"} == {
        "autoconfig.hamburger.edu.": "mx.example.net.",
        "autodiscover.hamburger.edu.": "mx.example.net.",
    }


def test_zone_text_parses_as_a_master_file(pair: list) -> None:
    wanted = records.mail_records("crepes.fr", "mail.crepes.fr", addresses=["192.0.2.1"], keys=pair)
    text = "$TTL 3600\n@ SOA ns. h. 1 2 3 4 5\n@ NS ns.\n" + records.zone_text("crepes.fr", wanted)
    zone = dns.zone.from_text(text, origin="crepes.fr.", relativize=False)
    txt = zone.get_rdataset("s1-ed25519._domainkey.crepes.fr.", "TXT")
    assert txt is not None and b"".join(next(iter(txt)).strings).decode() == keys.txt_value(pair[1])


def test_missing_keeps_an_existing_spf_record() -> None:
    wanted = records.mail_records("crepes.fr", "mail.crepes.fr")
    existing = [r for r in wanted if r.rdtype == "MX"]
    own_spf = records.make_record("crepes.fr", "@", "TXT", '"v=spf1 ip4:192.0.2.0/24 -all"', 3600)
    todo = records.missing([*existing, own_spf], wanted)
    assert [r.rdtype for r in todo] == ["TXT", "CNAME", "CNAME"] and "DMARC1" in todo[0].rdata


async def test_publish_creates_the_zone_once(store, pair: list) -> None:
    wanted = records.mail_records("crepes.fr", "mail.crepes.fr", addresses=["192.0.2.1"], keys=pair)
    count, serial = await records.publish(store, "crepes.fr", wanted, nameserver="mail.crepes.fr")
    assert count == len(wanted) and serial == 2
    assert await records.publish(store, "crepes.fr", wanted, nameserver="x") == (0, 2)
    zone = await store.zone_get("crepes.fr")
    assert {r.rdtype for r in zone.records} == {"SOA", "NS", "MX", "A", "TXT", "CNAME"}


def run(data_dir: Path, *argv: str) -> int:
    return main([*argv, "--data-dir", str(data_dir)])


def test_cli_domain_add_dns_rotate_remove(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "node"
    assert run(data, "init", "--hostname", "mail.crepes.fr") == 0
    assert run(data, "domain", "add", "crepes.fr", "--selector", "first") == 0
    out = capsys.readouterr().out
    assert "first-rsa (rsa-sha256), first-ed25519 (ed25519-sha256)" in out
    assert "records added" in out

    assert run(data, "domain", "dns", "crepes.fr") == 0
    zone_text = capsys.readouterr().out
    assert "crepes.fr. 3600 IN MX 10 mail.crepes.fr." in zone_text
    assert "first-ed25519._domainkey.crepes.fr. 3600 IN TXT" in zone_text

    assert run(data, "domain", "dkim-rotate", "crepes.fr", "--selector", "second") == 0
    assert "second-rsa._domainkey.crepes.fr." in capsys.readouterr().out
    assert run(data, "domain", "dkim-list", "crepes.fr") == 0
    listing = capsys.readouterr().out.splitlines()
    assert "crepes.fr second-rsa rsa-sha256 active" in listing
    assert "crepes.fr first-rsa rsa-sha256 retired" in listing

    assert run(data, "domain", "dkim-remove", "crepes.fr", "second-rsa") == 1  # still signing
    assert run(data, "domain", "dkim-remove", "crepes.fr", "first-rsa") == 0
    assert "from the zone" in capsys.readouterr().out
    assert run(data, "domain", "dns", "crepes.fr") == 0
    zone_text = capsys.readouterr().out
    assert "first-rsa._domainkey" not in zone_text and "second-rsa._domainkey" in zone_text
    assert run(data, "domain", "dns", "nowhere.example") == 1

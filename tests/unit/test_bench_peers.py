"""Every configuration a benchmark writes for a peer keeps its DNS on
loopback (issue 15): Postfix with DNS off as bench/peers.py says, Unbound
forwarding only to loopback, and no peer configuration file the checks
below do not know of."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.dns.run import unbound_config
from bench.jmap.run import cyrus_config
from bench.peers import postfix_dns_problems, resolver_problems
from bench.smtp_receive.postfix_peer import main_cf as receive_main_cf
from bench.smtp_relay.run import postfix_main_cf as relay_main_cf

BENCH = Path(__file__).resolve().parents[2] / "bench"

# Every peer configuration file a benchmark writes, and why it is safe.
CHECKED = {
    "main.cf": "Postfix: DNS off, checked below",
    "master.cf": "Postfix's services: no lookups of their own",
    "unbound.conf": "Unbound: forwards to loopback only, checked below",
    "knot.conf": "Knot: authoritative, no remotes, asks no one",
    "dovecot.conf": "Dovecot: resolves nothing for password-file logins",
    "imapd.conf": "Cyrus: servername given, virtdomains off (no reverse lookups), checked below",
    "cyrus.conf": "Cyrus's services: on 127.0.0.1 only, checked below",
}


def test_every_peer_configuration_is_known() -> None:
    written = set()
    for path in BENCH.rglob("*"):
        if path.is_file() and (path.suffix == ".py" or path.name == "run"):
            written |= set(re.findall(r'"([\w.-]+\.(?:cf|conf))"', path.read_text()))
    assert written, "no peer configuration found: the scan is broken"
    assert written <= set(CHECKED), f"unchecked peer configuration: {written - set(CHECKED)}"


@pytest.mark.parametrize(
    "main_cf",
    [
        relay_main_cf(Path("/tmp/w"), 2525, 8),
        receive_main_cf(Path("/tmp/w"), 109, 111, "postdrop"),
    ],
    ids=["smtp_relay", "smtp_receive"],
)
def test_postfix_peers_turn_dns_off(main_cf: str) -> None:
    assert postfix_dns_problems(main_cf) == []


def test_the_postfix_check_can_fail() -> None:
    problems = postfix_dns_problems("myhostname = x\nsmtpd_peername_lookup = no\n")
    assert any("disable_dns_lookups" in p for p in problems)
    assert any("smtp_dns_support_level" in p for p in problems)
    later = relay_main_cf(Path("/tmp/w"), 2525, 8) + "disable_dns_lookups = no\n"
    assert postfix_dns_problems(later) == ["disable_dns_lookups = no, not yes"]


def test_unbound_forwards_to_loopback_only(tmp_path: Path) -> None:
    conf = unbound_config(tmp_path, 5300, 5301).read_text()
    assert resolver_problems(conf) == []
    leaky = conf.replace("forward-addr: 127.0.0.1", "forward-addr: 192.0.2.1")
    assert resolver_problems(leaky) == ["forward-addr 192.0.2.1@5301 is not loopback"]


def test_cyrus_stays_on_loopback() -> None:
    imapd, cyrus = cyrus_config(Path("/tmp/w"), 1143, 8080)
    settings = dict(line.split(": ", 1) for line in imapd.splitlines())
    assert settings["servername"] == "bench.test" and settings["virtdomains"] == "off"
    listens = re.findall(r'listen="([^"]+)"', cyrus)
    assert listens == ["127.0.0.1:1143", "127.0.0.1:8080"]

"""What every benchmark peer's configuration must say so that no packet leaves
loopback (issue 15): the settings that turn DNS off, and the checks
`tests/unit/test_bench_peers.py` runs on every configuration a benchmark
writes.

Postfix looks up client names (`smtpd_peername_lookup`) and next hops
(`smtp_dns_support_level`) through the system resolver, whose address is
off loopback; a peer that needs DNS (Unbound) forwards only to a loopback
server.
"""

from __future__ import annotations

import ipaddress
import re

__all__ = ["POSTFIX_NO_DNS", "postfix_dns_problems", "postfix_no_dns", "resolver_problems"]

# postconf(5): no reverse lookup of clients, no DNS for any next hop.
POSTFIX_NO_DNS = {
    "smtpd_peername_lookup": "no",
    "disable_dns_lookups": "yes",
    "smtp_dns_support_level": "disabled",
    "lmtp_dns_support_level": "disabled",
}


def postfix_no_dns() -> str:
    """The main.cf lines of POSTFIX_NO_DNS."""
    return "".join(f"{key} = {value}\n" for key, value in POSTFIX_NO_DNS.items())


def _main_cf(text: str) -> dict[str, str]:
    settings = {}
    for line in text.splitlines():
        key, eq, value = line.partition("=")
        if eq and not line.startswith(("#", " ", "\t")):
            settings[key.strip()] = value.strip()
    return settings


def postfix_dns_problems(main_cf: str) -> list[str]:
    """What in a Postfix main.cf would let Postfix use DNS (empty: nothing);
    the last setting of a key wins, as in Postfix."""
    settings = _main_cf(main_cf)
    return [
        f"{key} = {settings.get(key, '(default)')}, not {value}"
        for key, value in POSTFIX_NO_DNS.items()
        if settings.get(key) != value
    ]


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("@")[0]).is_loopback
    except ValueError:
        return False


def resolver_problems(unbound_conf: str) -> list[str]:
    """An Unbound configuration must forward everything to loopback servers
    only, and never fall back to the root (``forward-first``)."""
    problems = []
    forwards = re.findall(r"^\s*forward-addr:\s*(\S+)", unbound_conf, re.MULTILINE)
    if not forwards:
        problems.append("no forward-addr: Unbound would ask the root servers")
    problems += [f"forward-addr {addr} is not loopback" for addr in forwards if not _loopback(addr)]
    if not re.search(r'^\s*name:\s*"\."', unbound_conf, re.MULTILINE):
        problems.append('the forward zone is not "."')
    if re.search(r"^\s*forward-first:\s*yes", unbound_conf, re.MULTILINE):
        problems.append("forward-first: yes falls back to the root servers")
    return problems

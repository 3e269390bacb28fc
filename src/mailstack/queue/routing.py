"""Where mail for a domain goes: the MX plan (RFC 5321 §5.1, RFC 7505), given a resolver.

`route(domain, resolver)` asks the resolver for the domain's MX records and
the hosts' addresses and returns the hosts to try, most preferred first,
equal preferences in random order (RFC 5321 §5.1: "the SMTP client SHOULD
... randomize them to spread the load"). The resolver is an argument
(ARCHITECTURE rule 3): `mailstack.dns.resolver.Resolver` in a node, a fake in
tests. A domain without MX records is its own mail exchanger (the implicit
MX); a null MX (a single ``MX 0 .``) means the domain accepts no mail, and
the message bounces at once (RFC 7505 §4.2: ``556 5.1.10``).
"""

from __future__ import annotations

import random
from typing import Any, Protocol

import dns.name
import dns.rcode

from mailstack.delivery.status import Outcome
from mailstack.errors import DnsError, MailstackError
from mailstack.smtp.client_proto import Host


class Resolver(Protocol):
    async def mx(self, domain: str) -> list[tuple[int, Any]]:
        """(preference, exchange) pairs; [] for a null MX; [(0, domain)] when no MX."""
        ...

    async def addresses(self, host: str) -> list[str]: ...


class RouteError(MailstackError):
    """No host can be tried for the domain; ``outcome`` says why."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.reply)
        self.outcome = outcome


def _text(name: Any) -> str:
    if isinstance(name, dns.name.Name):
        return name.to_text(omit_final_dot=True)
    return str(name).rstrip(".")


def _is_root(name: Any) -> bool:
    if isinstance(name, dns.name.Name):
        return name == dns.name.root
    return str(name) in ("", ".")


def order(
    records: list[tuple[int, Any]], rng: random.Random, ourselves: frozenset[str] = frozenset()
) -> list[str]:
    """Exchange names by preference, shuffling each group of equal preference.

    RFC 5321 §5.1: when one of the names is ours, "it MUST discard that record
    and any records of higher preference numbers" (we are a backup MX, and
    only better ones may take the mail).
    """
    shuffled = list(records)
    rng.shuffle(shuffled)
    shuffled.sort(key=lambda record: record[0])  # stable: ties keep the shuffle
    mine = [pref for pref, exchange in shuffled if _text(exchange).lower() in ourselves]
    if mine:
        shuffled = [record for record in shuffled if record[0] < min(mine)]
    names: list[str] = []
    for _preference, exchange in shuffled:
        name = _text(exchange).lower()
        if name not in names:
            names.append(name)
    return names


async def route(
    domain: str,
    resolver: Resolver,
    rng: random.Random | None = None,
    ourselves: frozenset[str] = frozenset(),
) -> list[Host]:
    """The hosts to try for ``domain``; ``ourselves`` are this node's names."""
    rng = rng or random.Random()
    try:
        records = await resolver.mx(domain)
    except DnsError as exc:
        if exc.rcode == dns.rcode.NXDOMAIN:
            # RFC 3463 X.1.2 "Bad destination system address".
            raise RouteError(
                Outcome.permanent("5.1.2", f"domain {domain} does not exist")
            ) from None
        raise RouteError(
            Outcome.temporary("4.4.3", f"cannot resolve MX of {domain}: DNS error")
        ) from None
    except (OSError, TimeoutError):
        raise RouteError(
            Outcome.temporary("4.4.3", f"cannot resolve MX of {domain}: no DNS answer")
        ) from None
    if not records or (len(records) == 1 and _is_root(records[0][1])):
        # RFC 7505 §3: "MX 0 ." alone; the resolver may give it as [] already.
        raise RouteError(
            Outcome.permanent("5.1.10", f"556 5.1.10 {domain} does not accept mail (null MX)")
        )
    names = order(records, rng, ourselves)
    if not names:
        # RFC 5321 §5.1: we are the best MX, yet the domain is not ours.
        raise RouteError(Outcome.permanent("5.4.6", f"mail for {domain} loops back to myself"))
    hosts: list[Host] = []
    trouble = False
    for name in names:
        try:
            addresses = await resolver.addresses(name)
        except (DnsError, OSError, TimeoutError):
            trouble = True
            continue
        if addresses:
            hosts.append(Host(name, tuple(addresses)))
    if not hosts:
        # RFC 5321 §5.1: MX hosts without addresses are an error; a lookup
        # failure may clear, so it is retried like one.
        why = "DNS error" if trouble else "no address"
        raise RouteError(
            Outcome.temporary("4.4.4", f"no mail exchanger of {domain} reachable ({why})")
        )
    return hosts

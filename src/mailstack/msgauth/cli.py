"""The `mailstack domain` commands of message authentication.

- `domain add DOMAIN` (the lead's command) also makes the domain's DKIM keys
  and its mail records in the zones mailstack serves (`plan_domain`: the
  store creates all of it in one transaction)
- `domain dns DOMAIN`: the records in zone-file syntax, for DNS hosted elsewhere
- `domain check DOMAIN`: asks DNS whether they are published and resolve, and
  what to fix
- `domain republish [DOMAIN]`: after a host name change, the records that
  named the old host give way to the new one
- `domain dkim-rotate DOMAIN`: new keys sign from now on; old selectors stay published
- `domain dkim-list [DOMAIN]`, `domain dkim-remove DOMAIN SELECTOR`: retired keys
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from mailstack.commands import load_config, node_dns_address, with_store
from mailstack.errors import MailstackError
from mailstack.msgauth import keys, plan, records
from mailstack.msgauth.plan import host_addition as _host_addition
from mailstack.msgauth.plan import mail_host as _mail_host
from mailstack.msgauth.plan import mail_records as _records
from mailstack.msgauth.plan import serves_zone as _serves_zone
from mailstack.store import NewDomain, make_record


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `domain add` that belong to message authentication."""
    parser.add_argument(
        "--selector", help="DKIM selector name (default: ms + today's date, e.g. ms20261121)"
    )
    parser.add_argument(
        "--address",
        action="append",
        default=[],
        help="the mail host's public address for its A/AAAA record (repeatable)",
    )
    parser.add_argument(
        "--dmarc-policy",
        choices=records.DMARC_POLICIES,
        default="quarantine",
        help="the p= of the domain's DMARC record (default: quarantine)",
    )
    parser.add_argument(
        "--no-dns", action="store_true", help="do not write records into the served zone"
    )


def _config(args: argparse.Namespace) -> Any:
    return load_config(args)


async def plan_domain(
    store: Any, args: argparse.Namespace, domain: str, postmaster: str | None
) -> tuple[NewDomain, list[str]]:
    """What `domain add` makes (``plan.plan_domain``), for the config of ``args``."""
    return await plan.plan_domain(store, _config(args), domain, postmaster, args)


async def domain_republish(store: Any, args: argparse.Namespace) -> int:
    """The domain's records for the node's current host name, replacing those
    that named an earlier one (see ``records.stale``)."""
    domains = [args.domain.lower().rstrip(".")] if args.domain else await store.domain_list()
    config = _config(args)
    host = _mail_host(config)
    for domain in domains:
        if not await store.is_local_domain(domain):
            raise MailstackError(f"{domain} is not a local domain")
        origin = domain + "."
        host_addition, note = await _host_addition(store, config, domain, args)
        wanted = await _records(store, config, domain, args)
        if not await _serves_zone(store, domain):
            await records.publish(store, domain, wanted, nameserver=host)
        zone = (await store.zone_get(origin)).records
        old = records.stale(zone, domain, host, wanted)
        kept = [r for r in zone if r not in old]
        new = records.missing(kept, wanted)
        if any(r.rdtype == "NS" for r in old) and not any(
            r.rdtype == "NS" and r.name == origin for r in kept
        ):
            new.append(make_record(origin, "@", "NS", host + ".", records.DEFAULT_TTL))
        serial = zone[0].rdata.split()[2]
        if old or new:
            serial = str(await store.zone_apply(origin, old, new))
        if host_addition is not None:
            await store.zone_apply(host_addition.origin, [], host_addition.records)
        print(f"zone {domain}: {len(old)} records removed, {len(new)} added (serial {serial})")
        if note:
            print(note)
    return 0


async def domain_dns(store: Any, args: argparse.Namespace) -> int:
    domain = args.domain.lower().rstrip(".")
    if not await store.is_local_domain(domain):
        raise MailstackError(f"{domain} is not a local domain")
    wanted = await _records(store, _config(args), domain, args)
    print(records.zone_text(domain, wanted), end="")
    return 0


async def dkim_rotate(store: Any, args: argparse.Namespace) -> int:
    domain = args.domain.lower().rstrip(".")
    if not await store.is_local_domain(domain):
        raise MailstackError(f"{domain} is not a local domain")
    fresh = await keys.rotate(store, domain, args.selector)
    print("new DKIM keys: " + ", ".join(f"{k.selector} ({k.algorithm})" for k in fresh))
    config = _config(args)
    wanted = [
        r
        for r in await _records(store, config, domain, args)
        if any(r.name.startswith(f"{k.selector}._domainkey.") for k in fresh)
    ]
    if await _serves_zone(store, domain):
        _, serial = await records.publish(store, domain, wanted, nameserver=_mail_host(config))
        print(f"zone {domain}: new selectors published (serial {serial})")
    print(records.zone_text(domain, wanted), end="")
    print("; the old selectors stay published until `mailstack domain dkim-remove`")
    return 0


async def domain_check(store: Any, args: argparse.Namespace) -> int:
    """Ask DNS whether the domain's records are published; 1 when any is not."""
    from mailstack.app import Node
    from mailstack.dns.resolver import Resolver
    from mailstack.msgauth.dnsapi import ResolverAdapter
    from mailstack.msgauth.doctor import check_published

    domain = args.domain.lower().rstrip(".")
    if not await store.is_local_domain(domain):
        raise MailstackError(f"{domain} is not a local domain")
    config = _config(args)
    if args.server:
        from mailstack.dns.config import parse_server

        resolver: Any = Resolver(forwarders=[parse_server(args.server, "--server")])
    elif (own := node_dns_address(config)) is not None:
        # The node's own DNS listener: it serves the node's zones and
        # resolves the rest for loopback clients (`[dns] recursion`).
        if not await _answers(own):
            raise MailstackError(
                f"the node's DNS listener {own[0]}:{own[1]} does not answer:"
                " start `mailstack serve`, or give --server IP:PORT"
            )
        resolver = Resolver(forwarders=[own])
    else:
        node = Node(config)
        if not node.resolver_configured:
            raise MailstackError(
                "no resolver configured: give --server IP:PORT or [dns.resolver] forwarders"
            )
        resolver = node.resolver
    wanted = await _records(store, config, domain, args)
    findings = await check_published(ResolverAdapter(resolver, timeout=10.0), wanted)
    for finding in findings:
        print(finding.to_text())
    return 0 if all(f.status == "ok" for f in findings) else 1


async def _answers(address: tuple[str, int]) -> bool:
    """Whether a DNS server listens there (it takes TCP as well as UDP)."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(*address), 2)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


async def dkim_list(store: Any, args: argparse.Namespace) -> int:
    for key in await store.dkim_keys(args.domain):
        state = "active" if key.active else "retired"
        print(f"{key.domain} {key.selector} {key.algorithm} {state}")
    return 0


async def dkim_remove(store: Any, args: argparse.Namespace) -> int:
    domain = args.domain.lower().rstrip(".")
    selector = args.selector.lower()
    found = [k for k in await store.dkim_keys(domain) if k.selector == selector]
    if not found:
        raise MailstackError(f"no DKIM selector {selector} for {domain}")
    if found[0].active and not args.force:
        raise MailstackError(f"{selector} signs mail now; rotate first or use --force")
    await store.dkim_key_remove(domain, selector)
    if await records.unpublish_key(store, found[0]):
        print(f"removed {selector}._domainkey.{domain} from the zone")
    print(f"removed DKIM key {selector} of {domain}")
    return 0


def register_domain(domain: Any, common: argparse.ArgumentParser) -> None:
    """Add the subcommands to the `mailstack domain` group."""
    p = domain.add_parser(
        "dns", parents=[common], help="print the domain's DNS records in zone-file syntax"
    )
    p.add_argument("domain")
    p.add_argument("--address", action="append", default=[], help="the mail host's address")
    p.add_argument("--dmarc-policy", choices=records.DMARC_POLICIES, default="quarantine")
    p.set_defaults(func=with_store(domain_dns))
    p = domain.add_parser(
        "check", parents=[common], help="ask DNS whether the domain's mail records are published"
    )
    p.add_argument("domain")
    p.add_argument("--server", metavar="IP:PORT", help="the DNS server to ask (recursive)")
    p.add_argument("--address", action="append", default=[], help="the mail host's address")
    p.add_argument("--dmarc-policy", choices=records.DMARC_POLICIES, default="quarantine")
    p.set_defaults(func=with_store(domain_check))
    p = domain.add_parser(
        "republish",
        parents=[common],
        help="after a host name change: the records naming the old host give way to the new",
    )
    p.add_argument("domain", nargs="?", help="one domain (default: every local domain)")
    p.add_argument("--address", action="append", default=[], help="the mail host's address")
    p.add_argument("--dmarc-policy", choices=records.DMARC_POLICIES, default="quarantine")
    p.set_defaults(func=with_store(domain_republish))
    p = domain.add_parser("dkim-rotate", parents=[common], help="new DKIM keys sign from now on")
    p.add_argument("domain")
    p.add_argument("--selector", help="the new selector name (default: ms + today's date)")
    p.set_defaults(func=with_store(dkim_rotate))
    p = domain.add_parser("dkim-list", parents=[common], help="list DKIM keys")
    p.add_argument("domain", nargs="?")
    p.set_defaults(func=with_store(dkim_list))
    p = domain.add_parser(
        "dkim-remove", parents=[common], help="remove a retired DKIM key and its record"
    )
    p.add_argument("domain")
    p.add_argument("selector")
    p.add_argument("--force", action="store_true", help="even if the key still signs")
    p.set_defaults(func=with_store(dkim_remove))

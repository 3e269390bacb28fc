"""Planning a mail domain's records and keys from the node's configuration:
what `mailstack domain add` and the admin operations (``mailstack.admin.ops``)
create, what `domain dns` prints and `domain check` looks for.

``args`` below is any object with the options of `domain add` as attributes
(``selector``, ``address``, ``dmarc_policy``, ``no_dns``); missing ones take
their defaults.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from mailstack.errors import MailstackError, NotFound
from mailstack.msgauth import keys, records
from mailstack.store import DkimKey, NewDomain, ZoneAddition, ZoneRecord


def mail_host(config: Any) -> str:
    return (config.smtp.hostname or config.hostname).rstrip(".")


def host_addresses(config: Any, given: list[str]) -> list[str]:
    """The mail host's addresses: ``--address``, else the specific address
    the node listens on (the smtp listener's first, else any other's)."""
    if given:
        for address in given:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise MailstackError(f"--address {address!r} is not an IP address") from None
        return given
    listeners = sorted(config.listen.items(), key=lambda item: item[0] != "smtp")
    for _, (host, _port) in listeners:
        try:
            listening = ipaddress.ip_address(host)
        except ValueError:
            continue
        if not listening.is_unspecified:
            return [str(listening)]
    return []


def listener_ports(config: Any) -> dict[str, int]:
    return {name: port for name, (_, port) in config.listen.items() if port}


async def mail_records(
    store: Any,
    config: Any,
    domain: str,
    args: Any,
    dkim_keys: list[DkimKey] | None = None,
) -> list[ZoneRecord]:
    return records.mail_records(
        domain,
        mail_host(config),
        addresses=host_addresses(config, getattr(args, "address", []) or []),
        ports=listener_ports(config),
        keys=await store.dkim_keys(domain) if dkim_keys is None else dkim_keys,
        dmarc_policy=getattr(args, "dmarc_policy", None) or "quarantine",
    )


async def zone_records(store: Any, origin: str) -> tuple[ZoneRecord, ...]:
    try:
        return (await store.zone_get(origin)).records
    except NotFound:
        return ()


async def host_addition(
    store: Any, config: Any, domain: str, args: Any
) -> tuple[ZoneAddition | None, str]:
    """The MX host's A/AAAA when the node serves the host's zone and it is not
    the domain's own (``mail_records`` has those), and a note for the user."""
    host = mail_host(config)
    origin = domain + "."
    served = [zone for zone, _ in await store.zone_list()] + [origin]
    host_zone = records.serving_zone(host, served)
    addresses = host_addresses(config, getattr(args, "address", []) or [])
    if host_zone is None:
        shown = ", ".join(addresses) or "its address"
        return None, (
            f"the MX host {host} is outside the zones this node serves: publish its "
            f"A/AAAA record ({shown}) where its zone is hosted (mailstack domain check {domain})"
        )
    if not addresses:
        raise MailstackError(
            f"the MX host {host} is in zone {host_zone}, which this node serves, but its "
            "address is unknown (the node listens on no specific address): give --address IP"
        )
    if host_zone == origin:
        return None, ""
    wanted = records.host_records(host_zone, host, addresses)
    added = records.missing(await zone_records(store, host_zone), wanted)
    addition = ZoneAddition(host_zone, added, [host + "."], f"hostmaster@{host_zone.rstrip('.')}")
    return (addition if added else None), ""


async def plan_domain(
    store: Any, config: Any, domain: str, postmaster: str | None, args: Any
) -> tuple[NewDomain, list[str]]:
    """What `domain add` makes (DKIM keys; the records into the zones the node
    serves unless --no-dns), for the store to create in one transaction, and
    what to tell the user once it has."""
    selector = await keys.free_selector(store, domain, getattr(args, "selector", None))
    made = keys.new_keys(domain, selector)
    notes = ["DKIM keys: " + ", ".join(f"{k.selector} ({k.algorithm})" for k in made)]
    if getattr(args, "no_dns", False):
        notes.append(f"records to publish: mailstack domain dns {domain}")
        return NewDomain(domain, made, (), postmaster), notes
    host = mail_host(config)
    host_zone, note = await host_addition(store, config, domain, args)
    wanted = await mail_records(store, config, domain, args, made)
    added = records.missing(await zone_records(store, domain + "."), wanted)
    zones = [ZoneAddition(domain + ".", added, [host + "."], f"hostmaster@{domain}")]
    if host_zone is not None:
        zones.append(host_zone)
    for addition in zones:
        notes.append(f"zone {addition.origin.rstrip('.')}: {len(addition.records)} records added")
    notes.append(f"see mailstack domain dns {domain}")
    if note:
        notes.append(note)
    return NewDomain(domain, made, zones, postmaster), notes


async def serves_zone(store: Any, domain: str) -> bool:
    try:
        await store.zone_get(domain)
    except NotFound:
        return False
    return True

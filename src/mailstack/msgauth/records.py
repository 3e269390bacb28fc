"""The DNS records a mail domain publishes, and writing them into a managed zone.

For a domain served by a mailstack host:

- ``MX 10 host.`` (RFC 5321 §5.1) and the host's A/AAAA when it is inside the domain
- ``TXT "v=spf1 mx -all"``: only the MX hosts send its mail (RFC 7208)
- ``<selector>._domainkey TXT "v=DKIM1; k=...; p=..."`` per key (RFC 6376 §3.6.2)
- ``_dmarc TXT "v=DMARC1; p=..."`` (RFC 7489 §6.1)
- ``_submission._tcp``, ``_submissions._tcp``, ``_imap(s)._tcp``, ``_pop3(s)._tcp``
  SRV records for client autodiscovery (RFC 6186 §3, RFC 8314 §5.1)

The MX host's A/AAAA goes into the zone that holds the host, when the node
serves that zone (``serving_zone``): the domain's own zone, or another of
the node's (``mail.hamburger.edu`` for ``crepes.fr``); elsewhere the owner of
that zone publishes it, and ``domain check`` says whether they did.

``mail_records()`` computes them (no I/O); ``publish()`` adds the missing
ones to the zone mailstack serves in one change (one serial bump);
``stale()`` finds what an earlier host name left behind (``domain
republish``); ``zone_text()`` prints them in master-file syntax for DNS
hosted elsewhere.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mailstack.errors import NotFound
from mailstack.msgauth.keys import txt_value
from mailstack.store import DkimKey, ZoneRecord, make_record

DEFAULT_TTL = 3600
# The preference of the MX record mailstack publishes (RFC 5321 §5.1).
MX_PREFERENCE = 10
DMARC_POLICIES = ("none", "quarantine", "reject")

# RFC 6186 §3 service labels (and RFC 8314 §5.1 for submissions) with the
# listen names that provide them.
SRV_SERVICES = (
    ("_submission._tcp", "submission"),
    ("_submissions._tcp", "submissions"),
    ("_imap._tcp", "imap"),
    ("_imaps._tcp", "imaps"),
    ("_pop3._tcp", "pop3"),
    ("_pop3s._tcp", "pop3s"),
)
SRV_LABELS = frozenset(label for label, _ in SRV_SERVICES)
SETUP_LABELS = ("autoconfig", "autodiscover")


def quoted_txt(text: str) -> str:
    """TXT rdata text: character-strings of at most 255 octets (RFC 1035 §3.3.14)."""
    chunks = [text[i : i + 255] for i in range(0, len(text), 255)] or [""]
    return " ".join('"' + c.replace("\\", "\\\\").replace('"', '\\"') + '"' for c in chunks)


def _inside(name: str, domain: str) -> bool:
    name, domain = name.lower().rstrip("."), domain.lower().rstrip(".")
    return name == domain or name.endswith("." + domain)


def mail_records(
    domain: str,
    host: str,
    *,
    addresses: Sequence[str] = (),
    ports: Mapping[str, int] | None = None,
    keys: Sequence[DkimKey] = (),
    dmarc_policy: str = "quarantine",
    ttl: int = DEFAULT_TTL,
) -> list[ZoneRecord]:
    """Every record ``domain`` needs when ``host`` is its mail server."""
    domain = domain.lower().rstrip(".")
    host = host.lower().rstrip(".")
    records = [make_record(domain, "@", "MX", f"{MX_PREFERENCE} {host}.", ttl)]
    if _inside(host, domain):
        records += host_records(domain, host, addresses, ttl)
    records.append(make_record(domain, "@", "TXT", quoted_txt("v=spf1 mx -all"), ttl))
    for key in keys:
        owner = f"{key.selector}._domainkey"
        records.append(make_record(domain, owner, "TXT", quoted_txt(txt_value(key)), ttl))
    dmarc = f"v=DMARC1; p={dmarc_policy}; adkim=r; aspf=r"
    records.append(make_record(domain, "_dmarc", "TXT", quoted_txt(dmarc), ttl))
    for label, service in SRV_SERVICES:
        port = (ports or {}).get(service)
        if port:
            records.append(make_record(domain, label, "SRV", f"0 1 {port} {host}.", ttl))
    # Where mail clients look for their settings (Thunderbird's autoconfig,
    # Microsoft's Autodiscover): the node's HTTP service answers there.
    for label in SETUP_LABELS:
        if f"{label}.{domain}" != host:
            records.append(make_record(domain, label, "CNAME", f"{host}.", ttl))
    return records


def host_records(
    origin: str, host: str, addresses: Sequence[str], ttl: int = DEFAULT_TTL
) -> list[ZoneRecord]:
    """The host's A and AAAA records in zone ``origin``."""
    out = []
    for address in addresses:
        kind = "A" if ipaddress.ip_address(address).version == 4 else "AAAA"
        out.append(make_record(origin, f"{host.rstrip('.')}.", kind, address, ttl))
    return out


def serving_zone(host: str, origins: Iterable[str]) -> str | None:
    """The closest enclosing zone of ``host`` among ``origins`` (absolute names)."""
    inside = [origin for origin in origins if _inside(host, origin)]
    return max(inside, key=len, default=None)


def stale(
    zone: Sequence[ZoneRecord], domain: str, host: str, wanted: Sequence[ZoneRecord]
) -> list[ZoneRecord]:
    """What an earlier mail host name left in ``domain``'s zone: the apex MX at
    our preference, the RFC 6186 SRV records, the autoconfig/autodiscover
    CNAMEs and the apex NS naming another host, and that host's A/AAAA
    inside the zone."""
    origin = domain.lower().rstrip(".") + "."
    target = host.lower().rstrip(".") + "."
    keep = {(r.name, r.rdtype, r.rdata) for r in wanted}
    old_hosts: set[str] = set()
    out = []
    for record in zone:
        if (record.name, record.rdtype, record.rdata) in keep:
            continue
        fields = record.rdata.split()
        if record.name == origin and record.rdtype == "MX" and fields[0] == str(MX_PREFERENCE):
            old_hosts.add(fields[1])
        elif record.rdtype == "SRV" and record.name[: -len(origin)].rstrip(".") in SRV_LABELS:
            old_hosts.add(fields[3])
        elif record.rdtype == "CNAME" and record.name[: -len(origin)].rstrip(".") in SETUP_LABELS:
            old_hosts.add(fields[0])
        else:
            continue
        out.append(record)
    old_hosts.discard(target)
    for record in zone:
        named_old = record.name in old_hosts and record.rdtype in ("A", "AAAA")
        ns_old = record.name == origin and record.rdtype == "NS" and record.rdata in old_hosts
        if (named_old or ns_old) and (record.name, record.rdtype, record.rdata) not in keep:
            out.append(record)
    return out


def zone_text(domain: str, records: Sequence[ZoneRecord]) -> str:
    lines = [f"; mail records for {domain.rstrip('.')} (mailstack)"]
    lines += [record.to_text() for record in records]
    return "\n".join(lines) + "\n"


def _is_policy(record: ZoneRecord, prefix: str) -> bool:
    return record.rdtype == "TXT" and record.rdata.lower().startswith(f'"{prefix}')


def missing(existing: Sequence[ZoneRecord], wanted: Sequence[ZoneRecord]) -> list[ZoneRecord]:
    """``wanted`` less what the zone already has; an SPF or DMARC record of the
    zone's own is kept (a second one would make both invalid: RFC 7208 §4.5,
    RFC 7489 §6.6.3)."""
    have = {(r.name, r.rdtype, r.rdata) for r in existing}
    out = []
    for record in wanted:
        if (record.name, record.rdtype, record.rdata) in have:
            continue
        prefix = "v=spf1" if _is_policy(record, "v=spf1") else ""
        if _is_policy(record, "v=dmarc1"):
            prefix = "v=dmarc1"
        if prefix and any(r.name == record.name and _is_policy(r, prefix) for r in existing):
            continue
        out.append(record)
    return out


async def publish(
    store: Any, domain: str, records: Sequence[ZoneRecord], *, nameserver: str
) -> tuple[int, int]:
    """Add the missing ``records`` to the managed zone ``domain`` (created if
    needed, ``nameserver`` as its NS). Returns (records added, zone serial)."""
    origin = domain.lower().rstrip(".") + "."
    try:
        zone = await store.zone_get(origin)
    except NotFound:
        zone = await store.zone_create(
            origin,
            nameservers=[nameserver.rstrip(".") + "."],
            hostmaster=f"hostmaster@{domain.rstrip('.')}",
        )
    added = missing(zone.records, records)
    if not added:
        return 0, zone.serial
    serial = await store.zone_apply(origin, [], added)
    return len(added), serial


async def unpublish_key(store: Any, key: DkimKey) -> bool:
    """Remove a key's selector record from the managed zone, if there is one."""
    try:
        await store.record_remove(key.domain, f"{key.selector}._domainkey", "TXT")
    except NotFound:
        return False
    return True

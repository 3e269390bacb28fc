"""The zones a server publishes, their change journals and who may change them.

The ``Catalog`` is the one place where a zone is replaced: it computes the
difference for IXFR (RFC 1995 §4), keeps a bounded journal per zone, and tells
its listeners (NOTIFY senders, RFC 1996 §4.5) that a serial moved.
"""

from __future__ import annotations

import ipaddress
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import dns.name

from mailstack.dns.authority import Authority
from mailstack.dns.zone import Zone, ZoneDiff, diff

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Persist = Callable[[Zone, ZoneDiff], Awaitable[None]]
JOURNAL_LENGTH = 100


@dataclass(slots=True)
class Acl:
    """Clients allowed by address, or by a TSIG key they signed with."""

    networks: list[IPNetwork] = field(default_factory=list)
    keys: set[dns.name.Name] = field(default_factory=set)

    @classmethod
    def of(cls, networks: Iterable[str] = (), keys: Iterable[str] = ()) -> Acl:
        return cls(
            [ipaddress.ip_network(n, strict=False) for n in networks],
            {dns.name.from_text(k) for k in keys},
        )

    def allows(self, client: str, key_name: dns.name.Name | None) -> bool:
        if key_name is not None and key_name in self.keys:
            return True
        try:
            address = ipaddress.ip_address(client)
        except ValueError:
            return False
        return any(address in network for network in self.networks)


class Catalog:
    """Zones, journals, transfer and update policy for one DNS server."""

    def __init__(
        self,
        authority: Authority | None = None,
        *,
        transfer_acl: Acl | None = None,
        update_acl: Acl | None = None,
    ) -> None:
        self.authority = authority or Authority()
        self.transfer_acl = transfer_acl or Acl()
        # RFC 2136 §3.3: UPDATE is authorised by a TSIG key, never by address.
        self.update_acl = update_acl or Acl()
        self.journals: dict[dns.name.Name, deque[ZoneDiff]] = {}
        # A zone whose changes must be made durable before an UPDATE is answered.
        self.persisters: dict[dns.name.Name, Persist] = {}
        self.listeners: list[Callable[[Zone], None]] = []

    def publish(self, zone: Zone) -> ZoneDiff | None:
        """Serve ``zone`` from now on; journal the change when the serial moved."""
        old = self.authority.zones.get(zone.origin)
        self.authority.set_zone(zone)
        change = None
        if old is not None and old.serial != zone.serial:
            change = diff(old, zone)
            journal = self.journals.setdefault(zone.origin, deque(maxlen=JOURNAL_LENGTH))
            if journal and journal[-1].new_serial != old.serial:
                journal.clear()
            journal.append(change)
        if old is None or old.serial != zone.serial:
            for listener in self.listeners:
                listener(zone)
        return change

    def remove(self, origin: dns.name.Name) -> None:
        self.authority.remove_zone(origin)
        self.journals.pop(origin, None)
        self.persisters.pop(origin, None)

    def changes_since(self, origin: dns.name.Name, serial: int) -> list[ZoneDiff] | None:
        """The journal from ``serial`` to now, or None when it does not reach back."""
        journal = self.journals.get(origin, ())
        out: list[ZoneDiff] = []
        found = False
        for change in journal:
            if change.old_serial == serial:
                found = True
            if found:
                out.append(change)
        return out if found else None

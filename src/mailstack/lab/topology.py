"""A lab topology: the hosts of a small Internet on loopback, read from TOML,
and the zones they serve written as master files (RFC 1035 §5).

Each zone gets its SOA (RFC 1035 §3.3.13), the NS records of the hosts that
serve it, the delegations to the topology's zones directly below it with
their glue (RFC 1034 §4.2.1), the A record of every lab host whose name falls
in it, and the host's own `records`. Mail domains are left to the mail host,
which makes them as `mailstack domain add` does.
"""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from mailstack.errors import ConfigError

ROLES = ("root", "tld", "authoritative", "resolver", "mail", "client")
# How the lab's name servers resolve for their clients: the local name
# server walks the hierarchy itself, or every server asked to recurse passes
# the question on one level down (the lectures' two figures).
RESOLUTIONS = ("iterative", "recursive")
# Every lab zone's timers: a negative answer is remembered briefly (RFC 2308
# §5: the SOA minimum), so that the `caching` scenario sees it expire.
TTL = 300
NEGATIVE_TTL = 5
# The address `lab up` knocks from to see that every host answers: no host
# may have it, and the live view does not draw it.
PROBE = "127.0.0.254"
# What a topology read from the shipped default.toml names as its source.
DEFAULT_SOURCE = "the default topology"


@dataclass(frozen=True, slots=True)
class User:
    address: str
    password: str


@dataclass(frozen=True, slots=True)
class Host:
    name: str
    address: str
    roles: tuple[str, ...]
    zones: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    users: tuple[User, ...] = ()
    records: tuple[str, ...] = ()
    resolver: str = ""
    update_key: str = ""
    dmarc_policy: str = "quarantine"
    message_auth: str = "record"
    # False: the parent zone does not delegate this host's zones yet (the
    # `register` scenario adds the delegation with an UPDATE).
    registered: bool = True

    @property
    def runs(self) -> bool:
        """Whether the host is a `mailstack serve` process (clients are names only)."""
        return any(role != "client" for role in self.roles)

    def services(self, offset: int) -> dict[str, int]:
        """The host's listeners and their ports (each the standard one plus ``offset``)."""
        ports: dict[str, int] = {}
        if self.runs:
            ports["dns"] = 53 + offset
        if "mail" in self.roles:
            ports |= {
                "smtp": 25 + offset,
                "submission": 587 + offset,
                "pop3": 110 + offset,
                "imap": 143 + offset,
                # The web server mail clients fetch their settings from
                # (autoconfig, Autodiscover), and the `http` scenario's.
                "http": 80 + offset,
            }
        return ports


@dataclass(frozen=True, slots=True)
class Topology:
    hosts: tuple[Host, ...]
    source: str = ""
    servers: dict[str, list[Host]] = field(default_factory=dict)
    resolution: str = "iterative"

    def host(self, name: str) -> Host:
        for host in self.hosts:
            if host.name == name:
                return host
        raise ConfigError(f"the topology has no host {name!r}")

    def with_role(self, role: str) -> list[Host]:
        return [host for host in self.hosts if role in host.roles]

    def zones(self) -> list[str]:
        """Every zone of the lab: those written as files and the mail domains."""
        return sorted(self.servers, key=lambda z: (len(_labels(z)), z))

    def parent(self, zone: str) -> str | None:
        """The lab zone directly above ``zone`` (None for the root)."""
        labels = _labels(zone)
        for cut in range(1, len(labels) + 1):
            candidate = ".".join(labels[cut:]) or "."
            if candidate in self.servers:
                return candidate
        return None

    def zone_of(self, name: str) -> str | None:
        """The deepest lab zone holding ``name``."""
        labels = _labels(name)
        for cut in range(len(labels) + 1):
            candidate = ".".join(labels[cut:]) or "."
            if candidate in self.servers:
                return candidate
        return None

    def root_hints(self, port_note: str = "") -> str:
        """named.root for the lab: its roots only."""
        lines = [f"; the lab's root servers{port_note}"]
        for host in self.with_role("root"):
            lines.append(f".\t3600000\tNS\t{host.name}.")
            lines.append(f"{host.name}.\t3600000\tA\t{host.address}")
        return "\n".join(lines) + "\n"

    def zone_text(self, zone: str, serial: int = 1) -> str:
        """The master file of a zone a lab host serves."""
        origin = "." if zone == "." else zone + "."
        servers = self.servers[zone]
        lines = [
            f"$ORIGIN {origin}",
            f"$TTL {TTL}",
            f"@\tIN\tSOA\t{servers[0].name}. hostmaster.{'lab.' if zone == '.' else origin} "
            f"{serial} 3600 600 86400 {NEGATIVE_TTL}",
        ]
        lines += [f"@\tIN\tNS\t{host.name}." for host in servers]
        glue: dict[str, str] = {}
        for child in self.zones():
            if child == zone or self.parent(child) != zone:
                continue
            if not any(host.registered for host in self.servers[child]):
                continue
            for host in self.servers[child]:
                lines.append(f"{child}.\tIN\tNS\t{host.name}.")
                # Glue: the address of a server named inside the cut (RFC 1034 §4.2.1).
                if self.zone_of(host.name) != zone:
                    glue[host.name] = host.address
        for host in self.hosts:
            if self.zone_of(host.name) == zone and host.registered:
                lines.append(f"{host.name}.\tIN\tA\t{host.address}")
        for name, address in sorted(glue.items()):
            lines.append(f"{name}.\tIN\tA\t{address}")
        for host in servers:
            if zone == host.zones[0]:
                lines += list(host.records)
        return "\n".join(lines) + "\n"


def _labels(name: str) -> list[str]:
    name = name.rstrip(".").lower()
    return name.split(".") if name else []


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: expected a list of strings")
    return tuple(value)


def _host(entry: Any, where: str) -> Host:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected a table")
    known = set(Host.__dataclass_fields__)
    for key in entry:
        if key not in known:
            raise ConfigError(f"{where}: unknown key {key!r} ({', '.join(sorted(known))})")
    for key in ("name", "address", "roles"):
        if key not in entry:
            raise ConfigError(f"{where}: {key} is required")
    name = str(entry["name"]).lower().rstrip(".")
    where = f"{where} ({name})"
    try:
        address = ipaddress.ip_address(entry["address"])
    except ValueError:
        raise ConfigError(f"{where}: bad address {entry['address']!r}") from None
    if not address.is_loopback or address.version != 4:
        raise ConfigError(f"{where}: the lab lives in 127.0.0.0/8, not at {address}")
    if str(address) == PROBE:
        raise ConfigError(f"{where}: {PROBE} is the lab's own (it checks the hosts from there)")
    roles = _strings(entry["roles"], f"{where}.roles")
    for role in roles:
        if role not in ROLES:
            raise ConfigError(f"{where}: unknown role {role!r} ({', '.join(ROLES)})")
    users = []
    for user in entry.get("users", []):
        if not isinstance(user, dict) or set(user) != {"address", "password"}:
            raise ConfigError(f"{where}.users: each is {{address, password}}")
        users.append(User(str(user["address"]), str(user["password"])))
    zones = tuple(z.lower().rstrip(".") or "." for z in _strings(entry.get("zones", []), where))
    if entry.get("records") and not zones:
        raise ConfigError(f"{where}: records need a zone to go in")
    return Host(
        name=name,
        address=str(address),
        roles=roles,
        zones=zones,
        domains=tuple(d.lower().rstrip(".") for d in _strings(entry.get("domains", []), where)),
        users=tuple(users),
        records=_strings(entry.get("records", []), f"{where}.records"),
        resolver=str(entry.get("resolver", "")).lower().rstrip("."),
        update_key=str(entry.get("update_key", "")),
        dmarc_policy=str(entry.get("dmarc_policy", "quarantine")),
        message_auth=str(entry.get("message_auth", "record")),
        registered=bool(entry.get("registered", True)),
    )


def parse(text: str, source: str) -> Topology:
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    extra = set(table) - {"host", "resolution"}
    if extra:
        raise ConfigError(
            f"{source}: unknown key(s) {', '.join(sorted(extra))} (only resolution and [[host]])"
        )
    resolution = table.get("resolution", "iterative")
    if resolution not in RESOLUTIONS:
        raise ConfigError(f"{source}: resolution is one of {', '.join(RESOLUTIONS)}")
    entries = table.get("host")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{source}: no [[host]]")
    hosts = tuple(_host(entry, f"{source}: host {i + 1}") for i, entry in enumerate(entries))
    seen: dict[str, str] = {}
    servers: dict[str, list[Host]] = {}
    for host in hosts:
        for key in (host.name, host.address):
            if key in seen:
                raise ConfigError(f"{source}: {key} is used by {seen[key]} and {host.name}")
            seen[key] = host.name
        for zone in host.zones + host.domains:
            servers.setdefault(zone, []).append(host)
    if "." not in servers:
        raise ConfigError(f'{source}: no host serves the root zone (zones = ["."])')
    topology = Topology(hosts, source, servers, resolution)
    for host in hosts:
        if host.resolver and "resolver" not in topology.host(host.resolver).roles:
            raise ConfigError(
                f"{source}: {host.name}'s resolver {host.resolver} has no resolver role"
            )
        if host.runs and topology.zone_of(host.name) is None:
            raise ConfigError(f"{source}: {host.name} is in no zone of the lab")
    return topology


def load(path: Path | None = None) -> Topology:
    """The topology in ``path``, else the shipped default (the lectures' world)."""
    if path is None:
        text = resources.files("mailstack.lab").joinpath("default.toml").read_text()
        return parse(text, DEFAULT_SOURCE)
    try:
        return parse(path.read_text(), str(path))
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None

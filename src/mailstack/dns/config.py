"""The `[dns]` table: zones, resolver, keys, transfers (limits live in `[limits]`).

The defaults run unprivileged and send no packet anywhere: the server answers
for its zones, offers recursion to loopback clients only, and the resolver
only starts walking from the root servers when such a client asks it to.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from dataclasses import dataclass, field
from typing import Any

import dns.exception
import dns.name
import dns.tsig

from mailstack.errors import ConfigError

ALGORITHMS = {
    "hmac-sha256": dns.tsig.HMAC_SHA256,
    "hmac-sha384": dns.tsig.HMAC_SHA384,
    "hmac-sha512": dns.tsig.HMAC_SHA512,
    "hmac-sha224": dns.tsig.HMAC_SHA224,
    "hmac-sha1": dns.tsig.HMAC_SHA1,
}


@dataclass(frozen=True, slots=True)
class ZoneFile:
    """A `[[dns.zone]]` entry: a master file, relative paths under the data directory."""

    file: str
    origin: str | None = None


@dataclass(frozen=True, slots=True)
class TsigKey:
    """A `[[dns.key]]` entry (RFC 8945): name, algorithm, base64 secret."""

    name: str
    secret: str
    algorithm: str = "hmac-sha256"

    def key(self) -> dns.tsig.Key:
        return dns.tsig.Key(self.name, self.secret, ALGORITHMS[self.algorithm])


@dataclass(frozen=True, slots=True)
class SecondaryZone:
    """A `[[dns.secondary]]` entry: a zone pulled from primaries by AXFR/IXFR."""

    origin: str
    primaries: tuple[tuple[str, int], ...]
    key: str | None = None


@dataclass(frozen=True, slots=True)
class ResolverConfig:
    # A file in named.root format; empty = the real root servers.
    root_hints: str = ""
    # Upstream "HOST:PORT" resolvers; when set, the resolver forwards to them.
    forwarders: tuple[tuple[str, int], ...] = ()
    # The port the iterative resolver sends to (53 on the Internet; the lab's).
    port: int = 53
    # Entries (RRsets and negative answers) kept in the cache.
    cache_size: int = 100_000
    # RFC 9156: reveal one label at a time to the servers above the answer.
    qname_minimisation: bool = True
    # Seconds to wait for one server before asking the next.
    timeout: float = 1.5


@dataclass(frozen=True, slots=True)
class DnsConfig:
    zones: tuple[ZoneFile, ...] = ()
    # Every *.zone file in this directory (under the data directory) is served.
    zones_dir: str = "zones"
    # Serve the zones mailstack manages in its store (`mailstack dns zone add`).
    managed_zones: bool = True
    # Clients that may use the recursive resolver (no open resolver, RFC 5358).
    recursion: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    resolver: ResolverConfig = field(default_factory=ResolverConfig)
    keys: tuple[TsigKey, ...] = ()
    # Who may AXFR/IXFR: networks and/or TSIG key names.
    allow_transfer: tuple[str, ...] = ()
    # TSIG key names allowed to send RFC 2136 UPDATEs.
    allow_update: tuple[str, ...] = ()
    # "HOST:PORT" secondaries sent a NOTIFY on every serial change (RFC 1996).
    notify: tuple[tuple[str, int], ...] = ()
    secondaries: tuple[SecondaryZone, ...] = ()

    def keyring(self) -> dict[dns.name.Name, dns.tsig.Key]:
        return {dns.name.from_text(k.name): k.key() for k in self.keys}

    @classmethod
    def from_table(cls, table: dict[str, Any]) -> DnsConfig:
        values: dict[str, Any] = {}
        for key, value in table.items():
            if key == "zone":
                values["zones"] = tuple(_zone(entry) for entry in _tables(value, "dns.zone"))
            elif key == "zones_dir":
                values[key] = _string(value, "dns.zones_dir")
            elif key == "managed_zones":
                values[key] = _bool(value, "dns.managed_zones")
            elif key == "recursion":
                values[key] = tuple(_network(n, key) for n in _strings(value, "dns.recursion"))
            elif key == "resolver":
                values[key] = _resolver(value)
            elif key == "key":
                values["keys"] = tuple(_key(entry) for entry in _tables(value, "dns.key"))
            elif key == "allow_transfer":
                values[key] = tuple(_strings(value, "dns.allow_transfer"))
            elif key == "allow_update":
                values[key] = tuple(_strings(value, "dns.allow_update"))
            elif key == "notify":
                values[key] = tuple(parse_server(v, "dns.notify") for v in _strings(value, key))
            elif key == "secondary":
                values["secondaries"] = tuple(
                    _secondary(entry) for entry in _tables(value, "dns.secondary")
                )
            else:
                raise ConfigError(f"dns.{key}: unknown option")
        config = cls(**values)
        names = {k.name.lower().rstrip(".") for k in config.keys}
        for key_name in config.allow_update + tuple(s.key for s in config.secondaries if s.key):
            if key_name.lower().rstrip(".") not in names:
                raise ConfigError(f"dns: key {key_name!r} is not defined in a [[dns.key]]")
        for entry in config.allow_transfer:
            if not _is_network(entry) and entry.lower().rstrip(".") not in names:
                raise ConfigError(f"dns.allow_transfer: {entry!r} is neither a network nor a key")
        return config

    @staticmethod
    def defaults_toml() -> str:
        return (
            "[dns]\n"
            "# Zone files in this directory (under the data directory) are served; the\n"
            "# origin is the file's $ORIGIN, else its name less .zone.\n"
            'zones_dir = "zones"\n'
            "# Serve the zones managed with `mailstack dns zone add` (kept in the store).\n"
            "managed_zones = true\n"
            "# Clients that may use the recursive resolver; everyone else gets REFUSED.\n"
            'recursion = ["127.0.0.0/8", "::1/128"]\n'
            "# Who may transfer zones (AXFR/IXFR): networks and/or TSIG key names.\n"
            "allow_transfer = []\n"
            "# TSIG key names that may change zones with dynamic UPDATE (RFC 2136).\n"
            "allow_update = []\n"
            '# Secondaries told of every change by NOTIFY (RFC 1996): ["HOST:PORT", ...].\n'
            "notify = []\n"
            '# More zone files:      [[dns.zone]]  file = "example.zone"  origin = "example."\n'
            '# TSIG keys (RFC 8945): [[dns.key]]   name = "k"  algorithm = "hmac-sha256"\n'
            '#                                     secret = "BASE64"\n'
            '# Secondary zones:      [[dns.secondary]]  origin = "example."\n'
            '#                       primaries = ["192.0.2.1:53"]  key = "k"\n'
            "\n"
            "[dns.resolver]\n"
            "# A named.root file of root hints; empty = the real root servers.\n"
            'root_hints = ""\n'
            '# Forward to these resolvers instead of iterating: ["HOST:PORT", ...].\n'
            "forwarders = []\n"
            "# The port iterative queries go to (53 on the Internet).\n"
            "port = 53\n"
            "# Cache entries (RRsets and negative answers).\n"
            "cache_size = 100000\n"
            "# QNAME minimisation (RFC 9156).\n"
            "qname_minimisation = true\n"
            "# Seconds to wait for one server before trying the next.\n"
            "timeout = 1.5\n"
        )


def _resolver(table: Any) -> ResolverConfig:
    if not isinstance(table, dict):
        raise ConfigError("dns.resolver: expected a table")
    values: dict[str, Any] = {}
    for key, value in table.items():
        where = f"dns.resolver.{key}"
        if key == "root_hints":
            values[key] = _string(value, where)
        elif key == "forwarders":
            values[key] = tuple(parse_server(v, where) for v in _strings(value, where))
        elif key in ("port", "cache_size"):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"{where}: expected a positive integer")
            if key == "port" and value > 65535:
                raise ConfigError(f"{where}: port out of range")
            values[key] = value
        elif key == "qname_minimisation":
            values[key] = _bool(value, where)
        elif key == "timeout":
            if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"{where}: expected seconds")
            values[key] = float(value)
        else:
            raise ConfigError(f"{where}: unknown option")
    return ResolverConfig(**values)


def _zone(entry: dict[str, Any]) -> ZoneFile:
    unknown = set(entry) - {"file", "origin"}
    if unknown:
        raise ConfigError(f"dns.zone.{sorted(unknown)[0]}: unknown option")
    if "file" not in entry:
        raise ConfigError("dns.zone.file: missing")
    origin = entry.get("origin")
    if origin is not None:
        _name(origin, "dns.zone.origin")
    return ZoneFile(_string(entry["file"], "dns.zone.file"), origin)


def _key(entry: dict[str, Any]) -> TsigKey:
    unknown = set(entry) - {"name", "secret", "algorithm"}
    if unknown:
        raise ConfigError(f"dns.key.{sorted(unknown)[0]}: unknown option")
    for required in ("name", "secret"):
        if required not in entry:
            raise ConfigError(f"dns.key.{required}: missing")
    name = _string(entry["name"], "dns.key.name")
    _name(name, "dns.key.name")
    secret = _string(entry["secret"], "dns.key.secret")
    try:
        base64.b64decode(secret, validate=True)
    except binascii.Error:
        raise ConfigError("dns.key.secret: expected base64") from None
    algorithm = _string(entry.get("algorithm", "hmac-sha256"), "dns.key.algorithm").lower()
    if algorithm not in ALGORITHMS:
        raise ConfigError(f"dns.key.algorithm: one of {', '.join(ALGORITHMS)}")
    return TsigKey(name, secret, algorithm)


def _secondary(entry: dict[str, Any]) -> SecondaryZone:
    unknown = set(entry) - {"origin", "primaries", "key"}
    if unknown:
        raise ConfigError(f"dns.secondary.{sorted(unknown)[0]}: unknown option")
    if "origin" not in entry or "primaries" not in entry:
        raise ConfigError("dns.secondary: needs origin and primaries")
    origin = _string(entry["origin"], "dns.secondary.origin")
    _name(origin, "dns.secondary.origin")
    primaries = tuple(
        parse_server(v, "dns.secondary.primaries")
        for v in _strings(entry["primaries"], "dns.secondary.primaries")
    )
    if not primaries:
        raise ConfigError("dns.secondary.primaries: at least one")
    key = entry.get("key")
    return SecondaryZone(origin, primaries, _string(key, "dns.secondary.key") if key else None)


def _tables(value: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ConfigError(f"{where}: expected [[{where}]] tables")
    return value


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected a string")
    return value


def _strings(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: expected a list of strings")
    return value


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false")
    return value


def _name(value: str, where: str) -> None:
    try:
        dns.name.from_text(value)
    except dns.exception.DNSException:
        raise ConfigError(f"{where}: bad domain name {value!r}") from None


def _is_network(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return True


def _network(value: str, key: str) -> str:
    if not _is_network(value):
        raise ConfigError(f"dns.{key}: bad network {value!r}")
    return value


def parse_server(value: str, where: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = value, "53"
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
        number = int(port)
    except ValueError:
        raise ConfigError(f"{where}: expected IP:PORT, got {value!r}") from None
    if not 0 < number <= 65535:
        raise ConfigError(f"{where}: port out of range in {value!r}")
    return host, number

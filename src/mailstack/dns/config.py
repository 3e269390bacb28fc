"""The `[dns]` table: zones, resolver, keys, transfers (limits live in `[limits]`).

Zone files (RFC 1035 §5), TSIG keys (RFC 8945), zone transfers (RFC 5936 AXFR,
RFC 1995 IXFR) with NOTIFY (RFC 1996), dynamic UPDATE (RFC 2136), and the
recursive resolver (RFC 9156 QNAME minimisation; RFC 5358: no open resolver).
mailstack.schema reads and writes these tables.

The defaults run unprivileged and send no packet anywhere: the server answers
for its zones, offers recursion to loopback clients only, and the resolver
only starts walking from the root servers when such a client asks it to.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from dataclasses import dataclass
from typing import Annotated, Any

import dns.exception
import dns.name
import dns.tsig

from mailstack.errors import ConfigError
from mailstack.schema import Convert, Invalid, address_text, option, required

ALGORITHMS = {
    "hmac-sha256": dns.tsig.HMAC_SHA256,
    "hmac-sha384": dns.tsig.HMAC_SHA384,
    "hmac-sha512": dns.tsig.HMAC_SHA512,
    "hmac-sha224": dns.tsig.HMAC_SHA224,
    "hmac-sha1": dns.tsig.HMAC_SHA1,
}


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise Invalid("expected a string")
    return value


def _domain_name(value: Any) -> str:
    try:
        dns.name.from_text(_string(value))
    except dns.exception.DNSException:
        raise Invalid(f"bad domain name {value!r}") from None
    return str(value)


def _secret(value: Any) -> str:
    try:
        base64.b64decode(_string(value), validate=True)
    except binascii.Error:
        raise Invalid("expected base64") from None
    return str(value)


def _algorithm(value: Any) -> str:
    algorithm = _string(value).lower()
    if algorithm not in ALGORITHMS:
        raise Invalid(f"expected one of {', '.join(ALGORITHMS)}")
    return algorithm


def _is_network(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return True


def _network(value: Any) -> str:
    if not _is_network(_string(value)):
        raise Invalid(f"bad network {value!r}")
    return str(value)


def _address(value: Any) -> str:
    """An IP address, or "" for none."""
    text = _string(value)
    if text:
        try:
            ipaddress.ip_address(text)
        except ValueError:
            raise Invalid(f"expected an IP address, got {text!r}") from None
    return text


def _server(value: Any) -> tuple[str, int]:
    """An "IP:PORT" (port 53 when left out; an IPv6 address in brackets)."""
    text = _string(value)
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = text, "53"
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
        number = int(port)
    except ValueError:
        raise Invalid(f"expected IP:PORT, got {text!r}") from None
    if not 0 < number <= 65535:
        raise Invalid(f"port out of range in {text!r}")
    return host, number


def _nsid_octets(text: str) -> bytes:
    if text[:2].lower() == "0x":
        return bytes.fromhex(text[2:])
    return text.encode()


def _nsid(value: Any) -> str:
    text = _string(value)
    try:
        octets = _nsid_octets(text)
    except ValueError:
        raise Invalid(f"bad hex in {text!r}") from None
    if len(octets) > 255:
        raise Invalid("at most 255 octets")
    return text


def parse_server(value: str, where: str) -> tuple[str, int]:
    """An "IP:PORT" given outside the file (`--server`); errors name `where`."""
    try:
        return _server(value)
    except Invalid as exc:
        raise ConfigError(f"{where}: {exc}") from None


DomainName = Annotated[str, Convert(_domain_name)]
Network = Annotated[str, Convert(_network)]
Server = Annotated[tuple[str, int], Convert(_server, address_text)]


@dataclass(frozen=True, slots=True)
class ZoneFile:
    """A `[[dns.zone]]` entry: a master file, relative paths under the data directory."""

    file: str = required("the master file; a relative path is under the data directory")
    origin: DomainName | None = option(None, "the zone's origin; default: the file's $ORIGIN")


@dataclass(frozen=True, slots=True)
class TsigKey:
    """A `[[dns.key]]` entry (RFC 8945): name, algorithm, base64 secret."""

    name: DomainName = required("the key's name")
    secret: Annotated[str, Convert(_secret)] = required("the shared secret, in base64")
    algorithm: Annotated[str, Convert(_algorithm)] = option(
        "hmac-sha256", f"one of {', '.join(ALGORITHMS)}"
    )

    def key(self) -> dns.tsig.Key:
        return dns.tsig.Key(self.name, self.secret, ALGORITHMS[self.algorithm])


@dataclass(frozen=True, slots=True)
class SecondaryZone:
    """A `[[dns.secondary]]` entry: a zone pulled from primaries by AXFR/IXFR."""

    origin: DomainName = required("the zone's origin")
    primaries: tuple[Server, ...] = required('the primaries: ["IP:PORT", ...]')
    key: str | None = option(None, "the name of the TSIG key that signs the transfers")

    def __post_init__(self) -> None:
        if not self.primaries:
            raise Invalid("at least one", key="primaries")


@dataclass(frozen=True, slots=True)
class ResolverConfig:
    root_hints: str = option(
        "", "a file of root hints in named.root format; empty = the real root servers"
    )
    forwarders: tuple[Server, ...] = option(
        (), 'forward to these resolvers instead of iterating: ["IP:PORT", ...]'
    )
    port: int = option(
        53, "the port iterative queries go to (53 on the Internet)", minimum=1, maximum=65535
    )
    cache_size: int = option(
        100_000, "entries kept in the cache (RRsets, negative answers, failures)", minimum=1
    )
    cache_bytes: int = option(
        64 * 1024 * 1024,
        "octets the cache may hold (RRsets, negative answers, failures)",
        minimum=1,
    )
    failure_ttl: float = option(
        5.0,
        "RFC 9520: seconds a failed question or an unresponsive server is held down at first",
        minimum=1.0,
        maximum=300.0,
    )
    failure_max_ttl: float = option(
        300.0,
        "RFC 9520: the most seconds a hold-down grows to while failures go on",
        minimum=1.0,
        maximum=300.0,
    )
    qname_minimisation: bool = option(
        True, "RFC 9156: reveal one label at a time to the servers above the answer"
    )
    timeout: float = option(
        1.5, "seconds to wait for one server before asking the next", positive=True
    )
    chain: bool = option(
        False,
        "answer a recursive query by passing it on, recursion desired, to the servers our "
        "own zones refer it to (else the root hints'): the recursive chain of the lectures",
    )
    source: Annotated[str, Convert(_address)] = option(
        "", "the local address queries are sent from; empty = the one the system picks"
    )


@dataclass(frozen=True, slots=True)
class DnsConfig:
    zones: tuple[ZoneFile, ...] = option((), "more zone files to serve", key="zone")
    zones_dir: str = option(
        "zones",
        "every *.zone file in this directory (under the data directory) is served; the "
        "origin is the file's $ORIGIN, else its name less .zone",
    )
    managed_zones: bool = option(
        True, "serve the zones managed with `mailstack dns zone add` (kept in the store)"
    )
    # No open resolver (RFC 5358).
    recursion: tuple[Network, ...] = option(
        ("127.0.0.0/8", "::1/128"),
        "clients that may use the recursive resolver; everyone else gets REFUSED",
    )
    resolver: ResolverConfig = option(ResolverConfig(), "the recursive resolver")
    keys: tuple[TsigKey, ...] = option((), "TSIG keys (RFC 8945)", key="key")
    allow_transfer: tuple[str, ...] = option(
        (), "who may transfer zones (AXFR/IXFR): networks and/or TSIG key names"
    )
    allow_update: tuple[str, ...] = option(
        (), "TSIG key names that may change zones with dynamic UPDATE (RFC 2136)"
    )
    notify: tuple[Server, ...] = option(
        (), 'secondaries told of every serial change by NOTIFY (RFC 1996): ["IP:PORT", ...]'
    )
    secondaries: tuple[SecondaryZone, ...] = option(
        (), "zones pulled from primaries by AXFR/IXFR", key="secondary"
    )
    nsid: Annotated[str, Convert(_nsid)] = option(
        "",
        "RFC 5001 name server identifier sent to clients that ask; text, or hex "
        'as "0x..."; empty = none',
    )
    identity: str = option(
        "", "the CHAOS TXT answer to id.server and hostname.bind; empty = REFUSED"
    )
    version: str = option(
        "", "the CHAOS TXT answer to version.bind and version.server; empty = REFUSED"
    )

    def __post_init__(self) -> None:
        names = {k.name.lower().rstrip(".") for k in self.keys}
        for where, key_names in (
            ("allow_update", self.allow_update),
            ("secondary", tuple(s.key for s in self.secondaries if s.key)),
        ):
            for key_name in key_names:
                if key_name.lower().rstrip(".") not in names:
                    raise Invalid(f"key {key_name!r} is not defined in a [[dns.key]]", where)
        for entry in self.allow_transfer:
            if not _is_network(entry) and entry.lower().rstrip(".") not in names:
                raise Invalid(f"{entry!r} is neither a network nor a key", "allow_transfer")

    def nsid_octets(self) -> bytes:
        return _nsid_octets(self.nsid)

    def keyring(self) -> dict[dns.name.Name, dns.tsig.Key]:
        return {dns.name.from_text(k.name): k.key() for k in self.keys}

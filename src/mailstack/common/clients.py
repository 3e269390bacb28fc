"""Client addresses and their network prefixes: what per-client caps and
throttles count by (issue 15).

One attacker usually holds more than one address: a whole IPv4 /24 or an
IPv6 /56 (RFC 6177 §3: end sites get a /48 to a /64). The session caps of
every TCP listener (`server.TcpService`) and the login throttle
(`auth.LoginThrottle`) count by the address and by its prefix, whose
lengths are `[limits] client_ipv4_prefix` and `client_ipv6_prefix`.
`SessionCounts` is one listener's count of open sessions; no I/O.
"""

from __future__ import annotations

import enum
import ipaddress

__all__ = ["CapReached", "SessionCounts", "client_prefix"]


def client_prefix(address: str, ipv4: int, ipv6: int) -> str:
    """The network ``address`` is in, as ``192.0.2.0/24``; an IPv4-mapped
    IPv6 address is taken as its IPv4 address. A string that is no IP
    address (a Unix socket's) is its own prefix."""
    try:
        ip = ipaddress.ip_address(address.partition("%")[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    length = ipv4 if ip.version == 4 else ipv6
    return str(ipaddress.ip_network((ip, length), strict=False))


class CapReached(enum.Enum):
    """Which cap refused a session (the word in the log line)."""

    TOTAL = "sessions"
    ADDRESS = "address"
    PREFIX = "prefix"
    LOGIN = "unauthenticated"


class SessionCounts:
    """Open sessions of one listener: in all, by client address, by prefix."""

    def __init__(
        self, *, total: int, per_address: int, per_prefix: int, ipv4: int, ipv6: int
    ) -> None:
        self.total = total
        self.per_address = per_address
        self.per_prefix = per_prefix
        self.ipv4 = ipv4
        self.ipv6 = ipv6
        self.open = 0
        self._by_key: dict[str, int] = {}

    def prefix(self, address: str) -> str:
        return client_prefix(address, self.ipv4, self.ipv6)

    def sessions(self, address: str) -> int:
        return self._by_key.get(address, 0)

    def admit(self, address: str) -> CapReached | None:
        """Count a new session from ``address``, or say which cap it would
        pass (then nothing is counted). An admitted session must be
        `release`d."""
        prefix = "net:" + self.prefix(address)
        if self.open >= self.total:
            return CapReached.TOTAL
        if self._by_key.get(address, 0) >= self.per_address:
            return CapReached.ADDRESS
        if self._by_key.get(prefix, 0) >= self.per_prefix:
            return CapReached.PREFIX
        self.open += 1
        for key in (address, prefix):
            self._by_key[key] = self._by_key.get(key, 0) + 1
        return None

    def release(self, address: str) -> None:
        self.open -= 1
        for key in (address, "net:" + self.prefix(address)):
            left = self._by_key.pop(key) - 1
            if left:
                self._by_key[key] = left

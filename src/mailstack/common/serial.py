"""Serial number arithmetic (RFC 1982) for DNS zone serials: the DNS
server's dynamic update and zone transfers (`mailstack.dns`) and the zones
the store keeps (`mailstack.store.zones`) compare and advance them alike."""

from __future__ import annotations

__all__ = ["next_serial", "serial_gt"]


def next_serial(serial: int) -> int:
    """The serial after ``serial`` in RFC 1982 arithmetic (never 0 wrap issues)."""
    return (serial + 1) % (1 << 32) or 1


def serial_gt(a: int, b: int) -> bool:
    """RFC 1982 §3.2: serial a is greater than serial b."""
    return a != b and ((a > b and a - b < 2**31) or (a < b and b - a > 2**31))

"""A safety switch: send nothing outside loopback.

With ``MAILSTACK_LOOPBACK_ONLY=1`` in the environment (the test suite, the
benchmarks and the lab set it), the resolver, the queue and the DNS
service's NOTIFY and zone pulls refuse any destination that is not a
loopback address (127.0.0.0/8, ::1), so a missing root-hints or MX setting
in a test can never send a packet to the Internet.
"""

from __future__ import annotations

import ipaddress
import os

from mailstack.errors import MailstackError

ENV = "MAILSTACK_LOOPBACK_ONLY"


class OutsideLoopback(MailstackError):
    """Refused to send outside loopback (MAILSTACK_LOOPBACK_ONLY is set)."""


def is_loopback(host: str) -> bool:
    """127.0.0.0/8 or ::1, also as a dual-stack listener sees an IPv4 peer
    (::ffff:127.0.0.1); a zone suffix (%lo) is ignored, a name is not loopback."""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def check_destination(address: str) -> None:
    if os.environ.get(ENV) != "1":
        return
    if not is_loopback(address):
        raise OutsideLoopback(f"refused to send to {address}: {ENV} is set")


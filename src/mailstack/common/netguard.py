"""A safety switch: send nothing outside loopback.

With ``MAILSTACK_LOOPBACK_ONLY=1`` in the environment (the test suite, the
benchmarks and the lab set it), the resolver and the queue refuse any
destination that is not a loopback address (127.0.0.0/8, ::1), so a missing
root-hints or MX setting in a test can never send a packet to the Internet.
"""

from __future__ import annotations

import ipaddress
import os

from mailstack.errors import MailstackError

ENV = "MAILSTACK_LOOPBACK_ONLY"


class OutsideLoopback(MailstackError):
    """Refused to send outside loopback (MAILSTACK_LOOPBACK_ONLY is set)."""


def check_destination(address: str) -> None:
    if os.environ.get(ENV) != "1":
        return
    try:
        loopback = ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise OutsideLoopback(f"refused to send to {address}: {ENV} is set")

"""The `[webmail]` table: what the webmail's server side may do for the browser."""

from __future__ import annotations

from dataclasses import dataclass

from mailstack.dns.config import Network
from mailstack.schema import option


@dataclass(frozen=True, slots=True)
class WebmailConfig:
    proxy_max_size: int = option(
        5 * 1024 * 1024,
        "octets a remote image fetched through the proxy may have",
        minimum=1024,
        maximum=100 * 1024 * 1024,
    )
    proxy_timeout: float = option(
        10.0, "seconds the proxy waits for a remote image", minimum=1.0, maximum=120.0
    )
    proxy_allow: tuple[Network, ...] = option(
        (),
        "networks the image proxy may fetch from besides public addresses (private, "
        "loopback and link-local ones are refused otherwise)",
    )
    proxy_link_lifetime: float = option(
        86400.0, "seconds a proxied image link stays valid", minimum=60.0
    )
    session_idle: float = option(
        8 * 3600.0,
        "seconds a webmail session may go unused before it ends (its token is "
        "then removed; the time of use is noted once a minute)",
        minimum=120.0,
    )
    session_lifetime: float = option(
        7 * 86400.0,
        "seconds a webmail session lasts from its login, however busy",
        minimum=300.0,
    )

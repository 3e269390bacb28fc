"""The `[queue]` table: how the queue runner delivers outbound mail (RFC 5321
§4.5.4.1: retry intervals, give-up time) and when it sends delayed DSNs (RFC
3464). mailstack.schema reads and writes this table; the submission servers'
`[submission]` table lives in mailstack.smtp.config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from mailstack.dns.config import Network
from mailstack.schema import Convert, Invalid, option

TlsMode = Literal["opportunistic", "require", "verify"]
TLS_MODES = ("opportunistic", "require", "verify")


def _tls_destination(value: Any) -> str:
    """A "DOMAIN=MODE" entry of tls_destinations."""
    if not isinstance(value, str) or value.count("=") != 1:
        raise Invalid(f'expected "DOMAIN=MODE", got {value!r}')
    domain, mode = (part.strip().lower() for part in value.split("="))
    if not domain or " " in domain or mode not in TLS_MODES:
        raise Invalid(f"{value!r}: MODE is one of {', '.join(TLS_MODES)}")
    return f"{domain.rstrip('.')}={mode}"


TlsDestination = Annotated[str, Convert(_tls_destination)]

DAY = 86400.0


@dataclass(frozen=True, slots=True)
class QueueConfig:
    enabled: bool = option(
        True, "run the queue runner in `mailstack serve` (nothing leaves the queue otherwise)"
    )
    port: int = option(
        25, "the TCP port of remote mail exchangers (25 on the Internet)", minimum=1, maximum=65535
    )
    helo: str = option("", "the name given in EHLO; empty means [node] hostname")
    chunking: bool = option(
        True,
        "send with BDAT (RFC 3030) where the server offers CHUNKING; false: always DATA "
        "(the lab, so that learners see 354)",
    )
    # RFC 5321 §4.5.4.1: first retry after retry_first seconds, then each wait
    # multiplied by retry_factor, at most retry_max; bounce after give_up.
    retry_first: float = option(300.0, "seconds before the first retry", minimum=0)
    retry_factor: float = option(
        2.0, "each following wait is the previous one times this", minimum=1
    )
    retry_max: float = option(3600.0, "the longest wait between retries", minimum=0)
    give_up: float = option(
        5 * DAY, "seconds in the queue before a message bounces (five days)", minimum=0
    )
    delay_warning: float = option(
        4 * 3600.0,
        'seconds after which the sender gets a "delayed" DSN (RFC 3464); 0 = never',
        minimum=0,
    )
    connections: int = option(50, "outbound connections in total", minimum=1)
    connections_per_domain: int = option(
        5, "outbound connections to one destination domain", minimum=1
    )
    messages_per_connection: int = option(
        100, "messages sent over one connection before it is reopened", minimum=1
    )
    connect_timeout: float = option(
        30.0, "seconds to wait for a TCP connection to a mail exchanger", minimum=0
    )
    poll: float = option(
        30.0, "seconds between looks for mail queued by other processes (the CLI)", minimum=0
    )
    # Transport security of outbound sessions (RFC 7435, RFC 8461, RFC 8460).
    tls: TlsMode = option(
        "opportunistic",
        "outbound TLS: opportunistic (STARTTLS when offered, certificate not checked), "
        "require (TLS or defer) or verify (TLS with a certificate valid for the MX host)",
    )
    tls_destinations: tuple[TlsDestination, ...] = option(
        (), 'per-destination TLS modes, "DOMAIN=MODE" (MODE as for tls)'
    )
    ca_file: str = option(
        "", "PEM bundle trusted for verify, MTA-STS and TLS-RPT; empty: the system's"
    )
    mta_sts: bool = option(True, "apply recipient domains' MTA-STS policies (RFC 8461)")
    mta_sts_timeout: float = option(
        60.0, "seconds a policy fetch may take", minimum=1.0, maximum=600.0
    )
    mta_sts_max_size: int = option(
        65536, "octets a policy may have", minimum=1024, maximum=1048576
    )
    fetch_allow: tuple[Network, ...] = option(
        (),
        "networks MTA-STS and TLS-RPT fetches may reach besides public addresses "
        "(private, loopback and link-local ones are refused otherwise)",
    )
    tls_reports: bool = option(
        True, "send daily TLS-RPT reports (RFC 8460) to the domains delivered to that ask"
    )

    def tls_mode(self, domain: str) -> str:
        """The configured TLS mode for a destination domain."""
        domain = domain.lower().rstrip(".")
        for entry in self.tls_destinations:
            name, _, mode = entry.partition("=")
            if name == domain:
                return mode
        return self.tls

    def retry_delay(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt (1, 2, ...)."""
        delay = self.retry_first * self.retry_factor ** max(attempts - 1, 0)
        return min(delay, max(self.retry_max, self.retry_first))

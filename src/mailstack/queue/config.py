"""The `[queue]` table: how the queue runner delivers outbound mail (RFC 5321
§4.5.4.1: retry intervals, give-up time) and when it sends delayed DSNs (RFC
3464). mailstack.schema reads and writes this table; the submission servers'
`[submission]` table lives in mailstack.smtp.config."""

from __future__ import annotations

from dataclasses import dataclass

from mailstack.schema import option

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

    def retry_delay(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt (1, 2, ...)."""
        delay = self.retry_first * self.retry_factor ** max(attempts - 1, 0)
        return min(delay, max(self.retry_max, self.retry_first))

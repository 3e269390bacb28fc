"""The `[queue]` and `[submission]` tables: outbound delivery and mail submission.

`[queue]` sets how the queue runner delivers (RFC 5321 §4.5.4.1: retry
intervals, give-up time) and bounces (RFC 3464 delayed DSNs); `[submission]`
sets the RFC 6409 message submission servers (`submission`, `submissions`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Self

from mailstack.errors import ConfigError

DAY = 86400.0


def _check(section: str, klass: Any, table: dict[str, Any]) -> dict[str, Any]:
    fields = {f.name: f for f in dataclasses.fields(klass)}
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in fields:
            raise ConfigError(f"{section}.{key}: unknown option")
        default = fields[key].default
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"{section}.{key}: expected true or false")
        elif isinstance(default, int | float):
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"{section}.{key}: expected a number >= 0")
            value = type(default)(value)
        elif isinstance(default, str):
            if not isinstance(value, str):
                raise ConfigError(f"{section}.{key}: expected a string")
        elif isinstance(default, tuple):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{section}.{key}: expected a list of strings")
            value = tuple(value)
        values[key] = value
    return values


@dataclass(frozen=True, slots=True)
class QueueConfig:
    # Run the queue runner in `mailstack serve` (nothing leaves the queue otherwise).
    enabled: bool = True
    # The TCP port of remote mail exchangers (25 on the Internet; the lab's own).
    port: int = 25
    # Name given in EHLO; empty means [node] hostname.
    helo: str = ""
    # RFC 5321 §4.5.4.1: first retry after this many seconds, then each wait
    # multiplied by retry_factor, at most retry_max.
    retry_first: float = 300.0
    retry_factor: float = 2.0
    retry_max: float = 3600.0
    # Give up (and bounce) this long after the message entered the queue.
    give_up: float = 5 * DAY
    # Send a "delayed" DSN (RFC 3464) once a message waited this long; 0 = never.
    delay_warning: float = 4 * 3600.0
    # Outbound connections in total, and to one destination domain.
    connections: int = 50
    connections_per_domain: int = 5
    # Messages carried by one connection before it is closed and reopened.
    messages_per_connection: int = 100
    # Seconds to wait for a TCP connection to a mail exchanger.
    connect_timeout: float = 30.0
    # Seconds between looks at the store for work queued by other processes.
    poll: float = 30.0

    @classmethod
    def from_table(cls, table: dict[str, Any]) -> Self:
        config = cls(**_check("queue", cls, table))
        if not 0 < config.port <= 65535:
            raise ConfigError("queue.port: out of range")
        if config.retry_factor < 1:
            raise ConfigError("queue.retry_factor: must be at least 1")
        for key in ("connections", "connections_per_domain", "messages_per_connection"):
            if getattr(config, key) < 1:
                raise ConfigError(f"queue.{key}: must be at least 1")
        return config

    def retry_delay(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt (1, 2, ...)."""
        delay = self.retry_first * self.retry_factor ** max(attempts - 1, 0)
        return min(delay, max(self.retry_max, self.retry_first))

    @staticmethod
    def defaults_toml() -> str:
        return (
            "[queue]\n"
            "# Deliver queued mail from `mailstack serve`.\n"
            "enabled = true\n"
            "# Port of remote mail exchangers (25 on the Internet).\n"
            "port = 25\n"
            "# Name given in EHLO; empty means [node] hostname.\n"
            'helo = ""\n'
            "# Retries (RFC 5321 §4.5.4.1): first after retry_first seconds, then each wait\n"
            "# times retry_factor, at most retry_max; bounce after give_up seconds.\n"
            "retry_first = 300.0\n"
            "retry_factor = 2.0\n"
            "retry_max = 3600.0\n"
            "give_up = 432000.0\n"
            '# Seconds after which the sender gets a "delayed" DSN; 0 = never.\n'
            "delay_warning = 14400.0\n"
            "# Outbound connections in total and per destination domain.\n"
            "connections = 50\n"
            "connections_per_domain = 5\n"
            "# Messages sent over one connection before it is reopened.\n"
            "messages_per_connection = 100\n"
            "# Seconds to wait for a TCP connection to a mail exchanger.\n"
            "connect_timeout = 30.0\n"
            "# Seconds between looks for mail queued by other processes (the CLI).\n"
            "poll = 30.0\n"
        )


@dataclass(frozen=True, slots=True)
class SubmissionConfig:
    # Name in the 220 greeting and Received: headers; empty means [node] hostname.
    hostname: str = ""
    # Offer STARTTLS on `submission` (RFC 3207); `submissions` is always TLS.
    starttls: bool = True
    # SASL mechanisms offered after TLS (RFC 4954).
    mechanisms: tuple[str, ...] = ("PLAIN", "LOGIN")
    # Allow AUTH without TLS from loopback clients (127.0.0.0/8, ::1) only.
    allow_plaintext_on_loopback: bool = False
    # RFC 6409 §8.2, §8.3: add a missing Date: and Message-ID:.
    add_date: bool = True
    add_message_id: bool = True
    # Put a copy of every submitted message into the sender's Sent mailbox.
    save_sent: bool = False

    @classmethod
    def from_table(cls, table: dict[str, Any]) -> Self:
        config = cls(**_check("submission", cls, table))
        unknown = {m.upper() for m in config.mechanisms} - {"PLAIN", "LOGIN"}
        if unknown:
            raise ConfigError(f"submission.mechanisms: {sorted(unknown)[0]} is not supported")
        return config

    @staticmethod
    def defaults_toml() -> str:
        return (
            "[submission]\n"
            "# Name in the 220 greeting and Received: headers; empty means [node] hostname.\n"
            'hostname = ""\n'
            "# Offer STARTTLS on the submission port (submissions is always TLS).\n"
            "starttls = true\n"
            "# SASL mechanisms offered once TLS is on (RFC 4954).\n"
            'mechanisms = ["PLAIN", "LOGIN"]\n'
            "# Allow AUTH without TLS from loopback clients only.\n"
            "allow_plaintext_on_loopback = false\n"
            "# Add a missing Date: and Message-ID: (RFC 6409 §8).\n"
            "add_date = true\n"
            "add_message_id = true\n"
            "# Keep a copy of every submitted message in the sender's Sent mailbox.\n"
            "save_sent = false\n"
        )

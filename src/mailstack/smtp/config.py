"""The `[smtp]` table: the SMTP receiver's options (limits live in `[limits]`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailstack.errors import ConfigError


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    # The name in the 220 greeting and Received: headers; empty = [node] hostname.
    hostname: str = ""
    # Offer STARTTLS on the MX port (RFC 3207) when a certificate exists.
    starttls: bool = True

    @classmethod
    def from_table(cls, table: dict[str, Any]) -> SmtpConfig:
        known = {"hostname": str, "starttls": bool}
        for key, value in table.items():
            if key not in known:
                raise ConfigError(f"smtp.{key}: unknown option")
            if not isinstance(value, known[key]):
                raise ConfigError(f"smtp.{key}: expected {known[key].__name__}")
        return cls(**table)

    @staticmethod
    def defaults_toml() -> str:
        return (
            "[smtp]\n"
            "# Name in the 220 greeting and Received: headers; empty means [node] hostname.\n"
            'hostname = ""\n'
            "# Offer STARTTLS (RFC 3207) on the SMTP receiver.\n"
            "starttls = true\n"
        )

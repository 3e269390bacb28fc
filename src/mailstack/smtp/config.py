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
    # SPF/DKIM/DMARC on received mail (mailstack.msgauth): "record" adds an
    # Authentication-Results field; "enforce" also rejects (550 5.7.1) or
    # files in Junk what fails DMARC with p=reject or p=quarantine; "off".
    message_auth: str = "record"

    @classmethod
    def from_table(cls, table: dict[str, Any]) -> SmtpConfig:
        known = {"hostname": str, "starttls": bool, "message_auth": str}
        for key, value in table.items():
            if key not in known:
                raise ConfigError(f"smtp.{key}: unknown option")
            if not isinstance(value, known[key]):
                raise ConfigError(f"smtp.{key}: expected {known[key].__name__}")
        if table.get("message_auth", "record") not in ("off", "record", "enforce"):
            raise ConfigError("smtp.message_auth: expected off, record or enforce")
        return cls(**table)

    @staticmethod
    def defaults_toml() -> str:
        return (
            "[smtp]\n"
            "# Name in the 220 greeting and Received: headers; empty means [node] hostname.\n"
            'hostname = ""\n'
            "# Offer STARTTLS (RFC 3207) on the SMTP receiver.\n"
            "starttls = true\n"
            "# SPF/DKIM/DMARC checks on received mail: record (an Authentication-Results\n"
            "# field), enforce (also reject or quarantine per the sender's DMARC policy), off.\n"
            'message_auth = "record"\n'
        )

"""The `[pop3]` table: the POP3 server's options (limits live in `[limits]`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailstack.common.sasl import MECHANISMS
from mailstack.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Pop3Config:
    # Allow USER/PASS and AUTH without TLS from a loopback peer (127.0.0.0/8,
    # ::1). Everywhere else plaintext logins need STLS or pop3s (RFC 2595 §2.2).
    allow_plaintext_on_loopback: bool = True
    # Offer STLS (RFC 2595 §4) when the node has a certificate.
    starttls: bool = True
    # SASL mechanisms offered by AUTH (RFC 5034), in order of preference.
    mechanisms: tuple[str, ...] = ("PLAIN", "LOGIN")
    # RFC 2449 §6.9 IMPLEMENTATION capability text.
    implementation: str = "mailstack"
    # RFC 2449 §6.5 LOGIN-DELAY: minimum seconds between two logins of one
    # account; 0 = no delay.
    login_delay: int = 0
    # RFC 2449 §6.7 EXPIRE: None = NEVER (messages stay until deleted); 0 =
    # retrieved messages are removed at QUIT; N = retrieved (seen) messages
    # older than N days are removed when the maildrop is opened.
    expire_days: int | None = None

    @classmethod
    def from_table(cls, table: dict[str, Any]) -> Pop3Config:
        values: dict[str, Any] = {}
        for key, value in table.items():
            if key in ("allow_plaintext_on_loopback", "starttls"):
                if not isinstance(value, bool):
                    raise ConfigError(f"pop3.{key}: expected true or false")
                values[key] = value
            elif key == "mechanisms":
                if not isinstance(value, list) or not all(isinstance(m, str) for m in value):
                    raise ConfigError("pop3.mechanisms: expected a list of names")
                names = tuple(m.upper() for m in value)
                unknown = [m for m in names if m not in MECHANISMS]
                if unknown:
                    raise ConfigError(f"pop3.mechanisms: unknown mechanism {unknown[0]}")
                values[key] = names
            elif key == "implementation":
                if not isinstance(value, str) or not value.isprintable() or len(value) > 200:
                    raise ConfigError("pop3.implementation: expected a short printable string")
                values[key] = value
            elif key == "login_delay":
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    raise ConfigError("pop3.login_delay: expected seconds (0 or more)")
                values[key] = value
            elif key == "expire":
                values["expire_days"] = _expire(value)
            else:
                raise ConfigError(f"pop3.{key}: unknown option")
        return cls(**values)

    @staticmethod
    def defaults_toml() -> str:
        return (
            "[pop3]\n"
            "# USER/PASS and AUTH without TLS from 127.0.0.0/8 and ::1; elsewhere STLS or pop3s.\n"
            "allow_plaintext_on_loopback = true\n"
            "# Offer STLS (RFC 2595) when the node has a certificate.\n"
            "starttls = true\n"
            "# SASL mechanisms for AUTH (RFC 5034). APOP is not offered: it needs\n"
            "# cleartext passwords, and the store keeps only Argon2id hashes.\n"
            'mechanisms = ["PLAIN", "LOGIN"]\n'
            "# IMPLEMENTATION capability text (RFC 2449).\n"
            'implementation = "mailstack"\n'
            "# LOGIN-DELAY (RFC 2449): minimum seconds between logins of one account; 0 = none.\n"
            "login_delay = 0\n"
            '# EXPIRE (RFC 2449): "never", 0 (retrieved mail is removed at QUIT), or N days\n'
            "# after which retrieved mail is removed.\n"
            'expire = "never"\n'
        )


def _expire(value: object) -> int | None:
    if isinstance(value, str) and value.lower() == "never":
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise ConfigError('pop3.expire: expected "never" or a number of days (0 or more)')

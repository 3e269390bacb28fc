"""The `[imap]` table: the IMAP server's options (limits live in `[limits]`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailstack.errors import ConfigError


@dataclass(frozen=True, slots=True)
class ImapConfig:
    # LOGIN and AUTHENTICATE without TLS from a loopback peer (127.0.0.0/8,
    # ::1); elsewhere they need STARTTLS or imaps (RFC 3501 §6.2.3, LOGINDISABLED).
    allow_plaintext_on_loopback: bool = True
    # Offer STARTTLS (RFC 3501 §6.2.1) when the node has a certificate.
    starttls: bool = True
    # RFC 2971 ID: the name the server gives; empty sends NIL.
    implementation: str = "mailstack"
    # Seconds a successful login is remembered (an HMAC of the password and the
    # stored hash it matched) so that logging in again skips the Argon2id
    # verification; a changed password is noticed at once. 0 = always verify.
    # The node's authenticator applies it to every protocol's logins.
    login_cache_seconds: float = 600.0

    @classmethod
    def from_table(cls, table: dict[str, Any]) -> ImapConfig:
        values: dict[str, Any] = {}
        for key, value in table.items():
            if key in ("allow_plaintext_on_loopback", "starttls"):
                if not isinstance(value, bool):
                    raise ConfigError(f"imap.{key}: expected true or false")
                values[key] = value
            elif key == "login_cache_seconds":
                if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                    raise ConfigError("imap.login_cache_seconds: expected seconds (0 or more)")
                values[key] = float(value)
            elif key == "implementation":
                if not isinstance(value, str) or not value.isprintable() or len(value) > 200:
                    raise ConfigError("imap.implementation: expected a short printable string")
                values[key] = value
            else:
                raise ConfigError(f"imap.{key}: unknown option")
        return cls(**values)

    @staticmethod
    def defaults_toml() -> str:
        return (
            "[imap]\n"
            "# LOGIN/AUTHENTICATE without TLS from 127.0.0.0/8 and ::1; elsewhere\n"
            "# STARTTLS or imaps first (the server advertises LOGINDISABLED).\n"
            "allow_plaintext_on_loopback = true\n"
            "# Offer STARTTLS (RFC 3501 §6.2.1) when the node has a certificate.\n"
            "starttls = true\n"
            "# Server name sent in the ID response (RFC 2971).\n"
            'implementation = "mailstack"\n'
            "# Seconds a successful login is remembered (an HMAC of the password, never\n"
            "# the password, with the stored hash it matched) so logging in again skips\n"
            "# Argon2id; a changed password takes effect at once. 0 = verify every time.\n"
            "login_cache_seconds = 600\n"
        )

"""The `[pop3]` table: the POP3 server's options (RFC 1939, RFC 2449
capabilities, RFC 2595 STLS, RFC 5034 AUTH). Limits live in `[limits]`;
mailstack.schema reads and writes this table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from mailstack.common.sasl import MECHANISMS
from mailstack.schema import Convert, Invalid, ShortText, option


def _mechanism(value: Any) -> str:
    if not isinstance(value, str) or value.upper() not in MECHANISMS:
        raise Invalid(f"unknown mechanism {value!r} (known: {', '.join(MECHANISMS)})")
    return value.upper()


def _expire(value: Any) -> int | None:
    if isinstance(value, str) and value.lower() == "never":
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise Invalid('expected "never" or a number of days (0 or more)')


Mechanism = Annotated[str, Convert(_mechanism)]
# RFC 2449 §6.7 EXPIRE: None is NEVER.
Expire = Annotated[int | None, Convert(_expire, lambda days: "never" if days is None else days)]


@dataclass(frozen=True, slots=True)
class Pop3Config:
    # Everywhere but loopback, plaintext logins need STLS or pop3s (RFC 2595 §2.2).
    allow_plaintext_on_loopback: bool = option(
        True, "USER/PASS and AUTH without TLS from 127.0.0.0/8 and ::1; elsewhere STLS or pop3s"
    )
    starttls: bool = option(True, "offer STLS (RFC 2595 §4) when the node has a certificate")
    mechanisms: tuple[Mechanism, ...] = option(
        ("PLAIN", "LOGIN"),
        "SASL mechanisms for AUTH (RFC 5034), in order of preference. APOP is not offered: "
        "it needs cleartext passwords, and the store keeps only Argon2id hashes",
    )
    implementation: ShortText = option(
        "mailstack", "IMPLEMENTATION capability text (RFC 2449 §6.9)"
    )
    login_delay: int = option(
        0,
        "LOGIN-DELAY (RFC 2449 §6.5): minimum seconds between logins of one account; 0 = none",
        minimum=0,
    )
    expire_days: Expire = option(
        None,
        'EXPIRE (RFC 2449 §6.7): "never", 0 (retrieved mail is removed at QUIT), or N days '
        "after which retrieved mail is removed when the maildrop is opened",
        key="expire",
    )

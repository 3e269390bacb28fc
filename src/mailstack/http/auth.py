"""Who is asking: HTTP Basic (RFC 7617) and bearer tokens (RFC 6750 §2.1),
both checked by the node's authenticator (common/auth.py), which throttles
and logs failures as it does for IMAP (``protocol=http``).

Credentials travel only over TLS (RFC 7617 §4, RFC 6750 §5.3), or over
plain HTTP from loopback when ``[http] allow_plaintext_on_loopback`` says so.
A request without credentials gets 401 with a challenge for each scheme
(RFC 9110 §11.6.1); a wrong token the ``invalid_token`` error (RFC 6750 §3).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from mailstack.common.auth import Outcome

REALM = "mailstack"

# RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


@dataclass(frozen=True, slots=True)
class Basic:
    user: str
    password: str


@dataclass(frozen=True, slots=True)
class Bearer:
    token: str


@dataclass(frozen=True, slots=True)
class Malformed:
    """An Authorization field we cannot read; ``scheme`` as it named itself."""

    scheme: str


def parse_authorization(value: str) -> Basic | Bearer | Malformed:
    """The credentials of an Authorization field value (RFC 9110 §11.6.2;
    scheme names are case-insensitive, §11.1)."""
    scheme, _, rest = value.strip().partition(" ")
    rest = rest.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(rest, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return Malformed("basic")
        user, colon, password = decoded.partition(":")
        if not colon or not user:
            return Malformed("basic")
        return Basic(user, password)
    if scheme.lower() == "bearer":
        if not _B64TOKEN.fullmatch(rest):
            return Malformed("bearer")
        return Bearer(rest)
    return Malformed(scheme.lower()[:20])


def bearer_challenge(error: str | None = None) -> str:
    """The Bearer challenge, with ``error`` when a token was refused (RFC 6750 §3)."""
    bearer = f'Bearer realm="{REALM}"'
    if error is not None:
        bearer += f', error="{error}"'
    return bearer


def challenges(error: str | None = None) -> str:
    """The WWW-Authenticate value: Basic (UTF-8, RFC 7617 §2.1) and Bearer."""
    return f'Basic realm="{REALM}", charset="UTF-8", {bearer_challenge(error)}'


# What an authenticator outcome other than OK answers: status and title.
REFUSALS: dict[Outcome, tuple[int, str]] = {
    Outcome.FAILED: (401, "The credentials are not valid."),
    Outcome.THROTTLED: (429, "Too many failed logins: try again later."),
    Outcome.UNAVAILABLE: (503, "Logins cannot be checked now: try again later."),
}

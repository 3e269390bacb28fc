"""The `[smtp]` and `[submission]` tables: the SMTP receiver (RFC 5321) and the
message submission servers (RFC 6409: `submission`, and `submissions` over
implicit TLS, RFC 8314). Limits live in `[limits]`; mailstack.schema reads and
writes these tables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from mailstack.common.sasl import MECHANISMS
from mailstack.schema import Convert, Invalid, option


def _mechanism(value: Any) -> str:
    # Kept as written: the server upper-cases the names it offers.
    if not isinstance(value, str) or value.upper() not in MECHANISMS:
        raise Invalid(f"expected mechanisms among {', '.join(MECHANISMS)}, got {value!r}")
    return value


Mechanism = Annotated[str, Convert(_mechanism)]


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    hostname: str = option(
        "", "the name in the 220 greeting and Received: headers; empty means [node] hostname"
    )
    starttls: bool = option(True, "offer STARTTLS (RFC 3207) when the node has a certificate")
    # Authentication-Results is RFC 8601; the policies are DMARC's (RFC 7489 §6.3).
    message_auth: Literal["off", "record", "enforce"] = option(
        "record",
        "SPF/DKIM/DMARC on received mail: record (an Authentication-Results field), "
        "enforce (also reject or quarantine per the sender's DMARC policy), off",
    )


@dataclass(frozen=True, slots=True)
class SubmissionConfig:
    hostname: str = option(
        "", "the name in the 220 greeting and Received: headers; empty means [node] hostname"
    )
    starttls: bool = option(
        True, "offer STARTTLS (RFC 3207) on submission; submissions is always TLS"
    )
    mechanisms: tuple[Mechanism, ...] = option(
        ("PLAIN", "LOGIN"), "SASL mechanisms offered once TLS is on (RFC 4954)"
    )
    allow_plaintext_on_loopback: bool = option(
        False, "allow AUTH without TLS from loopback clients (127.0.0.0/8, ::1) only"
    )
    add_date: bool = option(True, "add a missing Date: (RFC 6409 §8.2)")
    add_message_id: bool = option(True, "add a missing Message-ID: (RFC 6409 §8.3)")
    save_sent: bool = option(
        False, "keep a copy of every submitted message in the sender's Sent mailbox"
    )

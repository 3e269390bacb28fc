"""What one delivery attempt came to for one recipient, and whether the
sender asked to hear of it.

`Outcome` is the result of an attempt however it was made: a remote SMTP
reply (the SMTP client), a connection or DNS failure (the client, routing), a
delivery into our own mailboxes (the queue's local delivery); its ``status``
is an RFC 3463 enhanced status code. The queue's policy turns it into the
recipient's new state and report. `wants` reads a recipient's RFC 3461
NOTIFY parameter, for the queue and for mail delivered outside it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["Kind", "Outcome", "wants"]

Kind = Literal["delivered", "temporary", "permanent"]

_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})\b")


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one attempt for one recipient.

    ``reply`` is the remote SMTP reply ("550 5.1.1 User unknown") when there
    was one (``remote`` is True), else our own explanation; ``status`` is the
    RFC 3463 code; ``remote_mta`` the host that answered; ``dsn_passed`` is
    True when the next server took the RFC 3461 parameters, so that server
    and not we will report success; ``local`` for a delivery into our own
    mailboxes.
    """

    kind: Kind
    status: str
    reply: str
    remote: bool = False
    remote_mta: str | None = None
    dsn_passed: bool = False
    local: bool = False

    @classmethod
    def from_reply(
        cls, code: int, text: str, remote_mta: str | None, *, dsn_passed: bool = False
    ) -> Outcome:
        kind: Kind = "delivered" if code < 400 else "temporary" if code < 500 else "permanent"
        match = _ENHANCED.match(text)
        if match and match.group(1) == str(code)[0]:
            status = match.group(0)
        else:
            # RFC 3463 §3.1: without a detail, the class with subject and detail 0.
            status = f"{str(code)[0]}.0.0"
        reply = f"{code} {text}".strip().replace("\r", " ").replace("\n", " ")
        return cls(kind, status, reply, True, remote_mta, dsn_passed)

    @classmethod
    def temporary(cls, status: str, reason: str, remote_mta: str | None = None) -> Outcome:
        return cls("temporary", status, reason, False, remote_mta)

    @classmethod
    def permanent(cls, status: str, reason: str, remote_mta: str | None = None) -> Outcome:
        return cls("permanent", status, reason, False, remote_mta)


def wants(notify: str | None, what: str) -> bool:
    """RFC 3461 §4.1: without NOTIFY, failures (and, our choice, delays) are reported."""
    if notify is None:
        return what in ("FAILURE", "DELAY")
    return what in notify.upper().split(",")

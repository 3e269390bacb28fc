"""What one delivery attempt does to one recipient: plain logic, no I/O, no clock.

`Outcome` is what an attempt came to (a remote reply, a connection failure,
a DNS answer, a local delivery). `decide()` turns it, with the time ``now``
given by the caller, into the recipient's new state (`RecipientUpdate`) and
the report, if any, that the envelope sender gets:

* 2xx: delivered. A "delivered" (local) or "relayed" (the next server does
  not speak DSN) report only when NOTIFY has SUCCESS (RFC 3461 §4.1).
* 5xx: failed at once, "failed" report unless NOTIFY excludes FAILURE.
* 4xx and connection/DNS trouble: retried with exponential backoff
  (RFC 5321 §4.5.4.1: "the retry interval SHOULD be at least 30 minutes"
  between attempts to one destination is the spirit; the first retry after
  a few minutes is the common practice) until the give-up time, then failed
  with 4.4.7 (RFC 3463 "Delivery time expired"). Once a message waited past
  ``delay_warning`` one "delayed" report goes out (RFC 3464 §2.3.3) if
  NOTIFY allows DELAY.
* A null reverse-path never gets a report (RFC 5321 §4.5.5, §6.1: no bounce
  loops), nor does a recipient with NOTIFY=NEVER.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from mailstack.queue.config import QueueConfig
from mailstack.store import (
    DELIVERED,
    FAILED,
    QUEUED,
    QueuedRecipient,
    QueueEntry,
    RecipientUpdate,
)

Kind = Literal["delivered", "temporary", "permanent"]
Action = Literal["failed", "delayed", "delivered", "relayed"]

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


@dataclass(frozen=True, slots=True)
class Report:
    """One recipient's line in a DSN (RFC 3464 §2.3)."""

    address: str
    orcpt: str | None
    action: Action
    status: str
    diagnostic: str | None  # the remote SMTP reply, for Diagnostic-Code: smtp;
    reason: str  # a sentence for the human-readable part
    remote_mta: str | None
    last_attempt: float
    will_retry_until: float | None = None


def wants(notify: str | None, what: str) -> bool:
    """RFC 3461 §4.1: without NOTIFY, failures (and, our choice, delays) are reported."""
    if notify is None:
        return what in ("FAILURE", "DELAY")
    return what in notify.upper().split(",")


def decide(
    entry: QueueEntry,
    rcpt: QueuedRecipient,
    outcome: Outcome,
    now: float,
    config: QueueConfig,
) -> tuple[RecipientUpdate, Report | None]:
    attempts = rcpt.attempts + 1
    may_report = entry.mail_from != ""
    if outcome.kind == "delivered":
        update = RecipientUpdate(rcpt.id, DELIVERED, now, outcome.reply)
        if may_report and wants(rcpt.notify, "SUCCESS") and not outcome.dsn_passed:
            action: Action = "delivered" if outcome.local else "relayed"
            return update, _report(rcpt, action, outcome, now)
        return update, None
    if outcome.kind == "temporary" and now < entry.expires:
        next_attempt = min(now + config.retry_delay(attempts), entry.expires)
        warn = (
            may_report
            and config.delay_warning > 0
            and not rcpt.delay_notified
            and now - entry.created >= config.delay_warning
            and wants(rcpt.notify, "DELAY")
        )
        update = RecipientUpdate(
            rcpt.id, QUEUED, next_attempt, outcome.reply, delay_notified=bool(warn)
        )
        if warn:
            report = _report(rcpt, "delayed", outcome, now, will_retry_until=entry.expires)
            return update, report
        return update, None
    if outcome.kind == "temporary":
        outcome = Outcome(
            "permanent",
            "4.4.7",
            outcome.reply,
            outcome.remote,
            outcome.remote_mta,
        )
    update = RecipientUpdate(rcpt.id, FAILED, now, outcome.reply)
    if may_report and wants(rcpt.notify, "FAILURE"):
        return update, _report(rcpt, "failed", outcome, now)
    return update, None


def _report(
    rcpt: QueuedRecipient,
    action: Action,
    outcome: Outcome,
    now: float,
    *,
    will_retry_until: float | None = None,
) -> Report:
    if outcome.status == "4.4.7":
        reason = f"gave up after repeated temporary failures: {outcome.reply}"
    else:
        reason = outcome.reply
    return Report(
        address=rcpt.address,
        orcpt=rcpt.orcpt,
        action=action,
        status=outcome.status,
        diagnostic=outcome.reply if outcome.remote else None,
        reason=reason,
        remote_mta=outcome.remote_mta,
        last_attempt=now,
        will_retry_until=will_retry_until,
    )

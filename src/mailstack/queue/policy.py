"""What one delivery attempt does to one recipient: plain logic, no I/O, no clock.

`decide()` turns what an attempt came to (an `Outcome` of
`mailstack.delivery.status`: a remote reply, a connection failure, a DNS
answer, a local delivery), with the time ``now`` given by the caller, into
the recipient's new state (`RecipientUpdate`) and the report, if any, that
the envelope sender gets:

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

from dataclasses import dataclass
from typing import Literal

from mailstack.delivery.status import Outcome, wants
from mailstack.queue.config import QueueConfig
from mailstack.store import (
    DELIVERED,
    FAILED,
    QUEUED,
    QueuedRecipient,
    QueueEntry,
    RecipientUpdate,
)

Action = Literal["failed", "delayed", "delivered", "relayed"]


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

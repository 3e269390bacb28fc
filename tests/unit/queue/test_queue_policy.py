"""Retry schedule, give-up and which DSN an outcome causes: plain logic, fake times."""

from __future__ import annotations

import pytest

from mailstack.delivery.status import Outcome
from mailstack.queue.config import QueueConfig
from mailstack.queue.policy import decide
from mailstack.store import DELIVERED, FAILED, QUEUED, QueuedRecipient, QueueEntry

CONFIG = QueueConfig(retry_first=300, retry_factor=2, retry_max=3600, delay_warning=4 * 3600)
T0 = 1_000_000.0


def entry(mail_from="alice@crepes.fr", created=T0, expires=T0 + 5 * 86400) -> QueueEntry:
    return QueueEntry(1, mail_from, created, expires, None, None, False, None, 10, ())


def rcpt(attempts=0, notify=None, delay_notified=False) -> QueuedRecipient:
    return QueuedRecipient(
        7, "bob@hamburger.edu", QUEUED, attempts, T0, "", notify, None, delay_notified
    )


def test_backoff_doubles_up_to_the_cap():
    assert [CONFIG.retry_delay(n) for n in range(1, 7)] == [300, 600, 1200, 2400, 3600, 3600]


def test_temporary_failure_is_retried_with_backoff():
    update, report = decide(entry(), rcpt(attempts=2), Outcome.temporary("4.4.1", "x"), T0, CONFIG)
    assert update.state == QUEUED and update.next_attempt == T0 + 1200
    assert update.counted and report is None


def test_retry_never_goes_past_the_give_up_time():
    e = entry(expires=T0 + 100)
    update, _ = decide(e, rcpt(), Outcome.temporary("4.4.1", "x"), T0, CONFIG)
    assert update.next_attempt == T0 + 100


def test_temporary_failure_after_give_up_fails_with_4_4_7():
    e = entry(created=T0 - 5 * 86400, expires=T0)
    update, report = decide(e, rcpt(), Outcome.from_reply(451, "4.3.0 busy", "mx"), T0, CONFIG)
    assert update.state == FAILED
    assert report is not None and report.action == "failed" and report.status == "4.4.7"
    assert report.diagnostic == "451 4.3.0 busy" and "gave up" in report.reason


def test_permanent_failure_bounces_at_once():
    outcome = Outcome.from_reply(550, "5.1.1 User unknown", "mx.hamburger.edu")
    update, report = decide(entry(), rcpt(), outcome, T0, CONFIG)
    assert update.state == FAILED and update.last_reply == "550 5.1.1 User unknown"
    assert report is not None
    assert (report.action, report.status, report.remote_mta) == (
        "failed",
        "5.1.1",
        "mx.hamburger.edu",
    )


def test_no_report_to_the_null_sender():
    outcome = Outcome.from_reply(550, "5.1.1 User unknown", "mx")
    update, report = decide(entry(mail_from=""), rcpt(), outcome, T0, CONFIG)
    assert update.state == FAILED and report is None


@pytest.mark.parametrize("notify", ["NEVER", "SUCCESS", "DELAY"])
def test_notify_without_failure_silences_the_bounce(notify):
    outcome = Outcome.from_reply(550, "5.1.1 no", "mx")
    _, report = decide(entry(), rcpt(notify=notify), outcome, T0, CONFIG)
    assert report is None


def test_success_is_reported_only_when_asked_and_not_passed_on():
    delivered = Outcome.from_reply(250, "2.0.0 OK", "mx")
    update, report = decide(entry(), rcpt(), delivered, T0, CONFIG)
    assert update.state == DELIVERED and report is None
    _, report = decide(entry(), rcpt(notify="SUCCESS,FAILURE"), delivered, T0, CONFIG)
    assert report is not None and report.action == "relayed"
    passed = Outcome.from_reply(250, "2.0.0 OK", "mx", dsn_passed=True)
    _, report = decide(entry(), rcpt(notify="SUCCESS"), passed, T0, CONFIG)
    assert report is None  # the next server reports instead (RFC 3461 §6.2.1)
    local = Outcome("delivered", "2.0.0", "delivered to mailbox", local=True)
    _, report = decide(entry(), rcpt(notify="SUCCESS"), local, T0, CONFIG)
    assert report is not None and report.action == "delivered"


def test_one_delay_warning_after_the_threshold():
    late = T0 + 4 * 3600 + 1
    update, report = decide(
        entry(), rcpt(attempts=5), Outcome.temporary("4.4.1", "x"), late, CONFIG
    )
    assert update.state == QUEUED and update.delay_notified
    assert report is not None and report.action == "delayed"
    assert report.will_retry_until == T0 + 5 * 86400
    _, again = decide(
        entry(),
        rcpt(attempts=6, delay_notified=True),
        Outcome.temporary("4.4.1", "x"),
        late,
        CONFIG,
    )
    assert again is None
    early, _ = decide(entry(), rcpt(), Outcome.temporary("4.4.1", "x"), T0 + 60, CONFIG)
    assert not early.delay_notified


def test_delay_warning_can_be_switched_off_or_declined():
    late = T0 + 5 * 3600
    off = QueueConfig(delay_warning=0)
    _, report = decide(entry(), rcpt(), Outcome.temporary("4.4.1", "x"), late, off)
    assert report is None
    _, report = decide(
        entry(), rcpt(notify="FAILURE"), Outcome.temporary("4.4.1", "x"), late, CONFIG
    )
    assert report is None

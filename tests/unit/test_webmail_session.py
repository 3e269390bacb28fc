"""When a webmail session is over (mailstack.webmail.session.expired)."""

from __future__ import annotations

from mailstack.store.contract.access import Token
from mailstack.webmail.config import WebmailConfig
from mailstack.webmail.session import expired

CONFIG = WebmailConfig(session_idle=600.0, session_lifetime=3600.0)


def token(created: float, before: float | None) -> Token:
    return Token(1, 1, "webmail", created, before, used_before=before)


def test_a_fresh_session_is_not_over() -> None:
    assert not expired(token(1000.0, None), CONFIG, 1000.0 + 599)


def test_idle_counts_from_the_login_when_never_used() -> None:
    assert expired(token(1000.0, None), CONFIG, 1000.0 + 601)


def test_idle_counts_from_the_last_use() -> None:
    assert not expired(token(1000.0, 2000.0), CONFIG, 2000.0 + 599)
    assert expired(token(1000.0, 2000.0), CONFIG, 2000.0 + 601)


def test_a_busy_session_ends_at_its_lifetime() -> None:
    assert not expired(token(1000.0, 4500.0), CONFIG, 1000.0 + 3599)
    assert expired(token(1000.0, 4599.0), CONFIG, 1000.0 + 3601)

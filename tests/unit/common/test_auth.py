"""The node's authenticator: the login cache, the one throttle policy, the log line."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from mailstack.common import auth
from mailstack.common.auth import Authenticator, LoginCache, LoginThrottle, Outcome
from mailstack.errors import StoreError
from mailstack.limits import Limits

USER = "bob@hamburger.edu"
PASSWORD = "hungry"
ATTACKER = "192.0.2.66"
OWNER = "198.51.100.7"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def account(store):
    await store.domain_add("hamburger.edu")
    return await store.account_add(USER, PASSWORD)


@pytest.fixture
def verifications(monkeypatch) -> list[str]:
    """The passwords Argon2id was asked to verify."""
    seen: list[str] = []
    verify = auth._verify

    def spy(stored_hash: str, password: str) -> bool:
        seen.append(password)
        return verify(stored_hash, password)

    monkeypatch.setattr(auth, "_verify", spy)
    return seen


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """Holds are recorded, not waited for."""
    waited: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waited.append(seconds)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    return waited


def test_login_cache_remembers_only_the_right_password_and_hash():
    cache = LoginCache(ttl=60)
    cache.remember("Bob@X.org", "pw", "$hash1")
    assert cache.verified("bob@x.org", "pw", "$hash1")
    assert not cache.verified("bob@x.org", "PW", "$hash1")
    assert not cache.verified("eve@x.org", "pw", "$hash1")
    assert not cache.verified("bob@x.org", "pw", "$hash2")  # password changed
    assert not cache.verified("bob@x.org", "pw", "$hash1")  # and forgotten
    assert not LoginCache(ttl=0).verified("bob@x.org", "pw", "$hash1")
    short = LoginCache(ttl=0.01)
    short.remember("bob@x.org", "pw", "$hash1")
    time.sleep(0.02)
    assert not short.verified("bob@x.org", "pw", "$hash1")


def test_throttle_after_the_limit_holds_longer_each_failure():
    clock = Clock()
    throttle = LoginThrottle(Limits(login_failures=2, login_failure_delay=3.0), clock)
    holds = []
    for _ in range(4):
        holds.append(throttle.admit(ATTACKER, USER, hold=True))
        throttle.finished(ATTACKER, USER, False)
        clock.now += 100
    assert holds == [0.0, 0.0, 3.0, 6.0]
    assert throttle.failures(ATTACKER) == 4
    # A protocol that cannot hold its client is refused while throttled.
    assert throttle.admit(ATTACKER, USER, hold=False) is None


def test_throttle_holds_follow_one_another_across_sessions():
    clock = Clock()
    throttle = LoginThrottle(Limits(login_failures=1, login_failure_delay=2.0), clock)
    throttle.admit(ATTACKER, USER, hold=True)
    throttle.finished(ATTACKER, USER, False)
    # Many sessions from one address at once: one verification per hold, in turn.
    holds = [throttle.admit(ATTACKER, f"user{n}", hold=True) for n in range(20)]
    assert holds[:3] == [2.0, 4.0, 6.0]
    assert max(h for h in holds if h is not None) <= auth.MAX_HOLD
    assert holds[-1] is None  # past MAX_HOLD: refused unverified


def test_throttle_forgets_after_quiet_minutes():
    clock = Clock()
    throttle = LoginThrottle(Limits(login_failures=1, login_failure_delay=2.0), clock)
    throttle.admit(ATTACKER, USER, hold=False)
    throttle.finished(ATTACKER, USER, False)
    assert throttle.admit(ATTACKER, USER, hold=False) is None
    clock.now += auth.FAILURE_MEMORY + 1
    assert throttle.failures(ATTACKER) == 0
    assert throttle.admit(ATTACKER, USER, hold=False) == 0.0


async def test_logins_checked_at_once_from_one_address_are_bounded(store, account, monkeypatch):
    """At most login_failures verifications of one address run at once; the
    others wait their turn and are then checked: a client that opens several
    sessions at once is queued, never held back nor refused."""
    running, most = 0, 0
    verify = auth._verify

    def slow_verify(stored_hash: str, password: str) -> bool:
        nonlocal running, most
        running += 1
        most = max(most, running)
        time.sleep(0.05)
        running -= 1
        return verify(stored_hash, password)

    monkeypatch.setattr(auth, "_verify", slow_verify)
    authenticator = Authenticator(store, Limits(login_failures=3, login_failure_delay=2.0))
    started = time.monotonic()
    logins = await asyncio.gather(
        *(authenticator.login("imap", USER, PASSWORD, OWNER) for _ in range(8))
    )
    assert [login.outcome for login in logins] == [Outcome.OK] * 8
    assert most == 3
    assert time.monotonic() - started < 2.0  # turns, not the throttle's holds
    assert not authenticator._turns  # nothing kept for an address that is done


def test_guessing_at_an_account_never_locks_out_an_address_without_failures():
    throttle = LoginThrottle(Limits(login_failures=2, login_failure_delay=2.0), Clock())
    for n in range(5):
        guesser = f"203.0.113.{n}"
        assert throttle.admit(guesser, USER, hold=False) == 0.0
        throttle.finished(guesser, USER, False)
    assert throttle.admit(OWNER, USER, hold=False) == 0.0
    # An address that already failed once is throttled while the account is.
    assert throttle.admit("203.0.113.0", USER, hold=False) is None


def test_a_good_login_forgives_typos_but_not_guesses_at_other_accounts():
    throttle = LoginThrottle(Limits(login_failures=3, login_failure_delay=2.0), Clock())
    for user in (USER, "alice@hamburger.edu", "carol@hamburger.edu"):
        throttle.admit(ATTACKER, user, hold=False)
        throttle.finished(ATTACKER, user, False)
    throttle.admit(ATTACKER, USER, hold=False)
    throttle.finished(ATTACKER, USER, True)
    assert throttle.failures(ATTACKER) == 2


async def test_login_ok_failed_and_cached(store, account, verifications):
    authenticator = Authenticator(store, Limits(), cache_seconds=60)
    good = await authenticator.login("imap", USER, PASSWORD, OWNER)
    assert good.outcome is Outcome.OK and good.account == account
    again = await authenticator.login("pop3", USER.upper(), PASSWORD, OWNER)
    assert again.outcome is Outcome.OK
    assert verifications == [PASSWORD]  # the second login came from the cache
    bad = await authenticator.login("submission", USER, "wrong", OWNER)
    assert bad.outcome is Outcome.FAILED and bad.account is None and bad.failures == 1
    unknown = await authenticator.login("imap", "nobody@hamburger.edu", PASSWORD, OWNER)
    assert unknown.outcome is Outcome.FAILED and unknown.failures == 2


async def test_no_hash_is_verified_while_the_address_is_throttled(
    store, account, verifications, sleeps
):
    limits = Limits(login_failures=2, login_failure_delay=1.0)
    authenticator = Authenticator(store, limits)
    for _ in range(2):
        await authenticator.login("imap", USER, "guess", ATTACKER)
    refused = await authenticator.login("submission", USER, PASSWORD, ATTACKER, hold=False)
    assert refused.outcome is Outcome.THROTTLED
    assert verifications == ["guess", "guess"] and sleeps == []
    # Held (IMAP, POP3): verified only after the hold.
    held = await authenticator.login("pop3", USER, PASSWORD, ATTACKER)
    assert held.outcome is Outcome.OK and sleeps == [1.0]
    # The owner from elsewhere is neither held nor refused.
    sleeps.clear()
    assert (await authenticator.login("imap", USER, PASSWORD, OWNER)).outcome is Outcome.OK
    assert sleeps == []


async def test_a_store_failure_is_unavailable_and_not_counted(account, store):
    class Broken:
        async def account_credentials(self, address):
            raise StoreError("database is locked")

    authenticator = Authenticator(Broken(), Limits(login_failures=1))
    login = await authenticator.login("imap", USER, PASSWORD, OWNER)
    assert login.outcome is Outcome.UNAVAILABLE
    assert authenticator.failures(OWNER) == 0


async def test_one_log_line_per_login_never_the_password(store, account, caplog):
    caplog.set_level(logging.INFO, logger="mailstack.auth")
    authenticator = Authenticator(store, Limits(login_failures=1))
    await authenticator.login("imap", USER, PASSWORD, OWNER)
    await authenticator.login("pop3", 'eve "x"\r\nlogin ok', "s3cret", ATTACKER)
    await authenticator.login("submission", USER, "s3cret", ATTACKER, hold=False)
    lines = [r.getMessage() for r in caplog.records if r.name == "mailstack.auth"]
    assert lines == [
        f"login ok protocol=imap user={USER} client={OWNER}",
        'login failed protocol=pop3 user="eve \\"x\\"\\r\\nlogin ok" '
        f"client={ATTACKER} reason=credentials failures=1",
        f"login failed protocol=submission user={USER} client={ATTACKER} "
        "reason=throttled failures=1",
    ]
    assert not any(PASSWORD in line or "s3cret" in line for line in lines)


def test_a_guessing_network_is_throttled_as_one_client():
    # Issue 15 item 7: the next address of the attacker's /24 buys nothing.
    clock = Clock()
    limits = Limits(login_failures=5, login_failures_per_prefix=4, login_failure_delay=2.0)
    throttle = LoginThrottle(limits, clock)
    for n in range(4):
        guesser = f"203.0.113.{n}"
        assert throttle.admit(guesser, f"user{n}@x.org", hold=True) == 0.0
        throttle.finished(guesser, f"user{n}@x.org", False)
    # A fresh address of that network is held, on the network's chain...
    assert throttle.admit("203.0.113.50", "eve@x.org", hold=True) == 2.0
    throttle.finished("203.0.113.50", "eve@x.org", None)
    # ... even where the protocol cannot hold: it has no failures of its own.
    assert throttle.admit("203.0.113.51", "eve@x.org", hold=False) == 4.0
    throttle.finished("203.0.113.51", "eve@x.org", None)
    # One that failed itself is refused there.
    assert throttle.admit("203.0.113.1", "eve@x.org", hold=False) is None
    # Another network is not concerned; an IPv6 /56 counts as one network.
    assert throttle.admit(OWNER, USER, hold=False) == 0.0
    v6 = LoginThrottle(Limits(login_failures=5, login_failures_per_prefix=1), clock)
    v6.admit("2001:db8:0:ff::1", USER, hold=True)
    v6.finished("2001:db8:0:ff::1", USER, False)
    assert v6.admit("2001:db8:0:1::9", USER, hold=True) == 2.0
    assert v6.admit("2001:db8:1::9", USER, hold=True) == 0.0


async def test_a_spraying_network_gets_no_verification_unheld(
    store, account, verifications, sleeps
):
    limits = Limits(login_failures=5, login_failures_per_prefix=5, login_failure_delay=1.0)
    authenticator = Authenticator(store, limits, clock=Clock())
    outcomes = [
        (await authenticator.login("imap", USER, "guess", f"203.0.113.{n}")).outcome
        for n in range(13)
    ]
    # Five free guesses for the /24, then each waits longer, in turn, until
    # the wait would pass MAX_HOLD: refused, its password never verified.
    assert sleeps == [1.0, 3.0, 6.0, 10.0, 15.0, 21.0, 28.0]
    assert len(verifications) == 5 + len(sleeps) == 12
    assert outcomes[-1] is Outcome.THROTTLED


def test_sessions_not_logged_in_are_counted_per_address():
    authenticator = Authenticator(None, Limits(login_sessions_per_address=2))  # type: ignore[arg-type]
    assert authenticator.session_started(ATTACKER)
    assert authenticator.session_started(ATTACKER)
    assert not authenticator.session_started(ATTACKER)
    assert authenticator.session_started(OWNER)
    authenticator.session_ended(ATTACKER)
    assert authenticator.session_started(ATTACKER)


async def test_a_disabled_account_logs_in_nowhere_and_the_log_says_why(store, account, caplog):
    caplog.set_level(logging.INFO, logger="mailstack.auth")
    authenticator = Authenticator(store, Limits(), cache_seconds=60)
    secret = auth.new_token()
    await store.token_add(account.id, "phone", auth.token_digest(secret))
    assert (await authenticator.login("imap", USER, PASSWORD, OWNER)).outcome is Outcome.OK
    await store.account_set(USER, disabled=True)
    # Not even from the login cache, nor with a token made before.
    for protocol in ("imap", "pop3", "submission", "http"):
        refused = await authenticator.login(protocol, USER, PASSWORD, OWNER, hold=False)
        assert refused.outcome is Outcome.FAILED and refused.account is None
    by_token = await authenticator.token_login("http", secret, OWNER)
    assert by_token.outcome is Outcome.FAILED and by_token.account is None
    lines = [r.getMessage() for r in caplog.records if r.name == "mailstack.auth"]
    assert lines[-1] == f"login failed protocol=http user={USER} client={OWNER} reason=disabled"
    assert f"login failed protocol=imap user={USER} client={OWNER} reason=disabled" in lines
    await store.account_set(USER, disabled=False)
    assert (await authenticator.login("imap", USER, PASSWORD, OWNER)).outcome is Outcome.OK

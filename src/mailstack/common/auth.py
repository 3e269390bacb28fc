"""The node's authenticator: every password login of SMTP AUTH (RFC 4954),
POP3 USER/PASS and AUTH (RFC 1939 §7, RFC 5034), IMAP LOGIN and AUTHENTICATE
(RFC 3501 §6.2) goes through one `Authenticator`.

It does these things, the same for every protocol:

- verifies the password against the account's stored Argon2id hash, in a
  thread (tens of milliseconds of CPU by design, never on the event loop);
- keeps the login cache (`LoginCache`), so a repeated good login skips
  Argon2id;
- throttles failures with one table per node (`LoginThrottle`), by client
  address, by its network prefix (`clients.client_prefix`) and by account
  name, and never verifies a password while its client is throttled: the
  attempt is held until its turn, or refused unchecked;
- counts each client address's sessions not yet logged in, across the
  listeners that take passwords (`session_started`), so that many
  connections do not buy many guesses at once;
- logs one line per login: ``login ok protocol=imap user=bob@x.org
  client=192.0.2.9`` or ``login failed protocol=pop3 user=bob@x.org
  client=192.0.2.9 reason=credentials failures=3`` (``reason=disabled``: the
  right password of a disabled account, refused). Values with spaces,
  quotes or control characters are written as JSON strings; the password
  never is;
- keeps the sessions logged in (`logins.Logins`), so that those of an
  account disabled or removed end within a second or two.

It answers with a `Login`, which each protocol turns into its own reply
(submission 535/454, POP3 ``-ERR [AUTH]``/``[SYS/TEMP]``, IMAP
``NO [AUTHENTICATIONFAILED]``/``[UNAVAILABLE]``). The policy is described
for administrators in docs/configuration.md, "Logins".
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import hmac
import logging
import os
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from mailstack.common.clients import client_prefix
from mailstack.common.events import log_event
from mailstack.common.logins import Logins
from mailstack.errors import StoreError
from mailstack.limits import Limits

if TYPE_CHECKING:
    from mailstack.store import Account
    from mailstack.store.contract.access import Token

__all__ = [
    "Authenticator", "Credentials", "Login", "LoginCache", "LoginThrottle", "Outcome",
    "new_token", "token_digest",
]

log = logging.getLogger("mailstack.auth")

# A failure count is forgotten after this many seconds without a new failure.
FAILURE_MEMORY = 900.0
# A throttled attempt is held at most this long; one that would wait longer
# is refused at once, unverified.
MAX_HOLD = 30.0
# Entries kept per table; the least recently touched go first.
CAPACITY = 100_000

# Verifying needs no parameters: an Argon2 hash names its own.
_VERIFIER = PasswordHasher()


class Credentials(Protocol):
    """What the authenticator needs of the store."""

    async def account_credentials(self, address: str) -> tuple[Account, str] | None: ...

    async def token_find(self, digest: bytes) -> tuple[Token, Account] | None: ...

    async def directory_version(self) -> int | None: ...

    async def account_get(self, address: str) -> Account | None: ...

    async def account_list(self) -> list[Account]: ...


# The name a bearer token's failures are counted under (it names no account).
TOKEN_USER = "(token)"


def new_token() -> str:
    """A fresh bearer token secret (RFC 6750 §2.1 b64token characters)."""
    return "mst_" + secrets.token_urlsafe(32)


def token_digest(secret: str) -> bytes:
    """What the store keeps of a token: its SHA-256 (the secret is random and
    long, so a fast hash suffices and no salt is needed)."""
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).digest()


class Outcome(enum.Enum):
    OK = "ok"
    FAILED = "failed"  # no such account, or the wrong password: counted
    THROTTLED = "throttled"  # refused unverified: the client address must wait
    UNAVAILABLE = "unavailable"  # the store could not be asked: not counted


@dataclass(frozen=True, slots=True)
class Login:
    outcome: Outcome
    account: Account | None = None
    failures: int = 0  # the client address's failures, this one included
    token: Token | None = None  # a bearer token's login: the token (its times)


class LoginCache:
    """Verified logins, so a repeated login skips Argon2id.

    After a good login the cache keeps, for ``ttl`` seconds, an HMAC of the
    password under a per-process random key (never the password) with the
    stored hash it matched. A later login is taken without Argon2id only if
    its password gives the same HMAC *and* the account's stored hash is
    still that one, so a changed password or a removed account takes effect
    at once. Failures are never remembered.
    """

    def __init__(
        self,
        ttl: float,
        capacity: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.capacity = capacity
        self.clock = clock
        self._key = os.urandom(32)
        self._entries: OrderedDict[str, tuple[bytes, str, float]] = OrderedDict()

    def _digest(self, address: str, password: str) -> bytes:
        message = address.encode("utf-8", "surrogateescape") + b"\0"
        message += password.encode("utf-8", "surrogateescape")
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def verified(self, address: str, password: str, stored_hash: str) -> bool:
        """True if this password was verified against this very stored hash
        less than ``ttl`` seconds ago."""
        if self.ttl <= 0:
            return False
        key = address.lower()
        entry = self._entries.get(key)
        if entry is None:
            return False
        digest, verified_hash, expires = entry
        if self.clock() > expires or verified_hash != stored_hash:
            del self._entries[key]
            return False
        return hmac.compare_digest(digest, self._digest(key, password))

    def remember(self, address: str, password: str, stored_hash: str) -> None:
        if self.ttl <= 0:
            return
        key = address.lower()
        expires = self.clock() + self.ttl
        self._entries[key] = (self._digest(key, password), stored_hash, expires)
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)


@dataclass(slots=True)
class _Count:
    failures: int = 0
    last: float = 0.0  # when the latest failure was counted
    held_until: float = 0.0  # the end of the latest hold given to this address


class LoginThrottle:
    """One node's failed logins, by client address, by its network prefix,
    by account name, and by the pair of address and name (what a good login
    forgives). No I/O; the clock is an argument.

    An address is *throttled* when it has ``limits.login_failures`` failures,
    or when it has any failure and the account name it tries has that many
    from anywhere. (How many of an address's logins are verified at once is
    bounded apart, by `Authenticator`, with a wait for a turn, not a delay.) Its network
    is throttled when the prefix has ``limits.login_failures_per_prefix``
    failures, so that an attacker cannot buy fresh counts with the next
    address of the network. A throttled attempt is never verified at once:
    it is held for a growing delay (``login_failure_delay`` times the
    failures past the limit), the holds of one address (or one network)
    following one another whatever session they come from, or refused
    when its hold would pass ``MAX_HOLD``, or when the protocol cannot hold
    a client and the address has failures of its own. An address with no
    failures is never throttled by its account name's count, so guessing at
    an account never locks its owner out.
    """

    def __init__(self, limits: Limits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limits.login_failures
        self.prefix_limit = limits.login_failures_per_prefix
        self.ipv4 = limits.client_ipv4_prefix
        self.ipv6 = limits.client_ipv6_prefix
        self.delay = limits.login_failure_delay
        self.clock = clock
        self._counts: OrderedDict[str, _Count] = OrderedDict()

    def _get(self, key: str, now: float) -> _Count | None:
        count = self._counts.get(key)
        if count is None:
            return None
        if now - count.last > FAILURE_MEMORY and count.held_until <= now:
            del self._counts[key]
            return None
        return count

    def _touch(self, key: str) -> _Count:
        count = self._counts.get(key)
        if count is None:
            count = self._counts[key] = _Count()
            while len(self._counts) > CAPACITY:
                self._counts.popitem(last=False)
        self._counts.move_to_end(key)
        return count

    def failures(self, client: str) -> int:
        """The address's failures still remembered."""
        count = self._get(f"ip:{client}", self.clock())
        return count.failures if count is not None else 0

    def admit(self, client: str, user: str, *, hold: bool) -> float | None:
        """Seconds to hold this attempt before verifying it (0: at once), or
        None when it is refused unverified. An admitted attempt must be
        followed by `finished`."""
        now = self.clock()
        failures = self.failures(client)
        account = self._get(f"user:{user.lower()}", now)
        network = self._get(self._prefix_key(client), now)
        net_failures = network.failures if network is not None else 0
        throttled = failures >= self.limit or (
            failures > 0 and account is not None and account.failures >= self.limit
        )
        if throttled:
            chain, past = f"ip:{client}", failures - self.limit
        elif net_failures >= self.prefix_limit:
            # An address of a guessing network waits its turn, but one with
            # no failures of its own is held, never refused: a delay, not a
            # lockout, for the owner who shares the attacker's network.
            chain, past = self._prefix_key(client), net_failures - self.prefix_limit
            hold = hold or failures == 0
        else:
            chain = ""
        if chain:
            if not hold:
                return None
            held = self._touch(chain)
            wait = max(0.0, held.held_until - now) + self.delay * max(1, past + 1)
            if wait > MAX_HOLD:
                return None
            held.held_until = now + wait
        else:
            wait = 0.0
        return wait

    def finished(self, client: str, user: str, ok: bool | None) -> None:
        """The admitted attempt ended: verified good (True), bad (False), or
        not checked (None)."""
        if ok is None:
            return
        now = self.clock()
        name = user.lower()
        keys = (
            f"ip:{client}", f"user:{name}", f"pair:{client}\0{name}", self._prefix_key(client)
        )
        if ok:
            self._forgive(keys, now)
            return
        for key in keys:
            self._get(key, now)  # a count past its memory starts again from zero
            count = self._touch(key)
            count.failures += 1
            count.last = now

    def _prefix_key(self, client: str) -> str:
        return "net:" + client_prefix(client, self.ipv4, self.ipv6)

    def _forgive(self, keys: tuple[str, str, str, str], now: float) -> None:
        """A good login clears its account name's count, and the address's
        (and network's) failures on that name (typos) but not on others:
        logging in to one's own account does not reset guessing at someone
        else's."""
        address_key, account_key, pair_key, prefix_key = keys
        self._counts.pop(account_key, None)
        pair = self._counts.pop(pair_key, None)
        if pair is None:
            return
        for key in (address_key, prefix_key):
            count = self._get(key, now)
            if count is not None:
                count.failures = max(0, count.failures - pair.failures)


def _verify(stored_hash: str, password: str) -> bool:
    try:
        return bool(_VERIFIER.verify(stored_hash, password))
    except (VerificationError, InvalidHashError):
        return False


@dataclass(slots=True)
class _Turns:
    """The logins of one address being verified (at most ``verifying``) or waiting."""

    semaphore: asyncio.Semaphore
    users: int = 0


class Authenticator:
    """Password logins of one node, for every protocol (see the module's doc)."""

    def __init__(
        self,
        store: Credentials,
        limits: Limits,
        *,
        cache_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.cache = LoginCache(cache_seconds, clock=clock)
        self.throttle = LoginThrottle(limits, clock)
        self.max_unauthenticated = limits.login_sessions_per_address
        self._unauthenticated: dict[str, int] = {}  # client -> sessions not logged in
        # At most login_failures logins of one address are verified at once
        # (Argon2id is costly by design: fifty connections must not buy fifty
        # guesses at a time); the others wait their turn, without a penalty,
        # so a client opening several sessions at once is only queued.
        self.verifying = limits.login_failures
        self._turns: dict[str, _Turns] = {}
        # The sessions logged in, ended when their account is disabled.
        self.logins = Logins(store)

    def session_started(self, client: str) -> bool:
        """A session from ``client`` that may log in begins: False (and not
        counted) when the address already has its share of sessions not
        logged in. A counted session must end with `session_ended`, when it
        logs in or closes."""
        sessions = self._unauthenticated.get(client, 0)
        if sessions >= self.max_unauthenticated:
            return False
        self._unauthenticated[client] = sessions + 1
        return True

    def session_ended(self, client: str) -> None:
        sessions = self._unauthenticated.pop(client) - 1
        if sessions:
            self._unauthenticated[client] = sessions

    def failures(self, client: str) -> int:
        """The client address's failed logins still remembered."""
        return self.throttle.failures(client)

    async def login(
        self, protocol: str, user: str, password: str, client: str, *, hold: bool = True
    ) -> Login:
        """Check ``user``'s ``password`` from ``client``. A throttled attempt
        waits its turn when ``hold`` (IMAP, POP3), else it is refused at once
        (submission, which answers 454)."""
        turns = self._turns.get(client)
        if turns is None:
            turns = self._turns[client] = _Turns(asyncio.Semaphore(self.verifying))
        turns.users += 1
        try:
            async with turns.semaphore:
                return await self._login(protocol, user, password, client, hold)
        finally:
            turns.users -= 1
            if not turns.users:
                del self._turns[client]

    async def _login(
        self, protocol: str, user: str, password: str, client: str, hold: bool
    ) -> Login:
        wait = self.throttle.admit(client, user, hold=hold)
        if wait is None:
            return self._logged(protocol, user, client, Login(Outcome.THROTTLED))
        ok: bool | None = None
        try:
            if wait:
                # RFC 3501 §6.2.3 and RFC 4954 §4 let a server delay a login.
                await asyncio.sleep(wait)
            account = await self._check(user, password)
            # A disabled account's right password is still a failed login
            # (the account receives mail but logs in nowhere).
            ok = account is not None and not account.disabled
        except StoreError:
            return self._logged(protocol, user, client, Login(Outcome.UNAVAILABLE))
        finally:
            self.throttle.finished(client, user, ok)
        failures = self.throttle.failures(client)
        if account is not None and account.disabled:
            return self._disabled(protocol, user, client, failures)
        outcome = Outcome.OK if account is not None else Outcome.FAILED
        return self._logged(protocol, user, client, Login(outcome, account, failures))

    async def token_login(self, protocol: str, secret: str, client: str) -> Login:
        """A bearer token (RFC 6750) from ``client``, found by its digest. A
        wrong token counts as a failed login of the client, throttled and
        logged as a wrong password is (``user=(token)``); a good one is logged
        with its account and the token's id."""
        turns = self._turns.get(client)
        if turns is None:
            turns = self._turns[client] = _Turns(asyncio.Semaphore(self.verifying))
        turns.users += 1
        try:
            async with turns.semaphore:
                return await self._token_login(protocol, secret, client)
        finally:
            turns.users -= 1
            if not turns.users:
                del self._turns[client]

    async def _token_login(self, protocol: str, secret: str, client: str) -> Login:
        wait = self.throttle.admit(client, TOKEN_USER, hold=True)
        if wait is None:
            return self._logged(protocol, TOKEN_USER, client, Login(Outcome.THROTTLED))
        found = None
        ok: bool | None = None
        try:
            if wait:
                await asyncio.sleep(wait)
            found = await self.store.token_find(token_digest(secret))
            ok = found is not None
        except StoreError:
            return self._logged(protocol, TOKEN_USER, client, Login(Outcome.UNAVAILABLE))
        finally:
            self.throttle.finished(client, TOKEN_USER, ok)
        if found is None:
            failures = self.throttle.failures(client)
            return self._logged(protocol, TOKEN_USER, client, Login(Outcome.FAILED, None, failures))
        token, account = found
        if account.disabled:
            return self._disabled(protocol, account.address, client, self.failures(client))
        fields = {"protocol": protocol, "user": account.address, "client": client}
        log_event(log, logging.INFO, "login ok", fields | {"token": token.id})
        return Login(Outcome.OK, account, token=token)

    async def _check(self, user: str, password: str) -> Account | None:
        credentials = await self.store.account_credentials(user)
        if credentials is None:
            return None
        account, stored_hash = credentials
        if self.cache.verified(user, password, stored_hash):
            return account
        if not await asyncio.to_thread(_verify, stored_hash, password):
            return None
        self.cache.remember(user, password, stored_hash)
        return account

    def _disabled(self, protocol: str, user: str, client: str, failures: int) -> Login:
        fields = {"protocol": protocol, "user": user, "client": client}
        log_event(log, logging.INFO, "login failed", fields | {"reason": "disabled"})
        return Login(Outcome.FAILED, None, failures)

    def _logged(self, protocol: str, user: str, client: str, login: Login) -> Login:
        fields: dict[str, object] = {"protocol": protocol, "user": user, "client": client}
        if login.outcome is Outcome.OK:
            log_event(log, logging.INFO, "login ok", fields)
        elif login.outcome is Outcome.UNAVAILABLE:
            log_event(log, logging.WARNING, "login failed", fields | {"reason": "unavailable"})
        else:
            reason = "credentials" if login.outcome is Outcome.FAILED else "throttled"
            failures = login.failures or self.throttle.failures(client)
            fields |= {"reason": reason, "failures": failures}
            log_event(log, logging.INFO, "login failed", fields)
        return login

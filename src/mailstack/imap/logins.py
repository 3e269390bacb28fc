"""A short-lived memory of verified logins.

Each Argon2id verification costs tens of milliseconds of CPU by design. A
client that opens a new session every few seconds (mobile clients, mbsync,
several folders in parallel) would spend most of the server's CPU on them, so
a successful LOGIN/AUTHENTICATE is remembered for ``[imap] login_cache_seconds``
as an HMAC of the password under a per-process random key (never the
password). A later login with the same password inside that window skips the
hash but still checks that the account exists. Failures are never cached, so
throttling and the hash's cost still face anyone guessing. A password changed
from another process is honoured once the entry expires.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections import OrderedDict

__all__ = ["LoginCache"]


class LoginCache:
    def __init__(self, ttl: float, capacity: int = 10_000) -> None:
        self.ttl = ttl
        self.capacity = capacity
        self._key = os.urandom(32)
        self._entries: OrderedDict[str, tuple[bytes, int, float]] = OrderedDict()

    def _digest(self, address: str, password: str) -> bytes:
        message = address.encode("utf-8", "surrogateescape") + b"\0"
        message += password.encode("utf-8", "surrogateescape")
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def lookup(self, address: str, password: str) -> int | None:
        """The account id of a recent successful login with this password."""
        if self.ttl <= 0:
            return None
        key = address.lower()
        entry = self._entries.get(key)
        if entry is None:
            return None
        digest, account_id, expires = entry
        if time.monotonic() > expires:
            del self._entries[key]
            return None
        if not hmac.compare_digest(digest, self._digest(key, password)):
            return None
        return account_id

    def remember(self, address: str, password: str, account_id: int) -> None:
        if self.ttl <= 0:
            return
        key = address.lower()
        self._entries[key] = (self._digest(key, password), account_id, time.monotonic() + self.ttl)
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def forget(self, address: str) -> None:
        self._entries.pop(address.lower(), None)

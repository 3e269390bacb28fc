"""A memory of verified logins, so a repeated login skips Argon2id.

Each Argon2id verification costs tens of milliseconds of CPU by design. A
client that opens a new session every few seconds (mobile clients, mbsync,
several folders in parallel) would spend most of the server's CPU on them.
After a successful LOGIN/AUTHENTICATE the session remembers, for
``[imap] login_cache_seconds``, an HMAC of the password under a per-process
random key (never the password) together with the stored hash it was
verified against. A later login is accepted without the hash only if its
password gives the same HMAC *and* the account's stored hash is still the
same one, so a changed password or a removed account takes effect at once.
Failures are never remembered: guessing still pays the full hash and the
throttle.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections import OrderedDict

__all__ = ["LoginCache", "PeerThrottle"]


class LoginCache:
    def __init__(self, ttl: float, capacity: int = 10_000) -> None:
        self.ttl = ttl
        self.capacity = capacity
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
        if time.monotonic() > expires or verified_hash != stored_hash:
            del self._entries[key]
            return False
        return hmac.compare_digest(digest, self._digest(key, password))

    def remember(self, address: str, password: str, stored_hash: str) -> None:
        if self.ttl <= 0:
            return
        key = address.lower()
        expires = time.monotonic() + self.ttl
        self._entries[key] = (self._digest(key, password), stored_hash, expires)
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)


class PeerThrottle:
    """Failed logins per client address over a sliding window, so a guesser
    cannot shed the throttle by reconnecting."""

    def __init__(self, window: float = 900.0, capacity: int = 100_000) -> None:
        self.window = window
        self.capacity = capacity
        self._failures: OrderedDict[str, tuple[int, float]] = OrderedDict()

    def failures(self, peer: str) -> int:
        entry = self._failures.get(peer)
        if entry is None:
            return 0
        count, last = entry
        if time.monotonic() - last > self.window:
            del self._failures[peer]
            return 0
        return count

    def failed(self, peer: str) -> None:
        self._failures[peer] = (self.failures(peer) + 1, time.monotonic())
        self._failures.move_to_end(peer)
        while len(self._failures) > self.capacity:
            self._failures.popitem(last=False)

"""What the node's HTTP listeners share for JMAP (one per node, ``Node.jmap_shared``):
the API requests and uploads each account is running, bounded by
``maxConcurrentRequests`` and ``maxConcurrentUpload`` (RFC 8620 §2), and the
push of PushSubscriptions (``jmap.push``)."""

from __future__ import annotations

from typing import Any


class Running:
    """How many of something each account runs, bounded."""

    def __init__(self) -> None:
        self._counts: dict[int, int] = {}

    def enter(self, account: int, limit: int) -> bool:
        """Count one more for the account; False (not counted) at the limit."""
        count = self._counts.get(account, 0)
        if count >= limit:
            return False
        self._counts[account] = count + 1
        return True

    def leave(self, account: int) -> None:
        count = self._counts.pop(account) - 1
        if count:
            self._counts[account] = count


class JmapShared:
    def __init__(self) -> None:
        self.requests = Running()  # API requests, over HTTP and WebSocket
        self.uploads = Running()
        self.pusher: Any = None  # jmap.push.Pusher while an HTTP listener runs
        self.listeners = 0  # HTTP listeners running (the pusher runs while any does)
        self.email_queries: dict[Any, list[int]] = {}  # email_query's recent results

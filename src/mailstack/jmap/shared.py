"""What the node's HTTP listeners share for JMAP (one per node, ``Node.jmap_shared``):
the API requests and uploads each account is running, bounded by
``maxConcurrentRequests`` and ``maxConcurrentUpload`` (RFC 8620 §2), and the
push of PushSubscriptions (``jmap.push``)."""

from __future__ import annotations

from typing import Any


class JmapShared:
    def __init__(self) -> None:
        self.requests: dict[int, int] = {}  # account id -> API requests running
        self.uploads: dict[int, int] = {}  # account id -> uploads running
        self.pusher: Any = None  # jmap.push.Pusher while an HTTP listener runs
        self.listeners = 0  # HTTP listeners running (the pusher runs while any does)
        self.email_queries: dict[Any, list[int]] = {}  # email_query's recent results

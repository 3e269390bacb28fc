"""The `[jmap]` table: the limits the session object advertises (RFC 8620
§2, every one enforced) and where push may go (§7.2). mailstack.schema reads
and writes this table."""

from __future__ import annotations

from dataclasses import dataclass

from mailstack.dns.config import Network
from mailstack.schema import option


@dataclass(frozen=True, slots=True)
class JmapConfig:
    max_size_upload: int = option(
        50 * 1024 * 1024, "octets of one blob upload at most (maxSizeUpload)", positive=True
    )
    max_concurrent_upload: int = option(
        4, "uploads one account may run at once (maxConcurrentUpload)", positive=True
    )
    max_size_request: int = option(
        10 * 1024 * 1024,
        "octets of one API request body at most, also of one WebSocket message "
        "(maxSizeRequest)",
        positive=True,
    )
    max_concurrent_requests: int = option(
        4, "API requests one account may run at once (maxConcurrentRequests)", positive=True
    )
    max_calls_in_request: int = option(
        16, "method calls in one API request at most (maxCallsInRequest)", positive=True
    )
    max_objects_in_get: int = option(
        500, "ids one /get call may ask for at most (maxObjectsInGet)", positive=True
    )
    max_objects_in_set: int = option(
        500,
        "creates, updates and destroys one /set call may ask for at most (maxObjectsInSet)",
        positive=True,
    )
    upload_hours: float = option(
        24.0,
        "hours an uploaded blob that nothing refers to is kept (RFC 8620 §6.1: at least 1)",
        minimum=1,
    )
    push_allow: tuple[Network, ...] = option(
        (),
        "networks a PushSubscription URL may reach besides public addresses; private, "
        "loopback and link-local addresses are refused unless listed here "
        '(e.g. ["10.0.0.0/8"])',
    )
    push_timeout: float = option(
        10.0, "seconds one push delivery (a POST to a push URL) may take", positive=True
    )
    event_source_ping_min: int = option(
        5, "seconds an EventSource client's ping interval is raised to at least", minimum=1
    )
    vacation_days: float = option(
        7.0,
        "days before a vacation auto-reply goes again to the same sender (RFC 3834 §2)",
        positive=True,
    )

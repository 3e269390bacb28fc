"""Request-level errors (RFC 8620 §3.6.1) as RFC 7807 problem details."""

from __future__ import annotations

from typing import Any

ERROR = "urn:ietf:params:jmap:error:"


class RequestError(Exception):
    """A request-level error (RFC 8620 §3.6.1): the request was not
    processed. ``kind`` is the last part of its ``urn:ietf:params:jmap:error:``
    type, or a whole type URI (``about:blank`` for plain HTTP errors)."""

    def __init__(self, kind: str, detail: str, *, status: int = 400, limit: str | None = None):
        super().__init__(detail)
        self.type = kind if ":" in kind else ERROR + kind
        self.detail = detail
        self.status = status
        self.limit = limit

    def problem(self) -> dict[str, Any]:
        """The RFC 7807 problem details object."""
        out: dict[str, Any] = {"type": self.type, "status": self.status, "detail": self.detail}
        if self.limit is not None:
            out["limit"] = self.limit  # RFC 8620 §3.6.1: MUST for the limit error
        return out


def too_many_requests() -> RequestError:
    """maxConcurrentRequests reached (RFC 8620 §2, §3.6.1)."""
    return RequestError(
        "limit",
        "Too many requests at once for this account.",
        status=429,
        limit="maxConcurrentRequests",
    )

"""What a JMAP method handler gets and raises (RFC 8620 §3.6).

A module offers its methods as ``METHODS: dict[str, Method]``; ``api``
collects the modules listed in ``api.MODULES``. A handler is
``async def handler(call: Call, args: dict[str, Any]) -> dict[str, Any]``:
``args`` are the invocation's arguments with result references already
resolved; it returns the response arguments, or raises ``MethodError`` for
a method-level error. A handler that changes state may also return extra
invocations through ``call.also`` (e.g. the implicit ``Email/set`` after an
``EmailSubmission/set`` with ``onSuccessUpdateEmail``, RFC 8621 §7.5).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mailstack.app import Node
    from mailstack.store import Account

Args = dict[str, Any]


class MethodError(Exception):
    """A method-level error (RFC 8620 §3.6.2): ``type`` is the RFC's name
    (``invalidArguments``, ``accountNotFound``, ``stateMismatch``, ...);
    ``extra`` adds properties such as ``arguments`` for ``invalidArguments``."""

    def __init__(self, type: str, description: str | None = None, **extra: Any) -> None:
        super().__init__(description or type)
        self.type = type
        self.description = description
        self.extra = extra

    def response(self) -> Args:
        out: Args = {"type": self.type}
        if self.description:
            out["description"] = self.description
        out.update(self.extra)
        return out


@dataclass
class Call:
    """One method call's context. ``created_ids`` is the request's map of
    creation ids to the ids made (RFC 8620 §3.3, §5.3: ``#name`` in a later
    call refers to it); ``using`` the request's capabilities; ``also``
    invocations the handler asks to run right after it (name, args), whose
    responses follow its own with the same call id."""

    node: Node
    user: Account
    using: frozenset[str]
    call_id: str
    created_ids: dict[str, str] = field(default_factory=dict)
    also: list[tuple[str, Args]] = field(default_factory=list)


Handler = Callable[[Call, Args], Awaitable[Args]]


@dataclass(frozen=True)
class Method:
    """A method and the capability a request must be ``using`` to call it."""

    capability: str
    handler: Handler


def account_id(call: Call, args: Args) -> int:
    """The store account a call's ``accountId`` names, checked against what
    the user may reach; ``accountNotFound`` otherwise (RFC 8620 §3.6.2).
    Today: the user's own account only (sharing extends this)."""
    from mailstack.jmap import ids

    number = ids.decode(ids.ACCOUNT, args.get("accountId"))
    if number is None or number != call.user.id:
        raise MethodError("accountNotFound")
    return number

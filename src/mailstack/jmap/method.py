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
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from mailstack.app import Node
    from mailstack.jmap.sharing import SharedAccount
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
    responses follow its own with the same call id. ``shared``: the other
    accounts the user reaches through shared mailboxes, by account id
    (``sharing.shared_accounts``, read once per request)."""

    node: Node
    user: Account
    using: frozenset[str]
    call_id: str
    created_ids: dict[str, str] = field(default_factory=dict)
    also: list[tuple[str, Args]] = field(default_factory=list)
    shared: dict[int, SharedAccount] = field(default_factory=dict)


Handler = Callable[[Call, Args], Awaitable[Args]]


def created_id(call: Call, value: Any) -> Any:
    """An id-valued property as the handler should read it: ``#creationId``
    is the id made for that creation earlier in the request (RFC 8620 §5.3),
    when there is one; anything else is returned as given."""
    if isinstance(value, str) and value.startswith("#"):
        return call.created_ids.get(value[1:], value)
    return value


def check_objects_in_get(call: Call, count: int) -> None:
    """``requestTooLarge`` past ``[jmap] max_objects_in_get`` (RFC 8620 §5.1)."""
    if count > call.node.config.jmap.max_objects_in_get:
        raise MethodError("requestTooLarge", "More ids than maxObjectsInGet.")


def check_objects_in_set(call: Call, args: Args) -> None:
    """``requestTooLarge`` when create, update and destroy together name more
    objects than ``[jmap] max_objects_in_set`` (RFC 8620 §5.3)."""
    count = sum(
        len(value) for key in ("create", "update", "destroy")
        if isinstance(value := args.get(key), dict | list)
    )
    if count > call.node.config.jmap.max_objects_in_set:
        raise MethodError("requestTooLarge", "More objects than maxObjectsInSet.")


@dataclass(frozen=True)
class Method:
    """A method and the capability a request must be ``using`` to call it."""

    capability: str
    handler: Handler


def account_id(call: Call, args: Args, *, shared: bool = False) -> int:
    """The store account a call's ``accountId`` names, checked against what
    the user may reach; ``accountNotFound`` otherwise (RFC 8620 §3.6.2): the
    user's own account, or, for a method that limits itself to what is
    shared (``shared=True``, through ``sharing.reach``), one that shares
    mailboxes with the user (``call.shared``)."""
    from mailstack.jmap import ids

    number = ids.decode(ids.ACCOUNT, args.get("accountId"))
    if number is None or (number != call.user.id and not (shared and number in call.shared)):
        raise MethodError("accountNotFound")
    return number


# A filter nested deeper than this is refused rather than recursed into.
MAX_FILTER_DEPTH = 32

T = TypeVar("T")


def filter_operator(spec: object, depth: int) -> tuple[str, list[object]] | None:
    """RFC 8620 §5.5, the checks every /query makes of a filter: an object,
    nested at most MAX_FILTER_DEPTH deep; a FilterOperator is AND, OR or NOT
    with a list of conditions and nothing else. Its operator and conditions,
    or None for a FilterCondition (the caller reads its properties)."""
    if not isinstance(spec, dict):
        raise MethodError("invalidArguments", "a filter must be an object")
    if depth > MAX_FILTER_DEPTH:
        raise MethodError("unsupportedFilter", "the filter is nested too deeply")
    if "operator" not in spec:
        return None
    operator = spec["operator"]
    conditions = spec.get("conditions")
    if operator not in ("AND", "OR", "NOT"):
        raise MethodError("unsupportedFilter", f"unknown operator {str(operator)[:20]!r}")
    if not isinstance(conditions, list) or set(spec) - {"operator", "conditions"}:
        raise MethodError(
            "invalidArguments", "a FilterOperator has an operator and a list of conditions"
        )
    return operator, conditions


def combine(operator: str, checks: list[Callable[[T], bool]]) -> Callable[[T], bool]:
    """One predicate of a FilterOperator's checks (NOT: none of them holds)."""
    if operator == "AND":
        return lambda item: all(c(item) for c in checks)
    if operator == "OR":
        return lambda item: any(c(item) for c in checks)
    return lambda item: not any(c(item) for c in checks)

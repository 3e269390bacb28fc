"""Principals (RFC 9670 §2): the node's accounts as individuals, so a
client can name whom a mailbox is shared with (``shareWith``, sharing.py).

Each account is one Principal: ``id`` ``P`` + account id, ``type``
``individual``, ``name`` and ``email`` its address, no ``description`` or
``timeZone``, ``capabilities`` empty, and ``accounts`` the JMAP accounts of
that principal the user can reach (its own for the user; the shared one
for an account that shares mailboxes with the user; else null). The
Principals live in the user's own account (its ``urn:ietf:params:jmap:
principals`` capability, ``sharing.personal_capabilities``).

Methods: Principal/get, /changes, /query and /queryChanges. Accounts carry
no change log, so the state is a digest of the principals and their
accounts: /changes from the current state has nothing to report and from
any other it is ``cannotCalculateChanges`` (RFC 8620 §5.2 allows it);
/queryChanges is always ``cannotCalculateChanges``. Principal/set
(editing a name or time zone) and ShareNotification (§3) are not offered.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from mailstack.jmap import ids
from mailstack.jmap.email_query import invalid, store_of
from mailstack.jmap.mailbox import changes_arguments, window
from mailstack.jmap.method import (
    Args,
    Call,
    Method,
    MethodError,
    account_id,
    check_objects_in_get,
    combine,
    filter_operator,
)
from mailstack.jmap.sharing import PRINCIPALS, principal_id
from mailstack.store import Account

__all__ = ["METHODS"]

PROPERTIES = (
    "id", "type", "name", "description", "email", "timeZone", "capabilities", "accounts",
)  # fmt: skip
FILTERS = frozenset({"accountIds", "email", "name", "text", "type", "timeZone"})
SORTS = frozenset({"name", "email"})


def _principals_account(call: Call, args: Args) -> int:
    """The account a Principal call names: the user's own (RFC 9670 §1.5.1:
    the one with the principals capability); a shared account has none."""
    number = account_id(call, args, shared=True)
    if number != call.user.id:
        raise MethodError("accountNotSupportedByMethod")
    return number


def _accounts(call: Call, account: Account) -> dict[str, Any] | None:
    """The principal's accounts the user can reach, as in the session (the
    Account objects' names and flags; capabilities are the session's)."""
    if account.id == call.user.id:
        return {
            ids.encode(ids.ACCOUNT, account.id): {
                "name": account.address,
                "isPersonal": True,
                "isReadOnly": False,
            }
        }
    shared = call.shared.get(account.id)
    if shared is None:
        return None
    return {
        ids.encode(ids.ACCOUNT, account.id): {
            "name": account.address,
            "isPersonal": False,
            "isReadOnly": shared.read_only,
        }
    }


def principal_json(call: Call, account: Account) -> dict[str, Any]:
    return {
        "id": principal_id(account),
        "type": "individual",
        "name": account.address,
        "description": None,
        "email": account.address,
        "timeZone": None,
        "capabilities": {},
        "accounts": _accounts(call, account),
    }


async def _principals(call: Call) -> list[Account]:
    return sorted(await store_of(call).account_list(), key=lambda a: a.id)


def _state(call: Call, accounts: list[Account]) -> str:
    """A digest of what Principal/get would show (RFC 8620 §5.1 state)."""
    digest = hashlib.sha256()
    for account in accounts:
        shared = call.shared.get(account.id)
        ro = "-" if shared is None else str(shared.read_only)
        digest.update(f"{account.id}\0{account.address}\0{ro}\n".encode())
    return digest.hexdigest()[:16]


# -- Principal/get -----------------------------------------------------------


async def principal_get(call: Call, args: Args) -> Args:
    account = _principals_account(call, args)
    wanted = args.get("ids")
    if wanted is not None:
        if not isinstance(wanted, list) or not all(isinstance(v, str) for v in wanted):
            raise invalid("ids must be a list of ids or null")
        check_objects_in_get(call, len(wanted))
    props = args.get("properties")
    if props is None:
        props = list(PROPERTIES)
    elif not isinstance(props, list) or not all(isinstance(p, str) for p in props):
        raise invalid("properties must be a list of strings")
    elif any(p not in PROPERTIES for p in props):
        raise MethodError("invalidArguments", "unknown properties", arguments=["properties"])
    props = list(dict.fromkeys(["id", *props]))  # RFC 8620 §5.1: id always
    principals = await _principals(call)
    by_id = {principal_id(p): p for p in principals}
    chosen = principals if wanted is None else []
    not_found: list[str] = []
    for jmap_id in dict.fromkeys(wanted or ()):
        found = by_id.get(jmap_id)
        if found is None:
            not_found.append(jmap_id)
        else:
            chosen.append(found)
    return {
        "accountId": ids.encode(ids.ACCOUNT, account),
        "state": _state(call, principals),
        "list": [
            {k: v for k, v in principal_json(call, p).items() if k in props} for p in chosen
        ],
        "notFound": not_found,
    }


# -- Principal/changes -------------------------------------------------------


async def principal_changes(call: Call, args: Args) -> Args:
    account = _principals_account(call, args)
    since, _number, _max_changes = changes_arguments(args)
    state = _state(call, await _principals(call))
    if since != state:
        raise MethodError("cannotCalculateChanges")
    return {
        "accountId": ids.encode(ids.ACCOUNT, account),
        "oldState": since,
        "newState": state,
        "hasMoreChanges": False,
        "created": [],
        "updated": [],
        "destroyed": [],
    }


# -- Principal/query ---------------------------------------------------------


Check = Callable[[dict[str, Any]], bool]


def _contains(field: str, value: Any) -> Check:
    if not isinstance(value, str):
        raise invalid(f"{field} must be a string")
    needle = value.casefold()
    return lambda p: needle in (p.get(field) or "").casefold()


def _condition(name: str, value: Any) -> Check:
    """RFC 9670 §2.3 FilterCondition."""
    if name == "accountIds":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise invalid("accountIds must be a list of ids")
        wanted = set(value)
        return lambda p: bool(wanted & set(p["accounts"] or ()))
    if name in ("email", "name"):
        return _contains(name, value)
    if name == "text":
        if not isinstance(value, str):
            raise invalid("text must be a string")
        checks = [_contains(f, value) for f in ("name", "email", "description")]
        return lambda p: any(check(p) for check in checks)
    if name in ("type", "timeZone"):
        if not isinstance(value, str):
            raise invalid(f"{name} must be a string")
        return lambda p: p[name] == value
    raise MethodError("unsupportedFilter", f"unknown filter condition {name[:100]}")


def compile_filter(spec: object, depth: int = 0) -> Check:
    """A FilterOperator or FilterCondition (RFC 8620 §5.5)."""
    found = filter_operator(spec, depth)
    if found is not None:
        operator, conditions = found
        return combine(operator, [compile_filter(c, depth + 1) for c in conditions])
    assert isinstance(spec, dict)
    checks = [_condition(name, value) for name, value in spec.items()]
    return lambda p: all(c(p) for c in checks)


def _sort(spec: object) -> list[tuple[str, bool]]:
    if spec is None:
        return []
    if not isinstance(spec, list):
        raise invalid("sort must be a list of comparators")
    out = []
    for comparator in spec:
        if not isinstance(comparator, dict) or not isinstance(comparator.get("property"), str):
            raise invalid("a comparator needs a property")
        if comparator["property"] not in SORTS:
            raise MethodError("unsupportedSort", f"cannot sort by {comparator['property'][:100]}")
        ascending = comparator.get("isAscending", True)
        if not isinstance(ascending, bool):
            raise invalid("isAscending must be a boolean")
        collation = comparator.get("collation")
        if collation is not None and collation != "i;unicode-casemap":
            raise MethodError("unsupportedSort", "unsupported collation")
        out.append((comparator["property"], ascending))
    return out


def _sort_key(field: str) -> Callable[[dict[str, Any]], str]:
    return lambda row: str(row[field] or "").casefold()


async def principal_query(call: Call, args: Args) -> Args:
    account = _principals_account(call, args)
    check = compile_filter(args["filter"]) if args.get("filter") is not None else None
    comparators = _sort(args.get("sort"))
    calculate_total = args.get("calculateTotal", False)
    if not isinstance(calculate_total, bool):
        raise invalid("calculateTotal must be a boolean")
    principals = await _principals(call)
    rows = [principal_json(call, p) for p in principals]
    if check is not None:
        rows = [row for row in rows if check(row)]
    for field, ascending in reversed(comparators):
        rows.sort(key=_sort_key(field), reverse=not ascending)
    position, page = window([row["id"] for row in rows], args)
    out: Args = {
        "accountId": ids.encode(ids.ACCOUNT, account),
        "queryState": _state(call, principals),
        "canCalculateChanges": False,
        "position": position,
        "ids": page,
    }
    if calculate_total:
        out["total"] = len(rows)
    return out


async def principal_query_changes(call: Call, args: Args) -> Args:
    _principals_account(call, args)
    raise MethodError("cannotCalculateChanges")


METHODS: dict[str, Method] = {
    "Principal/get": Method(PRINCIPALS, principal_get),
    "Principal/changes": Method(PRINCIPALS, principal_changes),
    "Principal/query": Method(PRINCIPALS, principal_query),
    "Principal/queryChanges": Method(PRINCIPALS, principal_query_changes),
}

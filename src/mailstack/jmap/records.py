"""What the JMAP types kept as store records (Identity, EmailSubmission,
VacationResponse) share: their objects as JSON, their state, and the
standard /get and /changes (RFC 8620 §5.1, §5.2) and the checks every /set
makes (§5.3: ``ifInState``, the shape of create/update/destroy).

A record's JMAP id is ``ids.encode(ids.RECORD, record.id)``; the state of a
type is the account's MODSEQ of its latest change (``record_state``).
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from mailstack.jmap import ids
from mailstack.jmap.method import Args, Call, MethodError, account_id, check_objects_in_get
from mailstack.store import Record


def own_account(call: Call, args: Args) -> int:
    """The account of a call to a type only an account's owner has
    (Identity, EmailSubmission, VacationResponse: sending and auto-replies
    are the owner's); ``accountNotSupportedByMethod`` for an account shared
    with the user (RFC 8620 §3.6.2)."""
    number = account_id(call, args)
    if number != call.user.id:
        raise MethodError("accountNotSupportedByMethod")
    return number


def record_numbers(wanted: list[str]) -> list[int]:
    """The record numbers of these JMAP ids (others are not records)."""
    return [n for n in (ids.decode(ids.RECORD, i) for i in wanted) if n is not None]


def record_id(record: Record) -> str:
    return ids.encode(ids.RECORD, record.id)


def data(record: Record) -> dict[str, Any]:
    value = json.loads(record.data)
    return value if isinstance(value, dict) else {}


def dump(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


async def state(call: Call, account_id: int, kind: str) -> str:
    return str(await store(call).record_state(account_id, kind))


def store(call: Call) -> Any:
    assert call.node.store is not None  # opened before the node serves
    return call.node.store


def utc_date(moment: datetime.datetime) -> str:
    """A UTCDate (RFC 8620 §1.4): ``2014-10-30T06:12:00Z``, no fraction."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_utc_date(value: object) -> datetime.datetime | None:
    """A UTCDate read back (the ``Z`` form RFC 8620 §1.4 requires; a fraction
    is allowed); None when it is not one."""
    if not isinstance(value, str) or not value.endswith("Z") or "T" not in value:
        return None
    try:
        moment = datetime.datetime.fromisoformat(value[:-1] + "+00:00")
    except ValueError:
        return None
    return moment


def properties(args: Args, known: Collection[str]) -> set[str]:
    """The ``properties`` argument of a /get (all when null), ``id`` always;
    invalidArguments for one the type does not have (§5.1)."""
    wanted = args.get("properties")
    if wanted is None:
        return set(known)
    if not isinstance(wanted, list) or not all(isinstance(p, str) for p in wanted):
        raise MethodError("invalidArguments", "properties must be a list of strings.",
                          arguments=["properties"])
    unknown = [p for p in wanted if p not in known]
    if unknown:
        raise MethodError("invalidArguments", f"Unknown property {unknown[0][:100]}.",
                          arguments=["properties"])
    return {*wanted, "id"}


def get_ids(call: Call, args: Args) -> list[str] | None:
    """The ``ids`` argument of a /get: None for all, else a list of strings
    (each checked against maxObjectsInGet)."""
    wanted = args.get("ids")
    if wanted is None:
        return None
    if not isinstance(wanted, list) or not all(isinstance(i, str) for i in wanted):
        raise MethodError("invalidArguments", "ids must be a list of ids or null.",
                          arguments=["ids"])
    check_objects_in_get(call, len(wanted))
    return list(dict.fromkeys(wanted))


def get_response(
    account_id: int,
    current: str,
    objects: dict[str, dict[str, Any]],
    wanted: list[str] | None,
    props: set[str],
) -> Args:
    """The /get response (§5.1) for ``objects`` (id -> every property)."""
    chosen = list(objects) if wanted is None else [i for i in wanted if i in objects]
    return {
        "accountId": ids.encode(ids.ACCOUNT, account_id),
        "state": current,
        "list": [{k: v for k, v in objects[i].items() if k in props} for i in chosen],
        "notFound": [] if wanted is None else [i for i in wanted if i not in objects],
    }


# The objects of an account (JMAP id -> every property), those among the
# ids given when not None (others may come too).
Loader = Callable[[Call, int, list[str] | None], Awaitable[dict[str, dict[str, Any]]]]


async def get(call: Call, args: Args, kind: str, known: Collection[str], load: Loader) -> Args:
    """The standard /get (§5.1) of a record type whose objects ``load``
    gives."""
    account = own_account(call, args)
    wanted = get_ids(call, args)
    props = properties(args, known)
    objects = await load(call, account, wanted)
    return get_response(account, await state(call, account, kind), objects, wanted, props)


def since_state(args: Args) -> int:
    """``sinceState`` as the MODSEQ it is; cannotCalculateChanges for a
    string that is no state of ours (§5.2)."""
    since = args.get("sinceState")
    if not isinstance(since, str):
        raise MethodError("invalidArguments", "sinceState must be a string.",
                          arguments=["sinceState"])
    if not since.isascii() or not since.isdigit() or (len(since) > 1 and since[0] == "0"):
        raise MethodError("cannotCalculateChanges")
    return int(since)


def max_changes(args: Args) -> int | None:
    value = args.get("maxChanges")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise MethodError("invalidArguments", "maxChanges must be a positive integer.",
                          arguments=["maxChanges"])
    return value


async def changes(call: Call, args: Args, account_id: int, kind: str) -> Args:
    """The standard /changes (§5.2) of one record kind."""
    since = since_state(args)
    limit = max_changes(args)
    found = await store(call).record_changes(account_id, kind, since, limit)
    if found is None:
        raise MethodError("cannotCalculateChanges")
    return {
        "accountId": ids.encode(ids.ACCOUNT, account_id),
        "oldState": str(since),
        "newState": str(found.state),
        "hasMoreChanges": found.has_more,
        "created": [ids.encode(ids.RECORD, n) for n in found.created],
        "updated": [ids.encode(ids.RECORD, n) for n in found.updated],
        "destroyed": [ids.encode(ids.RECORD, n) for n in found.destroyed],
    }


def set_arguments(
    args: Args,
) -> tuple[dict[str, Any], dict[str, Any], list[Any]]:
    """create, update and destroy of a /set, type-checked (§5.3)."""
    create = args.get("create") or {}
    update = args.get("update") or {}
    destroy = args.get("destroy") or []
    if not isinstance(create, dict):
        raise MethodError("invalidArguments", "create must be an object.", arguments=["create"])
    if not isinstance(update, dict):
        raise MethodError("invalidArguments", "update must be an object.", arguments=["update"])
    if not isinstance(destroy, list):
        raise MethodError("invalidArguments", "destroy must be a list.", arguments=["destroy"])
    return create, update, destroy


def check_if_in_state(args: Args, current: str) -> None:
    """``ifInState`` (§5.3): stateMismatch when it is not the current state."""
    expected = args.get("ifInState")
    if expected is None:
        return
    if not isinstance(expected, str):
        raise MethodError("invalidArguments", "ifInState must be a string.",
                          arguments=["ifInState"])
    if expected != current:
        raise MethodError("stateMismatch")


def set_response(account: int, old_state: str, new_state: str, **results: Any) -> Args:
    """A /set response (§5.3): ``created``, ``updated``, ``destroyed``,
    ``notCreated``, ``notUpdated``, ``notDestroyed``, each null when empty."""
    out: Args = {
        "accountId": ids.encode(ids.ACCOUNT, account),
        "oldState": old_state,
        "newState": new_state,
    }
    for name in ("created", "updated", "destroyed", "notCreated", "notUpdated", "notDestroyed"):
        out[name] = results.get(name) or None
    return out


def set_error(kind: str, description: str | None = None, **extra: Any) -> Args:
    """A SetError (§5.3)."""
    out: Args = {"type": kind}
    if description:
        out["description"] = description
    out.update(extra)
    return out


def invalid(*names: str, description: str | None = None) -> Args:
    return set_error("invalidProperties", description, properties=list(names))


class PatchError(ValueError):
    """A PatchObject that cannot be applied; ``property`` is the top-level
    property it names (for invalidProperties)."""

    def __init__(self, prop: str) -> None:
        super().__init__(prop)
        self.property = prop


def apply_patch(current: dict[str, Any], patch: object) -> dict[str, Any]:
    """A copy of ``current`` with a PatchObject applied (RFC 8620 §5.3):
    each key a JSON Pointer with the leading ``/`` implied, whose value
    replaces what it points at (null removes it); no key may be a prefix of
    another, and every step but the last must exist."""
    if not isinstance(patch, dict):
        raise PatchError("")
    out = json.loads(json.dumps(current))
    paths = [key.split("/") for key in patch]
    for path in paths:
        for other in paths:
            if other is not path and other[: len(path)] == path:
                raise PatchError(path[0])
    for key, value in patch.items():
        tokens = [t.replace("~1", "/").replace("~0", "~") for t in key.split("/")]
        target: Any = out
        for token in tokens[:-1]:
            if isinstance(target, dict) and token in target and target[token] is not None:
                target = target[token]
            elif isinstance(target, list) and token.isdigit() and int(token) < len(target):
                target = target[int(token)]
            else:
                raise PatchError(tokens[0])
        last = tokens[-1]
        if isinstance(target, dict):
            if value is None and len(tokens) > 1:
                target.pop(last, None)
            else:
                target[last] = value
        elif isinstance(target, list) and last.isdigit() and int(last) < len(target):
            target[int(last)] = value
        else:
            raise PatchError(tokens[0])
    return out

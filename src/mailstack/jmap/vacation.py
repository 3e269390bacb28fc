"""JMAP VacationResponse (RFC 8621 §8): the one auto-reply setting of an
account, id ``singleton``, kept as a store record (kind
``VacationResponse``); `mailstack.delivery.vacation` sends the replies.

Only /get and /set exist (§8.1, §8.2); /set may only update the singleton:
a create or destroy is the ``singleton`` SetError (RFC 8620 §5.3).
"""

from __future__ import annotations

from typing import Any

from mailstack.delivery.vacation import KIND
from mailstack.jmap import ids
from mailstack.jmap.method import Args, Call, Method, account_id, check_objects_in_set
from mailstack.jmap.records import (
    PatchError,
    apply_patch,
    check_if_in_state,
    data,
    dump,
    get_ids,
    get_response,
    invalid,
    parse_utc_date,
    properties,
    set_arguments,
    set_error,
    state,
    store,
)

VACATION = "urn:ietf:params:jmap:vacationresponse"
SINGLETON = "singleton"
PROPERTIES = ("id", "isEnabled", "fromDate", "toDate", "subject", "textBody", "htmlBody")
DEFAULT: dict[str, Any] = {
    "id": SINGLETON,
    "isEnabled": False,
    "fromDate": None,
    "toDate": None,
    "subject": None,
    "textBody": None,
    "htmlBody": None,
}


def _bad_properties(value: dict[str, Any]) -> list[str]:
    bad = [key for key in value if key not in PROPERTIES]
    if value.get("id") != SINGLETON:
        bad.append("id")
    if not isinstance(value.get("isEnabled"), bool):
        bad.append("isEnabled")
    for key in ("fromDate", "toDate"):
        if value.get(key) is not None and parse_utc_date(value[key]) is None:
            bad.append(key)
    for key in ("subject", "textBody", "htmlBody"):
        if value.get(key) is not None and not isinstance(value[key], str):
            bad.append(key)
    return bad


async def get(call: Call, args: Args) -> Args:
    account = account_id(call, args)
    wanted = get_ids(call, args)
    props = properties(args, PROPERTIES)
    records = await store(call).records(account, KIND)
    current = {**DEFAULT, **(data(records[0]) if records else {}), "id": SINGLETON}
    return get_response(
        account, await state(call, account, KIND), {SINGLETON: current}, wanted, props
    )


async def set_(call: Call, args: Args) -> Args:
    account = account_id(call, args)
    check_objects_in_set(call, args)
    create, update, destroy = set_arguments(args)
    old_state = await state(call, account, KIND)
    check_if_in_state(args, old_state)
    s = store(call)
    records = await s.records(account, KIND)
    current = {**DEFAULT, **(data(records[0]) if records else {}), "id": SINGLETON}
    not_created = {
        creation_id: set_error("singleton", "There is one VacationResponse, 'singleton'.")
        for creation_id in create
    }
    updated: dict[str, Any] = {}
    not_updated: dict[str, Any] = {}
    for jmap_id, patch in update.items():
        if jmap_id != SINGLETON:
            not_updated[jmap_id] = set_error("notFound")
            continue
        try:
            changed = apply_patch(current, patch)
        except PatchError as exc:
            not_updated[jmap_id] = invalid(exc.property)
            continue
        bad = _bad_properties(changed)
        if bad:
            not_updated[jmap_id] = invalid(*dict.fromkeys(bad))
            continue
        stored = dump({k: v for k, v in changed.items() if k != "id"})
        if records:
            records = [await s.record_update(account, KIND, records[0].id, stored)]
        else:
            records = [await s.record_create(account, KIND, stored)]
        current = changed
        updated[jmap_id] = None
        vacations = getattr(call.node, "vacations", None)
        if vacations is not None:
            vacations.forget(account)
    not_destroyed = {
        str(jmap_id): set_error(
            "singleton" if jmap_id == SINGLETON else "notFound",
            "The VacationResponse cannot be destroyed." if jmap_id == SINGLETON else None,
        )
        for jmap_id in destroy
    }
    return {
        "accountId": ids.encode(ids.ACCOUNT, account),
        "oldState": old_state,
        "newState": await state(call, account, KIND),
        "created": None,
        "updated": updated or None,
        "destroyed": None,
        "notCreated": not_created or None,
        "notUpdated": not_updated or None,
        "notDestroyed": not_destroyed or None,
    }


def account_capability(node: Any, account: Any) -> dict[str, Any]:
    """The ``urn:ietf:params:jmap:vacationresponse`` account capability
    (RFC 8621 §1.3.3): an empty object."""
    return {}


METHODS: dict[str, Method] = {
    "VacationResponse/get": Method(VACATION, get),
    "VacationResponse/set": Method(VACATION, set_),
}

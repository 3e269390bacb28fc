"""JMAP VacationResponse (RFC 8621 §8): the one auto-reply setting of an
account, id ``singleton``, kept as a store record (kind
``VacationResponse``); `mailstack.delivery.vacation` sends the replies.

Only /get and /set exist (§8.1, §8.2); /set may only update the singleton:
a create or destroy is the ``singleton`` SetError (RFC 8620 §5.3).
"""

from __future__ import annotations

from typing import Any

from mailstack.delivery.vacation import KIND
from mailstack.jmap import records
from mailstack.jmap.method import Args, Call, Method, check_objects_in_set
from mailstack.jmap.records import (
    PatchError,
    apply_patch,
    check_if_in_state,
    data,
    dump,
    invalid,
    own_account,
    parse_utc_date,
    set_arguments,
    set_error,
    set_response,
    state,
    store,
)
from mailstack.store import Record

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


def _object(found: list[Record]) -> dict[str, Any]:
    return {**DEFAULT, **(data(found[0]) if found else {}), "id": SINGLETON}


async def _load(
    call: Call, account: int, wanted: list[str] | None = None
) -> dict[str, dict[str, Any]]:
    return {SINGLETON: _object(await store(call).records(account, KIND))}


async def get(call: Call, args: Args) -> Args:
    return await records.get(call, args, KIND, PROPERTIES, _load)


async def set_(call: Call, args: Args) -> Args:
    account = own_account(call, args)
    check_objects_in_set(call, args)
    create, update, destroy = set_arguments(args)
    old_state = await state(call, account, KIND)
    check_if_in_state(args, old_state)
    s = store(call)
    found = await s.records(account, KIND)
    current = _object(found)
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
        if found:
            found = [await s.record_update(account, KIND, found[0].id, stored)]
        else:
            found = [await s.record_create(account, KIND, stored)]
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
    return set_response(
        account,
        old_state,
        await state(call, account, KIND),
        updated=updated,
        notCreated=not_created,
        notUpdated=not_updated,
        notDestroyed=not_destroyed,
    )


def account_capability(node: Any, account: Any) -> dict[str, Any]:
    """The ``urn:ietf:params:jmap:vacationresponse`` account capability
    (RFC 8621 §1.3.3): an empty object."""
    return {}


METHODS: dict[str, Method] = {
    "VacationResponse/get": Method(VACATION, get),
    "VacationResponse/set": Method(VACATION, set_),
}

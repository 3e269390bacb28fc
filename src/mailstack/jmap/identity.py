"""JMAP Identity (RFC 8621 §6): the From addresses a user sends as, with
their names, Reply-To, Bcc and signatures.

Identities are store records (kind ``Identity``). Every account has one for
its own address, made at its first use and not deletable (``mayDelete``
false, §6); others may be created for the addresses the account may send
as: its own, its aliases and sub-addresses, and ``*@domain`` when it
receives that domain's catch-all (§6: "*" as the local part). Any other
address is a ``forbiddenFrom`` SetError (§6.3).
"""

from __future__ import annotations

from typing import Any

from mailstack.delivery.outbound import may_send_as
from mailstack.jmap import ids, records
from mailstack.jmap.method import Args, Call, Method, check_objects_in_set
from mailstack.jmap.records import (
    PatchError,
    apply_patch,
    changes,
    check_if_in_state,
    data,
    dump,
    invalid,
    own_account,
    record_id,
    set_arguments,
    set_error,
    set_response,
    state,
    store,
)
from mailstack.store import Account, Record

SUBMISSION = "urn:ietf:params:jmap:submission"
KIND = "Identity"

PROPERTIES = (
    "id", "name", "email", "replyTo", "bcc", "textSignature", "htmlSignature", "mayDelete",
)
DEFAULTS: dict[str, Any] = {
    "name": "", "replyTo": None, "bcc": None, "textSignature": "", "htmlSignature": "",
}
SERVER_SET = ("id", "mayDelete")


async def load(
    call: Call, account: int, wanted: list[str] | None = None
) -> dict[str, dict[str, Any]]:
    """The account's identities by JMAP id, the default one made first if
    the account has none yet."""
    s = store(call)
    records: list[Record] = await s.records(account, KIND)
    if not records:
        default = {**DEFAULTS, "email": call.user.address, "mayDelete": False}
        await s.record_create(account, KIND, dump(default))
        # Two requests at once may each have made one: the first stays.
        records = await s.records(account, KIND)
        made = [r for r in records if data(r).get("mayDelete") is False]
        for extra in made[1:]:
            await s.record_destroy(account, KIND, extra.id)
            records.remove(extra)
    return {record_id(r): {**DEFAULTS, **data(r), "id": record_id(r)} for r in records}


async def allowed(store: Any, account: Account, address: str) -> bool:
    """Whether the account may send as ``address`` (RFC 8621 §6): one that
    delivers to it, or ``*@domain`` for a domain whose catch-all it gets."""
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        return False
    if local != "*":
        return await may_send_as(store, account, address)
    domain = domain.lower()
    for alias in await store.alias_list():
        if alias.source.lower() == f"@{domain}":
            targets = await store.resolve_local(alias.target)
            if targets and any(a.id == account.id for a in targets):
                return True
    return False


def allows(identity: dict[str, Any], address: str) -> bool:
    """Whether an identity covers an address: the same, or of the domain of
    a ``*@domain`` identity."""
    email = str(identity.get("email", "")).lower()
    address = address.lower()
    if email.startswith("*@"):
        return address.rpartition("@")[2] == email[2:] and "@" in address
    return address == email


def _addresses(value: Any) -> bool:
    """EmailAddress[]|null (RFC 8621 §4.1.2.3)."""
    if value is None:
        return True
    return isinstance(value, list) and all(
        isinstance(item, dict)
        and set(item) <= {"name", "email"}
        and isinstance(item.get("email"), str)
        and (item.get("name") is None or isinstance(item.get("name"), str))
        for item in value
    )


def _bad_properties(identity: dict[str, Any]) -> list[str]:
    bad = [key for key in identity if key not in PROPERTIES]
    for key in ("name", "textSignature", "htmlSignature", "email"):
        if not isinstance(identity.get(key, ""), str):
            bad.append(key)
    for key in ("replyTo", "bcc"):
        if not _addresses(identity.get(key)):
            bad.append(key)
    return bad


async def get(call: Call, args: Args) -> Args:
    return await records.get(call, args, KIND, PROPERTIES, load)


async def identity_changes(call: Call, args: Args) -> Args:
    account = own_account(call, args)
    await load(call, account)
    return await changes(call, args, account, KIND)


async def set_(call: Call, args: Args) -> Args:
    account = own_account(call, args)
    check_objects_in_set(call, args)
    create, update, destroy = set_arguments(args)
    objects = await load(call, account)
    old_state = await state(call, account, KIND)
    check_if_in_state(args, old_state)
    s = store(call)
    created: dict[str, Any] = {}
    not_created: dict[str, Any] = {}
    for creation_id, given in create.items():
        if not isinstance(given, dict):
            not_created[creation_id] = invalid(description="An Identity must be an object.")
            continue
        bad = _bad_properties(given) + [
            p for p in SERVER_SET if p in given and not (p == "mayDelete" and given[p] is True)
        ]
        if "email" not in given:
            bad.append("email")
        if bad:
            not_created[creation_id] = invalid(*dict.fromkeys(bad))
            continue
        if not await allowed(s, call.user, given["email"]):
            not_created[creation_id] = set_error(
                "forbiddenFrom", "This account may not send as that address."
            )
            continue
        identity = {**DEFAULTS, **given, "mayDelete": True}
        identity.pop("id", None)
        record = await s.record_create(account, KIND, dump(identity))
        new_id = record_id(record)
        call.created_ids[creation_id] = new_id
        objects[new_id] = {**identity, "id": new_id}
        created[creation_id] = {
            "id": new_id, "mayDelete": True, **{k: v for k, v in DEFAULTS.items() if k not in given}
        }
    updated: dict[str, Any] = {}
    not_updated: dict[str, Any] = {}
    for jmap_id, patch in update.items():
        current = objects.get(jmap_id)
        number = ids.decode(ids.RECORD, jmap_id)
        if current is None or number is None:
            not_updated[jmap_id] = set_error("notFound")
            continue
        try:
            changed = apply_patch(current, patch)
        except PatchError as exc:
            not_updated[jmap_id] = invalid(exc.property or "")
            continue
        bad = _bad_properties(changed) + [
            # Immutable and server-set properties keep their values (§6, RFC 8620 §5.3).
            p for p in ("id", "email", "mayDelete") if changed.get(p) != current.get(p)
        ]
        if bad:
            not_updated[jmap_id] = invalid(*dict.fromkeys(bad))
            continue
        stored = {k: v for k, v in changed.items() if k != "id"}
        await s.record_update(account, KIND, number, dump(stored))
        objects[jmap_id] = changed
        updated[jmap_id] = None
    destroyed: list[str] = []
    not_destroyed: dict[str, Any] = {}
    for jmap_id in destroy:
        current = objects.get(jmap_id) if isinstance(jmap_id, str) else None
        number = ids.decode(ids.RECORD, jmap_id)
        if current is None or number is None:
            not_destroyed[str(jmap_id)] = set_error("notFound")
            continue
        if not current.get("mayDelete"):
            not_destroyed[jmap_id] = set_error("forbidden", "This identity may not be deleted.")
            continue
        await s.record_destroy(account, KIND, number)
        del objects[jmap_id]
        destroyed.append(jmap_id)
    return set_response(
        account,
        old_state,
        await state(call, account, KIND),
        created=created,
        updated=updated,
        destroyed=destroyed,
        notCreated=not_created,
        notUpdated=not_updated,
        notDestroyed=not_destroyed,
    )


METHODS: dict[str, Method] = {
    "Identity/get": Method(SUBMISSION, get),
    "Identity/changes": Method(SUBMISSION, identity_changes),
    "Identity/set": Method(SUBMISSION, set_),
}

"""Email/set, Email/import and Email/copy (RFC 8621 §4.6-4.8, RFC 8620 §5.3,
§5.4).

New emails go through the store's ``append`` with ``mime.parse_for_store``,
as IMAP APPEND does, so threading and quota apply (``overQuota``). An email
is in exactly one mailbox (``maxMailboxesPerEmail`` is 1): more is
``tooManyMailboxes``, none ``invalidProperties``. Updates change keywords
(``keywords``, ``keywords/{name}``) and the mailbox (``mailboxIds``,
``mailboxIds/{id}``: a store move, the email keeps its id); every other
property is immutable (``invalidProperties``). Destroying expunges.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import TYPE_CHECKING, Any

from mailstack.errors import QuotaExceeded, StoreError
from mailstack.jmap import blobs, email_build, emailview, ids, sharing
from mailstack.jmap.email_query import MAIL, invalid, read_utc_date, store_of
from mailstack.jmap.keywords import flag_of, is_keyword, keywords_of, visible
from mailstack.jmap.method import (
    Args,
    Call,
    Method,
    MethodError,
    account_id,
    check_objects_in_set,
    created_id,
)
from mailstack.mime import parse_for_store

if TYPE_CHECKING:
    from mailstack.mime import ParsedMessage
    from mailstack.store import EmailMeta, MessageMeta, Store


class SetError(Exception):
    """One object's failure (RFC 8620 §5.3 SetError)."""

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


def _invalid(description: str, *properties: str) -> SetError:
    return SetError("invalidProperties", description, properties=list(properties))


# -- reading the store ---------------------------------------------------------


async def _email(
    store: Store[ParsedMessage], reach: sharing.Reach, email_id: object
) -> EmailMeta | None:
    """The account's visible email an id names (in a shared account, one in
    a mailbox the user may read), or None."""
    number = ids.decode(ids.EMAIL, email_id)
    if number is None:
        return None
    meta = (await store.emails_by_id(reach.account_id, [number])).get(number)
    if meta is None or not visible(meta.flags) or not reach.shows(meta.mailbox_id):
        return None
    return meta


def received_at_of(raw: bytes) -> datetime | None:
    """RFC 8621 §4.8: an import's receivedAt defaults to "the time of the most
    recent Received header": the date after the first Received field's ";"."""
    head = raw[: raw.find(b"\r\n\r\n") + 2 if b"\r\n\r\n" in raw else 64 * 1024]
    fields = BytesHeaderParser(policy=compat32).parsebytes(head)
    received = fields.get("Received")
    if not isinstance(received, str) or ";" not in received:
        return None
    return emailview.parse_date(" ".join(received.rsplit(";", 1)[1].split()))


async def _mailbox(call: Call, account: int, spec: object, prop: str = "mailboxIds") -> int:
    """The one mailbox a mailboxIds value names (RFC 8621 §4.1.1)."""
    if not isinstance(spec, dict) or not all(v is True for v in spec.values()):
        raise _invalid("mailboxIds maps mailbox ids to true", prop)
    if not spec:
        raise _invalid("an Email is in at least one mailbox", prop)
    if len(spec) > 1:
        raise SetError("tooManyMailboxes", "an Email is in exactly one mailbox here")
    return await _own_mailbox(call, account, next(iter(spec)), prop)


async def _own_mailbox(call: Call, account: int, jmap_id: str, prop: str) -> int:
    number = ids.decode(ids.MAILBOX, created_id(call, jmap_id))
    mailbox = None if number is None else await store_of(call).mailbox_by_id(number)
    if (
        mailbox is None
        or mailbox.account_id != account
        or not sharing.reach_of(call, account).mailbox_visible(mailbox.id)
    ):
        raise _invalid(f"no mailbox {jmap_id}", prop)
    return mailbox.id


def _flags(spec: object, prop: str = "keywords") -> set[str]:
    if spec is None:
        return set()
    if not isinstance(spec, dict) or not all(v is True for v in spec.values()):
        raise _invalid("keywords maps keywords to true", prop)
    flags = set()
    for keyword in spec:
        if not is_keyword(keyword):
            raise _invalid(f"{keyword!r} is not a keyword", prop)
        flags.add(flag_of(keyword))
    return flags


def _received_at(spec: Args) -> datetime | None:
    if spec.get("receivedAt") is None:
        return None
    when = read_utc_date(spec["receivedAt"])
    if when is None:
        raise _invalid("receivedAt must be a UTCDate", "receivedAt")
    return when


def _created(meta: EmailMeta | MessageMeta) -> Args:
    """The server-set properties of a new email (RFC 8621 §4.6)."""
    return {
        "id": ids.encode(ids.EMAIL, meta.email_id),
        "blobId": ids.encode(ids.EMAIL_BLOB, meta.email_id),
        "threadId": ids.encode(ids.THREAD, meta.thread_id),
        "size": meta.size,
    }


async def _append(
    call: Call, account: int, mailbox_id: int, raw: bytes, flags: set[str],
    received_at: datetime | None,
) -> Args:
    """File a new message as IMAP APPEND does; its server-set properties."""
    # RFC 8621 §2: mayAddItems, and the rights for the keywords it gets.
    reach = sharing.reach_of(call, account)
    if not reach.may(mailbox_id, "i") or not sharing.flags_allowed(reach, mailbox_id, flags):
        raise SetError("forbidden", "no right to add this email to that mailbox")
    if not raw:
        raise SetError("invalidEmail", "an empty message")
    if len(raw) > call.node.limits.message_size:
        raise SetError("tooLarge", "the message is larger than the server takes",
                       maxSize=call.node.limits.message_size)
    store = store_of(call)
    parsed = await parse_for_store(raw)
    before = await store.account_state(account)
    try:
        uid = await store.append(mailbox_id, raw, parsed, sorted(flags), received_at)
    except QuotaExceeded:
        raise SetError("overQuota", "the account is over its quota") from None
    changed, _ = await store.changes_since(mailbox_id, before)
    return _created(next(m for m in changed if m.uid == uid))


# -- Email/set -------------------------------------------------------------------


async def _create(call: Call, account: int, spec: object) -> Args:
    try:
        draft = email_build.check(spec)
    except email_build.Invalid as exc:
        raise _invalid(exc.description, *exc.properties) from None
    assert isinstance(spec, dict)
    mailbox_id = await _mailbox(call, account, spec.get("mailboxIds"))
    flags = _flags(spec.get("keywords"))
    received_at = _received_at(spec)
    contents: dict[str, bytes] = {}
    missing = []
    for blob_id in draft.blob_ids:
        content = await blobs.blob_bytes(call.node, account, blob_id)
        if content is None:
            missing.append(blob_id)
        else:
            contents[blob_id] = content
    if missing:
        raise SetError("blobNotFound", notFound=missing)
    try:
        raw = email_build.build(
            spec, draft, contents, now=datetime.now(UTC), hostname=call.node.hostname
        )
    except email_build.Invalid as exc:
        raise _invalid(exc.description, *exc.properties) from None
    return await _append(call, account, mailbox_id, raw, flags, received_at)


@dataclass
class _Patch:
    """What an Email/set update asks (RFC 8620 §5.3 PatchObject)."""

    keywords: dict[str, bool | None]  # lowercase keyword -> True, or None to remove
    replace_keywords: bool
    mailboxes: dict[str, bool | None]
    replace_mailboxes: bool


def _unescape(token: str) -> str:
    # RFC 6901 §4: "~1" is "/", "~0" is "~".
    return token.replace("~1", "/").replace("~0", "~")


def _read_patch(patch: object) -> _Patch:
    if not isinstance(patch, dict):
        raise SetError("invalidPatch", "a PatchObject is an object")
    out = _Patch({}, False, {}, False)
    immutable = []
    for path, value in patch.items():
        head, slash, rest = path.partition("/")
        if head not in ("keywords", "mailboxIds"):
            immutable.append(head)
            continue
        if slash and "/" in rest:
            raise SetError("invalidPatch", f"{path} points inside a keyword or mailbox")
        if not slash:
            if not isinstance(value, dict) or not all(v is True for v in value.values()):
                raise _invalid(f"{head} maps ids to true", head)
            if head == "keywords":
                out.replace_keywords = True
                out.keywords.update({k.lower(): True for k in value})
            else:
                out.replace_mailboxes = True
                out.mailboxes.update(dict.fromkeys(value, True))
            continue
        if value is not True and value is not None:
            raise _invalid(f"{path} is set to true or null", head)
        key = _unescape(rest)
        if head == "keywords":
            out.keywords[key.lower()] = value
        else:
            out.mailboxes[key] = value
    if immutable:
        raise _invalid("only keywords and mailboxIds change after creation", *immutable)
    for head in ("keywords", "mailboxIds"):
        if head in patch and any(p.startswith(head + "/") for p in patch):
            # RFC 8620 §5.3: no path may be a prefix of another.
            raise SetError("invalidPatch", f"{head} is both replaced and patched")
    return out


async def _update(call: Call, account: int, jmap_id: str, patch: object) -> None:
    store = store_of(call)
    reach = sharing.reach_of(call, account)
    meta = await _email(store, reach, jmap_id)
    if meta is None:
        raise SetError("notFound")
    asked = _read_patch(patch)
    current = keywords_of(meta.flags)
    wanted = {} if asked.replace_keywords else dict(current)
    for keyword, value in asked.keywords.items():
        if not is_keyword(keyword):
            raise _invalid(f"{keyword!r} is not a keyword", "keywords")
        if value:
            wanted[keyword] = True
        else:
            wanted.pop(keyword, None)
    mailbox_key = ids.encode(ids.MAILBOX, meta.mailbox_id)
    mailboxes = set() if asked.replace_mailboxes else {mailbox_key}
    for key, value in asked.mailboxes.items():
        resolved = created_id(call, key)
        if value:
            mailboxes.add(resolved)
        else:
            mailboxes.discard(resolved)
    if not mailboxes:
        raise _invalid("an Email is in at least one mailbox", "mailboxIds")
    if len(mailboxes) > 1:
        raise SetError("tooManyMailboxes", "an Email is in exactly one mailbox here")
    target = next(iter(mailboxes))
    mailbox_id, uid = meta.mailbox_id, meta.uid
    remove = [f for f in meta.flags if keywords_of([f]).keys() - wanted.keys()]
    add = [flag_of(k) for k in wanted if k not in current]
    if not sharing.flags_allowed(reach, meta.mailbox_id, [*remove, *add]):
        raise SetError("forbidden", "no right to change these keywords (RFC 8621 §2)")
    if target != mailbox_key:
        dest = await _own_mailbox(call, account, target, "mailboxIds")
        # RFC 8621 §2: mayRemoveItems where it was, mayAddItems where it goes.
        if not reach.may(mailbox_id, "te") or not reach.may(dest, "i"):
            raise SetError("forbidden", "no right to move this email there")
        moved = await store.move(mailbox_id, [uid], dest)
        if not moved:
            raise SetError("notFound")
        mailbox_id, uid = dest, moved[0][1]
    if remove:
        await store.store_flags(mailbox_id, [uid], remove, "remove")
    if add:
        await store.store_flags(mailbox_id, [uid], add, "add")


async def _destroy(call: Call, account: int, jmap_id: str) -> None:
    store = store_of(call)
    reach = sharing.reach_of(call, account)
    meta = await _email(store, reach, jmap_id)
    if meta is not None and not reach.may(meta.mailbox_id, "te"):
        raise SetError("forbidden", "no right to remove this email (mayRemoveItems)")
    if meta is None or not await store.expunge(meta.mailbox_id, [meta.uid], require_deleted=False):
        raise SetError("notFound")


def _object(args: Args, name: str) -> dict[str, Any]:
    value = args.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid(f"{name} must be an object or null")
    return value


def _if_in_state(args: Args, name: str, state: int) -> None:
    expected = args.get(name)
    if expected is None:
        return
    if not isinstance(expected, str):
        raise invalid(f"{name} must be a string or null")
    if expected != str(state):
        raise MethodError("stateMismatch")


def _or_null(value: dict[str, Any] | list[str]) -> Any:
    """RFC 8620 §5.3: each of created ... notDestroyed is null when empty."""
    return value or None


async def email_set(call: Call, args: Args) -> Args:
    reach = sharing.reach(call, args)  # a shared account: within the user's rights
    reach.check_writable()
    account = reach.account_id
    create = _object(args, "create")
    update = _object(args, "update")
    destroy = args.get("destroy") or []
    if not isinstance(destroy, list) or not all(isinstance(i, str) for i in destroy):
        raise invalid("destroy must be a list of ids or null")
    check_objects_in_set(call, args)
    store = store_of(call)
    old_state = await store.account_state(account)
    _if_in_state(args, "ifInState", old_state)

    created: dict[str, Any] = {}
    not_created: dict[str, Any] = {}
    for creation_id, spec in create.items():
        try:
            created[creation_id] = await _create(call, account, spec)
            call.created_ids[creation_id] = created[creation_id]["id"]
        except SetError as exc:
            not_created[creation_id] = exc.response()
    updated: dict[str, Any] = {}
    not_updated: dict[str, Any] = {}
    for jmap_id, patch in update.items():
        try:
            if jmap_id in destroy:
                raise SetError("willDestroy")
            await _update(call, account, jmap_id, patch)
            updated[jmap_id] = None
        except SetError as exc:
            not_updated[jmap_id] = exc.response()
    destroyed: list[str] = []
    not_destroyed: dict[str, Any] = {}
    for jmap_id in dict.fromkeys(destroy):
        try:
            await _destroy(call, account, jmap_id)
            destroyed.append(jmap_id)
        except SetError as exc:
            not_destroyed[jmap_id] = exc.response()
    return {
        "accountId": ids.encode(ids.ACCOUNT, account),
        "oldState": str(old_state),
        "newState": str(await store.account_state(account)),
        "created": _or_null(created),
        "updated": _or_null(updated),
        "destroyed": _or_null(destroyed),
        "notCreated": _or_null(not_created),
        "notUpdated": _or_null(not_updated),
        "notDestroyed": _or_null(not_destroyed),
    }


# -- Email/import (RFC 8621 §4.8) ---------------------------------------------------


async def _import(call: Call, account: int, spec: object) -> Args:
    if not isinstance(spec, dict):
        raise _invalid("an EmailImport is an object")
    unknown = sorted(set(spec) - {"blobId", "mailboxIds", "keywords", "receivedAt"})
    if unknown:
        raise _invalid("unknown EmailImport properties", *unknown)
    blob_id = spec.get("blobId")
    if not isinstance(blob_id, str):
        raise _invalid("blobId is required", "blobId")
    mailbox_id = await _mailbox(call, account, spec.get("mailboxIds"))
    flags = _flags(spec.get("keywords"))
    received_at = _received_at(spec)
    raw = await blobs.blob_bytes(call.node, account, blob_id)
    if raw is None:
        raise SetError("blobNotFound", notFound=[blob_id])
    if received_at is None:
        received_at = received_at_of(raw)
    return await _append(call, account, mailbox_id, raw, flags, received_at)


async def email_import(call: Call, args: Args) -> Args:
    reach = sharing.reach(call, args)  # a shared account: within the user's rights
    reach.check_writable()
    account = reach.account_id
    emails = args.get("emails")
    if not isinstance(emails, dict):
        raise invalid("emails must map creation ids to EmailImport objects")
    check_objects_in_set(call, {"create": emails})
    store = store_of(call)
    old_state = await store.account_state(account)
    _if_in_state(args, "ifInState", old_state)
    created: dict[str, Any] = {}
    not_created: dict[str, Any] = {}
    for creation_id, spec in emails.items():
        try:
            created[creation_id] = await _import(call, account, spec)
            call.created_ids[creation_id] = created[creation_id]["id"]
        except SetError as exc:
            not_created[creation_id] = exc.response()
    return {
        "accountId": ids.encode(ids.ACCOUNT, account),
        "oldState": str(old_state),
        "newState": str(await store.account_state(account)),
        "created": _or_null(created),
        "notCreated": _or_null(not_created),
    }


# -- Email/copy (RFC 8621 §4.7, RFC 8620 §5.4) ---------------------------------------


async def _copy(call: Call, source: int, account: int, spec: object) -> Args:
    if not isinstance(spec, dict):
        raise _invalid("a copy is an object")
    unknown = sorted(set(spec) - {"id", "mailboxIds", "keywords", "receivedAt"})
    if unknown:
        raise _invalid("only mailboxIds, keywords and receivedAt may be set", *unknown)
    store = store_of(call)
    meta = await _email(store, sharing.reach_of(call, source), spec.get("id"))
    if meta is None:
        raise SetError("notFound", f"no email {spec.get('id')} in the account copied from")
    mailbox_id = await _mailbox(call, account, spec.get("mailboxIds"))
    # RFC 8620 §5.4: what is not given is copied from the original.
    if "keywords" in spec:
        flags = _flags(spec["keywords"])
    else:
        flags = {flag_of(k) for k in keywords_of(meta.flags)}
    received_at = _received_at(spec) or meta.internaldate
    try:
        raw = await store.message_bytes(meta.mailbox_id, meta.uid)
    except StoreError:
        raise SetError("notFound") from None
    return await _append(call, account, mailbox_id, raw, flags, received_at)


async def email_copy(call: Call, args: Args) -> Args:
    # RFC 8621 §4.7: between the user's accounts, shared ones included.
    source = account_id(call, {"accountId": args.get("fromAccountId")}, shared=True)
    target = sharing.reach(call, args)
    target.check_writable()
    account = target.account_id
    if source == account:
        # RFC 8620 §5.4: accountId "MUST be different to the fromAccountId".
        raise invalid("fromAccountId and accountId are the same account")
    create = _object(args, "create")
    destroy_original = args.get("onSuccessDestroyOriginal", False)
    if not isinstance(destroy_original, bool):
        raise invalid("onSuccessDestroyOriginal must be a boolean")
    destroy_if = args.get("destroyFromIfInState")
    if destroy_if is not None and not isinstance(destroy_if, str):
        raise invalid("destroyFromIfInState must be a string or null")
    check_objects_in_set(call, {"create": create})
    store = store_of(call)
    _if_in_state(args, "ifFromInState", await store.account_state(source))
    old_state = await store.account_state(account)
    _if_in_state(args, "ifInState", old_state)
    created: dict[str, Any] = {}
    not_created: dict[str, Any] = {}
    originals: list[str] = []
    for creation_id, spec in create.items():
        try:
            created[creation_id] = await _copy(call, source, account, spec)
            call.created_ids[creation_id] = created[creation_id]["id"]
            originals.append(spec["id"])
        except SetError as exc:
            not_created[creation_id] = exc.response()
    if destroy_original and originals:
        # RFC 8620 §5.4: an implicit Foo/set destroying the originals follows.
        call.also.append((
            "Email/set",
            {"accountId": args["fromAccountId"], "ifInState": destroy_if, "destroy": originals},
        ))
    return {
        "fromAccountId": args["fromAccountId"],
        "accountId": ids.encode(ids.ACCOUNT, account),
        "oldState": str(old_state),
        "newState": str(await store.account_state(account)),
        "created": _or_null(created),
        "notCreated": _or_null(not_created),
    }


METHODS: dict[str, Method] = {
    "Email/set": Method(MAIL, email_set),
    "Email/import": Method(MAIL, email_import),
    "Email/copy": Method(MAIL, email_copy),
}

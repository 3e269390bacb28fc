"""JMAP EmailSubmission (RFC 8621 §7): sending an Email, the way SMTP
submission sends it (`mailstack.delivery.outbound`): the account must own
the envelope sender and every From: address, the MSA adds a missing Date:
and Message-ID: and signs with DKIM, local recipients get it at once and
the others through the queue. The Bcc: field is taken out first (§7.5).

Submissions are store records (kind ``EmailSubmission``). ``undoStatus`` is
``pending`` while the queue holds the message and no recipient has it,
``final`` once one has (a local recipient at once), ``canceled`` after an
update to ``canceled`` took it out of the queue (else ``cannotUnsend``).
``deliveryStatus`` follows the queue's recipient states: the queue runner
tells the record each outcome it records, and a read of a submission still
in the queue looks again. FUTURERELEASE is not offered (``maxDelayedSend``
0); DSN and MDN blobs are not kept (``dsnBlobIds``, ``mdnBlobIds`` empty).

``onSuccessUpdateEmail`` and ``onSuccessDestroyEmail`` become one implicit
``Email/set`` call after the response (§7.5, ``Call.also``).
"""

from __future__ import annotations

import asyncio
import datetime
import email.utils
import logging
from collections.abc import Callable, Mapping
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Any

from mailstack.delivery.local import LocalDelivery
from mailstack.delivery.outbound import Outgoing, complete, dkim_signature, may_send_as, send
from mailstack.errors import StoreError
from mailstack.jmap import identity, ids, records
from mailstack.jmap.method import (
    Args,
    Call,
    Method,
    MethodError,
    check_objects_in_set,
    created_id,
)
from mailstack.jmap.records import (
    PatchError,
    apply_patch,
    changes,
    check_if_in_state,
    data,
    dump,
    invalid,
    max_changes,
    own_account,
    parse_utc_date,
    record_id,
    set_arguments,
    set_error,
    set_response,
    since_state,
    state,
    store,
    utc_date,
)
from mailstack.mime.scanner import scan_header
from mailstack.queue.runner import Watcher, recallable
from mailstack.smtp.address import AddressError, is_xtext, parse_mailbox, xtext_decode
from mailstack.store import (
    DELIVERED,
    FAILED,
    QUEUED,
    EmailMeta,
    QueueEntry,
    RecipientUpdate,
    Record,
)

SUBMISSION = "urn:ietf:params:jmap:submission"
KIND = "EmailSubmission"

log = logging.getLogger("mailstack.jmap")

PROPERTIES = (
    "id", "identityId", "emailId", "threadId", "envelope", "sendAt", "undoStatus",
    "deliveryStatus", "dsnBlobIds", "mdnBlobIds",
)
SERVER_SET = ("id", "threadId", "sendAt", "deliveryStatus", "dsnBlobIds", "mdnBlobIds")
# What is kept beside the JMAP properties: the queue entry, the local recipients.
QUEUE_ID = "_queue"
LOCAL = "_local"
PENDING, FINAL, CANCELED = "pending", "final", "canceled"

# The envelope parameters we take (RFC 5321 mail-parameter / rcpt-parameter
# names), and the EHLO keywords they come from (submissionExtensions).
MAIL_PARAMETERS = ("BODY", "SMTPUTF8", "RET", "ENVID", "SIZE")
RCPT_PARAMETERS = ("NOTIFY", "ORCPT")


def account_capability(node: Any, account: Any) -> dict[str, Any]:
    """The ``urn:ietf:params:jmap:submission`` account capability (RFC 8621
    §1.3.2): no delayed send; the SMTP extensions whose envelope
    parameters EmailSubmission takes."""
    return {
        "maxDelayedSend": 0,
        "submissionExtensions": {
            "8BITMIME": [],
            "DSN": [],
            "SIZE": [str(node.limits.message_size)],
            "SMTPUTF8": [],
        },
    }


# -- the objects ----------------------------------------------------------------------


def to_object(record: Record) -> dict[str, Any]:
    kept = data(record)
    out = {key: kept.get(key) for key in PROPERTIES if key != "id"}
    out["id"] = record_id(record)
    out["dsnBlobIds"] = []
    out["mdnBlobIds"] = []
    return out


def _reply(update: RecipientUpdate) -> str:
    """The SMTP reply (§7: smtpReply) of a recorded outcome; our own
    explanations (a local delivery, no MX answering) get a reply code."""
    reply = update.last_reply
    if reply[:3].isdigit():
        return reply
    code = {DELIVERED: "250 2.0.0", FAILED: "550 5.0.0"}.get(update.state, "451 4.0.0")
    return f"{code} {reply}".strip()


def _status(delivered: str, reply: str) -> dict[str, str]:
    return {"smtpReply": reply, "delivered": delivered, "displayed": "unknown"}


def _apply_outcomes(kept: dict[str, Any], outcomes: dict[str, RecipientUpdate]) -> None:
    """Recorded queue outcomes into deliveryStatus and undoStatus (§7)."""
    status = kept.setdefault("deliveryStatus", {})
    local = set(kept.get(LOCAL, []))
    for address, update in outcomes.items():
        if update.state == DELIVERED:
            # Relayed elsewhere, its final delivery is not known to us.
            delivered = "yes" if address in local else "unknown"
            if kept.get("undoStatus") == PENDING:
                kept["undoStatus"] = FINAL
        elif update.state == FAILED:
            delivered = "no"
        else:
            delivered = "queued"
        status[address] = _status(delivered, _reply(update))


def _still_queued(kept: dict[str, Any]) -> bool:
    return any(s.get("delivered") == "queued" for s in kept.get("deliveryStatus", {}).values())


def _watcher(
    call: Call, account: int, made: asyncio.Future[Record | None]
) -> Watcher | None:
    """What the node's queue runner tells of the submission's outcomes,
    once its record is ``made`` (the runner may try the message before
    then); None without a runner here."""
    if call.node.queue is None:
        return None
    s = store(call)

    async def told(entry: QueueEntry, outcomes: dict[str, RecipientUpdate]) -> bool:
        record = await made
        found = await s.records(account, KIND, [record.id]) if record is not None else []
        if not found:
            return True  # not made, or destroyed since: its mail goes on
        kept = data(found[0])
        _apply_outcomes(kept, outcomes)
        await s.record_update(account, KIND, found[0].id, dump(kept))
        return not _still_queued(kept)

    return told


async def _refresh(call: Call, account: int, records: list[Record]) -> list[Record]:
    """Submissions still in the queue, looked at again (the queue runner
    tells them as it goes, but perhaps another process's runner sent them,
    or this node restarted in between)."""
    s = store(call)
    out = []
    for record in records:
        kept = data(record)
        entry_id = kept.get(QUEUE_ID)
        if entry_id is None or not (kept.get("undoStatus") == PENDING or _still_queued(kept)):
            out.append(record)
            continue
        try:
            entry: QueueEntry | None = await s.queue_get(entry_id)
        except StoreError:
            entry = None
        before = dump(kept)
        if entry is None:
            # Gone from the queue: every recipient was tried to the end.
            for status in kept.get("deliveryStatus", {}).values():
                if status.get("delivered") == "queued":
                    status["delivered"] = "unknown"
            if kept.get("undoStatus") == PENDING:
                kept["undoStatus"] = FINAL
        else:
            _apply_outcomes(
                kept,
                {
                    r.address: RecipientUpdate(r.id, r.state, r.next_attempt, r.last_reply)
                    for r in entry.recipients
                    if r.state != QUEUED or r.attempts
                },
            )
        if dump(kept) != before:
            record = await s.record_update(account, KIND, record.id, dump(kept))
        out.append(record)
    return out


async def _objects(
    call: Call, account: int, wanted: list[str] | None = None
) -> dict[str, dict[str, Any]]:
    numbers = None if wanted is None else records.record_numbers(wanted)
    found = await store(call).records(account, KIND, numbers)
    fresh = await _refresh(call, account, found)
    return {record_id(r): to_object(r) for r in fresh}


# -- get, changes ---------------------------------------------------------------------


async def get(call: Call, args: Args) -> Args:
    return await records.get(call, args, KIND, PROPERTIES, _objects)


async def submission_changes(call: Call, args: Args) -> Args:
    account = own_account(call, args)
    return await changes(call, args, account, KIND)


# -- query ----------------------------------------------------------------------------

_FILTER_LISTS = ("identityIds", "emailIds", "threadIds")
_FILTERS = (*_FILTER_LISTS, "undoStatus", "before", "after")
_SORTS = {"emailId": "emailId", "threadId": "threadId", "sentAt": "sendAt", "sendAt": "sendAt"}


def _check_filter(value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise MethodError("invalidArguments", "filter must be an object.", arguments=["filter"])
    if "operator" in value:
        if value.get("operator") not in ("AND", "OR", "NOT") or not isinstance(
            value.get("conditions"), list
        ) or set(value) != {"operator", "conditions"}:
            raise MethodError("invalidArguments", "A bad FilterOperator.", arguments=["filter"])
        for condition in value["conditions"]:
            _check_filter(condition)
        return
    for key, item in value.items():
        if key not in _FILTERS:
            raise MethodError("unsupportedFilter", f"Unknown filter {key[:100]}.")
        if key in _FILTER_LISTS and not (
            isinstance(item, list) and all(isinstance(i, str) for i in item)
        ):
            raise MethodError("invalidArguments", f"{key} must be a list of ids.",
                              arguments=["filter"])
        if key == "undoStatus" and item not in (PENDING, FINAL, CANCELED):
            raise MethodError("invalidArguments", "Unknown undoStatus.", arguments=["filter"])
        if key in ("before", "after") and parse_utc_date(item) is None:
            raise MethodError("invalidArguments", f"{key} must be a UTCDate.",
                              arguments=["filter"])


def _matches(item: dict[str, Any], condition: dict[str, Any]) -> bool:
    if "operator" in condition:
        results = [_matches(item, c) for c in condition["conditions"]]
        if condition["operator"] == "AND":
            return all(results)
        if condition["operator"] == "OR":
            return any(results)
        return not any(results)
    for key in _FILTER_LISTS:
        if key in condition and item[key[:-1]] not in condition[key]:
            return False
    if "undoStatus" in condition and item["undoStatus"] != condition["undoStatus"]:
        return False
    sent = parse_utc_date(item["sendAt"])
    assert sent is not None
    before = parse_utc_date(condition.get("before"))
    if before is not None and not sent < before:
        return False
    after = parse_utc_date(condition.get("after"))
    return after is None or sent >= after


def _sort_key(prop: str) -> Callable[[dict[str, Any]], Any]:
    if prop == "sendAt":
        return lambda item: str(item["sendAt"])
    # Ids sort as the numbers they hold.
    return lambda item: int(str(item[prop])[1:])


def _sorted(items: list[dict[str, Any]], sort: Any) -> list[dict[str, Any]]:
    if sort is None:
        sort = []
    if not isinstance(sort, list) or not all(isinstance(c, dict) for c in sort):
        raise MethodError("invalidArguments", "sort must be a list of Comparators.",
                          arguments=["sort"])
    # The default order: oldest submission first (stable below).
    ordered = sorted(items, key=lambda o: int(o["id"][1:]))
    for comparator in reversed(sort):
        prop = comparator.get("property")
        if prop not in _SORTS or set(comparator) - {"property", "isAscending", "collation"}:
            raise MethodError("unsupportedSort", f"Cannot sort by {str(prop)[:100]}.")
        ascending = comparator.get("isAscending", True)
        if not isinstance(ascending, bool):
            raise MethodError("invalidArguments", "isAscending must be a boolean.",
                              arguments=["sort"])
        ordered.sort(key=_sort_key(_SORTS[prop]), reverse=not ascending)
    return ordered


def _unsigned(args: Args, name: str, default: int | None) -> int | None:
    value = args.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MethodError("invalidArguments", f"{name} must be an UnsignedInt.", arguments=[name])
    return value


async def _results(call: Call, args: Args, account: int) -> list[str]:
    _check_filter(args.get("filter"))
    items = list((await _objects(call, account)).values())
    condition = args.get("filter")
    if condition is not None:
        items = [item for item in items if _matches(item, condition)]
    return [item["id"] for item in _sorted(items, args.get("sort"))]


async def query(call: Call, args: Args) -> Args:
    """RFC 8621 §7.3, RFC 8620 §5.5."""
    account = own_account(call, args)
    current = await state(call, account, KIND)
    found = await _results(call, args, account)
    position = args.get("position", 0)
    if isinstance(position, bool) or not isinstance(position, int):
        raise MethodError("invalidArguments", "position must be an Int.", arguments=["position"])
    limit = _unsigned(args, "limit", None)
    anchor = args.get("anchor")
    if anchor is not None:
        if anchor not in found:
            raise MethodError("anchorNotFound")
        offset = args.get("anchorOffset", 0)
        if isinstance(offset, bool) or not isinstance(offset, int):
            raise MethodError("invalidArguments", "anchorOffset must be an Int.",
                              arguments=["anchorOffset"])
        start = max(found.index(anchor) + offset, 0)
    elif position < 0:
        start = max(len(found) + position, 0)
    else:
        start = position
    chosen = found[start:] if limit is None else found[start : start + limit]
    out: Args = {
        "accountId": ids.encode(ids.ACCOUNT, account),
        "queryState": current,
        "canCalculateChanges": True,
        "position": min(start, len(found)),
        "ids": chosen,
    }
    if args.get("calculateTotal") is True:
        out["total"] = len(found)
    return out


async def query_changes(call: Call, args: Args) -> Args:
    """RFC 8620 §5.6: every submission changed since the old state is in
    ``removed`` (allowed: "MAY include ids ... not in the old results"), and
    those of them in the results now are ``added`` at their index."""
    account = own_account(call, args)
    since = since_state({"sinceState": args.get("sinceQueryState")})
    limit = max_changes(args)
    found = await store(call).record_changes(account, KIND, since)
    if found is None:
        raise MethodError("cannotCalculateChanges")
    changed = [
        ids.encode(ids.RECORD, n) for n in (*found.created, *found.updated, *found.destroyed)
    ]
    if limit is not None and len(changed) > limit:
        raise MethodError("tooManyChanges")
    results = await _results(call, args, account)
    changed_set = set(changed)
    up_to = args.get("upToId")
    added = []
    for index, jmap_id in enumerate(results):
        if jmap_id in changed_set:
            added.append({"id": jmap_id, "index": index})
        if jmap_id == up_to:
            break
    out: Args = {
        "accountId": ids.encode(ids.ACCOUNT, account),
        "oldQueryState": str(since),
        "newQueryState": await state(call, account, KIND),
        "removed": changed,
        "added": added,
    }
    if args.get("calculateTotal") is True:
        out["total"] = len(results)
    return out


# -- set: the envelope ----------------------------------------------------------------


class _Refused(Exception):
    def __init__(self, error: Args) -> None:
        super().__init__(error["type"])
        self.error = error


def _xtext(text: str) -> str:
    """RFC 3461 §4: what JMAP gives decoded (§7: "xtext ... removed") goes
    on the wire as xtext again."""
    return "".join(
        c if "!" <= c <= "~" and c not in "+=" else "".join(f"+{b:02X}" for b in c.encode())
        for c in text
    )


def _decoded(params: Mapping[str, str | None]) -> dict[str, str | None] | None:
    """Envelope parameters as JMAP shows them: xtext decoded (§7)."""
    out = dict(params)
    if out.get("ENVID") is not None:
        out["ENVID"] = xtext_decode(str(out["ENVID"]))
    if out.get("ORCPT") is not None:
        addr_type, _, address = str(out["ORCPT"]).partition(";")
        out["ORCPT"] = f"{addr_type};{xtext_decode(address)}"
    return out or None


def _parameters(given: Any, allowed: tuple[str, ...]) -> dict[str, str | None]:
    if given is None:
        return {}
    if not isinstance(given, dict) or not all(
        isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in given.items()
    ):
        raise _Refused(invalid("envelope", description="parameters must map names to strings."))
    out: dict[str, str | None] = {}
    for name, value in given.items():
        key = name.upper()
        if key not in allowed:
            raise _Refused(invalid("envelope", description=f"Unsupported parameter {key[:50]}."))
        out[key] = value
    return out


def _check_mail_parameters(params: dict[str, str | None], size: int) -> dict[str, str | None]:
    """The MAIL FROM parameters (RFC 6152, RFC 6531, RFC 3461 §4.3-4.4, RFC
    1870) as the queue keeps them."""
    out: dict[str, str | None] = {}
    for key, value in params.items():
        if key == "BODY" and value is not None and value.upper() in ("7BIT", "8BITMIME"):
            out[key] = value.upper()
        elif key == "SMTPUTF8" and value is None:
            out[key] = None
        elif key == "RET" and value is not None and value.upper() in ("FULL", "HDRS"):
            out[key] = value.upper()
        elif key == "ENVID" and value is not None and len(_xtext(value)) <= 100:
            out[key] = _xtext(value)
        elif key == "SIZE" and value is not None and value.isascii() and value.isdigit():
            if int(value) < size:
                raise _Refused(invalid("envelope", description="SIZE is below the message's."))
        else:
            raise _Refused(invalid("envelope", description=f"A bad {key} parameter."))
    return out


def _check_rcpt_parameters(params: dict[str, str | None]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for key, value in params.items():
        if key == "NOTIFY" and value is not None:
            items = value.upper().split(",")
            if items == ["NEVER"] or (
                set(items) <= {"SUCCESS", "FAILURE", "DELAY"} and len(set(items)) == len(items)
            ):
                out[key] = ",".join(items)
                continue
        elif key == "ORCPT" and value is not None:
            addr_type, semi, address = value.partition(";")
            encoded = f"{addr_type};{_xtext(address)}"
            if semi and addr_type and len(encoded) <= 500 and is_xtext(_xtext(address)):
                out[key] = encoded
                continue
        raise _Refused(invalid("envelope", description=f"A bad {key} parameter."))
    return out


def _address(given: Any) -> tuple[str, Any]:
    if not isinstance(given, dict) or not isinstance(given.get("email"), str) or set(given) - {
        "email", "parameters"
    }:
        raise _Refused(invalid("envelope"))
    return given["email"], given.get("parameters")


def _header_addresses(header: Message, name: str) -> list[list[str]] | None:
    """The addresses of each ``name`` field; None when one is malformed."""
    fields = []
    for value in header.get_all(name, []):
        found = email.utils.getaddresses([str(value)])
        if not found or not all(address and "@" in address for _name, address in found):
            return None
        fields.append([address for _name, address in found])
    return fields


def _generated_mail_from(header: Message, chosen: dict[str, Any], user_address: str) -> str:
    """§7: the first address of the last Sender (else From) field; with
    several addresses or fields, the submission is refused (SHOULD); an
    address the identity does not allow gives way to the identity's."""
    for name, prop in (("Sender", "sender"), ("From", "from")):
        fields = _header_addresses(header, name)
        if fields is None:
            raise _Refused(set_error("invalidEmail", properties=[prop]))
        if not fields:
            continue
        if len(fields) > 1 or len(fields[-1]) > 1:
            raise _Refused(
                set_error("invalidEmail", f"More than one {name} address.", properties=[prop])
            )
        address = fields[-1][0]
        if identity.allows(chosen, address):
            return address
        break
    email_ = str(chosen.get("email", ""))
    return user_address if email_.startswith("*@") else email_


def _generated_rcpt_to(header: Message) -> list[str]:
    """§7: the deduplicated addresses of To, Cc and Bcc."""
    values = [str(v) for name in ("To", "Cc", "Bcc") for v in header.get_all(name, [])]
    found = [address for _name, address in email.utils.getaddresses(values) if address]
    return list(dict.fromkeys(found))


def without_bcc(message: bytes, max_fields: int) -> bytes:
    """The message without its Bcc: fields (§7.5: the server MUST remove them)."""
    scan = scan_header(message, 0, len(message), max_fields)
    cut = [(start, end) for name, start, _colon, end in scan.fields if name == "bcc"]
    if not cut:
        return message
    out = bytearray()
    position = 0
    for start, end in cut:
        out += message[position:start]
        position = end
    out += message[position:]
    return bytes(out)


# -- set: create ----------------------------------------------------------------------


async def _create(
    call: Call, account: int, given: Any, identities: dict[str, dict[str, Any]]
) -> Record:
    """Send one submission; _Refused with its SetError otherwise."""
    if not isinstance(given, dict):
        raise _Refused(invalid(description="An EmailSubmission must be an object."))
    bad = [key for key in given if key not in PROPERTIES]
    bad += [key for key in SERVER_SET if key in given]
    if "undoStatus" in given and given["undoStatus"] != PENDING:
        bad.append("undoStatus")  # §7: set by the server on create
    for key in ("identityId", "emailId"):
        if not isinstance(given.get(key), str):
            bad.append(key)
    if bad:
        raise _Refused(invalid(*dict.fromkeys(bad)))
    identity_id = created_id(call, given["identityId"])
    chosen = identities.get(identity_id)
    if chosen is None:
        raise _Refused(invalid("identityId", description="No such identity."))
    s = store(call)
    email_number = ids.decode(ids.EMAIL, created_id(call, given["emailId"]))
    metas = await s.emails_by_id(account, [email_number]) if email_number is not None else {}
    meta = metas.get(email_number) if email_number is not None else None
    if meta is None:
        raise _Refused(invalid("emailId", description="No such email."))
    limits = call.node.limits
    if meta.size > limits.message_size:
        raise _Refused(set_error("tooLarge", maxSize=limits.message_size))
    raw = await s.message_bytes(meta.mailbox_id, meta.uid)
    header = BytesHeaderParser(policy=compat32).parsebytes(raw)
    senders = _header_addresses(header, "From")
    if not senders:
        raise _Refused(set_error("invalidEmail", "The email has no valid From.",
                                 properties=["from"]))

    envelope = given.get("envelope")
    if envelope is None:
        mail_from = _generated_mail_from(header, chosen, call.user.address)
        mail_params: dict[str, str | None] = {}
        rcpts: list[tuple[str, dict[str, str | None]]] = [
            (address, {}) for address in _generated_rcpt_to(header)
        ]
    else:
        if not isinstance(envelope, dict) or set(envelope) != {"mailFrom", "rcptTo"} or (
            not isinstance(envelope["rcptTo"], list)
        ):
            raise _Refused(invalid("envelope"))
        mail_from, given_params = _address(envelope["mailFrom"])
        mail_params = _check_mail_parameters(
            _parameters(given_params, MAIL_PARAMETERS), len(raw)
        )
        rcpts = []
        for item in envelope["rcptTo"]:
            address, params = _address(item)
            rcpts.append((address, _check_rcpt_parameters(_parameters(params, RCPT_PARAMETERS))))

    # The sender checks of SMTP submission (RFC 6409 §6.1).
    if not await may_send_as(s, call.user, mail_from):
        raise _Refused(set_error("forbiddenMailFrom", "The envelope sender is not yours."))
    for address in (a for field in senders for a in field):
        if not await may_send_as(s, call.user, address):
            raise _Refused(set_error("forbiddenFrom", "A From: address is not yours."))

    recipients: dict[str, dict[str, str | None]] = {}
    for address, params in rcpts:
        recipients.setdefault(address, params)  # each once (§7)
    if not recipients:
        raise _Refused(set_error("noRecipients", "The envelope has no recipient."))
    if len(recipients) > limits.recipients:
        raise _Refused(set_error("tooManyRecipients", maxRecipients=limits.recipients))
    local: dict[str, list[int]] = {}
    wrong: list[str] = []
    for address in recipients:
        try:
            parse_mailbox(address)
        except AddressError:
            wrong.append(address)
            continue
        accounts = await s.resolve_local(address)
        if accounts == []:
            wrong.append(address)  # our domain, no such user
        elif accounts:
            local[address] = [a.id for a in accounts]
    if wrong:
        raise _Refused(set_error("invalidRecipients", invalidRecipients=wrong))

    config = call.node.config.submission
    prepared = complete(
        without_bcc(raw, limits.mime_header_fields),
        has_date=header["Date"] is not None,
        has_message_id=header["Message-ID"] is not None,
        hostname=config.hostname or call.node.hostname,
        add_date=config.add_date,
        add_message_id=config.add_message_id,
    )
    from_domain = senders[0][0].rpartition("@")[2].lower()
    message = await dkim_signature(prepared, from_domain, s) + prepared
    outgoing = Outgoing(mail_from, list(recipients), local, recipients, mail_params)
    made: asyncio.Future[Record | None] = asyncio.get_running_loop().create_future()
    try:
        return await _send(call, account, outgoing, message, meta, identity_id, made)
    finally:
        if not made.done():
            made.set_result(None)


async def _send(
    call: Call,
    account: int,
    outgoing: Outgoing,
    message: bytes,
    meta: EmailMeta,
    identity_id: str,
    made: asyncio.Future[Record | None],
) -> Record:
    watcher = _watcher(call, account, made)
    try:
        sent = await send(call.node, LocalDelivery(call.node), outgoing, message, watcher=watcher)
    except StoreError:
        raise _Refused(
            set_error("forbiddenToSend", "The queue cannot take the message now.")
        ) from None
    status = {a: _status("yes", "250 2.0.0 delivered to mailbox") for a in sent.delivered}
    status |= {a: _status("queued", "250 2.0.0 queued") for a in sent.queued}
    kept = {
        "identityId": identity_id,
        "emailId": ids.encode(ids.EMAIL, meta.email_id),
        "threadId": ids.encode(ids.THREAD, meta.thread_id),
        "envelope": {
            "mailFrom": {
                "email": outgoing.mail_from,
                "parameters": _decoded(outgoing.mail_params),
            },
            "rcptTo": [
                {"email": a, "parameters": _decoded(outgoing.rcpt_params[a])}
                for a in outgoing.recipients
            ],
        },
        "sendAt": utc_date(datetime.datetime.now(datetime.UTC)),
        "undoStatus": FINAL if sent.delivered or sent.entry_id is None else PENDING,
        "deliveryStatus": status,
        QUEUE_ID: sent.entry_id,
        LOCAL: sorted(outgoing.local),
    }
    record = await store(call).record_create(account, KIND, dump(kept))
    made.set_result(record)
    log.info("jmap submission %s by %s: %d delivered, %d queued", record_id(record),
             call.user.address, len(sent.delivered), len(sent.queued))
    return record


# -- set: update (undo), destroy ------------------------------------------------------


async def _cancel(call: Call, entry_id: int) -> bool:
    runner = call.node.queue
    if runner is not None:
        return bool(await runner.cancel(entry_id))
    # No runner here (`[queue] enabled = false`): the queue as the store has it.
    s = store(call)
    try:
        entry = await s.queue_get(entry_id)
        if not recallable(entry):
            return False
        await s.queue_remove(entry_id)
    except StoreError:
        return False
    return True


async def _update(call: Call, account: int, record: Record, patch: Any) -> Args | None:
    """A SetError, or None when done."""
    current = to_object(record)
    try:
        changed = apply_patch(current, patch)
    except PatchError as exc:
        return invalid(exc.property)
    bad = [k for k in changed if k not in PROPERTIES]
    bad += [k for k in PROPERTIES if k != "undoStatus" and changed.get(k) != current.get(k)]
    if bad:
        return invalid(*dict.fromkeys(bad))
    wanted = changed.get("undoStatus")
    if wanted == current["undoStatus"]:
        return None
    if wanted != CANCELED:
        return invalid("undoStatus", description="undoStatus may only become canceled.")
    kept = data(record)
    entry_id = kept.get(QUEUE_ID)
    if current["undoStatus"] != PENDING or entry_id is None or not await _cancel(call, entry_id):
        return set_error("cannotUnsend", "The message has already gone out.")
    kept["undoStatus"] = CANCELED
    for status in kept.get("deliveryStatus", {}).values():
        if status.get("delivered") == "queued":
            status.update(delivered="no", smtpReply="250 2.0.0 canceled by the sender")
    await store(call).record_update(account, KIND, record.id, dump(kept))
    return None


async def set_(call: Call, args: Args) -> Args:
    account = own_account(call, args)
    check_objects_in_set(call, args)
    create, update, destroy = set_arguments(args)
    on_update = args.get("onSuccessUpdateEmail")
    on_destroy = args.get("onSuccessDestroyEmail")
    if on_update is not None and not isinstance(on_update, dict):
        raise MethodError("invalidArguments", "onSuccessUpdateEmail must be an object.",
                          arguments=["onSuccessUpdateEmail"])
    if on_destroy is not None and not (
        isinstance(on_destroy, list) and all(isinstance(i, str) for i in on_destroy)
    ):
        raise MethodError("invalidArguments", "onSuccessDestroyEmail must be a list of ids.",
                          arguments=["onSuccessDestroyEmail"])
    old_state = await state(call, account, KIND)
    check_if_in_state(args, old_state)
    s = store(call)
    identities = await identity.load(call, account)
    # Each submission that succeeded, by the id the client names it with
    # ("#creationId" too), and its email.
    succeeded: dict[str, str] = {}

    created: dict[str, Any] = {}
    not_created: dict[str, Any] = {}
    for creation_id, given in create.items():
        try:
            record = await _create(call, account, given, identities)
        except _Refused as refused:
            not_created[creation_id] = refused.error
            continue
        new = to_object(record)
        call.created_ids[creation_id] = new["id"]
        created[creation_id] = {
            key: new[key]
            for key in ("id", "threadId", "sendAt", "undoStatus", "deliveryStatus",
                        "dsnBlobIds", "mdnBlobIds")
        } | ({} if "envelope" in given else {"envelope": new["envelope"]})
        succeeded[f"#{creation_id}"] = succeeded[new["id"]] = new["emailId"]

    updated: dict[str, Any] = {}
    not_updated: dict[str, Any] = {}
    for jmap_id, patch in update.items():
        number = ids.decode(ids.RECORD, jmap_id)
        found = await s.records(account, KIND, [number]) if number is not None else []
        if not found:
            not_updated[jmap_id] = set_error("notFound")
            continue
        error = await _update(call, account, found[0], patch)
        if error is not None:
            not_updated[jmap_id] = error
            continue
        updated[jmap_id] = None
        succeeded[jmap_id] = to_object(found[0])["emailId"]

    destroyed: list[str] = []
    not_destroyed: dict[str, Any] = {}
    for jmap_id in destroy:
        number = ids.decode(ids.RECORD, jmap_id)
        found = await s.records(account, KIND, [number]) if number is not None else []
        if not found:
            not_destroyed[str(jmap_id)] = set_error("notFound")
            continue
        # §7.5: the record goes; the deliveries it stands for do not change.
        await s.record_destroy(account, KIND, found[0].id)
        destroyed.append(jmap_id)
        succeeded[jmap_id] = to_object(found[0])["emailId"]

    _implicit_email_set(call, account, succeeded, on_update or {}, on_destroy or [])
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


def _implicit_email_set(
    call: Call,
    account: int,
    succeeded: dict[str, str],
    on_update: dict[str, Any],
    on_destroy: list[str],
) -> None:
    """§7.5: one Email/set after the response, for the submissions that
    succeeded."""
    email_update = {
        succeeded[key]: patch for key, patch in on_update.items() if key in succeeded
    }
    email_destroy = list(dict.fromkeys(succeeded[key] for key in on_destroy if key in succeeded))
    if not email_update and not email_destroy:
        return
    follow: Args = {"accountId": ids.encode(ids.ACCOUNT, account)}
    if email_update:
        follow["update"] = email_update
    if email_destroy:
        follow["destroy"] = email_destroy
    call.also.append(("Email/set", follow))


METHODS: dict[str, Method] = {
    "EmailSubmission/get": Method(SUBMISSION, get),
    "EmailSubmission/changes": Method(SUBMISSION, submission_changes),
    "EmailSubmission/query": Method(SUBMISSION, query),
    "EmailSubmission/queryChanges": Method(SUBMISSION, query_changes),
    "EmailSubmission/set": Method(SUBMISSION, set_),
}

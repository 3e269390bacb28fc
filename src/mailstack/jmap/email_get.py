"""Email/get (RFC 8621 §4.2) and Email/parse (§4.9).

Email/get reads the store's ``EmailMeta`` for metadata, the parse kept at
delivery (``messages_parsed``, one read per mailbox) for everything else,
and the message bytes only when a property needs octets the parse does not
hold (``emailview.needs_raw``): Raw header values, part headers, body
values, the decoded size of an encoded part. Nothing is parsed again.

Email/parse parses the message in a blob: an email's whole message
(``G<email>``), a part of one (``G<email>-<part>``, e.g. an attached
message/rfc822), or an uploaded blob (``U<upload>``, read through
``mailstack.jmap.blobs``).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from mailstack.jmap import blobs, emailview, ids, sharing
from mailstack.jmap.email_query import MAIL, invalid, store_of
from mailstack.jmap.emailview import BodyOptions, EmailView
from mailstack.jmap.keywords import visible
from mailstack.jmap.method import Args, Call, Method, check_objects_in_get
from mailstack.jmap.sharing import Reach
from mailstack.mime import ParsedMessage, parse

if TYPE_CHECKING:
    from mailstack.store import EmailMeta, Store

async def _raw_bytes(store: Store[ParsedMessage], metas: list[EmailMeta]) -> dict[int, bytes]:
    """email id -> message bytes, one read per mailbox."""
    by_mailbox: dict[int, list[EmailMeta]] = {}
    for meta in metas:
        by_mailbox.setdefault(meta.mailbox_id, []).append(meta)
    out: dict[int, bytes] = {}
    for mailbox_id, members in by_mailbox.items():
        found = await store.messages_bytes(mailbox_id, [m.uid for m in members])
        out.update((m.email_id, found[m.uid]) for m in members if m.uid in found)
    return out


async def _parses(store: Store[ParsedMessage], metas: list[EmailMeta]
                  ) -> dict[int, ParsedMessage]:
    by_mailbox: dict[int, list[EmailMeta]] = {}
    for meta in metas:
        by_mailbox.setdefault(meta.mailbox_id, []).append(meta)
    out: dict[int, ParsedMessage] = {}
    for mailbox_id, members in by_mailbox.items():
        found = await store.messages_parsed(mailbox_id, [m.uid for m in members])
        out.update((m.email_id, found[m.uid]) for m in members if m.uid in found)
    return out


def _id_list(value: object) -> list[Any]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid("ids must be a list of ids")
    return value


async def email_get(call: Call, args: Args) -> Args:
    reach = sharing.reach(call, args)
    account = reach.account_id
    props = emailview.check_properties(args.get("properties"), emailview.EMAIL_PROPERTIES,
                                       "properties", emailview.DEFAULT_PROPERTIES)
    if "id" not in props:
        props.insert(0, "id")  # RFC 8620 §5.1: "The id property ... is always returned"
    options = BodyOptions.from_args(args)
    store = store_of(call)
    state = await store.account_state(account)
    wanted = args.get("ids")
    if wanted is None:
        every = [m for m in await store.emails(account)
                 if visible(m.flags) and reach.emails_visible(m.mailbox_id)]
        check_objects_in_get(call, len(every))
        wanted = [ids.encode(ids.EMAIL, m.email_id) for m in every]
    wanted = list(dict.fromkeys(_id_list(wanted)))
    check_objects_in_get(call, len(wanted))
    numbers = {jmap_id: ids.decode(ids.EMAIL, jmap_id) for jmap_id in wanted}
    found = await store.emails_by_id(account, [n for n in numbers.values() if n is not None])
    # RFC 8621 §2: an email is visible in a mailbox the user may read.
    found = {n: m for n, m in found.items()
             if visible(m.flags) and reach.emails_visible(m.mailbox_id)}
    metas = list(found.values())
    parsing = emailview.needs_parse(props)
    parses = await _parses(store, metas) if parsing else {}
    raw_wanted = [m for m in metas if m.email_id in parses
                  and emailview.needs_raw(props, options, parses[m.email_id])]
    raws = await _raw_bytes(store, raw_wanted) if raw_wanted else {}
    listed: list[Args] = []
    not_found: list[Any] = []
    blank = parse(b"")
    for jmap_id, number in numbers.items():
        meta = found.get(number) if number is not None else None
        if meta is None or not visible(meta.flags) or (parsing and number not in parses):
            # Not the account's, hidden, or expunged since the metadata read.
            not_found.append(jmap_id)
            continue
        assert number is not None
        blob_id = ids.encode(ids.EMAIL_BLOB, number)
        view = EmailView(parses.get(number, blank), meta=meta, raw=raws.get(number),
                         blob_id=blob_id, parts_blob=blob_id)
        listed.append(view.get(props, options))
    return {
        "accountId": ids.encode(ids.ACCOUNT, account),
        "state": str(state),
        "list": listed,
        "notFound": not_found,
    }


async def blob_message(call: Call, reach: Reach, blob_id: str
                       ) -> tuple[bytes, bool] | None:
    """The octets of a blob Email/parse may read, and whether they are (a
    part of) a stored email, whose parts then have blob ids; or None."""
    store = store_of(call)
    account = reach.account_id
    number = ids.decode(ids.EMAIL_BLOB, blob_id)
    if number is not None:
        found = await store.emails_by_id(account, [number])
        meta = found.get(number)
        if meta is None or not visible(meta.flags) or not reach.emails_visible(
                meta.mailbox_id):
            return None
        raws = await _raw_bytes(store, [meta])
        return (raws[number], True) if number in raws else None
    part = await emailview.part_bytes(store, account, blob_id, reach.emails_visible)
    if part is not None:
        return part, True
    if ids.decode(ids.UPLOAD_BLOB, blob_id) is None or not reach.personal:
        return None
    data = await blobs.blob_bytes(call.node, account, blob_id)
    return None if data is None else (data, False)


def _looks_like_message(parsed: ParsedMessage) -> bool:
    """RFC 8621 §4.9 notParsable: a blob with no header field at all is not
    an RFC 5322 message."""
    return bool(parsed.fields)


async def email_parse(call: Call, args: Args) -> Args:
    reach = sharing.reach(call, args)
    account = reach.account_id
    blob_ids = args.get("blobIds")
    if not isinstance(blob_ids, list) or not all(isinstance(b, str) for b in blob_ids):
        raise invalid("blobIds must be a list of ids")
    check_objects_in_get(call, len(blob_ids))
    props = emailview.check_properties(
        args.get("properties"), emailview.EMAIL_PROPERTIES, "properties",
        emailview.DEFAULT_PARSE_PROPERTIES)
    options = BodyOptions.from_args(args)
    parsed_out: dict[str, Any] = {}
    not_parsable: list[str] = []
    not_found: list[str] = []
    limits = call.node.limits
    for blob_id in dict.fromkeys(blob_ids):
        found = await blob_message(call, reach, blob_id)
        if found is None:
            not_found.append(blob_id)
            continue
        raw, stored = found
        message = await asyncio.to_thread(parse, raw, limits)
        if not _looks_like_message(message):
            not_parsable.append(blob_id)
            continue
        # The parts of an uploaded blob have no blob ids of their own.
        view = EmailView(message, raw=raw, blob_id=blob_id,
                         parts_blob=blob_id if stored else None)
        email = view.get(props, options)
        for prop in emailview.METADATA:
            if prop in email and prop != "blobId":
                email[prop] = None  # §4.9: id, mailboxIds, keywords, receivedAt, threadId
        if "size" in email:
            email["size"] = len(raw)
        parsed_out[blob_id] = email
    return {
        "accountId": ids.encode(ids.ACCOUNT, account),
        "parsed": parsed_out or None,
        "notParsable": not_parsable or None,
        "notFound": not_found or None,
    }


METHODS: dict[str, Method] = {
    "Email/get": Method(MAIL, email_get),
    "Email/parse": Method(MAIL, email_parse),
}

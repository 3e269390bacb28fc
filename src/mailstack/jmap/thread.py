"""Thread/get and Thread/changes (RFC 8621 §3).

The store files each email into a thread at delivery (``EmailKeys``); a
thread's ``emailIds`` are its visible emails (RFC 8621 §4.1.1: none flagged
\\Deleted) "sorted by the receivedAt date of the Email, oldest first", the
order ``thread_emails`` gives. A thread left with no visible email does not
exist for JMAP.
"""

from __future__ import annotations

from mailstack.jmap import ids, sharing
from mailstack.jmap.email_query import MAIL, invalid, store_of
from mailstack.jmap.keywords import visible
from mailstack.jmap.mailbox import changes_arguments
from mailstack.jmap.method import Args, Call, Method, MethodError, account_id, check_objects_in_get

PROPERTIES = ("id", "emailIds")


async def thread_get(call: Call, args: Args) -> Args:
    reach = sharing.reach(call, args)
    account = reach.account_id
    wanted = args.get("ids")
    store = store_of(call)
    # The state first: data read after it is at least as new (RFC 8620 §5.1).
    state = await store.account_state(account)
    if wanted is None:
        # RFC 8620 §5.1: every thread, within maxObjectsInGet.
        every = {m.thread_id for m in await store.emails(account)
                 if visible(m.flags) and reach.emails_visible(m.mailbox_id)}
        check_objects_in_get(call, len(every))
        wanted = [ids.encode(ids.THREAD, t) for t in sorted(every)]
    if not isinstance(wanted, list) or not all(isinstance(i, str) for i in wanted):
        raise invalid("ids must be a list of ids")
    check_objects_in_get(call, len(wanted))
    props = args.get("properties")
    if props is None:
        props = list(PROPERTIES)
    if not isinstance(props, list) or not all(p in PROPERTIES for p in props):
        raise MethodError("invalidArguments", "Thread properties are id and emailIds",
                          arguments=["properties"])
    numbers = {jmap_id: ids.decode(ids.THREAD, jmap_id) for jmap_id in dict.fromkeys(wanted)}
    threads = await store.thread_emails(account, [n for n in numbers.values() if n is not None])
    found = []
    not_found = []
    for jmap_id, number in numbers.items():
        members = threads.get(number, []) if number is not None else []
        email_ids = [ids.encode(ids.EMAIL, m.email_id) for m in members
                     if visible(m.flags) and reach.emails_visible(m.mailbox_id)]
        if not email_ids:
            not_found.append(jmap_id)
            continue
        thread: Args = {"id": jmap_id}
        if "emailIds" in props:
            thread["emailIds"] = email_ids
        found.append(thread)
    return {
        "accountId": ids.encode(ids.ACCOUNT, account),
        "state": str(state),
        "list": found,
        "notFound": not_found,
    }


async def thread_changes(call: Call, args: Args) -> Args:
    number = ids.decode(ids.ACCOUNT, args.get("accountId"))
    if number is not None and number != call.user.id and number in call.shared:
        # A shared account's threads mix emails the user may read with others:
        # the client gets them again (RFC 8620 §5.2 allows this answer).
        raise MethodError("cannotCalculateChanges")
    account = account_id(call, args)
    since_state, since, max_changes = changes_arguments(args)
    if since is None:
        raise MethodError("cannotCalculateChanges")
    changes = await store_of(call).thread_changes(account, since, max_changes)
    if changes is None:
        raise MethodError("cannotCalculateChanges")
    return {
        "accountId": ids.encode(ids.ACCOUNT, account),
        "oldState": since_state,
        "newState": str(changes.state),
        "hasMoreChanges": changes.has_more,
        "created": [ids.encode(ids.THREAD, i) for i in changes.created],
        "updated": [ids.encode(ids.THREAD, i) for i in changes.updated],
        "destroyed": [ids.encode(ids.THREAD, i) for i in changes.destroyed],
    }


METHODS: dict[str, Method] = {
    "Thread/get": Method(MAIL, thread_get),
    "Thread/changes": Method(MAIL, thread_changes),
}

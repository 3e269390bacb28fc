"""Email/changes (RFC 8621 §4.3, RFC 8620 §5.2).

States are the account's state (see ``email_query``); the store lists what
changed after one (``email_changes``). An email flagged ``\\Deleted`` is
invisible to JMAP (RFC 8621 §4.1.1), so one that gained the flag is
reported destroyed, and one created with it is not reported at all; in a
shared account, so is an email outside the mailboxes the user may read.
"""

from __future__ import annotations

from mailstack.jmap import ids, sharing
from mailstack.jmap.email_query import MAIL, invalid, parse_state, store_of, unsigned
from mailstack.jmap.keywords import visible
from mailstack.jmap.method import Args, Call, Method, MethodError


async def email_changes(call: Call, args: Args) -> Args:
    reach = sharing.reach(call, args)
    account = reach.account_id
    since_state = args.get("sinceState")
    if not isinstance(since_state, str):
        raise invalid("sinceState must be a string")
    max_changes = args.get("maxChanges")
    if max_changes is not None and (not unsigned(max_changes) or max_changes == 0):
        raise invalid("maxChanges must be a positive UnsignedInt or null")
    since = parse_state(since_state)
    if since is None:
        raise MethodError("cannotCalculateChanges")
    store = store_of(call)
    changes = await store.email_changes(account, since, max_changes)
    if changes is None:
        raise MethodError("cannotCalculateChanges")
    present = await store.emails_by_id(account, [*changes.created, *changes.updated])
    hidden = {
        i
        for i, meta in present.items()
        if not visible(meta.flags) or not reach.shows(meta.mailbox_id)
    }
    created = [i for i in changes.created if i not in hidden]
    updated = [i for i in changes.updated if i not in hidden]
    destroyed = [*changes.destroyed, *(i for i in changes.updated if i in hidden)]
    return {
        "accountId": ids.encode(ids.ACCOUNT, account),
        "oldState": since_state,
        "newState": str(changes.state),
        "hasMoreChanges": changes.has_more,
        "created": [ids.encode(ids.EMAIL, i) for i in created],
        "updated": [ids.encode(ids.EMAIL, i) for i in updated],
        "destroyed": [ids.encode(ids.EMAIL, i) for i in destroyed],
    }


METHODS: dict[str, Method] = {"Email/changes": Method(MAIL, email_changes)}

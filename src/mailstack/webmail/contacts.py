"""Contacts for the composer's To and Cc: the people the user has written
to or heard from, found in their own recent mail (no address book needed).

``GET /webmail/contacts?q=TEXT`` reads the From, To and Cc of the newest
``SCAN`` messages outside Junk and Trash (one Email/query and Email/get,
RFC 8621 §4.4-4.5, as the user), and answers the addresses whose name or
address contains ``q`` (case-insensitive), most used first, at most
``LIMIT`` of them: bounded work whatever the mailbox holds.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from mailstack.jmap import api, ids

if TYPE_CHECKING:
    from mailstack.app import Node
    from mailstack.store import Account

SCAN = 500  # newest messages read
LIMIT = 10  # contacts answered
MAX_QUERY = 100  # characters of q
USING = frozenset({"urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"})


def rank(emails: list[dict[str, Any]], me: str, q: str) -> list[dict[str, str | None]]:
    """The addresses in these emails' From, To and Cc matching q, most
    frequent first (then by address); the user's own address left out."""
    q = q.casefold()
    seen: Counter[str] = Counter()
    spelt: dict[str, str] = {}  # the address as first seen
    names: dict[str, str] = {}  # the first name given with it
    for email in emails:
        for field in ("from", "to", "cc"):
            for address in email.get(field) or []:
                addr = str(address.get("email") or "").strip()
                key = addr.casefold()
                if "@" not in addr or key == me.casefold():
                    continue
                seen[key] += 1
                spelt.setdefault(key, addr)
                if address.get("name"):
                    names.setdefault(key, str(address["name"]))
    found = [key for key in seen if q in key or q in names.get(key, "").casefold()]
    found.sort(key=lambda key: (-seen[key], key))
    return [{"name": names.get(key), "email": spelt[key]} for key in found[:LIMIT]]


async def contacts(node: Node, user: Account, q: str) -> list[dict[str, str | None]]:
    account = ids.encode(ids.ACCOUNT, user.id)
    boxes = await _call(node, user, "Mailbox/get", {"accountId": account, "properties": ["role"]})
    skip = [m["id"] for m in boxes.get("list", []) if m.get("role") in ("junk", "trash")]
    query: dict[str, Any] = {
        "accountId": account,
        "sort": [{"property": "receivedAt", "isAscending": False}],
        "limit": SCAN,
    }
    if skip:
        query["filter"] = {"inMailboxOtherThan": skip}
    found = await _call(node, user, "Email/query", query)
    if not found.get("ids"):
        return []
    got = await _call(
        node,
        user,
        "Email/get",
        {"accountId": account, "ids": found["ids"], "properties": ["from", "to", "cc"]},
    )
    return rank(got.get("list", []), user.address, q)


async def _call(node: Node, user: Account, method: str, args: dict[str, Any]) -> dict[str, Any]:
    request = api.Request(USING, [(method, args, "0")], None)
    response = await api.process(node, user, request, session_state="")
    name, result, _ = response["methodResponses"][0]
    return result if name == method else {}

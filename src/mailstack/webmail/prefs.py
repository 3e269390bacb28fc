"""The webmail's own preferences, kept on the server so that they follow
the user from browser to browser: the theme and whether the message list
groups conversations. (The display name and signature are the account's
JMAP Identity, RFC 8621 §6, which the app sets with Identity/set.)

They are one store record per account (kind ``WebmailSettings``,
``store/contract/records.py``), read with ``GET /webmail/settings`` and
changed with ``POST /webmail/settings`` (a JSON object of the keys to
change; the session's CSRF token is needed, as for every change).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from mailstack.jmap.records import data, dump

if TYPE_CHECKING:
    from mailstack.store import Store

KIND = "WebmailSettings"
MAX_BODY = 4096  # octets a change may have
THEMES = ("auto", "light", "dark")
DEFAULTS: dict[str, Any] = {"theme": "auto", "conversations": False}


class BadSettings(ValueError):
    """The change is not a JSON object of known keys with good values."""


def parse(body: bytes) -> dict[str, Any]:
    """The change a request's body asks for; raises BadSettings."""
    if len(body) > MAX_BODY:
        raise BadSettings(f"Settings are at most {MAX_BODY} octets.")
    try:
        change = json.loads(body)
    except ValueError:
        raise BadSettings("Send the settings as a JSON object.") from None
    if not isinstance(change, dict):
        raise BadSettings("Send the settings as a JSON object.")
    unknown = sorted(set(change) - set(DEFAULTS))
    if unknown:
        raise BadSettings(f"Unknown settings: {', '.join(unknown)[:200]}.")
    if "theme" in change and change["theme"] not in THEMES:
        raise BadSettings(f"The theme is one of {', '.join(THEMES)}.")
    if "conversations" in change and not isinstance(change["conversations"], bool):
        raise BadSettings("conversations is true or false.")
    return change


async def load(store: Store[Any], account_id: int) -> dict[str, Any]:
    """The account's settings, defaults filled in."""
    found = await store.records(account_id, KIND)
    kept = data(found[0]) if found else {}
    return {key: kept.get(key, value) for key, value in DEFAULTS.items()}


async def change(store: Store[Any], account_id: int, change: dict[str, Any]) -> dict[str, Any]:
    """Apply a parsed change; the settings after it."""
    found = await store.records(account_id, KIND)
    settings = await load(store, account_id) | change
    if found:
        await store.record_update(account_id, KIND, found[0].id, dump(settings))
    else:
        await store.record_create(account_id, KIND, dump(settings))
    return settings

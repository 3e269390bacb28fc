"""The JMAP Session resource (RFC 8620 §2): what the server can do, which
accounts the user may reach, and where the other resources are.

``accounts`` is the one place that lists the accounts of a user: their own,
then those that share mailboxes with them (``sharing.accounts_for``). A
capability's object in ``capabilities`` comes from ``SESSION_CAPABILITIES``,
and in an account's ``accountCapabilities`` from ``ACCOUNT_CAPABILITIES``;
a capability with no entry has the empty object (as RFC 8621 §1.3 gives for
mail's session-level one). The method modules' capabilities are those of
``api.method_table()``; ``urn:ietf:params:jmap:websocket`` (RFC 8887) is
added here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mailstack.jmap import api, ids, mailbox, sharing, submission, vacation
from mailstack.jmap.core import CORE
from mailstack.jmap.method import Args, Method

if TYPE_CHECKING:
    from mailstack.app import Node
    from mailstack.store import Account

WEBSOCKET = "urn:ietf:params:jmap:websocket"

# RFC 8620 §2: collations the server supports for /query (RFC 4790 names).
COLLATIONS = ("i;ascii-numeric", "i;ascii-casemap", "i;unicode-casemap")


@dataclass(frozen=True, slots=True)
class SessionAccount:
    """An account the user may reach (RFC 8620 §2 ``accounts``)."""

    account_id: int  # the store's account id
    name: str
    is_personal: bool
    is_read_only: bool
    capabilities: frozenset[str]  # of the session's, those this account has
    user_id: int = 0  # the user's own account, where the Principals are (RFC 9670)


@dataclass(frozen=True, slots=True)
class Urls:
    """Where the resources are, absolute (RFC 8620 §2)."""

    api: str
    download: str
    upload: str
    event_source: str
    websocket: str


def urls(base: str) -> Urls:
    """The URLs under ``base`` (``https://host:port``, no trailing slash);
    the templates' variables are RFC 6570 level-1 (RFC 8620 §2)."""
    ws = "wss" + base[5:] if base.startswith("https:") else "ws" + base[4:]
    return Urls(
        api=f"{base}/jmap/api/",
        download=f"{base}/jmap/download/{{accountId}}/{{blobId}}/{{name}}?type={{type}}",
        upload=f"{base}/jmap/upload/{{accountId}}/",
        event_source=f"{base}/jmap/eventsource/?types={{types}}&closeafter={{closeafter}}"
        "&ping={ping}",
        websocket=f"{ws}/jmap/ws/",
    )


def _core(node: Node, where: Urls) -> Args:
    limits = node.config.jmap
    return {
        "maxSizeUpload": limits.max_size_upload,
        "maxConcurrentUpload": limits.max_concurrent_upload,
        "maxSizeRequest": limits.max_size_request,
        "maxConcurrentRequests": limits.max_concurrent_requests,
        "maxCallsInRequest": limits.max_calls_in_request,
        "maxObjectsInGet": limits.max_objects_in_get,
        "maxObjectsInSet": limits.max_objects_in_set,
        "collationAlgorithms": list(COLLATIONS),
    }


def _websocket(node: Node, where: Urls) -> Args:
    return {"url": where.websocket, "supportsPush": True}


# capability -> its object in the session's ``capabilities``.
SESSION_CAPABILITIES: Mapping[str, Callable[[Node, Urls], Args]] = {
    CORE: _core,
    WEBSOCKET: _websocket,
}

# capability -> its object in an account's ``accountCapabilities``.
ACCOUNT_CAPABILITIES: Mapping[str, Callable[[Node, SessionAccount], Args]] = {
    mailbox.MAIL: mailbox.mail_capability,
    sharing.PRINCIPALS: sharing.principals_capability,
    sharing.PRINCIPALS_OWNER: sharing.owner_capability,
    submission.SUBMISSION: submission.account_capability,
    vacation.VACATION: vacation.account_capability,
}

# Capabilities of the session, not of an account (RFC 8887 §4). Core is an
# account's too: Blob/copy takes an accountId.
_SESSION_ONLY = frozenset({WEBSOCKET})


def capabilities(methods: Mapping[str, Method] | None = None) -> frozenset[str]:
    """Every capability the server has: a request may be ``using`` these."""
    table = api.method_table() if methods is None else methods
    return api.capabilities(table) | {WEBSOCKET}


async def accounts(node: Node, user: Account) -> list[SessionAccount]:
    """The accounts ``user`` may reach, their own first."""
    own = capabilities() - _SESSION_ONLY | {sharing.PRINCIPALS_OWNER}
    out = [SessionAccount(user.id, user.address, True, False, own, user.id)]
    for shared in await sharing.accounts_for(node, user):
        caps = sharing.SHARED_ACCOUNT_CAPABILITIES & own
        owner = shared.owner
        out.append(SessionAccount(owner.id, owner.address, False, shared.read_only, caps, user.id))
    return out


async def session(node: Node, user: Account, base: str) -> Args:
    """The Session object for ``user``, its URLs under ``base``."""
    where = urls(base)
    reachable = await accounts(node, user)
    caps = capabilities()
    out: Args = {
        "capabilities": {
            name: SESSION_CAPABILITIES[name](node, where) if name in SESSION_CAPABILITIES else {}
            for name in sorted(caps)
        },
        "accounts": {
            ids.encode(ids.ACCOUNT, account.account_id): {
                "name": account.name,
                "isPersonal": account.is_personal,
                "isReadOnly": account.is_read_only,
                "accountCapabilities": {
                    name: ACCOUNT_CAPABILITIES[name](node, account)
                    if name in ACCOUNT_CAPABILITIES
                    else {}
                    for name in sorted(account.capabilities)
                },
            }
            for account in reachable
        },
        # RFC 8620 §2: the account to use by default for each capability.
        "primaryAccounts": {
            name: ids.encode(ids.ACCOUNT, user.id) for name in sorted(caps - _SESSION_ONLY)
        },
        "username": user.address,
        "apiUrl": where.api,
        "downloadUrl": where.download,
        "uploadUrl": where.upload,
        "eventSourceUrl": where.event_source,
    }
    out["state"] = state(out)
    return out


# What the state is computed over: the URLs follow the host a client asked
# for, the same for every host, so they are left out (the state is the same
# over HTTP and the WebSocket).
_STATE_OF = ("capabilities", "accounts", "primaryAccounts", "username")


def state(session_object: Args) -> str:
    """RFC 8620 §2 ``state``: changes whenever another property changes."""
    kept = {key: session_object[key] for key in _STATE_OF}
    kept["capabilities"] = {
        name: value for name, value in kept["capabilities"].items() if name != WEBSOCKET
    }
    text = json.dumps(kept, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


async def session_state(node: Node, user: Account) -> str:
    """The state of ``user``'s Session object (the API's ``sessionState``)."""
    body = await session(node, user, "http://localhost")
    return str(body["state"])

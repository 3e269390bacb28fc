"""JMAP sharing: other accounts' mailboxes shared with the user (RFC 8620
§1.6.2 accounts, RFC 8621 §2 ``myRights``, RFC 9670 ``shareWith`` and the
principals capabilities).

The ACLs are the store's, the ones IMAP's SETACL and ``mailstack share``
set (RFC 4314 letters, ``mailstack.common.rights``). When account A shares
mailboxes with user B, A's account appears in B's session object
(``isPersonal`` false, ``isReadOnly`` when B has no right to change
anything in it); a call may then name A's account (``method.account_id``
accepts it from the methods that limit themselves to what is shared), and
sees only the mailboxes shared with B, with B's rights (``Reach``; the
mail methods that serve shared accounts get their account from ``reach``,
docs/jmap.md "Sharing" lists them). Rights map to JMAP's MailboxRights
(RFC 8621 §2) as:

| MailboxRights | RFC 4314 |
| --- | --- |
| mayReadItems | l and r |
| mayAddItems | i |
| mayRemoveItems | t and e |
| maySetSeen | s |
| maySetKeywords | w |
| mayCreateChild | k |
| mayRename | x |
| mayDelete | x |
| maySubmit | p |

and back, for ``shareWith``, each gives its letters. An email is visible in
a shared account when its mailbox has mayReadItems (RFC 8621 §2).
Principals (RFC 9670 §2) are the node's accounts, ``P`` + account id
(``principal.py``); the principals of ``shareWith`` are those with an ACL
entry of their own (``anyone`` has no principal).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mailstack.common import rights as acl_rights
from mailstack.common.rights import ANYONE, OWNER_RIGHTS
from mailstack.jmap import ids
from mailstack.jmap.core import CORE
from mailstack.jmap.method import Args, Call, MethodError, account_id

if TYPE_CHECKING:
    from mailstack.app import Node
    from mailstack.jmap.session import SessionAccount
    from mailstack.store import Account, Mailbox, Store

__all__ = [
    "MAIL",
    "PRINCIPALS",
    "PRINCIPALS_OWNER",
    "Reach",
    "SharedAccount",
    "accounts_for",
    "acl_from_rights",
    "mailbox_rights",
    "apply_share_with",
    "plan_share_with",
    "reach",
    "share_with",
    "shared_accounts",
]

MAIL = "urn:ietf:params:jmap:mail"
PRINCIPALS = "urn:ietf:params:jmap:principals"
PRINCIPALS_OWNER = "urn:ietf:params:jmap:principals:owner"

# RFC 8621 §2 MailboxRights, each with the RFC 4314 rights it needs (and
# gives, in shareWith).
RIGHTS_MAP: dict[str, str] = {
    "mayReadItems": "lr",
    "mayAddItems": "i",
    "mayRemoveItems": "te",
    "maySetSeen": "s",
    "maySetKeywords": "w",
    "mayCreateChild": "k",
    "mayRename": "x",
    "mayDelete": "x",
    "maySubmit": "p",
}
# Rights that change something (RFC 8620 §1.6.2 isReadOnly: none of them).
_WRITE_RIGHTS = "swikxtea"  # p (post) changes nothing in the account


def mailbox_rights(rights: str) -> dict[str, bool]:
    """RFC 8621 §2 ``myRights`` for a user holding these RFC 4314 rights."""
    return {name: acl_rights.has(rights, needed) for name, needed in RIGHTS_MAP.items()}


def acl_from_rights(value: Mapping[str, Any]) -> str:
    """The RFC 4314 rights a MailboxRights object grants (``shareWith``);
    ValueError when it is not one (unknown name, a value not a boolean)."""
    granted = ""
    for name, on in value.items():
        if name not in RIGHTS_MAP or not isinstance(on, bool):
            raise ValueError(name)
        if on:
            granted += RIGHTS_MAP[name]
    return acl_rights.normalize(granted)


@dataclass(frozen=True, slots=True)
class SharedAccount:
    """Another account reached through the mailboxes it shares with the
    user: mailbox id -> the user's rights there."""

    owner: Account
    rights: dict[int, str]

    @property
    def read_only(self) -> bool:
        return not any(set(r) & set(_WRITE_RIGHTS) for r in self.rights.values())


async def shared_accounts(node: Node, user: Account) -> dict[int, SharedAccount]:
    """Account id -> what the user reaches in it, for every other account
    with a mailbox shared with the user (its own entry, else ``anyone``'s)."""
    out: dict[int, SharedAccount] = {}
    for shared in await _store(node).acl_shared_with(user.address):
        if shared.owner.id == user.id:
            continue
        rights = acl_rights.normalize(shared.rights)
        if not rights:
            continue
        entry = out.setdefault(shared.owner.id, SharedAccount(shared.owner, {}))
        entry.rights[shared.mailbox.id] = rights
    return out


@dataclass(frozen=True, slots=True)
class Reach:
    """What a call may see and do in the account it names: everything in
    the user's own account (``shared`` None), else the shared mailboxes with
    the user's rights on each."""

    account_id: int
    shared: SharedAccount | None = None

    @property
    def personal(self) -> bool:
        return self.shared is None

    def rights(self, mailbox_id: int) -> str:
        if self.shared is None:
            return OWNER_RIGHTS
        return self.shared.rights.get(mailbox_id, "")

    def may(self, mailbox_id: int, needed: str) -> bool:
        return acl_rights.has(self.rights(mailbox_id), needed)

    def mailbox_visible(self, mailbox_id: int) -> bool:
        """Mailbox/get and friends show a shared mailbox the user may look
        up or read."""
        return bool(set(self.rights(mailbox_id)) & {"l", "r"})

    def emails_visible(self, mailbox_id: int) -> bool:
        """An Email is visible when it is in a mailbox with mayReadItems
        (RFC 8621 §2)."""
        return self.may(mailbox_id, RIGHTS_MAP["mayReadItems"])

    def readable_mailboxes(self) -> set[int] | None:
        """The mailboxes whose emails the call may see; None in the user's
        own account (all of them)."""
        if self.shared is None:
            return None
        return {m for m in self.shared.rights if self.emails_visible(m)}

    def shows(self, mailbox_id: int) -> bool:
        """Whether an email in this mailbox is visible (``emails_visible``)."""
        return self.shared is None or self.emails_visible(mailbox_id)

    def visible_mailboxes(self) -> set[int] | None:
        """The ids of the visible mailboxes; None in the user's own account
        (all of them)."""
        if self.shared is None:
            return None
        return {m for m in self.shared.rights if self.mailbox_visible(m)}

    def my_rights(self, mailbox_id: int) -> dict[str, bool]:
        return mailbox_rights(self.rights(mailbox_id))

    @property
    def read_only(self) -> bool:
        return self.shared is not None and self.shared.read_only

    def check_writable(self) -> None:
        """RFC 8620 §5.3: ``accountReadOnly`` for a /set on a read-only account."""
        if self.read_only:
            raise MethodError("accountReadOnly")


def reach_of(call: Call, number: int) -> Reach:
    """What the call may do in an account ``account_id`` accepted."""
    if number == call.user.id:
        return Reach(number)
    if number not in call.shared:
        raise MethodError("accountNotFound")
    return Reach(number, call.shared[number])


def flags_allowed(reach: Reach, mailbox_id: int, flags: Iterable[str]) -> bool:
    """Whether the user may set or clear these IMAP flags of an email in the
    mailbox (RFC 8621 §2: maySetSeen for \\Seen, maySetKeywords for the rest;
    RFC 4314 §4: t for \\Deleted)."""
    return all(reach.may(mailbox_id, acl_rights.flag_right(f)) for f in flags)


def reach(call: Call, args: Args) -> Reach:
    """The account a call's ``accountId`` names (``accountNotFound`` if the
    user may not reach it) and what the user may do there."""
    number = account_id(call, args, shared=True)
    return Reach(number, call.shared.get(number) if number != call.user.id else None)


# -- the session object ------------------------------------------------------

# What a shared account offers (RFC 8620 §2 accountCapabilities): core (Blob/
# copy), mail, and RFC 9670 §1.5.2's owner; no submission or vacation
# response: those are the owner's.
SHARED_ACCOUNT_CAPABILITIES = frozenset({CORE, MAIL, PRINCIPALS_OWNER})


def principal_id(account: Account) -> str:
    return ids.encode(ids.PRINCIPAL, account.id)


async def accounts_for(node: Node, user: Account) -> list[SharedAccount]:
    """The accounts that share mailboxes with the user, for the session's
    ``accounts`` (``isPersonal`` false; ``isReadOnly`` when no shared mailbox
    lets the user change anything), by account id."""
    return [shared for _n, shared in sorted((await shared_accounts(node, user)).items())]


def principals_capability(node: Node, account: SessionAccount) -> Args:
    """RFC 9670 §1.5.1, in the user's own account: the Principals are there,
    the user being one of them."""
    return {"currentUserPrincipalId": ids.encode(ids.PRINCIPAL, account.user_id)}


def owner_capability(node: Node, account: SessionAccount) -> Args:
    """RFC 9670 §1.5.2: the principal owning the account, and the account
    (the user's own) holding that Principal."""
    return {
        "accountIdForPrincipal": ids.encode(ids.ACCOUNT, account.user_id),
        "principalId": ids.encode(ids.PRINCIPAL, account.account_id),
    }


# -- Mailbox shareWith (RFC 9670 §4) -----------------------------------------


async def share_with(node: Node, mailbox: Mailbox) -> dict[str, dict[str, bool]] | None:
    """Principal id -> MailboxRights for each account the mailbox is shared
    with; None when it is shared with no one (RFC 9670 §4). ``anyone`` has
    no principal, so it is not shown."""
    out: dict[str, dict[str, bool]] = {}
    for identifier, rights in (await _store(node).acl_get(mailbox.id)).items():
        if identifier == ANYONE:
            continue
        account = await _store(node).account_get(identifier)
        if account is not None and account.id != mailbox.account_id:
            out[principal_id(account)] = mailbox_rights(acl_rights.normalize(rights))
    return out or None


@dataclass(frozen=True, slots=True)
class ShareChange:
    """A checked new ``shareWith``: account address -> RFC 4314 rights."""

    mailbox: Mailbox
    wanted: dict[str, str]


async def plan_share_with(
    node: Node, reach: Reach, mailbox: Mailbox, patch: Mapping[str, Any]
) -> ShareChange | dict[str, Any]:
    """The new ``shareWith`` a Mailbox/set patch asks for: the whole value
    (``shareWith``) and/or paths into it (``shareWith/P3``,
    ``shareWith/P3/mayReadItems``, RFC 8620 §5.3 PatchObject), checked; or
    the SetError to answer: ``forbidden`` without the administer right,
    ``invalidProperties`` for a value that is not Id[MailboxRights], or that
    names an unknown principal or the owner (RFC 9670 §4: the owner MUST
    NOT be in it). Nothing is changed (``apply_share_with`` does it)."""
    if not reach.may(mailbox.id, "a"):
        return {"type": "forbidden", "description": "No right to share this mailbox.",
                "properties": ["shareWith"]}  # fmt: skip
    invalid = {"type": "invalidProperties", "properties": ["shareWith"]}
    value: dict[str, Any] = dict(await share_with(node, mailbox) or {})
    for path, part in sorted(patch.items(), key=lambda item: item[0].count("/")):
        keys = path.split("/")[1:]
        if not keys:
            if part is not None and not isinstance(part, dict):
                return invalid
            value = dict(part or {})
        elif len(keys) == 1:
            if part is None:
                value.pop(keys[0], None)
            else:
                value[keys[0]] = part
        elif len(keys) == 2 and isinstance(value.get(keys[0], {}), dict):
            value[keys[0]] = {**value.get(keys[0], {}), keys[1]: part}
        else:
            return {"type": "invalidPatch", "properties": [path]}
    wanted: dict[str, str] = {}
    for key, rights in value.items():
        number = ids.decode(ids.PRINCIPAL, key)
        if number is None or number == mailbox.account_id or not isinstance(rights, dict):
            return invalid
        account = await _account_by_id(node, number)
        if account is None:
            return invalid
        try:
            wanted[account.address] = acl_from_rights(rights)
        except ValueError:
            return invalid
    return ShareChange(mailbox, wanted)


async def apply_share_with(node: Node, change: ShareChange) -> None:
    """Make the mailbox's ACL what ``plan_share_with`` checked (``anyone``'s
    entry, which has no principal, is left as it is)."""
    store = _store(node)
    current = await store.acl_get(change.mailbox.id)
    for identifier in current:
        if identifier != ANYONE and identifier not in change.wanted:
            await store.acl_set(change.mailbox.id, identifier, "")
    for identifier, rights in change.wanted.items():
        if acl_rights.normalize(current.get(identifier, "")) != rights:
            await store.acl_set(change.mailbox.id, identifier, rights)


def _store(node: Node) -> Store[Any]:
    assert node.store is not None  # opened before the node serves
    return node.store


async def _account_by_id(node: Node, number: int) -> Account | None:
    for account in await _store(node).account_list():
        if account.id == number:
            return account
    return None

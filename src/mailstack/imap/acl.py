"""Shared mailboxes: RFC 4314 ACL (SETACL DELETEACL GETACL LISTRIGHTS
MYRIGHTS), the other users' namespace of RFC 2342, and the rights checked
by every command that reaches a mailbox (RFC 4314 §4).

Names. The user's own mailboxes have their own names (the personal
namespace, prefix ""). A mailbox of another account that the user has any
right on is named ``Other Users/<owner address>/<name in the owner's
account>`` (the other users' namespace, RFC 2342 §5). An address's domain
holds no "/", so the owner's address ends at the first "/" after its "@".
A personal mailbox cannot be named "Other Users".

Rights. The owner of a mailbox has every right. Another user has the rights
of the ACL entry for their address, else those of ``anyone`` (the store's
rule, ``AccessStore.acl_shared_with``). Rights are read when a command
starts and, for the selected mailbox, cached at SELECT (RFC 4314 §5.1.1
allows it). A user without the ``l`` right who lacks the right a command
needs is told the mailbox does not exist, as for one that does not (§6).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mailstack.common import rights as acl_rights
from mailstack.common.rights import ANYONE, OWNER_RIGHTS, BadRights
from mailstack.errors import ImapError
from mailstack.imap.proto import mutf7
from mailstack.imap.proto.commands import AclIdentifier, Command, MailboxArg, SetAcl
from mailstack.imap.proto.response import Atom, astring, untagged
from mailstack.imap.selected import SelectedMailbox
from mailstack.imap.session import Done, Session, handler
from mailstack.store import Account, FlagMode, FlagResult, Mailbox, MessageMeta
from mailstack.store.contract.directory import normalize_address

__all__ = [
    "NAMESPACE",
    "SHARED_ROOT",
    "Access",
    "allowed_flags",
    "reach",
    "require",
    "shared_mailboxes",
]

DELIMITER = "/"
SHARED_ROOT = "Other Users"
SHARED_PREFIX = SHARED_ROOT + DELIMITER
# RFC 2342 §5: personal "" and other users' "Other Users/", both with "/".
NAMESPACE = b'* NAMESPACE (("" "/")) (("Other Users/" "/")) NIL\r\n'
# RFC 4314 §4: MYRIGHTS needs one of these.
_ANY = "lrikxa"
# RFC 4314 §5.2: READ-WRITE when any of i, e or the shared flag rights
# (every flag is shared here: s, w, t) is granted.
_WRITE_RIGHTS = "iestw"


@dataclass(frozen=True, slots=True)
class Access:
    """A mailbox name as the session's user reaches it: whose account it is
    in, its name there, the mailbox if it exists, and the user's rights."""

    name: str  # as the client names it
    owner: Account
    local: str  # the name in the owner's account
    mailbox: Mailbox | None
    rights: str

    @property
    def shared(self) -> bool:
        return self.local != self.name

    def may(self, needed: str) -> bool:
        return acl_rights.has(self.rights, needed)

    @property
    def read_write(self) -> bool:
        return any(r in self.rights for r in _WRITE_RIGHTS)

    def client_name(self, local: str) -> str:
        """The client's name for another mailbox of the same account."""
        if not self.shared:
            return local
        return f"{SHARED_PREFIX}{self.owner.address}{DELIMITER}{local}"


def is_shared_name(name: str) -> bool:
    return name == SHARED_ROOT or name.startswith(SHARED_PREFIX)


def split_shared(name: str) -> tuple[str, str] | None:
    """``Other Users/owner@domain/box`` -> (owner address, box); None when
    the name has no owner or no mailbox part."""
    rest = name[len(SHARED_PREFIX) :]
    at = rest.find("@")
    end = rest.find(DELIMITER, at + 1) if at > 0 else -1
    if end < 0 or end == len(rest) - 1:
        return None
    return rest[:end], rest[end + 1 :]


async def rights_of(s: Session, mailbox: Mailbox) -> str:
    """The session user's real rights on a mailbox."""
    user = _user(s)
    if mailbox.account_id == user.id:
        return OWNER_RIGHTS
    entries = await s.store.acl_get(mailbox.id)
    return acl_rights.normalize(entries.get(user.address, entries.get(ANYONE, "")))


def _user(s: Session) -> Account:
    assert s.account is not None
    return s.account


async def reach(s: Session, name: str) -> Access | None:
    """What the user reaches under ``name``; None for a name in the other
    users' namespace without an account (or the user's own) behind it."""
    user = _user(s)
    if not is_shared_name(name):
        mailbox = await s.store.mailbox_get(user.id, name)
        return Access(name, user, name, mailbox, OWNER_RIGHTS)
    parts = split_shared(name)
    if parts is None:
        return None
    owner = await s.store.account_get(normalize_address(parts[0]))
    if owner is None or owner.id == user.id:
        return None
    mailbox = await s.store.mailbox_get(owner.id, parts[1])
    rights = await rights_of(s, mailbox) if mailbox is not None else ""
    return Access(name, owner, parts[1], mailbox, rights)


async def require(s: Session, name: str, needed: str, *, missing: str = "NONEXISTENT") -> Access:
    """The existing mailbox ``name`` on which the user has ``needed``; NO
    otherwise: [NONEXISTENT] (or ``missing``) when it does not exist or the
    user may not know it does (RFC 4314 §6), else [NOPERM]."""
    access = await reach(s, name)
    if access is None or access.mailbox is None:
        raise ImapError("No such mailbox", code=missing)
    if not access.may(needed):
        if "l" not in access.rights:
            raise ImapError("No such mailbox", code=missing)
        raise ImapError("Permission denied", code="NOPERM")
    return access


async def require_any(s: Session, name: str) -> Access:
    """RFC 4314 §4 MYRIGHTS: any one of l, r, i, k, x, a."""
    access = await reach(s, name)
    if access is None or access.mailbox is None or not set(_ANY) & set(access.rights):
        raise ImapError("No such mailbox", code="NONEXISTENT")
    return access


async def require_parent(s: Session, access: Access) -> None:
    """RFC 4314 §4 CREATE, RENAME: the k right on the nearest existing
    parent; in another account, a mailbox can only be made under one."""
    levels = access.local.split(DELIMITER)
    for i in range(len(levels) - 1, 0, -1):
        parent = await s.store.mailbox_get(access.owner.id, DELIMITER.join(levels[:i]))
        if parent is not None:
            if not acl_rights.has(await rights_of(s, parent), "k"):
                raise ImapError("Permission denied", code="NOPERM")
            return
    if access.shared:
        raise ImapError("Permission denied", code="NOPERM")


async def inherit(s: Session, owner_id: int, names: Iterable[str]) -> None:
    """RFC 4314 §4: a new mailbox SHOULD inherit its parent's ACL. ``names``
    are the mailboxes just made, outermost first."""
    made = list(names)
    if not made:
        return
    parent_name = made[0].rpartition(DELIMITER)[0]
    parent = await s.store.mailbox_get(owner_id, parent_name) if parent_name else None
    if parent is None:
        return
    entries = await s.store.acl_get(parent.id)
    for name in made:
        mailbox = await s.store.mailbox_get(owner_id, name)
        if mailbox is None:
            continue
        for identifier, rights in entries.items():
            await s.store.acl_set(mailbox.id, identifier, rights)


def allowed_flags(rights: str, flags: Iterable[str]) -> list[str]:
    """The flags the rights let the user set or clear (RFC 4314 §4: t for
    \\Deleted, s for \\Seen, w for the others)."""
    return [f for f in flags if acl_rights.flag_right(f) in rights]


def require_selected(sel: SelectedMailbox, needed: str) -> None:
    """A right on the selected mailbox, as cached at SELECT (RFC 4314 §5.1.1)."""
    if not acl_rights.has(sel.rights, needed):
        raise ImapError("Permission denied", code="NOPERM")


async def store_flags(
    s: Session,
    sel: SelectedMailbox,
    uids: list[int],
    flags: list[str],
    mode: FlagMode,
    unchangedsince: int | None,
) -> FlagResult:
    """STORE within the user's rights (RFC 4314 §4): a flag the user may not
    change is left as it is; the command fails only when no flag it names
    (or, for a replacement, no flag at all) may be changed, since "STORE
    operation SHOULD NOT fail if the user has rights to modify at least one
    flag specified"."""
    rights = sel.rights
    if all(r in rights for r in "swt"):
        return await s.store.store_flags(sel.mailbox_id, uids, flags, mode, unchangedsince)
    allowed = allowed_flags(rights, flags)
    if mode != "replace":
        if flags and not allowed:
            raise ImapError("Permission denied", code="NOPERM")
        return await s.store.store_flags(sel.mailbox_id, uids, allowed, mode, unchangedsince)
    if not any(r in rights for r in "swt"):
        raise ImapError("Permission denied", code="NOPERM")
    # A replacement keeps the flags the user may not touch: one store call per
    # set of such flags among the messages.
    groups: dict[frozenset[str], list[int]] = {}
    for uid in uids:
        current = sel.meta[uid].flags if uid in sel.meta else frozenset()
        kept = frozenset(f for f in current if acl_rights.flag_right(f) not in rights)
        groups.setdefault(kept, []).append(uid)
    changed: list[MessageMeta] = []
    modified: list[int] = []
    for kept, group in groups.items():
        result = await s.store.store_flags(
            sel.mailbox_id, group, [*allowed, *sorted(kept)], "replace", unchangedsince
        )
        changed += result.changed
        modified += result.modified
    return FlagResult(changed, sorted(modified))


async def drop_forbidden_flags(
    s: Session,
    sel: SelectedMailbox,
    dest_id: int,
    moved: list[tuple[int, int]],
    rights: str,
) -> None:
    """RFC 4314 §4 COPY: the copy keeps only the flags the user has the right
    to set in the target; the COPY itself does not fail for the others."""
    if all(r in rights for r in "swt"):
        return
    forbidden: dict[str, list[int]] = {}
    for src, dst in moved:
        meta = sel.meta.get(src)
        for flag in meta.flags if meta is not None else ():
            if acl_rights.flag_right(flag) not in rights:
                forbidden.setdefault(flag, []).append(dst)
    for flag, uids in forbidden.items():
        await s.store.store_flags(dest_id, uids, [flag], "remove")


async def shared_mailboxes(s: Session) -> dict[str, tuple[Mailbox, str]]:
    """Client name -> (mailbox, rights) for every mailbox of another account
    the user has any right on."""
    out: dict[str, tuple[Mailbox, str]] = {}
    for shared in await s.store.acl_shared_with(_user(s).address):
        if shared.owner.id == _user(s).id:
            continue
        name = f"{SHARED_PREFIX}{shared.owner.address}{DELIMITER}{shared.mailbox.name}"
        out[name] = (shared.mailbox, acl_rights.normalize(shared.rights))
    return out



def myrights_line(name: str, rights: str) -> bytes:
    return untagged(Atom("MYRIGHTS"), mutf7.encode(name), astring(acl_rights.show(rights)))


# -- identifiers -------------------------------------------------------------


def _identifier(text: str) -> str:
    """RFC 4314 §3: SASLprep, BAD when that fails or leaves nothing; the
    canonical form (``anyone``, or an address as the store folds it)."""
    prepared = acl_rights.saslprep(text)
    if not prepared:
        raise ImapError("Bad identifier", bad=True)
    if prepared.startswith("-"):
        # RFC 4314 §2: negative rights are not required of a server.
        raise ImapError("Negative rights are not supported", code="CANNOT")
    if prepared.casefold() == ANYONE:
        return ANYONE
    return normalize_address(prepared)


def _check_rights(text: str) -> None:
    """RFC 4314 §3.1: an unrecognized right MUST be answered BAD."""
    try:
        acl_rights.apply_modification("", text)
    except BadRights as exc:
        raise ImapError(str(exc), bad=True) from None


# -- the commands ------------------------------------------------------------


@handler("SETACL")
async def setacl(s: Session, cmd: Command) -> Done | None:
    args = cmd.args
    assert isinstance(args, SetAcl)
    _check_rights(args.rights)
    identifier = _identifier(args.identifier)
    access = await require(s, args.mailbox, "a")
    assert access.mailbox is not None
    if identifier == access.owner.address:
        raise ImapError("The owner's rights cannot be changed", code="CANNOT")
    if identifier != ANYONE and await s.store.account_get(identifier) is None:
        raise ImapError("No such identifier", code="CANNOT")
    entries = await s.store.acl_get(access.mailbox.id)
    rights = acl_rights.apply_modification(entries.get(identifier, ""), args.rights)
    await s.store.acl_set(access.mailbox.id, identifier, rights)
    return Done("SETACL completed")


@handler("DELETEACL")
async def deleteacl(s: Session, cmd: Command) -> Done | None:
    args = cmd.args
    assert isinstance(args, AclIdentifier)
    identifier = _identifier(args.identifier)
    access = await require(s, args.mailbox, "a")
    assert access.mailbox is not None
    if identifier == access.owner.address:
        raise ImapError("The owner's rights cannot be changed", code="CANNOT")
    await s.store.acl_set(access.mailbox.id, identifier, "")
    return Done("DELETEACL completed")


@handler("GETACL")
async def getacl(s: Session, cmd: Command) -> Done | None:
    args = cmd.args
    assert isinstance(args, MailboxArg)
    access = await require(s, args.mailbox, "a")
    assert access.mailbox is not None
    # RFC 4314 §3.6: mailbox, then identifier/rights pairs; the owner's
    # implicit rights first.
    pairs = [astring(access.owner.address), astring(acl_rights.show(OWNER_RIGHTS))]
    for identifier, rights in sorted((await s.store.acl_get(access.mailbox.id)).items()):
        pairs += [astring(identifier), astring(acl_rights.show(rights))]
    s.send(untagged(Atom("ACL"), mutf7.encode(args.mailbox), *pairs))
    return Done("GETACL completed")


@handler("LISTRIGHTS")
async def listrights(s: Session, cmd: Command) -> Done | None:
    args = cmd.args
    assert isinstance(args, AclIdentifier)
    identifier = _identifier(args.identifier)
    access = await require(s, args.mailbox, "a")
    # RFC 4314 §3.7: the rights always granted, then each right that may be
    # granted (none tied); the identifier as the client sent it (§3.4).
    if identifier == access.owner.address:
        granted = [astring(acl_rights.show(OWNER_RIGHTS))]
    else:
        granted = ["", *(Atom(r) for r in acl_rights.RIGHTS + "".join(acl_rights.VIRTUAL))]
    s.send(
        untagged(
            Atom("LISTRIGHTS"), mutf7.encode(args.mailbox), astring(args.identifier), *granted
        )
    )
    return Done("LISTRIGHTS completed")


@handler("MYRIGHTS")
async def myrights(s: Session, cmd: Command) -> Done | None:
    args = cmd.args
    assert isinstance(args, MailboxArg)
    access = await require_any(s, args.mailbox)
    s.send(myrights_line(args.mailbox, access.rights))
    return Done("MYRIGHTS completed")

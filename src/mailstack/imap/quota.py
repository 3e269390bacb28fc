"""QUOTA (RFC 9208): GETQUOTA and GETQUOTAROOT from the store's per-account
quota, the STORAGE resource only (QUOTA=RES-STORAGE).

An account has one quota root, ``""``, over all its mailboxes; its usage and
limit are the store's ``Account.used`` and ``Account.quota`` in units of 1024
octets (§5.1). An account without a limit (quota 0) has no quota root.
Limits are set by the administrator (`mailstack account`), so SETQUOTA is not
offered (no QUOTASET). STATUS DELETED and DELETED-STORAGE (§4.2) are in
mailboxes.py.
"""

from __future__ import annotations

from mailstack.errors import ImapError
from mailstack.imap import acl
from mailstack.imap.mailboxes import wire_name
from mailstack.imap.proto.commands import Command, GetQuota, MailboxArg
from mailstack.imap.proto.response import Atom, untagged
from mailstack.imap.session import Done, Session, handler
from mailstack.store import Account

ROOT = ""


async def _account(s: Session) -> Account:
    """The account with its current usage (the one of LOGIN is stale)."""
    assert s.account is not None
    account = await s.store.account_get(s.account.address)
    if account is None:
        raise ImapError("Account no longer exists")
    return account


def _quota_line(account: Account) -> bytes:
    # RFC 9208 §5.1: STORAGE in units of 1024 octets.
    used = (account.used + 1023) // 1024
    return untagged(Atom("QUOTA"), ROOT, [Atom("STORAGE"), used, account.quota // 1024])


@handler("GETQUOTA")
async def getquota(s: Session, cmd: Command) -> Done | None:
    args = cmd.args
    assert isinstance(args, GetQuota)
    account = await _account(s)
    if args.root != ROOT or not account.quota:
        raise ImapError("No such quota root", code="NONEXISTENT")
    s.send(_quota_line(account))
    return None


@handler("GETQUOTAROOT")
async def getquotaroot(s: Session, cmd: Command) -> Done | None:
    args = cmd.args
    assert isinstance(args, MailboxArg)
    account = await _account(s)
    # Another account's shared mailbox (acl.py) has no quota root of the
    # user's: its owner's usage is not the user's to see.
    access = await acl.require_any(s, args.mailbox)
    roots = [ROOT] if account.quota and not access.shared else []
    s.send(untagged(Atom("QUOTAROOT"), wire_name(args.mailbox, s.utf8), *roots))
    if roots:
        s.send(_quota_line(account))
    return None

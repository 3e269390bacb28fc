"""`mailstack share`: share a mailbox with another account, or list what is
shared, on the store directly (so it works while the node runs).

    mailstack share MAILBOX --owner A --with B --rights lrswipkxtecda
    mailstack share MAILBOX --owner A --with B --rights ""     (revoke)
    mailstack share list [--owner A]

``--rights`` takes what IMAP SETACL takes (RFC 4314 §3.1): letters that
replace B's rights, or ``+letters`` / ``-letters`` to add or remove
(``--rights=-w``: argparse reads a bare ``-w`` as an option); ``c`` and
``d`` stand for ``kx`` and ``te``. ``--with anyone`` shares with every
account. The change is the store's ``acl_set``, the operation SETACL uses,
so IMAP (``Other Users/A/MAILBOX``) and JMAP (A's account in B's session)
see it at once.
"""

from __future__ import annotations

import argparse
from typing import Any

from mailstack.commands import with_store
from mailstack.common import rights as acl_rights
from mailstack.common.rights import ANYONE, BadRights
from mailstack.errors import MailstackError
from mailstack.names import check_account_address


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "share",
        parents=[common],
        help="share a mailbox with another account (IMAP ACL, JMAP sharing)",
        description="Share OWNER's MAILBOX with another account, or `share list`.",
    )
    p.add_argument("mailbox", help='the mailbox in the owner\'s account, or "list"')
    p.add_argument("--owner", metavar="A", help="the account whose mailbox it is")
    p.add_argument("--with", dest="grantee", metavar="B", help='an account address, or "anyone"')
    p.add_argument(
        "--rights",
        metavar="RIGHTS",
        help='RFC 4314 letters lrswipkxtea (c, d too); "+..." adds, "-..." removes, "" revokes',
    )
    p.set_defaults(func=with_store(share))


async def share(store: Any, args: argparse.Namespace) -> int:
    if args.mailbox == "list" and args.grantee is None and args.rights is None:
        return await share_list(store, args)
    if args.owner is None or args.grantee is None or args.rights is None:
        raise MailstackError("share MAILBOX needs --owner, --with and --rights")
    owner = await store.account_get(check_account_address(args.owner))
    if owner is None:
        raise MailstackError(f"no such account: {args.owner}")
    mailbox = await store.mailbox_get(owner.id, args.mailbox)
    if mailbox is None:
        raise MailstackError(f"{owner.address} has no mailbox {args.mailbox!r}")
    grantee = args.grantee.strip().lower()
    if grantee != ANYONE:
        grantee = check_account_address(grantee)
    if grantee == owner.address:
        raise MailstackError("the owner has every right on its own mailboxes")
    if grantee != ANYONE and await store.account_get(grantee) is None:
        raise MailstackError(f"no such account: {args.grantee}")
    current = (await store.acl_get(mailbox.id)).get(grantee, "")
    try:
        granted = acl_rights.apply_modification(current, args.rights)
    except BadRights as exc:
        raise MailstackError(f"--rights {args.rights!r}: {exc}") from None
    await store.acl_set(mailbox.id, grantee, granted)
    if granted:
        print(f"{owner.address} {mailbox.name}: {grantee} has {acl_rights.show(granted)}")
    else:
        print(f"{owner.address} {mailbox.name}: {grantee} has no rights")
    return 0


async def share_list(store: Any, args: argparse.Namespace) -> int:
    """One line per ACL entry: owner, mailbox, identifier, rights."""
    if args.owner is not None:
        owner = await store.account_get(check_account_address(args.owner))
        if owner is None:
            raise MailstackError(f"no such account: {args.owner}")
        owners = [owner]
    else:
        owners = await store.account_list()
    for owner in owners:
        for mailbox in await store.mailbox_list(owner.id):
            for identifier, granted in sorted((await store.acl_get(mailbox.id)).items()):
                print(f"{owner.address}\t{mailbox.name}\t{identifier}\t{acl_rights.show(granted)}")
    return 0

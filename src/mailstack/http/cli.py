"""`mailstack token create|list|revoke`: bearer tokens for the HTTP service
(RFC 6750). A token's secret is shown once, at creation; the store keeps
only its SHA-256 digest. Revoking takes effect at the next request."""

from __future__ import annotations

import argparse
import datetime
from typing import Any

from mailstack.commands import with_store
from mailstack.common.auth import new_token, token_digest
from mailstack.errors import MailstackError


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    token = subparsers.add_parser("token", help="bearer tokens for HTTP and JMAP")
    actions = token.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    p = actions.add_parser(
        "create", parents=[common], help="make a token for USER and print it (shown once)"
    )
    p.add_argument("user")
    p.add_argument("--name", default="", help="what the token is for (shown by list)")
    p.set_defaults(func=with_store(token_create))
    p = actions.add_parser("list", parents=[common], help="list tokens (of USER)")
    p.add_argument("user", nargs="?")
    p.set_defaults(func=with_store(token_list))
    p = actions.add_parser("revoke", parents=[common], help="revoke the token with this id")
    p.add_argument("id", type=int)
    p.set_defaults(func=with_store(token_revoke))


async def token_create(store: Any, args: argparse.Namespace) -> int:
    account = await store.account_get(args.user)
    if account is None:
        raise MailstackError(f"no such user: {args.user}")
    if len(args.name) > 200 or not args.name.isprintable():
        raise MailstackError("a token's name is at most 200 printable characters")
    secret = new_token()
    token = await store.token_add(account.id, args.name, token_digest(secret))
    print(f"token {token.id} for {account.address}: {secret}")
    return 0


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "never"
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


async def token_list(store: Any, args: argparse.Namespace) -> int:
    account_id = None
    if args.user is not None:
        account = await store.account_get(args.user)
        if account is None:
            raise MailstackError(f"no such user: {args.user}")
        account_id = account.id
    addresses = {a.id: a.address for a in await store.account_list()}
    for token in await store.token_list(account_id):
        user = addresses.get(token.account_id, "?")
        name = f" name={token.name!r}" if token.name else ""
        print(
            f"{token.id} {user}{name} created={_when(token.created)} "
            f"last_used={_when(token.last_used)}"
        )
    return 0


async def token_revoke(store: Any, args: argparse.Namespace) -> int:
    if not await store.token_remove(args.id):
        raise MailstackError(f"no token {args.id}")
    print(f"revoked token {args.id}")
    return 0

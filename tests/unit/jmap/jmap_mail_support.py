"""Helpers for the mail method tests on top of conftest's ``jmap`` fixture."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from mailstack.config import Config
from mailstack.jmap import ids


async def other(jmap: Any, address: str | None = None, **table: Any) -> Any:
    """A ``jmap`` like the fixture's, for another account of the same store
    and/or with these ``[jmap]`` options."""
    account = jmap.user
    if address is not None:
        account = await jmap.store.account_add(address, "hungry")
    config = Config.from_table({"jmap": table} if table else {}, jmap.node.config.data_dir)
    node = SimpleNamespace(store=jmap.store, config=config, limits=config.limits,
                           hostname="mx.test")
    return type(jmap)(jmap.store, node, account)


async def mailbox_ids(jmap: Any) -> dict[str, str]:
    """IMAP name -> JMAP id of the account's mailboxes."""
    return {m.name: ids.encode(ids.MAILBOX, m.id)
            for m in await jmap.store.mailbox_list(jmap.user.id)}


def raw_message(*lines: str, body: str = "body\r\n") -> bytes:
    """A message of these header lines and body."""
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()

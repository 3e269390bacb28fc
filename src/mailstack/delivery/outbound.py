"""Mail our own users send, whichever way it came in: SMTP submission (RFC
6409), JMAP EmailSubmission (RFC 8621 §7) and the auto-replies sent for them
(RFC 3834).

* `may_send_as`: an address is the account's when it delivers to it (its own
  address, an alias, a sub-address, a catch-all of a domain it owns), as
  RFC 6409 §6.1 lets the MSA check;
* `complete`: the Date: and Message-ID: an MSA adds when missing (RFC 6409
  §8.2, §8.3); `dkim_signature`: the DKIM-Signature for the From: domain
  (RFC 6376);
* `send`: local recipients' mailboxes at once, everyone else (and local
  recipients that asked NOTIFY=SUCCESS, or whose delivery failed for now)
  through the queue, committed and fsynced when it returns; `enqueue` for
  what goes through the queue only.
"""

from __future__ import annotations

import email.utils
import logging
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mailstack.delivery.local import LocalDelivery
from mailstack.delivery.status import wants
from mailstack.store import Account, NewEntry, NewRecipient

if TYPE_CHECKING:
    from mailstack.app import Node

__all__ = ["Outgoing", "Sent", "complete", "dkim_signature", "enqueue", "may_send_as", "send"]

log = logging.getLogger("mailstack.submission")

Params = Mapping[str, str | None]


async def may_send_as(store: Any, account: Account, address: str) -> bool:
    """Whether ``address`` delivers to ``account``: the account's own, one of
    its aliases or sub-addresses, or any address of a domain whose catch-all
    it receives."""
    if not address:
        return False
    if address.lower() == account.address:
        return True
    accounts = await store.resolve_local(address)
    return bool(accounts) and any(a.id == account.id for a in accounts)


def complete(
    message: bytes, *, has_date: bool, has_message_id: bool, hostname: str,
    add_date: bool = True, add_message_id: bool = True,
) -> bytes:
    """The message with the Date: and Message-ID: it lacks (RFC 6409 §8.2,
    §8.3), when the configuration asks for them."""
    added = b""
    if add_date and not has_date:
        added += f"Date: {email.utils.formatdate(localtime=True)}\r\n".encode()
    if add_message_id and not has_message_id:
        added += f"Message-ID: <{secrets.token_hex(12)}@{hostname}>\r\n".encode()
    return added + message


async def dkim_signature(message: bytes, domain: str, store: Any) -> bytes:
    """The DKIM-Signature header(s) for ``message`` sent from ``domain``
    (RFC 6376), from the message-authentication package; b"" when the domain
    has no key or the signer is not installed."""
    try:
        from mailstack.msgauth.dkim import sign
    except ImportError:
        return b""
    try:
        return bytes(await sign(message, domain, store))
    except Exception:
        # Unsigned mail still goes out; the log says why it was not signed.
        log.exception("DKIM signing for %s failed", domain)
        return b""


@dataclass(frozen=True)
class Outgoing:
    """A message's envelope as the sender gave it: ``recipients`` in order,
    each named once; ``local`` the accounts each local recipient reaches
    (the others are remote); ``rcpt_params`` their RFC 3461 NOTIFY/ORCPT;
    ``mail_params`` ENVID, RET, SMTPUTF8, BODY."""

    mail_from: str
    recipients: Sequence[str]
    local: Mapping[str, Sequence[int]]
    rcpt_params: Mapping[str, Params] = field(default_factory=dict)
    mail_params: Params = field(default_factory=dict)


@dataclass(frozen=True)
class Sent:
    """What became of each recipient: in its mailbox now, or in the queue
    (as entry ``entry_id``)."""

    delivered: list[str]
    queued: list[str]
    entry_id: int | None


async def send(
    node: Node,
    delivery: LocalDelivery,
    outgoing: Outgoing,
    message: bytes,
    *,
    watcher: Any = None,
) -> Sent:
    """Deliver to the local recipients and queue the others, durably when
    this returns; StoreError when the queue could not take them. A
    ``watcher`` hears the queue's outcomes (`QueueRunner.enqueue`)."""
    queued = [a for a in outgoing.recipients if a not in outgoing.local]
    local: list[str] = []
    for address in outgoing.recipients:
        if address in outgoing.local:
            notify = outgoing.rcpt_params.get(address, {}).get("NOTIFY")
            # The queue reports a delivery the sender asked to hear of (RFC 3461).
            (queued if wants(notify, "SUCCESS") else local).append(address)
    if local and not await delivery.deliver_now(
        message, outgoing.mail_from, [(a, outgoing.local[a]) for a in local]
    ):
        queued += local
        local = []
    entry_id = None
    if queued:
        recipients = [
            NewRecipient(
                a,
                outgoing.rcpt_params.get(a, {}).get("NOTIFY"),
                outgoing.rcpt_params.get(a, {}).get("ORCPT"),
            )
            for a in queued
        ]
        params = outgoing.mail_params
        entry_id = await enqueue(
            node,
            outgoing.mail_from,
            recipients,
            message,
            envid=params.get("ENVID"),
            ret=params.get("RET"),
            smtputf8="SMTPUTF8" in params,
            body=params.get("BODY"),
            watcher=watcher,
        )
    return Sent(local, queued, entry_id)


async def enqueue(
    node: Node,
    mail_from: str,
    recipients: Sequence[NewRecipient],
    message: bytes,
    *,
    watcher: Any = None,
    **options: Any,
) -> int:
    """Queue a message (fsynced when this returns) and have the node's
    runner start on it, ``watcher`` hearing its outcomes; with no runner in
    this process (`[queue] enabled = false`) it waits in the store for
    another."""
    runner = node.queue
    if runner is not None:
        entry = runner.new_entry(mail_from, recipients, message, **options)
        return int(await runner.enqueue(entry, watcher))
    now = time.time()
    expires = now + node.config.queue.give_up
    entry = NewEntry(mail_from, recipients, message, now, expires, **options)
    assert node.store is not None
    return int(await node.store.queue_add(entry))

"""Final delivery into our own mailboxes (RFC 5321 §4.4), for every service
that takes mail in: the MX, submission, the queue runner and (next) JMAP
EmailSubmission.

`delivery_targets` makes one copy per mailbox however many of its addresses
were named, each with its own ``Return-Path:`` and ``Delivered-To:``.
`LocalDelivery` puts a message into them in one commit, three ways:

* `deliver`: all or nothing (the queue runner, which retries);
* `deliver_now`: all or nothing, and False rather than an error, so that the
  caller queues the recipients instead (submission);
* `deliver_some`: to every mailbox with room, and the others' sender hears
  by a "failed" DSN; recipients that asked NOTIFY=SUCCESS get a "delivered"
  one (RFC 3461 §5.2), but only when the caller vouches for the sender: the
  MX sends it only to a sender that SPF or aligned DKIM proved, since
  anyone can write NOTIFY=SUCCESS with a forged MAIL FROM (backscatter).
  With no one to tell (a null reverse-path, or no queue in this process to
  carry the DSN) it is all or nothing (the MX).

The DSNs go through the node's queue runner (``node.queue``), which composes
them (RFC 3464) and sends them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from mailstack.delivery.status import wants
from mailstack.errors import StoreError
from mailstack.mime import parse_for_store
from mailstack.store import DeliveryTarget

if TYPE_CHECKING:
    from mailstack.app import Node

__all__ = ["LocalDelivery", "Recipients", "Transaction", "delivery_targets"]

log = logging.getLogger(__name__)

# Each recipient address with the ids of the accounts it delivers to.
Recipients = Iterable[tuple[str, Iterable[int]]]


class Transaction(Protocol):
    """A mail transaction as it was received (RFC 5321 §3.3): the envelope
    with its ESMTP parameters (RFC 3461 NOTIFY, ORCPT, ENVID, RET) and the
    message before our trace fields were added. `smtp.proto.MessageComplete`
    is one."""

    @property
    def mail_from(self) -> str: ...
    @property
    def rcpt_to(self) -> list[str]: ...
    @property
    def data(self) -> bytes: ...
    @property
    def mail_params(self) -> Mapping[str, str | None]: ...
    @property
    def rcpt_params(self) -> Sequence[Mapping[str, str | None]]: ...


def delivery_targets(
    mail_from: str, recipients: Recipients, mailbox: str = "INBOX", trace: bytes = b""
) -> list[DeliveryTarget]:
    """Final delivery (RFC 5321 §4.4): one copy per mailbox however many of
    its addresses were named, each with its own Return-Path:/Delivered-To:,
    then ``trace`` (our Received: and Authentication-Results:, kept with the
    copy rather than joined to the message: a big message is never copied
    to gain a few lines)."""
    return_path = f"Return-Path: <{mail_from}>\r\n".encode()
    targets: list[DeliveryTarget] = []
    seen: set[int] = set()
    for rcpt, account_ids in recipients:
        for account_id in account_ids:
            if account_id not in seen:
                seen.add(account_id)
                prefix = return_path + f"Delivered-To: {rcpt}\r\n".encode() + trace
                targets.append(DeliveryTarget(account_id, mailbox, prefix))
    return targets


class LocalDelivery:
    """Local delivery for the services of one node (its store and queue)."""

    def __init__(self, node: Node) -> None:
        self.node = node

    @property
    def store(self) -> Any:
        return self.node.store

    async def deliver(
        self, message: bytes, mail_from: str, recipients: Recipients, mailbox: str = "INBOX"
    ) -> None:
        """Into every recipient's mailbox, committed and fsynced, or into none:
        QuotaExceeded when a mailbox has no room, StoreError when the store
        fails."""
        recipients = [(rcpt, list(ids)) for rcpt, ids in recipients]
        targets = delivery_targets(mail_from, recipients, mailbox)
        await self.store.deliver(message, await parse_for_store(message), targets)
        await self._auto_reply(message, mail_from, recipients, mailbox)

    async def deliver_now(self, message: bytes, mail_from: str, recipients: Recipients) -> bool:
        """`deliver`, or False when it did not happen."""
        try:
            await self.deliver(message, mail_from, recipients)
        except StoreError:
            # A full mailbox or a busy store: the queue retries, then bounces.
            return False
        return True

    async def deliver_some(
        self,
        transaction: Transaction,
        message: bytes,
        recipients: Sequence[tuple[str, Sequence[int]]],
        mailbox: str,
        *,
        session_id: str,
        full_reply: str,
        sender_verified: bool,
        trace: bytes = b"",
    ) -> None:
        """Into every mailbox with room; the sender hears of the others (and
        of those that asked NOTIFY=SUCCESS) by DSN. Nothing is delivered when
        it raises: QuotaExceeded when no mailbox had room (or one had not and
        no one could be told), StoreError when the store fails. The DSNs are
        queued after the commit, and a failure to queue them is only logged.
        ``full_reply`` is the SMTP reply a full mailbox gets, the DSN's
        Diagnostic-Code; ``session_id`` names the message in the log;
        "delivered" DSNs go only to a ``sender_verified``. ``trace`` goes in
        front of each copy (see delivery_targets)."""
        targets = delivery_targets(transaction.mail_from, recipients, mailbox, trace)
        queue = self.node.queue
        parsed = await parse_for_store(message)
        failed: set[str] = set()
        if queue is None or not transaction.mail_from:
            # No one could be told of a recipient left out: all or nothing.
            await self.store.deliver(message, parsed, targets)
        else:
            placed = await self.store.deliver_some(message, parsed, targets)
            full = {t.account_id for t, where in zip(targets, placed, strict=True) if not where}
            failed = {rcpt for rcpt, ids in recipients if full.intersection(ids)}
        # Committed: from here on the answer is 250 whatever happens, or the
        # client would send the message again to those who already have it.
        await self._auto_reply(
            message,
            transaction.mail_from,
            [(rcpt, ids) for rcpt, ids in recipients if rcpt not in failed],
            mailbox,
        )
        try:
            if failed:
                await self._report_full(transaction, failed, full_reply)
            if sender_verified:
                await self._report_success(transaction, failed)
        except Exception:
            log.exception("message %s delivered, but its DSN could not be queued", session_id)

    async def _auto_reply(
        self, message: bytes, mail_from: str, recipients: Recipients, mailbox: str
    ) -> None:
        """Vacation responses (RFC 3834, `delivery.vacation`): only for mail
        filed in the INBOX (not Junk) with someone to answer."""
        vacations = getattr(self.node, "vacations", None)
        if vacations is not None and mail_from and mailbox == "INBOX":
            await vacations.respond(self.node, message, mail_from, recipients)

    async def _report_full(
        self, transaction: Transaction, failed: set[str], full_reply: str
    ) -> None:
        """A mailbox that overflowed only at the end of DATA: the message went
        to the others, and the sender hears of these recipients by a "failed"
        DSN (RFC 3461 §5.2, RFC 3463 X.2.2), unless they asked NOTIFY=NEVER."""
        told = [
            (rcpt, params.get("ORCPT"))
            for rcpt, params in zip(transaction.rcpt_to, transaction.rcpt_params, strict=True)
            if rcpt in failed and wants(params.get("NOTIFY"), "FAILURE")
        ]
        await self.node.queue.report_failed(
            transaction.mail_from,
            transaction.data,
            told,
            status="5.2.2",
            diagnostic=full_reply,
            reason="the recipient's mailbox is full",
            envid=transaction.mail_params.get("ENVID"),
            ret=transaction.mail_params.get("RET"),
        )

    async def _report_success(self, transaction: Transaction, failed: set[str]) -> None:
        """RFC 3461 §5.2.2: final delivery of a recipient that asked
        NOTIFY=SUCCESS is reported to the sender with a "delivered" DSN."""
        asked = [
            (rcpt, params.get("ORCPT"))
            for rcpt, params in zip(transaction.rcpt_to, transaction.rcpt_params, strict=True)
            if wants(params.get("NOTIFY"), "SUCCESS") and rcpt not in failed
        ]
        queue = self.node.queue
        if asked and transaction.mail_from and queue is not None:
            await queue.report_delivered(
                transaction.mail_from,
                transaction.data,
                asked,
                envid=transaction.mail_params.get("ENVID"),
            )

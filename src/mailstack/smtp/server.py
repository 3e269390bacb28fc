"""The SMTP receiver (MX role): RFC 5321 mail for local domains, never relayed.

The socket loop around `proto.SmtpServerProtocol`: it answers the decisions
the protocol hands up (is this recipient ours? is the message delivered?) and
delivers durably: `250` after DATA or BDAT LAST only once the message is
committed and fsynced in every recipient's mailbox (the store's group commit
lets concurrent sessions share one fsync).
"""

from __future__ import annotations

import email.utils
import itertools
import logging
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from mailstack.common.server import SessionIO
from mailstack.errors import QuotaExceeded, StoreError
from mailstack.msgauth.check import InboundChecker
from mailstack.queue.policy import wants
from mailstack.smtp.proto import MailFrom, MessageComplete, RcptTo, SmtpServerProtocol
from mailstack.smtp.replies import Reply
from mailstack.smtp.session import SmtpListener, SmtpSession
from mailstack.store.base import Account, DeliveryTarget

log = logging.getLogger(__name__)

# RFC 5321 §3.6.2: relaying to non-local domains is for authenticated
# submission only; on the MX port it is refused.
RELAY_DENIED = Reply(550, "5.7.1", "Relaying denied")
# RFC 3463 X.1.1 "Bad destination mailbox address".
USER_UNKNOWN = Reply(550, "5.1.1", "User unknown")
# RFC 5321 §6.3: "a simple counting of the number of Received: header fields"
# detects loops; RFC 3463 X.4.6 "Routing loop detected".
LOOP_DETECTED = Reply(554, "5.4.6", "Too many Received: headers, mail loop detected")
MAILBOX_FULL = Reply(552, "5.2.2", "Mailbox full")
# RFC 7489 §6.6.4 / §7.2.2: a "reject" disposition ends in a 5xx; RFC 3463
# X.7.1 "Delivery not authorized, message refused".
DMARC_REJECTED = Reply(550, "5.7.1", "Message rejected by the sender domain's DMARC policy")
LOCAL_ERROR = Reply(451, "4.3.0", "Local error in processing, try again later")

def count_received(data: bytes) -> int:
    """The Received: fields in the header (the part before the first empty line)."""
    if data.startswith(b"\r\n"):
        return 0  # no header at all
    end = data.find(b"\r\n\r\n")
    header = (data if end < 0 else data[: end + 2]).lower()
    return header.count(b"\nreceived:") + header.startswith(b"received:")


_stamp: tuple[int, str] = (0, "")


def _date_time() -> str:
    """RFC 5322 date-time of now, formatted at most once a second."""
    global _stamp
    second = int(time.time())
    if _stamp[0] != second:
        _stamp = (second, email.utils.format_datetime(email.utils.localtime()))
    return _stamp[1]


def received_header(
    *,
    helo: str,
    peer_ip: str,
    by: str,
    protocol: str,
    session_id: str,
    rcpt: list[str],
) -> bytes:
    """RFC 5321 §4.4 time stamp line (FWS-folded), protocol per RFC 3848."""
    when = _date_time()
    recipient = f"\r\n\tfor <{rcpt[0]}>" if len(rcpt) == 1 else ""
    return (
        f"Received: from {helo or 'unknown'} ([{peer_ip}])\r\n"
        f"\tby {by} (mailstack) with {protocol} id {session_id}{recipient};\r\n"
        f"\t{when}\r\n"
    ).encode()


def delivery_targets(
    mail_from: str, recipients: Iterable[tuple[str, Iterable[int]]], mailbox: str = "INBOX"
) -> list[DeliveryTarget]:
    """Final delivery (RFC 5321 §4.4): one copy per mailbox however many of
    its addresses were named, each with its own Return-Path:/Delivered-To:."""
    return_path = f"Return-Path: <{mail_from}>\r\n".encode()
    targets: list[DeliveryTarget] = []
    seen: set[int] = set()
    for rcpt, account_ids in recipients:
        for account_id in account_ids:
            if account_id not in seen:
                seen.add(account_id)
                prefix = return_path + f"Delivered-To: {rcpt}\r\n".encode()
                targets.append(DeliveryTarget(account_id, mailbox, prefix))
    return targets


@dataclass
class _Envelope:
    # rcpt address -> account ids it delivers to
    recipients: dict[str, list[int]] = field(default_factory=dict)
    # RFC 1870: the size MAIL FROM declared (0: none)
    size: int = 0


class SmtpService(SmtpListener):
    protocol = "smtp"

    def __init__(self, node, name: str, host: str, port: int) -> None:  # type: ignore[no-untyped-def]
        super().__init__(node, name, host, port)
        self.limits = node.limits
        self.max_sessions = self.limits.smtp_sessions
        self.idle_timeout = self.limits.smtp_idle_timeout
        smtp_config = node.config.smtp
        self.hostname = smtp_config.hostname or node.hostname
        self.starttls = smtp_config.starttls
        # Message ids in Received: and the 250 reply: unique per process run.
        prefix = secrets.token_hex(3).upper()
        self._ids = (f"{prefix}{n:06X}" for n in itertools.count(1))
        self.msgauth = InboundChecker(
            node, mode=getattr(smtp_config, "message_auth", "record"), authserv_id=self.hostname
        )

    def new_session(self, io: SessionIO) -> SmtpSession:
        return _MxSession(self, io)

    async def _recipient(self, address: str, envelope: _Envelope) -> Reply:
        store = self.node.store
        local = address.rpartition("@")[0]
        if not local:
            # RFC 5321 §4.5.1: <Postmaster> without a domain must be accepted.
            if address.lower() != "postmaster":
                return USER_UNKNOWN
            domains = await store.domain_list()
            if not domains:
                return USER_UNKNOWN
            address = f"postmaster@{domains[0]}"
        accounts = await store.resolve_local(address)
        if accounts is None:
            return RELAY_DENIED
        if not accounts:
            return USER_UNKNOWN
        if any(account.quota for account in accounts) and await self._over_quota(
            accounts, envelope.size
        ):
            return MAILBOX_FULL
        envelope.recipients[address] = [account.id for account in accounts]
        return Reply.recipient_ok(address)

    async def _over_quota(self, accounts: list[Account], size: int) -> bool:
        """A mailbox that is full already, or too full for the size MAIL FROM
        declared, is refused at RCPT (RFC 1870 §6, RFC 3463 X.2.2), so that
        the message still reaches the other recipients; a message that
        overflows a mailbox only at its end is refused whole at DATA."""
        for account in accounts:
            if not account.quota:
                continue
            current = await self.node.store.account_get(account.address)
            if current is not None and current.used + max(size, 1) > current.quota:
                return True
        return False

    async def _deliver(self, event: MessageComplete, envelope: _Envelope, io: SessionIO) -> Reply:
        if count_received(event.data) >= self.limits.received_headers:
            return LOOP_DETECTED
        session_id = next(self._ids)
        protocol = "ESMTP" if event.esmtp else "SMTP"
        if event.tls:
            protocol += "S"
        inbound = await self.msgauth.check(
            event.data, client_ip=io.peer[0], helo=event.helo, mail_from=event.mail_from
        )
        if io.trace.enabled:
            io.trace.note(inbound.summary())
        if inbound.action == "reject":
            return DMARC_REJECTED
        mailbox = "Junk" if inbound.action == "quarantine" else "INBOX"
        body = (
            received_header(
                helo=event.helo,
                peer_ip=io.peer[0],
                by=self.hostname,
                protocol=protocol,
                session_id=session_id,
                rcpt=event.rcpt_to,
            )
            + inbound.header
            + inbound.message
        )
        targets = delivery_targets(
            event.mail_from,
            [(rcpt, envelope.recipients.get(rcpt, ())) for rcpt in event.rcpt_to],
            mailbox,
        )
        queue = getattr(self.node, "queue", None)
        failed: set[str] = set()
        try:
            if queue is None or not event.mail_from:
                # No one could be told of a recipient left out: all or nothing.
                await self.node.store.deliver(body, targets)
            else:
                placed = await self.node.store.deliver_some(body, targets)
                full = {t.account_id for t, where in zip(targets, placed, strict=True) if not where}
                failed = {
                    rcpt for rcpt, ids in envelope.recipients.items() if full.intersection(ids)
                }
        except QuotaExceeded:
            return MAILBOX_FULL
        except StoreError:
            return LOCAL_ERROR
        # Committed: from here on the answer is 250 whatever happens, or the
        # client would send the message again to those who already have it.
        try:
            if failed:
                await self._report_full(event, failed)
            await self._report_success(event, failed)
        except Exception:
            log.exception("message %s delivered, but its DSN could not be queued", session_id)
        return Reply(250, "2.0.0", f"Message accepted for delivery as {session_id}")

    async def _report_full(self, event: MessageComplete, failed: set[str]) -> None:
        """A mailbox that overflowed only at the end of DATA: the message went
        to the others, and the sender hears of these recipients by a "failed"
        DSN (RFC 3461 §5.2, RFC 3463 X.2.2), unless they asked NOTIFY=NEVER."""
        told = [
            (rcpt, params.get("ORCPT"))
            for rcpt, params in zip(event.rcpt_to, event.rcpt_params, strict=True)
            if rcpt in failed and wants(params.get("NOTIFY"), "FAILURE")
        ]
        await self.node.queue.report_failed(
            event.mail_from,
            event.data,
            told,
            status="5.2.2",
            diagnostic=MAILBOX_FULL.to_bytes().decode().strip(),
            reason="the recipient's mailbox is full",
            envid=event.mail_params.get("ENVID"),
            ret=event.mail_params.get("RET"),
        )

    async def _report_success(self, event: MessageComplete, failed: set[str]) -> None:
        """RFC 3461 §5.2.2: final delivery of a recipient that asked
        NOTIFY=SUCCESS is reported to the sender with a "delivered" DSN."""
        asked = [
            (rcpt, params.get("ORCPT"))
            for rcpt, params in zip(event.rcpt_to, event.rcpt_params, strict=True)
            if "SUCCESS" in (params.get("NOTIFY") or "").upper().split(",")
            and rcpt not in failed
        ]
        queue = getattr(self.node, "queue", None)
        if asked and event.mail_from and queue is not None:
            await queue.report_delivered(
                event.mail_from, event.data, asked, envid=event.mail_params.get("ENVID")
            )


class _MxSession(SmtpSession):
    """One MX session: the service decides recipients and delivers."""

    def __init__(self, service: SmtpService, io: SessionIO) -> None:
        proto = SmtpServerProtocol(
            hostname=service.hostname,
            limits=service.limits,
            tls_available=service.starttls and service.node.tls.available,
            tls_active=io.tls_active,
        )
        super().__init__(io, proto, service.node.tls)
        self.service = service
        self.envelope = _Envelope()
        self.handlers |= {
            MailFrom: self.answer(self.mail_from),
            RcptTo: self.answer(self.rcpt_to),
            MessageComplete: self.answer(self.message),
        }

    async def mail_from(self, event: MailFrom) -> Reply:
        self.envelope = _Envelope(size=int(event.params.get("SIZE") or 0))
        return Reply.sender_ok(event.address)

    async def rcpt_to(self, event: RcptTo) -> Reply:
        return await self.service._recipient(event.address, self.envelope)

    async def message(self, event: MessageComplete) -> Reply:
        return await self.service._deliver(event, self.envelope, self.io)

"""The SMTP receiver (MX role): RFC 5321 mail for local domains, never relayed.

The socket loop around `proto.SmtpServerProtocol`: it answers the decisions
the protocol hands up (is this recipient ours? is the message delivered?) and
delivers durably through `mailstack.delivery`: `250` after DATA or BDAT LAST
only once the message is committed and fsynced in every recipient's mailbox
(the store's group commit lets concurrent sessions share one fsync).
"""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass, field

from mailstack.common.server import SessionIO
from mailstack.delivery.local import LocalDelivery
from mailstack.delivery.received import count_received, received_header
from mailstack.errors import QuotaExceeded, StoreError
from mailstack.msgauth.check import InboundChecker
from mailstack.smtp.proto import MailFrom, MessageComplete, RcptTo, SmtpServerProtocol
from mailstack.smtp.replies import Reply
from mailstack.smtp.session import SmtpListener, SmtpSession
from mailstack.store import Account

# RFC 5321 §3.6.2: relaying to non-local domains is for authenticated
# submission only; on the MX port it is refused.
RELAY_DENIED = Reply(550, "5.7.1", "Relaying denied")
# RFC 3463 X.1.1 "Bad destination mailbox address".
USER_UNKNOWN = Reply(550, "5.1.1", "User unknown")
# RFC 5321 §6.3: "a simple counting of the number of Received: header fields"
# detects loops; RFC 3463 X.4.6 "Routing loop detected".
LOOP_DETECTED = Reply(554, "5.4.6", "Too many Received: headers, mail loop detected")
MAILBOX_FULL = Reply(552, "5.2.2", "Mailbox full")
# The same reply in the DSN of a recipient whose mailbox filled only at DATA.
FULL_DIAGNOSTIC = MAILBOX_FULL.to_bytes().decode().strip()
# RFC 7489 §6.6.4 / §7.2.2: a "reject" disposition ends in a 5xx; RFC 3463
# X.7.1 "Delivery not authorized, message refused".
DMARC_REJECTED = Reply(550, "5.7.1", "Message rejected by the sender domain's DMARC policy")
LOCAL_ERROR = Reply(451, "4.3.0", "Local error in processing, try again later")


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
        self.delivery = LocalDelivery(node)
        self.msgauth = InboundChecker(
            node, mode=smtp_config.message_auth, authserv_id=self.hostname
        )

    def new_session(self, io: SessionIO) -> SmtpSession:
        return _MxSession(self, io)

    async def _recipient(self, address: str, envelope: _Envelope) -> Reply:
        store = self.node.store
        assert store is not None  # opened by the node before its services start
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
        store = self.node.store
        assert store is not None
        for account in accounts:
            if not account.quota:
                continue
            current = await store.account_get(account.address)
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
        trace = (
            received_header(
                helo=event.helo,
                peer_ip=io.peer[0],
                by=self.hostname,
                protocol=protocol,
                session_id=session_id,
                rcpt=event.rcpt_to,
            )
            + inbound.header
        )
        recipients = [(rcpt, envelope.recipients.get(rcpt, ())) for rcpt in event.rcpt_to]
        try:
            await self.delivery.deliver_some(
                event, inbound.message, recipients, mailbox, session_id=session_id,
                full_reply=FULL_DIAGNOSTIC, trace=trace,
            )
        except QuotaExceeded:
            return MAILBOX_FULL
        except StoreError:
            return LOCAL_ERROR
        return Reply(250, "2.0.0", f"Message accepted for delivery as {session_id}")


class _MxSession(SmtpSession):
    """One MX session: the service decides recipients and delivers."""

    def __init__(self, service: SmtpService, io: SessionIO) -> None:
        proto = SmtpServerProtocol(
            hostname=service.hostname,
            limits=service.limits,
            tls_available=service.starttls and service.node.tls.available,
            tls_active=io.tls_active,
        )
        super().__init__(io, proto, service.node.tls, service.node.smtp_spool.session())
        self.service = service
        self.envelope = _Envelope()
        self.handlers |= {
            MailFrom: self.answer(self.mail_from),
            RcptTo: self.answer(self.rcpt_to),
            MessageComplete: self.answer_message(self.message),
        }

    async def mail_from(self, event: MailFrom) -> Reply:
        self.envelope = _Envelope(size=int(event.params.get("SIZE") or 0))
        return Reply.sender_ok(event.address)

    async def rcpt_to(self, event: RcptTo) -> Reply:
        return await self.service._recipient(event.address, self.envelope)

    async def message(self, event: MessageComplete) -> Reply:
        return await self.service._deliver(event, self.envelope, self.io)

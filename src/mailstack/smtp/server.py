"""The SMTP receiver (MX role): RFC 5321 mail for local domains, never relayed.

The socket loop around `proto.SmtpServerProtocol`: it answers the decisions
the protocol hands up (is this recipient ours? is the message delivered?) and
delivers durably through `mailstack.delivery`: `250` after DATA or BDAT LAST
only once the message is committed and fsynced in every recipient's mailbox
(the store's group commit lets concurrent sessions share one fsync).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from mailstack.common.events import log_event
from mailstack.common.server import SessionIO
from mailstack.delivery.local import LocalDelivery
from mailstack.delivery.received import count_received, received_header
from mailstack.errors import QuotaExceeded, StoreError
from mailstack.msgauth.check import InboundChecker
from mailstack.smtp.proto import MailFrom, MessageComplete, RcptTo, SmtpServerProtocol
from mailstack.smtp.replies import LOCAL_ERROR, Reply
from mailstack.smtp.session import (
    SmtpListener,
    SmtpSession,
    log_message,
    log_refused,
    message_fields,
    tls_comment,
)
from mailstack.store import Account

log = logging.getLogger("mailstack.smtp")

# RFC 5321 §3.6.2: relaying to non-local domains is for authenticated
# submission only; on the MX port it is refused.
RELAY_DENIED = Reply(550, "5.7.1", "Relaying denied")
# RFC 3463 X.1.1 "Bad destination mailbox address".
USER_UNKNOWN = Reply(550, "5.1.1", "User unknown")
# RFC 5321 §3.8: the client guesses at addresses (Limits.unknown_recipients).
HARVESTING = Reply(421, "4.7.0", "Too many unknown recipients, closing connection")
# RFC 5321 §6.3: "a simple counting of the number of Received: header fields"
# detects loops; RFC 3463 X.4.6 "Routing loop detected".
LOOP_DETECTED = Reply(554, "5.4.6", "Too many Received: headers, mail loop detected")
# RFC 5321 §4.5.3.1.10 / RFC 3463 X.3.4 "Message too big for system": the
# header section past Limits.header_size (Postfix's header_size_limit).
HEADER_TOO_BIG = Reply(552, "5.3.4", "Message header section too large")
MAILBOX_FULL = Reply(552, "5.2.2", "Mailbox full")
# RFC 5321 §4.5.1 forbids refusing postmaster for a local domain: while no
# account exists to receive it, the sender is asked to try again later.
POSTMASTER_PENDING = Reply(450, "4.2.1", "Postmaster has no mailbox yet, try again later")
# The same reply in the DSN of a recipient whose mailbox filled only at DATA.
FULL_DIAGNOSTIC = MAILBOX_FULL.to_bytes().decode().strip()
# RFC 7489 §6.6.4 / §7.2.2: a "reject" disposition ends in a 5xx; RFC 3463
# X.7.1 "Delivery not authorized, message refused".
DMARC_REJECTED = Reply(550, "5.7.1", "Message rejected by the sender domain's DMARC policy")


@dataclass
class _Envelope:
    # rcpt address -> account ids it delivers to
    recipients: dict[str, list[int]] = field(default_factory=dict)
    # RFC 1870: the size MAIL FROM declared (0: none)
    size: int = 0
    mail_from: str = ""


def header_too_big(message: bytes, limit: int) -> bool:
    """Whether the header section (up to the first empty line, or the whole
    message without one) is longer than ``limit`` octets; only the first
    ``limit`` + 4 octets are looked at."""
    if message.find(b"\r\n\r\n", 0, limit + 4) >= 0 or message.startswith(b"\r\n"):
        return False
    return len(message) > limit


class SmtpService(SmtpListener):
    protocol = "smtp"

    def __init__(self, node, name: str, host: str, port: int) -> None:  # type: ignore[no-untyped-def]
        super().__init__(node, name, host, port)
        self.limits = node.limits
        self.max_sessions = self.limits.smtp_sessions
        self.max_sessions_per_address = self.limits.smtp_sessions_per_address
        self.max_sessions_per_prefix = self.limits.smtp_sessions_per_prefix
        self.idle_timeout = self.limits.smtp_idle_timeout
        smtp_config = node.config.smtp
        self.hostname = smtp_config.hostname or node.hostname
        self.starttls = smtp_config.starttls
        self.delivery = LocalDelivery(node)
        self.msgauth = InboundChecker(
            node, mode=smtp_config.message_auth, authserv_id=self.hostname
        )

    def new_session(self, io: SessionIO) -> SmtpSession:
        return _MxSession(self, io)

    async def _recipient(self, address: str, envelope: _Envelope) -> Reply:
        local = address.rpartition("@")[0]
        if not local and address.lower() != "postmaster":
            return USER_UNKNOWN
        accounts = await self._resolve(address)
        if accounts is None:
            return RELAY_DENIED
        if not accounts:
            postmaster = (local or address).lower() == "postmaster"
            return POSTMASTER_PENDING if postmaster else USER_UNKNOWN
        if any(account.quota for account in accounts) and await self._over_quota(
            accounts, envelope.size
        ):
            return MAILBOX_FULL
        # Keyed as the client wrote it: DATA looks recipients up by RCPT's text.
        envelope.recipients[address] = [account.id for account in accounts]
        return Reply.recipient_ok(address)

    async def _resolve(self, address: str) -> list[Account] | None:
        """The accounts ``address`` reaches; None when its domain is not local.

        RFC 5321 §4.5.1: postmaster works at every local domain and without
        a domain (``<Postmaster>``); where a domain's own postmaster reaches
        no one yet, the node's does (the host name's domain's first)."""
        store = self.node.store
        assert store is not None  # opened by the node before its services start
        local = address.rpartition("@")[0]
        accounts = await store.resolve_local(address) if local else []
        if accounts is None or accounts or (local or address).lower() != "postmaster":
            return accounts
        domains = await store.domain_list()
        for domain in sorted(domains, key=lambda d: not self._hostname_in(d)):
            found = await store.resolve_local(f"postmaster@{domain}")
            if found:
                return found
        return []

    def _hostname_in(self, domain: str) -> bool:
        host = self.hostname.lower().rstrip(".")
        return host == domain or host.endswith("." + domain)

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
        fields = message_fields("smtp", event, io, self.node.message_ids.next())
        reply = await self._file(event, envelope, io, fields)
        log_message(log, reply, fields)
        return reply

    async def _file(
        self, event: MessageComplete, envelope: _Envelope, io: SessionIO, fields: dict[str, object]
    ) -> Reply:
        """Check the message and file it in its recipients' mailboxes; what
        the checks found goes into ``fields``, for the log."""
        if header_too_big(event.data, self.limits.header_size):
            return HEADER_TOO_BIG
        if count_received(event.data) >= self.limits.received_headers:
            return LOOP_DETECTED
        session_id = str(fields["id"])
        protocol = "ESMTP" if event.esmtp else "SMTP"
        if event.tls:
            protocol += "S"
        inbound = await self.msgauth.check(
            event.data, client_ip=io.peer[0], helo=event.helo, mail_from=event.mail_from
        )
        if io.trace.enabled:
            io.trace.note(inbound.summary())
        if inbound.verdict is not None:
            verdict = inbound.verdict
            fields["spf"] = verdict.spf.result
            fields["dkim"] = ",".join(r.result for r in verdict.dkim) or "none"
            fields["dmarc"] = verdict.dmarc.result
        if inbound.action == "reject":
            return DMARC_REJECTED
        mailbox = "Junk" if inbound.action == "quarantine" else "INBOX"
        if mailbox != "INBOX":
            fields["mailbox"] = mailbox
        trace = (
            received_header(
                helo=event.helo,
                peer_ip=io.peer[0],
                by=self.hostname,
                protocol=protocol,
                session_id=session_id,
                rcpt=event.rcpt_to,
                tls=tls_comment(io),
            )
            + inbound.header
        )
        recipients = [(rcpt, envelope.recipients.get(rcpt, ())) for rcpt in event.rcpt_to]
        try:
            # A "delivered" DSN goes only to a sender SPF or aligned DKIM
            # proved: NOTIFY=SUCCESS from a forged MAIL FROM is backscatter.
            verified = inbound.verdict is not None and inbound.verdict.sender_verified(
                event.mail_from
            )
            await self.delivery.deliver_some(
                event,
                inbound.message,
                recipients,
                mailbox,
                session_id=session_id,
                full_reply=FULL_DIAGNOSTIC,
                sender_verified=verified,
                trace=trace,
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
        # Recipients answered "User unknown" in this session (harvesting).
        self.unknown = 0
        self.handlers |= {
            MailFrom: self.answer(self.mail_from),
            RcptTo: self.answer(self.rcpt_to),
            MessageComplete: self.answer_message(self.message),
        }

    async def mail_from(self, event: MailFrom) -> Reply:
        self.envelope = _Envelope(size=int(event.params.get("SIZE") or 0), mail_from=event.address)
        return Reply.sender_ok(event.address)

    async def rcpt_to(self, event: RcptTo) -> Reply:
        reply = await self.service._recipient(event.address, self.envelope)
        if reply is USER_UNKNOWN:
            reply = await self.unknown_recipient()
        if not reply.is_positive:
            log_refused(
                log,
                "recipient",
                "smtp",
                self.io,
                reply,
                sender=self.envelope.mail_from,
                recipient=event.address,
            )
        return reply

    async def unknown_recipient(self) -> Reply:
        """Unknown recipients count against the session, as Postfix's soft and
        hard error limits do: past ``unknown_recipient_tarpit`` each answer
        waits a growing delay, and at ``unknown_recipients`` the session is
        closed, so guessing addresses goes slowly and ends."""
        limits = self.service.limits
        self.unknown += 1
        client = self.io.peer[0]
        fields = {
            "protocol": "smtp",
            "client": client,
            "reason": "unknown-recipients",
            "unknown": self.unknown,
        }
        if self.unknown >= limits.unknown_recipients:
            log_event(log, logging.WARNING, "session closed", fields)
            return HARVESTING
        past = self.unknown - limits.unknown_recipient_tarpit
        if past > 0:
            if past == 1:
                log_event(log, logging.WARNING, "tarpit", fields)
            await asyncio.sleep(limits.unknown_recipient_delay * past)
        return USER_UNKNOWN

    async def message(self, event: MessageComplete) -> Reply:
        return await self.service._deliver(event, self.envelope, self.io)

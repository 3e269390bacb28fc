"""Message submission (RFC 6409) on `submission` (STARTTLS, RFC 3207) and
`submissions` (implicit TLS, RFC 8314), with SMTP AUTH (RFC 4954).

The socket loop around `proto.SmtpServerProtocol` in its submission role:
MAIL needs a login, and a login needs TLS (RFC 8314 §3, RFC 4954 §4), except
from a loopback client when `[submission] allow_plaintext_on_loopback` says
so. Passwords are checked by the node's authenticator (`common/auth.py`):
a client address it throttles is answered ``454 4.7.0`` at once, its password
unchecked (RFC 4954 §6 "temporary authentication failure").

An authenticated user may send only as an address that is theirs (their
account, an alias or a subaddress of it) in MAIL FROM and From: (``550
5.7.1`` otherwise, RFC 6409 §6.1 lets the MSA enforce this). The MSA adds a
missing Date: and Message-ID: (RFC 6409 §8.2, §8.3), a Received: line
(``ESMTPSA``, RFC 3848) and the DKIM signature (`dkim_signature`). Local
recipients get the message at once; remote ones go into the queue (committed
and fsynced before the ``250``), as do local ones that asked NOTIFY=SUCCESS
(the queue reports delivery) or whose delivery failed for now.

BURL (RFC 4468), offered once logged in: ``BURL imap://...;URLAUTH=... [LAST]``
takes the octets of a URLAUTH-authorized URL of this node's IMAP server as
the next chunk of the message, verified as URLFETCH verifies it
(`imap/urls.py`, reached through `Node.burl_octets`) with the submission
server as the requester acting for the logged-in user, so ``submit+user``
URLs work for that user only (RFC 4467 §3). A URL that does not verify is
``554 5.7.0``, a malformed one ``554 5.5.4``, one of another server ``554
5.7.14`` (RFC 4468 §6, erratum 896: no trust relationship), one that
verifies but names nothing ``554 5.6.6``; each ends the transaction as a
failed BDAT chunk does.
"""

from __future__ import annotations

import email.utils
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import TYPE_CHECKING

from mailstack.common.auth import Outcome
from mailstack.common.netguard import is_loopback
from mailstack.common.sasl import Challenge, Mechanism, SaslError, new_mechanism
from mailstack.common.server import SessionIO
from mailstack.delivery.local import LocalDelivery
from mailstack.delivery.outbound import Outgoing, complete, dkim_signature, may_send_as, send
from mailstack.delivery.received import count_received, received_header
from mailstack.errors import StoreError
from mailstack.mime import parse_for_store
from mailstack.smtp.config import SubmissionConfig
from mailstack.smtp.proto import (
    AuthRequest,
    AuthResponse,
    BurlFetch,
    MailFrom,
    MessageComplete,
    RcptTo,
    SmtpServerProtocol,
    StartTls,
)
from mailstack.smtp.replies import LOCAL_ERROR, Reply
from mailstack.smtp.server import LOOP_DETECTED, USER_UNKNOWN
from mailstack.smtp.session import (
    SmtpListener,
    SmtpSession,
    log_message,
    log_refused,
    message_fields,
    tls_comment,
)
from mailstack.store import Account

if TYPE_CHECKING:
    from mailstack.app import Node

__all__ = ["SubmissionService", "dkim_signature"]

log = logging.getLogger("mailstack.submission")

NOT_YOUR_SENDER = Reply(550, "5.7.1", "Sender address is not yours")
NOT_YOUR_FROM = Reply(550, "5.7.1", "From: address is not yours")
NO_FROM = Reply(550, "5.6.0", "Message has no From: header")
# RFC 4954 §6
AUTH_FAILED = Reply(535, "5.7.8", "Authentication credentials invalid")
AUTH_TEMPORARY = Reply(454, "4.7.0", "Temporary authentication failure")
AUTH_THROTTLED = Reply(454, "4.7.0", "Too many failed logins, try again later")
AUTH_MALFORMED = Reply(501, "5.5.2", "Malformed authentication exchange")
# RFC 4468 §6 (with erratum 896) and RFC 3463 X.6.6 "message content not available".
# Keyed by `imap.urls.Refusal`'s values: why a URL gave nothing.
BURL_REFUSALS = {
    "malformed": Reply(554, "5.5.4", "Not an IMAP URL with URLAUTH"),
    "foreign": Reply(554, "5.7.14", "URL resolution requires trust relationship"),
    "unauthorized": Reply(554, "5.7.0", "IMAP URL authorization failed"),
    "missing": Reply(554, "5.6.6", "IMAP URL resolution failed"),
}
BURL_UNAVAILABLE = Reply(451, "4.4.1", "IMAP server unavailable, try again later")


class SubmissionService(SmtpListener):
    protocol = "submission"
    implicit_tls_names = frozenset({"submissions"})
    takes_logins = True
    # RFC 5321 §3.8: 421 and the connection closes; X.7.0 (RFC 3463) a
    # security or policy status.
    kicked_message = b"421 4.7.0 Account disabled or removed, closing connection\r\n"

    def __init__(self, node: Node, name: str, host: str, port: int) -> None:
        super().__init__(node, name, host, port)
        self.limits = node.limits
        self.max_sessions = self.limits.smtp_sessions
        self.max_sessions_per_address = self.limits.smtp_sessions_per_address
        self.max_sessions_per_prefix = self.limits.smtp_sessions_per_prefix
        self.idle_timeout = self.limits.smtp_idle_timeout
        self.config: SubmissionConfig = node.config.submission
        self.hostname = self.config.hostname or node.hostname
        self.delivery = LocalDelivery(node)

    def new_session(self, io: SessionIO) -> SmtpSession:
        return _Session(self, io)


@dataclass
class _Envelope:
    local: dict[str, list[int]] = field(default_factory=dict)  # rcpt -> account ids
    mail_from: str = ""


class _Session(SmtpSession):
    def __init__(self, service: SubmissionService, io: SessionIO) -> None:
        self.service = service
        self.node = service.node
        store = service.node.store
        assert store is not None  # opened by the node before its services start
        self.store = store
        config = service.config
        plaintext_ok = config.allow_plaintext_on_loopback and is_loopback(io.peer[0])
        proto = SmtpServerProtocol(
            hostname=service.hostname,
            limits=service.limits,
            tls_available=config.starttls and service.node.tls.available,
            tls_active=io.tls_active,
            auth_mechanisms=tuple(m.upper() for m in config.mechanisms),
            require_auth=True,
            require_tls_for_auth=not plaintext_ok,
            submission=True,
            burl=True,
        )
        super().__init__(io, proto, service.node.tls, service.node.smtp_spool.session())
        self.mechanism: Mechanism | None = None
        self.account: Account | None = None
        self.release_login: Callable[[], None] | None = None  # the Logins hold
        # Addresses found to be (or not be) the user's, for this session.
        self.owned: dict[str, bool] = {}
        self.envelope = _Envelope()
        self.handlers |= {
            MailFrom: self.answer(self.mail_from),
            RcptTo: self.answer(self.rcpt_to),
            MessageComplete: self.answer_message(self.submit),
            AuthRequest: self.auth,
            AuthResponse: self.auth,
            BurlFetch: self.burl,
        }

    async def run(self, greeting: bytes) -> None:
        try:
            await super().run(greeting)
        finally:
            self.release()

    def release(self) -> None:
        if self.release_login is not None:
            self.release_login()
            self.release_login = None

    async def start_tls(self, event: StartTls) -> None:
        await super().start_tls(event)
        # RFC 3207 §4.2: the login made in clear is forgotten with the rest.
        self.account = None
        self.release()

    # -- AUTH ------------------------------------------------------------------------

    async def auth(self, event: AuthRequest | AuthResponse) -> None:
        try:
            if isinstance(event, AuthRequest):
                self.mechanism = new_mechanism(
                    event.mechanism, tuple(m.upper() for m in self.service.config.mechanisms)
                )
                if self.mechanism is None:
                    self.proto.respond(AUTH_MALFORMED)
                    return
                step = self.mechanism.initial(event.initial)
            else:
                assert self.mechanism is not None
                step = self.mechanism.step(event.data)
        except SaslError:
            self.mechanism = None
            self.proto.respond(AUTH_MALFORMED)
            return
        if isinstance(step, Challenge):
            self.proto.auth_challenge(step.data)
            return
        self.mechanism = None
        if not step.acts_as_self():
            # RFC 4954 §4: we do not offer proxy authorization.
            self.proto.respond(AUTH_FAILED)
            return
        self.proto.respond(await self.login(step.authcid, step.password))

    async def login(self, user: str, password: str) -> Reply:
        # An SMTP client is not held while throttled: 454 tells it to come back.
        login = await self.node.authenticator.login(
            "submission", user, password, self.io.peer[0], hold=False
        )
        if login.outcome is Outcome.THROTTLED:
            return AUTH_THROTTLED
        if login.outcome is Outcome.UNAVAILABLE:
            return AUTH_TEMPORARY
        account = login.account
        if account is None:
            return AUTH_FAILED
        self.account = account
        self.release_login = self.node.authenticator.logins.hold(account.address)
        self.owned = {}
        self.proto.authenticated(account.address)
        self.io.authenticated()
        return Reply.auth_succeeded()

    # -- the envelope ------------------------------------------------------------------

    async def owns(self, address: str) -> bool:
        assert self.account is not None
        key = address.lower()
        known = self.owned.get(key)
        if known is None:
            known = self.owned[key] = await may_send_as(self.store, self.account, address)
        return known

    async def mail_from(self, event: MailFrom) -> Reply:
        self.envelope = _Envelope(mail_from=event.address)
        if not event.address or not await self.owns(event.address):
            log_refused(log, "sender", "submission", self.io, NOT_YOUR_SENDER, sender=event.address)
            return NOT_YOUR_SENDER
        return Reply.sender_ok(event.address)

    async def rcpt_to(self, event: RcptTo) -> Reply:
        address = event.address
        accounts = await self.store.resolve_local(address)
        # None: not ours. Authenticated users may relay (RFC 6409 §4.3); the
        # MX port never does.
        if accounts == []:
            sender = self.envelope.mail_from
            log_refused(
                log, "recipient", "submission", self.io, USER_UNKNOWN,
                sender=sender, recipient=address,
            )
            return USER_UNKNOWN
        if accounts:
            self.envelope.local[address] = [account.id for account in accounts]
        return Reply.recipient_ok(address)

    # -- BURL (RFC 4468) ----------------------------------------------------------------

    async def burl(self, event: BurlFetch) -> None:
        assert self.account is not None  # BURL is offered only once logged in
        try:
            found = await self.node.burl_octets(event.url, self.account.address)
        except StoreError:
            self.proto.respond(BURL_UNAVAILABLE)
            return
        if isinstance(found, bytes):
            self.proto.burl_fetched(found)
        else:
            self.proto.respond(BURL_REFUSALS[found])

    # -- the message -------------------------------------------------------------------

    async def submit(self, event: MessageComplete) -> Reply:
        assert self.account is not None
        fields = message_fields("submission", event, self.io, self.node.message_ids.next())
        fields["user"] = self.account.address
        reply = await self._submit(event, fields)
        log_message(log, reply, fields)
        return reply

    async def _submit(self, event: MessageComplete, fields: dict[str, object]) -> Reply:
        """Check, sign and deliver or queue the message; its queue id goes
        into ``fields``, for the log."""
        assert self.account is not None
        if count_received(event.data) >= self.service.limits.received_headers:
            return LOOP_DETECTED
        header = BytesHeaderParser(policy=compat32).parsebytes(event.data)
        senders = email.utils.getaddresses([str(v) for v in header.get_all("From", [])])
        if not senders or not all(address for _name, address in senders):
            return NO_FROM
        for _name, address in senders:
            if not await self.owns(address):
                return NOT_YOUR_FROM
        config = self.service.config
        hostname = self.service.hostname
        signed = complete(
            event.data,
            has_date=header["Date"] is not None,
            has_message_id=header["Message-ID"] is not None,
            hostname=hostname,
            add_date=config.add_date,
            add_message_id=config.add_message_id,
        )
        from_domain = senders[0][1].rpartition("@")[2].lower()
        signature = await dkim_signature(signed, from_domain, self.store)
        session_id = str(fields["id"])
        protocol = "ESMTPSA" if event.tls else "ESMTPA"
        received = received_header(
            helo=event.helo,
            peer_ip=self.io.peer[0],
            by=hostname,
            protocol=protocol,
            session_id=session_id,
            rcpt=event.rcpt_to,
            tls=tls_comment(self.io),
        )
        message = received + signature + signed
        outgoing = Outgoing(
            event.mail_from,
            # A recipient named twice gets the message once.
            list(dict.fromkeys(event.rcpt_to)),
            self.envelope.local,
            dict(zip(event.rcpt_to, event.rcpt_params, strict=True)),
            event.mail_params,
        )
        try:
            sent = await send(self.node, self.service.delivery, outgoing, message)
        except StoreError:
            return LOCAL_ERROR
        if config.save_sent:
            await self.save_sent(message)
        fields["queued"] = sent.entry_id
        if sent.entry_id is not None:
            return Reply(250, "2.0.0", f"Message accepted, queued as {sent.entry_id}")
        return Reply(250, "2.0.0", f"Message accepted for delivery as {session_id}")

    async def save_sent(self, message: bytes) -> None:
        assert self.account is not None
        try:
            sent = await self.store.mailbox_get(self.account.id, "Sent")
            if sent is not None:
                parsed = await parse_for_store(message)
                await self.store.append(sent.id, message, parsed, ["\\Seen"])
        except StoreError:
            log.warning("could not save a copy in Sent for %s", self.account.address)

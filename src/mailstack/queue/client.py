"""One outbound SMTP connection carrying several messages to one host (RFC 5321).

The SMTP client is `aiosmtplib`. `Connection.open()` tries the host's
addresses in turn, reads the greeting, says EHLO and upgrades with STARTTLS
when the server offers it (opportunistic TLS, RFC 7435: the certificate is
not checked, and a failed handshake falls back to a plain connection, since
the alternative would be sending nothing). `Connection.send()` runs one mail
transaction and gives each recipient its `Outcome`:

* MAIL carries SIZE (RFC 1870), BODY=8BITMIME when the message has 8-bit
  octets (RFC 6152), SMTPUTF8 when it needs it (RFC 6531), RET and ENVID when
  the server speaks DSN (RFC 3461 §5.2); RCPT carries NOTIFY and ORCPT.
* A message that needs 8BITMIME or SMTPUTF8 is not sent to a server that
  lacks it: it fails with 5.6.3 or 5.6.7/5.6.9 (RFC 6531 §3.2, no downgrade).
* Timeouts follow RFC 5321 §4.5.3.2: five minutes for the greeting, MAIL and
  RCPT, two for DATA, ten for the end of data.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass

import aiosmtplib

from mailstack.common.netguard import check_destination
from mailstack.queue.policy import Outcome
from mailstack.queue.routing import Host
from mailstack.store.queue import QueuedRecipient, QueueEntry

# RFC 5321 §4.5.3.2
GREETING_TIMEOUT = 300.0
MAIL_TIMEOUT = 300.0
RCPT_TIMEOUT = 300.0
DATA_INIT_TIMEOUT = 120.0
DATA_END_TIMEOUT = 600.0


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message for some of its recipients, all at one destination."""

    entry: QueueEntry
    recipients: Sequence[QueuedRecipient]
    data: bytes


class ConnectFailed(Exception):
    """No address of the host gave a usable SMTP session; ``outcome`` says why."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.reply)
        self.outcome = outcome


def _tls_context() -> ssl.SSLContext:
    # RFC 7435 opportunistic security: encrypt, but do not authenticate.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def needs_smtputf8(entry: QueueEntry, recipients: Sequence[QueuedRecipient], data: bytes) -> str:
    """The RFC 3463 code when the message cannot go without SMTPUTF8, else ""."""
    if not entry.smtputf8:
        return ""
    if not entry.mail_from.isascii() or not all(r.address.isascii() for r in recipients):
        return "5.6.7"  # RFC 6531 §3.7.4.1: non-ASCII addresses
    end = data.find(b"\r\n\r\n")
    if not (data if end < 0 else data[:end]).isascii():
        return "5.6.9"  # RFC 6531 §3.7.5: a UTF-8 header cannot be sent
    return ""


class Connection:
    def __init__(self, smtp: aiosmtplib.SMTP, host: Host, address: str) -> None:
        self.smtp = smtp
        self.host = host
        self.address = address
        self.sent = 0

    @classmethod
    async def open(cls, host: Host, *, port: int, helo: str, connect_timeout: float) -> Connection:
        last = Outcome.temporary("4.4.1", f"no answer from {host.name}", host.name)
        for address in host.addresses:
            check_destination(address)
            for use_tls in (True, False):
                smtp = aiosmtplib.SMTP(
                    hostname=address,
                    port=port,
                    local_hostname=helo,
                    timeout=connect_timeout,
                    start_tls=False,
                    validate_certs=False,
                )
                in_tls = False
                try:
                    await smtp.connect(timeout=connect_timeout)
                    smtp.timeout = GREETING_TIMEOUT
                    await smtp.ehlo()
                    if use_tls and smtp.supports_extension("starttls"):
                        in_tls = True
                        await smtp.starttls(tls_context=_tls_context())
                        await smtp.ehlo()
                    return cls(smtp, host, address)
                except (ssl.SSLError, aiosmtplib.SMTPException, OSError) as exc:
                    smtp.close()
                    if in_tls:
                        # The STARTTLS exchange failed: try once more in clear.
                        continue
                    if isinstance(exc, aiosmtplib.SMTPResponseException):
                        # RFC 5321 §3.1: a 554 greeting (or a refused EHLO)
                        # means "not here": the next host may take the mail.
                        last = Outcome.temporary(
                            "4.4.1",
                            f"{host.name} refused the session: {exc.code} {exc.message}",
                            host.name,
                        )
                    else:
                        last = Outcome.temporary(
                            "4.4.1", f"cannot connect to {host.name} [{address}]", host.name
                        )
                    break
        raise ConnectFailed(last)

    async def send(self, delivery: Delivery) -> dict[int, Outcome]:
        """One mail transaction; an Outcome per recipient id.

        When the connection breaks, every recipient without a reply yet gets
        a temporary failure and the connection is no longer `usable`.
        """
        outcomes: dict[int, Outcome] = {}
        try:
            await self._transaction(delivery, outcomes)
        except (aiosmtplib.SMTPException, OSError):
            self.smtp.close()
            lost = Outcome.temporary(
                "4.4.2", f"connection to {self.host.name} lost", self.host.name
            )
            for rcpt in delivery.recipients:
                outcomes.setdefault(rcpt.id, lost)
        return outcomes

    async def _transaction(self, delivery: Delivery, outcomes: dict[int, Outcome]) -> None:
        entry, data, smtp = delivery.entry, delivery.data, self.smtp
        name = self.host.name
        eight_bit = not data.isascii()
        utf8_code = needs_smtputf8(entry, delivery.recipients, data)
        refusal: Outcome | None = None
        if eight_bit and not smtp.supports_extension("8bitmime"):
            refusal = Outcome.permanent(
                "5.6.3", f"{name} does not accept 8-bit messages (no 8BITMIME)", name
            )
        if utf8_code and not smtp.supports_extension("smtputf8"):
            refusal = Outcome.permanent(
                utf8_code, f"{name} does not support SMTPUTF8, which this message needs", name
            )
        if refusal is not None:
            outcomes.update((r.id, refusal) for r in delivery.recipients)
            return
        dsn = smtp.supports_extension("dsn")
        options = [f"SIZE={len(data)}"] if smtp.supports_extension("size") else []
        if eight_bit:
            options.append("BODY=8BITMIME")
        if utf8_code:
            options.append("SMTPUTF8")
        if dsn and entry.ret:
            options.append(f"RET={entry.ret}")
        if dsn and entry.envid:
            options.append(f"ENVID={entry.envid}")
        encoding = "utf-8" if utf8_code else "ascii"
        self.sent += 1
        try:
            await smtp.mail(
                entry.mail_from, options=options, encoding=encoding, timeout=MAIL_TIMEOUT
            )
        except aiosmtplib.SMTPResponseException as exc:
            outcome = Outcome.from_reply(exc.code, exc.message, name)
            outcomes.update((r.id, outcome) for r in delivery.recipients)
            await self._reset()
            return
        accepted = []
        for rcpt in delivery.recipients:
            rcpt_options = []
            if dsn and rcpt.notify:
                rcpt_options.append(f"NOTIFY={rcpt.notify}")
            if dsn and rcpt.orcpt:
                rcpt_options.append(f"ORCPT={rcpt.orcpt}")
            try:
                await smtp.rcpt(
                    rcpt.address, options=rcpt_options, encoding=encoding, timeout=RCPT_TIMEOUT
                )
            except aiosmtplib.SMTPResponseException as exc:
                outcomes[rcpt.id] = Outcome.from_reply(exc.code, exc.message, name)
            else:
                accepted.append(rcpt)
        if not accepted:
            await self._reset()
            return
        try:
            reply = await smtp.data(data, timeout=DATA_END_TIMEOUT)
        except aiosmtplib.SMTPResponseException as exc:
            outcome = Outcome.from_reply(exc.code, exc.message, name)
        else:
            outcome = Outcome.from_reply(reply.code, reply.message, name, dsn_passed=dsn)
        for rcpt in accepted:
            outcomes[rcpt.id] = outcome

    async def _reset(self) -> None:
        await self.smtp.rset()

    @property
    def usable(self) -> bool:
        return self.smtp.is_connected

    async def close(self) -> None:
        if self.smtp.is_connected:
            try:
                await self.smtp.quit(timeout=10)
            except (aiosmtplib.SMTPException, OSError):
                self.smtp.close()

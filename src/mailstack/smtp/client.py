"""One outbound SMTP connection carrying several messages to one host (RFC 5321).

Our own client on asyncio streams, with the protocol pieces (reply parsing,
commands) in `client_proto`, so that it can do what aiosmtplib does not:
PIPELINING (RFC 2920: MAIL, every RCPT and DATA in one write, the replies read
afterwards) and CHUNKING (RFC 3030: ``BDAT n LAST`` and the octets, no dot
stuffing). bench/smtp_relay measures the difference.

`Connection.open()` tries the host's addresses in turn, reads the greeting,
says EHLO (HELO if EHLO is refused) and upgrades with STARTTLS when the
server offers it: opportunistic TLS (RFC 7435), so the certificate is not
checked, and a failed handshake is retried once in clear, since the
alternative would be sending nothing. `Connection.send()` runs one mail
transaction and gives each recipient its `Outcome`:

* MAIL carries SIZE (RFC 1870), BODY=8BITMIME when the message has 8-bit
  octets (RFC 6152), SMTPUTF8 when it needs it (RFC 6531), RET and ENVID when
  the server speaks DSN (RFC 3461 §5.2); RCPT carries NOTIFY and ORCPT.
* A message that needs 8BITMIME or SMTPUTF8 is not sent to a server that
  lacks it: it fails with 5.6.3 or 5.6.7/5.6.9 (RFC 6531 §3.2, no downgrade).
* Timeouts follow RFC 5321 §4.5.3.2: five minutes for the greeting, MAIL and
  RCPT, two for the DATA reply, ten for the end of data.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mailstack.common.netguard import OutsideLoopback, check_destination
from mailstack.common.trace import SessionTrace, Tracer
from mailstack.delivery.status import Outcome
from mailstack.smtp.client_proto import (
    ClientReply,
    Host,
    ReplyError,
    ReplyReader,
    bdat,
    dot_stuff,
    extensions,
    mail_command,
    rcpt_command,
)
from mailstack.store import QueuedRecipient, QueueEntry

# RFC 5321 §4.5.3.2
GREETING_TIMEOUT = 300.0
MAIL_TIMEOUT = 300.0
RCPT_TIMEOUT = 300.0
DATA_INIT_TIMEOUT = 120.0
DATA_END_TIMEOUT = 600.0
QUIT_TIMEOUT = 10.0

READ_SIZE = 64 * 1024


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


class _TlsFailed(Exception):
    """The STARTTLS exchange failed; the caller tries again in clear (or, when
    TLS is required, gives up this address with ``outcome``)."""

    def __init__(self, outcome: Outcome | None = None) -> None:
        super().__init__(outcome.reply if outcome else "TLS failed")
        self.outcome = outcome


class _Lost(Exception):
    """The connection closed or timed out in the middle of an exchange."""


@dataclass(frozen=True, slots=True)
class TlsRule:
    """How a session with a destination uses TLS.

    * opportunistic (RFC 7435): STARTTLS when offered, certificate not
      checked, and in clear when TLS fails;
    * ``required``: no session without TLS (deferred, 4.7.5);
    * ``verify``: the certificate must be valid for the MX host's name;
    * ``report_only`` (MTA-STS testing, RFC 8461 §5): verify, but on failure
      go on as opportunistic, reporting what failed through ``report``.
    """

    required: bool = False
    verify: bool = False
    report_only: bool = False
    ca_file: str = ""
    # report(result_type, mx_host, address): a TLS-RPT failure (RFC 8460 §4.3).
    report: Callable[[str, str, str], None] | None = None
    name: str = "opportunistic"

    def attempts(self) -> list[tuple[bool, bool]]:
        """(use TLS, verify) for each try, in order."""
        if self.report_only:
            return [(True, True), (True, False), (False, False)]
        if self.required:
            return [(True, self.verify)]
        return [(True, False), (False, False)]


OPPORTUNISTIC = TlsRule()


def _tls_context(verify: bool = False, ca_file: str = "") -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_file or None)
    if not verify:
        # RFC 7435 opportunistic security: encrypt, but do not authenticate.
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def tls_result_type(exc: BaseException) -> str:
    """The TLS-RPT result type (RFC 8460 §4.3) of a failed verification."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = exc.verify_code
        if code == 10:  # X509_V_ERR_CERT_HAS_EXPIRED
            return "certificate-expired"
        if code == 62:  # X509_V_ERR_HOSTNAME_MISMATCH
            return "certificate-host-mismatch"
        if code in (18, 19, 20, 21):  # self-signed, no issuer
            return "certificate-not-trusted"
    return "validation-failure"


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
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        host: Host,
        address: str,
        trace: SessionTrace,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.host = host
        self.address = address
        self.trace = trace
        self.replies = ReplyReader()
        self.features: dict[str, str] = {}
        self.tls = False
        self.verified = False  # the certificate was valid for the host's name
        self.sent = 0
        self.chunking = True
        self._broken = False

    # -- opening ---------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        host: Host,
        *,
        port: int,
        helo: str,
        connect_timeout: float,
        tracer: Tracer | None = None,
        source: str | None = None,
        chunking: bool = True,
        tls: TlsRule = OPPORTUNISTIC,
    ) -> Connection:
        """A session with ``host``; its dialogue goes to ``tracer`` (``--trace``).
        ``source`` is the local address to send from (the node's own MX
        address, so that the SPF record naming it matches); ``chunking``
        false sends with DATA even where BDAT is offered; ``tls`` says how
        TLS is used (opportunistic unless a policy says more)."""
        tracer = tracer or Tracer()
        last = Outcome.temporary("4.4.1", f"no answer from {host.name}", host.name)
        for address in host.addresses:
            for use_tls, verify in tls.attempts():
                try:
                    connection = await cls._open(
                        host, address, port, helo, connect_timeout, use_tls, tracer, source,
                        verify=verify, rule=tls,
                    )  # fmt: skip
                    connection.chunking = chunking
                    return connection
                except _TlsFailed as exc:
                    if exc.outcome is not None:
                        last = exc.outcome
                        if tls.required:
                            break
                    continue
                except ConnectFailed as exc:
                    last = exc.outcome
                    break
        raise ConnectFailed(last)

    @classmethod
    async def _open(
        cls,
        host: Host,
        address: str,
        port: int,
        helo: str,
        timeout: float,
        use_tls: bool,
        tracer: Tracer,
        source: str | None = None,
        *,
        verify: bool = False,
        rule: TlsRule = OPPORTUNISTIC,
    ) -> Connection:
        try:
            # MAILSTACK_LOOPBACK_ONLY (tests, benchmarks, the lab): nothing leaves loopback.
            check_destination(address)
        except OutsideLoopback as exc:
            raise ConnectFailed(Outcome.temporary("4.4.1", str(exc), host.name)) from None
        local_addr = None
        if source and (":" in source) == (":" in address):
            local_addr = (source, 0)
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(address, port, limit=READ_SIZE, local_addr=local_addr),
                timeout,
            )
        except (OSError, TimeoutError):
            raise ConnectFailed(
                Outcome.temporary("4.4.1", f"cannot connect to {host.name} [{address}]", host.name)
            ) from None
        trace = tracer.session("smtp-out", f"{address}:{port}")
        trace.note(f"delivering to {host.name} [{address}]:{port}")
        connection = cls(reader, writer, host, address, trace)
        in_tls = False
        try:
            greeting = await connection._reply(GREETING_TIMEOUT)
            if greeting.code != 220:
                # RFC 5321 §3.1: a 554 greeting means "not here": try the next host.
                raise connection._refused(greeting)
            await connection._hello(helo)
            if use_tls and "STARTTLS" not in connection.features and (rule.required or verify):
                connection._report(rule, "starttls-not-supported")
                if rule.required:
                    raise ConnectFailed(
                        Outcome.temporary(
                            "4.7.5", f"{host.name} does not offer STARTTLS ({rule.name})", host.name
                        )
                    )
                raise _TlsFailed()
            if use_tls and "STARTTLS" in connection.features:
                reply = await connection._command(b"STARTTLS\r\n", MAIL_TIMEOUT)
                if reply.code == 220:
                    in_tls = True
                    context = _tls_context(verify, rule.ca_file)
                    await writer.start_tls(context, server_hostname=host.name)
                    connection.tls = True
                    connection.verified = verify
                    trace.note("TLS started" + (" (certificate verified)" if verify else ""))
                    # RFC 3207 §4.2: forget everything learnt before TLS.
                    connection.replies = ReplyReader()
                    await connection._hello(helo)
                elif rule.required:
                    connection._report(rule, "starttls-not-supported")
                    raise ConnectFailed(
                        Outcome.temporary(
                            "4.7.5", f"{host.name} refused STARTTLS ({rule.name})", host.name
                        )
                    )
        except ConnectFailed:
            connection._abort()
            raise
        except ssl.SSLCertVerificationError as exc:
            connection._abort()
            result = tls_result_type(exc)
            connection._report(rule, result)
            raise _TlsFailed(
                Outcome.temporary(
                    "4.7.5",
                    f"{host.name} [{address}]: certificate not valid ({result}; {rule.name})",
                    host.name,
                )
            ) from None
        except (_Lost, ReplyError, ssl.SSLError, OSError):
            connection._abort()
            if in_tls:
                if verify or rule.required:
                    connection._report(rule, "validation-failure")
                raise _TlsFailed(
                    Outcome.temporary(
                        "4.7.5", f"{host.name} [{address}]: TLS failed ({rule.name})", host.name
                    )
                    if rule.required
                    else None
                ) from None
            raise ConnectFailed(
                Outcome.temporary("4.4.2", f"{host.name} [{address}] broke the session", host.name)
            ) from None
        return connection

    def _report(self, rule: TlsRule, result: str) -> None:
        if rule.report is not None:
            rule.report(result, self.host.name, self.address)

    def _refused(self, reply: ClientReply) -> ConnectFailed:
        return ConnectFailed(
            Outcome.temporary(
                "4.4.1", f"{self.host.name} refused the session: {reply.code} {reply.text}",
                self.host.name,
            )
        )  # fmt: skip

    async def _hello(self, helo: str) -> None:
        reply = await self._command(f"EHLO {helo}\r\n".encode(), MAIL_TIMEOUT)
        if reply.code == 250:
            self.features = extensions(reply)
            return
        # RFC 5321 §3.2: a server that does not know EHLO still knows HELO.
        reply = await self._command(f"HELO {helo}\r\n".encode(), MAIL_TIMEOUT)
        if reply.code != 250:
            raise self._refused(reply)
        self.features = {}

    # -- the wire ----------------------------------------------------------------------

    async def _reply(self, timeout: float) -> ClientReply:
        # The timeout is for the whole reply: a server that trickles one octet
        # at a time does not hold the connection for longer.
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            reply = self.replies.next_reply()
            if reply is not None:
                if self.trace.enabled:
                    last = len(reply.lines) - 1
                    for i, line in enumerate(reply.lines):
                        self.trace.server(f"{reply.code}{' ' if i == last else '-'}{line}")
                return reply
            left = deadline - asyncio.get_running_loop().time()
            try:
                data = await asyncio.wait_for(self.reader.read(READ_SIZE), max(left, 0))
            except TimeoutError:
                raise _Lost() from None
            if not data:
                raise _Lost()
            self.replies.feed(data)

    def _send(self, data: bytes, *, body: bytes = b"") -> None:
        """Write commands (and a message after them, traced as a body)."""
        if data:
            self.trace.client(data)
        if body:
            self.trace.body(body)
        self.writer.write(data + body)

    async def _command(self, line: bytes, timeout: float) -> ClientReply:
        self._send(line)
        await self.writer.drain()
        return await self._reply(timeout)

    # -- one transaction ---------------------------------------------------------------

    async def send(self, delivery: Delivery) -> dict[int, Outcome]:
        """One mail transaction; an Outcome per recipient id.

        When the connection breaks, every recipient without a reply yet gets
        a temporary failure and the connection is no longer `usable`.
        """
        outcomes: dict[int, Outcome] = {}
        self.sent += 1
        try:
            await self._transaction(delivery, outcomes)
        except (_Lost, ReplyError, ssl.SSLError, OSError):
            self._abort()
            lost = Outcome.temporary(
                "4.4.2", f"connection to {self.host.name} lost", self.host.name
            )
            for rcpt in delivery.recipients:
                outcomes.setdefault(rcpt.id, lost)
        return outcomes

    def _outcome(self, reply: ClientReply, *, dsn_passed: bool = False) -> Outcome:
        return Outcome.from_reply(reply.code, reply.text, self.host.name, dsn_passed=dsn_passed)

    async def _transaction(self, delivery: Delivery, outcomes: dict[int, Outcome]) -> None:
        entry, data, features = delivery.entry, delivery.data, self.features
        name = self.host.name
        eight_bit = not data.isascii()
        utf8_code = needs_smtputf8(entry, delivery.recipients, data)
        if eight_bit and "8BITMIME" not in features:
            refusal = Outcome.permanent(
                "5.6.3", f"{name} does not accept 8-bit messages (no 8BITMIME)", name
            )
            outcomes.update((r.id, refusal) for r in delivery.recipients)
            return
        if utf8_code and "SMTPUTF8" not in features:
            refusal = Outcome.permanent(
                utf8_code, f"{name} does not support SMTPUTF8, which this message needs", name
            )
            outcomes.update((r.id, refusal) for r in delivery.recipients)
            return
        dsn = "DSN" in features
        params = [f"SIZE={len(data)}"] if "SIZE" in features else []
        if eight_bit:
            params.append("BODY=8BITMIME")
        if utf8_code:
            params.append("SMTPUTF8")
        if dsn and entry.ret:
            params.append(f"RET={entry.ret}")
        if dsn and entry.envid:
            params.append(f"ENVID={entry.envid}")
        commands = [mail_command(entry.mail_from, params)]
        for rcpt in delivery.recipients:
            rcpt_params = []
            if dsn and rcpt.notify:
                rcpt_params.append(f"NOTIFY={rcpt.notify}")
            if dsn and rcpt.orcpt:
                rcpt_params.append(f"ORCPT={rcpt.orcpt}")
            commands.append(rcpt_command(rcpt.address, rcpt_params))
        chunking = self.chunking and "CHUNKING" in features
        data_reply: ClientReply | None = None
        if "PIPELINING" in features:
            # RFC 2920 §3.1: MAIL, RCPTs and DATA may go in one group; DATA last.
            self._send(b"".join(commands) + (b"" if chunking else b"DATA\r\n"))
            await self.writer.drain()
            mail_reply = await self._reply(MAIL_TIMEOUT)
            rcpt_replies = [await self._reply(RCPT_TIMEOUT) for _ in delivery.recipients]
            if not chunking:
                data_reply = await self._reply(DATA_INIT_TIMEOUT)
        else:
            mail_reply = await self._command(commands[0], MAIL_TIMEOUT)
            if not mail_reply.positive:
                outcome = self._outcome(mail_reply)
                outcomes.update((r.id, outcome) for r in delivery.recipients)
                return
            rcpt_replies = [await self._command(c, RCPT_TIMEOUT) for c in commands[1:]]
        if not mail_reply.positive:
            outcome = self._outcome(mail_reply)
            outcomes.update((r.id, outcome) for r in delivery.recipients)
            await self._abandon(data_reply)
            return
        accepted = []
        for rcpt, reply in zip(delivery.recipients, rcpt_replies, strict=True):
            if reply.positive:
                accepted.append(rcpt)
            else:
                outcomes[rcpt.id] = self._outcome(reply)
        if not accepted:
            await self._abandon(data_reply)
            return
        if chunking:
            chunk = bdat(data)
            self._send(chunk[: len(chunk) - len(data)], body=data)
        else:
            if data_reply is None:
                data_reply = await self._command(b"DATA\r\n", DATA_INIT_TIMEOUT)
            if data_reply.code != 354:
                outcome = self._outcome(data_reply)
                outcomes.update((r.id, outcome) for r in accepted)
                await self._abandon(None)
                return
            self._send(b"", body=dot_stuff(data))
        await self.writer.drain()
        final = await self._reply(DATA_END_TIMEOUT)
        outcome = self._outcome(final, dsn_passed=dsn)
        outcomes.update((r.id, outcome) for r in accepted)

    async def _abandon(self, data_reply: ClientReply | None) -> None:
        """End a transaction that will send no message, and start afresh (RSET)."""
        if data_reply is not None and data_reply.code == 354:
            # The server took DATA although no recipient was accepted: send an
            # empty message to get back in step (RFC 2920 §3.1 allows this).
            await self._command(b".\r\n", DATA_END_TIMEOUT)
        await self._command(b"RSET\r\n", MAIL_TIMEOUT)

    # -- closing -----------------------------------------------------------------------

    @property
    def usable(self) -> bool:
        return not self._broken and not self.writer.is_closing()

    def _abort(self) -> None:
        self._broken = True
        self.writer.close()
        self.trace.close()

    async def close(self) -> None:
        if self._broken:
            return  # aborted: closed already
        if self.usable:
            with contextlib.suppress(_Lost, ReplyError, ssl.SSLError, OSError):
                await self._command(b"QUIT\r\n", QUIT_TIMEOUT)
        self._broken = True
        self.writer.close()
        self.trace.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), QUIT_TIMEOUT)

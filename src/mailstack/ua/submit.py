"""Send a composed message: to a submission server, or straight to the MX.

`submit` is the user agent's path (RFC 6409): STARTTLS (RFC 3207) or
implicit TLS (RFC 8314), AUTH (RFC 4954), one transaction. `deliver_direct`
is the lectures' sending server: for each recipient domain the MX hosts in
preference order (RFC 5321 §5.1), EHLO with the sender's domain
(``EHLO crepes.fr``), STARTTLS when the MX offers it (RFC 7435: not
verified, unless `--tls starttls` asks for it), then MAIL, RCPT and DATA.

Both give a `Report`: which recipients the server accepted and, for each it
refused, the reply (code, enhanced code, text). A message is never half
sent: the server took it for the accepted recipients (one DATA, one final
reply) or for none.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field

from mailstack.common.trace import Tracer
from mailstack.errors import MailstackError
from mailstack.ua.compose import Composed
from mailstack.ua.discover import Endpoint
from mailstack.ua.wire import ConnectError, TracedSMTP, failure

__all__ = ["Refusal", "Report", "deliver_direct", "submit"]


@dataclass(frozen=True, slots=True)
class Refusal:
    recipient: str
    reply: str  # "550 5.1.1 No such user here"


@dataclass(slots=True)
class Report:
    accepted: list[str] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)  # each server's final reply

    def refuse(self, recipients: Iterable[str], reply: str) -> None:
        self.refused += [Refusal(r, reply) for r in recipients]


def _reply(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {text.replace(chr(10), ' ')}"


def _transaction(
    client: TracedSMTP, composed: Composed, recipients: list[str], report: Report
) -> None:
    """MAIL, RCPT, DATA on an open session (smtplib sends DATA only when
    some recipient was accepted)."""
    try:
        refused = client.sendmail(composed.mail_from, recipients, composed.message)
    except smtplib.SMTPRecipientsRefused as exc:
        for recipient, (code, text) in exc.recipients.items():
            report.refused.append(Refusal(recipient, _reply(code, text)))
        return
    except smtplib.SMTPSenderRefused as exc:
        report.refuse(recipients, _reply(exc.smtp_code, exc.smtp_error))
        return
    except smtplib.SMTPDataError as exc:
        # The message was refused as a whole: no recipient has it.
        report.refuse(recipients, _reply(exc.smtp_code, exc.smtp_error))
        return
    for recipient, (code, text) in refused.items():
        report.refused.append(Refusal(recipient, _reply(code, text)))
    report.accepted += [r for r in recipients if r not in refused]
    report.replies.append(_reply(*client.last_reply))


def _start_tls(client: TracedSMTP, endpoint: Endpoint) -> None:
    client.ehlo()
    if endpoint.tls in ("starttls", "opportunistic"):
        if client.has_extn("starttls"):
            try:
                client.starttls()
            except ssl.SSLError:
                if endpoint.tls == "starttls":
                    raise
                # RFC 7435 §3: a sending server sends in clear rather than not at all.
                raise _RetryInClear() from None
            client.ehlo()
        elif endpoint.tls == "starttls":
            raise MailstackError(f"{endpoint} does not offer STARTTLS (--tls none sends in clear)")


def _login(client: TracedSMTP, endpoint: Endpoint, user: str, password: str) -> None:
    """One AUTH (RFC 4954) with the first of PLAIN, LOGIN the server offers:
    smtplib's login() would try each in turn, and a wrong password would
    count as several failures against the server's throttle."""
    offered = client.esmtp_features.get("auth", "").upper().split()
    mechanism = next((m for m in ("PLAIN", "LOGIN") if m in offered), None)
    if mechanism is None:
        raise MailstackError(f"{endpoint} offers no AUTH mechanism we speak (PLAIN, LOGIN)")
    client.user, client.password = user, password
    authobject = client.auth_plain if mechanism == "PLAIN" else client.auth_login
    client.auth(mechanism, authobject)


class _RetryInClear(Exception):
    """Opportunistic TLS failed in the handshake; the next try is in clear."""


def submit(
    composed: Composed,
    endpoints: list[Endpoint],
    *,
    user: str | None,
    password: str | None,
    context: ssl.SSLContext,
    helo: str,
    timeout: float,
    tracer: Tracer,
) -> Report:
    """Hand the message to the first submission server that takes a connection."""
    report = Report()
    last: MailstackError | None = None
    for endpoint in endpoints:
        trace = tracer.session("submission", str(endpoint), outbound=True)
        try:
            client = TracedSMTP(endpoint, helo=helo, timeout=timeout, trace=trace, context=context)
            code, text = client.open()
        except ConnectError as exc:
            last = exc
            continue  # RFC 6186 §3.1: the next server of the list
        except smtplib.SMTPServerDisconnected:
            hint = "" if endpoint.tls == "implicit" else " (implicit TLS? --tls implicit)"
            raise MailstackError(
                f"{endpoint} closed the connection before its greeting{hint}"
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise failure(endpoint, exc) from None
        try:
            if code != 220:
                raise MailstackError(f"{endpoint} refused the session: {_reply(code, text)}")
            _start_tls(client, endpoint)
            if user is not None:
                if not client.has_extn("auth"):
                    raise MailstackError(f"{endpoint} offers no AUTH here (TLS first?)")
                try:
                    _login(client, endpoint, user, password or "")
                except smtplib.SMTPAuthenticationError as exc:
                    raise MailstackError(
                        f"{endpoint} refused the login of {user}: "
                        f"{_reply(exc.smtp_code, exc.smtp_error)}"
                    ) from None
            _transaction(client, composed, composed.recipients, report)
            client.quit()
        except (OSError, smtplib.SMTPException, _RetryInClear) as exc:
            client.close()
            raise failure(endpoint, exc) from None
        except MailstackError:
            client.close()
            raise
        finally:
            trace.close()
        return report
    raise last or MailstackError("no submission server")


def _direct_to(
    composed: Composed,
    recipients: list[str],
    endpoints: list[Endpoint],
    *,
    context: ssl.SSLContext,
    helo: str,
    timeout: float,
    tracer: Tracer,
    report: Report,
) -> None:
    """One domain's recipients: the MX hosts in order until one takes the session."""
    last = "no mail exchanger"
    for endpoint in endpoints:
        tries = [endpoint]
        while tries:
            current = tries.pop()
            trace = tracer.session("smtp", str(current), outbound=True)
            client = TracedSMTP(current, helo=helo, timeout=timeout, trace=trace, context=context)
            try:
                code, text = client.open()
                if code != 220:
                    # RFC 5321 §3.1: a 554 greeting sends us to the next MX.
                    last = f"{current} refused the session: {_reply(code, text)}"
                    client.close()
                    continue
                _start_tls(client, current)
                _transaction(client, composed, recipients, report)
                client.quit()
                return
            except _RetryInClear:
                client.close()
                tries.append(Endpoint(current.name, current.addresses, current.port, "none"))
            except ConnectError as exc:
                last = str(exc)
            except (OSError, smtplib.SMTPException) as exc:
                client.close()
                last = str(failure(current, exc))
            finally:
                trace.close()
    report.refuse(recipients, f"451 4.4.1 {last}")


def deliver_direct(
    composed: Composed,
    routes: dict[str, list[Endpoint] | str],
    *,
    context: ssl.SSLContext,
    helo: str,
    timeout: float,
    tracer: Tracer,
) -> Report:
    """``routes`` maps each recipient domain to its MX endpoints, or to the
    reply that says why there are none."""
    report = Report()
    for domain, route in routes.items():
        recipients = [r for r in composed.recipients if r.rpartition("@")[2].lower() == domain]
        if isinstance(route, str):
            report.refuse(recipients, route)
            continue
        _direct_to(
            composed,
            recipients,
            route,
            context=context,
            helo=helo,
            timeout=timeout,
            tracer=tracer,
            report=report,
        )
    return report

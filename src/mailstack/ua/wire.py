"""smtplib, imaplib and poplib as the user agent uses them: traced, connected where told.

Each client is the standard library's, with two changes. It connects to the
addresses an `Endpoint` lists (found through mailstack's resolver, checked
against MAILSTACK_LOOPBACK_ONLY) while TLS verifies the endpoint's name; and
every line it sends or reads goes to a `SessionTrace` in the lectures' form
(``C: HELO crepes.fr`` / ``S: 250 Hello crepes.fr``). Credentials never reach
the trace: an SMTP AUTH line and every SASL answer after it, IMAP LOGIN's
arguments and POP3 PASS are shown as ``<credentials elided>``. A message's
text, an IMAP literal and a POP3 multi-line answer are shortened the way the
node's own trace shortens them.

`tls_context` is the context for a verified connection (`--ca-file`, or the
system's CAs) or, with `--insecure`, an unverified one; `failure` turns what
the clients raise into one line for the user.
"""

from __future__ import annotations

import imaplib
import poplib
import smtplib
import socket
import ssl
from pathlib import Path
from typing import Any

from mailstack.common.netguard import OutsideLoopback, check_destination
from mailstack.common.trace import BODY_LINES_SHOWN, SessionTrace
from mailstack.errors import MailstackError
from mailstack.ua.discover import Endpoint

__all__ = [
    "ELIDED",
    "ConnectError",
    "TracedIMAP",
    "TracedPOP3",
    "TracedSMTP",
    "failure",
    "open_socket",
    "tls_context",
]

ELIDED = "<credentials elided>"
DEFAULT_TIMEOUT = 30.0


class ConnectError(MailstackError):
    """No address of the server took the connection."""


def tls_context(ca_file: Path | None, insecure: bool) -> ssl.SSLContext:
    """Verify the server's certificate and name (against ``ca_file`` or the
    system's CAs), or, when ``insecure``, encrypt without checking."""
    if insecure:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    try:
        return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except FileNotFoundError:
        raise MailstackError(f"--ca-file {ca_file}: no such file") from None
    except (OSError, ssl.SSLError) as exc:
        raise MailstackError(f"--ca-file {ca_file}: not a PEM certificate ({exc})") from None


def open_socket(endpoint: Endpoint, timeout: float) -> socket.socket:
    """A TCP connection to the first of the endpoint's addresses that answers."""
    reason = "no address"
    for address in endpoint.addresses:
        try:
            check_destination(address)
            return socket.create_connection((address, endpoint.port), timeout)
        except OutsideLoopback as exc:
            reason = str(exc)
        except TimeoutError:
            reason = "timed out"
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
    raise ConnectError(f"cannot connect to {endpoint}: {reason}")


def failure(endpoint: Endpoint, exc: BaseException) -> MailstackError:
    """One line for what went wrong talking to ``endpoint``."""
    if isinstance(exc, MailstackError):
        return exc
    if isinstance(exc, ssl.SSLCertVerificationError):
        return MailstackError(
            f"the certificate of {endpoint.name} does not verify: {exc.verify_message}"
            " (use --ca-file PEM, or --insecure)"
        )
    if isinstance(exc, ssl.SSLError):
        return MailstackError(f"TLS with {endpoint} failed: {exc.reason or exc}")
    if isinstance(exc, TimeoutError | socket.timeout):
        return MailstackError(f"{endpoint} did not answer in time")
    if isinstance(exc, smtplib.SMTPServerDisconnected | EOFError | ConnectionError):
        return MailstackError(f"{endpoint} closed the connection")
    if isinstance(exc, smtplib.SMTPResponseException):
        text = _line(exc.smtp_error).replace("\n", " ")
        return MailstackError(f"{endpoint} refused: {exc.smtp_code} {text}")
    if isinstance(exc, imaplib.IMAP4.error | poplib.error_proto):
        return MailstackError(f"{endpoint}: {_text(exc)}")
    if isinstance(exc, OSError):
        return MailstackError(f"{endpoint}: {exc.strerror or type(exc).__name__}")
    return MailstackError(f"{endpoint}: {type(exc).__name__}")


class _Endpointed:
    """What the three clients share: where they connect, their trace, their TLS."""

    endpoint: Endpoint
    trace: SessionTrace
    context: ssl.SSLContext

    def _attach(self, endpoint: Endpoint, trace: SessionTrace, context: ssl.SSLContext) -> None:
        self.endpoint = endpoint
        self.trace = trace
        self.context = context

    def _tcp(self, timeout: float | None) -> socket.socket:
        """The connection the library asks for: to the endpoint's addresses,
        in TLS from the first octet for implicit TLS (RFC 8314 §3)."""
        sock = open_socket(self.endpoint, timeout or DEFAULT_TIMEOUT)
        if self.endpoint.tls == "implicit":
            sock = self.context.wrap_socket(sock, server_hostname=self.endpoint.name)
            self.trace.note("TLS started")
        return sock


def _text(exc: BaseException) -> str:
    value = exc.args[0] if exc.args else exc
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _line(data: bytes | str) -> str:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    return text.rstrip("\r\n")


# -- SMTP ----------------------------------------------------------------------------


class TracedSMTP(_Endpointed, smtplib.SMTP):
    """smtplib.SMTP with the trace; ``endpoint.tls == "implicit"`` starts in TLS."""

    # Verbs as RFC 5321 writes them (smtplib writes them in lower case).
    ehlo_msg = "EHLO"

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        helo: str,
        timeout: float,
        trace: SessionTrace,
        context: ssl.SSLContext,
    ) -> None:
        self._attach(endpoint, trace, context)
        self.last_reply: tuple[int, str] = (0, "")
        self._secret = False  # the next client lines answer an AUTH challenge
        self._body_next = False  # the next write is the message text (after 354)
        super().__init__(local_hostname=helo, timeout=timeout)
        self._host = endpoint.name  # what STARTTLS verifies

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return self._tcp(timeout)

    def open(self) -> tuple[int, bytes]:
        return self.connect(self.endpoint.name, self.endpoint.port)

    def putcmd(self, cmd: str, args: str = "") -> None:
        super().putcmd(cmd.upper(), args)

    def send(self, s: bytes | str) -> None:  # type: ignore[override]
        data = s.encode(self.command_encoding) if isinstance(s, str) else s
        if self._body_next:
            self._body_next = False
            text = data[: -len(b".\r\n")] if data.endswith(b"\r\n.\r\n") else data
            self.trace.body(text)
            self.trace.client(".")
        elif self._secret:
            self.trace.client(ELIDED)
        else:
            line = _line(data)
            words = line.split()
            if words and words[0].upper() == "AUTH":
                self._secret = True
                if len(words) > 2:
                    line = f"{words[0]} {words[1]} {ELIDED}"
            self.trace.client(line)
        super().send(data)

    def getreply(self) -> tuple[int, bytes]:
        code, message = super().getreply()
        lines = message.decode("utf-8", "replace").split("\n")
        for i, text in enumerate(lines):
            self.trace.server(f"{code}{' ' if i == len(lines) - 1 else '-'}{text}")
        self.last_reply = (code, " ".join(lines))
        if code != 334:
            self._secret = False
        if code == 354:
            self._body_next = True
        return code, message

    def starttls(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        reply = super().starttls(context=self.context)
        self.trace.note("TLS started")
        return reply


# -- IMAP ----------------------------------------------------------------------------


class TracedIMAP(_Endpointed, imaplib.IMAP4):
    """imaplib.IMAP4 with the trace; ``endpoint.tls == "implicit"`` starts in TLS."""

    def __init__(
        self, endpoint: Endpoint, *, timeout: float, trace: SessionTrace, context: ssl.SSLContext
    ) -> None:
        self._attach(endpoint, trace, context)
        super().__init__(endpoint.name, endpoint.port, timeout)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        return self._tcp(timeout)

    def send(self, data: Any) -> None:
        line = _line(bytes(data))
        words = line.split(" ", 2)
        if len(words) == 3 and words[1].upper() == "LOGIN":
            line = f"{words[0]} LOGIN {ELIDED}"
        for text in line.split("\r\n"):
            self.trace.client(text)
        super().send(data)

    def readline(self) -> bytes:
        line = super().readline()
        self.trace.server(_line(line))
        return line

    def read(self, size: int) -> bytes:
        data = super().read(size)
        self.trace.server(f"... ({size} octets)")
        return data

    def starttls(self, ssl_context: Any = None) -> Any:
        reply = super().starttls(self.context)
        self.trace.note("TLS started")
        return reply


# -- POP3 ----------------------------------------------------------------------------

# Commands whose +OK opens a multi-line answer (RFC 1939 §3, RFC 2449 §5);
# LIST and UIDL only without an argument.
_MULTILINE = frozenset({"RETR", "TOP", "CAPA"})
_MULTILINE_BARE = frozenset({"LIST", "UIDL"})


class TracedPOP3(_Endpointed, poplib.POP3):
    """poplib.POP3 with the trace; ``endpoint.tls == "implicit"`` starts in TLS."""

    def __init__(
        self, endpoint: Endpoint, *, timeout: float, trace: SessionTrace, context: ssl.SSLContext
    ) -> None:
        self._attach(endpoint, trace, context)
        self._multiline_next = False
        self._body_lines: int | None = None  # lines of a multi-line answer so far
        super().__init__(endpoint.name, endpoint.port, timeout)

    def _create_socket(self, timeout: float) -> socket.socket:
        return self._tcp(timeout)

    def _putline(self, line: bytes) -> None:
        text = _line(line)
        words = text.split()
        verb = words[0].upper() if words else ""
        if verb in ("PASS", "APOP", "AUTH") and len(words) > 1:
            text = f"{words[0]} {ELIDED}"
        self._multiline_next = verb in _MULTILINE or (verb in _MULTILINE_BARE and len(words) == 1)
        self.trace.client(text)
        super()._putline(line)  # type: ignore[misc]

    def _getline(self) -> tuple[bytes, int]:
        line, octets = super()._getline()  # type: ignore[misc]
        if self._body_lines is None:
            self.trace.server(_line(line))
            if self._multiline_next and line.startswith(b"+OK"):
                self._body_lines = 0
            self._multiline_next = False
        elif line == b".":
            hidden = self._body_lines - BODY_LINES_SHOWN
            if hidden > 0:
                self.trace.server(f"... ({hidden} more lines)")
            self.trace.server(".")
            self._body_lines = None
        else:
            self._body_lines += 1
            if self._body_lines <= BODY_LINES_SHOWN:
                self.trace.server(_line(line))
        return line, octets

    def stls(self, context: Any = None) -> bytes:
        reply = super().stls(self.context)
        self.trace.note("TLS started")
        return reply

"""The SMTP server protocol as a state machine without I/O.

Implements the server side of RFC 5321 (SMTP) with RFC 1870 SIZE, RFC 2920
PIPELINING, RFC 6152 8BITMIME, RFC 6531 SMTPUTF8, RFC 3030 CHUNKING (BDAT),
RFC 2034 / RFC 3463 ENHANCEDSTATUSCODES, RFC 3207 STARTTLS, RFC 3461 DSN
(parameters only), RFC 4954 AUTH (the exchange; the SASL mechanisms are the
server's) and RFC 4468 BURL (the command; the server fetches the URL).

The shape is h11's: the server feeds bytes with ``receive_data``, asks for
``next_event`` until ``NeedData``, answers the events that need a decision with
``respond`` and sends ``data_to_send`` after every round::

    p = SmtpServerProtocol(hostname="hamburger.edu", limits=Limits())
    send(p.greeting())
    while True:
        p.receive_data(recv())
        while not isinstance(event := p.next_event(), (NeedData, Pending)):
            ...                       # MailFrom, RcptTo, MessageComplete: p.respond(...)
        send(p.data_to_send())

Everything else (EHLO, RSET, NOOP, VRFY, HELP, syntax and sequence errors,
limits) the machine answers by itself. Commands are only parsed while no
decision is pending, so replies leave in command order (RFC 2920 §3.1).

Policies worth knowing:

* SMTP smuggling. Only ``CRLF . CRLF`` ends DATA. A message that contains a
  bare CR or a bare LF anywhere (which covers ``LF . LF``, ``CR . LF`` and
  ``LF . CRLF``) is refused whole at its real end with
  ``554 5.6.0 Message contains bare CR or LF``; the session stays in sync.
  The same check runs on a BDAT message once its chunks are assembled.
* Message size: counted while data arrives; past ``Limits.message_size`` the
  rest is discarded (never buffered) and the end of data is answered
  ``552 5.3.4``. A BDAT chunk that would cross the limit is discarded and
  answered ``552 5.3.4``, which ends the transaction.
* Lines: a command line longer than ``Limits.smtp_command_line`` octets
  (terminator included) is answered ``500 5.5.2 Line too long`` and skipped up
  to its LF; every further ``smtp_command_line`` octets of it count as another
  error, unanswered. An AUTH command and its response lines may have
  ``Limits.smtp_sasl_line`` octets (RFC 4954 §4: 12,288). Command lines may
  end in a bare LF (interactive ``nc``); DATA lines may not (see above).
* ``Limits.errors_per_session``: every 5xx reply the machine itself gives
  (the peer's syntax and sequence errors, refused parameters, refused
  messages) counts; at the limit the session is closed with ``421 4.7.0``.
  Refusals the server gives through ``respond`` do not count; a ``421``
  given through ``respond`` closes the session (RFC 5321 §3.8).
* BURL (``burl=True``, after AUTH): ``BURL url [LAST]`` is a ``BurlFetch``
  event; the server fetches the URL and answers with ``burl_fetched(data)``,
  which the machine takes as a BDAT chunk of those octets (so BURL and BDAT
  mix, RFC 4468 §3), or refuses it with ``respond``, which ends the
  transaction like a failed BDAT chunk (RFC 3030 §2).
* ``Limits.commands_before_mail``: commands other than MAIL, RCPT, DATA and
  BDAT since the last accepted MAIL; past the limit, ``421 4.7.0`` and close.
"""

from __future__ import annotations

import binascii
import enum
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from mailstack.common.lines import LineBuffer, LineTooLong, NeedData
from mailstack.errors import MailstackError, SmtpError
from mailstack.limits import Limits
from mailstack.smtp import replies as R
from mailstack.smtp.address import AddressError, is_xtext, parse_esmtp_params, parse_path
from mailstack.smtp.replies import Reply

__all__ = [
    "SmtpServerProtocol",
    "Reply",
    "State",
    "LocalProtocolError",
    "NeedData",
    "Pending",
    "MailFrom",
    "RcptTo",
    "MessageComplete",
    "MessageData",
    "StartTls",
    "AuthRequest",
    "AuthResponse",
    "BurlFetch",
    "Quit",
    "Close",
]


class LocalProtocolError(MailstackError):
    """The server called the protocol out of turn (a bug in the caller)."""


# ---------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class Pending(NeedData):
    """An event awaits the server's respond() (or a STARTTLS its tls_started()).

    A NeedData to a driver: nothing more is decided until then.
    """


@dataclass(frozen=True, slots=True)
class MailFrom:
    """MAIL FROM passed syntax, state and parameter checks; ``address`` is "" for <>."""

    address: str
    params: dict[str, str | None]


@dataclass(frozen=True, slots=True)
class RcptTo:
    """RCPT TO passed syntax, state, count and parameter checks."""

    address: str
    params: dict[str, str | None]


@dataclass(frozen=True, slots=True)
class MessageComplete:
    """A whole message (DATA unstuffed, or BDAT chunks joined) for the accepted
    rcpts; with ``stream_data``, ``data`` is what came after the last
    MessageData."""

    mail_from: str
    rcpt_to: list[str]
    data: bytes
    mail_params: dict[str, str | None]
    rcpt_params: list[dict[str, str | None]]
    helo: str
    esmtp: bool
    tls: bool = False
    auth_identity: str | None = None
    streamed: bool = False  # MessageData of this message came before


@dataclass(frozen=True, slots=True)
class MessageData:
    """Message octets as they arrive (DATA unstuffed, BDAT as sent), handed
    up only by a machine made with ``stream_data``: the server spools them,
    and the MessageComplete that ends the message carries only the octets
    after the last of these. ``first`` starts a new message: whatever the
    server kept of an earlier one (refused, or never finished) is dropped."""

    data: bytes
    first: bool


@dataclass(frozen=True, slots=True)
class BurlFetch:
    """BURL (RFC 4468 §3): the server fetches ``url`` and answers with
    ``burl_fetched(data)`` or refuses with ``respond``."""

    url: str
    last: bool


@dataclass(frozen=True, slots=True)
class StartTls:
    """220 is queued: flush, upgrade the transport, then call tls_started()."""


@dataclass(frozen=True, slots=True)
class AuthRequest:
    """AUTH <mechanism> [initial-response]; ``initial`` is None when absent.

    The server runs the SASL mechanism and answers with ``auth_challenge(bytes)``
    (a 334 continuation; the client's answer comes back as ``AuthResponse``) or
    with ``respond(Reply)`` to finish: 235 after calling ``authenticated()``,
    or a 535 refusal.
    """

    mechanism: str
    initial: bytes | None


@dataclass(frozen=True, slots=True)
class AuthResponse:
    """The client's decoded answer to a 334 challenge (RFC 4954 §4)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Quit:
    """221 is queued: flush and close."""


@dataclass(frozen=True, slots=True)
class Close:
    """Flush whatever is queued, then close the connection."""

    reason: str


_DECIDED = (MailFrom, RcptTo, MessageComplete, AuthRequest, AuthResponse, BurlFetch)
_NEED_DATA = NeedData()
_PENDING = Pending()


# ---------------------------------------------------------------- states


class State(enum.Enum):
    INIT = "init"  # greeted; no EHLO/HELO yet
    READY = "ready"  # EHLO/HELO done, no transaction
    MAIL = "mail"  # MAIL accepted, no recipient accepted yet
    RCPT = "rcpt"  # at least one recipient accepted
    BDAT = "bdat"  # BDAT chunks accepted, waiting for more (RFC 3030 §2)
    DATA = "data"  # reading DATA text up to CRLF.CRLF
    CHUNK = "chunk"  # reading the octets of a BDAT chunk
    AUTH = "auth"  # waiting for the client's answer to a 334
    TLS = "tls"  # STARTTLS accepted, waiting for tls_started()
    CLOSED = "closed"


_ANYTIME = frozenset({"EHLO", "HELO", "RSET", "NOOP", "QUIT", "VRFY", "HELP"})

# The one table of which command may run in which state. A command missing here
# gets the reply of _REFUSALS (or 503 5.5.1), checked in one place: _command().
ALLOWED: dict[State, frozenset[str]] = {
    State.INIT: _ANYTIME,
    State.READY: _ANYTIME | {"MAIL", "STARTTLS", "AUTH"},
    State.MAIL: _ANYTIME | {"RCPT"},
    State.RCPT: _ANYTIME | {"RCPT", "DATA", "BDAT", "BURL"},
    State.BDAT: _ANYTIME | {"BDAT", "BURL"},
}

_TRANSACTION = (State.MAIL, State.RCPT, State.BDAT)
_REFUSALS: dict[tuple[State, str], Reply] = {
    **{
        (State.INIT, verb): R.SEND_HELO_FIRST
        for verb in ("MAIL", "RCPT", "DATA", "BDAT", "BURL")
    },
    **{(State.INIT, verb): R.SEND_HELO_FIRST for verb in ("STARTTLS", "AUTH")},
    (State.READY, "RCPT"): R.NEED_MAIL,
    (State.READY, "DATA"): R.NEED_MAIL,
    (State.READY, "BDAT"): R.NEED_MAIL,
    (State.READY, "BURL"): R.NEED_MAIL,
    # RFC 5321 §3.3: DATA when every RCPT was refused: "554 no valid recipients".
    (State.MAIL, "DATA"): R.NO_VALID_RECIPIENTS,
    (State.MAIL, "BDAT"): R.NO_VALID_RECIPIENTS,
    (State.MAIL, "BURL"): R.NO_VALID_RECIPIENTS,
    (State.BDAT, "DATA"): R.DATA_AFTER_BDAT,
    (State.BDAT, "RCPT"): R.RCPT_AFTER_BDAT,
    **{(state, "MAIL"): R.NESTED_MAIL for state in _TRANSACTION},
    # RFC 3207 §4 and RFC 4954 §4: neither during a mail transaction.
    **{(state, "STARTTLS"): R.IN_TRANSACTION for state in _TRANSACTION},
    **{(state, "AUTH"): R.IN_TRANSACTION for state in _TRANSACTION},
}

_KNOWN = frozenset().union(*ALLOWED.values())
_NOT_COUNTED = frozenset({"MAIL", "RCPT", "DATA", "BDAT", "BURL", "QUIT"})
_DATA_END = b"\r\n.\r\n"
# DATA octets buffered before they are taken in a piece (or handed up).
DATA_PIECE = 64 * 1024


@dataclass(slots=True)
class _Transaction:
    mail_from: str = ""
    mail_params: dict[str, str | None] = field(default_factory=dict)
    smtputf8: bool = False
    rcpt_to: list[str] = field(default_factory=list)
    rcpt_params: list[dict[str, str | None]] = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=list)  # held here without stream_data
    size: int = 0  # octets received (DATA as sent, dot-stuffed)
    handed_up: bool = False  # a MessageData of this message went to the server
    line_ends: _LineEnds = field(default_factory=lambda: _LineEnds())


# ---------------------------------------------------------------- the machine


class SmtpServerProtocol:
    """One SMTP server session, bytes in, events and reply bytes out."""

    def __init__(
        self,
        *,
        hostname: str,
        limits: Limits | None = None,
        tls_available: bool = False,
        tls_active: bool = False,
        auth_mechanisms: tuple[str, ...] = (),
        require_auth: bool = False,
        require_tls_for_auth: bool = True,
        submission: bool = False,
        dsn: bool = True,
        stream_data: bool = False,
        burl: bool = False,
    ) -> None:
        """Options, all keyword-only.

        ``tls_available``/``tls_active``: STARTTLS is offered while TLS is
        available and not yet active (implicit TLS starts active).
        ``auth_mechanisms``: SASL mechanisms to offer (empty on the MX port, where
        AUTH is then 502). They are offered, and AUTH accepted, only under TLS
        unless ``require_tls_for_auth`` is false. ``require_auth``: MAIL gets
        ``530 5.7.0`` until ``authenticated()`` (RFC 4954 §6). ``submission``:
        the session is an RFC 6409 MSA session; the machine only records it, the
        submission policy is the server's. ``dsn``: offer and accept the RFC 3461
        parameters (otherwise they get 555 like any unknown parameter).
        ``stream_data``: hand message octets up as ``MessageData`` while they
        arrive instead of holding them until the end (the server spools them).
        ``burl``: offer BURL (RFC 4468) to a session that has logged in.
        """
        self.hostname = hostname
        self.limits = limits or Limits()
        self.tls_available = tls_available
        self.tls_active = tls_active
        self.auth_mechanisms = tuple(m.upper() for m in auth_mechanisms)
        self.require_auth = require_auth
        self.require_tls_for_auth = require_tls_for_auth
        self.submission = submission
        self.dsn = dsn
        self.stream_data = stream_data
        self.burl = burl
        self.helo = ""
        self.esmtp = False
        self.auth_identity: str | None = None
        self.state = State.INIT
        # Command lines; DATA and BDAT octets are read from its buffer in place.
        self._lines = LineBuffer(self.limits.smtp_command_line)
        self._out: list[bytes] = []
        self._eof = False
        self._pending: object | None = None
        self._close_reason = ""
        self._tx = _Transaction()
        self._errors = 0
        self._commands = 0
        # DATA: where the next search for CRLF.CRLF starts.
        self._scan_from = 0
        # BDAT: octets of the current chunk still to read, and its outcome.
        self._chunk_left = 0
        self._chunk_last = False
        self._chunk_refusal: Reply | None = None
        self._resume_state = State.INIT
        # Events made while answering one (a BURL's chunk), given out next.
        self._queued: list[object] = []
        self._handlers: dict[str, Callable[[str], object | None]] = {
            "EHLO": self._ehlo,
            "HELO": self._helo,
            "MAIL": self._mail,
            "RCPT": self._rcpt,
            "DATA": self._data,
            "BDAT": self._bdat,
            "BURL": self._burl,
            "RSET": self._rset,
            "NOOP": self._noop,
            "QUIT": self._quit,
            "VRFY": self._vrfy,
            "HELP": self._help,
            "STARTTLS": self._starttls,
            "AUTH": self._auth,
        }

    # ------------------------------------------------------------ public API

    def greeting(self) -> bytes:
        # RFC 5321 §4.3.1 and RFC 2034 §4: the greeting has no enhanced code.
        return f"220 {self.hostname} ESMTP mailstack\r\n".encode()

    def receive_data(self, data: bytes) -> None:
        """Bytes from the peer; ``b""`` means end of file."""
        if not data:
            self._eof = True
        elif self.state is State.TLS or self.state is State.CLOSED:
            # RFC 3207 §4.2 / CVE-2011-0411: nothing sent in clear after STARTTLS
            # may be taken as a command once TLS is up.
            return
        else:
            self._lines.feed(data)

    @property
    def pending_event(self) -> object | None:
        """The event that awaits respond() or auth_challenge(), if any."""
        return self._pending

    @property
    def buffered(self) -> int:
        """Octets received and held; bounded by the limits whatever the peer sends."""
        return self._lines.pending + sum(len(chunk) for chunk in self._tx.chunks)

    def data_to_send(self) -> bytes:
        out = b"".join(self._out)
        self._out.clear()
        return out

    def next_event(self) -> object:
        if self._pending is not None or self.state is State.TLS:
            return _PENDING
        if self._queued:
            queued = self._queued.pop(0)
            if isinstance(queued, _DECIDED):
                self._pending = queued
            return queued
        while True:
            state = self.state
            if state is State.CLOSED:
                return Close(self._close_reason)
            if state is State.DATA:
                event = self._read_data()
            elif state is State.CHUNK:
                event = self._read_chunk()
            else:
                event = self._read_line()
            if event is None:
                continue
            if event is _NEED_DATA and self._eof:
                return self._close("connection closed by peer")
            if isinstance(event, _DECIDED):
                self._pending = event
            return event

    def respond(self, reply: Reply | SmtpError) -> None:
        """Answer the pending MailFrom, RcptTo, MessageComplete or AUTH exchange."""
        event = self._pending
        if event is None:
            raise LocalProtocolError("respond() without a pending event")
        if isinstance(reply, SmtpError):
            reply = Reply.from_error(reply)
        self._pending = None
        self._send(reply)
        if reply.code == 421:
            # RFC 5321 §3.8: 421 is said when the server closes the channel.
            self._close(f"closed by the server: {reply.text}")
            return
        positive = reply.is_positive
        tx = self._tx
        if isinstance(event, MailFrom):
            if positive:
                tx.mail_from = event.address
                tx.mail_params = event.params
                tx.smtputf8 = "SMTPUTF8" in event.params
                self.state = State.MAIL
                self._commands = 0
        elif isinstance(event, RcptTo):
            if positive:
                tx.rcpt_to.append(event.address)
                tx.rcpt_params.append(event.params)
                self.state = State.RCPT
        elif isinstance(event, MessageComplete):
            # RFC 5321 §4.1.1.4: whatever the reply, the transaction is over.
            self._reset_transaction()
        elif isinstance(event, BurlFetch):
            if positive:
                raise LocalProtocolError("a BURL is accepted with burl_fetched()")
            # RFC 3030 §2 (RFC 4468 §3: BURL as BDAT): a failed chunk fails
            # the whole transaction.
            self._reset_transaction()
        elif self.state is State.AUTH:
            self.state = State.READY

    def burl_fetched(self, data: bytes) -> None:
        """Answer the pending BurlFetch with the octets its URL names: they
        are the next chunk of the message (RFC 4468 §3)."""
        event = self._pending
        if not isinstance(event, BurlFetch):
            raise LocalProtocolError("burl_fetched() without a pending BURL")
        self._pending = None
        tx = self._tx
        if tx.size + len(data) > self.limits.message_size:
            self._reset_transaction()
            self._send(R.TOO_BIG)
            return
        tx.size += len(data)
        tx.line_ends.feed(data, last=event.last)
        self.state = State.BDAT
        if not event.last:
            self._send(Reply(250, "2.5.0", f"{tx.size} octets received"))
            handed = self._hand_up(data)
            if handed is not None:
                self._queued.append(handed)
            return
        if tx.line_ends.bare:
            self._reset_transaction()
            self._send(R.BARE_CR_LF)
            return
        self._queued.append(self._complete(self._message_data(data)))

    def auth_challenge(self, challenge: bytes) -> None:
        """Send a 334 continuation for the pending AUTH exchange (RFC 4954 §4)."""
        if not isinstance(self._pending, AuthRequest | AuthResponse):
            raise LocalProtocolError("auth_challenge() without an AUTH exchange")
        self._pending = None
        self._out.append(b"334 " + binascii.b2a_base64(challenge, newline=False) + b"\r\n")
        self.state = State.AUTH

    def authenticated(self, identity: str) -> None:
        """Record the authenticated identity (call before responding 235)."""
        self.auth_identity = identity

    def tls_started(self) -> None:
        """The transport is now TLS: forget all that was said in clear (RFC 3207 §4.2)."""
        if self.state is not State.TLS:
            raise LocalProtocolError("tls_started() without STARTTLS")
        self._lines.clear()
        self.tls_active = True
        self.helo = ""
        self.esmtp = False
        self.auth_identity = None
        self._tx = _Transaction()
        self.state = State.INIT

    def timed_out(self) -> Close:
        """The client was idle too long: 421 queued, and the session closes.

        RFC 5321 §4.5.3.2.7: a server may close a session idle past its timeout.
        """
        self._out.append(f"421 4.4.2 {self.hostname} Timeout, closing connection\r\n".encode())
        return self._close("idle timeout")

    # ------------------------------------------------------------ plumbing

    def _send(self, reply: Reply) -> None:
        self._out.append(reply.wire)

    def _refuse(self, reply: Reply) -> Close | None:
        """Send a refusal made by the machine itself; 5xx ones count as errors."""
        self._send(reply)
        if reply.code >= 500:
            return self._count_error()
        return None

    def _count_error(self) -> Close | None:
        self._errors += 1
        if self._errors >= self.limits.errors_per_session:
            return self._shut_down("Too many errors", "too many errors")
        return None

    def _shut_down(self, text: str, reason: str) -> Close:
        # RFC 5321 §3.8: 421 when the server must close the transmission channel.
        self._send(Reply(421, "4.7.0", f"{self.hostname} {text}, closing connection"))
        return self._close(reason)

    def _close(self, reason: str) -> Close:
        self.state = State.CLOSED
        self._close_reason = reason
        self._lines.clear()
        return Close(reason)

    def _reset_transaction(self) -> None:
        self._tx = _Transaction()
        self.state = State.READY if self.helo else State.INIT

    # ------------------------------------------------------------ commands

    def _line_limit(self) -> int:
        """The limit of the next line (0: ``smtp_command_line``). RFC 4954 §4:
        an AUTH command with its initial response, and each response line,
        may be 12,288 octets, more than a command line."""
        if self.auth_mechanisms and (
            self.state is State.AUTH or self._lines.buffer[:5].upper() == b"AUTH "
        ):
            return max(self.limits.smtp_sasl_line, self.limits.smtp_command_line)
        return 0

    def _read_line(self) -> object | None:
        try:
            raw = self._lines.next_line(self._line_limit())
        except LineTooLong as exc:
            # RFC 5321 §4.5.3.1.4: "500 Line too long"; the framer skips to
            # the line's end. Each further limit's worth of it is an error
            # too, unanswered (one reply per line): an endless line ends in 421.
            if exc.again:
                return self._count_error()
            if self.state is State.AUTH:
                self.state = State.READY
            return self._refuse(R.LINE_TOO_LONG)
        if raw is None:
            return _NEED_DATA
        raw = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]
        try:
            line = raw.decode()
        except UnicodeDecodeError:
            return self._refuse(R.BAD_UTF8)
        if self.state is State.AUTH:
            return self._auth_line(line)
        return self._command(line)

    def _command(self, line: str) -> object | None:
        verb, _, arg = line.partition(" ")
        verb = verb.upper()
        if verb not in _KNOWN or (verb == "BURL" and not self._burl_offered()):
            return self._refuse(R.UNKNOWN_COMMAND)
        if verb not in _NOT_COUNTED:
            self._commands += 1
            if self._commands > self.limits.commands_before_mail:
                return self._shut_down("Too many commands", "too many commands before MAIL")
        if verb not in ALLOWED[self.state]:
            if verb == "BDAT":
                return self._bdat_refused(arg, _REFUSALS.get((self.state, verb), R.BAD_SEQUENCE))
            return self._refuse(_REFUSALS.get((self.state, verb), R.BAD_SEQUENCE))
        return self._handlers[verb](arg.strip(" "))

    def _ehlo(self, arg: str) -> object | None:
        return self._greet(arg, esmtp=True)

    def _helo(self, arg: str) -> object | None:
        return self._greet(arg, esmtp=False)

    def _greet(self, arg: str, *, esmtp: bool) -> object | None:
        domain = arg.split(" ", 1)[0]
        if not domain:
            return self._refuse(R.HELO_SYNTAX)
        # RFC 5321 §4.1.4: EHLO/HELO later in a session is an implicit RSET.
        self.helo = domain
        self.esmtp = esmtp
        self._reset_transaction()
        greet = f"{self.hostname} Hello {domain}, pleased to meet you"
        if not esmtp:
            self._out.append(f"250 {greet}\r\n".encode())
            return None
        self._send(Reply(250, "", (greet, *self._extensions())))
        return None

    def _extensions(self) -> list[str]:
        ext = [
            "PIPELINING",
            f"SIZE {self.limits.message_size}",
            "8BITMIME",
            "SMTPUTF8",
            "CHUNKING",
            "ENHANCEDSTATUSCODES",
        ]
        if self.dsn:
            ext.append("DSN")
        if self.tls_available and not self.tls_active:
            ext.append("STARTTLS")
        if self._auth_offered():
            ext.append("AUTH " + " ".join(self.auth_mechanisms))
        if self._burl_offered():
            # RFC 4468 §3: "imap": URLAUTH-authorized IMAP URLs.
            ext.append("BURL imap")
        ext.append("HELP")
        return ext

    def _burl_offered(self) -> bool:
        return self.burl and self.auth_identity is not None

    def _auth_offered(self) -> bool:
        return bool(self.auth_mechanisms) and (self.tls_active or not self.require_tls_for_auth)

    def _rset(self, arg: str) -> None:
        self._reset_transaction()
        self._send(R.RESET)

    def _noop(self, arg: str) -> None:
        self._send(R.OK)

    def _help(self, arg: str) -> None:
        self._send(R.HELP)

    def _vrfy(self, arg: str) -> object | None:
        if not arg:
            return self._refuse(R.VRFY_SYNTAX)
        # RFC 5321 §3.5.3: 252 when the server will not verify but will try.
        self._send(R.VRFY)
        return None

    def _quit(self, arg: str) -> Quit:
        self._send(Reply(221, "2.0.0", f"{self.hostname} closing connection"))
        self._close("quit")
        return Quit()

    # ------------------------------------------------------------ MAIL / RCPT

    def _mail(self, arg: str) -> object | None:
        if arg[:5].upper() != "FROM:":
            return self._refuse(R.MAIL_SYNTAX)
        if self.require_auth and self.auth_identity is None:
            return self._refuse(R.AUTH_REQUIRED)
        try:
            address, rest = parse_path(arg[5:], allow_null=True)
        except AddressError:
            return self._refuse(R.BAD_SENDER)
        try:
            params = parse_esmtp_params(rest)
        except AddressError:
            return self._refuse(R.BAD_PARAMETER)
        refusal = self._check_mail_params(params)
        if refusal is not None:
            return self._refuse(refusal)
        if not address.isascii() and "SMTPUTF8" not in params:
            return self._refuse(R.NEED_SMTPUTF8)
        return MailFrom(address, params)

    def _check_mail_params(self, params: dict[str, str | None]) -> Reply | None:
        for key, value in params.items():
            if key == "SIZE":
                # RFC 1870 §6: refuse at MAIL when the declared size is too big.
                if value is None or not value.isdigit() or not value.isascii():
                    return R.BAD_PARAMETER
                if int(value) > self.limits.message_size:
                    return R.TOO_BIG
            elif key == "BODY":
                # RFC 6152 §2; BINARYMIME (RFC 3030 §3) is not offered.
                if value is None or value.upper() not in ("7BIT", "8BITMIME"):
                    return R.UNKNOWN_PARAMETER if value else R.BAD_PARAMETER
                params[key] = value.upper()
            elif key == "SMTPUTF8":
                # RFC 6531 §3.4: the parameter takes no value.
                if value is not None:
                    return R.BAD_PARAMETER
            elif key == "RET" and self.dsn:
                # RFC 3461 §4.3
                if value is None or value.upper() not in ("FULL", "HDRS"):
                    return R.BAD_PARAMETER
                params[key] = value.upper()
            elif key == "ENVID" and self.dsn:
                # RFC 3461 §4.4: xtext, at most 100 characters.
                if value is None or len(value) > 100 or not is_xtext(value):
                    return R.BAD_PARAMETER
            elif key == "AUTH" and self.auth_mechanisms:
                # RFC 4954 §5: <> or an xtext mailbox; the server decides trust.
                if value is None or (value != "<>" and not is_xtext(value)):
                    return R.BAD_PARAMETER
            else:
                # RFC 5321 §4.1.1.11: unknown parameters get 555.
                return R.UNKNOWN_PARAMETER
        return None

    def _rcpt(self, arg: str) -> object | None:
        if arg[:3].upper() != "TO:":
            return self._refuse(R.RCPT_SYNTAX)
        try:
            address, rest = parse_path(arg[3:], allow_postmaster=True)
        except AddressError:
            return self._refuse(R.BAD_RECIPIENT)
        try:
            params = parse_esmtp_params(rest)
        except AddressError:
            return self._refuse(R.BAD_PARAMETER)
        refusal = self._check_rcpt_params(params)
        if refusal is not None:
            return self._refuse(refusal)
        if not address.isascii() and not self._tx.smtputf8:
            return self._refuse(R.NEED_SMTPUTF8)
        if len(self._tx.rcpt_to) >= self.limits.recipients:
            # RFC 5321 §4.5.3.1.10: 452, and the client sends the rest later.
            self._send(R.TOO_MANY_RECIPIENTS)
            return None
        return RcptTo(address, params)

    def _check_rcpt_params(self, params: dict[str, str | None]) -> Reply | None:
        for key, value in params.items():
            if key == "NOTIFY" and self.dsn:
                # RFC 3461 §4.1: NEVER alone, or a list of SUCCESS, FAILURE, DELAY.
                if value is None:
                    return R.BAD_PARAMETER
                items = value.upper().split(",")
                if items != ["NEVER"] and (
                    not set(items) <= {"SUCCESS", "FAILURE", "DELAY"}
                    or len(set(items)) != len(items)
                ):
                    return R.BAD_PARAMETER
                params[key] = ",".join(items)
            elif key == "ORCPT" and self.dsn:
                # RFC 3461 §4.2: addr-type ";" xtext, at most 500 characters.
                if value is None or len(value) > 500:
                    return R.BAD_PARAMETER
                addr_type, semi, xtext = value.partition(";")
                if not semi or not _ATOM.fullmatch(addr_type) or not is_xtext(xtext):
                    return R.BAD_PARAMETER
            else:
                return R.UNKNOWN_PARAMETER
        return None

    # ------------------------------------------------------------ DATA

    def _data(self, arg: str) -> object | None:
        if arg:
            return self._refuse(R.NO_ARGUMENTS)
        self._send(R.START_DATA)
        self.state = State.DATA
        # Searching for CRLF.CRLF from a CRLF put in front of the data finds an
        # end marker on the very first line too. The buffer always starts with
        # the two octets before the data not yet taken (here that CRLF), so
        # that a line-starting "." is seen wherever the data is cut.
        self._lines.buffer[0:0] = b"\r\n"
        self._scan_from = 0
        return None

    def _read_data(self) -> object | None:
        buf = self._lines.buffer
        end = buf.find(_DATA_END, self._scan_from)
        if end >= 0:
            return self._take_data(end + 2, last=True)
        # The marker may straddle the next read: rescan the last 4 octets.
        self._scan_from = max(len(buf) - 4, 0)
        if len(buf) <= 4 or (
            len(buf) < DATA_PIECE and self._tx.size + len(buf) - 2 <= self.limits.message_size
        ):
            return _NEED_DATA
        # Take all but the octets that may begin the end marker.
        return self._take_data(len(buf) - 2, last=False)

    def _take_data(self, cut: int, *, last: bool) -> object | None:
        """Take the data up to ``cut`` (the buffer's first two octets are
        context, already taken): counted, unstuffed, checked for bare CR or
        LF, then kept or handed up; past the size limit only counted."""
        buf = self._lines.buffer
        tx = self._tx
        tx.size += cut - 2
        piece = b""
        if tx.size <= self.limits.message_size and not tx.line_ends.bare:
            if buf.find(b"\r\n.", 0, cut) < 0:
                piece = bytes(buf[2:cut])
            else:
                # RFC 5321 §4.5.2: a line that starts with "." loses that first ".".
                piece = bytes(buf[:cut]).replace(b"\r\n.", b"\r\n")[2:]
            tx.line_ends.feed(piece, last=last)
        if not last:
            del buf[: cut - 2]
            self._scan_from = 0
            return self._hand_up(piece)
        del buf[: cut + 3]
        if tx.size > self.limits.message_size:
            return self._end_of_data(R.TOO_BIG)
        if tx.line_ends.bare:
            return self._end_of_data(R.BARE_CR_LF)
        self.state = State.RCPT
        return self._complete(self._message_data(piece))

    def _hand_up(self, piece: bytes) -> object | None:
        """Message octets: to the server now (stream_data) or kept here."""
        if not piece or self._tx.line_ends.bare:
            return None
        if self.stream_data:
            first = not self._tx.handed_up
            self._tx.handed_up = True
            return MessageData(piece, first)
        self._tx.chunks.append(piece)
        return None

    def _message_data(self, last: bytes) -> bytes:
        """What MessageComplete carries: the whole message, or with
        stream_data what came after the last MessageData."""
        chunks = self._tx.chunks
        if not chunks:
            return last
        chunks.append(last)
        return b"".join(chunks)

    def _end_of_data(self, refusal: Reply) -> object | None:
        self._reset_transaction()
        return self._refuse(refusal)

    def _complete(self, data: bytes) -> MessageComplete:
        tx = self._tx
        return MessageComplete(
            tx.mail_from,
            list(tx.rcpt_to),
            data,
            tx.mail_params,
            list(tx.rcpt_params),
            self.helo,
            self.esmtp,
            self.tls_active,
            self.auth_identity,
            tx.handed_up,
        )

    # ------------------------------------------------------------ BDAT

    @staticmethod
    def _bdat_args(arg: str) -> tuple[int, bool] | None:
        words = arg.split()
        if not 1 <= len(words) <= 2 or not words[0].isdigit() or not words[0].isascii():
            return None
        if len(words) == 2 and words[1].upper() != "LAST":
            return None
        return int(words[0]), len(words) == 2

    def _bdat_refused(self, arg: str, refusal: Reply) -> object | None:
        """A BDAT in the wrong state: read and drop its octets, then refuse."""
        parsed = self._bdat_args(arg)
        if parsed is None:
            return self._bdat_lost_sync()
        self._start_chunk(parsed[0], last=False, refusal=refusal)
        return None

    def _bdat_lost_sync(self) -> object:
        # Without a size the octets that follow cannot be told from commands.
        self._refuse(R.BDAT_SYNTAX)
        return self._close("BDAT without a valid size")

    def _bdat(self, arg: str) -> object | None:
        parsed = self._bdat_args(arg)
        if parsed is None:
            return self._bdat_lost_sync()
        size, last = parsed
        tx = self._tx
        refusal = None
        if tx.size + size > self.limits.message_size:
            refusal = R.TOO_BIG
        self._start_chunk(size, last=last, refusal=refusal)
        return None

    def _start_chunk(self, size: int, *, last: bool, refusal: Reply | None) -> None:
        self._chunk_left = size
        self._chunk_last = last
        self._chunk_refusal = refusal
        self._resume_state = self.state
        self.state = State.CHUNK

    def _read_chunk(self) -> object | None:
        buf = self._lines.buffer
        take = min(self._chunk_left, len(buf))
        piece = b""
        if take:
            if self._chunk_refusal is None:
                piece = bytes(buf[:take])
                self._tx.size += take
            del buf[:take]
            self._chunk_left -= take
        if self._chunk_left:
            if piece:
                self._tx.line_ends.feed(piece, last=False)
                return self._hand_up(piece)
            return _NEED_DATA
        refusal = self._chunk_refusal
        if refusal is not None:
            self._chunk_refusal = None
            if refusal is R.TOO_BIG:
                # RFC 3030 §2: a failed chunk fails the whole transaction.
                self._reset_transaction()
            else:
                self.state = self._resume_state
            return self._refuse(refusal)
        self._tx.line_ends.feed(piece, last=self._chunk_last)
        if not self._chunk_last:
            self.state = State.BDAT
            self._send(Reply(250, "2.0.0", f"{self._tx.size} octets received"))
            return self._hand_up(piece)
        if self._tx.line_ends.bare:
            return self._end_of_data(R.BARE_CR_LF)
        self.state = State.BDAT
        return self._complete(self._message_data(piece))

    # ------------------------------------------------------------ BURL

    def _burl(self, arg: str) -> object | None:
        # RFC 4468 §3: "BURL" SP absolute-URI [SP end-marker]
        words = arg.split()
        if not 1 <= len(words) <= 2 or (len(words) == 2 and words[1].upper() != "LAST"):
            return self._refuse(R.BURL_SYNTAX)
        return BurlFetch(words[0], len(words) == 2)

    # ------------------------------------------------------------ STARTTLS / AUTH

    def _starttls(self, arg: str) -> object | None:
        if arg:
            return self._refuse(R.NO_ARGUMENTS)
        if self.tls_active:
            return self._refuse(R.TLS_ACTIVE)
        if not self.tls_available:
            self._send(R.TLS_NOT_AVAILABLE)
            return None
        self._send(R.READY_TLS)
        self.state = State.TLS
        self._lines.clear()
        return StartTls()

    def _auth(self, arg: str) -> object | None:
        if not self.auth_mechanisms:
            return self._refuse(R.NOT_IMPLEMENTED)
        if self.auth_identity is not None:
            return self._refuse(R.AUTH_ALREADY)
        words = arg.split()
        if not 1 <= len(words) <= 2:
            return self._refuse(R.BAD_PARAMETER)
        mechanism = words[0].upper()
        if mechanism not in self.auth_mechanisms:
            return self._refuse(R.AUTH_UNKNOWN_MECHANISM)
        if self.require_tls_for_auth and not self.tls_active:
            return self._refuse(R.AUTH_NEEDS_TLS)
        initial = None
        if len(words) == 2:
            # RFC 4954 §4: "=" is an empty initial response.
            initial = _b64decode(words[1]) if words[1] != "=" else b""
            if initial is None:
                return self._refuse(R.AUTH_BAD_BASE64)
        self.state = State.AUTH
        return AuthRequest(mechanism, initial)

    def _auth_line(self, line: str) -> object | None:
        self.state = State.READY
        if line.strip() == "*":
            # RFC 4954 §4: the client cancels with "*"; reply 501.
            return self._refuse(R.AUTH_CANCELLED)
        data = _b64decode(line.strip())
        if data is None:
            return self._refuse(R.AUTH_BAD_BASE64)
        self.state = State.AUTH
        return AuthResponse(data)


# RFC 5322 §3.2.3 atom: an ORCPT addr-type such as "rfc822" or "utf-8" (RFC 6533).
_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")


class _LineEnds:
    """Whether a message's octets, fed in order in pieces cut anywhere, hold
    a bare CR or a bare LF (SMTP smuggling, RFC 5321 §2.3.8)."""

    __slots__ = ("bare", "_after_cr")

    def __init__(self) -> None:
        self.bare = False
        self._after_cr = False  # the last piece ended with a CR

    def feed(self, piece: bytes, *, last: bool) -> None:
        crlf = piece.count(b"\r\n")
        cr = piece.count(b"\r")
        lf = piece.count(b"\n")
        if self._after_cr:
            if piece[:1] != b"\n" and (piece or last):
                self.bare = True
            elif piece:
                crlf += 1  # the CR before this piece and its first LF
                cr += 1
        if piece:
            self._after_cr = piece.endswith(b"\r")
            if self._after_cr and not last:
                cr -= 1  # its LF may begin the next piece
        if cr != crlf or lf != crlf:
            self.bare = True


def _b64decode(text: str) -> bytes | None:
    try:
        return binascii.a2b_base64(text.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError):
        return None

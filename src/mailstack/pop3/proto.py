"""The POP3 session as a state machine without I/O (RFC 1939, 2449, 2595, 5034).

The server feeds the bytes it reads to :meth:`Pop3Session.receive_data` and
asks :meth:`~Pop3Session.next_event` for one event at a time, until
:class:`~mailstack.common.lines.NeedData`:

- :class:`Reply`: bytes to send (maybe after a delay, maybe then close);
- :class:`Authenticate`: check these credentials, then call
  :meth:`~Pop3Session.auth_failed`, :meth:`~Pop3Session.login_refused` or
  :meth:`~Pop3Session.logged_in`;
- :class:`StartTls`: send the reply, upgrade the stream, call
  :meth:`~Pop3Session.tls_started`;
- :class:`Retrieve`: send :func:`format_message` of that message (RETR, TOP);
- :class:`Update`: the client said QUIT in TRANSACTION; expunge, mark seen,
  then call :meth:`~Pop3Session.update_finished`.

Lines are cut by the one framer, ``common.lines.LineBuffer``, under the
limit of the state: a command line is at most ``max_line`` octets (RFC 2449
§4: 255), checked before more of it is buffered; a SASL response may be
``max_sasl_line`` (RFC 5034 §4). The commands allowed in each state are in
one table, :data:`ALLOWED`.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from mailstack.common import sasl
from mailstack.common.lines import LineBuffer, LineTooLong, NeedData
from mailstack.errors import Pop3Error

__all__ = [
    "ALLOWED",
    "Authenticate",
    "Event",
    "MaildropMessage",
    "Pop3Session",
    "Reply",
    "Retrieve",
    "StartTls",
    "State",
    "Update",
    "format_message",
    "unique_id",
]

GREETING = "POP3 server ready"  # the lecture's words
SIGNING_OFF = "POP3 server signing off"
LOGGED_ON = "user successfully logged on"


class State(enum.Enum):
    AUTHORIZATION = "AUTHORIZATION"
    TRANSACTION = "TRANSACTION"
    UPDATE = "UPDATE"


# RFC 1939 §3-§7, RFC 2449 §5 (CAPA in both states), RFC 2595 §4 (STLS only
# in AUTHORIZATION), RFC 5034 §4 (AUTH only in AUTHORIZATION). No command is
# accepted in UPDATE: the server answers QUIT and closes.
ALLOWED: dict[State, frozenset[str]] = {
    State.AUTHORIZATION: frozenset({"USER", "PASS", "APOP", "AUTH", "CAPA", "STLS", "QUIT"}),
    State.TRANSACTION: frozenset(
        {"STAT", "LIST", "RETR", "DELE", "NOOP", "RSET", "TOP", "UIDL", "CAPA", "QUIT"}
    ),
    State.UPDATE: frozenset(),
}
KNOWN = frozenset().union(*ALLOWED.values())


@dataclass(frozen=True, slots=True)
class MaildropMessage:
    uid: int
    size: int  # octets as sent by RETR, before byte-stuffing (RFC 1939 §5 LIST)


@dataclass(frozen=True, slots=True)
class Reply:
    data: bytes
    close: bool = False  # close the connection once sent
    delay: float = 0.0  # wait this long first (failed-login throttling)


@dataclass(frozen=True, slots=True)
class Authenticate:
    user: str
    password: str


@dataclass(frozen=True, slots=True)
class StartTls:
    reply: bytes


@dataclass(frozen=True, slots=True)
class Retrieve:
    number: int
    uid: int
    top_lines: int | None  # None for RETR; n for TOP msg n


@dataclass(frozen=True, slots=True)
class Update:
    expunge: tuple[int, ...]  # UIDs marked deleted
    seen: tuple[int, ...]  # UIDs retrieved and kept


Event = Reply | Authenticate | StartTls | Retrieve | Update

_NEED_DATA = NeedData()
# The peer closed the connection: nothing to say, nothing to remove (RFC 1939
# §6 enters UPDATE on QUIT only).
_CLOSED = Reply(b"", close=True)


def ok(text: str = "") -> bytes:
    return f"+OK {text}\r\n".encode() if text else b"+OK\r\n"


def multiline(first: str, lines: Sequence[str]) -> bytes:
    """A positive multi-line response (RFC 1939 §3); lines here never start with '.'."""
    return ("".join([f"+OK {first}\r\n", *(f"{line}\r\n" for line in lines), ".\r\n"])).encode()


def unique_id(uidvalidity: int, uid: int) -> str:
    """The UIDL string: stable across sessions, never reused (RFC 1939 §7 UIDL).

    The store never reuses a UID within one UIDVALIDITY, and a new INBOX gets a
    new UIDVALIDITY, so the pair names one message forever. At most 70
    characters from 0x21-0x7E, as RFC 1939 requires.
    """
    return f"{uidvalidity}.{uid}"


# What keeps a message from going out as it is, past its first octet: an LF
# before a "." (a line to stuff) or an LF without its CR (the lookbehind, also
# true of an LF at offset 0). Each try starts at an LF, the pattern's first
# octet, which re finds with a C loop: one pass and a little per line, where
# bytes.count and a two-octet find are slow.
_NEEDS_WORK = re.compile(rb"\n(?:\.|(?<!\r\n))")
_BARE_LF = re.compile(rb"\n(?<!\r\n)")


def format_message(raw: bytes, top_lines: int | None = None) -> bytes:
    """The RETR/TOP response: +OK line, byte-stuffed content, terminating dot line.

    Line ends become CRLF (RFC 1939 §3: lines end with CRLF); a line starting
    with "." gets another "." in front (byte-stuffing). For TOP, the header,
    the blank line, and the first ``top_lines`` body lines (RFC 1939 §7 TOP).

    The usual message (CRLF throughout, no line starting with ".") goes out
    as it is, and finding that out is the cost of a RETR: one search for an
    LF without its CR or an LF before a "." (a bare CR ends no line, as in
    :func:`_stuff`).
    """
    dotted = raw[:1] == b"." or _NEEDS_WORK.search(raw) is not None
    if dotted and _BARE_LF.search(raw) is not None:
        raw = _crlf(raw)
    if top_lines is None:
        first = ok(f"{len(raw)} octets")
    else:
        first = ok("top of message follows")
        end = top_end(raw, top_lines)
        if end is not None:
            raw = raw[:end]
    stuffed = _stuff(raw, line_start=True) if dotted else raw
    dot_line = b".\r\n" if not stuffed or stuffed.endswith(b"\r\n") else b"\r\n.\r\n"
    return b"".join((first, stuffed, dot_line))


class ByteStuffer:
    """A RETR response's message text a piece at a time (a big message is
    sent from the store in chunks): line ends made CRLF and lines that start
    with "." stuffed (RFC 1939 §3), whatever the chunk boundaries cut."""

    __slots__ = ("_line_start", "_held_cr")

    def __init__(self) -> None:
        self._line_start = True
        self._held_cr = False  # a CR at a chunk's end: the next may bring its LF

    def feed(self, data: bytes) -> bytes:
        if self._held_cr:
            data = b"\r" + data
        self._held_cr = data.endswith(b"\r")
        if self._held_cr:
            data = data[:-1]
        if not data:
            return b""
        line_start, self._line_start = self._line_start, data.endswith(b"\n")
        # As in format_message: the usual chunk goes out as it is.
        if (line_start and data[:1] == b".") or _NEEDS_WORK.search(data) is not None:
            if _BARE_LF.search(data) is not None:
                data = _crlf(data)
            data = _stuff(data, line_start)
        return data

    def end(self) -> bytes:
        """The rest: a last line without CRLF gets one, then the dot line."""
        if self._held_cr:
            self._held_cr = False
            return b"\r\r\n.\r\n"
        return b".\r\n" if self._line_start else b"\r\n.\r\n"


def _stuff(data: bytes, line_start: bool) -> bytes:
    """Byte-stuffing: a "." gets another in front where a line starts."""
    stuffed = data.replace(b"\r\n.", b"\r\n..")
    return b"." + stuffed if line_start and data[:1] == b"." else stuffed


def _crlf(data: bytes) -> bytes:
    """Bare LFs made CRLF."""
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def top_end(raw: bytes, count: int) -> int | None:
    """Where TOP's text ends: after the header section, its blank line and
    ``count`` body lines; None when raw does not hold all of them."""
    if raw.startswith(b"\r\n"):
        end = 2
    else:
        split = raw.find(b"\r\n\r\n")
        if split < 0:
            return None
        end = split + 4
    for _ in range(count):
        line_end = raw.find(b"\r\n", end)
        if line_end < 0:
            return None
        end = line_end + 2
    return end


def _number(arg: str) -> int:
    # RFC 1939 §5: messages are numbered from 1; we accept plain digits, no sign.
    if not arg.isascii() or not arg.isdigit() or len(arg) > 10:
        raise Pop3Error(f"invalid number: {arg[:20]}")
    return int(arg)


class Pop3Session:
    """One POP3 session, from greeting to QUIT, without I/O."""

    def __init__(
        self,
        *,
        plaintext_ok: bool,
        tls_available: bool,
        tls_active: bool = False,
        mechanisms: tuple[str, ...] = ("PLAIN", "LOGIN"),
        implementation: str = "mailstack",
        expire_days: int | None = None,
        login_delay: int = 0,
        max_line: int = 255,
        max_sasl_line: int = 12288,
        max_failures: int = 5,
        failure_delay: float = 2.0,
    ) -> None:
        self.state = State.AUTHORIZATION
        self.plaintext_ok = plaintext_ok
        self.tls_available = tls_available
        self.tls_active = tls_active
        self.mechanisms = mechanisms
        self.implementation = implementation
        self.expire_days = expire_days
        self.login_delay = login_delay
        self.max_line = max_line
        self.max_sasl_line = max_sasl_line
        self.max_failures = max_failures
        self.failure_delay = failure_delay
        self.failures = 0
        self.user: str | None = None  # after USER, or once logged in
        self._user_pending = False
        self._sasl: sasl.Mechanism | None = None
        self.uidvalidity = 0
        self.messages: list[MaildropMessage] = []
        self.deleted: set[int] = set()  # message numbers
        self.retrieved: set[int] = set()
        self._lines = LineBuffer(max_line)
        self._eof = False
        # The line the last event answered, and whether it was a SASL response.
        self._line: bytes | None = None
        self._line_was_sasl = False
        self._handlers: dict[str, Callable[[list[str], str], Event]] = {
            "USER": self._user,
            "PASS": self._pass,
            "APOP": self._apop,
            "AUTH": self._auth,
            "CAPA": self._capa,
            "STLS": self._stls,
            "QUIT": self._quit,
            "STAT": self._stat,
            "LIST": self._list,
            "RETR": self._retr,
            "DELE": self._dele,
            "NOOP": self._noop,
            "RSET": self._rset,
            "TOP": self._top,
            "UIDL": self._uidl,
        }

    @property
    def in_sasl(self) -> bool:
        """The next line is a SASL response, not a command."""
        return self._sasl is not None

    # Server-driven transitions

    def greeting(self) -> Reply:
        return Reply(ok(GREETING))

    def timed_out(self) -> Reply:
        # RFC 1939 §3: "the session does NOT enter the UPDATE state--the server
        # should close the TCP connection without removing any messages or
        # sending any response to the client."
        return Reply(b"", close=True)

    def auth_failed(self) -> Reply:
        self.failures += 1
        self.user = None
        delay = self.failure_delay * min(self.failures, self.max_failures)
        if self.failures >= self.max_failures:
            err = Pop3Error("too many failed logins, closing", code="AUTH")
            return Reply(err.to_bytes(), close=True, delay=delay)
        # RFC 3206 §4: [AUTH] says the credentials were wrong, not the system.
        return Reply(Pop3Error("invalid user name or password", code="AUTH").to_bytes(),
                     delay=delay)

    def login_refused(self, code: str, text: str) -> Reply:
        """Good credentials but no maildrop: [IN-USE] or [LOGIN-DELAY] (RFC 2449 §8.1),
        or [SYS/TEMP] (RFC 3206 §3)."""
        self.user = None
        return Reply(Pop3Error(text, code=code).to_bytes())

    def logged_in(self, user: str, uidvalidity: int, messages: Sequence[MaildropMessage]) -> Reply:
        """The server holds the maildrop lock; RFC 1939 §4 enters TRANSACTION."""
        self.state = State.TRANSACTION
        self.user = user
        self.uidvalidity = uidvalidity
        self.messages = list(messages)
        return Reply(ok(LOGGED_ON))

    def tls_started(self, plaintext_ok: bool = True) -> None:
        # RFC 2595 §4: the client discards what it knew; so do we. RFC 2595
        # §3.1 (CVE-2011-0411): what came in clear behind STLS is dropped.
        self._lines.clear()
        self.tls_active = True
        self.plaintext_ok = plaintext_ok
        self.user = None
        self._user_pending = False

    def update_finished(self, ok_: bool) -> Reply:
        if ok_:
            return Reply(ok(SIGNING_OFF), close=True)
        # RFC 1939 §6: -ERR when some deleted messages could not be removed.
        return Reply(Pop3Error("some deleted messages not removed", code="SYS/TEMP").to_bytes(),
                     close=True)

    # Client input

    def receive_data(self, data: bytes) -> None:
        """Bytes from the client; ``b""`` at end of file."""
        if data:
            self._lines.feed(data)
        else:
            self._eof = True

    @property
    def buffered(self) -> int:
        """Octets received and not yet taken: under a line's limit whatever the peer sends."""
        return self._lines.pending

    def next_event(self) -> Event | NeedData:
        in_sasl = self._sasl is not None
        limit = self.max_sasl_line if in_sasl else self.max_line
        while True:
            try:
                line = self._lines.next_line(limit)
            except LineTooLong as exc:
                if exc.again:
                    # One answer per line; POP3 has no error limit to count
                    # against (the listener's per-client caps bound sessions).
                    continue
                # RFC 2449 §4: a command line is at most 255 octets with its
                # CRLF; the framer refuses it before buffering more of it.
                self._line = None
                self._sasl = None
                return Reply(Pop3Error("line too long").to_bytes())
            break
        if line is None:
            return _CLOSED if self._eof else _NEED_DATA
        self._line = line
        self._line_was_sasl = in_sasl
        return self._sasl_response(line) if in_sasl else self._command(line)

    def traced_line(self) -> bytes | str | None:
        """The line the last event answered as a trace may show it: no
        password, no SASL response (None after a line too long)."""
        line = self._line
        if line is None:
            return None
        if self._line_was_sasl:
            return "<SASL response>"
        if line[:5].upper() == b"PASS ":
            return line[:5] + b"****"
        if line[:5].upper() == b"AUTH " and len(line.split()) > 2:
            # The initial response carries the password (RFC 4616 PLAIN).
            return b" ".join(line.split()[:2]) + b" ****"
        return line

    def _command(self, line: bytes) -> Event:
        user_pending, self._user_pending = self._user_pending, False
        text = line.rstrip(b"\r\n")
        try:
            decoded = text.decode("utf-8")
        except UnicodeDecodeError:
            return Reply(Pop3Error("command is not valid UTF-8").to_bytes())
        keyword, _, rest = decoded.partition(" ")
        name = keyword.upper()
        if name not in KNOWN:
            return Reply(Pop3Error("unknown command").to_bytes())
        if name not in ALLOWED[self.state]:
            return Reply(Pop3Error(f"{name} not valid in the {self.state.value} state").to_bytes())
        if name == "PASS" and not user_pending:
            return Reply(Pop3Error("PASS must follow USER").to_bytes())
        try:
            return self._handlers[name](rest.split(), rest)
        except Pop3Error as exc:
            return Reply(exc.to_bytes())

    # AUTHORIZATION (RFC 1939 §4, §7; RFC 5034)

    def _require_plaintext_ok(self) -> None:
        if not self.plaintext_ok:
            raise Pop3Error("plaintext authentication needs TLS first (STLS)")

    def _user(self, args: list[str], rest: str) -> Event:
        self._require_plaintext_ok()
        if len(args) != 1:
            raise Pop3Error("usage: USER name")
        self.user = args[0]
        self._user_pending = True
        # The lecture's dialogue answers a bare "+OK"; saying nothing about
        # the name does not reveal which names exist.
        return Reply(ok())

    def _pass(self, args: list[str], rest: str) -> Event:
        self._require_plaintext_ok()
        # RFC 1939 §7 PASS: spaces may be part of the password.
        if not rest or self.user is None:
            raise Pop3Error("usage: PASS password")
        return Authenticate(self.user, rest)

    def _apop(self, args: list[str], rest: str) -> Event:
        # APOP needs the cleartext password on the server; the store keeps
        # only Argon2id hashes, so the greeting carries no timestamp and APOP
        # is refused (RFC 1939 §7: APOP is optional).
        raise Pop3Error("APOP is not supported; use USER/PASS or AUTH")

    def _auth(self, args: list[str], rest: str) -> Event:
        if not args:
            # The pre-RFC 5034 listing form, still sent by some clients.
            mechs = self.mechanisms if self.plaintext_ok else ()
            return Reply(multiline("SASL mechanisms follow", mechs))
        self._require_plaintext_ok()
        if len(args) > 2:
            raise Pop3Error("usage: AUTH mechanism [initial-response]")
        mech = sasl.new_mechanism(args[0], self.mechanisms)
        if mech is None:
            raise Pop3Error("unsupported SASL mechanism")
        try:
            initial = sasl.decode_response(args[1].encode()) if len(args) == 2 else None
            step = mech.initial(initial)
        except sasl.SaslError:
            raise Pop3Error("malformed SASL response") from None
        return self._sasl_step(mech, step)

    def _sasl_step(self, mech: sasl.Mechanism, step: sasl.Step) -> Event:
        if isinstance(step, sasl.Challenge):
            self._sasl = mech
            # RFC 5034 §4: a challenge is "+" SP base64.
            return Reply(b"+ " + sasl.encode_challenge(step.data) + b"\r\n")
        self._sasl = None
        if not step.acts_as_self():
            return self.auth_failed()
        self.user = step.authcid
        return Authenticate(step.authcid, step.password)

    def _sasl_response(self, line: bytes) -> Event:
        mech, self._sasl = self._sasl, None
        assert mech is not None
        answer = line.rstrip(b"\r\n")
        if answer == b"*":
            # RFC 5034 §4: the server MUST reject a cancelled exchange.
            return Reply(Pop3Error("authentication cancelled").to_bytes())
        try:
            step = mech.step(sasl.decode_response(answer))
        except sasl.SaslError:
            return Reply(Pop3Error("malformed SASL response").to_bytes())
        return self._sasl_step(mech, step)

    def _stls(self, args: list[str], rest: str) -> Event:
        if self.tls_active:
            raise Pop3Error("TLS already active")
        if not self.tls_available:
            raise Pop3Error("TLS not available")
        return StartTls(ok("Begin TLS negotiation"))

    def _capa(self, args: list[str], rest: str) -> Event:
        # RFC 2449 §5, §6: the capabilities of the current state.
        caps = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"]
        if self.state is State.AUTHORIZATION:
            if self.plaintext_ok:
                caps.append("USER")
                caps.append("SASL " + " ".join(self.mechanisms))
            if self.tls_available and not self.tls_active:
                caps.append("STLS")
        caps.append("EXPIRE " + ("NEVER" if self.expire_days is None else str(self.expire_days)))
        caps.append(f"LOGIN-DELAY {self.login_delay}")
        caps.append(f"IMPLEMENTATION {self.implementation}")
        return Reply(multiline("Capability list follows", caps))

    def _quit(self, args: list[str], rest: str) -> Event:
        if self.state is State.AUTHORIZATION:
            return Reply(ok(SIGNING_OFF), close=True)
        # RFC 1939 §6: QUIT from TRANSACTION enters UPDATE, and only now are
        # the messages marked as deleted removed.
        self.state = State.UPDATE
        expunge = [m.uid for n, m in self._numbered() if n in self.deleted]
        if self.expire_days == 0:
            # RFC 2449 §6.7 EXPIRE 0: what was retrieved is not kept.
            expunge += [m.uid for n, m in self._numbered()
                        if n in self.retrieved and n not in self.deleted]
        gone = set(expunge)
        seen = [m.uid for n, m in self._numbered() if n in self.retrieved and m.uid not in gone]
        return Update(expunge=tuple(sorted(expunge)), seen=tuple(seen))

    # TRANSACTION (RFC 1939 §5)

    def _numbered(self) -> list[tuple[int, MaildropMessage]]:
        return list(enumerate(self.messages, start=1))

    def _live(self) -> list[tuple[int, MaildropMessage]]:
        return [(n, m) for n, m in self._numbered() if n not in self.deleted]

    def _message(self, arg: str) -> tuple[int, MaildropMessage]:
        number = _number(arg)
        if not 1 <= number <= len(self.messages):
            raise Pop3Error(f"no such message, only {len(self.messages)} messages in maildrop")
        if number in self.deleted:
            raise Pop3Error(f"message {number} already deleted")
        return number, self.messages[number - 1]

    def following(self, number: int) -> Iterator[MaildropMessage]:
        """The messages after ``number`` not marked deleted, in order (for
        read-ahead): a generator, so a batch costs what it takes, not the maildrop."""
        deleted = self.deleted
        messages = self.messages
        for index in range(number, len(messages)):
            if index + 1 not in deleted:
                yield messages[index]

    def _stat(self, args: list[str], rest: str) -> Event:
        if args:
            raise Pop3Error("usage: STAT")
        live = self._live()
        return Reply(ok(f"{len(live)} {sum(m.size for _, m in live)}"))

    def _list(self, args: list[str], rest: str) -> Event:
        if len(args) > 1:
            raise Pop3Error("usage: LIST [msg]")
        if args:
            number, message = self._message(args[0])
            return Reply(ok(f"{number} {message.size}"))
        live = self._live()
        total = sum(m.size for _, m in live)
        return Reply(multiline(f"{len(live)} messages ({total} octets)",
                               [f"{n} {m.size}" for n, m in live]))

    def _uidl(self, args: list[str], rest: str) -> Event:
        if len(args) > 1:
            raise Pop3Error("usage: UIDL [msg]")
        if args:
            number, message = self._message(args[0])
            return Reply(ok(f"{number} {unique_id(self.uidvalidity, message.uid)}"))
        return Reply(multiline("unique-id listing follows",
                               [f"{n} {unique_id(self.uidvalidity, m.uid)}"
                                for n, m in self._live()]))

    def _retr(self, args: list[str], rest: str) -> Event:
        if len(args) != 1:
            raise Pop3Error("usage: RETR msg")
        number, message = self._message(args[0])
        self.retrieved.add(number)
        return Retrieve(number, message.uid, None)

    def _top(self, args: list[str], rest: str) -> Event:
        if len(args) != 2:
            raise Pop3Error("usage: TOP msg n")
        number, message = self._message(args[0])
        return Retrieve(number, message.uid, _number(args[1]))

    def _dele(self, args: list[str], rest: str) -> Event:
        if len(args) != 1:
            raise Pop3Error("usage: DELE msg")
        number, _ = self._message(args[0])
        self.deleted.add(number)
        return Reply(ok(f"message {number} deleted"))

    def _noop(self, args: list[str], rest: str) -> Event:
        return Reply(ok())

    def _rset(self, args: list[str], rest: str) -> Event:
        # RFC 1939 §5 RSET: unmark every message marked as deleted.
        self.deleted.clear()
        live = self._live()
        return Reply(ok(f"maildrop has {len(live)} messages "
                        f"({sum(m.size for _, m in live)} octets)"))

"""A test driver for SmtpServerProtocol: feeds bytes, answers events, records output."""

from __future__ import annotations

from collections.abc import Callable

from mailstack.limits import Limits
from mailstack.smtp.proto import (
    AuthRequest,
    AuthResponse,
    BurlFetch,
    Close,
    MailFrom,
    MessageComplete,
    NeedData,
    Pending,
    Quit,
    RcptTo,
    Reply,
    SmtpServerProtocol,
    StartTls,
)

Decide = Callable[[SmtpServerProtocol, object], Reply | None]
DECIDED = (MailFrom, RcptTo, MessageComplete, AuthRequest, AuthResponse, BurlFetch)


def mx_policy(p: SmtpServerProtocol, event: object) -> Reply | None:
    """The lecture's hamburger.edu: bob and alice exist, nothing is relayed."""
    if isinstance(event, MailFrom):
        return Reply.sender_ok(event.address)
    if isinstance(event, RcptTo):
        local, _, domain = event.address.rpartition("@")
        if domain.lower() != "hamburger.edu":
            return Reply(550, "5.7.1", "Relaying denied")
        if local.lower() not in ("bob", "alice", "zoë"):
            return Reply(550, "5.1.1", "No such user here")
        return Reply.recipient_ok(event.address)
    if isinstance(event, MessageComplete):
        return Reply.message_accepted()
    return None


class Session:
    """One protocol instance driven the way a server would drive it."""

    def __init__(
        self, decide: Decide = mx_policy, *, start_tls: bool = True, **options: object
    ) -> None:
        options.setdefault("hostname", "hamburger.edu")
        options.setdefault("limits", Limits())
        self.p = SmtpServerProtocol(**options)  # type: ignore[arg-type]
        self.decide = decide
        self.start_tls = start_tls
        self.out = bytearray(self.p.greeting())
        self.events: list[object] = []
        self.closed: Close | None = None

    def feed(self, data: bytes, step: int | None = None) -> Session:
        if step is None:
            self.p.receive_data(data)
            self.pump()
        else:
            for i in range(0, len(data), step):
                self.p.receive_data(data[i : i + step])
                self.pump()
        return self

    def eof(self) -> Session:
        self.p.receive_data(b"")
        return self.pump()

    def pump(self) -> Session:
        p = self.p
        while True:
            event = p.next_event()
            if isinstance(event, NeedData | Pending):
                break
            if isinstance(event, Close):
                self.closed = event
                break
            self.events.append(event)
            if isinstance(event, DECIDED):
                reply = self.decide(p, event)
                if reply is not None:
                    p.respond(reply)
                elif p.pending_event is not None:
                    break
            elif isinstance(event, StartTls):
                self.out += p.data_to_send()
                if not self.start_tls:
                    break
                p.tls_started()
            elif isinstance(event, Quit):
                break
        self.out += p.data_to_send()
        return self

    def take(self) -> str:
        """The output since the last take(), as text."""
        text = self.out.decode()
        self.out.clear()
        return text

    def replies(self) -> list[str]:
        return self.take().splitlines()

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]


def run(data: bytes, mode: str, **options: object) -> Session:
    """Feed ``data`` whole, byte by byte, or whole with an unfinished line after it."""
    session = Session(**options)  # type: ignore[arg-type]
    if mode == "whole":
        session.feed(data)
    elif mode == "bytes":
        session.feed(data, step=1)
    elif mode == "trailing":
        session.feed(data + b"NOOP")
    else:
        raise ValueError(mode)
    return session


MODES = ("whole", "bytes", "trailing")


def transcript(text: str, mode: str = "whole", **options: object) -> Session:
    """Replay a C:/S: dialogue; assert every S: group right after its C: group."""
    session = Session(**options)  # type: ignore[arg-type]
    client: list[str] = []
    server: list[str] = []

    def check() -> None:
        data = "".join(line + "\r\n" for line in client).encode()
        if data:
            session.feed(data, step=1 if mode == "bytes" else None)
        assert session.take().splitlines() == server, f"after {client}"
        client.clear()
        server.clear()

    for line in text.strip("\n").splitlines():
        line = line.strip()
        who, said = line[:2], line[3:]
        if who == "C:":
            if server:
                check()
            client.append(said)
        elif who == "S:":
            server.append(said)
        else:
            raise ValueError(line)
    check()
    return session

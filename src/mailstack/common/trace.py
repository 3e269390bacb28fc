"""The S:/C: protocol trace, as the lectures print it, and its JSON-lines form.

    [smtp 3] S: 220 hamburger.edu ESMTP mailstack
    [smtp 3] C: HELO crepes.fr

`serve --trace` turns it on; off, every call is a cheap no-op. Message bodies
and literals are elided past a few lines so a trace stays readable.

Every line of a trace is one `TraceEvent` (time, host, session, protocol,
direction, peer, summary, detail). The one tracer renders each event as the
S:/C: text above and, with `serve --trace-json FILE`, as one JSON object per
line for programs (the lab's live view): the same events, two renderings.

A trace never shows a credential: each protocol's session says which client
lines carry one (SMTP AUTH, RFC 4954; POP3 PASS and AUTH, RFC 1939, RFC 5034;
IMAP LOGIN and AUTHENTICATE, RFC 3501) and shows `CREDENTIALS_ELIDED` in their
place. `client_lines` hands a session whole lines however the client's bytes
were split, so a secret is recognised even when it arrives in pieces. The
verifier of a URLAUTH URL (RFC 4467: a bearer authorization, in IMAP's
GENURLAUTH, URLFETCH and CATENATE and SMTP's BURL) is elided wherever it
appears, in either direction.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import sys
import time
from typing import Any, TextIO

BODY_LINES_SHOWN = 5
# What a trace shows instead of a password or a SASL response.
CREDENTIALS_ELIDED = "[credentials elided]"
# RFC 4467 §9: ";URLAUTH=" access ":" mechanism ":" enc-urlauth.
_URLAUTH_VERIFIER = re.compile(r"(;URLAUTH=[^:\s\"]*:[A-Za-z0-9.-]+:)[0-9A-Fa-f]{32,}", re.I)
URLAUTH_ELIDED = "[verifier elided]"
# A client line held for the trace until its end arrives; past this, the
# rest of the line is dropped unseen (the protocol refuses it anyway).
PARTIAL_LINE_MAX = 16384

# An event's direction: what the server said, what the client said, or a note
# on the session itself (connection, TLS started, closed).
SERVER, CLIENT, NOTE = "S", "C", "note"


@dataclasses.dataclass(frozen=True, slots=True)
class TraceEvent:
    """One thing a session said or did.

    ``summary`` is what the S:/C: text shows (a command line, a reply's lines,
    a DNS message's one-line gist, a body's first lines); ``detail`` the whole
    of it when there is more (a DNS message in dig's format), else the same."""

    time: float  # seconds since the epoch
    host: str  # the node's host name ("" when none was given)
    session: str  # the session as the text shows it: "smtp 3", unique per tracer
    protocol: str  # smtp, submission, pop3, imap, smtp-out, dns/udp, ...
    direction: str  # SERVER, CLIENT or NOTE
    peer: str  # the other end, "address:port"
    summary: str
    detail: str

    def text(self) -> str:
        """The lectures' form: a note, or one line per line of what was said."""
        if self.direction == NOTE:
            return f"[{self.session}] -- {self.summary}\n"
        return "".join(
            f"[{self.session}] {self.direction}: {line}\n"
            for line in self.summary.splitlines() or [""]
        )

    def json(self) -> str:
        """One JSON object on one line, the fields by their names."""
        return json.dumps(dataclasses.asdict(self), ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, line: str) -> TraceEvent:
        """The event a `json` line holds; ValueError when it holds none."""
        try:
            fields: Any = json.loads(line)
            return cls(**fields)
        except (TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a trace event: {line[:80]!r}") from exc


class SessionTrace:
    """One session's trace: S:/C: text on ``out``, JSON lines on ``json_out``
    (either may be None; both None is a trace that costs nothing)."""

    __slots__ = (
        "_out",
        "_json_out",
        "_session",
        "_protocol",
        "_peer",
        "_host",
        "_partial",
        "_skipping",
    )

    def __init__(
        self,
        out: TextIO | None,
        prefix: str,
        *,
        peer: str = "",
        json_out: TextIO | None = None,
        host: str = "",
    ) -> None:
        self._out = out
        self._json_out = json_out
        self._session = prefix.strip("[]")  # "[smtp 3]" -> "smtp 3"
        self._protocol = self._session.rsplit(" ", 1)[0]
        self._peer = peer
        self._host = host
        self._partial = b""  # the start of a client line whose end has not come
        self._skipping = False  # dropping the rest of an over-long line

    @property
    def enabled(self) -> bool:
        return self._out is not None or self._json_out is not None

    def _emit(
        self,
        direction: str,
        data: bytes | str,
        detail: str | None = None,
        at: float | None = None,
    ) -> None:
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        said = "\n".join(text.splitlines())  # without the line ends
        said = _URLAUTH_VERIFIER.sub(r"\1" + URLAUTH_ELIDED, said)
        if detail is not None:
            detail = _URLAUTH_VERIFIER.sub(r"\1" + URLAUTH_ELIDED, detail)
        event = TraceEvent(
            time=time.time() if at is None else at,
            host=self._host,
            session=self._session,
            protocol=self._protocol,
            direction=direction,
            peer=self._peer,
            summary=said,
            detail=said if detail is None else detail,
        )
        if self._out is not None:
            self._out.write(event.text())
            self._out.flush()
        if self._json_out is not None:
            self._json_out.write(event.json())
            self._json_out.flush()

    def server(self, data: bytes | str, *, detail: str | None = None) -> None:
        """What the server said; ``detail``, when given, is the whole message
        behind a one-line ``data`` (in the JSON form only)."""
        if self.enabled:
            self._emit(SERVER, data, detail)

    def client(
        self, data: bytes | str, *, detail: str | None = None, at: float | None = None
    ) -> None:
        """What the client said; ``detail`` as for `server`; ``at`` when it was
        said, if earlier than now (a question traced once its answer is ready)."""
        if self.enabled:
            self._emit(CLIENT, data, detail, at)

    def body(self, data: bytes) -> None:
        """Client message content: the first few lines, then a count."""
        if not self.enabled:
            return
        lines = data.splitlines()
        for line in lines[:BODY_LINES_SHOWN]:
            self._emit(CLIENT, line)
        if len(lines) > BODY_LINES_SHOWN:
            hidden = len(lines) - BODY_LINES_SHOWN
            self._emit(CLIENT, f"... ({hidden} more lines, {len(data)} octets)")

    def client_lines(self, data: bytes) -> list[bytes]:
        """The client lines that ``data`` completes, each whole with its line
        end; the start of an unfinished line is kept for the next call."""
        if not self.enabled:
            return []
        *lines, rest = (self._partial + data).split(b"\n")
        whole = [line + b"\n" for line in lines]
        if self._skipping and whole:
            whole[0] = b"[over-long line elided]\n"
            self._skipping = False
        if len(rest) > PARTIAL_LINE_MAX:
            rest, self._skipping = b"", True
        self._partial = rest
        return whole

    def drop_partial(self) -> None:
        """Forget an unfinished client line (the stream turned to message
        text, or to TLS)."""
        self._partial = b""
        self._skipping = False

    def note(self, text: str, *, at: float | None = None) -> None:
        if self.enabled:
            self._emit(NOTE, text, at=at)

    def close(self) -> None:
        self.note("closed")


class Tracer:
    """The node's trace: S:/C: text on ``out`` (stdout by default) when
    ``enabled``, JSON lines on ``json_out`` when given; both at once is fine."""

    def __init__(
        self,
        enabled: bool = False,
        out: TextIO | None = None,
        *,
        json_out: TextIO | None = None,
        host: str = "",
    ) -> None:
        self._out = (out or sys.stdout) if enabled else None
        self._json_out = json_out
        self.host = host
        self._ids = itertools.count(1)

    @property
    def enabled(self) -> bool:
        return self._out is not None or self._json_out is not None

    def session(
        self, protocol: str, peer: str, *, outbound: bool = False, at: float | None = None
    ) -> SessionTrace:
        """A session's trace; ``outbound`` when we are the client (the user
        agent); ``at`` when it began, if earlier than now."""
        if not self.enabled:
            return SessionTrace(None, "")
        trace = SessionTrace(
            self._out,
            f"[{protocol} {next(self._ids)}]",
            peer=peer,
            json_out=self._json_out,
            host=self.host,
        )
        trace.note(f"connection {'to' if outbound else 'from'} {peer}", at=at)
        return trace

    def named(self, name: str) -> SessionTrace:
        """The trace of something that is no one numbered session, named
        "PROTOCOL ROLE": ``named("tcp welcoming")`` prints ``[tcp welcoming]``."""
        if not self.enabled:
            return SessionTrace(None, "")
        return SessionTrace(self._out, f"[{name}]", json_out=self._json_out, host=self.host)

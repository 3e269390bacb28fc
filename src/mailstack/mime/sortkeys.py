"""What SORT and THREAD read of a message (RFC 5256, RFC 5957), made once
at delivery from its parse and kept by the store beside it as a small record
(``SortKeys.record``), so the first SORT of a mailbox reads a few hundred
octets a message and parses nothing.

Strings are in the i;ascii-casemap form (RFC 4790 §9.2: only a-z folded to
upper case); the base subject is RFC 5256 §2.1's (``subject.base_subject_and_reply``,
the one JMAP threads by).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass

from mailstack.mime.address import Address
from mailstack.mime.encoded_words import decode_header
from mailstack.mime.message import ParsedMessage
from mailstack.mime.subject import base_subject_and_reply, message_ids

__all__ = ["SortKeys", "casemap"]

_UPPER = {c: c - 32 for c in range(ord("a"), ord("z") + 1)}


def casemap(text: str) -> str:
    """The i;ascii-casemap form: only a-z folded (RFC 4790 §9.2)."""
    return text.translate(_UPPER)


def _first_address(addresses: list[Address] | None) -> Address | None:
    for address in addresses or ():
        if address.host is not None:
            return address  # group markers (host None) are not addresses
    return None


def _mailbox(addresses: list[Address] | None) -> str:
    """RFC 5256 §3 FROM/TO/CC: the addr-mailbox of the first address."""
    address = _first_address(addresses)
    if address is None or address.mailbox is None:
        return ""
    return casemap(decode_header(address.mailbox))


def _display(addresses: list[Address] | None) -> str:
    """RFC 5957 §3: the first address's display name (encoded words decoded)
    when it has one, else its addr-spec ``mailbox@host``."""
    address = _first_address(addresses)
    if address is None:
        return ""
    if address.name:
        name = decode_header(address.name).strip()
        if name:
            return casemap(name)
    spec = address.mailbox or ""
    if address.host:
        spec += "@" + address.host
    return casemap(spec)


@dataclass(frozen=True, slots=True)
class SortKeys:
    """What SORT and THREAD need of one message.

    ``sent`` is the RFC 5256 §2.2 sent date as a UTC timestamp, None when
    the message has no valid Date: (the INTERNALDATE stands in then).
    """

    sent: float | None
    subject: str  # base subject, casemapped
    reply: bool
    from_: str
    to: str
    cc: str
    display_from: str
    display_to: str
    message_id: str | None
    references: tuple[str, ...]

    @classmethod
    def of(cls, parsed: ParsedMessage) -> SortKeys:
        env = parsed.envelope
        subject, reply = base_subject_and_reply(env.subject) if env.subject else ("", False)
        ids = message_ids(env.message_id or "")
        # RFC 5256 REFERENCES step 1: the References field, else the first
        # message-id of In-Reply-To.
        refs = message_ids(parsed.header_value("references") or "")
        if not refs:
            refs = message_ids(env.in_reply_to or "")[:1]
        # Senders and recipients repeat across a mailbox: one copy of each.
        return cls(
            sent=parsed.sent_date.timestamp() if parsed.sent_date is not None else None,
            subject=casemap(subject),
            reply=reply,
            from_=sys.intern(_mailbox(env.from_)),
            to=sys.intern(_mailbox(env.to)),
            cc=sys.intern(_mailbox(env.cc)),
            display_from=sys.intern(_display(env.from_)),
            display_to=sys.intern(_display(env.to)),
            message_id=ids[0] if ids else None,
            references=tuple(refs),
        )

    def record(self) -> bytes:
        """The keys as the store keeps them (JSON, ASCII)."""
        return json.dumps(
            [self.sent, self.subject, self.reply, self.from_, self.to, self.cc,
             self.display_from, self.display_to, self.message_id, self.references],
            separators=(",", ":"),
        ).encode()  # fmt: skip

    @classmethod
    def from_record(cls, record: bytes) -> SortKeys:
        """The keys ``record`` made; ValueError when it is not such a record."""
        try:
            return cls._from_fields(json.loads(record))
        except (TypeError, ValueError) as exc:
            raise ValueError("not a sort-keys record") from exc

    @classmethod
    def from_records(
        cls, records: list[bytes], shared: dict[str, str] | None = None
    ) -> list[SortKeys | None]:
        """The keys of many records (one JSON decoding for all of them: a
        first SORT reads a whole mailbox); None for one that is not a record.
        Equal strings are one object through ``shared`` (a caller reading a
        mailbox in batches passes one dict for all of them, dropped after:
        message ids are mostly unique, so sys.intern's table would keep
        growing with them), else through sys.intern."""
        if not records:
            return []
        share = sys.intern if shared is None else _sharer(shared)
        try:
            return [
                cls._from_fields(f, share) for f in json.loads(b"[" + b",".join(records) + b"]")
            ]
        except (TypeError, ValueError):
            pass
        out: list[SortKeys | None] = []
        for record in records:
            try:
                out.append(cls._from_fields(json.loads(record), share))
            except (TypeError, ValueError):
                out.append(None)
        return out

    @classmethod
    def _from_fields(
        cls, fields: list[object], share: Callable[[str], str] = sys.intern
    ) -> SortKeys:
        sent, subject, reply, from_, to, cc, display_from, display_to, mid, refs = fields
        if sent is not None and not isinstance(sent, (int, float)) or not isinstance(refs, list):
            raise ValueError("not a sort-keys record")
        # Names, subjects and message ids repeat across a mailbox (a thread
        # shares its subject, and its replies name the same ancestors): one
        # copy of each, kept as long as some message's keys hold it.
        return cls(
            None if sent is None else float(sent), share(_text(subject)), bool(reply),
            share(_text(from_)), share(_text(to)), share(_text(cc)),
            share(_text(display_from)), share(_text(display_to)),
            None if mid is None else share(_text(mid)),
            tuple(share(_text(r)) for r in refs),
        )  # fmt: skip


def _sharer(shared: dict[str, str]) -> Callable[[str], str]:
    def share(text: str) -> str:
        return shared.setdefault(text, text)

    return share


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("not a sort-keys record")
    return value

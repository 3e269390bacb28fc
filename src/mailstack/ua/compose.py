"""Compose a message with the standard `email` package (RFC 5322, MIME RFC 2045-2049).

`compose(draft)` gives the octets to send and the envelope (RFC 5321 MAIL
FROM and RCPT TO, Bcc recipients included, the Bcc field left out: RFC 5322
§3.6.3 lets a sender drop it). The message has what RFC 5322 §3.6 asks of an
originator (Date, From, Message-ID) and `MIME-Version` (RFC 2045 §4); the
`email` package encodes non-ASCII display names and subjects as RFC 2047
encoded words and non-ASCII filenames as RFC 2231 parameters. The policy's
7-bit transfer type makes it choose, per part, 7bit when the text allows,
else quoted-printable or base64, whichever is shorter (RFC 2045 §6), so the
message needs no 8BITMIME anywhere; attachments are always base64, which
brings them back byte for byte.
"""

from __future__ import annotations

import email.errors
import mimetypes
import re
from dataclasses import dataclass, field
from email import policy as email_policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, localtime, make_msgid
from pathlib import Path

from mailstack.errors import MailstackError
from mailstack.mime import html_text

__all__ = [
    "POLICY",
    "ComposeError",
    "Composed",
    "Draft",
    "addresses",
    "compose",
    "content_type",
    "read_file",
]

# CRLF line endings; 7-bit transfer encodings only (RFC 2045 §2.7).
POLICY = email_policy.SMTP.clone(cte_type="7bit")

# RFC 5322 §3.6.8: a field name is printable ASCII but the colon.
_FIELD_NAME = re.compile(r"[!-9;-~]+")
# Fields `send` sets from its own options; `--header` may not set them twice.
_OWN_FIELDS = frozenset({
    "from", "to", "cc", "bcc", "subject", "reply-to", "date", "message-id",
    "mime-version", "content-type", "content-transfer-encoding", "content-disposition",
})  # fmt: skip

# What a file's first octets say it is, when its name says nothing.
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),
    (b"\x1f\x8b", "application/gzip"),
)
# mimetypes reports a compressed file's content encoding apart from its type.
_COMPRESSED = {
    "gzip": "application/gzip",
    "bzip2": "application/x-bzip2",
    "xz": "application/x-xz",
    "compress": "application/x-compress",
    "br": "application/x-brotli",
}


class ComposeError(MailstackError):
    """The message cannot be composed."""


@dataclass(frozen=True, slots=True)
class Draft:
    """What the user asked for, as `send`'s options give it."""

    sender: str
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    bcc: list[str] = field(default_factory=list)
    subject: str = ""
    text: str = ""
    html: str | None = None
    attachments: list[Path] = field(default_factory=list)
    reply_to: list[str] = field(default_factory=list)
    headers: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Composed:
    """The message and its envelope."""

    message: bytes
    mail_from: str
    recipients: list[str]
    message_id: str


def addresses(option: str, values: list[str]) -> list[Address]:
    """Every mailbox in ``values`` (each an RFC 5322 address list), checked."""
    found: list[Address] = []
    for value in values:
        try:
            header = POLICY.header_factory("To", value)
            parsed = list(header.addresses)
            defects = header.defects
        except (email.errors.MessageError, IndexError, ValueError):
            parsed, defects = [], [ValueError()]
        if any(isinstance(d, email.errors.NonASCIILocalPartDefect) for d in defects):
            # RFC 6531 would carry it; this user agent does not speak SMTPUTF8.
            raise ComposeError(f"{option} {value!r}: non-ASCII addresses are not supported")
        if defects or not parsed:
            raise ComposeError(f"{option} {value!r} is not an address")
        for address in parsed:
            if not address.username or not address.domain:
                raise ComposeError(f"{option} {value!r} is not an address")
            if not address.addr_spec.isascii():
                # RFC 6531 would carry it; this user agent does not speak SMTPUTF8.
                raise ComposeError(f"{option} {value!r}: non-ASCII addresses are not supported")
        found += parsed
    return found


def content_type(name: str, data: bytes) -> tuple[str, str]:
    """The MIME type of a file: from its name, else from its first octets."""
    guessed, encoding = mimetypes.guess_type(name, strict=False)
    kind = _COMPRESSED.get(encoding or "") or guessed
    if kind is None:
        kind = next((k for magic, k in _MAGIC if data.startswith(magic)), None)
    if kind is None:
        try:
            data.decode("utf-8")
            kind = "application/octet-stream" if b"\0" in data else "text/plain"
        except UnicodeDecodeError:
            kind = "application/octet-stream"
    maintype, _, subtype = kind.partition("/")
    return maintype, subtype


def _header(line: str) -> tuple[str, str]:
    name, colon, value = line.partition(":")
    name = name.strip()
    if not colon or not _FIELD_NAME.fullmatch(name):
        raise ComposeError(f"--header {line!r} is not 'Name: value'")
    if name.lower() in _OWN_FIELDS:
        raise ComposeError(f"--header {name}: set by send's own options")
    if "\r" in value or "\n" in value:
        raise ComposeError(f"--header {name}: the value has a line break")
    return name, value.strip()


def read_file(path: Path, option: str) -> bytes:
    """A file the user named with ``option``; a failure said in one line."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ComposeError(f"{option} {path}: no such file") from None
    except IsADirectoryError:
        raise ComposeError(f"{option} {path}: is a directory") from None
    except OSError as exc:
        raise ComposeError(f"{option} {path}: {exc.strerror}") from None


def compose(draft: Draft) -> Composed:
    """The message for ``draft`` and its envelope."""
    if not draft.sender:
        raise ComposeError("--from is required")
    senders = addresses("--from", [draft.sender])
    if len(senders) != 1:
        raise ComposeError("--from names one address")
    sender = senders[0]
    to = addresses("--to", draft.to)
    cc = addresses("--cc", draft.cc)
    bcc = addresses("--bcc", draft.bcc)
    reply_to = addresses("--reply-to", draft.reply_to)
    if not (to or cc or bcc):
        raise ComposeError("no recipient: give --to, --cc or --bcc")
    extra = [_header(line) for line in draft.headers]
    files = [(path.name, read_file(path, "--attach")) for path in draft.attachments]

    message = EmailMessage(policy=POLICY)
    message["From"] = sender
    if to:
        message["To"] = to
    if cc:
        message["Cc"] = cc
    if reply_to:
        message["Reply-To"] = reply_to
    if draft.subject:
        message["Subject"] = draft.subject
    message["Date"] = format_datetime(localtime())
    message_id = make_msgid(domain=sender.domain)
    message["Message-ID"] = message_id
    for name, value in extra:
        message[name] = value
    text = draft.text
    if not text and draft.html is not None:
        text = html_text(draft.html).strip() + "\n"
    message.set_content(text)
    if draft.html is not None:
        message.add_alternative(draft.html, subtype="html")
    for name, data in files:
        maintype, subtype = content_type(name, data)
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    for part in message.walk():
        if part is not message:
            # The email package repeats MIME-Version in parts it makes;
            # RFC 2045 §4 asks for it in the message header only.
            del part["MIME-Version"]
    recipients = [a.addr_spec for a in [*to, *cc, *bcc]]
    return Composed(
        message=message.as_bytes(policy=POLICY),
        mail_from=sender.addr_spec,
        recipients=list(dict.fromkeys(recipients)),
        message_id=message_id,
    )

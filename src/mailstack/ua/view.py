"""A message as `mailstack read` shows it, parsed with `mailstack.mime`.

`Summary` is one row of the message table (and one object of `--json`);
`show` is one message: the header fields that matter (RFC 2047 decoded), the
text (the text/plain part, or the text/html one rendered as text) and the
attachments; `attachments` gives their decoded octets (RFC 2045 §6 transfer
encodings undone) and `save_attachments` writes them under a directory and
nowhere else, whatever name the sender gave them.
"""

from __future__ import annotations

import json
import os
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

from mailstack.errors import MailstackError
from mailstack.mime import ParsedMessage, Part, parse, part_text, transfer_decode

__all__ = [
    "Attachment",
    "Summary",
    "attachments",
    "json_list",
    "safe_filename",
    "save_attachments",
    "show",
    "summary",
    "table",
]

SHOWN_FIELDS = ("Date", "From", "To", "Cc", "Reply-To", "Subject")
# Characters of the text shown; a longer text is cut with a note.
TEXT_LIMIT = 1_000_000
# RFC 5322 §3.6.4 message ids, RFC 2183 filenames: longer names are cut here.
NAME_OCTETS = 200


@dataclass(frozen=True, slots=True)
class Summary:
    number: int
    uid: str
    date: datetime | None
    sender: str
    to: str
    subject: str
    size: int
    flags: list[str] = field(default_factory=list)
    attachments: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "number": self.number,
            "uid": self.uid,
            "date": self.date.isoformat() if self.date else None,
            "from": self.sender,
            "to": self.to,
            "subject": self.subject,
            "size": self.size,
            "flags": self.flags,
            "attachments": self.attachments,
        }


@dataclass(frozen=True, slots=True)
class Attachment:
    name: str | None
    content_type: str
    data: bytes


def header_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None


def _field(parsed: ParsedMessage, name: str) -> str:
    return " ".join((parsed.header_value(name) or "").split())


def _leaves(part: Part) -> list[Part]:
    """The message's own leaves: an attached message is one leaf, not entered."""
    if part.children:
        return [leaf for child in part.children for leaf in _leaves(child)]
    return [part]


def _is_attachment(part: Part) -> bool:
    if part.disposition is not None and part.disposition[0] == "attachment":
        return True
    return part.filename() is not None or part.maintype not in ("text", "multipart")


def _text_part(root: Part) -> Part | None:
    leaves = [p for p in _leaves(root) if p.maintype == "text" and not _is_attachment(p)]
    return next((p for p in leaves if p.subtype == "plain"), None) or next(
        (p for p in leaves if p.subtype == "html"), None
    )


def attachments(raw: bytes, parsed: ParsedMessage | None = None) -> list[Attachment]:
    parsed = parsed or parse(raw)
    found = []
    for part in _leaves(parsed.root):
        if _is_attachment(part):
            data = transfer_decode(raw[part.body_start : part.body_end], part.encoding)
            found.append(Attachment(part.filename(), f"{part.maintype}/{part.subtype}", data))
    return found


def summary(number: int, uid: str, raw: bytes, flags: list[str]) -> Summary:
    """A row for a whole message (one read from a local Maildir)."""
    parsed = parse(raw)
    return Summary(
        number=number,
        uid=uid,
        date=header_date(parsed.header_value("date")),
        sender=_field(parsed, "from"),
        to=_field(parsed, "to"),
        subject=_field(parsed, "subject"),
        size=len(raw),
        flags=flags,
        attachments=[a.name or "(unnamed)" for a in attachments(raw, parsed)],
    )


def show(raw: bytes) -> str:
    """The message as a reader wants it: fields, text, attachments."""
    parsed = parse(raw)
    lines = [
        f"{name}: {_field(parsed, name)}" for name in SHOWN_FIELDS if parsed.header_value(name)
    ]
    lines.append("")
    body = _text_part(parsed.root)
    if body is not None:
        text = part_text(raw, body, TEXT_LIMIT)
        lines.append(text.rstrip("\n"))
        if len(text) >= TEXT_LIMIT:
            lines.append(f"[text cut at {TEXT_LIMIT} characters; --raw shows it all]")
    else:
        lines.append("[no text part]")
    found = attachments(raw, parsed)
    if found:
        lines += ["", "Attachments:"]
        for i, attachment in enumerate(found, 1):
            name = attachment.name or "(unnamed)"
            lines.append(
                f"  {i}. {name} ({attachment.content_type}, {len(attachment.data)} octets)"
            )
    return "\n".join(lines) + "\n"


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def table(rows: list[Summary], *, total: int, page: int, pages: int) -> str:
    """Newest first: number, UID, date, from, subject, size, flags, attachment mark."""
    # UIDs are short numbers over IMAP, Maildir keys (which --uid takes) for POP3.
    width = max([8, *(len(row.uid) for row in rows)])
    out = [f"{'#':>5} {'UID':>{width}}  {'DATE':16}  {'FROM':24}  {'SUBJECT':30} {'SIZE':>8} FLAGS"]
    for row in rows:
        date = row.date.strftime("%Y-%m-%d %H:%M") if row.date else "-"
        mark = "@" if row.attachments else " "
        out.append(
            f"{row.number:>5} {row.uid:>{width}}  {date:16}  {_short(row.sender, 24):24}  "
            f"{_short(row.subject, 30):30} {row.size:>8} {mark}{' '.join(row.flags)}"
        )
    if pages > 1:
        out.append(f"page {page} of {pages} ({total} messages; --page N for others)")
    elif not rows:
        out.append("(no messages)")
    return "\n".join(out) + "\n"


def json_list(rows: list[Summary]) -> str:
    return json.dumps([row.to_json() for row in rows], ensure_ascii=False, indent=1) + "\n"


def safe_filename(name: str | None, index: int) -> str:
    """A file name that stays inside the directory it is written to: the last
    path component only, no control characters, no leading dots, not empty."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(c for c in base if unicodedata.category(c)[0] != "C").strip()
    base = base.lstrip(".").strip()
    while len(base.encode("utf-8")) > NAME_OCTETS:
        base = base[:-1]
    return base or f"attachment-{index}"


def save_attachments(raw: bytes, directory: Path) -> list[Path]:
    """Write every attachment into ``directory`` (created); never overwrite,
    never follow a link, never leave the directory."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        root = directory.resolve(strict=True)
    except OSError as exc:
        raise MailstackError(f"--save-attachments {directory}: {exc.strerror}") from None
    written = []
    for i, attachment in enumerate(attachments(raw), 1):
        base = safe_filename(attachment.name, i)
        stem, dot, suffix = base.rpartition(".")
        if not stem:
            stem, dot, suffix = base, "", ""
        for copy in range(1, 1000):
            name = base if copy == 1 else f"{stem}-{copy}{dot}{suffix}"
            path = root / name
            if path.parent != root:
                raise MailstackError(f"attachment name {attachment.name!r} leaves the directory")
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            except FileExistsError:
                continue
            except OSError as exc:
                raise MailstackError(f"cannot write {path}: {exc.strerror}") from None
            with os.fdopen(fd, "wb") as out:
                out.write(attachment.data)
            written.append(path)
            break
    return written

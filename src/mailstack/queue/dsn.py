"""Delivery status notifications (RFC 3464) for the queue's senders.

A DSN is a ``multipart/report; report-type=delivery-status`` (RFC 6522):
a human-readable part, a ``message/delivery-status`` part (one block of
per-message fields, then one block per recipient) and the original message's
header (``text/rfc822-headers``) or, for a failure when the sender asked
RET=FULL (RFC 3461 §4.3), the whole message (``message/rfc822``). What is
returned is at most ``returned_size`` octets (``[limits] dsn_returned_size``,
like Postfix's ``bounce_size_limit``): a larger message is returned as its
header, and a larger header as the whole fields that fit, so a DSN never
copies or parses more of a big message than that. It is sent
from the null reverse-path (RFC 5321 §4.5.5) so that it never causes another
bounce, and says ``Auto-Submitted: auto-replied`` (RFC 3834 §5).
"""

from __future__ import annotations

import email.utils
import re
import secrets
from collections.abc import Sequence
from email import policy as email_policy
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.parser import BytesParser

from mailstack.queue.policy import Report
from mailstack.store import NewEntry, NewRecipient, QueueEntry

__all__ = ["compose", "report_entry", "xtext_decode"]

_XTEXT_HEX = re.compile(r"\+([0-9A-F]{2})")

_SUBJECTS = {
    "failed": "Undelivered Mail Returned to Sender",
    "delayed": "Delayed Mail (still being retried)",
    "delivered": "Successful Mail Delivery Report",
    "relayed": "Mail Relayed Report",
}
_INTRO = {
    "failed": "could not be delivered to one or more recipients. It is attached below.",
    "delayed": (
        "has not been delivered yet to one or more recipients. The mail system will\n"
        "keep trying; you do not need to send it again."
    ),
    "delivered": "was delivered to the following recipients.",
    "relayed": (
        "was handed to the following recipients' mail servers, which do not report\n"
        "further on delivery."
    ),
}


def xtext_decode(text: str) -> str:
    """RFC 3461 §4: "+" followed by two upper-case hex digits stands for that octet."""
    return _XTEXT_HEX.sub(lambda m: chr(int(m.group(1), 16)), text)


def _address_type(address: str) -> str:
    # RFC 6533 §3: a non-ASCII address is reported with the utf-8 address type.
    return "rfc822" if address.isascii() else "utf-8"


def _date(when: float) -> str:
    return email.utils.formatdate(when, localtime=False, usegmt=True)


# Postfix's bounce_size_limit default.
RETURNED_SIZE = 50_000


def _headers(original: bytes, limit: int) -> bytes:
    """The header section, or as many of its whole lines as fit in ``limit``."""
    end = original.find(b"\r\n\r\n", 0, limit)
    if end >= 0:
        return original[: end + 4]
    if len(original) <= limit:
        return original
    cut = original.rfind(b"\r\n", 0, limit)
    return original[: cut + 2] if cut >= 0 else b""


def _fields(pairs: Sequence[tuple[str, str]]) -> Message:
    block = Message()
    for name, value in pairs:
        block[name] = value
    return block


def _action_of(reports: Sequence[Report]) -> str:
    for action in ("failed", "delayed", "delivered", "relayed"):
        if any(r.action == action for r in reports):
            return action
    raise ValueError("a DSN needs at least one report")


def compose(
    entry: QueueEntry,
    original: bytes,
    reports: Sequence[Report],
    *,
    reporting_mta: str,
    now: float,
    returned_size: int = RETURNED_SIZE,
) -> bytes:
    """The DSN for ``entry`` about ``reports``, addressed to its envelope
    sender, returning at most ``returned_size`` octets of ``original``."""
    action = _action_of(reports)
    report = MIMEMultipart("report", report_type="delivery-status")
    report["From"] = f"Mail Delivery System <MAILER-DAEMON@{reporting_mta}>"
    report["To"] = entry.mail_from
    report["Subject"] = _SUBJECTS[action]
    report["Date"] = _date(now)
    report["Message-ID"] = f"<{secrets.token_hex(12)}@{reporting_mta}>"
    report["Auto-Submitted"] = "auto-replied"

    lines = [f"This is the mail system at {reporting_mta}.", "", f"Your message {_INTRO[action]}"]
    lines.append("")
    for r in reports:
        lines.append(f"<{r.address}>: {r.action}: {r.reason}")
    text = "\n".join(lines) + "\n"
    report.attach(MIMEText(text, "plain", "us-ascii" if text.isascii() else "utf-8"))

    per_message = [("Reporting-MTA", f"dns; {reporting_mta}")]
    if entry.envid:
        per_message.insert(0, ("Original-Envelope-Id", xtext_decode(entry.envid)))
    per_message.append(("Arrival-Date", _date(entry.created)))
    blocks: list[Message | str] = [_fields(per_message)]
    for r in reports:
        fields: list[tuple[str, str]] = []
        if r.orcpt:
            fields.append(("Original-Recipient", xtext_decode(r.orcpt)))
        fields += [
            ("Final-Recipient", f"{_address_type(r.address)}; {r.address}"),
            ("Action", r.action),
            ("Status", r.status),
        ]
        if r.remote_mta:
            fields.append(("Remote-MTA", f"dns; {r.remote_mta}"))
        if r.diagnostic:
            fields.append(("Diagnostic-Code", f"smtp; {r.diagnostic}"))
        fields.append(("Last-Attempt-Date", _date(r.last_attempt)))
        if r.will_retry_until is not None:
            fields.append(("Will-Retry-Until", _date(r.will_retry_until)))
        blocks.append(_fields(fields))
    status = MIMEBase("message", "delivery-status")
    status.set_payload(blocks)
    report.attach(status)

    if action == "failed" and entry.ret == "FULL" and len(original) <= returned_size:
        returned = MIMEMessage(BytesParser(policy=email_policy.compat32).parsebytes(original))
        if any(b > 127 for b in original):
            returned["Content-Transfer-Encoding"] = "8bit"
        report.attach(returned)
    else:
        header = _headers(original, returned_size)
        if header.isascii():
            part = MIMEBase("text", "rfc822-headers")
            part.set_payload(header.decode("ascii"))
        else:
            # RFC 6533 §6.3: a UTF-8 header section goes back as message/global-headers.
            part = MIMEBase("message", "global-headers")
            part["Content-Transfer-Encoding"] = "8bit"
            part.set_payload([BytesParser(policy=email_policy.compat32).parsebytes(header)])
        report.attach(part)
    addresses = [entry.mail_from, *(r.address for r in reports)]
    if all(address.isascii() for address in addresses):
        return report.as_bytes(policy=email_policy.SMTP)
    # RFC 6533 §3: to and about SMTPUTF8 addresses, the header fields carry
    # UTF-8 as it is (the DSN then travels with SMTPUTF8, see report_entry).
    return report.as_bytes(policy=email_policy.SMTPUTF8)


def report_entry(
    entry: QueueEntry,
    original: bytes,
    reports: Sequence[Report],
    *,
    reporting_mta: str,
    now: float,
    expires: float,
    returned_size: int = RETURNED_SIZE,
) -> NewEntry:
    """The DSN as a queue entry from <> to the sender (RFC 3461 §6.1)."""
    data = compose(
        entry, original, reports, reporting_mta=reporting_mta, now=now, returned_size=returned_size
    )
    return NewEntry(
        mail_from="",
        recipients=[NewRecipient(entry.mail_from, notify="NEVER")],
        data=data,
        now=now,
        expires=expires,
        smtputf8=not entry.mail_from.isascii(),
        body="8BITMIME" if any(b > 127 for b in data) else None,
    )

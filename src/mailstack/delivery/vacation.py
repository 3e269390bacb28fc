"""Vacation auto-replies (RFC 3834), as JMAP VacationResponse (RFC 8621 §8)
sets them up: when a message is filed in the INBOX of an account whose
vacation response is enabled, and it arrives within the response's dates,
its sender gets the reply, through the queue, at most once per sender per
period (``[jmap] vacation_days``; remembered in the store, and forgotten
when the response is changed).

No reply goes (RFC 3834 §2, §3.1.2) to a null reverse-path, to a message
marked ``Auto-Submitted`` other than ``no``, to one from a mailing list
(``List-Id`` or any ``List-*`` field, ``Precedence: bulk|junk|list``), to
addresses that stand for programs or lists (``owner-*``, ``*-request``,
``MAILER-DAEMON``, ``noreply``...), or to a message not addressed to the
account by one of its addresses in To, Cc or Bcc (or their Resent- forms).
The reply goes to the envelope sender (§3.1.1) with a null MAIL FROM
(§3.3), ``Auto-Submitted: auto-replied`` (§5), ``In-Reply-To`` and
``References`` (§3.1.4), and the subject ``Auto: `` and the original's
unless the response names one (§3.1.5).

Local delivery asks `Vacations.respond` after every commit into an INBOX;
whether an account has a response enabled is cached per node for a minute
(and forgotten at once when this node changes it), so delivery to accounts
without one costs a dictionary lookup.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser
from email.policy import SMTP, compat32
from email.utils import formatdate, getaddresses, make_msgid
from typing import TYPE_CHECKING, Any

from mailstack.delivery.outbound import dkim_signature, enqueue, may_send_as
from mailstack.mime import decode_header, html_text
from mailstack.store import Account, NewRecipient, Record

if TYPE_CHECKING:
    from mailstack.app import Node

__all__ = ["KIND", "Settings", "Vacations", "compose", "refuses", "settings"]

log = logging.getLogger("mailstack.vacation")

KIND = "VacationResponse"  # the JMAP object, one record per account
REPLIES = "VacationReplies"  # whom it answered, one record per account
CACHE_SECONDS = 60.0
# Addresses of To/Cc/Bcc looked up to find the account's own (a bound on work).
ADDRESSES_CHECKED = 50

# RFC 3834 §2: addresses that stand for programs or lists.
_PROGRAMS = re.compile(
    r"^(owner-.*|.*-owner|.*-request|mailer-daemon|listserv|majordomo|postmaster"
    r"|no-?reply|do-?not-?reply|bounces?|.*-bounces?)$",
    re.IGNORECASE,
)
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")


@dataclass(frozen=True, slots=True)
class Settings:
    """A VacationResponse (RFC 8621 §8) as the responder reads it."""

    is_enabled: bool = False
    from_date: datetime.datetime | None = None
    to_date: datetime.datetime | None = None
    subject: str | None = None
    text_body: str | None = None
    html_body: str | None = None

    def active(self, now: datetime.datetime) -> bool:
        """§8: on or after fromDate and before toDate (either may be null)."""
        if not self.is_enabled:
            return False
        if self.from_date is not None and now < self.from_date:
            return False
        return self.to_date is None or now < self.to_date


def _date(value: object) -> datetime.datetime | None:
    if not isinstance(value, str) or not value.endswith("Z"):
        return None
    try:
        return datetime.datetime.fromisoformat(value[:-1] + "+00:00")
    except ValueError:
        return None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def settings(record: Record | None) -> Settings:
    if record is None:
        return Settings()
    try:
        value = json.loads(record.data)
    except ValueError:
        return Settings()
    if not isinstance(value, dict):
        return Settings()
    return Settings(
        value.get("isEnabled") is True,
        _date(value.get("fromDate")),
        _date(value.get("toDate")),
        _text(value.get("subject")),
        _text(value.get("textBody")),
        _text(value.get("htmlBody")),
    )


def refuses(header: Message, mail_from: str) -> str | None:
    """Why RFC 3834 says not to answer this message (None: it may be
    answered, if it is addressed to the account)."""
    if not mail_from or "@" not in mail_from:
        return "null sender"  # §2: never to a null reverse-path
    auto = str(header.get("Auto-Submitted", "no")).split(";")[0].split("(")[0].strip()
    if auto.lower() != "no":
        return "auto-submitted"  # §2, §5
    precedence = str(header.get("Precedence", "")).strip().lower()
    if precedence in ("bulk", "junk", "list"):
        return "bulk"
    if any(name.lower().startswith("list-") for name in header.keys()):
        return "list"  # RFC 2369, RFC 2919 fields: a list's message
    if _PROGRAMS.match(mail_from.rpartition("@")[0]):
        return "program"
    return None


def addressed(header: Message) -> list[str]:
    """The addresses of To, Cc, Bcc and their Resent- forms (§2), at most
    ADDRESSES_CHECKED, each once."""
    values: list[str] = []
    for name in ("To", "Cc", "Bcc", "Resent-To", "Resent-Cc", "Resent-Bcc"):
        values.extend(str(v) for v in header.get_all(name, []))
    found = [address.lower() for _name, address in getaddresses(values) if "@" in address]
    return list(dict.fromkeys(found))[:ADDRESSES_CHECKED]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def compose(
    response: Settings, header: Message, *, sender: str, to: str, hostname: str
) -> bytes:
    """The auto-reply (RFC 3834 §3) to a message from ``to``, from ``sender``."""
    reply = EmailMessage(policy=SMTP)
    reply["From"] = sender
    reply["To"] = to
    original = _one_line(decode_header(str(header.get("Subject", ""))))[:200]
    subject = response.subject if response.subject is not None else f"Auto: {original}".strip()
    reply["Subject"] = _one_line(subject) or "Auto: away"
    reply["Date"] = formatdate(localtime=False)
    reply["Message-ID"] = make_msgid(domain=hostname)
    message_id = _MESSAGE_ID.search(str(header.get("Message-ID", "")))
    if message_id is not None:
        reply["In-Reply-To"] = message_id.group(0)
        earlier = _MESSAGE_ID.findall(str(header.get("References", "")))[-20:]
        reply["References"] = " ".join([*earlier, message_id.group(0)])
    reply["Auto-Submitted"] = "auto-replied"
    text = response.text_body
    html = response.html_body
    if text is None and html is not None:
        text = html_text(html)  # RFC 8621 §8: a plain part made from the HTML
    if text is None:
        text = "I am away and will read your message when I am back.\n"
    reply.set_content(text)
    if html is not None:
        reply.add_alternative(html, subtype="html")
    return reply.as_bytes()


async def _addressed_to(store: Any, account: Account, header: Message) -> bool:
    for address in addressed(header):
        if await may_send_as(store, account, address):
            return True
    return False


class Vacations:
    """The node's auto-responder (per-node state: the per-account cache of
    "has a response enabled" and the locks that keep two deliveries from
    answering the same sender twice)."""

    def __init__(
        self, period: float = 7 * 86400.0, clock: Callable[[], float] = time.time
    ) -> None:
        self.period = period  # seconds between two replies to one sender
        self.clock = clock
        self._enabled: dict[int, tuple[float, bool]] = {}
        self._locks: dict[int, asyncio.Lock] = {}

    def forget(self, account_id: int) -> None:
        """The account's response changed (VacationResponse/set)."""
        self._enabled.pop(account_id, None)

    async def _enabled_now(self, store: Any, account_id: int) -> bool:
        now = self.clock()
        cached = self._enabled.get(account_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        records = await store.records(account_id, KIND)
        enabled = settings(records[0] if records else None).is_enabled
        self._enabled[account_id] = (now + CACHE_SECONDS, enabled)
        return enabled

    async def respond(
        self,
        node: Node,
        message: bytes,
        mail_from: str,
        recipients: Iterable[tuple[str, Iterable[int]]],
    ) -> None:
        """Answer for each recipient account with a response enabled. Never
        raises: the message is delivered whatever becomes of the reply."""
        if not mail_from:
            return
        try:
            store: Any = node.store
            due: dict[int, str] = {}
            for rcpt, account_ids in recipients:
                for account_id in account_ids:
                    if account_id not in due and await self._enabled_now(store, account_id):
                        due[account_id] = rcpt
            if not due:
                return
            header = BytesHeaderParser(policy=compat32).parsebytes(message)
            why = refuses(header, mail_from)
            if why is not None:
                log.debug("no auto-reply to <%s>: %s", mail_from, why)
                return
            for account_id, rcpt in due.items():
                accounts = await store.resolve_local(rcpt) or []
                for account in accounts:
                    if account.id == account_id:
                        await self._answer(node, account, header, mail_from)
        except Exception:
            log.exception("auto-reply to <%s> failed", mail_from)

    async def _answer(self, node: Node, account: Account, header: Message, sender: str) -> None:
        store: Any = node.store
        if sender.lower() == account.address or await may_send_as(store, account, sender):
            return  # the account's own mail
        records = await store.records(account.id, KIND)
        if not records:
            return
        response = settings(records[0])
        now = datetime.datetime.now(datetime.UTC)
        if not response.active(now):
            return
        if not await _addressed_to(store, account, header):
            log.debug("no auto-reply to <%s>: not addressed to %s", sender, account.address)
            return
        lock = self._locks.setdefault(account.id, asyncio.Lock())
        async with lock:
            if not await self._remember(store, account.id, records[0], sender.lower(), now):
                return
        reply = compose(
            response, header, sender=account.address, to=sender, hostname=node.hostname
        )
        domain = account.address.rpartition("@")[2]
        reply = await dkim_signature(reply, domain, store) + reply
        # RFC 3834 §3.3: a null MAIL FROM, so that no one answers the answer.
        entry_id = await enqueue(node, "", [NewRecipient(sender)], reply)
        log.info("auto-reply from %s to <%s> queued as %d", account.address, sender, entry_id)

    async def _remember(
        self, store: Any, account_id: int, response: Record, sender: str, now: datetime.datetime
    ) -> bool:
        """Note that ``sender`` is answered now, durably; False when it was
        answered within the period of this same response."""
        period = self.period
        stamp = now.timestamp()
        found: Sequence[Record] = await store.records(account_id, REPLIES)
        senders: dict[str, float] = {}
        if found:
            try:
                kept = json.loads(found[0].data)
            except ValueError:
                kept = {}
            if isinstance(kept, dict) and kept.get("response") == response.modseq:
                senders = {
                    k: v for k, v in dict(kept.get("senders", {})).items()
                    if isinstance(v, int | float) and v > stamp - period
                }
        if sender in senders:
            return False
        senders[sender] = stamp
        data = json.dumps({"response": response.modseq, "senders": senders})
        if found:
            await store.record_update(account_id, REPLIES, found[0].id, data)
        else:
            await store.record_create(account_id, REPLIES, data)
        return True

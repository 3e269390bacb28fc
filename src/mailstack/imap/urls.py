"""What an IMAP URL names, read from the store: CATENATE's URLs (RFC 4469
§5), URLFETCH (RFC 4467 §6.3) and the submission server's BURL (RFC 4468)
all come here, so a URL verifies the same way wherever it is used.

URLAUTH (RFC 4467): the INTERNAL mechanism's verifier is HMAC-SHA256 of the
URL rump under the mailbox access key (§7), in hex. A mailbox's key is 256
random bits made the first time a URL of the mailbox is authorized and kept
in the owner's per-account records (kind ``urlauth-key``, store/contract/
records.py); RESETKEY destroys keys, which invalidates every URL made with
them. Keys never leave this module: they are not logged nor sent anywhere.
Verifiers are compared in constant time.

The submission server reaches ``resolve`` through the node
(``Node.burl_octets`` in app.py), since smtp may not import imap. Within the
imap package this module is imported as a module (``from mailstack.imap
import urls``): its import of fetch.py brings in the session and the command
families, which import it.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mailstack.errors import ImapError
from mailstack.imap import fetch
from mailstack.imap.proto.imapurl import BadUrl, ImapUrl, parse
from mailstack.imap.proto.parser import parse_section
from mailstack.mime import Part, count_lines, transfer_decode

if TYPE_CHECKING:
    from mailstack.imap.cache import ParsedCache
    from mailstack.imap.proto.commands import Section
    from mailstack.mime import ParsedMessage
    from mailstack.store import Mailbox, Store

__all__ = [
    "KEY_KIND",
    "MECHANISMS",
    "Named",
    "Refusal",
    "Requester",
    "authorize",
    "mailbox_key",
    "message_octets",
    "owner_address",
    "reset_keys",
    "resolve",
    "resolve_named",
]

KEY_KIND = "urlauth-key"
MECHANISMS = ("INTERNAL",)  # RFC 4467 §7


class Refusal(enum.StrEnum):
    """Why a URL gives nothing (URLFETCH says only NIL; BURL says which)."""

    MALFORMED = "malformed"  # not an IMAP URL of a message with URLAUTH
    FOREIGN = "foreign"  # a URL of another server
    UNAUTHORIZED = "unauthorized"  # it does not verify for this requester
    MISSING = "missing"  # it verifies but names no message or part


@dataclass(frozen=True, slots=True)
class Requester:
    """Who uses a URLAUTH URL (RFC 4467 §3): a user logged in to IMAP, or
    the submission server acting for its authenticated user (``submit``)."""

    user: str
    submit: bool = False

    def may_use(self, url: ImapUrl) -> bool:
        if url.access == "anonymous":
            return True
        if url.access == "authuser":
            return True  # every requester here has logged in to this node
        name = (url.access_user or "").lower()
        if name != self.user.lower():
            return False
        return (url.access == "submit") == self.submit


# -- mailbox access keys (RFC 4467 §7) ----------------------------------------


def _names(data: dict[str, object], mailbox: Mailbox) -> bool:
    """Whether a key record is the mailbox's: its id and UIDVALIDITY, so a
    mailbox made again under a reused id never takes an old key."""
    return data.get("mailbox") == mailbox.id and data.get("uidvalidity") == mailbox.uidvalidity


async def mailbox_key(
    store: Store[ParsedMessage], mailbox: Mailbox, *, create: bool = False
) -> bytes | None:
    """The mailbox's access key; made if missing and ``create``."""
    for attempt in range(2):
        found = [
            (record.id, str(data["key"]))
            for record in await store.records(mailbox.account_id, KEY_KIND)
            if _names(data := json.loads(record.data), mailbox)
        ]
        if found:
            # Two sessions may have made one at once: the oldest is the key.
            return bytes.fromhex(min(found)[1])
        if not create or attempt:
            return None
        data = {
            "mailbox": mailbox.id,
            "uidvalidity": mailbox.uidvalidity,
            "key": secrets.token_hex(32),
        }
        await store.record_create(mailbox.account_id, KEY_KIND, json.dumps(data))
    return None


async def reset_keys(
    store: Store[ParsedMessage], account_id: int, mailbox: Mailbox | None = None
) -> None:
    """Destroy the keys of one mailbox, or all of the account's (RESETKEY,
    which so also clears the keys of mailboxes deleted since)."""
    for record in await store.records(account_id, KEY_KIND):
        if mailbox is None or _names(json.loads(record.data), mailbox):
            await store.record_destroy(account_id, KEY_KIND, record.id)


def authorize(key: bytes, rump: str) -> str:
    """The INTERNAL mechanism's verifier of a URL rump."""
    return hmac.new(key, rump.encode("ascii"), hashlib.sha256).hexdigest()


# -- what a URL names -----------------------------------------------------------


async def message_octets(
    store: Store[ParsedMessage], parsed: ParsedCache, mailbox: Mailbox, url: ImapUrl
) -> bytes | None:
    """The octets a message URL names in ``mailbox`` (RFC 5092 §5: the
    message, or BODY[section], then the partial range), or None."""
    raw = await _raw(store, mailbox, url)
    if raw is None:
        return None
    # The parse is read only when a section must be found in the message.
    found = None if url.section is None else await _parse(store, parsed, mailbox, url)
    return _cut(raw, found, url)


async def _raw(store: Store[ParsedMessage], mailbox: Mailbox, url: ImapUrl) -> bytes | None:
    """The octets of the message a URL names (None: a UIDVALIDITY of
    another mailbox, or no such message)."""
    if url.uidvalidity not in (None, mailbox.uidvalidity):
        return None
    return (await store.messages_bytes(mailbox.id, [url.uid])).get(url.uid)


async def _parse(
    store: Store[ParsedMessage], parsed: ParsedCache, mailbox: Mailbox, url: ImapUrl
) -> ParsedMessage | None:
    return (await parsed.get_many(store, mailbox.id, mailbox.uidvalidity, [url.uid])).get(url.uid)


def _cut(raw: bytes, found: ParsedMessage | None, url: ImapUrl) -> bytes | None:
    """What a URL names of a message's octets: BODY[section] (``found``,
    its parse, is needed then), then the partial range; None if the
    section is not in it."""
    if url.section is not None:
        section = _section(url.section)
        if found is None or section is None:
            return None
        part = fetch.section_bytes(raw, found, section)
        if part is None:
            return None
        raw = part
    return _partial(raw, url.partial)


def _section(text: str) -> Section | None:
    """A URL's ;SECTION= (RFC 5092 §5: a FETCH section spec), or None."""
    try:
        return parse_section(text).section
    except ImapError:
        return None


async def owner_address(store: Store[ParsedMessage], hostname: str, url: ImapUrl) -> str | None:
    """Whose mailbox a URL names: ``imap://ann%40x.test@HOST/`` on this
    server's host, or ``imap://ann@x.test/`` where x.test is a domain this
    server keeps mail for (the login split at its "@", as imaptest's URLAUTH
    scripts and Dovecot's users write it). None: another server's URL."""
    if url.host is None or url.user is None:
        return None
    if "@" in url.user:
        return url.user.lower() if url.host.lower() == hostname.lower() else None
    if url.host.lower() in {d.lower() for d in await store.domain_list()}:
        return f"{url.user}@{url.host}".lower()
    return None


async def resolve(
    store: Store[ParsedMessage],
    parsed: ParsedCache,
    hostname: str,
    text: str,
    requester: Requester,
    now: datetime | None = None,
) -> bytes | Refusal:
    """The octets a URLAUTH-authorized URL names, if it verifies for
    ``requester`` (RFC 4467 §6.3; RFC 4468 §3), or why not."""
    verified = await _verify(store, hostname, text, requester, now)
    if isinstance(verified, Refusal):
        return verified
    octets = await message_octets(store, parsed, *verified)
    return Refusal.MISSING if octets is None else octets


@dataclass(frozen=True, slots=True)
class Named:
    """What a verified URL names, for URLFETCH's metadata (RFC 5524 §3):
    ``octets`` as RFC 4467 gives them, and the message's parse and section
    (None: the whole message) to describe and decode them with."""

    octets: bytes
    raw: bytes
    parsed: ParsedMessage
    section: Section | None
    partial: tuple[int, int | None] | None

    def _part(self) -> Part | None:
        """The entity the URL names (RFC 5524 §3.1 BODYPARTSTRUCTURE): the
        message, a part, or for TEXT the body of the message it belongs to;
        None for a header section."""
        section = self.section
        if section is None:
            return self.parsed.root
        part = self.parsed.section(section.part)
        if part is None or section.text is None:
            return part
        return (part.message if section.part else part) if section.text == "TEXT" else None

    def _leaf(self) -> Part | None:
        """The part whose Content-Transfer-Encoding BINARY undoes: one that
        a part number names and that is neither multipart nor a message
        (RFC 2045 §6.4: those have no encoding of their own, and the whole
        message, TEXT and headers are sent as they are, as FETCH BINARY[]
        sends them)."""
        section = self.section
        if section is None or section.text is not None or not section.part:
            return None
        part = self.parsed.section(section.part)
        if part is None or part.children or part.message is not None:
            return None
        return part

    def binary(self) -> bytes | None:
        """The octets with the Content-Transfer-Encoding undone (RFC 5524
        §3.1 BINARY, as RFC 3516 §4.2 BINARY[part]), then the URL's partial
        range; None if that encoding cannot be undone (§5: "On decoding
        error, NIL should be used")."""
        leaf = self._leaf()
        if leaf is None:
            return self.octets
        if not fetch.decodable(leaf):
            return None
        return _partial(self._decoded(leaf), self.partial)

    def _decoded(self, leaf: Part) -> bytes:
        return transfer_decode(self.raw[leaf.body_start : leaf.body_end], leaf.encoding)

    def structure(self, binary: bool) -> bytes:
        """BODYPARTSTRUCTURE (RFC 5524 §3.1): the BODYSTRUCTURE of what the
        URL names, or with ``binary`` of the content BINARY gives (as
        Dovecot answers; an encoding that cannot be undone is described as
        it is). A header section is described as what it holds:
        text/rfc822-headers (RFC 6522 §4)."""
        part = self._part()
        if part is None:
            assert self.section is not None
            data = fetch.section_bytes(self.raw, self.parsed, self.section) or b""
            return fetch.body_structure(_headers_part(data), True)
        leaf = self._leaf()
        if binary and leaf is not None and fetch.decodable(leaf):
            return fetch.decoded_structure(leaf, self._decoded(leaf))
        return fetch.body_structure(part, True)


def _headers_part(data: bytes) -> Part:
    """A header block as a part of its own: text/rfc822-headers (RFC 6522 §4)."""
    return Part(
        header_start=0,
        header_end=0,
        body_start=0,
        body_end=len(data),
        maintype="text",
        subtype="rfc822-headers",
        encoding=fetch.identity_encoding(data),
        lines=count_lines(data, 0, len(data)),
    )


def _partial(data: bytes, partial: tuple[int, int | None] | None) -> bytes:
    """RFC 5092 §5 ;PARTIAL=offset[.length] of the octets a URL names."""
    if partial is None:
        return data
    offset, length = partial
    return data[offset : offset + length] if length is not None else data[offset:]


async def resolve_named(
    store: Store[ParsedMessage],
    parsed: ParsedCache,
    hostname: str,
    text: str,
    requester: Requester,
    now: datetime | None = None,
) -> Named | Refusal:
    """``resolve`` for URLFETCH's metadata (RFC 5524): what the URL names,
    verified the same way, with what describes it."""
    verified = await _verify(store, hostname, text, requester, now)
    if isinstance(verified, Refusal):
        return verified
    mailbox, url = verified
    # The message is read once: its octets and parse serve both what the
    # URL names and what describes it.
    raw = await _raw(store, mailbox, url)
    found = None if raw is None else await _parse(store, parsed, mailbox, url)
    octets = None if raw is None or found is None else _cut(raw, found, url)
    if octets is None or raw is None or found is None:
        return Refusal.MISSING
    section = None if url.section is None else _section(url.section)
    return Named(octets, raw, found, section, url.partial)


async def _verify(
    store: Store[ParsedMessage],
    hostname: str,
    text: str,
    requester: Requester,
    now: datetime | None,
) -> tuple[Mailbox, ImapUrl] | Refusal:
    """The mailbox and parse of a URLAUTH-authorized URL that verifies for
    ``requester`` (RFC 4467 §6.3; RFC 4468 §3), or why it does not: the one
    check every use of such a URL passes."""
    try:
        url = parse(text)
    except BadUrl:
        return Refusal.MALFORMED
    if url.host is None or url.user is None or url.rump is None or url.token is None:
        return Refusal.MALFORMED
    address = await owner_address(store, hostname, url)
    if address is None:
        return Refusal.FOREIGN
    if url.mechanism not in MECHANISMS or not requester.may_use(url):
        return Refusal.UNAUTHORIZED
    if url.expire is not None and url.expire <= (now or datetime.now(UTC)):
        return Refusal.UNAUTHORIZED  # RFC 4467 §3: past EXPIRE it is invalid
    owner = await store.account_get(address)
    assert url.mailbox is not None  # an absolute URL names its mailbox
    mailbox = None if owner is None else await store.mailbox_get(owner.id, url.mailbox)
    key = None if mailbox is None else await mailbox_key(store, mailbox)
    # The same answer whether the owner, the mailbox or its key is missing
    # or the verifier is wrong: a guess learns nothing (RFC 4467 §10).
    if key is None or not hmac.compare_digest(authorize(key, url.rump), url.token):
        return Refusal.UNAUTHORIZED
    assert mailbox is not None
    return mailbox, url

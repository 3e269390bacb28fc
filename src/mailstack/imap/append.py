"""APPEND (RFC 3501 §6.3.11) with APPENDUID (RFC 4315), MULTIAPPEND
(RFC 3502, all or nothing), APPENDLIMIT (RFC 7889), CATENATE (RFC 4469)
and the UTF8 data item (RFC 6855 §4).

CATENATE joins literal text and parts of messages already in the account's
mailboxes, named by IMAP URLs (RFC 5092) on this server: absolute
(``imap://host/INBOX;UIDVALIDITY=9/;UID=3/;SECTION=1``), from the server
root (``/INBOX;UIDVALIDITY=9/;UID=3``) or relative to the selected mailbox
(``;UID=3``). A URL to another server or user, with URLAUTH, or naming
nothing is ``NO [BADURL url]``; a result over APPENDLIMIT ``NO [TOOBIG]``.

The tagged OK goes out only after the store has committed and fsynced the
message (store.append returns after the group commit).
"""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import unquote

from mailstack.errors import ImapError
from mailstack.imap import acl
from mailstack.imap.fetch import section_bytes
from mailstack.imap.messages import client_flags
from mailstack.imap.proto.commands import Append, AppendMessage, Command
from mailstack.imap.proto.parser import canonical_inbox, parse_section
from mailstack.imap.selected import uid_set_text
from mailstack.imap.session import Done, Session, handler
from mailstack.mime import parse_for_store


class _BadUrl(Exception):
    pass


async def _url_octets(s: Session, url: str) -> bytes:
    """What an IMAP URL of this server names (RFC 5092 §5, RFC 4469 §5)."""
    assert s.account is not None
    rest = url
    if rest[:7].lower() == "imap://":
        authority, slash, path = rest[7:].partition("/")
        user, _at, host = authority.rpartition("@")
        host = host.rpartition(":")[0] if ":" in host and "]" not in host else host
        if not slash or host.lower() != s.ctx.hostname.lower():
            raise _BadUrl  # another server's URL (RFC 4469 §5)
        if user and unquote(user.split(";")[0]).lower() != s.account.address.lower():
            raise _BadUrl  # another user's mailbox: that needs URLAUTH (RFC 4467)
        rest = "/" + path
    if rest.startswith("/"):
        cut = rest.upper().find("/;UID=")
        if cut < 0:
            raise _BadUrl
        mailbox_part, rest = rest[1:cut], rest[cut + 1 :]
        encoded, _sep, params = mailbox_part.partition(";")
        name = canonical_inbox(unquote(encoded, errors="strict"))
        uidvalidity = None
        if params:
            key, _eq, value = params.partition("=")
            if key.upper() != "UIDVALIDITY" or not value.isdigit():
                raise _BadUrl
            uidvalidity = int(value)
    elif s.selected is not None:
        name, uidvalidity = s.selected.name, s.selected.uidvalidity
    else:
        raise _BadUrl
    fields: dict[str, str] = {}
    for segment in rest.split("/"):
        key, eq, value = segment.partition("=")
        if not key.startswith(";") or not eq or key[1:].upper() in fields:
            raise _BadUrl
        fields[key[1:].upper()] = unquote(value)
    if not set(fields) <= {"UID", "SECTION", "PARTIAL"} or not fields.get("UID", "").isdigit():
        raise _BadUrl  # ;URLAUTH=, ;EXPIRE= and the like are RFC 4467's
    mailbox = await s.store.mailbox_get(s.account.id, name)
    if mailbox is None or uidvalidity not in (None, mailbox.uidvalidity):
        raise _BadUrl
    uid = int(fields["UID"])
    raw = (await s.store.messages_bytes(mailbox.id, [uid])).get(uid)
    if raw is None:
        raise _BadUrl
    if "SECTION" in fields:
        try:
            item = parse_section(fields["SECTION"])
        except ImapError:
            raise _BadUrl from None
        parsed = (
            await s.ctx.parsed.get_many(s.store, mailbox.id, mailbox.uidvalidity, [uid])
        ).get(uid)
        part = None if parsed is None or item.section is None else (
            section_bytes(raw, parsed, item.section)
        )
        if part is None:
            raise _BadUrl
        raw = part
    if "PARTIAL" in fields:
        offset, _dot, length = fields["PARTIAL"].partition(".")
        if not offset.isdigit() or (length and not length.isdigit()):
            raise _BadUrl
        start = int(offset)
        raw = raw[start : start + int(length)] if length else raw[start:]
    return raw


async def _catenated(s: Session, message: AppendMessage, limit: int) -> AppendMessage:
    """The message a CATENATE list makes (RFC 4469 §5), within ``limit``."""
    assert message.catenate is not None
    pieces: list[bytes] = []
    size = 0
    for kind, value in message.catenate:
        if kind == "TEXT":
            assert isinstance(value, bytes)
            data = value
        else:
            assert isinstance(value, str)
            try:
                data = await _url_octets(s, value)
            except (_BadUrl, UnicodeDecodeError):
                raise ImapError("Bad URL", code="BADURL " + value) from None
        size += len(data)
        if size > limit:
            raise ImapError("Message too large", code="TOOBIG")
        pieces.append(data)
    return replace(message, data=b"".join(pieces), catenate=None)


@handler("APPEND")
async def append(s: Session, cmd: Command) -> Done | None:
    args = cmd.args
    assert isinstance(args, Append)
    # RFC 4314 §4: the i right on the target.
    access = await acl.require(s, args.mailbox, "i", missing="TRYCREATE")
    mailbox = access.mailbox
    assert mailbox is not None
    limit = s.append_limit()
    messages = [
        m if m.catenate is None else await _catenated(s, m, limit) for m in args.messages
    ]
    for message in messages:
        if len(message.data) > limit:
            raise ImapError("Message too large", code="TOOBIG")
        if not message.data:
            raise ImapError("Empty message", code="CANNOT")
    # RFC 4314 §4: only the flags the user has the right to set are kept.
    prepared = [(m, acl.allowed_flags(access.rights, client_flags(m.flags))) for m in messages]
    uids: list[int] = []
    try:
        for message, flags in prepared:
            parsed = await parse_for_store(message.data)
            uids.append(
                await s.store.append(
                    mailbox.id, message.data, parsed, flags, message.internaldate
                )
            )
    except BaseException:
        # RFC 3502 §3: if any message fails, none of them is appended.
        if uids:
            await s.store.expunge(mailbox.id, uids, require_deleted=False)
        raise
    if s.selected is not None and s.selected.mailbox_id == mailbox.id:
        s.changed.set()  # RFC 3501 §6.3.11: the new message's EXISTS now
    return Done("APPEND completed", f"APPENDUID {mailbox.uidvalidity} {uid_set_text(uids)}")

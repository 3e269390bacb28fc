"""APPEND (RFC 3501 §6.3.11) with APPENDUID (RFC 4315), MULTIAPPEND
(RFC 3502, all or nothing), APPENDLIMIT (RFC 7889), CATENATE (RFC 4469)
and the UTF8 data item (RFC 6855 §4).

CATENATE joins literal text and parts of messages already in the account's
mailboxes, named by IMAP URLs (RFC 5092) on this server: absolute
(``imap://host/INBOX;UIDVALIDITY=9/;UID=3/;SECTION=1``), from the server
root (``/INBOX;UIDVALIDITY=9/;UID=3``) or relative to the selected mailbox
(``;UID=3``); a URL with URLAUTH (RFC 4467) gives what URLFETCH would give
the user, whoever owns the mailbox. A URL to another server, to another
user without URLAUTH, one that does not verify, or naming nothing is
``NO [BADURL url]``; a result over APPENDLIMIT ``NO [TOOBIG]``.

The tagged OK goes out only after the store has committed and fsynced the
message (store.append returns after the group commit).
"""

from __future__ import annotations

from dataclasses import replace

from mailstack.errors import ImapError
from mailstack.imap import acl, urls
from mailstack.imap.messages import client_flags
from mailstack.imap.proto import imapurl
from mailstack.imap.proto.commands import Append, AppendMessage, Command
from mailstack.imap.selected import uid_set_text
from mailstack.imap.session import Done, Session, handler
from mailstack.mime import parse_for_store


async def _url_octets(s: Session, text: str) -> bytes | None:
    """What an IMAP URL of this server names (RFC 5092 §5, RFC 4469 §5):
    one of the user's own messages, or with URLAUTH whatever URLFETCH would
    give the user (RFC 4469 §5.1, RFC 4467 §6.3)."""
    assert s.account is not None
    try:
        url = imapurl.parse(text)
    except imapurl.BadUrl:
        return None
    if url.rump is not None:
        found = await urls.resolve(
            s.store, s.ctx.parsed, s.ctx.hostname, text, urls.Requester(s.account.address)
        )
        return found if isinstance(found, bytes) else None
    if url.host is not None and url.host.lower() != s.ctx.hostname.lower():
        return None  # another server's URL (RFC 4469 §5)
    if url.user is not None and url.user.lower() != s.account.address.lower():
        return None  # another user's mailbox: that needs URLAUTH (RFC 4467)
    if url.mailbox is not None:
        mailbox = await s.store.mailbox_get(s.account.id, url.mailbox)
    elif s.selected is not None:
        mailbox = await s.store.mailbox_by_id(s.selected.mailbox_id)
    else:
        return None
    if mailbox is None:
        return None
    return await urls.message_octets(s.store, s.ctx.parsed, mailbox, url)


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
            found = await _url_octets(s, value)
            if found is None:
                raise ImapError("Bad URL", code="BADURL " + value)
            data = found
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
    messages = [m if m.catenate is None else await _catenated(s, m, limit) for m in args.messages]
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
                await s.store.append(mailbox.id, message.data, parsed, flags, message.internaldate)
            )
    except BaseException:
        # RFC 3502 §3: if any message fails, none of them is appended.
        if uids:
            await s.store.expunge(mailbox.id, uids, require_deleted=False)
        raise
    if s.selected is not None and s.selected.mailbox_id == mailbox.id:
        s.changed.set()  # RFC 3501 §6.3.11: the new message's EXISTS now
    return Done("APPEND completed", f"APPENDUID {mailbox.uidvalidity} {uid_set_text(uids)}")

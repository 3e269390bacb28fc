"""APPEND (RFC 3501 §6.3.11) with APPENDUID (RFC 4315), MULTIAPPEND
(RFC 3502, all or nothing) and APPENDLIMIT (RFC 7889).

The tagged OK goes out only after the store has committed and fsynced the
message (store.append returns after the group commit).
"""

from __future__ import annotations

from mailstack.errors import ImapError
from mailstack.imap import acl
from mailstack.imap.messages import client_flags
from mailstack.imap.proto.commands import Append, Command
from mailstack.imap.selected import uid_set_text
from mailstack.imap.session import Done, Session, handler
from mailstack.mime import parse_for_store


@handler("APPEND")
async def append(s: Session, cmd: Command) -> Done | None:
    args = cmd.args
    assert isinstance(args, Append)
    # RFC 4314 §4: the i right on the target.
    access = await acl.require(s, args.mailbox, "i", missing="TRYCREATE")
    mailbox = access.mailbox
    assert mailbox is not None
    limit = s.append_limit()
    for message in args.messages:
        if len(message.data) > limit:
            raise ImapError("Message too large", code="TOOBIG")
        if not message.data:
            raise ImapError("Empty message", code="CANNOT")
    # RFC 4314 §4: only the flags the user has the right to set are kept.
    prepared = [(m, acl.allowed_flags(access.rights, client_flags(m.flags))) for m in args.messages]
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

"""IDLE (RFC 2177): wait for DONE while sending updates as they happen.

The session's store listeners set ``Session.wakeup``; each wake-up polls
the store and sends EXISTS, EXPUNGE and FETCH FLAGS at once (IDLE is a
command in progress, so expunges may be sent, RFC 3501 §7.4.1), and with
NOTIFY active the STATUS and LIST of the other mailboxes it watches (RFC
5465 §4: notifications go on during IDLE as at any other time).
"""

from __future__ import annotations

import asyncio

from mailstack.errors import ImapError
from mailstack.imap.proto.commands import Command
from mailstack.imap.proto.response import continuation
from mailstack.imap.session import Done, Session, handler


@handler("IDLE")
async def idle(s: Session, cmd: Command) -> Done | None:
    s.send(continuation("idling"))
    await s.channel.flush()
    read = asyncio.ensure_future(s.channel.read_line())
    try:
        while True:
            s.wakeup.clear()
            if s.selected is not None:
                await s.poll(allow_expunge=True)
                if s.closing:
                    await s.channel.flush()
                    break
            await s.notify_mailboxes()
            await s.channel.flush()
            change = asyncio.ensure_future(s.wakeup.wait())
            try:
                await asyncio.wait({read, change}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                if not change.done():
                    change.cancel()
            if read.done():
                break
    finally:
        if not read.done():
            read.cancel()
    if s.closing:
        return Done("", answered=True)
    failure = read.exception()
    if isinstance(failure, ImapError):
        raise failure  # a line too long instead of DONE: BAD, not a logout
    if failure is not None:
        # The idle timeout (or a broken connection) ended the wait.
        s.send(b"* BYE Autologout; idle for too long\r\n")
        s.closing = True
        return Done("", answered=True)
    line = read.result()
    if line is None:
        s.closing = True
        return Done("", answered=True)
    if line.strip().upper() != b"DONE":
        raise ImapError("Expected DONE", bad=True)
    return Done("IDLE terminated")

"""UIDBATCHES (RFC 10022): UID ranges that cut the selected mailbox into
batches of a given number of messages, newest first, for a client to FETCH,
SEARCH or STORE a batch at a time.

The cutting is ``UidBatches.ranges`` (proto/commands.py); this module checks
the batch size and writes the ``* UIDBATCHES`` response. UIDONLY (RFC 9586),
which RFC 10022 is meant to go with, is not offered.
"""

from __future__ import annotations

from mailstack.errors import ImapError
from mailstack.imap.proto.commands import Command, UidBatches
from mailstack.imap.proto.response import quoted
from mailstack.imap.session import Done, Session, handler

__all__ = ["MIN_BATCH_SIZE", "uidbatches_line"]

# RFC 10022: a client asks for at least 500 messages a batch; a smaller
# size is answered NO [TOOFEW].
MIN_BATCH_SIZE = 500


def uidbatches_line(tag: str, ranges: list[tuple[int, int]]) -> bytes:
    """``* UIDBATCHES (TAG "t") hi:lo,hi:lo,...``: the batches in the order
    asked for (newest first), each as its highest UID then its lowest, one
    UID where a batch has one message; no ranges when no batch was found."""
    line = b"* UIDBATCHES (TAG " + quoted(tag) + b")"
    if ranges:
        parts = (b"%d" % hi if hi == lo else b"%d:%d" % (hi, lo) for hi, lo in ranges)
        line += b" " + b",".join(parts)
    return line + b"\r\n"


@handler("UIDBATCHES")
async def uidbatches(s: Session, cmd: Command) -> Done | None:
    args = cmd.args
    assert isinstance(args, UidBatches)
    sel = s.require_selected()
    if args.size < MIN_BATCH_SIZE:
        raise ImapError(f"Batches must hold at least {MIN_BATCH_SIZE} messages", code="TOOFEW")
    s.send(uidbatches_line(cmd.tag, args.ranges(sel.uids)))
    return Done("UIDBATCHES completed")

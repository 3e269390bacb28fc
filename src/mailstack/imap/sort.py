"""SORT and THREAD (RFC 5256), DISPLAYFROM/DISPLAYTO (RFC 5957), ESORT and
CONTEXT=SORT (RFC 5267) and PARTIAL (RFC 9394) for SORT.

The messages are matched as SEARCH matches them (matching.py), then ordered
or threaded by ordering.py from keys made once from the parse stored at
delivery and cached per node; no message is read again.
"""

from __future__ import annotations

from mailstack.errors import ImapError
from mailstack.imap.matching import check_charset, entries, evaluate
from mailstack.imap.ordering import thread_orderedsubject, thread_references, thread_text
from mailstack.imap.proto.commands import Command, Sort, Thread
from mailstack.imap.search import answer
from mailstack.imap.session import Done, Session, handler

__all__ = ["THREAD_ALGORITHMS"]

THREAD_ALGORITHMS = {"ORDEREDSUBJECT": thread_orderedsubject, "REFERENCES": thread_references}


def _charset(charset: str) -> None:
    # RFC 5256 §3: the charset is required; unknown ones are NO [BADCHARSET].
    check_charset(charset)


@handler("SORT")
async def sort(s: Session, cmd: Command) -> Done | None:
    args = cmd.args
    assert isinstance(args, Sort)
    _charset(args.charset)
    await answer(s, cmd, args.key, args.returns, args.partial, args.criteria)
    return None


@handler("THREAD")
async def thread(s: Session, cmd: Command) -> Done | None:
    args = cmd.args
    assert isinstance(args, Thread)
    algorithm = THREAD_ALGORITHMS.get(args.algorithm)
    if algorithm is None:
        raise ImapError("Unsupported threading algorithm", bad=True)
    _charset(args.charset)
    sel = s.require_selected()
    found = await evaluate(s, args.key)
    # The last answer for the same messages is the answer again (the keys of
    # a message never change; sequence numbers only when the view does).
    stamp = (sel.generation, tuple(u for _m, u in found))
    text = sel.recall(("THREAD", args.algorithm, cmd.uid), stamp)
    if text is None:
        text = thread_text(algorithm(await entries(s, found, uid=cmd.uid)))
        sel.remember(("THREAD", args.algorithm, cmd.uid), stamp, text)
    assert isinstance(text, bytes)
    s.send(b"* THREAD " + text + b"\r\n" if text else b"* THREAD\r\n")
    return None

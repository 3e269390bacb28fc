"""SORT and THREAD (RFC 5256), DISPLAYFROM/DISPLAYTO (RFC 5957), ESORT and
CONTEXT=SORT (RFC 5267) and PARTIAL (RFC 9394) for SORT.

The messages are matched as SEARCH matches them (matching.py), then ordered
or threaded by ordering.py from keys made once from the parse stored at
delivery and cached per node; no message is read again.
"""

from __future__ import annotations

from mailstack.errors import ImapError
from mailstack.imap import contexts
from mailstack.imap.matching import check_charset, entries, evaluate, sort_found, uses_modseq
from mailstack.imap.ordering import thread_orderedsubject, thread_references, thread_text
from mailstack.imap.proto.commands import Command, Sort, Thread
from mailstack.imap.search import esearch_line
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
    sel = s.require_selected()
    _charset(args.charset)
    if args.returns is not None and "SAVE" in args.returns:
        raise ImapError("SEARCHRES is not supported", bad=True)
    with_modseq = uses_modseq(args.key)
    if with_modseq:
        s.enable_condstore()
    updating = args.returns is not None and "UPDATE" in args.returns
    if updating:
        contexts.check_tag(s, cmd.tag)
    found = await sort_found(s, await evaluate(s, args.key), args.criteria)
    if args.returns is None:
        numbers = [uid if cmd.uid else msn for msn, uid in found]
        line = b"* SORT" + b"".join(b" %d" % n for n in numbers)
        if with_modseq and numbers:
            # RFC 7162 §3.1.5: the highest mod-sequence of the messages found.
            line += b" (MODSEQ %d)" % max(sel.meta[uid].modseq for _m, uid in found)
        s.send(line + b"\r\n")
        return None
    s.send(
        esearch_line(
            s, cmd, found, args.returns, args.partial, in_order=True, uses_modseq=with_modseq
        )
    )
    if updating:
        contexts.keep(s, cmd, args.key, args.criteria, [uid for _m, uid in found])
    return None


@handler("THREAD")
async def thread(s: Session, cmd: Command) -> Done | None:
    args = cmd.args
    assert isinstance(args, Thread)
    algorithm = THREAD_ALGORITHMS.get(args.algorithm)
    if algorithm is None:
        raise ImapError("Unsupported threading algorithm", bad=True)
    _charset(args.charset)
    found = await evaluate(s, args.key)
    roots = algorithm(await entries(s, found, uid=cmd.uid))
    s.send(b"* THREAD " + thread_text(roots) + b"\r\n" if roots else b"* THREAD\r\n")
    return None

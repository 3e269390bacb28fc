"""Selected-state commands that change messages: CHECK, CLOSE, UNSELECT
(RFC 3691), EXPUNGE and UID EXPUNGE (RFC 4315), STORE with UNCHANGEDSINCE
(RFC 7162 §3.1.3), COPY with COPYUID (RFC 4315) and MOVE (RFC 6851).
"""

from __future__ import annotations

from mailstack.errors import ImapError
from mailstack.imap import acl
from mailstack.imap.proto.commands import Command, Expunge, SequenceSet, Store, Transfer
from mailstack.imap.proto.response import Atom, encode
from mailstack.imap.selected import SYSTEM_FLAGS, SelectedMailbox, flags_atoms, uid_set_text
from mailstack.imap.session import Done, Session, handler
from mailstack.store import FlagMode

_MODES: dict[str, FlagMode] = {"+": "add", "-": "remove", "": "replace"}
_SYSTEM = {f.upper(): f for f in SYSTEM_FLAGS}


def client_flags(flags: tuple[str, ...], known: set[str] | None = None) -> list[str]:
    """Flags a client may set: system flags in their canonical spelling and
    keywords (spelt as already in use: flags are case-insensitive); \\Recent
    is the server's alone (RFC 3501 §2.3.2)."""
    spelling = {k.casefold(): k for k in known or ()}
    out = []
    for flag in flags:
        if flag.startswith("\\"):
            upper = flag.upper()
            if upper == "\\RECENT":
                continue
            if upper not in _SYSTEM:
                raise ImapError("Unknown system flag", bad=True)
            out.append(_SYSTEM[upper])
        else:
            out.append(spelling.get(flag.casefold(), flag))
    return out


async def _keep_for_others(s: Session, sel: SelectedMailbox, uids: list[int] | None) -> None:
    """Before expunging ``uids`` (None: every \\Deleted message), keep their
    octets and parse for the node's other sessions that have the mailbox
    selected: they may FETCH them until told of the expunge (RFC 2180 §4.1.1)."""
    kept = s.ctx.expunged
    if s.ctx.selected_by.get(sel.mailbox_id, 0) < 2 or kept.budget == 0:
        return
    if uids is None:
        uids = [u for u in sel.uids if "\\Deleted" in sel.meta[u].flags]
    wanted: list[int] = []
    total = 0
    for uid in uids:
        meta = sel.meta.get(uid)
        if meta is not None and total + meta.size <= kept.budget:
            wanted.append(uid)
            total += meta.size
    if not wanted:
        return
    raws = await s.store.messages_bytes(sel.mailbox_id, wanted)
    parsed = await s.ctx.parsed.get_many(s.store, sel.mailbox_id, sel.uidvalidity, wanted)
    for uid in wanted:
        raw = raws.get(uid)
        if raw is not None:
            kept.put((sel.mailbox_id, sel.uidvalidity, uid), raw, parsed.get(uid))


def _writable(sel: SelectedMailbox) -> None:
    if sel.readonly:
        raise ImapError("Mailbox is read-only", code="READ-ONLY")


def _resolve(s: Session, cmd: Command, sequence: object) -> list[tuple[int, int]]:
    sel = s.require_selected()
    assert isinstance(sequence, SequenceSet)
    if not cmd.uid and sel.out_of_range(sequence):
        raise ImapError("Invalid message sequence number", bad=True)
    return sel.resolve(sequence, cmd.uid)


@handler("CHECK")
async def check(s: Session, cmd: Command) -> Done | None:
    # RFC 3501 §6.4.1: every write is already committed and fsynced.
    return None


@handler("CLOSE")
async def close(s: Session, cmd: Command) -> Done | None:
    sel = s.require_selected()
    # RFC 4314 §4: without the e right, CLOSE closes without expunging.
    if not sel.readonly and "e" in sel.rights:
        # RFC 3501 §6.4.2: expunge silently, then leave selected state.
        await _keep_for_others(s, sel, None)
        await s.store.expunge(sel.mailbox_id)
    await s.deselect()
    return None


@handler("UNSELECT")
async def unselect(s: Session, cmd: Command) -> Done | None:
    await s.deselect()
    return None


@handler("EXPUNGE")
async def expunge(s: Session, cmd: Command) -> Done | None:
    args = cmd.args
    assert isinstance(args, Expunge)
    sel = s.require_selected()
    _writable(sel)
    acl.require_selected(sel, "e")
    uids = None
    if args.uids is not None:
        uids = [u for _n, u in sel.resolve(args.uids, True)]
    await _keep_for_others(s, sel, uids)
    gone = await s.store.expunge(sel.mailbox_id, uids)
    sel.pending.update(u for u in gone if u in sel.meta)
    s.changed.set()
    return None


@handler("STORE")
async def store(s: Session, cmd: Command) -> Done | None:
    args = cmd.args
    assert isinstance(args, Store)
    sel = s.require_selected()
    _writable(sel)
    pairs = _resolve(s, cmd, args.sequence)
    flags = client_flags(args.flags, sel.keywords)
    if args.unchangedsince is not None:
        s.enable_condstore()
    result = await acl.store_flags(
        s, sel, [u for _n, u in pairs], flags, _MODES[args.mode], args.unchangedsince
    )
    new_keywords = set()
    if args.mode != "-":
        new_keywords = {f for f in flags if not f.startswith("\\")} - sel.keywords
    changed = set()
    for meta in result.changed:
        sel.update_meta(meta)
        changed.add(meta.uid)
    if new_keywords:
        # RFC 3501 §7.2.6: the set of flags in use changed.
        sel.keywords |= new_keywords
        for line in sel.flag_lines():
            s.send(line)
    modified = set(result.modified)
    for msn, uid in pairs:
        if uid in modified or uid not in sel.meta:
            continue
        show_flags = not args.silent
        # RFC 7162 §3.1.3: MODSEQ even for .SILENT when the store changed it.
        show_modseq = s.condstore and (show_flags or uid in changed)
        if not show_flags and not show_modseq:
            continue
        items: list[object] = []
        if cmd.uid or s.qresync:
            items += [Atom("UID"), uid]
        if show_flags:
            items += [Atom("FLAGS"), flags_atoms(sel.flags(uid))]
        if show_modseq:
            items += [Atom("MODSEQ"), [sel.meta[uid].modseq]]
        s.send(b"* %d FETCH " % msn + encode(items) + b"\r\n")
    if modified:
        numbers = modified if cmd.uid else {sel.msn(u) or 0 for u in modified}
        return Done("Some messages were modified", f"MODIFIED {uid_set_text(numbers)}")
    return None


async def _transfer(s: Session, cmd: Command, move: bool) -> Done | None:
    args = cmd.args
    assert isinstance(args, Transfer)
    sel = s.require_selected()
    if move:
        _writable(sel)
        # RFC 6851: MOVE is COPY, STORE \Deleted and EXPUNGE in one, so it
        # needs t and e on the source (RFC 4314 §4).
        acl.require_selected(sel, "te")
    pairs = _resolve(s, cmd, args.sequence)
    # RFC 3501 §6.4.7: TRYCREATE tells the client it may CREATE and retry;
    # RFC 4314 §4: the i right on the target.
    target = await acl.require(s, args.mailbox, "i", missing="TRYCREATE")
    dest = target.mailbox
    assert dest is not None
    uids = [u for _n, u in pairs]
    if not uids:
        return None
    if move:
        await _keep_for_others(s, sel, uids)
        moved = await s.store.move(sel.mailbox_id, uids, dest.id)
    else:
        moved = await s.store.copy(sel.mailbox_id, uids, dest.id)
        if len(moved) < len(uids):
            # Some were expunged by another session meanwhile. RFC 3501
            # §6.4.7: a failed COPY leaves the destination as it was.
            await s.store.expunge(dest.id, [b for _a, b in moved], require_deleted=False)
            raise ImapError("Some messages were expunged meanwhile", code="EXPUNGEISSUED")
    await acl.drop_forbidden_flags(s, sel, dest.id, moved, target.rights)
    if dest.id == sel.mailbox_id:
        s.changed.set()
    code = None
    if moved:
        code = (
            f"COPYUID {dest.uidvalidity} {uid_set_text(a for a, _b in moved)}"
            f" {uid_set_text(b for _a, b in moved)}"
        )
    if not move:
        return Done("COPY completed", code)
    # RFC 6851 §4.3: COPYUID in an untagged OK, then the expunges.
    if code:
        s.send(f"* OK [{code}] Moved\r\n".encode())
    sel.pending.update(a for a, _b in moved if a in sel.meta)
    s.flush_expunges()
    return Done("MOVE completed")


@handler("COPY")
async def copy(s: Session, cmd: Command) -> Done | None:
    return await _transfer(s, cmd, move=False)


@handler("MOVE")
async def move(s: Session, cmd: Command) -> Done | None:
    return await _transfer(s, cmd, move=True)

"""Mailbox commands: SELECT, EXAMINE, CREATE, DELETE, RENAME, SUBSCRIBE,
UNSUBSCRIBE, LIST, LSUB, STATUS (RFC 3501 §6.3) and NAMESPACE (RFC 2342).

Also: LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819), CHILDREN (RFC 3348),
SPECIAL-USE and CREATE-SPECIAL-USE (RFC 6154), STATUS=SIZE (RFC 8438),
SELECT (CONDSTORE) and (QRESYNC ...) (RFC 7162 §3.1.8, §3.2.5).
The hierarchy delimiter is "/"; names on the wire are modified UTF-7.
Other users' mailboxes shared with the user, and the rights each command
needs (RFC 4314 §4), are resolved by acl.py.
"""

from __future__ import annotations

from mailstack.common.rights import OWNER_RIGHTS
from mailstack.errors import ImapError
from mailstack.imap import acl
from mailstack.imap.proto import mutf7
from mailstack.imap.proto.commands import (
    Command,
    Create,
    List,
    MailboxArg,
    Rename,
    Select,
    Status,
)
from mailstack.imap.proto.response import Atom, encode, untagged
from mailstack.imap.selected import SelectedMailbox, flags_atoms, uid_set_text
from mailstack.imap.session import Done, Session, handler
from mailstack.jmap import ids
from mailstack.store import Mailbox, MailboxStatus

DELIMITER = "/"
SPECIAL_USES = frozenset(
    {"\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash"}
)


def wire_name(name: str, utf8: bool) -> str:
    """A mailbox name as sent: UTF-8 to a session that took UTF-8 names
    (RFC 6855 §3, RFC 9051 §5.1), else modified UTF-7 (RFC 3501 §5.1.3)."""
    return name if utf8 else mutf7.encode(name)


def _account_id(s: Session) -> int:
    assert s.account is not None
    return s.account.id


def _check_name(name: str) -> str:
    """A name we can store: no empty levels, no wildcards (RFC 3501 §5.1)."""
    if name.endswith(DELIMITER):
        name = name[:-1]
    if not name or any(not level for level in name.split(DELIMITER)):
        raise ImapError("Bad mailbox name", code="CANNOT")
    if any(c in name for c in "*%") or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise ImapError("Bad mailbox name", code="CANNOT")
    if len(name.encode()) > 1000:
        raise ImapError("Mailbox name too long", code="LIMIT")
    return name


# -- SELECT / EXAMINE --------------------------------------------------------


@handler("SELECT", "EXAMINE")
async def select(s: Session, cmd: Command) -> Done | None:
    args = cmd.args
    assert isinstance(args, Select)
    if s.selected is not None:
        # RFC 7162 §3.2.11: the implicit close of the previous mailbox.
        s.send(b"* OK [CLOSED] Previous mailbox closed\r\n")
    await s.deselect()
    if args.qresync is not None and not s.qresync:
        # RFC 7162 §3.2.5: QRESYNC parameters need ENABLE QRESYNC first.
        raise ImapError("Enable QRESYNC first", bad=True)
    if args.condstore:
        s.condstore = True
    access = await acl.require(s, args.mailbox, "r")
    mailbox = access.mailbox
    assert mailbox is not None
    # RFC 4314 §5.2: READ-ONLY unless i, e or a flag right is granted.
    readonly = args.readonly or not access.read_write
    listener = s.store.listen(mailbox.id)
    try:
        # HIGHESTMODSEQ again, now that the listener hears every change:
        # whatever changes after this read has a greater MODSEQ and reaches
        # the session at its next poll. Usually nothing changed since the
        # read above, which then stands.
        sync = await s.store.mailbox_sync(mailbox.id, mailbox.highest_modseq)
        settled = sync is not None and sync.highest_modseq == mailbox.highest_modseq
        if not settled:
            mailbox = await s.store.mailbox_by_id(mailbox.id) or mailbox
            sync = await s.store.mailbox_sync(mailbox.id, mailbox.highest_modseq)
        listing = await s.ctx.metas.select(s.store, mailbox)
        if readonly:
            # RFC 3501 §6.3.2: EXAMINE must not take \Recent from anyone.
            recent_from = sync.recent_uid if sync is not None else 0
        elif (
            settled
            and sync is not None
            and sync.recent_uid >= mailbox.uidnext
            and (not listing.uids or listing.uids[-1] < mailbox.uidnext)
        ):
            # Every message was claimed already, and the view holds none
            # that came since: nothing to claim, nothing to write (a claim
            # is a commit). What comes later is claimed as it is polled.
            recent_from = mailbox.uidnext
        else:
            recent_from = await s.store.claim_recent(mailbox.id)
    except BaseException:
        listener.close()
        raise
    sel = SelectedMailbox(
        mailbox.id,
        access.client_name(mailbox.name),
        mailbox.uidvalidity,
        readonly,
        listing,
        mailbox.highest_modseq,
        recent_from,
        rights=access.rights,
    )
    # RFC 3501 §6.3.1: FLAGS, EXISTS, RECENT, then OK [UNSEEN], [PERMANENTFLAGS],
    # [UIDNEXT], [UIDVALIDITY]; RFC 7162 §3.1.2.1: [HIGHESTMODSEQ]. RFC 9051
    # §6.3.2 (IMAP4rev2): no RECENT nor UNSEEN, and a LIST of the mailbox.
    sel.show_recent = not s.rev2
    lines = sel.flag_lines()
    s.send(lines[0])
    s.send(b"* %d EXISTS\r\n" % sel.exists)
    if not s.rev2:
        s.send(b"* %d RECENT\r\n" % len(sel.recent))
        # The view is the listing still: its first unseen, found once.
        first_unseen = listing.first_unseen()
        if first_unseen is not None:
            s.send(b"* OK [UNSEEN %d] First unseen message\r\n" % (first_unseen + 1))
    s.send(lines[1])
    s.send(b"* OK [UIDVALIDITY %d] UIDs valid\r\n" % sel.uidvalidity)
    uidnext = max(mailbox.uidnext, sel.uids[-1] + 1 if sel.uids else 1)
    s.send(b"* OK [UIDNEXT %d] Predicted next UID\r\n" % uidnext)
    s.send(b"* OK [HIGHESTMODSEQ %d] Highest\r\n" % sel.modseq)
    s.send(b"* OK [MAILBOXID (%s)] Ok\r\n" % mailbox_id(sel.mailbox_id).encode())
    if not access.shared:
        # RFC 4467 §4: the URLAUTH mechanisms of the mailbox (only its
        # owner may authorize URLs of it).
        s.send(b"* OK [URLMECH INTERNAL] URLAUTH mechanisms\r\n")
    if s.rev2:
        s.send(b'* LIST () "/" ' + encode(wire_name(sel.name, True)) + b"\r\n")
    q = args.qresync
    if q is not None and q.uidvalidity == sel.uidvalidity:
        changed, vanished = await s.store.changes_since(mailbox.id, q.modseq)
        if q.known_uids is not None:
            vanished = q.known_uids.select(vanished, 0xFFFFFFFF)
        if vanished:
            # RFC 7162 §3.2.5.1: VANISHED (EARLIER) first, then FETCH.
            s.send(b"* VANISHED (EARLIER) " + uid_set_text(vanished).encode() + b"\r\n")
        for meta in changed:
            if meta.uid in sel.meta:
                s.send(sel.fetch_flags_line(meta.uid, True, True))
    await s.select(sel, listener)
    return Done(
        "EXAMINE completed" if args.readonly else "SELECT completed",
        "READ-ONLY" if readonly else "READ-WRITE",
    )


# -- CREATE / DELETE / RENAME ------------------------------------------------


async def _create_parents(s: Session, account_id: int, name: str) -> list[str]:
    """RFC 3501 §6.3.3: the server SHOULD create any superior hierarchical
    names; those it made, outermost first."""
    made = []
    levels = name.split(DELIMITER)
    for i in range(1, len(levels)):
        parent = DELIMITER.join(levels[:i])
        if await s.store.mailbox_get(account_id, parent) is None:
            await s.store.mailbox_create(account_id, parent)
            made.append(parent)
    return made


@handler("CREATE")
async def create(s: Session, cmd: Command) -> Done | None:
    args = cmd.args
    assert isinstance(args, Create)
    name = _check_name(args.mailbox)
    if name == "INBOX":
        raise ImapError("INBOX always exists", code="ALREADYEXISTS")
    special = None
    if args.special_use:
        # RFC 6154 §3: one use we know, or NO [USEATTR].
        uses = {"\\" + u[1:].capitalize() for u in args.special_use}
        if len(uses) != 1 or not uses <= SPECIAL_USES:
            raise ImapError("Unsupported special use", code="USEATTR")
        special = uses.pop()
    access = await acl.reach(s, name)
    if access is None:
        raise ImapError("Cannot create a mailbox there", code="CANNOT")
    if access.mailbox is not None:
        if access.shared and "l" not in access.rights:
            raise ImapError("Permission denied", code="NOPERM")
        raise ImapError("Mailbox already exists", code="ALREADYEXISTS")
    await acl.require_parent(s, access)
    made = await _create_parents(s, access.owner.id, access.local)
    box = await s.store.mailbox_create(access.owner.id, access.local, special)
    await acl.inherit(s, access.owner.id, [*made, access.local])
    # RFC 8474 §4.1: the new mailbox's MAILBOXID in the tagged OK.
    return Done("CREATE completed", f"MAILBOXID ({mailbox_id(box.id)})")


@handler("DELETE")
async def delete(s: Session, cmd: Command) -> Done | None:
    args = cmd.args
    assert isinstance(args, MailboxArg)
    if args.mailbox == "INBOX":
        raise ImapError("INBOX cannot be deleted", code="CANNOT")
    reached = await acl.reach(s, args.mailbox)
    if reached is not None and reached.mailbox is None and reached.owner.id == _account_id(s):
        # RFC 9051 §6.3.4: a \Noselect name with inferiors cannot be deleted.
        prefix = reached.local + DELIMITER
        if any(m.name.startswith(prefix) for m in await s.store.mailbox_list(reached.owner.id)):
            raise ImapError("The name has inferior names", code="HASCHILDREN")
    access = await acl.require(s, args.mailbox, "x")
    assert access.mailbox is not None
    if access.local == "INBOX":
        raise ImapError("INBOX cannot be deleted", code="CANNOT")
    if s.selected is not None and s.selected.mailbox_id == access.mailbox.id:
        await s.deselect()
    # RFC 4314 §4: DELETE MUST delete the mailbox's ACL (the store does).
    await s.store.mailbox_delete(access.owner.id, access.local)
    return None


@handler("RENAME")
async def rename(s: Session, cmd: Command) -> Done | None:
    args = cmd.args
    assert isinstance(args, Rename)
    new = _check_name(args.new)
    # RFC 4314 §4: x on the mailbox, k on the new parent; ACLs stay as they were.
    old = await acl.require(s, args.old, "x")
    target = await acl.reach(s, new)
    if target is None or target.owner.id != old.owner.id:
        raise ImapError("Cannot rename a mailbox to another account", code="CANNOT")
    if new == "INBOX" or target.mailbox is not None:
        raise ImapError("Target mailbox exists", code="ALREADYEXISTS")
    if new.startswith(args.old + DELIMITER) and args.old != "INBOX":
        raise ImapError("Cannot rename a mailbox into itself", code="CANNOT")
    await acl.require_parent(s, target)
    made = await _create_parents(s, old.owner.id, target.local)
    await s.store.mailbox_rename(old.owner.id, old.local, target.local)
    await acl.inherit(s, old.owner.id, made)
    if s.rev2 and old.mailbox is not None:
        # RFC 9051 §7.3.1: the new name's LIST with OLDNAME (RFC 5465 §5.4),
        # once: a NOTIFY watching the mailbox takes it as told.
        attrs = [old.mailbox.special_use] if old.mailbox.special_use else []
        s.send(list_line(s, new, attrs, oldname_item(s, args.old)))
        if s.notifier is not None:
            s.notifier.renamed(old.mailbox.id, target.local)
    return None


def list_line(s: Session, name: str, attrs: list[str], extra: bytes = b"") -> bytes:
    """``* LIST (attrs) "/" name`` and any extended data items (RFC 5258 §3)."""
    return (
        b"* LIST "
        + encode([Atom(a) for a in attrs])
        + b' "/" '
        + encode(wire_name(name, s.utf8))
        + extra
        + b"\r\n"
    )


def oldname_item(s: Session, oldname: str) -> bytes:
    """The OLDNAME extended data item of a renamed mailbox (RFC 9051 §7.3.1)."""
    return b' ("OLDNAME" (' + encode(wire_name(oldname, s.utf8)) + b"))"


# -- SUBSCRIBE / UNSUBSCRIBE -------------------------------------------------


@handler("SUBSCRIBE")
async def subscribe(s: Session, cmd: Command) -> Done | None:
    args = cmd.args
    assert isinstance(args, MailboxArg)
    await acl.require(s, args.mailbox, "l")  # RFC 4314 §4
    await s.store.subscribe(_account_id(s), args.mailbox)
    return None


@handler("UNSUBSCRIBE")
async def unsubscribe(s: Session, cmd: Command) -> Done | None:
    args = cmd.args
    assert isinstance(args, MailboxArg)
    # RFC 3501 §6.3.7: a name no longer existing can still be unsubscribed.
    await s.store.unsubscribe(_account_id(s), args.mailbox)
    return None


# -- LIST / LSUB -------------------------------------------------------------


# Longer than any mailbox name we store, with room for wildcards.
MAX_PATTERN = 2048


class Pattern:
    """RFC 3501 §6.3.8 LIST pattern: '*' matches anything, '%' anything but
    the delimiter. Matched by simulating the pattern as an automaton, in time
    proportional to name length times pattern length (a regular expression
    would backtrack exponentially on patterns like "*a*a*a*a*b")."""

    def __init__(self, reference: str, pattern: str) -> None:
        full = reference + pattern
        if len(full) > MAX_PATTERN:
            raise ImapError("Pattern too long", bad=True)
        # INBOX is case-insensitive (RFC 3501 §5.1), as a whole first level.
        if full[:5].upper() == "INBOX" and full[5:6] in ("", "/", "*", "%"):
            full = "INBOX" + full[5:]
        collapsed: list[str] = []
        for ch in full:
            if ch == "*" and collapsed and collapsed[-1] in "*%":
                collapsed[-1] = "*"
            elif ch == "%" and collapsed and collapsed[-1] in "*%":
                continue
            else:
                collapsed.append(ch)
        self.pattern = "".join(collapsed)

    def _closure(self, states: set[int]) -> set[int]:
        p = self.pattern
        out: set[int] = set()
        stack = list(states)
        while stack:
            i = stack.pop()
            if i in out:
                continue
            out.add(i)
            if i < len(p) and p[i] in "*%":
                stack.append(i + 1)
        return out

    def match(self, name: str) -> bool:
        p = self.pattern
        states = self._closure({0})
        for ch in name:
            following: set[int] = set()
            for i in states:
                if i >= len(p):
                    continue
                c = p[i]
                if c == "*" or (c == "%" and ch != DELIMITER):
                    following.add(i)
                elif c == ch:
                    following.add(i + 1)
            if not following:
                return False
            states = self._closure(following)
        return len(p) in states


def _ancestors(name: str) -> list[str]:
    levels = name.split(DELIMITER)
    return [DELIMITER.join(levels[:i]) for i in range(1, len(levels))]


def mailbox_id(box_id: int) -> Atom:
    """RFC 8474 MAILBOXID: the id JMAP gives the mailbox (kept by RENAME)."""
    return Atom(ids.encode(ids.MAILBOX, box_id))


def status_line(
    s: Session,
    box_id: int,
    name: str,
    items: tuple[str, ...],
    status: MailboxStatus,
    recent: int,
    deleted_octets: int = 0,
) -> bytes:
    values: list[object] = []
    for item in items:
        value = {
            "MAILBOXID": [mailbox_id(box_id)],
            "MESSAGES": status.messages,
            "RECENT": recent,
            "UIDNEXT": status.uidnext,
            "UIDVALIDITY": status.uidvalidity,
            "UNSEEN": status.unseen,
            "HIGHESTMODSEQ": status.highest_modseq,
            "SIZE": status.size,
            "DELETED": status.deleted,
            # RFC 9208 §4.2.2: in units of 1024 octets.
            "DELETED-STORAGE": (deleted_octets + 1023) // 1024,
        }[item]
        values += [Atom(item), value]
    return untagged(Atom("STATUS"), wire_name(name, s.utf8), values)


@handler("LIST", "LSUB")
async def list_(s: Session, cmd: Command) -> Done | None:
    args = cmd.args
    assert isinstance(args, List)
    account_id = _account_id(s)
    if not args.lsub and len(args.patterns) == 1 and args.patterns[0] == "" and not args.extended:
        # RFC 3501 §6.3.8: an empty pattern asks for the delimiter and root.
        s.send(b'* LIST (\\Noselect) "/" ""\r\n')
        return None
    patterns = [Pattern(args.reference, p) for p in args.patterns if p != ""]
    mailboxes = {m.name: m for m in await s.store.mailbox_list(account_id)}
    rights: dict[str, str] = {}
    for shared_name, (shared_box, shared_rights) in (await acl.shared_mailboxes(s)).items():
        # RFC 4314 §4: LIST shows what the user has the l right on.
        if "l" in shared_rights:
            mailboxes[shared_name] = shared_box
            rights[shared_name] = shared_rights
    subscribed = set(await s.store.subscriptions(account_id))
    if args.lsub:
        await _lsub(s, patterns, subscribed, mailboxes)
        return None
    show_subscribed = "SUBSCRIBED" in args.returns or "SUBSCRIBED" in args.selection
    virtual = {a for name in mailboxes for a in _ancestors(name)} - set(mailboxes)
    all_names = set(mailboxes) | virtual
    children = {a for name in all_names for a in _ancestors(name)}
    if "SUBSCRIBED" in args.selection:
        candidates = set(subscribed)
    elif "SPECIAL-USE" in args.selection:
        candidates = {n for n, m in mailboxes.items() if m.special_use}
    else:
        candidates = all_names
    childinfo: set[str] = set()
    if "RECURSIVEMATCH" in args.selection and "SUBSCRIBED" in args.selection:
        # RFC 5258 §3.5: parents that match and have a subscribed child that
        # is not itself listed (does not match the pattern).
        for name in subscribed:
            if any(r.match(name) for r in patterns):
                continue
            for a in _ancestors(name):
                if a not in subscribed and any(r.match(a) for r in patterns):
                    childinfo.add(a)
        candidates |= childinfo
    for name in sorted(candidates, key=lambda n: (n != "INBOX", n)):
        if not any(r.match(name) for r in patterns):
            continue
        box = mailboxes.get(name)
        attrs: list[str] = []
        if box is None:
            attrs.append("\\Noselect" if name in virtual else "\\NonExistent")
        if name in subscribed and show_subscribed:
            attrs.append("\\Subscribed")
        attrs.append("\\HasChildren" if name in children else "\\HasNoChildren")
        if box is not None and box.special_use:
            attrs.append(box.special_use)
        extra = b""
        if name in childinfo:
            extra = b' ("CHILDINFO" ("SUBSCRIBED"))'
        s.send(list_line(s, name, attrs, extra))
        my_rights = rights.get(name, OWNER_RIGHTS)
        if args.status_items and box is not None and "r" in my_rights:
            # RFC 5819 §2: STATUS right after the mailbox's LIST response.
            status = await s.store.mailbox_status(box.id)
            recent = await _recent_count(s, box.id) if "RECENT" in args.status_items else 0
            octets = await _deleted_octets(s, box.id, args.status_items)
            s.send(status_line(s, box.id, name, args.status_items, status, recent, octets))
        if "MYRIGHTS" in args.returns and box is not None:
            s.send(acl.myrights_line(name, my_rights))  # RFC 8440 §3
    return None


async def _lsub(
    s: Session,
    patterns: list[Pattern],
    subscribed: set[str],
    mailboxes: dict[str, Mailbox],
) -> None:
    out: dict[str, bool] = {}
    for name in subscribed:
        if any(r.match(name) for r in patterns):
            out[name] = True
            continue
        # RFC 3501 §6.3.9: with '%', a parent of a subscribed name that the
        # pattern cannot reach is listed \Noselect.
        for a in _ancestors(name):
            if a not in subscribed and any(r.match(a) for r in patterns):
                out.setdefault(a, False)
    for name in sorted(out, key=lambda n: (n != "INBOX", n)):
        attrs = [] if out[name] else ["\\Noselect"]
        s.send(
            b"* LSUB "
            + encode(flags_atoms(attrs))
            + b' "/" '
            + encode(wire_name(name, s.utf8))
            + b"\r\n"
        )


# -- STATUS / NAMESPACE ------------------------------------------------------


@handler("STATUS")
async def status(s: Session, cmd: Command) -> Done | None:
    args = cmd.args
    assert isinstance(args, Status)
    access = await acl.require(s, args.mailbox, "r")  # RFC 4314 §4
    mailbox = access.mailbox
    assert mailbox is not None
    if "HIGHESTMODSEQ" in args.items:
        s.enable_condstore()
    st = await s.store.mailbox_status(mailbox.id)
    recent = 0
    if "RECENT" in args.items:
        recent = await _recent_count(s, mailbox.id)
    octets = await _deleted_octets(s, mailbox.id, args.items)
    name = access.client_name(mailbox.name)
    s.send(status_line(s, mailbox.id, name, args.items, st, recent, octets))
    return None


async def _deleted_octets(s: Session, mailbox_id: int, items: tuple[str, ...]) -> int:
    """RFC 9208 §4.2 DELETED-STORAGE: the octets of the \\Deleted messages,
    added up only when asked for (the store counts the messages)."""
    if "DELETED-STORAGE" not in items:
        return 0
    metas = await s.store.messages(mailbox_id)
    return sum(m.size for m in metas if "\\Deleted" in m.flags)


async def _recent_count(s: Session, mailbox_id: int) -> int:
    """Messages still \\Recent: claimed by this session, or by none yet."""
    if s.selected is not None and s.selected.mailbox_id == mailbox_id:
        return len(s.selected.recent)
    sync = await s.store.mailbox_sync(mailbox_id, 2**62)
    if sync is None:
        return 0
    metas = await s.store.messages(mailbox_id)
    return sum(1 for m in metas if m.uid >= sync.recent_uid)


@handler("NAMESPACE")
async def namespace(s: Session, cmd: Command) -> Done | None:
    # RFC 2342 §5: the personal namespace and the other users' (acl.py).
    s.send(acl.NAMESPACE)
    return None

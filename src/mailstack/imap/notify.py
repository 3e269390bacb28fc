"""NOTIFY (RFC 5465): changes to the user's mailboxes told as they happen.

``NOTIFY SET [STATUS] (filter events) ...`` names groups of mailboxes
(SELECTED, SELECTED-DELAYED, INBOXES, PERSONAL, SUBSCRIBED, SUBTREE,
MAILBOXES) and the events wanted of each; ``NOTIFY NONE`` ends it.

Where the changes come from: the store's account listener (``listen_account``,
woken by commits of this node and, on PostgreSQL, of the others). On each
wake-up the ``Notifier`` reads the account's mailbox list once and compares
it with what it last saw: a mailbox's HIGHESTMODSEQ moving means messages
arrived, left or changed flags; names and subscriptions are compared as
they are. So nothing is queued per change: however fast changes come, the
session holds one small record per mailbox, and a client that stops reading
only delays the next comparison.

What is sent (RFC 5465 §5):
- the selected mailbox: EXISTS, EXPUNGE (VANISHED with QRESYNC) and FETCH
  FLAGS, through the session's poll; MessageNew's fetch-att as a FETCH of
  each new message (as BODY.PEEK: nothing becomes \\Seen). With SELECTED they
  are sent as soon as they happen, expunges included; with SELECTED-DELAYED
  expunges wait for a command that may report them (§6.1). Without either,
  the first other group naming the mailbox applies, as SELECTED-DELAYED.
- other mailboxes: MessageNew, MessageExpunge and FlagChange as one untagged
  STATUS (MESSAGES UIDNEXT UIDVALIDITY UNSEEN, and HIGHESTMODSEQ when
  FlagChange is asked: §3.1 wants it with CONDSTORE); MailboxName as LIST
  (created; ``\\NonExistent`` when deleted; ``("OLDNAME" (old))`` when
  renamed, RFC 5258 §3.7 / RFC 9051 §7.3.1); SubscriptionChange as LIST with
  or without ``\\Subscribed``.
- a mailbox in several groups takes the first that names it.
- changes the session made itself are told too (the RFC leaves it open;
  telling them keeps what the client sees consistent).
- more than ``[imap] notify_overflow`` responses at one time: ``* OK
  [NOTIFICATIONOVERFLOW]`` and NOTIFY is off (§5.8).

Events of other extensions are registered in ``EXTENSION_EVENTS``:
METADATA (RFC 5464 §5, ``imap/metadata.py``) registers MailboxMetadataChange
and ServerMetadataChange (RFC 5465 §5.7), told as unsolicited ``* METADATA``.
Each is an ``ExtensionEvent``, asked at NOTIFY SET (what is there then is
taken as told) and at every update, once, with the mailboxes whose group
names the event (the selected one included; none for an event of the
server's own, ServerMetadataChange, unless a group names it), for the
untagged responses that tell what changed since it was last asked (it may
keep what it last told in ``Notifier.extension_state``). AnnotationChange needs ANNOTATE (RFC 5257),
which is not offered: refused with ``NO [BADEVENT (...)]``, as are unknown
events.
Other users' mailboxes shared with the user (RFC 4314) are watched when
SUBTREE, MAILBOXES or SUBSCRIBED name them: the session then also listens
to their owners' accounts; one the user may list but not read (no r right)
gets no message events; one that becomes (in)visible is told as LIST or
LIST \\NonExistent (§5.9). PERSONAL is the user's own namespace only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from mailstack.errors import ImapError, NotFound
from mailstack.imap import acl
from mailstack.imap.proto.commands import Command, Fetch, Notify, NotifyGroup, SequenceSet
from mailstack.imap.session import Done, Session, handler
from mailstack.store import Mailbox, MailboxStatus

__all__ = ["EXTENSION_EVENTS", "SUPPORTED_EVENTS", "ExtensionEvent", "Notifier"]

SUPPORTED_EVENTS = (
    "MessageNew",
    "MessageExpunge",
    "FlagChange",
    "MailboxName",
    "SubscriptionChange",
)
# An extension's event: (session, notifier, the watched mailboxes whose group
# names it) -> the untagged responses telling what changed since last asked.
ExtensionEvent = Callable[[Session, "Notifier", list[Mailbox]], Awaitable[list[bytes]]]
# Events another extension delivers: METADATA (RFC 5464 §5, imap/metadata.py)
# registers "MailboxMetadataChange" and "ServerMetadataChange" here.
EXTENSION_EVENTS: dict[str, ExtensionEvent] = {}

_STATUS_ITEMS = ("MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN")
_MESSAGE_EVENTS = frozenset({"MessageNew", "MessageExpunge", "FlagChange"})


@dataclass(slots=True)
class _Seen:
    """One mailbox as the client was last told of it."""

    name: str
    subscribed: bool
    highest_modseq: int
    status: MailboxStatus | None = None


def _matches(group: NotifyGroup, box: Mailbox) -> bool:
    name = box.name
    kind = group.filter
    if kind == "PERSONAL":
        return not acl.is_shared_name(name)
    if kind == "INBOXES":
        return name == "INBOX"  # RFC 5465 §6.3: where new mail is delivered
    if kind == "SUBSCRIBED":
        return box.subscribed
    if kind == "SUBTREE":
        return any(name == m or name.startswith(m + "/") for m in group.mailboxes)
    if kind == "MAILBOXES":
        return name in group.mailboxes
    return False


class Notifier:
    def __init__(self, spec: Notify, overflow: int) -> None:
        self.spec = spec
        self.overflow = overflow
        self.selected = next((g for g in spec.groups if g.filter.startswith("SELECTED")), None)
        self.others = [g for g in spec.groups if not g.filter.startswith("SELECTED")]
        self.seen: dict[int, _Seen] = {}
        # What each ExtensionEvent keeps between updates, by event name.
        self.extension_state: dict[str, object] = {}
        # Shared mailboxes of other accounts (RFC 4314) the groups name:
        # the user's rights on each, and the accounts that own them.
        self.rights: dict[int, str] = {}
        self.owners: set[int] = set()
        self.shared = any(
            g.filter == "SUBSCRIBED"
            or any(acl.is_shared_name(m) for m in g.mailboxes)
            or any(acl.SHARED_ROOT.startswith(m) for m in g.mailboxes if g.filter == "SUBTREE")
            for g in self.others
        )

    def group(self, box: Mailbox) -> NotifyGroup | None:
        """RFC 5465 §6: the first group naming a mailbox other than the selected one."""
        return next((g for g in self.others if _matches(g, box)), None)

    def events(self, box: Mailbox) -> set[str]:
        """What the client is told of the mailbox: its group's events, less
        the message events where the user may not read (RFC 4314 r)."""
        group = self.group(box)
        events = set(group.events) if group is not None else set()
        if "r" not in self.rights.get(box.id, "r"):
            events -= _MESSAGE_EVENTS
        return events

    async def mailboxes(self, s: Session) -> dict[int, Mailbox]:
        """The user's mailboxes and the shared ones the groups name, by id,
        each under the name the client uses (``Other Users/owner/name``)."""
        assert s.account is not None
        boxes = {box.id: box for box in await s.store.mailbox_list(s.account.id)}
        self.rights.clear()
        self.owners.clear()
        if not self.shared:
            return boxes
        subscribed = set(await s.store.subscriptions(s.account.id))
        for name, (box, rights) in (await acl.shared_mailboxes(s)).items():
            if "l" not in rights:
                continue  # RFC 4314 §4: not even its name
            shared = replace(box, name=name, subscribed=name in subscribed)
            if self.group(shared) is not None:
                boxes[box.id] = shared
                self.rights[box.id] = rights
                self.owners.add(box.account_id)
        return boxes

    def selected_group(self, name: str) -> NotifyGroup | None:
        """The group that applies to the selected mailbox (see the module's docstring)."""
        if self.selected is not None:
            return self.selected
        for box_id, seen in self.seen.items():
            if seen.name == name:
                box = _as_mailbox(box_id, seen)
                group = self.group(box)
                if group is None or not _MESSAGE_EVENTS & set(group.events):
                    return None
                return replace(group, filter="SELECTED-DELAYED")
        return None

    def renamed(self, box_id: int, name: str) -> None:
        """The session told the client of this rename itself (RENAME in IMAP4rev2)."""
        seen = self.seen.get(box_id)
        if seen is not None:
            seen.name = name

    # -- what is sent -------------------------------------------------------

    async def start(self, s: Session) -> None:
        """Take the account as it is now; with STATUS, tell it (§3.1)."""
        boxes = await self.mailboxes(s)
        # The extensions take what is there now as told (STATUS is about
        # messages: §3.1 asks nothing of them).
        await self._extensions(s, boxes)
        watched = []
        for box in boxes.values():
            self.seen[box.id] = _Seen(box.name, box.subscribed, box.highest_modseq)
            group = self.group(box)
            if group is not None and _MESSAGE_EVENTS & self.events(box):
                watched.append((box, group))
        # Read side by side: one round trip's wait, not one per mailbox.
        statuses = await asyncio.gather(*(s.store.mailbox_status(box.id) for box, _ in watched))
        for (box, group), status in zip(watched, statuses, strict=True):
            self.seen[box.id].status = status
            if self.spec.status and not _is_selected(s, box.id):
                s.send(_status(s, box, status, group))

    async def push(self, s: Session) -> None:
        """Compare the account with what the client was told; tell the difference."""
        now = await self.mailboxes(s)
        out: list[bytes] = []
        for box_id in list(self.seen):
            if box_id not in now:
                gone = self.seen.pop(box_id)
                group = self.group(_as_mailbox(box_id, gone))
                if group is not None and "MailboxName" in group.events:
                    out.append(_list(s, gone.name, ["\\NonExistent"]))
        for box_id, box in now.items():
            out += await self._compare(s, box, self.seen.get(box_id))
            if len(out) > self.overflow:
                break
        out += await self._extensions(s, now)
        if len(out) > self.overflow:
            # RFC 5465 §5.8: what cannot be told is not queued; NOTIFY ends.
            s.send(b"* OK [NOTIFICATIONOVERFLOW] Too many changes; NOTIFY is off\r\n")
            await s.stop_notify()
            return
        for line in out:
            s.send(line)

    async def _extensions(self, s: Session, boxes: dict[int, Mailbox]) -> list[bytes]:
        """What the registered ExtensionEvents have to tell (see the docstring)."""
        out: list[bytes] = []
        for event, source in EXTENSION_EVENTS.items():
            if not any(event in g.events for g in self.others):
                continue
            # The selected mailbox too: its poll tells messages only.
            watched = [box for box in boxes.values() if event in self.events(box)]
            out += await source(s, self, watched)
        return out

    async def _compare(self, s: Session, box: Mailbox, seen: _Seen | None) -> list[bytes]:
        group = self.group(box)
        events = self.events(box)
        out: list[bytes] = []
        if seen is None:
            seen = self.seen[box.id] = _Seen(box.name, box.subscribed, box.highest_modseq)
            if "MailboxName" in events:
                out.append(_list(s, box.name, _attributes(box)))
            if events & _MESSAGE_EVENTS:
                seen.status = await s.store.mailbox_status(box.id)
            return out
        if seen.name != box.name:
            old_group = self.group(_as_mailbox(box.id, seen))
            if "MailboxName" in events or (old_group and "MailboxName" in old_group.events):
                out.append(_list(s, box.name, _attributes(box), oldname=seen.name))
            seen.name = box.name
        if seen.subscribed != box.subscribed:
            seen.subscribed = box.subscribed
            if "SubscriptionChange" in events:
                out.append(_list(s, box.name, _attributes(box)))
        if seen.highest_modseq == box.highest_modseq:
            return out
        seen.highest_modseq = box.highest_modseq
        if not events & _MESSAGE_EVENTS or _is_selected(s, box.id):
            seen.status = None  # the selected mailbox is told through its poll
            return out
        status = await s.store.mailbox_status(box.id)
        before = seen.status
        seen.status = status
        assert group is not None
        if before is None or (
            (status.messages, status.uidnext, status.unseen)
            != (before.messages, before.uidnext, before.unseen)
            or "FlagChange" in events
        ):
            out.append(_status(s, box, status, group))
        return out

    async def new_messages(self, s: Session, uids: list[int]) -> None:
        """RFC 5465 §5.2: MessageNew's fetch-att for new messages of the
        selected mailbox, as a UID FETCH would send them, without \\Seen."""
        sel = s.selected
        if sel is None or not uids:
            return
        group = self.selected_group(sel.name)
        if group is None or not group.fetch:
            return
        from mailstack.imap.fetch import fetch  # noqa: PLC0415

        items = tuple(replace(item, peek=True) for item in group.fetch)
        ranges = tuple((u, u) for u in uids)
        try:
            await fetch(s, Command("*", "FETCH", Fetch(SequenceSet(ranges), items), uid=True))
        except (ImapError, NotFound):
            pass  # gone again already: its EXPUNGE tells the rest


def _as_mailbox(box_id: int, seen: _Seen) -> Mailbox:
    return Mailbox(box_id, 0, seen.name, 0, 0, seen.highest_modseq, None, seen.subscribed)


def _is_selected(s: Session, box_id: int) -> bool:
    return s.selected is not None and s.selected.mailbox_id == box_id


def _attributes(box: Mailbox) -> list[str]:
    attrs = ["\\Subscribed"] if box.subscribed else []
    if box.special_use:
        attrs.append(box.special_use)
    return attrs


# fetch and mailboxes are imported where used: the session imports every
# command family, and a family importing another at the top would make the
# order they are first imported in matter.


def _list(s: Session, name: str, attrs: list[str], *, oldname: str | None = None) -> bytes:
    from mailstack.imap.mailboxes import list_line, oldname_item  # noqa: PLC0415

    return list_line(s, name, attrs, oldname_item(s, oldname) if oldname is not None else b"")


def _status(s: Session, box: Mailbox, status: MailboxStatus, group: NotifyGroup) -> bytes:
    from mailstack.imap.mailboxes import status_line  # noqa: PLC0415

    # RFC 5465 §3.1: HIGHESTMODSEQ when FlagChange is asked (CONDSTORE is there).
    flags = ("HIGHESTMODSEQ",) if "FlagChange" in group.events else ()
    return status_line(s, box.id, box.name, (*_STATUS_ITEMS, *flags), status, 0)


@handler("NOTIFY")
async def notify(s: Session, cmd: Command) -> Done | None:
    spec = cmd.args
    assert isinstance(spec, Notify)
    if spec.unknown or any(
        e not in SUPPORTED_EVENTS and e not in EXTENSION_EVENTS
        for g in spec.groups
        for e in g.events
    ):
        # RFC 5465 §3.1: NO [BADEVENT (what we support)]; the old setting stays.
        known = " ".join((*SUPPORTED_EVENTS, *sorted(EXTENSION_EVENTS)))
        raise ImapError("Unsupported event", code=f"BADEVENT ({known})")
    if not spec.groups:
        await s.stop_notify()
        return Done("NOTIFY completed")
    notifier = Notifier(spec, s.ctx.config.notify_overflow)
    s.notifier = None  # the old setting ends here; the new one starts from now
    await notifier.start(s)
    s.start_notify(notifier)
    return Done("NOTIFY completed")

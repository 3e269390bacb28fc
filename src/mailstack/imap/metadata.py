"""METADATA (RFC 5464): GETMETADATA and SETMETADATA on server entries
(mailbox ``""``, METADATA-SERVER) and mailbox entries, kept in the store
(``contract.metadata``).

Entries. ``/private/...`` entries are the user's own; ``/shared/...`` ones
are seen by everyone who may read the mailbox. Names are lower-cased and
checked by the parser (§3.2). Besides what users set, the server answers:

* ``"" /shared/admin``: ``[imap] metadata_admin`` (§6.2.1), read-only;
* a mailbox's ``/private/specialuse``: its special use (RFC 6154 §4),
  read-only (the use is chosen at CREATE).

The server's other ``/shared/`` entries (``/shared/comment``...) are the
administrator's: readable by every user, not settable over IMAP.

Rights (RFC 5464 §3.1.2 with RFC 4314): reading a mailbox's entries needs
``l`` and ``r``; setting its private entries the same; setting its shared
entries also ``w``.

Limits (``[limits]``): ``imap_metadata_size`` octets a value (``NO
[METADATA MAXSIZE n]``), ``imap_metadata_entries`` entries a user sees on
one mailbox or the server (``NO [METADATA TOOMANY]``). Private entries are
kept for every mailbox, so ``[METADATA NOPRIVATE]`` never arises.

NOTIFY (RFC 5465 §5.7, RFC 5464 §5): the events MailboxMetadataChange and
ServerMetadataChange are registered in ``notify.EXTENSION_EVENTS``. At each
NOTIFY update (the store's account listener wakes on every ``metadata_set``,
of any session or node) the entries the user sees on each watched mailbox
(and on the server) are compared with those last told; the names that were
set, changed or removed go as the unsolicited ``* METADATA mailbox entry
...`` of RFC 5464 §4.4.2, so the client fetches what it wants with
GETMETADATA. The cost: one read (``metadata_get_many``) of the watched
mailboxes' entries at each update, and the entries last told kept per mailbox (at most
``imap_metadata_entries`` of ``imap_metadata_size`` each). A mailbox the
user may not read (no ``r``, RFC 4314) tells
nothing. A server entry wakes only its setter's account listener, so a
change of the server's ``/shared/`` entries made through the store reaches
other sessions at their account's next change. AnnotationChange needs
ANNOTATE (RFC 5257), which is not offered: NOTIFY keeps refusing it with
``NO [BADEVENT]``.
"""

from __future__ import annotations

from typing import cast

from mailstack.errors import ImapError
from mailstack.imap import acl, notify
from mailstack.imap.mailboxes import wire_name
from mailstack.imap.proto.commands import Command, GetMetadata, SetMetadata
from mailstack.imap.proto.response import Atom, Literal8, astring, untagged
from mailstack.imap.session import Done, Session, handler
from mailstack.store import SERVER_ENTRIES, Mailbox, TooManyEntries

__all__ = ["changed_entries", "select_entries"]


ADMIN = "/shared/admin"
SPECIALUSE = "/private/specialuse"
_SHARED = "/shared/"


def _admin(s: Session) -> bytes:
    return (s.ctx.config.metadata_admin or f"mailto:postmaster@{s.ctx.hostname}").encode()


async def _mailbox(s: Session, name: str, needed: str) -> Mailbox:
    access = await acl.require(s, name, needed)
    assert access.mailbox is not None
    return access.mailbox


def select_entries(
    entries: dict[str, bytes], wanted: tuple[str, ...], depth: int
) -> dict[str, bytes | None]:
    """What GETMETADATA answers (RFC 5464 §4.2.2): each wanted entry (NIL
    when it has no value) and, with DEPTH 1 or infinity (-1), the entries
    one level or any levels below it; by name."""
    found: dict[str, bytes | None] = {}
    for name in wanted:
        if name in entries:
            found[name] = entries[name]
        elif name.count("/") > 1:  # "/private" and "/shared" are not entries
            found[name] = None
        if depth == 0:
            continue
        prefix = name + "/"
        for other, value in entries.items():
            if other.startswith(prefix) and (depth < 0 or "/" not in other[len(prefix) :]):
                found[other] = value
    return dict(sorted(found.items()))



def _value(value: bytes | None) -> object:
    """nstring / literal8 (RFC 5464 §5): ASCII text as a quoted string when
    it can be one, other octets as a literal, NUL-bearing ones as literal8."""
    if value is None:
        return None
    if b"\x00" in value:
        return Literal8(value)
    if value.isascii():
        return value.decode("ascii")  # quoted, or a literal when it must be
    return value


@handler("GETMETADATA")
async def getmetadata(s: Session, cmd: Command) -> Done | None:
    args = cmd.args
    assert isinstance(args, GetMetadata)
    assert s.account is not None
    if args.mailbox == "":
        entries = await s.store.metadata_get(SERVER_ENTRIES, s.account.id)
        entries[ADMIN] = _admin(s)
    else:
        mailbox = await _mailbox(s, args.mailbox, "lr")
        entries = await s.store.metadata_get(mailbox.id, s.account.id)
        if mailbox.special_use:
            entries[SPECIALUSE] = mailbox.special_use.encode()
    found = select_entries(entries, args.entries, args.depth)
    longest = 0
    if args.maxsize is not None:
        # §4.2.1: values past MAXSIZE are left out; the tagged OK says how
        # long the longest of them is.
        for name, value in list(found.items()):
            if value is not None and len(value) > args.maxsize:
                longest = max(longest, len(value))
                del found[name]
    if found:
        pairs: list[object] = []
        for name, value in found.items():
            pairs += [astring(name), _value(value)]
        s.send(untagged(Atom("METADATA"), wire_name(args.mailbox, s.utf8), pairs))
    if longest:
        return Done("GETMETADATA completed", f"METADATA LONGENTRIES {longest}")
    return None


@handler("SETMETADATA")
async def setmetadata(s: Session, cmd: Command) -> Done | None:
    args = cmd.args
    assert isinstance(args, SetMetadata)
    assert s.account is not None
    limit = s.limits.imap_metadata_size
    for _name, value in args.entries:
        if value is not None and len(value) > limit:
            raise ImapError("The value is too long", code=f"METADATA MAXSIZE {limit}")
    names = [name for name, _value in args.entries]
    shared = any(name.startswith(_SHARED) for name in names)
    if args.mailbox == "":
        mailbox_id = SERVER_ENTRIES
        if shared:
            raise ImapError("The server's shared entries are the administrator's", code="NOPERM")
    else:
        mailbox = await _mailbox(s, args.mailbox, "lrw" if shared else "lr")
        mailbox_id = mailbox.id
        if SPECIALUSE in names:
            # RFC 6154 §4: the use is set at CREATE (CREATE-SPECIAL-USE).
            raise ImapError("/private/specialuse is read-only here", code="USEATTR")
    try:
        await s.store.metadata_set(
            mailbox_id, s.account.id, dict(args.entries),
            max_entries=s.limits.imap_metadata_entries,
        )
    except TooManyEntries:
        raise ImapError("Too many entries", code="METADATA TOOMANY") from None
    # NOTIFY: the session's own change is told before its tagged OK, not at
    # whatever moment the account listener wakes.
    s.account_changed.set()
    return None


# -- NOTIFY (RFC 5465 §5.7) ---------------------------------------------------

# What was last told, by mailbox id (SERVER_ENTRIES for the server): the
# entries the user saw then.
_Told = dict[int, dict[str, bytes]]


def changed_entries(before: dict[str, bytes], now: dict[str, bytes]) -> list[str]:
    """The names of the entries set, changed or removed between two reads."""
    return sorted(name for name in before.keys() | now.keys() if before.get(name) != now.get(name))


def _told(notifier: notify.Notifier, event: str) -> _Told:
    return cast(_Told, notifier.extension_state.setdefault(event, {}))


def _told_changes(
    told: _Told, mailbox_id: int, name: str, now: dict[str, bytes]
) -> list[bytes]:
    """RFC 5464 §4.4.2: ``* METADATA mailbox entry ...`` for what changed."""
    changed = changed_entries(told.get(mailbox_id, {}), now)
    told[mailbox_id] = now
    if not changed:
        return []
    return [untagged(Atom("METADATA"), name, *map(astring, changed))]


async def _mailbox_changes(
    s: Session, notifier: notify.Notifier, boxes: list[Mailbox]
) -> list[bytes]:
    assert s.account is not None
    told = _told(notifier, "MailboxMetadataChange")
    # §3.1.2: reading a mailbox's entries needs r.
    readable = [box for box in boxes if "r" in notifier.rights.get(box.id, "r")]
    for gone in told.keys() - {box.id for box in readable}:
        del told[gone]  # deleted, or no longer watched
    now = await s.store.metadata_get_many([box.id for box in readable], s.account.id)
    out: list[bytes] = []
    for box in readable:
        out += _told_changes(told, box.id, wire_name(box.name, s.utf8), now.get(box.id, {}))
    return out


async def _server_changes(
    s: Session, notifier: notify.Notifier, boxes: list[Mailbox]
) -> list[bytes]:
    assert s.account is not None
    now = await s.store.metadata_get(SERVER_ENTRIES, s.account.id)
    return _told_changes(_told(notifier, "ServerMetadataChange"), SERVER_ENTRIES, "", now)


notify.EXTENSION_EVENTS["MailboxMetadataChange"] = _mailbox_changes
notify.EXTENSION_EVENTS["ServerMetadataChange"] = _server_changes

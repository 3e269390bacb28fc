"""The selected mailbox as one session sees it: message sequence numbers,
flags, \\Recent, and the untagged updates that bring the view up to date.

RFC 3501 §2.3.1.2: sequence numbers are positions in the session's view;
§5.2 and §7.4.1: the view changes only when the server tells the client, and
an EXPUNGE must not be sent while no command is in progress, nor while
responding to FETCH, STORE or SEARCH (UID variants excepted), so expunges
seen at other moments wait in ``pending``. RFC 7162 §3.2.10: with QRESYNC
enabled, VANISHED replaces EXPUNGE.
"""

from __future__ import annotations

import bisect
import operator
from collections.abc import Iterable

from mailstack.common.rights import OWNER_RIGHTS, flag_right
from mailstack.imap.cache import MailboxList
from mailstack.imap.proto.commands import SequenceSet
from mailstack.imap.proto.response import Atom, encode, untagged
from mailstack.store import MessageMeta

__all__ = ["SelectedMailbox", "flags_atoms", "uid_set_text"]

# Distinct flag sets whose wire form a session keeps (see flags_text).
_FLAG_TEXTS = 1024
_RECENT = frozenset({"\\Recent"})
_FLAGS_OF = operator.attrgetter("flags")

SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")


def flags_atoms(flags: Iterable[str]) -> list[Atom]:
    return [Atom(f) for f in sorted(flags)]


def uid_set_text(uids: Iterable[int]) -> str:
    """A compact sequence-set of the given numbers (RFC 3501 §9, RFC 4315 uid-set)."""
    ranges: list[list[int]] = []
    for n in sorted(set(uids)):
        if ranges and n == ranges[-1][1] + 1:
            ranges[-1][1] = n
        else:
            ranges.append([n, n])
    return ",".join(str(a) if a == b else f"{a}:{b}" for a, b in ranges)


class SelectedMailbox:
    def __init__(
        self,
        mailbox_id: int,
        name: str,
        uidvalidity: int,
        readonly: bool,
        listing: MailboxList,
        highest_modseq: int,
        recent_from: int,
        rights: str = OWNER_RIGHTS,
    ) -> None:
        self.mailbox_id = mailbox_id
        self.rights = rights  # RFC 4314, as at SELECT
        self.name = name
        self.uidvalidity = uidvalidity
        self.readonly = readonly
        # The listing's UIDs and metas, shared with every session that has
        # the mailbox selected until this view changes (``_own`` copies).
        self.listing: MailboxList | None = listing
        self.uids: list[int] = listing.uids
        self.meta: dict[int, MessageMeta] = listing.meta
        self.modseq = highest_modseq
        self.uidnext = (self.uids[-1] + 1) if self.uids else 1
        # \Recent (RFC 3501 §2.3.2): UIDs at or above the claimed mark.
        self.recent: set[int] = (
            set(self.uids[bisect.bisect_left(self.uids, recent_from) :]) if recent_from else set()
        )
        self.pending: set[int] = set()  # expunged in the store, not yet announced
        # RFC 5182: the UIDs SEARCH RETURN (SAVE) saved, what "$" names.
        self.saved: list[int] = []
        # RFC 9051 (IMAP4rev2) has no \Recent: not shown to its sessions.
        self.show_recent = True
        # Moves whenever a message joins or leaves the view: what SORT and
        # THREAD keep in ``memo`` (their last orders) is valid for one value.
        self.generation = 0
        self.memo: dict[object, tuple[object, object]] = {}
        self.keywords: set[str] = set(listing.keywords)
        # The wire form of each flag set seen (a mailbox has few distinct
        # ones), so FETCH 1:* (FLAGS) encodes each once, not per message.
        self._flags_text: dict[frozenset[str], bytes] = {}

    def _own(self) -> None:
        """Copy the shared listing's UIDs and metas before changing them."""
        if self.listing is not None:
            self.uids = list(self.uids)
            self.meta = dict(self.meta)
            self.listing = None

    # -- numbering -------------------------------------------------------

    @property
    def exists(self) -> int:
        return len(self.uids)

    def msn(self, uid: int) -> int | None:
        i = bisect.bisect_left(self.uids, uid)
        return i + 1 if i < len(self.uids) and self.uids[i] == uid else None

    def resolve(self, sequence: SequenceSet, uid: bool) -> list[tuple[int, int]]:
        """(msn, uid) pairs the set names, ascending, without duplicates.

        RFC 3501 §6.4.8: in a UID set, '*' is the largest UID in use and a
        range names the UIDs that exist within it; non-existent UIDs are
        ignored. A message sequence number beyond EXISTS is an error the
        caller reports (``out_of_range``).
        """
        if sequence.saved:
            return [(n, u) for u in self.saved if (n := self.msn(u)) is not None]
        out: list[tuple[int, int]] = []
        for a, b in self.spans(sequence, uid):
            out.extend(zip(range(a + 1, b + 1), self.uids[a:b], strict=True))
        return out

    def spans(self, sequence: SequenceSet, uid: bool) -> list[tuple[int, int]]:
        """What ``resolve`` names as index spans [a, b) into ``uids``,
        ascending and disjoint (message a + 1 to b), so 1:* costs a slice
        and no pair per message. Not for ``$`` (``sequence.saved``)."""
        if not self.uids:
            return []
        spans: list[tuple[int, int]] = []
        if uid:
            for lo, hi in sequence.resolve(self.uids[-1]):
                a = bisect.bisect_left(self.uids, lo)
                b = bisect.bisect_right(self.uids, hi)
                spans.append((a, b))
        else:
            largest = len(self.uids)
            for lo, hi in sequence.resolve(largest):
                spans.append((max(lo, 1) - 1, min(hi, largest)))
        out: list[tuple[int, int]] = []
        done = 0  # every index below this is in out already
        for a, b in sorted(spans):
            a = max(a, done)
            if a < b:
                out.append((a, b))
                done = b
        return out

    def out_of_range(self, sequence: SequenceSet) -> bool:
        if sequence.saved:
            return False  # RFC 5182 §2.1: "$" names only messages that exist
        largest = len(self.uids)
        return any(hi > largest for _lo, hi in sequence.resolve(largest or 1)) or (
            not self.uids and any(a or b for a, b in sequence.ranges)
        )

    def remember(self, key: object, stamp: object, value: object) -> None:
        """Keep a SORT/THREAD result under key, valid while ``stamp`` holds."""
        if len(self.memo) >= 8 and key not in self.memo:
            self.memo.clear()
        self.memo[key] = (stamp, value)

    def recall(self, key: object, stamp: object) -> object | None:
        hit = self.memo.get(key)
        return hit[1] if hit is not None and hit[0] == stamp else None

    # -- state ------------------------------------------------------------

    def flags(self, uid: int) -> frozenset[str]:
        meta = self.meta.get(uid)
        base = meta.flags if meta else frozenset()
        return base | {"\\Recent"} if uid in self.recent and self.show_recent else base

    def flags_text(self, uid: int) -> bytes:
        """``(\\Flag ...)``: the flags of uid as FETCH FLAGS sends them."""
        return self._flag_set_text(self.flags(uid))

    def flag_texts(self, uids: list[int]) -> list[bytes]:
        """flags_text of each of uids, in one pass: the wire form of each
        distinct stored flag set is made once, with and without \\Recent
        (no new set per message, no Python frame per message when none of
        them is recent)."""
        stored = list(map(_FLAGS_OF, map(self.meta.__getitem__, uids)))
        plain: dict[frozenset[str], bytes] = {}
        for flags in set(stored):
            plain[flags] = self._flag_set_text(flags)
        recent = self.recent if self.show_recent else None
        if not recent or recent.isdisjoint(uids):
            return list(map(plain.__getitem__, stored))
        marked = {flags: self._flag_set_text(flags | _RECENT) for flags in plain}
        return [marked[f] if u in recent else plain[f] for u, f in zip(uids, stored, strict=True)]

    def _flag_set_text(self, flags: frozenset[str]) -> bytes:
        text = self._flags_text.get(flags)
        if text is None:
            if len(self._flags_text) >= _FLAG_TEXTS:
                self._flags_text.clear()
            text = self._flags_text[flags] = encode(flags_atoms(flags))
        return text

    def update_meta(self, meta: MessageMeta) -> None:
        if meta.uid in self.meta:
            self._own()
            self.meta[meta.uid] = meta
            self.keywords.update(f for f in meta.flags if not f.startswith("\\"))

    def remove(self, uid: int) -> int | None:
        """Drop an announced message; its former sequence number."""
        n = self.msn(uid)
        self._own()
        if n is not None:
            del self.uids[n - 1]
            self.generation += 1
        self.meta.pop(uid, None)
        self.recent.discard(uid)
        self.pending.discard(uid)
        if uid in self.saved:
            self.saved.remove(uid)
        return n

    def add(self, meta: MessageMeta, recent: bool) -> None:
        self._own()
        self.uids.append(meta.uid)
        self.generation += 1
        self.meta[meta.uid] = meta
        self.uidnext = meta.uid + 1
        if recent:
            self.recent.add(meta.uid)
        self.keywords.update(f for f in meta.flags if not f.startswith("\\"))

    # -- updates ------------------------------------------------------------

    def apply_changes(
        self,
        changed: list[MessageMeta],
        vanished: list[int],
        highest_modseq: int,
        *,
        recent_from: int | None,
        send_uid: bool,
        send_modseq: bool,
    ) -> list[bytes]:
        """Fold store changes into the view; the untagged FLAGS, EXISTS,
        RECENT and FETCH FLAGS to send."""
        out: list[bytes] = []
        before = len(self.uids)
        keywords_before = len(self.keywords)
        last = self.uids[-1] if self.uids else 0
        for meta in changed:
            if meta.uid > last:
                self.add(meta, recent_from is not None and meta.uid >= recent_from)
                last = meta.uid
                continue
            old = self.meta.get(meta.uid)
            if old is None or meta.uid in self.pending:
                continue
            if old.flags != meta.flags or (send_modseq and old.modseq != meta.modseq):
                self.update_meta(meta)
                out.append(self.fetch_flags_line(meta.uid, send_uid, send_modseq))
            else:
                self.update_meta(meta)
        for uid in vanished:
            if uid in self.meta:
                self.pending.add(uid)
        self.modseq = max(self.modseq, highest_modseq)
        head: list[bytes] = []
        if len(self.keywords) != keywords_before:
            head += self.flag_lines()
        if len(self.uids) != before:
            head.append(b"* %d EXISTS\r\n" % len(self.uids))
            if self.show_recent:
                head.append(b"* %d RECENT\r\n" % len(self.recent))
        return head + out

    def fetch_flags_line(self, uid: int, send_uid: bool, send_modseq: bool) -> bytes:
        items: list[object] = []
        if send_uid:
            items += [Atom("UID"), uid]
        items += [Atom("FLAGS"), flags_atoms(self.flags(uid))]
        if send_modseq:
            items += [Atom("MODSEQ"), [self.meta[uid].modseq]]
        return untagged(self.msn(uid), Atom("FETCH"), items)

    def flush_expunges(self, qresync: bool) -> list[bytes]:
        """Announce pending expunges (RFC 3501 §7.4.1, RFC 7162 §3.2.10)."""
        if not self.pending:
            return []
        gone = sorted(self.pending)
        if qresync:
            for uid in gone:
                self.remove(uid)
            return [b"* VANISHED " + uid_set_text(gone).encode() + b"\r\n"]
        out = []
        # Highest first, so each number is still right when it is sent.
        for uid in reversed(gone):
            n = self.remove(uid)
            if n is not None:
                out.append(b"* %d EXPUNGE\r\n" % n)
        return out

    def flag_lines(self) -> list[bytes]:
        """RFC 3501 §7.2.6 FLAGS and §7.1 PERMANENTFLAGS."""
        flags = flags_atoms(set(SYSTEM_FLAGS) | self.keywords)
        # RFC 4314 §5.1.1: PERMANENTFLAGS reflect the user's rights.
        permanent = [] if self.readonly else [f for f in flags if flag_right(f) in self.rights]
        if not self.readonly and "w" in self.rights:
            permanent.append(Atom("\\*"))
        return [
            untagged(Atom("FLAGS"), flags),
            b"* OK [PERMANENTFLAGS "
            + (b"(" + b" ".join(a.encode() for a in permanent) + b")")
            + b"] Flags permitted\r\n",
        ]

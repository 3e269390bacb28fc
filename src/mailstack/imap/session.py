"""One IMAP session: state, the selected mailbox, command dispatch.

The session reads framed commands from server.py, checks each against the
state table (proto/states.py) in one place, runs the command family's handler
from ``HANDLERS``, and writes responses to its ``Channel``. It touches no
socket: tests drive it with a scripted channel (tests/unit/imap/transcript.py).

Errors: a handler raises ImapError (NO/BAD with a response code); store
refusals are mapped to NO with the RFC 5530 code; anything else is logged and
answered ``NO [SERVERBUG]`` without its text (ARCHITECTURE.md rule 5).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from mailstack.common.auth import Authenticator
from mailstack.common.netguard import is_loopback
from mailstack.errors import (
    AlreadyExists,
    ImapError,
    NotFound,
    QuotaExceeded,
    StoreError,
    StoreUnavailable,
)
from mailstack.imap.cache import ExpungedCache, MetaInterner, ParsedCache, SortKeyCache
from mailstack.imap.proto.commands import Command
from mailstack.imap.proto.parser import ParseError, parse_command
from mailstack.imap.proto.response import tagged, utf8_quoted
from mailstack.imap.proto.states import State, allowed
from mailstack.imap.selected import SelectedMailbox
from mailstack.limits import Limits

if TYPE_CHECKING:
    from mailstack.imap.config import ImapConfig
    from mailstack.imap.contexts import SearchContext
    from mailstack.imap.notify import Notifier
    from mailstack.mime import ParsedMessage
    from mailstack.store import Account, Listener, Store

__all__ = ["Channel", "Context", "Session", "Done", "HANDLERS"]

log = logging.getLogger(__name__)


class Channel(Protocol):
    """What a session needs of its connection (server.py, or a test script)."""

    tls_active: bool

    def write(self, data: bytes) -> None: ...

    async def flush(self) -> None: ...

    async def read_line(self) -> bytes | None:
        """The client's next line (AUTHENTICATE responses, IDLE's DONE); None at EOF."""
        ...

    async def start_tls(self) -> None: ...

    def start_compression(self) -> None:
        """COMPRESS=DEFLATE (RFC 4978) from the next octet on, both ways."""
        ...


@dataclass
class Context:
    """What every session of one listener shares (the counts and caches
    are the node's, shared with its other IMAP listener)."""

    store: Store[ParsedMessage]
    limits: Limits
    config: ImapConfig
    hostname: str
    authenticator: Authenticator
    starttls_available: bool = False
    user_sessions: dict[int, int] = field(default_factory=dict)
    parsed: ParsedCache = field(default_factory=ParsedCache)
    metas: MetaInterner = field(default_factory=MetaInterner)
    sort_keys: SortKeyCache = field(default_factory=SortKeyCache)
    # Sessions with each mailbox selected, and what others expunged from it
    # that they may still FETCH (RFC 2180 §4.1.1).
    selected_by: dict[int, int] = field(default_factory=dict)
    expunged: ExpungedCache = field(init=False)

    def __post_init__(self) -> None:
        self.expunged = ExpungedCache(self.config.expunged_retention)


@dataclass(frozen=True, slots=True)
class Done:
    """A tagged OK: its text and optional response code."""

    text: str
    code: str | None = None
    answered: bool = False  # the handler sent its tagged response itself


Handler = Callable[["Session", Command], Awaitable[Done | None]]
HANDLERS: dict[str, Handler] = {}

# RFC 4314 §5.1.1 (RIGHTS= MUST include t, e, x and k), RFC 8440.
ACL_CAPABILITIES = ("ACL", "RIGHTS=texk", "LIST-MYRIGHTS")

# RFC 3501 §7.4.1: no EXPUNGE while responding to FETCH, STORE or SEARCH
# (their UID forms use UIDs, so expunges may be sent then).
_NO_EXPUNGE_DURING = frozenset({"FETCH", "STORE", "SEARCH", "COPY", "MOVE"})


class Session:
    def __init__(
        self,
        ctx: Context,
        channel: Channel,
        peer: str = "127.0.0.1",
        on_login: Callable[[], None] | None = None,
    ) -> None:
        self.ctx = ctx
        # Told when the session logs in (the listener's cap on sessions not
        # logged in).
        self.on_login = on_login
        self.store = ctx.store
        self.limits = ctx.limits
        self.channel = channel
        self.peer = peer
        self.loopback = is_loopback(peer)
        self.state = State.NOT_AUTHENTICATED
        self.account: Account | None = None
        self.selected: SelectedMailbox | None = None
        self.condstore = False  # RFC 7162 §3.1: CONDSTORE enabled for the session
        self.qresync = False
        self.rev2 = False  # RFC 9051 Appendix A: ENABLE IMAP4rev2
        self.utf8 = False  # UTF-8 mailbox names: ENABLE UTF8=ACCEPT (RFC 6855) or IMAP4rev2
        self.compressed = False  # RFC 4978
        self.enabled: set[str] = set()
        # RFC 5267 §4.3: results kept up to date, by the tag of their command.
        self.contexts: dict[str, SearchContext] = {}
        self.login_failures = 0
        self.release_login: Callable[[], None] | None = None  # the Logins hold
        self.closing = False
        self._listener: Listener | None = None
        self._watcher: asyncio.Task[None] | None = None
        self.changed = asyncio.Event()  # the selected mailbox changed
        # RFC 5465 NOTIFY: what the client asked to be told, the account's
        # listener, and the task that tells it while no command runs.
        self.notifier: Notifier | None = None
        self.account_changed = asyncio.Event()
        # By account: the user's, and the owners' of shared mailboxes watched.
        self._account_listeners: dict[int, tuple[Listener, asyncio.Task[None]]] = {}
        self._pusher: asyncio.Task[None] | None = None
        # Something changed: wakes IDLE and the NOTIFY pusher.
        self.wakeup = asyncio.Event()
        # Held while a command runs: notifications wait for its end.
        self.busy = asyncio.Lock()

    # -- output ------------------------------------------------------------

    def send(self, data: bytes) -> None:
        self.channel.write(data)

    def enable_condstore(self) -> None:
        """A CONDSTORE-enabling command (RFC 7162 §3.1) other than SELECT/EXAMINE.

        The first one while a mailbox is selected is answered with an
        untagged ``OK [HIGHESTMODSEQ]`` so the client learns the mailbox's
        mod-sequence it otherwise got only from SELECT (RFC 7162 §3.1).
        """
        if not self.condstore and self.selected is not None:
            self.send(b"* OK [HIGHESTMODSEQ %d] Highest\r\n" % self.selected.modseq)
        self.condstore = True

    # -- capabilities ----------------------------------------------------------

    def plaintext_ok(self) -> bool:
        return self.channel.tls_active or (
            self.loopback and self.ctx.config.allow_plaintext_on_loopback
        )

    def capabilities(self) -> list[str]:
        caps = ["IMAP4rev1", "IMAP4rev2"]
        if self.state is State.NOT_AUTHENTICATED:
            if self.ctx.starttls_available and not self.channel.tls_active:
                caps.append("STARTTLS")
            if self.plaintext_ok():
                caps += ["AUTH=PLAIN", "SASL-IR"]
            else:
                caps.append("LOGINDISABLED")
        caps += [
            "LITERAL+",
            "ID",
            "ENABLE",
            "IDLE",
            "NAMESPACE",
            "UIDPLUS",
            "MOVE",
            "UNSELECT",
            "CHILDREN",
            "SPECIAL-USE",
            "CREATE-SPECIAL-USE",
            "LIST-EXTENDED",
            "LIST-STATUS",
            "ESEARCH",
            "SEARCHRES",
            "WITHIN",
            "UTF8=ACCEPT",
            "SORT",
            "SORT=DISPLAY",
            "THREAD=ORDEREDSUBJECT",
            "THREAD=REFERENCES",
            "ESORT",
            "CONTEXT=SEARCH",
            "CONTEXT=SORT",
            "PARTIAL",
            "UIDBATCHES",
            f"APPENDLIMIT={self.append_limit()}",
            "STATUS=SIZE",
            "MULTIAPPEND",
            "CATENATE",
            "BINARY",
            "QUOTA",
            "QUOTA=RES-STORAGE",
            "PREVIEW",
            "OBJECTID",
            "SAVEDATE",
            "CONDSTORE",
            "QRESYNC",
            "NOTIFY",
            "URLAUTH",
            "URLAUTH=BINARY",  # RFC 5524
            *ACL_CAPABILITIES,
            "METADATA",
            "METADATA-SERVER",
        ]
        if not self.compressed:
            caps.append("COMPRESS=DEFLATE")
        return caps

    def append_limit(self) -> int:
        return min(self.limits.imap_literal, self.limits.message_size)

    def capability_code(self) -> str:
        return "CAPABILITY " + " ".join(self.capabilities())

    # -- the command loop ------------------------------------------------------

    def greeting(self) -> bytes:
        return f"* OK [{self.capability_code()}] {self.ctx.hostname} IMAP4rev1 ready\r\n".encode()

    async def run(self, raw: bytes, literals: Sequence[bytes] | None = None) -> None:
        """Parse and execute one framed command (whole, or lines + literals)."""
        try:
            cmd = parse_command(
                raw, max_depth=self.limits.imap_nesting, literals=literals, utf8=self.utf8
            )
        except ParseError as exc:
            self.send(exc.line(exc.tag))
            return
        await self.execute(cmd)

    async def execute(self, cmd: Command) -> None:
        if not allowed(cmd.name, self.state):
            self.send(tagged(cmd.tag, "BAD", f"{cmd.name} not allowed now"))
            return
        handler = HANDLERS[cmd.name]
        # RFC 6855 §3: UTF-8 in quoted strings only to a session that took it.
        eight_bit = utf8_quoted.set(self.utf8)
        try:
            async with self.busy:
                await self._execute(handler, cmd)
        finally:
            utf8_quoted.reset(eight_bit)

    async def _execute(self, handler: Handler, cmd: Command) -> None:
        try:
            done = await handler(self, cmd)
        except ImapError as exc:
            self.send(exc.line(cmd.tag))
            return
        except NotFound:
            self.send(tagged(cmd.tag, "NO", "No such mailbox or message", "NONEXISTENT"))
            return
        except AlreadyExists:
            self.send(tagged(cmd.tag, "NO", "Mailbox already exists", "ALREADYEXISTS"))
            return
        except QuotaExceeded:
            self.send(tagged(cmd.tag, "NO", "Over quota", "OVERQUOTA"))
            return
        except StoreUnavailable:
            # RFC 5530 §3: a temporary failure; the client may try again.
            self.send(tagged(cmd.tag, "NO", "The store is unavailable, try again", "UNAVAILABLE"))
            return
        except StoreError:
            self.send(tagged(cmd.tag, "NO", "The store refused the operation", "CANNOT"))
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("IMAP %s failed", cmd.name)
            self.send(tagged(cmd.tag, "NO", "Internal server error", "SERVERBUG"))
            return
        if done is not None and done.answered and self.closing:
            return  # the handler ended the connection mid-response
        if self.selected is not None and self.state is State.SELECTED:
            try:
                await self.poll(allow_expunge=cmd.uid or cmd.name not in _NO_EXPUNGE_DURING)
            except StoreError:
                log.exception("IMAP update of the selected mailbox failed")
        try:
            await self.notify_mailboxes()
        except StoreError:
            log.exception("IMAP NOTIFY update failed")
        done = done or Done(f"{cmd.name} completed")
        if done.answered:
            return
        self.send(tagged(cmd.tag, "OK", done.text, done.code))

    # -- the selected mailbox ------------------------------------------------

    async def select(self, selected: SelectedMailbox, listener: Listener) -> None:
        await self.deselect()
        self.selected = selected
        self.state = State.SELECTED
        counts = self.ctx.selected_by
        counts[selected.mailbox_id] = counts.get(selected.mailbox_id, 0) + 1
        self._listener = listener
        self.changed.clear()
        self._watcher = asyncio.create_task(self._watch(listener))

    async def _watch(self, listener: Listener) -> None:
        while True:
            if await listener.wait():
                self.changed.set()
                self.wakeup.set()

    # -- NOTIFY (RFC 5465) -------------------------------------------------------

    def start_notify(self, notifier: Notifier) -> None:
        """Listen to the accounts the NOTIFY watches and tell the client of
        changes as they happen, also between commands (RFC 5465 §3)."""
        self.notifier = notifier
        self.listen_accounts()
        if self._pusher is None or self._pusher.done():
            self._pusher = asyncio.create_task(self._push())

    def listen_accounts(self) -> None:
        """One listener per account watched: the user's, and those of the
        owners of the shared mailboxes the NOTIFY names (RFC 4314)."""
        assert self.account is not None
        wanted = {self.account.id} | (self.notifier.owners if self.notifier else set())
        for account_id in set(self._account_listeners) - wanted:
            listener, watcher = self._account_listeners.pop(account_id)
            watcher.cancel()
            listener.close()
        for account_id in wanted - set(self._account_listeners):
            listener = self.store.listen_account(account_id)
            watcher = asyncio.create_task(self._watch_account(listener))
            self._account_listeners[account_id] = (listener, watcher)

    async def stop_notify(self) -> None:
        """NOTIFY NONE, an overflow, or the end of the session."""
        self.notifier = None
        tasks = [watcher for _listener, watcher in self._account_listeners.values()]
        if self._pusher is not None and self._pusher is not asyncio.current_task():
            tasks.append(self._pusher)
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for listener, _watcher in self._account_listeners.values():
            listener.close()
        self._account_listeners.clear()
        self._pusher = None

    async def _watch_account(self, listener: Listener) -> None:
        while True:
            if await listener.wait():
                self.account_changed.set()
                self.wakeup.set()

    async def _push(self) -> None:
        """Send notifications while no command is in progress."""
        while self.notifier is not None:
            await self.wakeup.wait()
            async with self.busy:
                if not self.wakeup.is_set() or self.closing:
                    continue
                self.wakeup.clear()
                try:
                    await self.notify_selected()
                    await self.notify_mailboxes()
                except Exception:
                    # The session goes on; the next change tries again.
                    log.exception("IMAP NOTIFY update failed")
                await self.channel.flush()

    async def notify_selected(self) -> None:
        """The selected mailbox's updates, when NOTIFY asks for them at once
        (RFC 5465 §6.1: expunges too for SELECTED, not SELECTED-DELAYED)."""
        notifier = self.notifier
        if notifier is None or self.selected is None:
            return
        group = notifier.selected_group(self.selected.name)
        if group is None or not group.events:
            return
        await self.poll(allow_expunge=group.filter == "SELECTED")

    async def notify_mailboxes(self) -> None:
        """STATUS and LIST for the other mailboxes NOTIFY watches."""
        if self.notifier is not None and self.account_changed.is_set():
            self.account_changed.clear()
            await self.notifier.push(self)
            if self.notifier is not None:
                self.listen_accounts()

    async def deselect(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self.selected is not None:
            counts = self.ctx.selected_by
            left = counts.get(self.selected.mailbox_id, 1) - 1
            if left > 0:
                counts[self.selected.mailbox_id] = left
            else:
                counts.pop(self.selected.mailbox_id, None)
        self.selected = None
        self.contexts.clear()  # RFC 5267 §4.3: updates end with the selection
        if self.state is State.SELECTED:
            self.state = State.AUTHENTICATED

    async def poll(self, *, allow_expunge: bool, force: bool = False) -> None:
        """Send the untagged updates the selected mailbox owes the client."""
        sel = self.selected
        if sel is None:
            return
        if self.changed.is_set() or force:
            self.changed.clear()
            sync = await self.store.mailbox_sync(sel.mailbox_id, sel.modseq)
            if sync is None:
                # The mailbox was deleted or renamed away under us.
                self.send(b"* BYE [UNAVAILABLE] The selected mailbox is gone\r\n")
                self.closing = True
                return
            recent_from = None
            last = sel.uids[-1] if sel.uids else 0
            exists = len(sel.uids)
            newest = max((m.uid for m in sync.changed), default=0)
            if newest > last:
                # RFC 3501 §2.3.2: new messages are \Recent to the one session
                # that claims them; EXAMINE shows them without claiming, and
                # when another session has claimed them all there is nothing
                # to write (many sessions idling on one mailbox).
                if sel.readonly:
                    recent_from = sync.recent_uid
                elif sync.recent_uid <= newest:
                    recent_from = await self.store.claim_recent(sel.mailbox_id)
            lines = sel.apply_changes(
                self.ctx.metas.intern(sel.mailbox_id, sync.changed),
                sync.vanished,
                sync.highest_modseq,
                recent_from=recent_from,
                send_uid=self.qresync,
                send_modseq=self.condstore,
            )
            for line in lines:
                self.send(line)
            if self.notifier is not None and len(sel.uids) > exists:
                # RFC 5465 §5.2: MessageNew's fetch-att for each new message.
                await self.notifier.new_messages(self, [u for u in sel.uids[exists:] if u > last])
            await contexts.refresh(self, [m.uid for m in sync.changed])
        await contexts.age(self)
        if allow_expunge:
            self.flush_expunges()

    def flush_expunges(self) -> None:
        """Announce the selected mailbox's pending expunges, after the
        REMOVEFROM updates of the search contexts (RFC 5267 §4.3.4)."""
        sel = self.selected
        if sel is None or not sel.pending:
            return
        contexts.expunging(self, set(sel.pending))
        for line in sel.flush_expunges(self.qresync):
            self.send(line)

    def require_selected(self) -> SelectedMailbox:
        if self.selected is None:
            raise ImapError("No mailbox selected", bad=True)
        return self.selected

    async def close(self) -> None:
        """The connection is over: release what the session holds."""
        await self.stop_notify()
        await self.deselect()
        if self.release_login is not None:
            self.release_login()
            self.release_login = None
        if self.account is not None:
            count = self.ctx.user_sessions.get(self.account.id, 1) - 1
            if count <= 0:
                self.ctx.user_sessions.pop(self.account.id, None)
            else:
                self.ctx.user_sessions[self.account.id] = count
            self.account = None
        self.state = State.LOGOUT


def handler(*names: str) -> Callable[[Handler], Handler]:
    """Register a command family's handler for the given command names."""

    def register(fn: Handler) -> Handler:
        for name in names:
            HANDLERS[name] = fn
        return fn

    return register


# The command families register their handlers on import.
from mailstack.imap import (  # noqa: E402, F401
    acl,
    append,
    auth,
    batches,
    contexts,
    fetch,
    idle,
    mailboxes,
    messages,
    metadata,
    notify,
    quota,
    search,
    sort,
    urlauth,
)

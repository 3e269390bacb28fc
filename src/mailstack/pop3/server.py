"""The POP3 service: the socket loop around `pop3.proto` (RFC 1939, 2449, 2595, 5034).

`Pop3Service` serves the `pop3` listen key (STLS offered) and `pop3s` (implicit
TLS, RFC 8314). The maildrop is the account's INBOX in the node's store, so
POP3 and IMAP see the same mail. A maildrop is locked by one POP3 session at
a time (RFC 1939 §4 "exclusive-access lock", `pop3.maildrops`, held by the
node). Passwords are checked by the node's authenticator (`common/auth.py`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from mailstack.common.auth import Outcome
from mailstack.common.clients import CapReached
from mailstack.common.driver import SessionDriver
from mailstack.common.netguard import is_loopback
from mailstack.common.server import SessionIO, TcpService
from mailstack.errors import NotFound, Pop3Error, StoreError, StoreUnavailable
from mailstack.pop3.config import Pop3Config
from mailstack.pop3.proto import (
    Authenticate,
    ByteStuffer,
    MaildropMessage,
    Pop3Session,
    Reply,
    Retrieve,
    StartTls,
    Update,
    format_message,
    ok,
    top_end,
)

if TYPE_CHECKING:
    from mailstack.app import Node

__all__ = ["Pop3Service"]

SEEN = "\\Seen"
# A client downloading in order gets the next messages read from the store in
# batches of at most this many octets (a session holds two batches at most) ...
READ_AHEAD_OCTETS = 256 * 1024
# ... and this many messages.
READ_AHEAD_MESSAGES = 32
# A message larger than this is never read whole: RETR sends it from the
# store a chunk at a time, each once the socket took the last.
STREAM_AT = 256 * 1024


_REFUSALS = {
    CapReached.TOTAL: "too many sessions, try again later",
    CapReached.ADDRESS: "too many sessions from your address, try again later",
    CapReached.PREFIX: "too many sessions from your network, try again later",
    CapReached.LOGIN: "too many sessions not logged in from your address, try again later",
}


class Pop3Service(TcpService):
    protocol = "pop3"
    takes_logins = True
    implicit_tls_names = frozenset({"pop3s"})
    # RFC 3206 §4: SYS/PERM, the user should not retry but ask the administrator.
    kicked_message = b"-ERR [SYS/PERM] Account disabled or removed\r\n"

    def __init__(self, node: Node, name: str, host: str, port: int) -> None:
        super().__init__(node, name, host, port)
        self.max_sessions = node.limits.pop3_sessions
        self.max_sessions_per_address = node.limits.pop3_sessions_per_address
        self.max_sessions_per_prefix = node.limits.pop3_sessions_per_prefix
        self.idle_timeout = node.limits.pop3_idle_timeout
        self.config: Pop3Config = node.config.pop3

    def refusal(self, cap: CapReached) -> bytes:
        # RFC 3206 §4: SYS/TEMP, a temporary problem; try again later.
        return Pop3Error(_REFUSALS[cap], code="SYS/TEMP").to_bytes()

    async def session(self, io: SessionIO) -> None:
        connection = _Pop3Connection(self, io)
        await connection.run(connection.proto.greeting().data)


class _Pop3Connection(SessionDriver[Pop3Session]):
    """One client connection: performs the session's events."""

    def __init__(self, service: Pop3Service, io: SessionIO) -> None:
        self.service = service
        self.store = service.node.store
        limits = service.node.limits
        config = service.config
        self.peer_ip = io.peer[0]
        self.loopback = is_loopback(self.peer_ip)
        proto = Pop3Session(
            plaintext_ok=io.tls_active or (self.loopback and config.allow_plaintext_on_loopback),
            tls_available=config.starttls and service.node.tls.available,
            tls_active=io.tls_active,
            mechanisms=config.mechanisms,
            implementation=config.implementation,
            expire_days=config.expire_days,
            login_delay=config.login_delay,
            max_line=limits.pop3_line,
            max_sasl_line=limits.pop3_sasl_line,
            max_failures=limits.login_failures,
            failure_delay=limits.login_failure_delay,
        )
        super().__init__(io, proto)
        self.handlers = {
            Reply: self.reply,
            Authenticate: self.log_in,
            StartTls: self.start_tls,
            Retrieve: self.retrieve,
            Update: self.sign_off,
        }
        # The address's failures follow it from connection to connection.
        self.proto.failures = service.node.authenticator.failures(self.peer_ip)
        self.account_id: int | None = None  # set while this session holds the lock
        self.mailbox_id = 0
        self.read_ahead: dict[int, bytes] = {}  # uid -> bytes
        self.read_ahead_octets = 0  # the octets held in read_ahead
        self.pending: asyncio.Future[dict[int, bytes]] | None = None  # the next batch
        self.pending_uids: set[int] = set()
        self.last_retrieved = 0
        self.seen_at_login: set[int] = set()  # UIDs flagged \Seen when the maildrop opened
        self.release_login: Callable[[], None] | None = None  # the Logins hold

    async def run(self, greeting: bytes) -> None:
        try:
            await super().run(greeting)
        finally:
            if self.pending is not None:
                self.pending.cancel()
            self.release()

    def trace_event(self, event: object) -> None:
        line = self.proto.traced_line()
        if line is not None:
            self.io.trace.client(line)

    async def reply(self, event: Reply) -> bool:
        if event.delay:
            await asyncio.sleep(event.delay)
        self.send(event.data)
        return event.close

    async def log_in(self, event: Authenticate) -> bool:
        return await self.reply(await self.authenticate(event))

    async def sign_off(self, event: Update) -> bool:
        return await self.reply(await self.update(event))

    async def start_tls(self, event: StartTls) -> bool:
        self.send(event.reply)
        try:
            await self.upgrade_to_tls(self.service.node.tls.server_context())
        except (OSError, ValueError):
            return True
        return False

    async def authenticate(self, event: Authenticate) -> Reply:
        node = self.service.node
        login = await node.authenticator.login("pop3", event.user, event.password, self.peer_ip)
        if login.outcome is Outcome.UNAVAILABLE:
            return self.proto.login_refused("SYS/TEMP", "cannot check credentials now")
        account = login.account
        if account is None:
            return self.proto.auth_failed()
        maildrops = node.maildrops
        now = time.monotonic()
        delay = self.service.config.login_delay
        last = maildrops.last_login.get(account.id)
        if delay and last is not None and now - last < delay:
            # RFC 2449 §8.1.1: too soon after the previous login.
            return self.proto.login_refused("LOGIN-DELAY", f"wait {delay} seconds between logins")
        if account.id in maildrops.locked:
            # RFC 2449 §8.1.2: another session holds the maildrop lock.
            return self.proto.login_refused("IN-USE", "maildrop already locked by another session")
        maildrops.locked.add(account.id)
        self.account_id = account.id
        try:
            messages = await self.open_maildrop(account.id, account.address)
        except StoreError:
            self.release()
            return self.proto.login_refused("SYS/TEMP", "cannot open the maildrop now")
        maildrops.last_login[account.id] = now
        self.release_login = node.authenticator.logins.hold(account.address)
        self.io.authenticated()
        return messages

    async def open_maildrop(self, account_id: int, address: str) -> Reply:
        assert self.store is not None
        inbox = await self.store.mailbox_get(account_id, "INBOX")
        if inbox is None:
            raise StoreError("no INBOX")
        self.mailbox_id = inbox.id
        metas = await self.store.messages(inbox.id)
        expire_days = self.service.config.expire_days
        if expire_days:
            cutoff = time.time() - expire_days * 86400
            old = [m.uid for m in metas if SEEN in m.flags and m.internaldate.timestamp() < cutoff]
            if old:
                await self.store.expunge(inbox.id, old, require_deleted=False)
                expired = set(old)
                metas = [m for m in metas if m.uid not in expired]
        maildrop = [MaildropMessage(m.uid, m.size) for m in metas]
        # QUIT marks what was retrieved \Seen; what already was is not written again.
        self.seen_at_login = {m.uid for m in metas if SEEN in m.flags}
        return self.proto.logged_in(address, inbox.uidvalidity, maildrop)

    async def retrieve(self, event: Retrieve) -> bool:
        assert self.store is not None
        size = self.proto.messages[event.number - 1].size
        if size > STREAM_AT:
            return await self.stream(event, size)
        try:
            raw = await self.message_bytes(event)
        except StoreUnavailable:
            return self.store_away()
        except StoreError:
            raw = None
        return await self.send_message(
            event, None if raw is None else format_message(raw, event.top_lines)
        )

    def store_away(self) -> bool:
        """RFC 3206 §4 SYS/TEMP: the store cannot be reached now (a shared
        PostgreSQL restarting); the session goes on."""
        self.send(Pop3Error("the maildrop cannot be read now", code="SYS/TEMP").to_bytes())
        return False

    async def send_message(self, event: Retrieve, data: bytes | None) -> bool:
        """Send a RETR/TOP response whole; None when the message is gone."""
        if data is None:
            # Removed behind our back (an IMAP EXPUNGE while we hold the POP3 lock).
            self.send(Pop3Error(f"message {event.number} is no longer available").to_bytes())
            return False
        if self.io.trace.enabled:
            first, _, _ = data.partition(b"\r\n")
            self.io.trace.server(first)
            self.io.trace.note(f"... {len(data) - len(first) - 2} octets of message {event.number}")
        self.io.write(data)
        if self.io.writer.transport.get_write_buffer_size() > READ_AHEAD_OCTETS:
            # A client pipelining many RETRs: let the socket catch up.
            await self.io.drain()
        return False

    async def stream(self, event: Retrieve, size: int) -> bool:
        """RETR or TOP of a big message from the store's chunks; the RSS it
        costs is the socket buffer's and one chunk, not the message."""
        assert self.store is not None
        chunks = self.store.message_chunks(self.mailbox_id, event.uid)
        try:
            first = await anext(chunks)
            if event.top_lines is not None:
                # TOP reads only as far as the header and the lines it sends.
                head = bytearray(first)
                while top_end(bytes(head), event.top_lines) is None and len(head) < size:
                    head += await anext(chunks)
                return await self.send_message(event, format_message(bytes(head), event.top_lines))
        except StoreUnavailable:
            return self.store_away()
        except (StoreError, StopAsyncIteration):
            return await self.send_message(event, None)
        stuffer = ByteStuffer()
        first_line = ok(f"{size} octets")
        if self.io.trace.enabled:
            self.io.trace.server(first_line.rstrip(b"\r\n"))
            self.io.trace.note(f"... {size} octets of message {event.number}")
        self.io.write(first_line + stuffer.feed(first))
        await self.io.drain()
        try:
            async for chunk in chunks:
                self.io.write(stuffer.feed(chunk))
                await self.io.drain()
        except NotFound:
            # Expunged (by IMAP) half-way through: the response cannot be
            # taken back, so the session ends without its dot line.
            return True
        self.io.write(stuffer.end())
        return False

    async def message_bytes(self, event: Retrieve) -> bytes | None:
        """The message's bytes; a client reading in order gets the next ones
        fetched in batches, the following batch while it reads this one."""
        assert self.store is not None
        sequential = event.number == self.last_retrieved + 1
        self.last_retrieved = event.number
        raw = self.take_read_ahead(event.uid)
        if raw is None and self.pending is not None and event.uid in self.pending_uids:
            pending, self.pending = self.pending, None
            self.add_read_ahead(await pending)
            raw = self.take_read_ahead(event.uid)
        if raw is None:
            if not sequential:
                return await self.store.message_bytes(self.mailbox_id, event.uid)
            batch = [event.uid, *self.next_batch(event.number, READ_AHEAD_OCTETS)]
            self.read_ahead, self.read_ahead_octets = {}, 0
            self.add_read_ahead(await self.store.messages_bytes(self.mailbox_id, batch))
            raw = self.take_read_ahead(event.uid)
        if sequential and self.pending is None and self.read_ahead_octets < READ_AHEAD_OCTETS // 2:
            uids = self.next_batch(event.number, READ_AHEAD_OCTETS)
            if uids:
                self.pending_uids = set(uids)
                self.pending = asyncio.ensure_future(
                    self.store.messages_bytes(self.mailbox_id, uids)
                )
        return raw

    def take_read_ahead(self, uid: int) -> bytes | None:
        raw = self.read_ahead.pop(uid, None)
        if raw is not None:
            self.read_ahead_octets -= len(raw)
        return raw

    def add_read_ahead(self, batch: dict[int, bytes]) -> None:
        for uid, raw in batch.items():
            old = self.read_ahead.get(uid)
            if old is not None:
                self.read_ahead_octets -= len(old)
            self.read_ahead[uid] = raw
            self.read_ahead_octets += len(raw)

    def next_batch(self, number: int, budget: int) -> list[int]:
        """UIDs after message ``number``, not yet read ahead, within ``budget`` octets."""
        uids: list[int] = []
        for message in self.proto.following(number):
            if message.size > STREAM_AT:
                break  # streamed when its turn comes, never read ahead
            if message.uid in self.read_ahead:
                continue
            budget -= message.size
            if (budget < 0 and uids) or len(uids) >= READ_AHEAD_MESSAGES:
                break
            uids.append(message.uid)
        return uids

    async def update(self, event: Update) -> Reply:
        assert self.store is not None
        ok = True
        try:
            if event.expunge:
                await self.store.expunge(self.mailbox_id, event.expunge, require_deleted=False)
            seen = [uid for uid in event.seen if uid not in self.seen_at_login]
            if seen:
                await self.store.store_flags(self.mailbox_id, seen, (SEEN,), "add")
        except StoreError:
            ok = False
        self.release()
        return self.proto.update_finished(ok)

    def release(self) -> None:
        if self.release_login is not None:
            self.release_login()
            self.release_login = None
        if self.account_id is not None:
            self.service.node.maildrops.locked.discard(self.account_id)
            self.account_id = None

"""The queue runner: the task of a node that delivers what the queue holds.

Work reaches the delivery workers two ways. A message queued in this process
(`enqueue()`, and the DSNs the runner itself queues) goes to them at once,
without a look at the queue. A scan of the queue for due recipients runs at
start, when the earliest retry falls due, on `wake()`, within a second of
`mailstack queue retry` in another process (the store's queue mark), and
every ``[queue] poll`` seconds (to see what else another process changed).

Work is kept per destination domain, with up to ``connections_per_domain``
workers (``connections`` in total), each holding one connection and taking
the next waiting message for that domain until none is left:

* local domains (a DSN to one of our users, say) go straight into the
  mailboxes (`mailstack.delivery.local`);
* remote domains are routed by MX (`routing.route`) and served over SMTP
  (`mailstack.smtp.client.Connection`), several messages per connection.

Every outcome is recorded (and the DSNs it causes queued) in one commit as
soon as the remote server has answered, so a crash later never sends a
message twice to a recipient that already took it (RFC 5321 §6.1 leaves a
window only between the remote's reply and our commit).

The clock (POSIX seconds) and the resolver are attributes, so tests give a
fake clock and a fake resolver.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mailstack.delivery.local import LocalDelivery
from mailstack.delivery.status import Outcome
from mailstack.errors import QuotaExceeded, StoreError
from mailstack.queue.config import QueueConfig
from mailstack.queue.dsn import report_entry
from mailstack.queue.policy import Action, Report, decide
from mailstack.queue.routing import Resolver, RouteError, route
from mailstack.smtp.client import ConnectFailed, Connection, Delivery
from mailstack.smtp.client_proto import Host
from mailstack.store import (
    DELIVERED,
    NewEntry,
    NewRecipient,
    QueuedRecipient,
    QueueEntry,
    RecipientUpdate,
)

if TYPE_CHECKING:
    from mailstack.app import Node

log = logging.getLogger("mailstack.queue")

# Entries looked at per round; the rest wait for the next round.
ROUND_SIZE = 1000
# Seconds between looks at the store's queue mark while the runner sleeps.
MARK_CHECK = 1.0

Item = tuple[QueueEntry, list[QueuedRecipient]]
# Told each recorded outcome of an entry's recipients (address -> update);
# returns True when it wants to hear no more.
Watcher = Callable[[QueueEntry, dict[str, RecipientUpdate]], Awaitable[bool]]


@dataclass
class _Destination:
    """The messages waiting for one domain and the workers delivering them."""

    domain: str
    pending: deque[Item] = field(default_factory=deque)
    workers: int = 0


def recallable(entry: QueueEntry) -> bool:
    """No recipient of the entry has the message yet (some may have failed):
    taking it out of the queue still keeps it from everyone."""
    return all(r.state != DELIVERED for r in entry.recipients)


class QueueRunner:
    def __init__(
        self,
        node: Node,
        *,
        clock: Callable[[], float] = time.time,
        resolver: Resolver | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.node = node
        self.config: QueueConfig = node.config.queue
        self.clock = clock
        self._resolver = resolver
        self.delivery = LocalDelivery(node)
        self.rng = rng or random.Random()
        self.hostname = self.config.helo or node.hostname
        # Our own names, never a next hop (RFC 5321 §5.1).
        self.ourselves = frozenset(
            name.lower().rstrip(".") for name in (self.hostname, node.hostname) if name
        )
        self._wake = asyncio.Event()
        self._inflight: set[int] = set()  # recipient ids being attempted
        self._tasks: set[asyncio.Task[None]] = set()
        self._connections = asyncio.Semaphore(self.config.connections)
        self._destinations: dict[str, _Destination] = {}
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._watchers: dict[int, Watcher] = {}

    @property
    def resolver(self) -> Resolver:
        if self._resolver is None:
            # The node's (its dns service's or one from [dns.resolver]): outbound
            # mail must find any domain's MX, from the root servers if need be.
            self._resolver = self.node.resolver
        return self._resolver

    @resolver.setter
    def resolver(self, resolver: Resolver) -> None:
        self._resolver = resolver

    @property
    def store(self) -> Any:
        return self.node.store

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self._loop_task = asyncio.create_task(self._loop(), name="queue-runner")

    async def stop(self, grace: float = 10.0) -> None:
        """Stop taking work; let transactions under way finish (their outcome
        recorded, so nothing is sent twice after a restart) for up to
        ``grace`` seconds, then cancel what is left."""
        self._stopping = True
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.wait([self._loop_task])
            self._loop_task = None
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=grace)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=grace)
        self._stopping = False

    def wake(self) -> None:
        self._wake.set()

    # -- queueing ----------------------------------------------------------------------

    def new_entry(
        self,
        mail_from: str,
        recipients: Sequence[NewRecipient],
        data: bytes,
        *,
        envid: str | None = None,
        ret: str | None = None,
        smtputf8: bool = False,
        body: str | None = None,
    ) -> NewEntry:
        now = self.clock()
        return NewEntry(
            mail_from,
            list(recipients),
            data,
            now,
            now + self.config.give_up,
            envid=envid,
            ret=ret,
            smtputf8=smtputf8,
            body=body,
        )

    async def enqueue(self, entry: NewEntry, watcher: Watcher | None = None) -> int:
        """Queue durably (fsynced when this returns) and start delivering it.
        ``watcher`` is told every outcome recorded for it from then on, in
        this process, until it says it is done (JMAP EmailSubmission's
        deliveryStatus, RFC 8621 §7)."""
        entry_id = int(await self.store.queue_add(entry))
        if watcher is not None:
            self._watchers[entry_id] = watcher
        log.debug(
            "queue %d: queued from <%s> to %s (%d octets)",
            entry_id,
            entry.mail_from,
            ", ".join(f"<{r.address}>" for r in entry.recipients),
            len(entry.data),
        )
        await self._dispatch_new(entry_id)
        return entry_id

    async def cancel(self, entry_id: int) -> bool:
        """Take an entry out of the queue if no recipient has it yet and no
        attempt is under way (JMAP undo, RFC 8621 §7); False when it is too
        late (or the entry is gone)."""
        try:
            entry = await self.store.queue_get(entry_id)
        except StoreError:
            return False
        if not recallable(entry) or any(r.id in self._inflight for r in entry.recipients):
            return False
        try:
            await self.store.queue_remove(entry_id)
        except StoreError:
            return False
        self._watchers.pop(entry_id, None)
        log.info("queue %d: canceled by its sender", entry_id)
        return True

    async def report_delivered(
        self,
        mail_from: str,
        data: bytes,
        recipients: Sequence[tuple[str, str | None]],
        *,
        envid: str | None = None,
    ) -> int | None:
        """Queue a "delivered" DSN (RFC 3461 §6.2.1, RFC 3464) for ``recipients``
        ((address, ORCPT) pairs that asked NOTIFY=SUCCESS) of a message that
        went into local mailboxes outside the queue, such as at the MX. Returns
        the DSN's queue id; None when there is no one to tell (a null sender)."""
        return await self._report_local(
            mail_from, data, recipients, "delivered", "2.0.0", None, "delivered to mailbox",
            envid=envid, ret=None,
        )

    async def report_failed(
        self,
        mail_from: str,
        data: bytes,
        recipients: Sequence[tuple[str, str | None]],
        *,
        status: str,
        diagnostic: str,
        reason: str,
        envid: str | None = None,
        ret: str | None = None,
    ) -> int | None:
        """Queue a "failed" DSN for recipients of a message accepted outside
        the queue that could not be filed (at the MX: a mailbox over quota)."""
        return await self._report_local(
            mail_from, data, recipients, "failed", status, diagnostic, reason,
            envid=envid, ret=ret,
        )

    async def _report_local(
        self,
        mail_from: str,
        data: bytes,
        recipients: Sequence[tuple[str, str | None]],
        action: Action,
        status: str,
        diagnostic: str | None,
        reason: str,
        *,
        envid: str | None,
        ret: str | None,
    ) -> int | None:
        if not mail_from or not recipients:
            return None
        now = self.clock()
        entry = QueueEntry(0, mail_from, now, now, envid, ret, False, None, len(data), ())
        reports = [
            Report(address, orcpt, action, status, diagnostic, reason, None, now)
            for address, orcpt in recipients
        ]
        dsn = report_entry(
            entry,
            data,
            reports,
            reporting_mta=self.hostname,
            now=now,
            expires=now + self.config.give_up,
            returned_size=self.node.limits.dsn_returned_size,
        )
        return await self.enqueue(dsn)

    async def _dispatch_new(self, entry_id: int) -> None:
        """Hand a just-queued entry to the workers without a scan of the queue."""
        if self._loop_task is None:
            return  # stopped (or run by hand with run_once): the next round finds it
        try:
            entry = await self.store.queue_get(entry_id)
        except StoreError:
            return
        self._dispatch([(entry, entry.pending())])

    # -- the loop ----------------------------------------------------------------------

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                self._dispatch(await self._due())
                next_due = await self.store.queue_next_due(after=self.clock())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("queue round failed")
                next_due = None
            delay = self.config.poll
            if next_due is not None:
                delay = min(delay, max(next_due - self.clock(), 0.0))
            await self._sleep(delay)

    async def _sleep(self, delay: float) -> None:
        """Until wake(), `delay` seconds, or the store's queue mark moves
        (another process ran `queue retry`): the mark is looked at every
        MARK_CHECK seconds, a stat() each."""
        mark = self.store.queue_mark()
        end = asyncio.get_running_loop().time() + delay
        while True:
            left = end - asyncio.get_running_loop().time()
            if left <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), min(left, MARK_CHECK))
                return
            if self.store.queue_mark() != mark:
                return

    async def run_once(self, rounds: int = 10) -> int:
        """Attempt every due recipient now, wait until all attempts (also those
        already under way) are recorded, and go on while that made more work
        due (a DSN to a local sender, say), at most ``rounds`` times. Returns
        how many recipient attempts were started here."""
        started = 0
        for _ in range(rounds):
            items = await self._due()
            if not items and not self._tasks:
                break
            self._dispatch(items)
            started += sum(len(rcpts) for _entry, rcpts in items)
            while self._tasks:
                await asyncio.wait(list(self._tasks))
        return started

    async def _due(self) -> list[Item]:
        now = self.clock()
        items = []
        for entry in await self.store.queue_due(now, ROUND_SIZE):
            due = [
                r for r in entry.pending() if r.next_attempt <= now and r.id not in self._inflight
            ]
            if due:
                items.append((entry, due))
        return items

    def _dispatch(self, items: list[Item]) -> None:
        for entry, due in items:
            per_domain: dict[str, list[QueuedRecipient]] = {}
            for rcpt in due:
                if rcpt.id not in self._inflight:
                    per_domain.setdefault(rcpt.domain, []).append(rcpt)
                    self._inflight.add(rcpt.id)
            for domain, rcpts in per_domain.items():
                destination = self._destinations.get(domain)
                if destination is None:
                    destination = self._destinations[domain] = _Destination(domain)
                destination.pending.append((entry, rcpts))
                self._spawn(destination)

    def _spawn(self, destination: _Destination) -> None:
        # One worker (one connection) per waiting message, up to the limit.
        wanted = min(self.config.connections_per_domain, len(destination.pending))
        while destination.workers < wanted:
            destination.workers += 1
            task = asyncio.create_task(self._worker(destination))
            self._tasks.add(task)
            task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("queue delivery failed", exc_info=task.exception())

    def _release(self, rcpts: list[QueuedRecipient]) -> None:
        self._inflight.difference_update(r.id for r in rcpts)

    # -- one destination ---------------------------------------------------------------

    async def _worker(self, destination: _Destination) -> None:
        """Deliver what waits for one domain, over one connection at a time."""
        pending = destination.pending
        connection: Connection | None = None
        hosts: list[Host] | None = None
        crashed = False
        try:
            async with self._connections:
                local = await self.store.is_local_domain(destination.domain)
                while pending and not self._stopping:
                    if local:
                        entry, rcpts = pending.popleft()
                        try:
                            await self._deliver_local(entry, rcpts)
                        finally:
                            self._release(rcpts)
                        continue
                    if (
                        connection is None
                        or not connection.usable
                        or connection.sent >= self.config.messages_per_connection
                    ):
                        if connection is not None:
                            await connection.close()
                            connection = None
                        failure: Outcome | None = None
                        if hosts is None:
                            try:
                                hosts = await route(
                                    destination.domain, self.resolver, self.rng, self.ourselves
                                )
                            except RouteError as exc:
                                failure = exc.outcome
                        if hosts is not None:
                            connection, failure = await self._connect(hosts)
                        if connection is None:
                            assert failure is not None
                            # No host takes mail now: this round is over for all of them.
                            await self._fail_all(pending, failure)
                            return
                    if not pending:
                        return
                    entry, rcpts = pending.popleft()
                    try:
                        data = await self.store.queue_data(entry.id)
                        outcomes = await connection.send(Delivery(entry, rcpts, data))
                        await self._record(entry, rcpts, outcomes, data)
                    finally:
                        self._release(rcpts)
        except BaseException:
            crashed = True
            raise
        finally:
            # Decided before the next await, so no dispatch slips in between.
            destination.workers -= 1
            if destination.workers == 0 and pending:
                if crashed or self._stopping:
                    # Found again by the next scan of the queue.
                    while pending:
                        self._release(pending.popleft()[1])
                else:
                    self._spawn(destination)  # more arrived after our last look
            if (
                destination.workers == 0
                and self._destinations.get(destination.domain) is destination
            ):
                del self._destinations[destination.domain]
            if connection is not None:
                await connection.close()

    async def _fail_all(self, pending: deque[Item], outcome: Outcome) -> None:
        while pending:
            entry, rcpts = pending.popleft()
            try:
                await self._record(entry, rcpts, {r.id: outcome for r in rcpts})
            finally:
                self._release(rcpts)

    def _source_address(self) -> str | None:
        """Send from the address the node receives mail on, when it listens on
        one (not a wildcard): that is the address its SPF record names."""
        listen = getattr(getattr(self.node, "config", None), "listen", {})
        for name in ("smtp", "submission", "submissions"):
            host = listen.get(name, ("", 0))[0]
            if host not in ("", "0.0.0.0", "::"):
                return str(host)
        return None

    async def _connect(self, hosts: list[Host]) -> tuple[Connection | None, Outcome]:
        failure = Outcome.temporary("4.4.1", "no mail exchanger answered")
        # RFC 5321 §5.1: try the hosts in order until one takes the session.
        for host in hosts:
            try:
                connection = await Connection.open(
                    host,
                    port=self.config.port,
                    helo=self.hostname,
                    connect_timeout=self.config.connect_timeout,
                    tracer=getattr(self.node, "tracer", None),
                    source=self._source_address(),
                    chunking=self.config.chunking,
                )
            except ConnectFailed as exc:
                log.info("queue: %s", exc.outcome.reply)
                failure = exc.outcome
                continue
            return connection, failure
        return None, failure

    async def _tell_watcher(
        self, entry: QueueEntry, rcpts: list[QueuedRecipient], updates: list[RecipientUpdate]
    ) -> None:
        watcher = self._watchers.get(entry.id)
        if watcher is None:
            return
        outcomes = {r.address: u for r, u in zip(rcpts, updates, strict=True)}
        try:
            done = await watcher(entry, outcomes)
        except Exception:
            # The outcome is recorded in the queue all the same.
            log.exception("queue %d: its watcher failed", entry.id)
            done = True
        if done:
            self._watchers.pop(entry.id, None)

    async def _deliver_local(self, entry: QueueEntry, rcpts: list[QueuedRecipient]) -> None:
        data = await self.store.queue_data(entry.id)
        outcomes: dict[int, Outcome] = {}
        delivered: list[QueuedRecipient] = []
        found: list[tuple[str, list[int]]] = []
        for rcpt in rcpts:
            accounts = await self.store.resolve_local(rcpt.address)
            if not accounts:
                outcomes[rcpt.id] = Outcome.permanent("5.1.1", f"<{rcpt.address}>: user unknown")
                continue
            delivered.append(rcpt)
            found.append((rcpt.address, [account.id for account in accounts]))
        if found:
            try:
                await self.delivery.deliver(data, entry.mail_from, found)
                outcome = Outcome("delivered", "2.0.0", "delivered to mailbox", local=True)
            except QuotaExceeded:
                outcome = Outcome.temporary("4.2.2", "mailbox full")
            except StoreError:
                outcome = Outcome.temporary("4.3.0", "local delivery failed")
            outcomes.update((r.id, outcome) for r in delivered)
        await self._record(entry, rcpts, outcomes, data)

    async def _record(
        self,
        entry: QueueEntry,
        rcpts: list[QueuedRecipient],
        outcomes: dict[int, Outcome],
        data: bytes | None = None,
    ) -> None:
        now = self.clock()
        updates = []
        reports: list[Report] = []
        for rcpt in rcpts:
            outcome = outcomes.get(rcpt.id) or Outcome.temporary("4.4.2", "no reply")
            update, report = decide(entry, rcpt, outcome, now, self.config)
            updates.append(update)
            if report is not None:
                reports.append(report)
            log.info(
                "queue %d: <%s> %s %s: %s",
                entry.id,
                rcpt.address,
                update.state,
                outcome.status,
                outcome.reply,
            )
        dsns = []
        if reports:
            if data is None:
                data = await self.store.queue_data(entry.id)
            try:
                dsns.append(
                    report_entry(
                        entry,
                        data,
                        reports,
                        reporting_mta=self.hostname,
                        now=now,
                        expires=now + self.config.give_up,
                        returned_size=self.node.limits.dsn_returned_size,
                    )
                )
            except Exception:
                # The outcomes are recorded all the same: a message must not
                # be sent again because its report could not be written.
                log.exception("queue %d: cannot compose the DSN", entry.id)
        report_ids = await self.store.queue_update(entry.id, updates, dsns)
        await self._tell_watcher(entry, rcpts, updates)
        for report_id in report_ids:
            log.info("queue %d: DSN to <%s> queued as %d", entry.id, entry.mail_from, report_id)
            await self._dispatch_new(report_id)

"""A node: one event loop running every configured service over one store.

`Node.start()` opens the store and starts a service for each `[listen]` key
(SERVICES, each class imported here by name); `Node.stop()` stops accepting,
ends the sessions and closes the store. `run()` does both around SIGTERM/SIGINT.

What the node's services share hangs off the node, never module globals: the
authenticator every login goes through (`common/auth.py`), the resolver
(`Node.resolver`), the POP3 maildrop locks and the IMAP per-user counts and
caches.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from mailstack.commands import open_node_store
from mailstack.common.auth import Authenticator
from mailstack.common.events import log_event
from mailstack.common.tls import Tls
from mailstack.common.trace import Tracer
from mailstack.config import Config
from mailstack.delivery.ids import MessageIds
from mailstack.delivery.vacation import Vacations
from mailstack.dns.service import DnsService
from mailstack.errors import ConfigError
from mailstack.http.service import HttpService
from mailstack.imap import urls
from mailstack.imap.server import ImapService
from mailstack.imap.shared import ImapShared
from mailstack.jmap.shared import JmapShared
from mailstack.mime import ParsedMessage
from mailstack.pop3.maildrops import Maildrops
from mailstack.pop3.server import Pop3Service
from mailstack.smtp.server import SmtpService
from mailstack.smtp.spool import SpoolArea
from mailstack.smtp.submission import SubmissionService
from mailstack.store import Store
from mailstack.store.private import create_private, make_private

if TYPE_CHECKING:
    from mailstack.dns.resolver import Resolver

log = logging.getLogger("mailstack")

# Files a running node keeps in its data directory (`mailstack status` reads them).
PORTS_FILE = "ports.json"
PID_FILE = "mailstack.pid"


class Service(Protocol):
    """What a node runs for a `[listen]` key: started, stopped, bound somewhere."""

    bound: list[tuple[str, int]]

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


# listen name -> its service; names ending in "s" (submissions, pop3s, imaps, https)
# are the implicit-TLS variants of the same service class. config.ListenConfig
# has a key for each (tests/unit/test_config.py checks they agree).
SERVICES: dict[str, Callable[[Node, str, str, int], Service]] = {
    "smtp": SmtpService,
    "submission": SubmissionService,
    "submissions": SubmissionService,
    "pop3": Pop3Service,
    "pop3s": Pop3Service,
    "imap": ImapService,
    "imaps": ImapService,
    "dns": DnsService,
    "http": HttpService,
    "https": HttpService,
}


class Node:
    authenticator: Authenticator  # set by start(), once the store is open
    message_ids: MessageIds  # set by start(): this run's message ids

    def __init__(
        self,
        config: Config,
        *,
        trace: bool = False,
        trace_json: TextIO | None = None,
        store_factory: Callable[[Config], Awaitable[Store[ParsedMessage]]] | None = None,
    ) -> None:
        self.config = config
        self._store_factory = store_factory or open_node_store
        self.hostname = config.hostname
        self.limits = config.limits
        self.tracer = Tracer(enabled=trace, json_out=trace_json, host=config.hostname)
        self.tls = Tls(config.cert_path, config.key_path, config.data_dir / "tls" / "certs")
        self.store: Store[ParsedMessage] | None = None  # set by start()
        self.services: dict[str, Any] = {}
        self.queue: Any = None  # the queue runner (mailstack.queue.runner), set by start()
        self.renewals: Any = None  # ACME renewals (mailstack.certs.service), set by start()
        self.maildrops = Maildrops()
        self.imap_shared = ImapShared()
        self.vacations = Vacations(config.jmap.vacation_days * 86400)
        self.jmap_shared = JmapShared()
        self.smtp_spool = SpoolArea(
            config.data_dir / "spool", config.limits.smtp_spool_threshold, config.limits.smtp_memory
        )
        self._resolver: Resolver | None = None

    async def burl_octets(self, url: str, user: str) -> bytes | str:
        """BURL (RFC 4468): what a URLAUTH URL of this node's IMAP host gives
        the submission server acting for ``user``, or why nothing (an
        `imap.urls.Refusal`): URLFETCH's verification, imap/urls.py."""
        assert self.store is not None
        requester = urls.Requester(user, submit=True)
        return await urls.resolve(
            self.store, self.imap_shared.parsed, self.hostname, url, requester
        )

    async def start(self) -> None:
        self._make_private()
        self.store = await self._store_factory(self.config)
        self.message_ids = MessageIds(await self.store.new_run_number())
        await asyncio.to_thread(self.smtp_spool.sweep)
        self.authenticator = Authenticator(
            self.store, self.limits, cache_seconds=self.config.imap.login_cache_seconds
        )
        try:
            for name, (host, port) in self.config.listen.items():
                service = SERVICES[name](self, name, host, port)
                await service.start()
                self.services[name] = service
        except OSError as exc:
            await self.stop()
            raise ConfigError(f"cannot listen: {exc}") from None
        await self._start_queue()
        self._start_renewals()
        self._write_ports()

    @property
    def resolver(self) -> Resolver:
        """The node's resolver: its `dns` service's, else one built once from
        `[dns.resolver]` (from the real root servers when that names none)."""
        service = self.services.get("dns")
        if service is not None:
            return service.resolver  # type: ignore[no-any-return]
        if self._resolver is None:
            from mailstack.dns.resolver import Resolver

            self._resolver = Resolver.from_settings(self.config.dns.resolver, self.config.data_dir)
        return self._resolver

    @property
    def resolver_configured(self) -> bool:
        """Whether the node was told where to resolve: a `dns` service runs, or
        `[dns.resolver]` names forwarders or root hints. What the node does on
        its own initiative (the MX's SPF/DKIM/DMARC checks) needs this, so it
        never walks down from the Internet's root servers unasked."""
        settings = self.config.dns.resolver
        return "dns" in self.services or bool(settings.forwarders or settings.root_hints)

    async def _start_queue(self) -> None:
        if self.config.queue.enabled:
            from mailstack.queue.runner import QueueRunner

            self.queue = QueueRunner(self)
            await self.queue.start()

    def _start_renewals(self) -> None:
        """ACME (certs/service.py): with `[acme] enabled`, or when a
        certificate obtained by ACME is kept, renewals run in the node."""
        from mailstack.certs.files import CertDir

        kept = CertDir(self.config.data_dir / "tls" / "certs").list()
        if self.config.acme.enabled or any(
            (c.cert_path.parent / "acme.json").exists() for c in kept
        ):
            from mailstack.certs.service import Renewals

            self.renewals = Renewals(self.config, self.store)
            self.renewals.start()

    def port(self, name: str) -> int:
        return int(self.services[name].bound[0][1])

    def addresses(self) -> dict[str, list[tuple[str, int]]]:
        return {name: list(service.bound) for name, service in self.services.items()}

    def _make_private(self) -> None:
        """Close the data directory to group and others (it may come from an
        older mailstack, a copy or a restore), saying what changed."""
        config = self.config
        data_dir = config.data_dir
        if not data_dir.is_dir():
            return
        database = config.database_path
        entries = [
            *([config.path] if config.path is not None else []),
            *database.parent.glob(database.name + "*"),
            config.cert_path.parent,
            config.key_path,
            config.cert_path,
            data_dir / config.dns.zones_dir,
            data_dir / "secondary",
            data_dir / "uploads",
            data_dir / PORTS_FILE,
            data_dir / PID_FILE,
            *([config.log_path] if config.log_path is not None else []),
        ]
        changed = make_private(data_dir, entries)
        if changed:
            names = ",".join(os.path.relpath(path, data_dir) for path in changed)
            log_event(
                log,
                logging.WARNING,
                "data directory made private",
                {"path": data_dir, "changed": len(changed), "names": names},
            )

    def _write_ports(self) -> None:
        """ports.json (what each service really bound) and the pid file, for
        tests, scripts and `mailstack status`; both go at a clean stop."""
        data_dir = self.config.data_dir
        ports = json.dumps({n: b[0][1] for n, b in self.addresses().items() if b})
        for name, text in ((PORTS_FILE, ports), (PID_FILE, f"{os.getpid()}\n")):
            with contextlib.suppress(OSError):
                tmp = data_dir / (name + ".tmp")
                with os.fdopen(create_private(tmp), "w") as f:
                    f.write(text)
                os.replace(tmp, data_dir / name)

    def _remove_ports(self) -> None:
        for name in (PORTS_FILE, PID_FILE):
            with contextlib.suppress(OSError):
                (self.config.data_dir / name).unlink()

    async def stop(self) -> None:
        if self.services:
            self._remove_ports()
        if self.queue is not None:
            await self.queue.stop()
            self.queue = None
        if self.renewals is not None:
            await self.renewals.stop()
            self.renewals = None
        for service in reversed(list(self.services.values())):
            with contextlib.suppress(Exception):
                await service.stop()
        self.services.clear()
        if self.store is not None:
            await self.store.close()
            self.store = None


async def run(
    config: Config, *, trace: bool = False, trace_json: TextIO | None = None, ready: Any = None
) -> None:
    """Run a node until SIGTERM or SIGINT, then shut down cleanly; ``trace``
    prints the S:/C: dialogues, ``trace_json`` gets them as JSON lines."""
    node = Node(config, trace=trace, trace_json=trace_json)
    await node.start()
    if ready is not None:
        ready(node)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        await node.stop()


def install_uvloop() -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

"""A node: one event loop running every configured service over one store.

`Node.start()` opens the store and starts a service for each `[listen]` key
(looked up in SERVICES); `Node.stop()` stops accepting, ends the sessions and
closes the store. `run()` does both around SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from mailstack.common.tls import Tls
from mailstack.common.trace import Tracer
from mailstack.config import Config
from mailstack.errors import ConfigError
from mailstack.mime import PARSE_CODEC, ParsedMessage
from mailstack.store.sqlite import SqliteStore

log = logging.getLogger("mailstack")

# listen name -> "module:Class"; names ending in "s" (submissions, pop3s,
# imaps) are the implicit-TLS variants of the same service class.
SERVICES: dict[str, str] = {
    "smtp": "mailstack.smtp.server:SmtpService",
    "submission": "mailstack.smtp.submission:SubmissionService",
    "submissions": "mailstack.smtp.submission:SubmissionService",
    "pop3": "mailstack.pop3.server:Pop3Service",
    "pop3s": "mailstack.pop3.server:Pop3Service",
    "imap": "mailstack.imap.server:ImapService",
    "imaps": "mailstack.imap.server:ImapService",
    "dns": "mailstack.dns.service:DnsService",
    "http": "mailstack.web.server:HttpService",
}


def service_class(name: str) -> Any:
    module, _, cls = SERVICES[name].partition(":")
    try:
        return getattr(importlib.import_module(module), cls, None)
    except ModuleNotFoundError as exc:
        # Only a package this version does not have; a broken import still raises.
        if exc.name is None or not module.startswith(exc.name):
            raise
        return None


async def open_store(config: Config) -> SqliteStore[ParsedMessage]:
    return await SqliteStore.open(config.database_path, codec=PARSE_CODEC)


class Node:
    def __init__(
        self,
        config: Config,
        *,
        trace: bool = False,
        store_factory: Callable[[Config], Awaitable[SqliteStore]] | None = None,
    ) -> None:
        self.config = config
        self._store_factory = store_factory or open_store
        self.hostname = config.hostname
        self.limits = config.limits
        self.tracer = Tracer(enabled=trace)
        self.tls = Tls(config.cert_path, config.key_path)
        self.store: SqliteStore | None = None  # set by start()
        self.services: dict[str, Any] = {}
        self.skipped: list[str] = []
        self.queue: Any = None  # the queue runner (mailstack.queue.runner), set by start()

    async def start(self) -> None:
        self.store = await self._store_factory(self.config)
        try:
            for name, (host, port) in self.config.listen.items():
                klass = service_class(name)
                if klass is None:
                    self.skipped.append(name)
                    continue
                service = klass(self, name, host, port)
                await service.start()
                self.services[name] = service
        except OSError as exc:
            await self.stop()
            raise ConfigError(f"cannot listen: {exc}") from None
        await self._start_queue()
        self._write_ports()

    async def _start_queue(self) -> None:
        queue_config = getattr(self.config, "queue", None)
        if queue_config is not None and queue_config.enabled:
            from mailstack.queue.runner import QueueRunner

            self.queue = QueueRunner(self)
            await self.queue.start()

    def port(self, name: str) -> int:
        return int(self.services[name].bound[0][1])

    def addresses(self) -> dict[str, list[tuple[str, int]]]:
        return {name: list(service.bound) for name, service in self.services.items()}

    def _write_ports(self) -> None:
        path = self.config.data_dir / "ports.json"
        with contextlib.suppress(OSError):
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps({n: b[0][1] for n, b in self.addresses().items() if b}))
            os.replace(tmp, path)

    async def stop(self) -> None:
        if self.queue is not None:
            await self.queue.stop()
            self.queue = None
        for service in reversed(list(self.services.values())):
            with contextlib.suppress(Exception):
                await service.stop()
        self.services.clear()
        if self.store is not None:
            await self.store.close()
            self.store = None


async def run(config: Config, *, trace: bool = False, ready: Any = None) -> None:
    """Run a node until SIGTERM or SIGINT, then shut down cleanly."""
    node = Node(config, trace=trace)
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

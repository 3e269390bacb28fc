"""ACME wired to a node: its zones for dns-01, its own DNS listener to see
that a record is served, and the renewal loop a serving node runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

import dns.asyncquery
import dns.exception
import dns.message
import dns.rdatatype

from mailstack.certs.acme import Acme, AcmeError

if TYPE_CHECKING:
    from mailstack.config import Config

log = logging.getLogger("mailstack.acme")

CHALLENGE_TTL = 60
SERVED_WAIT = 10.0


def build_acme(config: Config, store: Any) -> Acme:
    """An Acme whose dns-01 records go into the zones of ``store``."""

    async def zones() -> list[str]:
        return [origin for origin, _serial in await store.zone_list()]

    async def add_txt(origin: str, owner: str, value: str) -> None:
        await store.record_add(origin, owner, "TXT", f'"{value}"', CHALLENGE_TTL)

    async def remove_txt(origin: str, owner: str, value: str) -> None:
        await store.record_remove(origin, owner, "TXT", f'"{value}"')

    served = None
    address = config.listen.get("dns")
    if address is not None and address[1]:
        host, port = address
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"

        async def served_by_us(owner: str, value: str) -> None:
            await wait_served(host, port, owner, value)

        served = served_by_us
    return Acme(
        config.acme,
        config.data_dir / "tls",
        zones=zones,
        add_txt=add_txt,
        remove_txt=remove_txt,
        served=served,
    )


async def wait_served(host: str, port: int, owner: str, value: str) -> None:
    """Until the node's DNS answers owner's TXT with value (it reads the
    store about once a second); a few seconds at most, then on regardless."""
    deadline = time.monotonic() + SERVED_WAIT
    query = dns.message.make_query(owner, dns.rdatatype.TXT)
    while time.monotonic() < deadline:
        with contextlib.suppress(dns.exception.DNSException, OSError):
            reply = await dns.asyncquery.udp(query, host, port=port, timeout=1.0)
            for rrset in reply.answer:
                if any(value in rdata.to_text() for rdata in rrset):
                    return
        await asyncio.sleep(0.2)
    log.warning("acme: %s TXT not served after %.0f s; answering anyway", owner, SERVED_WAIT)


def default_names(config: Config, domains: list[str]) -> list[str]:
    """The host name, then mail., autoconfig. and mta-sts. of every domain."""
    names = [config.hostname]
    for domain in domains:
        names += [f"mail.{domain}", f"autoconfig.{domain}", f"mta-sts.{domain}"]
    return list(dict.fromkeys(names))


class Renewals:
    """The node's renewal loop: with ``[acme] enabled``, a certificate for the
    default names when none valid covers them; and every certificate obtained
    by ACME renewed when due. Failures are logged and retried later."""

    def __init__(self, config: Config, store: Any) -> None:
        self.config = config
        self.store = store
        self.acme = build_acme(config, store)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def check(self) -> None:
        if self.config.acme.enabled:
            names = default_names(self.config, await self.store.domain_list())
            try:
                await self.acme.ensure(names)
            except AcmeError as exc:
                log.error("acme: cannot obtain a certificate for %s: %s", ", ".join(names), exc)
        await self.acme.renew_due()

    async def _run(self) -> None:
        while True:
            try:
                await self.check()
            except Exception:  # noqa: BLE001 (the loop must outlive one bad check)
                log.exception("acme: the renewal check failed")
            await asyncio.sleep(self.config.acme.check_interval)

"""``DnsService``: the node's DNS server, built from its `[dns]` configuration.

It serves zone files (`[[dns.zone]]` and `DATA/zones/*.zone`), the zones the
store manages (polled once a second, so CLI changes made by another process
show without a restart, and looked at again before a question no zone
answers is resolved, so a zone just added answers at once), and secondary
zones pulled from primaries, refreshed on their SOA timers and expired
(SERVFAIL) when EXPIRE passes without a refresh (RFC 1034 §4.3.5); the IXFR
history of zones served from files and transfers is kept in the store, so it
survives a restart. It offers the recursive resolver to allowed clients; it
sends NOTIFY to secondaries on every serial change (RFC 1996) and makes
UPDATEs durable before answering (RFC 2136 §3.5).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dns.asyncquery
import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import dns.tsig
import dns.xfr
import dns.zone

from mailstack.common.netguard import OutsideLoopback, check_destination
from mailstack.dns.catalog import JOURNAL_LENGTH, Acl, Catalog
from mailstack.dns.config import DnsConfig, SecondaryZone
from mailstack.dns.managed import to_diff, to_entry, to_records, to_zone
from mailstack.dns.proto import QueryHandler
from mailstack.dns.resolver import Resolver
from mailstack.dns.server import DnsServer, describe, message_text
from mailstack.dns.transfer import notify_message
from mailstack.dns.zone import Zone, ZoneDiff, ZoneError
from mailstack.errors import ConfigError, DnsError, NotFound, StoreError
from mailstack.store.zonefiles import save_zone_file

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
NOTIFY_TRIES = 3  # RFC 1996 §3.6: retransmit a few times, then give up
SECONDARY_RETRY = 60.0  # seconds between tries of a secondary zone never yet pulled


class DnsService:
    """Authoritative and recursive DNS over UDP and TCP on one address."""

    def __init__(self, node: Any, name: str, host: str, port: int) -> None:
        self.node = node
        self.name = name
        self.host = host
        self.port = port
        self.config: DnsConfig = node.config.dns
        self.data_dir = Path(node.config.data_dir)
        self.bound: list[tuple[str, int]] = []
        self.catalog = Catalog(
            transfer_acl=_acl(self.config.allow_transfer),
            update_acl=Acl.of(keys=self.config.allow_update),
        )
        self.resolver = self._make_resolver()
        networks = [ipaddress.ip_network(n, strict=False) for n in self.config.recursion]
        self._recursion_networks = networks
        self._recursion_verdicts: dict[str, bool] = {}
        self.handler = QueryHandler(
            self.catalog.authority,
            may_recurse=self._may_recurse,
            keyring=self.config.keyring(),
            reply_cache_bytes=node.limits.dns_reply_cache,
            nsid=self.config.nsid_octets(),
            identity=self.config.identity,
            version=self.config.version,
            transfer_acl=self.catalog.transfer_acl,
            recurse_referrals=self.config.resolver.chain,
        )
        self.server = DnsServer(
            self.catalog,
            self.handler,
            limits=node.limits,
            recursive=self._chain if self.config.resolver.chain else self.resolver.resolve_message,
            on_notify=self._on_notify,
        )
        if node.tracer.enabled:
            self.server.on_exchange = self._trace
        if self.config.managed_zones:
            self.server.on_miss = self._managed_changed
        self._reload: asyncio.Future[bool] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # Wall-clock time for the secondary zones' SOA timers.
        self.clock: Callable[[], float] = time.time
        self._managed_serials: dict[str, int] = {}
        self._refresh_events: dict[dns.name.Name, asyncio.Event] = {}

    # -- life cycle -------------------------------------------------------------

    async def start(self) -> None:
        await self._load_zone_files()
        if self.config.managed_zones and self.node.store is not None:
            await self._poll_managed()
            self._spawn(self._poll_loop())
        self.catalog.listeners.append(self._zone_changed)
        for secondary in self.config.secondaries:
            event = asyncio.Event()
            self._refresh_events[dns.name.from_text(secondary.origin)] = event
            self._spawn(self._secondary_loop(secondary, event))
        await self.server.start(self.host, self.port)
        self.bound = self.server.bound

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.server.stop()

    def _trace(
        self, client: str, transport: str, query: bytes, replies: list[bytes], received: float
    ) -> None:
        """``serve --trace``: each exchange as the client's question (at the
        time it came) and our reply."""
        session = self.node.tracer.session(f"dns/{transport}", client, at=received)
        session.client(describe(query), detail=message_text(query), at=received)
        for reply in replies:
            session.server(describe(reply), detail=message_text(reply))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- recursion ----------------------------------------------------------------

    def _make_resolver(self) -> Resolver:
        return Resolver.from_settings(self.config.resolver, self.data_dir)

    async def _chain(self, query: dns.message.Message) -> dns.message.Message:
        """`[dns.resolver] chain`: a recursive query passed on one level down
        the hierarchy, to the servers our own zones refer it to (their glue,
        else their addresses resolved), else to the root hints' servers."""
        question = query.question[0]
        lookup = self.catalog.authority.lookup(question.name, question.rdtype)
        servers: list[str] = []
        if lookup is not None and lookup.referral:
            glue = {
                rrset.name: [rdata.address for rdata in rrset]
                for rrset in lookup.additional
                if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA)
            }
            for rrset in lookup.authority:
                if rrset.rdtype != dns.rdatatype.NS:
                    continue
                for rdata in rrset:
                    try:
                        servers += glue.get(rdata.target) or await self.resolver.addresses(
                            rdata.target
                        )
                    except DnsError:
                        continue
        else:
            servers = [address for _, address in self.resolver.root_hints]
        # Never back to ourselves: a chain must go down, not round.
        return await self.resolver.pass_on(query, [a for a in servers if a != self.host])

    def _may_recurse(self, client: str) -> bool:
        verdict = self._recursion_verdicts.get(client)
        if verdict is None:
            try:
                address = ipaddress.ip_address(client)
            except ValueError:
                verdict = False
            else:
                verdict = any(address in network for network in self._recursion_networks)
            if len(self._recursion_verdicts) > 10_000:
                self._recursion_verdicts.clear()
            self._recursion_verdicts[client] = verdict
        return verdict

    # -- zone files -------------------------------------------------------------------

    async def _load_zone_files(self) -> None:
        """Configured zone files must load; a bad file dropped in zones_dir is skipped."""
        entries = [(self._path(z.file), z.origin, True) for z in self.config.zones]
        zones_dir = self._path(self.config.zones_dir)
        if zones_dir.is_dir():
            entries += [(p, None, False) for p in sorted(zones_dir.glob("*.zone"))]
        for path, origin, required in entries:
            try:
                zone = Zone.from_file(path, origin)
            except (OSError, ZoneError) as exc:
                text = exc.strerror if isinstance(exc, OSError) else str(exc)
                if required:
                    raise ConfigError(f"dns zone file {path}: {text}") from None
                log.warning("zone file %s not served: %s", path, text)
                continue
            self.catalog.publish(zone)
            self.catalog.persisters[zone.origin] = self._file_persister(path)
            await self._restore_history(zone)

    async def _restore_history(self, zone: Zone) -> None:
        """The IXFR journal of a zone kept outside the store, as it was before a
        restart, when it leads to the serial now served."""
        if self.node.store is None:
            return
        history = await self.node.store.zone_history(zone.origin.to_text())
        diffs = deque((to_diff(entry, zone) for entry in history), maxlen=JOURNAL_LENGTH)
        if diffs and diffs[-1].new_serial == zone.serial:
            self.catalog.journals[zone.origin] = diffs

    async def _keep_history(self, change: ZoneDiff | None, zone: Zone) -> None:
        if change is not None and self.node.store is not None:
            await self.node.store.zone_history_add(zone.origin.to_text(), to_entry(change))

    def _file_persister(self, path: Path) -> Any:
        async def persist(zone: Zone, change: ZoneDiff) -> None:
            await save_zone_file(path, zone)
            await self._keep_history(change, zone)

        return persist

    def _path(self, name: str) -> Path:
        path = Path(name).expanduser()
        return path if path.is_absolute() else self.data_dir / path

    # -- managed zones ------------------------------------------------------------------

    async def _poll_loop(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            try:
                await self._poll_managed()
            except Exception:
                log.exception("reading managed zones failed")

    async def _managed_changed(self) -> bool:
        """Load the store's zones now; whether any changed. Questions that
        miss at the same time share one look."""
        if self.node.store is None:
            return False
        if self._reload is None:
            self._reload = asyncio.ensure_future(self._poll_managed())
            self._reload.add_done_callback(self._reloaded)
        try:
            return await asyncio.shield(self._reload)
        except Exception:
            log.exception("reading managed zones failed")
            return False

    def _reloaded(self, reload: asyncio.Future[bool]) -> None:
        self._reload = None

    async def _poll_managed(self) -> bool:
        """Publish what changed in the store's zones; whether anything did."""
        store = self.node.store
        serials = await store.zone_serials()
        changed = False
        for origin in set(self._managed_serials) - set(serials):
            self.catalog.remove(dns.name.from_text(origin))
            del self._managed_serials[origin]
            changed = True
        for origin, serial in serials.items():
            if self._managed_serials.get(origin) == serial:
                continue
            try:
                managed = await store.zone_get(origin)
                zone = to_zone(managed)
            except (NotFound, ZoneError) as exc:
                log.warning("managed zone %s not served: %s", origin, exc)
                continue
            first = origin not in self._managed_serials
            self._managed_serials[origin] = managed.serial
            self.catalog.publish(zone)
            changed = True
            self.catalog.persisters[zone.origin] = self._store_persister(origin)
            if first:
                journal = await store.zone_journal(origin)
                diffs = deque((to_diff(entry, zone) for entry in journal), maxlen=JOURNAL_LENGTH)
                if diffs and diffs[-1].new_serial == zone.serial:
                    self.catalog.journals[zone.origin] = diffs
        return changed

    def _store_persister(self, origin: str) -> Any:
        async def persist(zone: Zone, change: ZoneDiff) -> None:
            serial = await self.node.store.zone_apply(
                origin, to_records(change.deleted), to_records(change.added), zone.serial
            )
            self._managed_serials[origin] = serial

        return persist

    # -- NOTIFY out (RFC 1996) ------------------------------------------------------

    def _zone_changed(self, zone: Zone) -> None:
        if self.config.notify:
            self._spawn(self._notify_secondaries(zone))

    async def _notify_secondaries(self, zone: Zone) -> None:
        """NOTIFY every secondary of the change. A managed zone's change is
        seen by every node sharing the store: the one that claims the serial
        in the store sends it, the others stay quiet (once per change, not
        once per node). When the store cannot say, it is sent anyway: a
        NOTIFY too many only makes a secondary ask for the SOA again."""
        origin = zone.origin.to_text().lower()
        if origin in self._managed_serials and self.node.store is not None:
            try:
                if not await self.node.store.zone_notify_claim(origin, zone.serial):
                    return
            except StoreError as exc:
                log.warning("NOTIFY for %s sent unclaimed: %s", origin, exc)
        await asyncio.gather(*(self._send_notify(zone, target) for target in self.config.notify))

    async def _send_notify(self, zone: Zone, target: tuple[str, int]) -> None:
        message = notify_message(zone)
        for _ in range(NOTIFY_TRIES):
            try:
                check_destination(target[0])
                reply = await dns.asyncquery.udp(
                    message, target[0], port=target[1], timeout=2.0, ignore_unexpected=True
                )
            except OutsideLoopback as exc:
                log.warning("NOTIFY for %s not sent: %s", zone.origin, exc)
                return
            except (OSError, dns.exception.DNSException):
                continue
            if reply.rcode() in (dns.rcode.NOERROR, dns.rcode.NOTAUTH, dns.rcode.REFUSED):
                return

    # -- secondary zones ----------------------------------------------------------

    async def _on_notify(self, origin: dns.name.Name, client: str) -> bool:
        event = self._refresh_events.get(origin)
        if event is None:
            return False
        secondary = next(
            s for s in self.config.secondaries if dns.name.from_text(s.origin) == origin
        )
        if client not in {host for host, _ in secondary.primaries}:
            # RFC 1996 §3.10: NOTIFY is only heeded from the zone's masters.
            return False
        event.set()
        return True

    async def _secondary_loop(self, secondary: SecondaryZone, event: asyncio.Event) -> None:
        """Refresh a secondary zone on its SOA timers (RFC 1034 §4.3.5, RFC 1996)."""
        origin = dns.name.from_text(secondary.origin)
        authority = self.catalog.authority
        keyring = self.config.keyring()
        key = keyring.get(dns.name.from_text(secondary.key)) if secondary.key else None
        saved = self.data_dir / "secondary" / f"{origin.to_text()}zone"
        copy = dns.zone.Zone(origin, relativize=False)
        timer = RefreshTimer()
        if saved.exists():
            # Serve the last copy at once; the refresh below brings it up to
            # date. The file's time is that of its last refresh, so a copy
            # older than EXPIRE is not served as if fresh.
            with contextlib.suppress(ZoneError, OSError, dns.exception.DNSException):
                zone = Zone.from_file(saved, origin)
                self.catalog.publish(zone)
                await self._restore_history(zone)
                copy = dns.zone.from_text(zone.to_text(), origin, relativize=False)
                timer.refreshed = saved.stat().st_mtime
        while True:
            refreshed = False
            for host, port in secondary.primaries:
                try:
                    pulled = await pull_zone(origin, host, port, key, copy)
                except (OSError, dns.exception.DNSException, ZoneError, OutsideLoopback) as exc:
                    log.warning("zone %s from %s:%d failed: %s", origin, host, port, exc)
                    continue
                current = pulled or authority.zones.get(origin)
                if current is not None:
                    if pulled is not None:
                        await self._keep_history(self.catalog.publish(pulled), pulled)
                    authority.set_expired(origin, False)
                    # Written at every refresh: its time is the refresh's.
                    await save_zone_file(saved, current)
                timer.refreshed = self.clock()
                refreshed = True
                break
            served = authority.zones.get(origin)
            now = self.clock()
            if served is not None and timer.expired(served, now):
                if origin not in authority.expired:
                    log.warning("zone %s expired: no refresh for SOA EXPIRE seconds", origin)
                authority.set_expired(origin, True)
            event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timer.wait(served, now, refreshed))


@dataclass(slots=True)
class RefreshTimer:
    """A secondary zone's SOA timers (RFC 1034 §4.3.5), given the time.

    After a successful check the next one is REFRESH seconds on; after a
    failed one, RETRY seconds on (RFC 1996 §2 keeps these when NOTIFY is
    used). With no refresh for EXPIRE seconds the copy is expired. Times are
    wall-clock seconds, so the copy saved on disk carries its age across a
    restart.
    """

    refreshed: float | None = None  # the last successful check

    def expired(self, zone: Zone, now: float) -> bool:
        return self.refreshed is not None and now - self.refreshed >= zone.soa[0].expire

    def wait(self, zone: Zone | None, now: float, refreshed: bool) -> float:
        """Seconds until the next check: REFRESH, or RETRY (sooner if the zone
        would expire first, so that it stops being served on time)."""
        if zone is None:
            return SECONDARY_RETRY  # no copy yet: no timers to go by
        soa = zone.soa[0]
        if refreshed:
            return float(soa.refresh)
        wait = float(soa.retry)
        if self.refreshed is not None:
            remaining = self.refreshed + soa.expire - now
            if remaining > 0:
                wait = min(wait, remaining)
        return wait


async def pull_zone(
    origin: dns.name.Name,
    host: str,
    port: int,
    key: dns.tsig.Key | None,
    copy: dns.zone.Zone,
) -> Zone | None:
    """The primary's zone if its serial moved (RFC 1034 §4.3.5), else None.

    ``copy`` holds what we have; with a serial it asks IXFR (RFC 1995), which
    the primary may answer with differences or the whole zone.
    """
    check_destination(host)
    query = dns.message.make_query(origin, dns.rdatatype.SOA)
    if key is not None:
        query.use_tsig(key)
    reply = await dns.asyncquery.tcp(query, host, port=port, timeout=5.0)
    soas = [r for r in reply.answer if r.rdtype == dns.rdatatype.SOA and r.name == origin]
    if not soas:
        raise ZoneError(f"{host} does not serve {origin}")
    have = copy.get_rdataset(origin, dns.rdatatype.SOA)
    if have is not None and int(soas[0][0].serial) == int(have[0].serial):
        return None
    xfr, _ = dns.xfr.make_query(copy, serial=0 if have is not None else None, keyring=key)
    await dns.asyncquery.inbound_xfr(host, copy, xfr, port=port, timeout=10.0)
    rrsets = []
    for name, node in copy.nodes.items():
        for rdataset in node.rdatasets:
            rrset = dns.rrset.RRset(name, rdataset.rdclass, rdataset.rdtype)
            rrset.update(rdataset)
            rrsets.append(rrset)
    return Zone.from_rrsets(origin, rrsets)


def _acl(entries: tuple[str, ...]) -> Acl:
    networks = []
    keys = []
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            keys.append(entry)
        else:
            networks.append(entry)
    return Acl.of(networks, keys)

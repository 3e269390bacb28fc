"""The resolver's caches: RRsets by TTL, negative answers (RFC 2308), resolution
failures (RFC 9520), and the server's replies by normalised question.

Only data that passed the bailiwick check reaches ``Cache``. Each RRset keeps
the trust of where it came from (RFC 2181 §5.4.1): an authoritative answer is
never replaced by glue or by a referral's NS set while it is still fresh.
Every cache here is bounded in octets (an estimate of what an entry holds,
its Python objects included), not in entries, so that one large answer costs
what it weighs; the least recently used entries go first. The clock is an
argument everywhere, so tests drive time.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Generic, Protocol, TypeVar

import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

NS = dns.rdatatype.NS
# RFC 8767 would allow serving stale data; we never do. A TTL above this is
# capped (RFC 2181 §8 allows a configured maximum; one week like BIND).
MAX_TTL = 7 * 86400
# RFC 2308 §5: negative answers are cached no longer than a few hours.
MAX_NEGATIVE_TTL = 3 * 3600
# RFC 9520 §3.2: a resolution failure is cached for at least one second and,
# consistent with RFC 2308, for no longer than five minutes.
MIN_FAILURE_TTL = 1.0
MAX_FAILURE_TTL = 300.0
# What an entry costs beyond its wire octets: the dict slot, the key tuple and
# the entry object (measured with tracemalloc, rounded up), and per record the
# rdata object.
ENTRY_OVERHEAD = 240
RDATA_OVERHEAD = 120


_K = TypeVar("_K", bound=Hashable)
_E = TypeVar("_E", bound="_Sized")
_V = TypeVar("_V")


class Trust(IntEnum):
    """RFC 2181 §5.4.1 ranking, lowest first."""

    GLUE = 1
    REFERRAL = 2
    ANSWER = 3


class _Sized(Protocol):
    size: int


@dataclass(slots=True)
class _Entry:
    rrset: dns.rrset.RRset
    expires: float
    trust: Trust
    size: int


@dataclass(slots=True, frozen=True)
class Negative:
    """A cached NXDOMAIN or NODATA, with the SOA that proves it (RFC 2308 §5)."""

    rcode: int
    soa: dns.rrset.RRset | None


@dataclass(slots=True)
class _NegativeEntry:
    negative: Negative
    expires: float
    size: int


@dataclass(slots=True)
class _Failure:
    """A failed question or an unresponsive server, held down until ``expires``;
    ``duration`` doubles while the failures go on (RFC 9520 §3.2 backoff)."""

    expires: float
    duration: float
    size: int = ENTRY_OVERHEAD


def rrset_size(rrset: dns.rrset.RRset) -> int:
    """Octets an RRset holds in the cache (an estimate, on the high side)."""
    owner = sum(len(label) + 1 for label in rrset.name.labels)
    return ENTRY_OVERHEAD + owner + sum(RDATA_OVERHEAD + len(r.to_wire()) for r in rrset)


class Cache:
    """Positive and negative answers and failures, bounded in octets and in
    entries, with TTLs that count down."""

    def __init__(
        self,
        max_bytes: int = 64 * 1024 * 1024,
        *,
        max_entries: int = 100_000,
        failure_ttl: float = 5.0,
        failure_max_ttl: float = MAX_FAILURE_TTL,
    ) -> None:
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.failure_ttl = min(max(failure_ttl, MIN_FAILURE_TTL), MAX_FAILURE_TTL)
        self.failure_max_ttl = min(max(failure_max_ttl, self.failure_ttl), MAX_FAILURE_TTL)
        self.size = 0
        self._rrsets: OrderedDict[tuple[dns.name.Name, int], _Entry] = OrderedDict()
        self._negative: OrderedDict[tuple[dns.name.Name, int], _NegativeEntry] = OrderedDict()
        self._failures: OrderedDict[tuple[dns.name.Name, int], _Failure] = OrderedDict()
        self._servers: OrderedDict[str, _Failure] = OrderedDict()

    def __len__(self) -> int:
        return len(self._rrsets) + len(self._negative) + len(self._failures) + len(self._servers)

    # -- positive -----------------------------------------------------------

    def put(self, rrset: dns.rrset.RRset, now: float, trust: Trust = Trust.ANSWER) -> None:
        key = (rrset.name, rrset.rdtype)
        current = self._rrsets.get(key)
        if current is not None and current.expires > now and current.trust > trust:
            return
        ttl = min(rrset.ttl, MAX_TTL)
        self._store(self._rrsets, key, _Entry(rrset, now + ttl, trust, rrset_size(rrset)))
        if trust == Trust.ANSWER:
            # Fresh data for the name supersedes a cached denial or failure of it.
            self._drop(self._negative, key)
            self._drop(self._negative, (rrset.name, dns.rdatatype.ANY))
            self._drop(self._failures, key)
        self._evict()

    def get(
        self, name: dns.name.Name, rdtype: int, now: float, *, min_trust: Trust = Trust.GLUE
    ) -> dns.rrset.RRset | None:
        """The RRset with its remaining TTL, or None if absent or expired."""
        key = (name, rdtype)
        entry = self._rrsets.get(key)
        if entry is None or entry.trust < min_trust:
            return None
        remaining = int(entry.expires - now)
        if remaining <= 0:
            self._drop(self._rrsets, key)
            return None
        self._rrsets.move_to_end(key)
        out = dns.rrset.RRset(entry.rrset.name, entry.rrset.rdclass, entry.rrset.rdtype)
        out.update(entry.rrset)
        out.ttl = remaining
        return out

    def closest_delegation(
        self, name: dns.name.Name, now: float
    ) -> tuple[dns.name.Name, dns.rrset.RRset] | None:
        """The deepest zone at or above ``name`` whose NS set is cached."""
        while True:
            ns = self.get(name, NS, now)
            if ns is not None:
                return name, ns
            if name == dns.name.root:
                return None
            name = name.parent()

    # -- negative -----------------------------------------------------------

    def put_negative(
        self,
        name: dns.name.Name,
        rdtype: int,
        rcode: int,
        soa: dns.rrset.RRset | None,
        now: float,
    ) -> None:
        """RFC 2308 §5: cache for min(SOA TTL, SOA MINIMUM); NXDOMAIN covers every type."""
        if soa is None:
            return  # RFC 2308 §5: without an SOA, a negative answer is not cached
        ttl = min(soa.ttl, soa[0].minimum, MAX_NEGATIVE_TTL)
        if ttl <= 0:
            return
        key = (name, dns.rdatatype.ANY if rcode == dns.rcode.NXDOMAIN else rdtype)
        entry = _NegativeEntry(Negative(rcode, soa), now + ttl, rrset_size(soa))
        self._store(self._negative, key, entry)
        self._drop(self._failures, (name, rdtype))
        self._evict()

    def get_negative(self, name: dns.name.Name, rdtype: int, now: float) -> Negative | None:
        for key in ((name, dns.rdatatype.ANY), (name, rdtype)):
            entry = self._negative.get(key)
            if entry is None:
                continue
            remaining = int(entry.expires - now)
            if remaining <= 0:
                self._drop(self._negative, key)
                continue
            soa = None
            if entry.negative.soa is not None:
                soa = dns.rrset.RRset(
                    entry.negative.soa.name, entry.negative.soa.rdclass, entry.negative.soa.rdtype
                )
                soa.update(entry.negative.soa)
                soa.ttl = remaining
            return Negative(entry.negative.rcode, soa)
        return None

    # -- failures (RFC 9520) --------------------------------------------------

    def put_failure(self, name: dns.name.Name, rdtype: int, now: float) -> None:
        """RFC 9520 §3.2: the question failed; answer SERVFAIL from here for a while,
        the while doubling for as long as it keeps failing."""
        self._hold_down(self._failures, (name, rdtype), now)

    def failed(self, name: dns.name.Name, rdtype: int, now: float) -> bool:
        return self._held_down(self._failures, (name, rdtype), now)

    def put_server_failure(self, address: str, now: float) -> None:
        """The server timed out or its host refused (ICMP): skip it for a while."""
        self._hold_down(self._servers, address, now)

    def server_answered(self, address: str) -> None:
        self._drop(self._servers, address)

    def server_down(self, address: str, now: float) -> bool:
        return self._held_down(self._servers, address, now)

    def _hold_down(self, table: OrderedDict[_K, _Failure], key: _K, now: float) -> None:
        previous = table.get(key)
        duration = self.failure_ttl
        if previous is not None:
            if now < previous.expires:
                return  # already held down (two askers failed at once)
            if now < previous.expires + previous.duration:
                # Failing again soon after the last hold-down ended: back off.
                duration = min(previous.duration * 2, self.failure_max_ttl)
        self._store(table, key, _Failure(now + duration, duration))
        self._evict()

    def _held_down(self, table: OrderedDict[_K, _Failure], key: _K, now: float) -> bool:
        entry = table.get(key)
        # An expired entry stays (it remembers the backoff) until evicted.
        return entry is not None and entry.expires > now

    # -- the octet bound --------------------------------------------------------

    def _store(self, table: OrderedDict[_K, _E], key: _K, entry: _E) -> None:
        self._drop(table, key)
        table[key] = entry
        self.size += entry.size

    def _drop(self, table: OrderedDict[_K, _E], key: _K) -> None:
        entry = table.pop(key, None)
        if entry is not None:
            self.size -= entry.size

    def _evict(self) -> None:
        """Least recently used first; denials and failures first once they hold
        more than a quarter of either bound, so a flood of them cannot push the
        answers out."""
        while self.size > self.max_bytes or len(self) > self.max_entries:
            denials: list[OrderedDict[Any, Any]] = [
                t for t in (self._failures, self._servers, self._negative) if t
            ]
            count = sum(len(t) for t in denials)
            crowding = count * ENTRY_OVERHEAD * 4 > self.max_bytes or count * 4 > self.max_entries
            table: OrderedDict[Any, Any]
            if denials and (not self._rrsets or crowding):
                table = max(denials, key=len)
            elif self._rrsets:
                table = self._rrsets
            else:
                return
            _, entry = table.popitem(last=False)
            self.size -= entry.size


class ReplyCache(Generic[_V]):
    """Whole replies by key, bounded in octets, least recently used evicted first.

    The DNS server keeps its precomputed replies here, keyed on the normalised
    question (``proto.question_key``) so that the case of a name or the EDNS
    options of a query do not make new entries.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._entries: OrderedDict[bytes, tuple[_V, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes) -> _V | None:
        found = self._entries.get(key)
        if found is None:
            return None
        self._entries.move_to_end(key)
        return found[0]

    def put(self, key: bytes, value: _V, size: int) -> None:
        """Keep ``value`` (``size`` octets of payload); too big for the bound: not kept."""
        cost = ENTRY_OVERHEAD + len(key) + size
        if cost > self.max_bytes:
            return
        self.discard(key)
        self._entries[key] = (value, cost)
        self.size += cost
        while self.size > self.max_bytes:
            _, (_, evicted) = self._entries.popitem(last=False)
            self.size -= evicted

    def discard(self, key: bytes) -> None:
        found = self._entries.pop(key, None)
        if found is not None:
            self.size -= found[1]

    def clear(self) -> None:
        self._entries.clear()
        self.size = 0

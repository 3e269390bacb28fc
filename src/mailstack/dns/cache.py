"""The resolver's cache: RRsets by TTL, negative answers (RFC 2308), referrals.

Only data that passed the bailiwick check reaches the cache. Each RRset keeps
the trust of where it came from (RFC 2181 §5.4.1): an authoritative answer is
never replaced by glue or by a referral's NS set while it is still fresh.
Entries are evicted least recently used first once ``max_entries`` is reached.
The clock is an argument everywhere, so tests drive time.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from enum import IntEnum

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


class Trust(IntEnum):
    """RFC 2181 §5.4.1 ranking, lowest first."""

    GLUE = 1
    REFERRAL = 2
    ANSWER = 3


@dataclass(slots=True)
class _Entry:
    rrset: dns.rrset.RRset
    expires: float
    trust: Trust


@dataclass(slots=True, frozen=True)
class Negative:
    """A cached NXDOMAIN or NODATA, with the SOA that proves it (RFC 2308 §5)."""

    rcode: int
    soa: dns.rrset.RRset | None


@dataclass(slots=True)
class _NegativeEntry:
    negative: Negative
    expires: float


class Cache:
    """Positive and negative answers, bounded, with TTLs that count down."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self.max_entries = max_entries
        self._rrsets: OrderedDict[tuple[dns.name.Name, int], _Entry] = OrderedDict()
        self._negative: OrderedDict[tuple[dns.name.Name, int], _NegativeEntry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._rrsets) + len(self._negative)

    # -- positive -----------------------------------------------------------

    def put(self, rrset: dns.rrset.RRset, now: float, trust: Trust = Trust.ANSWER) -> None:
        key = (rrset.name, rrset.rdtype)
        current = self._rrsets.get(key)
        if current is not None and current.expires > now and current.trust > trust:
            return
        ttl = min(rrset.ttl, MAX_TTL)
        self._rrsets[key] = _Entry(rrset, now + ttl, trust)
        self._rrsets.move_to_end(key)
        if trust == Trust.ANSWER:
            # Fresh data for the name supersedes a cached denial of it.
            self._negative.pop(key, None)
            self._negative.pop((rrset.name, dns.rdatatype.ANY), None)
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
            del self._rrsets[key]
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
        self._negative[key] = _NegativeEntry(Negative(rcode, soa), now + ttl)
        self._negative.move_to_end(key)
        self._evict()

    def get_negative(self, name: dns.name.Name, rdtype: int, now: float) -> Negative | None:
        for key in ((name, dns.rdatatype.ANY), (name, rdtype)):
            entry = self._negative.get(key)
            if entry is None:
                continue
            remaining = int(entry.expires - now)
            if remaining <= 0:
                del self._negative[key]
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

    def _evict(self) -> None:
        while len(self._rrsets) + len(self._negative) > self.max_entries:
            if self._negative and (not self._rrsets or len(self._negative) * 4 > self.max_entries):
                self._negative.popitem(last=False)
            else:
                self._rrsets.popitem(last=False)

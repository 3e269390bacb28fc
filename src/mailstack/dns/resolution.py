"""Iterative resolution (RFC 1034 §5.3.3) as a state machine without I/O.

A ``Resolution`` says what to do next, ``Ask(server, question)`` or
``Done(result)``, and is told what came back (``on_response``) or that the
server failed (``on_failure``). It follows referrals from the root (or from
the deepest delegation in the cache), uses glue, resolves NS names that came
without glue as sub-resolutions, chases CNAMEs across zones, minimises the
QNAME it reveals (RFC 9156), keeps only in-bailiwick data, and stops at loop
and work limits. In forwarding mode it asks its upstreams with RD=1 instead.

Failures are cached as RFC 9520 asks: a question that ends in SERVFAIL is
answered SERVFAIL from the cache for a while, and a server that timed out or
whose host refused (ICMP) is skipped for a while, both backing off while the
failures go on, so a dead zone costs one timeout, not one per question.

Every step is recorded in ``trace`` so ``mailstack dns query --trace`` can draw
the walk the way the lectures do.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from mailstack.dns.cache import Cache, Trust

A = dns.rdatatype.A
AAAA = dns.rdatatype.AAAA
NS = dns.rdatatype.NS
SOA = dns.rdatatype.SOA
CNAME = dns.rdatatype.CNAME

MAX_CNAME_CHAIN = 8  # RFC 1034 §3.6.2 warns of CNAME loops
MAX_QUERIES = 60  # across sub-resolutions: a budget against amplification
MAX_DEPTH = 4  # nested NS-name resolutions (glueless delegations)
MAX_MINIMISE_STEPS = 10  # RFC 9156 §2.3 MAX_MINIMISE_COUNT

Server = tuple[dns.name.Name, str]  # (NS name, address)

# RFC 6895 §3.1: OPT, TSIG and TKEY are meta-TYPEs, data about one message
# (RFC 6891 §6.1.1: OPT "MUST NOT be ... forwarded"); 128-248 is the range
# kept for more of them and for QTYPEs. Asking for one is a malformed query.
# MAILA and MAILB (RFC 1035 §3.2.3) are QTYPEs nobody implements.
_MALFORMED = frozenset({dns.rdatatype.OPT, dns.rdatatype.TSIG, dns.rdatatype.TKEY})
_NOT_IMPLEMENTED = frozenset({dns.rdatatype.MAILA, dns.rdatatype.MAILB})


def not_resolvable(rdtype: int) -> int | None:
    """The RCODE for a QTYPE a resolver must never send upstream, else None:
    FORMERR for the meta-TYPEs, NOTIMP for MAILA and MAILB (as Unbound does)."""
    if rdtype in _MALFORMED or 128 <= rdtype <= 248:
        return dns.rcode.FORMERR
    if rdtype in _NOT_IMPLEMENTED:
        return dns.rcode.NOTIMP
    return None


@dataclass(slots=True, frozen=True)
class Ask:
    """Send ``qname``/``qtype`` to ``address`` (the server ``server_name``)."""

    address: str
    server_name: dns.name.Name
    qname: dns.name.Name
    qtype: int
    zone: dns.name.Name
    recursion_desired: bool = False

    def message(self) -> dns.message.Message:
        query = dns.message.make_query(
            self.qname, dns.rdatatype.RdataType(self.qtype), use_edns=0, payload=1232
        )
        if not self.recursion_desired:
            query.flags &= ~dns.flags.RD
        return query


@dataclass(slots=True)
class Result:
    """The outcome: an RCODE, the answer chain, and the SOA of a negative answer."""

    rcode: int
    answer: list[dns.rrset.RRset] = field(default_factory=list)
    authority: list[dns.rrset.RRset] = field(default_factory=list)


@dataclass(slots=True, frozen=True)
class Done:
    result: Result


@dataclass(slots=True)
class Step:
    """One line of the trace: what was asked of whom, and what came of it."""

    depth: int
    server_name: dns.name.Name | None
    address: str | None
    qname: dns.name.Name
    qtype: int
    outcome: str
    from_cache: bool = False
    elapsed: float | None = None  # seconds, filled in by the driver


class Budget:
    """Queries left for one resolution and all its sub-resolutions."""

    def __init__(self, queries: int = MAX_QUERIES) -> None:
        self.queries = queries


class Resolution:
    """Resolve one question, step by step."""

    def __init__(
        self,
        qname: dns.name.Name,
        qtype: int,
        cache: Cache,
        root_hints: list[Server],
        now: float,
        *,
        forwarders: list[str] | None = None,
        qname_minimisation: bool = True,
        rng: random.Random | None = None,
        depth: int = 0,
        budget: Budget | None = None,
        trace: list[Step] | None = None,
    ) -> None:
        self.qname = qname
        self.qtype = qtype
        self.cache = cache
        self.root_hints = root_hints
        self.now = now
        self.forwarders = forwarders or []
        self.minimise = qname_minimisation
        self.rng = rng or random.SystemRandom()
        self.depth = depth
        self.budget = budget or Budget()
        self.trace: list[Step] = trace if trace is not None else []
        self.chain: list[dns.rrset.RRset] = []
        self.target = qname
        self.done: Done | None = None
        self._child: Resolution | None = None
        self._child_for: dns.name.Name | None = None
        self._zone = dns.name.root
        self._servers: list[Server] = []
        self._unresolved: list[dns.name.Name] = []
        self._tried: set[str] = set()
        self._minimised_labels = 0
        self._minimise_steps = 0
        self._start_target()

    # -- the driver's interface ----------------------------------------------

    def next(self, now: float | None = None) -> Ask | Done:
        if now is not None:
            self.now = now
        while self.done is None:
            if self._child is not None:
                step = self._child.next(self.now)
                if isinstance(step, Ask):
                    return step
                self._child_done(step.result)
                continue
            ask = self._pick_server()
            if ask is not None:
                return ask
        return self.done

    def on_response(self, ask: Ask, response: dns.message.Message, now: float) -> None:
        self.now = now
        if self._child is not None:
            self._child.on_response(ask, response, now)
            return
        self.cache.server_answered(ask.address)
        if not _question_matches(ask, response):
            # RFC 5452 §9.1: a reply to another question is not an answer.
            self._fail(ask, "reply does not match the question")
            return
        if self.forwarders:
            self._forwarded(ask, response)
        else:
            self._iterated(ask, response)

    def on_failure(self, ask: Ask, reason: str, now: float) -> None:
        """The server did not answer (a timeout, an ICMP error): RFC 9520 §3.2."""
        self.now = now
        if self._child is not None:
            self._child.on_failure(ask, reason, now)
            return
        self.cache.put_server_failure(ask.address, now)
        self._fail(ask, reason)

    # -- starting points ------------------------------------------------------

    def _start_target(self) -> None:
        """Begin (or restart, after a CNAME) from the cache or the deepest delegation."""
        if self._from_cache():
            return
        self._tried.clear()
        self._minimised_labels = 0
        self._minimise_steps = 0
        if self.forwarders:
            self._zone = dns.name.root
            self._servers = [(dns.name.root, address) for address in self.forwarders]
            self._unresolved = []
            return
        delegation = self.cache.closest_delegation(self.target, self.now)
        if delegation is not None:
            zone, ns = delegation
            self._enter_zone(zone, ns, from_cache=True)
            if self._servers or self._unresolved:
                return
        self._zone = dns.name.root
        self._servers = list(self.root_hints)
        self._unresolved = []
        self.rng.shuffle(self._servers)

    def _from_cache(self) -> bool:
        """Answer from the cache when it can; True when the resolution is done."""
        if self.cache.failed(self.target, self.qtype, self.now):
            self._record(None, None, self.target, self.qtype, "failed a moment ago", True)
            self.done = Done(Result(dns.rcode.SERVFAIL))
            return True
        negative = self.cache.get_negative(self.target, self.qtype, self.now)
        if negative is not None:
            self._record(None, None, self.target, self.qtype, _rcode_text(negative.rcode), True)
            authority = [negative.soa] if negative.soa is not None else []
            self._finish(negative.rcode, authority)
            return True
        rrset = self.cache.get(self.target, self.qtype, self.now, min_trust=Trust.ANSWER)
        if rrset is not None:
            self._record(None, None, self.target, self.qtype, "answer " + _brief(rrset), True)
            self.chain.append(rrset)
            self._finish(dns.rcode.NOERROR)
            return True
        if self.qtype != CNAME:
            cname = self.cache.get(self.target, CNAME, self.now, min_trust=Trust.ANSWER)
            if cname is not None:
                self._record(None, None, self.target, self.qtype, "CNAME " + _brief(cname), True)
                return self._follow_cname(cname)
        return False

    def _enter_zone(
        self, zone: dns.name.Name, ns: dns.rrset.RRset, *, from_cache: bool = False
    ) -> None:
        self._zone = zone
        self._servers = []
        self._unresolved = []
        self._tried.clear()
        self._minimised_labels = len(zone)
        names = [rdata.target for rdata in ns]
        self.rng.shuffle(names)
        for name in names:
            addresses = self._addresses_of(name)
            if addresses:
                self._servers += [(name, address) for address in addresses]
            else:
                self._unresolved.append(name)
        if from_cache and zone != dns.name.root:
            self._record(None, None, self.target, self.qtype, f"cached referral to {zone}", True)

    def _addresses_of(self, name: dns.name.Name) -> list[str]:
        out: list[str] = []
        for rdtype in (A, AAAA):
            rrset = self.cache.get(name, rdtype, self.now)
            if rrset is not None:
                out += [rdata.address for rdata in rrset]
        return out

    # -- choosing whom to ask ---------------------------------------------------

    def _pick_server(self) -> Ask | None:
        for name, address in self._servers:
            if address in self._tried:
                continue
            if self.cache.server_down(address, self.now):
                self._tried.add(address)
                self._record(name, address, self.target, self.qtype, "skipped: not answering")
                continue
            if self.budget.queries <= 0:
                self._finish(dns.rcode.SERVFAIL)
                self._record(None, None, self.target, self.qtype, "query budget exhausted")
                return None
            self.budget.queries -= 1
            self._tried.add(address)
            qname, qtype = self._question()
            return Ask(address, name, qname, qtype, self._zone, bool(self.forwarders))
        if self._unresolved and self.depth < MAX_DEPTH:
            # A delegation without glue: find an NS name's address first.
            ns_name = self._unresolved.pop(0)
            if ns_name.is_subdomain(self._zone) and self._zone != dns.name.root:
                # In-zone NS without glue can only be reached through itself.
                return None
            self._child_for = ns_name
            self._child = Resolution(
                ns_name,
                A,
                self.cache,
                self.root_hints,
                self.now,
                forwarders=self.forwarders,
                qname_minimisation=self.minimise,
                rng=self.rng,
                depth=self.depth + 1,
                budget=self.budget,
                trace=self.trace,
            )
            return None
        self._record(None, None, self.target, self.qtype, f"no server of {self._zone} answered")
        self._finish(dns.rcode.SERVFAIL)
        return None

    def _child_done(self, result: Result) -> None:
        assert self._child_for is not None
        addresses = [
            rdata.address for rrset in result.answer if rrset.rdtype in (A, AAAA) for rdata in rrset
        ]
        self._servers += [(self._child_for, address) for address in addresses]
        self._child = None
        self._child_for = None

    def _question(self) -> tuple[dns.name.Name, int]:
        """RFC 9156 §3: reveal one more label than the zone we ask about."""
        if self.forwarders or not self.minimise:
            return self.target, self.qtype
        wanted = max(self._minimised_labels, len(self._zone)) + 1
        if wanted >= len(self.target) or self._minimise_steps >= MAX_MINIMISE_STEPS:
            return self.target, self.qtype
        # RFC 9156 §3: ask for A (NS reveals more and trips some servers).
        return self.target.split(wanted)[1], A

    # -- reading replies ---------------------------------------------------------

    def _forwarded(self, ask: Ask, response: dns.message.Message) -> None:
        rcode = response.rcode()
        if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            self._fail(ask, dns.rcode.to_text(rcode))
            return
        chain = _answer_chain(response.answer, self.target, self.qtype, dns.name.root)
        for rrset in chain:
            self.cache.put(rrset, self.now)
        self.chain += chain
        soa = _negative_soa(response, dns.name.root)
        final = chain[-1] if chain else None
        if final is not None and final.rdtype == self.qtype:
            self._record(
                ask.server_name, ask.address, ask.qname, ask.qtype, "answer " + _brief(final)
            )
            self._finish(dns.rcode.NOERROR)
            return
        last = final[0].target if final is not None else self.target
        self.cache.put_negative(last, self.qtype, rcode, soa, self.now)
        self._record(ask.server_name, ask.address, ask.qname, ask.qtype, _rcode_text(rcode))
        self._finish(rcode, [soa] if soa is not None else [])

    def _iterated(self, ask: Ask, response: dns.message.Message) -> None:
        rcode = response.rcode()
        if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            self._fail(ask, dns.rcode.to_text(rcode))
            return
        zone = ask.zone
        minimised = ask.qname != self.target
        # RFC 2181 §5.4.1 and RFC 5452 §6: only data within the zone we asked.
        answer = [r for r in response.answer if r.name.is_subdomain(zone)]
        authority = [r for r in response.authority if r.name.is_subdomain(zone)]
        referral = _referral(response, authority, zone, ask.qname)
        if referral is not None:
            child, ns = referral
            self.cache.put(ns, self.now, Trust.REFERRAL)
            for rrset in response.additional:
                # Glue is believed only for names inside the referring zone.
                if rrset.rdtype in (A, AAAA) and rrset.name.is_subdomain(zone):
                    self.cache.put(rrset, self.now, Trust.GLUE)
            servers = ", ".join(str(r.target) for r in ns)
            self._record(
                ask.server_name,
                ask.address,
                ask.qname,
                ask.qtype,
                f"referral to {child}: {servers}",
            )
            self._enter_zone(child, ns)
            return
        if minimised:
            if rcode == dns.rcode.NXDOMAIN:
                # RFC 8020: nothing exists below an NXDOMAIN.
                soa = _negative_soa(response, zone)
                self.cache.put_negative(ask.qname, ask.qtype, rcode, soa, self.now)
                self._record(ask.server_name, ask.address, ask.qname, ask.qtype, "NXDOMAIN")
                self._finish(rcode, [soa] if soa is not None else [])
                return
            # No cut at this label: reveal one more to the same servers.
            self._record(
                ask.server_name,
                ask.address,
                ask.qname,
                ask.qtype,
                "no delegation here, one more label",
            )
            self._minimised_labels = len(ask.qname)
            self._minimise_steps += 1
            self._tried.discard(ask.address)
            return
        chain = _answer_chain(answer, self.target, self.qtype, zone)
        for rrset in chain:
            self.cache.put(rrset, self.now)
        for rrset in response.additional:
            if rrset.rdtype in (A, AAAA) and rrset.name.is_subdomain(zone):
                self.cache.put(rrset, self.now, Trust.GLUE)
        if chain:
            final = chain[-1]
            if final.rdtype == self.qtype or self.qtype == dns.rdatatype.ANY:
                self.chain += chain
                self._record(
                    ask.server_name, ask.address, ask.qname, ask.qtype, "answer " + _brief(final)
                )
                self._finish(dns.rcode.NOERROR)
                return
            # A CNAME (chain) leading elsewhere: restart for its target.
            self._record(
                ask.server_name,
                ask.address,
                ask.qname,
                ask.qtype,
                "CNAME " + " → ".join(_brief(r) for r in chain),
            )
            self.chain += chain[:-1]
            self._follow_cname(final)
            return
        if not response.flags & dns.flags.AA and not _negative_soa(response, zone):
            self._fail(ask, "lame: neither answer, referral nor authoritative denial")
            return
        soa = _negative_soa(response, zone)
        self.cache.put_negative(self.target, self.qtype, rcode, soa, self.now)
        self._record(ask.server_name, ask.address, ask.qname, ask.qtype, _rcode_text(rcode))
        self._finish(rcode, [soa] if soa is not None else [])

    def _follow_cname(self, cname: dns.rrset.RRset) -> bool:
        self.chain.append(cname)
        target = cname[0].target
        if len(self.chain) > MAX_CNAME_CHAIN or any(r.name == target for r in self.chain):
            self._record(None, None, target, self.qtype, "CNAME loop or chain too long")
            self._finish(dns.rcode.SERVFAIL)
            return True
        self.target = target
        self._start_target()
        return True

    def _fail(self, ask: Ask, reason: str) -> None:
        self._record(ask.server_name, ask.address, ask.qname, ask.qtype, f"failed: {reason}")

    def _finish(self, rcode: int, authority: list[dns.rrset.RRset] | None = None) -> None:
        if rcode == dns.rcode.SERVFAIL:
            # RFC 9520 §3.2: "Resolvers MUST implement a cache for resolution failures."
            self.cache.put_failure(self.qname, self.qtype, self.now)
        self.done = Done(Result(rcode, list(self.chain), authority or []))

    def _record(
        self,
        server_name: dns.name.Name | None,
        address: str | None,
        qname: dns.name.Name,
        qtype: int,
        outcome: str,
        from_cache: bool = False,
    ) -> None:
        self.trace.append(Step(self.depth, server_name, address, qname, qtype, outcome, from_cache))


def _question_matches(ask: Ask, response: dns.message.Message) -> bool:
    if len(response.question) != 1:
        return False
    question = response.question[0]
    return (
        question.name == ask.qname
        and question.rdtype == ask.qtype
        and question.rdclass == dns.rdataclass.IN
    )


def _referral(
    response: dns.message.Message,
    authority: list[dns.rrset.RRset],
    zone: dns.name.Name,
    qname: dns.name.Name,
) -> tuple[dns.name.Name, dns.rrset.RRset] | None:
    """A delegation to a zone strictly below ``zone`` and at or above ``qname``."""
    if response.answer or response.rcode() != dns.rcode.NOERROR:
        return None
    for rrset in authority:
        if (
            rrset.rdtype == NS
            and rrset.name != zone
            and rrset.name.is_subdomain(zone)
            and qname.is_subdomain(rrset.name)
        ):
            return rrset.name, rrset
    return None


def _answer_chain(
    answer: list[dns.rrset.RRset], qname: dns.name.Name, qtype: int, zone: dns.name.Name
) -> list[dns.rrset.RRset]:
    """The RRsets that answer qname, following CNAMEs within the reply."""
    chain: list[dns.rrset.RRset] = []
    name = qname
    for _ in range(MAX_CNAME_CHAIN):
        if not name.is_subdomain(zone):
            break
        found = None
        for rrset in answer:
            if rrset.name == name and (rrset.rdtype == qtype or qtype == dns.rdatatype.ANY):
                found = rrset
                break
        if found is not None:
            chain.append(found)
            break
        cname = next((r for r in answer if r.name == name and r.rdtype == CNAME), None)
        if cname is None or qtype == CNAME:
            break
        chain.append(cname)
        name = cname[0].target
    return chain


def _negative_soa(response: dns.message.Message, zone: dns.name.Name) -> dns.rrset.RRset | None:
    for rrset in response.authority:
        if rrset.rdtype == SOA and rrset.name.is_subdomain(zone):
            return rrset
    return None


def _brief(rrset: dns.rrset.RRset) -> str:
    values = " ".join(rdata.to_text() for rdata in list(rrset)[:3])
    more = f" (+{len(rrset) - 3})" if len(rrset) > 3 else ""
    return f"{rrset.name} {dns.rdatatype.to_text(rrset.rdtype)} {values}{more}"


def _rcode_text(rcode: int) -> str:
    return "NXDOMAIN" if rcode == dns.rcode.NXDOMAIN else "NODATA"

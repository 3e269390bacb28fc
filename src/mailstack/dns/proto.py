"""From a query's bytes to a reply's bytes, or to the work a reply needs.

``QueryHandler.handle`` takes one DNS message as received (RFC 1035 §4.1) and
returns the wire reply, ``None`` for a silent drop, or an event the service
completes with I/O (recursion, zone transfer, UPDATE, NOTIFY). No sockets
here; the clock is an argument.

The hot path answers repeated standard queries from precomputed wire replies
keyed by the query's bytes after its ID, so a cache hit costs a dict lookup
and a concatenation. Anything unusual takes the full parse.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.rrset
import dns.tsig

from mailstack.dns.authority import Authority, fill
from mailstack.dns.catalog import Acl

HEADER = struct.Struct("!HHHHHH")
OUR_PAYLOAD = 1232  # the DNS Flag Day 2020 size: no IP fragmentation
CLASSIC_UDP = 512  # RFC 1035 §4.2.1
TCP_MAX = 65535
QR = 0x8000


@dataclass(slots=True)
class Recurse:
    """Resolve the query for an allowed client (RFC 1034 §4.3.1, RA=1)."""

    query: dns.message.Message
    max_size: int
    cache_key: bytes | None
    tcp: bool = False  # a reply sized for TCP is never replayed over UDP


@dataclass(slots=True)
class Transfer:
    """An AXFR or IXFR over TCP (RFC 5936, RFC 1995)."""

    query: dns.message.Message


@dataclass(slots=True)
class Update:
    """A dynamic UPDATE (RFC 2136)."""

    query: dns.message.Message


@dataclass(slots=True)
class Notify:
    """A NOTIFY from a primary (RFC 1996)."""

    query: dns.message.Message


Event = bytes | Recurse | Transfer | Update | Notify | None


class QueryHandler:
    """Answers queries for an ``Authority``; hands recursion and the rest on."""

    def __init__(
        self,
        authority: Authority,
        *,
        may_recurse: Callable[[str], bool] = lambda client: False,
        keyring: dict[dns.name.Name, dns.tsig.Key] | None = None,
        payload: int = OUR_PAYLOAD,
        answer_cache_size: int = 65536,
        nsid: bytes = b"",
        identity: str = "",
        version: str = "",
        transfer_acl: Acl | None = None,
    ) -> None:
        self.authority = authority
        self.may_recurse = may_recurse
        self.keyring = keyring or {}
        self.payload = payload
        # RFC 5001: sent to clients that ask with an empty NSID option.
        self.nsid = nsid
        # CHAOS TXT answers (empty: REFUSED), as BIND, NSD and Knot name them.
        self.chaos = {
            name: text
            for names, text in ((_IDENTITY_NAMES, identity), (_VERSION_NAMES, version))
            if text
            for name in names
        }
        self.transfer_acl = transfer_acl or Acl()
        self._cache_size = answer_cache_size
        self._generation = authority.generation
        # (recursion offered, tcp) -> query bytes after the ID -> reply after the ID
        self._answers: dict[tuple[bool, bool], dict[bytes, bytes]] = {}
        # tcp -> query bytes after the ID -> a recursive reply replayed with
        # aged TTLs (per transport: a TCP reply may exceed what UDP allows)
        self._recursive: dict[bool, dict[bytes, Replay]] = {False: {}, True: {}}

    def handle(self, wire: bytes, client: str, *, tcp: bool = False, now: float = 0.0) -> Event:
        if len(wire) < HEADER.size:
            return None  # nothing to answer to: no ID to echo
        if wire[2] & 0x80:
            return None  # a response: never answer one (no reflection loops)
        if self._generation != self.authority.generation:
            self._answers.clear()
            self._generation = self.authority.generation
        key = wire[2:]
        ra = self.may_recurse(client)
        answers = self._answers.get((ra, tcp))
        if answers is not None:
            cached = answers.get(key)
            if cached is not None:
                return wire[:2] + cached
        if ra:
            replay = self._recursive[tcp].get(key)
            if replay is not None and replay.expires > now:
                return wire[:2] + replay.at(now)
        return self._handle_slow(wire, key, client, ra, tcp)

    def remember_recursive(
        self, key: bytes, reply: bytes, now: float, *, tcp: bool = False
    ) -> None:
        """Keep a recursive reply to replay, its TTLs counting down, until one
        expires, to queries that came the same way (UDP or TCP)."""
        replay = Replay.of(reply, now)
        if replay is None:
            return
        replays = self._recursive[tcp]
        if len(replays) >= self._cache_size:
            replays.clear()
        replays[key] = replay

    # -- the full parse -----------------------------------------------------

    def _handle_slow(self, wire: bytes, key: bytes, client: str, ra: bool, tcp: bool) -> Event:
        try:
            query = dns.message.from_wire(wire, keyring=self.keyring)
        except (
            dns.tsig.PeerError,
            dns.message.UnknownTSIGKey,
            dns.tsig.BadSignature,
            dns.tsig.BadTime,
        ):
            # RFC 8945 §5.2: an unverifiable request gets NOTAUTH, unsigned.
            return header_only(wire, dns.rcode.NOTAUTH)
        except (dns.exception.DNSException, ValueError, IndexError):
            return formerr(wire)
        opcode = query.opcode()
        if opcode == dns.opcode.UPDATE:
            return Update(query)
        if opcode == dns.opcode.NOTIFY:
            return Notify(query)
        if opcode != dns.opcode.QUERY:
            # RFC 1035 §4.1.1: an opcode we do not implement.
            return self._error(query, dns.rcode.NOTIMP)
        if len(query.question) != 1 or query.answer:
            # RFC 9619 §4: a QUERY carries exactly one question.
            return self._error(query, dns.rcode.FORMERR)
        if query.edns > 0:
            # RFC 6891 §6.1.3: an unknown version gets BADVERS with our version.
            response = self._response(query)
            response.set_rcode(dns.rcode.BADVERS)
            return response.to_wire()
        question = query.question[0]
        max_size = TCP_MAX if tcp else udp_size(query, self.payload)
        if question.rdtype == 0:
            # RFC 6895 §3.1: TYPE0 is reserved; no server implements it.
            return self._error(query, dns.rcode.NOTIMP)
        if question.rdclass == dns.rdataclass.CH:
            return self._chaos(query)
        if question.rdtype in (dns.rdatatype.AXFR, dns.rdatatype.IXFR):
            return self._transfer(query, client, tcp, max_size)
        lookup = None
        if question.rdclass in (dns.rdataclass.IN, dns.rdataclass.ANY):
            # Class ANY (RFC 1035 §3.2.5) asks about every class: ours is IN.
            lookup = self.authority.lookup(question.name, question.rdtype)
        if lookup is None:
            if (
                ra
                and query.flags & dns.flags.RD
                and question.rdclass == dns.rdataclass.IN
                and question.rdtype not in _META_TYPES
            ):
                cacheable = not query.had_tsig
                return Recurse(query, max_size, key if cacheable else None, tcp)
            ede = None
            if question.rdclass in (dns.rdataclass.IN, dns.rdataclass.ANY):
                ede = dns.edns.EDECode.NOT_AUTHORITATIVE
            return self._error(query, dns.rcode.REFUSED, ra=ra, ede=ede)
        response = self._response(query)
        if ra:
            response.flags |= dns.flags.RA
        fill(response, lookup)
        reply = render(response, max_size, glue_required=lookup.referral)
        if not query.had_tsig:
            answers = self._answers.setdefault((ra, tcp), {})
            if len(answers) >= self._cache_size:
                answers.clear()
            answers[key] = reply[2:]
        return reply

    def _response(self, query: dns.message.Message) -> dns.message.Message:
        """A response carrying our EDNS: payload, the DO bit copied (RFC 3225
        §3), and our NSID when the client asked for it (RFC 5001 §2.1)."""
        response = dns.message.make_response(query, our_payload=self.payload)
        if query.edns >= 0:
            # make_response echoes the client's version; ours is 0 (RFC 6891 §6.1.3).
            response.use_edns(0, query.ednsflags & dns.flags.DO, self.payload)
            if self.nsid and any(o.otype == dns.edns.NSID for o in query.options):
                response.use_edns(
                    0,
                    response.ednsflags,
                    self.payload,
                    options=[dns.edns.NSIDOption(self.nsid)],
                )
        return response

    def _error(
        self,
        query: dns.message.Message,
        rcode: int,
        *,
        ra: bool = False,
        ede: dns.edns.EDECode | None = None,
    ) -> bytes:
        response = self._response(query)
        if ra:
            response.flags |= dns.flags.RA
        response.set_rcode(dns.rcode.Rcode(rcode))
        if ede is not None and response.edns >= 0:
            # RFC 8914 §2: the reason, for the client's logs.
            options = [*response.options, dns.edns.EDEOption(ede)]
            response.use_edns(0, response.ednsflags, self.payload, options=options)
        return bytes(response.to_wire())

    def _chaos(self, query: dns.message.Message) -> bytes:
        """CHAOS TXT ``version.bind``/``id.server`` and their aliases, when configured."""
        question = query.question[0]
        text = self.chaos.get(question.name)
        if text is None or question.rdtype != dns.rdatatype.TXT:
            return self._error(query, dns.rcode.REFUSED)
        response = self._response(query)
        rrset = dns.rrset.RRset(question.name, dns.rdataclass.CH, dns.rdatatype.TXT)
        rrset.add(dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.CH, dns.rdatatype.TXT, [text]), 0)
        response.answer = [rrset]
        return bytes(response.to_wire())

    def _transfer(
        self, query: dns.message.Message, client: str, tcp: bool, max_size: int
    ) -> Event:
        if tcp:
            return Transfer(query)
        question = query.question[0]
        if question.rdtype == dns.rdatatype.AXFR:
            # RFC 5936 §4.2: AXFR is a TCP affair; over UDP, as Knot says it.
            return self._error(query, dns.rcode.NOTIMP)
        zone = self.authority.zones.get(question.name)
        if zone is None:
            return self._error(query, dns.rcode.NOTAUTH)
        key_name = query.keyname if query.had_tsig else None
        if not self.transfer_acl.allows(client, key_name):
            # RFC 5936 §6: transfers only to whom the operator allows.
            return self._error(
                query, dns.rcode.REFUSED, ede=dns.edns.EDECode.PROHIBITED
            )
        # RFC 1995 §2: over UDP, the current SOA alone says "use TCP".
        response = self._response(query)
        response.flags |= dns.flags.AA
        response.answer = [zone.soa]
        return bytes(response.to_wire(max_size=max_size, prefer_truncation=True))


_IDENTITY_NAMES = tuple(map(dns.name.from_text, ("id.server.", "hostname.bind.")))
_VERSION_NAMES = tuple(map(dns.name.from_text, ("version.server.", "version.bind.")))
_META_TYPES = frozenset(
    {
        dns.rdatatype.OPT,
        dns.rdatatype.TSIG,
        dns.rdatatype.TKEY,
        dns.rdatatype.MAILA,
        dns.rdatatype.MAILB,
    }
)


def udp_size(query: dns.message.Message, ours: int = OUR_PAYLOAD) -> int:
    """The largest UDP reply the client accepts (RFC 6891 §6.2.5; 512 without EDNS)."""
    if query.edns < 0:
        return CLASSIC_UDP
    return max(CLASSIC_UDP, min(query.payload, ours))


def render(response: dns.message.Message, max_size: int, *, glue_required: bool = False) -> bytes:
    """The reply's wire form, truncated with TC=1 when it does not fit.

    RFC 2181 §9: dropping additional data does not set TC, except required
    glue of a referral (RFC 9471 §3); a truncated answer has TC=1 so the client
    retries over TCP (RFC 7766 §5).
    """
    try:
        return response.to_wire(max_size=max_size)
    except dns.exception.TooBig:
        pass
    additional = response.additional
    response.additional = []
    try:
        wire = response.to_wire(max_size=max_size)
    except dns.exception.TooBig:
        response.additional = additional
        wire = b""
    if wire and not glue_required:
        return wire
    response.answer = []
    response.authority = []
    response.additional = []
    response.flags |= dns.flags.TC
    return response.to_wire(max_size=max_size)


def formerr(wire: bytes) -> bytes:
    """FORMERR echoing the question when one can be read (as Knot does), else
    a bare header."""
    try:
        query = dns.message.from_wire(wire, question_only=True)
    except (dns.exception.DNSException, ValueError, IndexError):
        return header_only(wire, dns.rcode.FORMERR)
    if len(query.question) != 1:
        return header_only(wire, dns.rcode.FORMERR)
    response = dns.message.make_response(query)
    response.set_rcode(dns.rcode.FORMERR)
    return bytes(response.to_wire())


def header_only(wire: bytes, rcode: int) -> bytes:
    """A bare header echoing the ID and opcode, for queries we cannot parse."""
    ident, flags = struct.unpack_from("!HH", wire)
    flags = QR | (flags & 0x7900) | rcode  # keep OPCODE and RD
    return HEADER.pack(ident, flags, 0, 0, 0, 0)


class RateLimiter:
    """At most ``rate`` UDP queries per second from one client address.

    Over the limit, queries are dropped silently (the client retries or gives
    up); a spoofed source cannot turn us into an amplifier. The table is
    cleared each second, so its size is bounded by one second of clients.
    """

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._second = -1
        self._counts: dict[str, int] = {}

    def allow(self, client: str, now: float) -> bool:
        if self.rate <= 0:
            return True
        second = int(now)
        if second != self._second:
            self._second = second
            self._counts.clear()
        count = self._counts.get(client, 0) + 1
        self._counts[client] = count
        return count <= self.rate


class Replay:
    """A reply's wire form with the offsets of its TTLs, aged without a parse.

    RFC 1035 §4.1.3: each resource record's TTL sits after its owner name,
    TYPE and CLASS. The OPT pseudo-record's TTL field holds EDNS flags (RFC
    6891 §6.1.3) and is left alone.
    """

    __slots__ = ("tail", "offsets", "ttls", "created", "expires", "_second", "_current")

    def __init__(self, tail: bytes, offsets: list[int], ttls: list[int], created: float) -> None:
        self.tail = tail
        self.offsets = offsets
        self.ttls = ttls
        self.created = created
        self.expires = created + min(ttls, default=0)
        self._second = 0
        self._current = tail

    @classmethod
    def of(cls, wire: bytes, now: float) -> Replay | None:
        offsets = ttl_offsets(wire)
        if not offsets:
            return None
        ttls = [struct.unpack_from("!I", wire, offset)[0] for offset in offsets]
        if min(ttls) < 1:
            return None
        return cls(wire[2:], [offset - 2 for offset in offsets], ttls, now)

    def at(self, now: float) -> bytes:
        second = int(now - self.created)
        if second != self._second:
            buffer = bytearray(self.tail)
            for offset, ttl in zip(self.offsets, self.ttls, strict=True):
                struct.pack_into("!I", buffer, offset, max(ttl - second, 0))
            self._current = bytes(buffer)
            self._second = second
        return self._current


def ttl_offsets(wire: bytes) -> list[int]:
    """Where the TTL of every record (OPT excepted) starts in a well-formed message."""
    _, _, qdcount, ancount, nscount, arcount = HEADER.unpack_from(wire)
    position = HEADER.size
    for _ in range(qdcount):
        position = _skip_name(wire, position) + 4
    offsets = []
    for _ in range(ancount + nscount + arcount):
        position = _skip_name(wire, position)
        rdtype, _, _, rdlength = struct.unpack_from("!HHIH", wire, position)
        if rdtype != dns.rdatatype.OPT:
            offsets.append(position + 4)
        position += 10 + rdlength
    return offsets


def _skip_name(wire: bytes, position: int) -> int:
    while True:
        length = wire[position]
        if length >= 0xC0:
            return position + 2  # a compression pointer ends the name
        position += 1 + length
        if length == 0:
            return position

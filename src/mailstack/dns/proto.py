"""From a query's bytes to a reply's bytes, or to the work a reply needs.

``QueryHandler.handle`` takes one DNS message as received (RFC 1035 §4.1) and
returns the wire reply, ``None`` for a silent drop, or an event the service
completes with I/O (recursion, zone transfer, UPDATE, NOTIFY). No sockets
here; the clock is an argument.

The hot path answers repeated standard queries from precomputed wire replies
keyed by the normalised question (``question_key``: the name lower-cased, its
type and class, the flags and EDNS bits a reply depends on), so that neither
the case of a name nor an EDNS option makes a new entry; the replies are kept
in a cache bounded in octets. A cache hit costs a few slices and a
concatenation. Anything unusual takes the full parse.

``ResponseRateLimiter`` is response rate limiting for UDP replies as BIND and
Knot do it (per client network and per response, with slip and leak).
"""

from __future__ import annotations

import socket
import struct
from collections import OrderedDict
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
from mailstack.dns.cache import ReplyCache
from mailstack.dns.catalog import Acl
from mailstack.dns.resolution import not_resolvable

HEADER = struct.Struct("!HHHHHH")
OUR_PAYLOAD = 1232  # the DNS Flag Day 2020 size: no IP fragmentation
CLASSIC_UDP = 512  # RFC 1035 §4.2.1
TCP_MAX = 65535
QR = 0x8000
TC = 0x02  # in the third octet of the header
PADDING = 12  # RFC 7830 EDNS option code; RFC 8467 pads the reply of a padded query


@dataclass(slots=True)
class Recurse:
    """Resolve the query for an allowed client (RFC 1034 §4.3.1, RA=1)."""

    query: dns.message.Message
    max_size: int
    cache_key: bytes | None  # the normalised question (its transport included)
    tcp: bool = False


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
        reply_cache_bytes: int = 32 * 1024 * 1024,
        nsid: bytes = b"",
        identity: str = "",
        version: str = "",
        transfer_acl: Acl | None = None,
        recurse_referrals: bool = False,
    ) -> None:
        self.authority = authority
        self.may_recurse = may_recurse
        # A recursive query our zones would answer with a referral is
        # resolved instead (the recursive chain, `[dns.resolver] chain`).
        self.recurse_referrals = recurse_referrals
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
        self._generation = authority.generation
        # cache key -> an authoritative reply after its ID, or a recursive
        # reply replayed with aged TTLs
        self.replies: ReplyCache[bytes | Replay] = ReplyCache(reply_cache_bytes)

    def handle(self, wire: bytes, client: str, *, tcp: bool = False, now: float = 0.0) -> Event:
        if len(wire) < HEADER.size:
            return None  # nothing to answer to: no ID to echo
        if wire[2] & 0x80:
            return None  # a response: never answer one (no reflection loops)
        if self._generation != self.authority.generation:
            self.replies.clear()
            self._generation = self.authority.generation
        ra = self.may_recurse(client)
        asked = question_key(wire, tcp=tcp, ours=self.payload)
        key = None
        if asked is not None:
            normalised, qend = asked
            key = (b"\x01" if ra else b"\x00") + normalised
            cached = self.replies.get(key)
            if isinstance(cached, bytes):
                return echo(wire, qend, cached)
            if cached is not None:
                if cached.expires > now:
                    return echo(wire, qend, cached.at(now))
                self.replies.discard(key)
        return self._handle_slow(wire, key, client, ra, tcp)

    def remember_recursive(self, key: bytes, reply: bytes, now: float) -> None:
        """Keep a recursive reply to replay, its TTLs counting down, until one
        expires, to queries with the same normalised question."""
        replay = Replay.of(reply, now)
        if replay is not None:
            self.replies.put(key, replay, replay.size)

    # -- the full parse -----------------------------------------------------

    def _handle_slow(
        self, wire: bytes, key: bytes | None, client: str, ra: bool, tcp: bool
    ) -> Event:
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
        recursive = bool(ra and query.flags & dns.flags.RD)
        recursive = recursive and question.rdclass == dns.rdataclass.IN
        if recursive and (lookup is None or (lookup.referral and self.recurse_referrals)):
            refused = not_resolvable(question.rdtype)
            if refused is not None:
                # RFC 6895 §3.1: meta-TYPEs and QTYPEs are never sent upstream.
                return self._error(query, refused, ra=ra)
            cacheable = not query.had_tsig
            return Recurse(query, max_size, key if cacheable else None, tcp)
        if lookup is None:
            ede = None
            if question.rdclass in (dns.rdataclass.IN, dns.rdataclass.ANY):
                ede = dns.edns.EDECode.NOT_AUTHORITATIVE
            return self._error(query, dns.rcode.REFUSED, ra=ra, ede=ede)
        response = self._response(query)
        if ra:
            response.flags |= dns.flags.RA
        fill(response, lookup)
        reply = render(response, max_size, glue_required=lookup.referral)
        if key is not None and not query.had_tsig and echoes_question(wire, reply):
            self.replies.put(key, reply[2:], len(reply))
        return reply

    def _response(self, query: dns.message.Message) -> dns.message.Message:
        """A response carrying our EDNS: payload, the DO bit copied (RFC 3225
        §3), and our NSID when the client asked for it (RFC 5001 §2.1)."""
        response = dns.message.make_response(query, our_payload=self.payload)
        if query.edns >= 0:
            # make_response echoes the client's version; ours is 0 (RFC 6891 §6.1.3).
            # A padded query's reply stays padded (RFC 8467 §4.1).
            pad = response.pad
            response.use_edns(0, query.ednsflags & dns.flags.DO, self.payload, pad=pad)
            if self.nsid and any(o.otype == dns.edns.NSID for o in query.options):
                response.use_edns(
                    0,
                    response.ednsflags,
                    self.payload,
                    options=[dns.edns.NSIDOption(self.nsid)],
                    pad=pad,
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
            response.use_edns(
                0, response.ednsflags, self.payload, options=options, pad=response.pad
            )
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


def question_key(wire: bytes, *, tcp: bool, ours: int = OUR_PAYLOAD) -> tuple[bytes, int] | None:
    """A plain query's normalised question, and where its question section ends.

    Two queries with the same key get the same reply but for the ID and the
    case of the name as asked (which ``echo`` copies back): the key is the name
    lower-cased (RFC 4343: ASCII case is not significant; a label length is
    below 64, so lower-casing the wire form touches only letters), the type and
    class, the RD and CD flags, whether EDNS is used with the DO bit, with
    padding (RFC 8467 pads the reply) and with NSID (RFC 5001: the reply
    carries ours), and the largest reply the transport takes. Other EDNS
    options do not change our reply, so they are not in the key; should one
    come to, it belongs here. Anything but one question and at
    most an OPT record (TSIG, compression in the question, EDNS version > 0,
    trailing octets) has no key and takes the full parse.
    """
    if len(wire) < 17 or wire[2] & 0xF8:
        return None  # a response, or an opcode other than QUERY
    qdcount, ancount, nscount, arcount = struct.unpack_from("!HHHH", wire, 4)
    if qdcount != 1 or ancount or nscount or arcount > 1:
        return None
    position = 12
    length = wire[position]
    while length:
        if length > 63:
            return None
        position += 1 + length
        if position >= len(wire):
            return None
        length = wire[position]
    qend = position + 5  # the root label, QTYPE and QCLASS
    bits = (wire[2] & 0x01) | (wire[3] & 0x10)  # RD, CD
    if not arcount:
        if qend != len(wire):
            return None
        size = TCP_MAX if tcp else CLASSIC_UDP
    else:
        if len(wire) < qend + 11 or wire[qend] != 0:
            return None
        rdtype, payload, extended, version, flags, rdlength = struct.unpack_from(
            "!HHBBHH", wire, qend + 1
        )
        end = qend + 11 + rdlength
        if rdtype != dns.rdatatype.OPT or extended or version or end != len(wire):
            return None
        codes = _option_codes(wire, qend + 11, end)
        if codes is None:
            return None
        bits |= 0x02 | (0x04 if flags & 0x8000 else 0)
        bits |= (0x08 if PADDING in codes else 0) | (0x20 if dns.edns.NSID in codes else 0)
        size = TCP_MAX if tcp else max(CLASSIC_UDP, min(payload, ours))
    name = wire[12 : qend - 4].lower()
    return name + wire[qend - 4 : qend] + struct.pack("!BBH", bits, tcp, size), qend


def _option_codes(wire: bytes, position: int, end: int) -> set[int] | None:
    """The option codes in the OPT RDATA wire[position:end]; None if malformed."""
    codes = set()
    while position + 4 <= end:
        option, length = struct.unpack_from("!HH", wire, position)
        codes.add(option)
        position += 4 + length
    return codes if position == end else None


def echo(wire: bytes, qend: int, tail: bytes) -> bytes:
    """A kept reply (``tail``: after its ID) for the query ``wire``: its ID, and
    its question as the client wrote it (a resolver using 0x20 case
    randomisation checks the case, and names compressed against the question
    take it too)."""
    return wire[:2] + tail[:10] + wire[12:qend] + tail[qend - 2 :]


def echoes_question(wire: bytes, reply: bytes) -> bool:
    """Whether ``reply`` carries the question of ``wire`` where ``echo`` puts it."""
    asked = question_key(wire, tcp=True)
    if asked is None:
        return False
    qend = asked[1]
    return reply[4:6] == b"\x00\x01" and reply[12:qend] == wire[12:qend]


class ResponseRateLimiter:
    """Response rate limiting (RRL) for UDP replies, as BIND and Knot do it.

    Replies are counted per client network (``ipv4_prefix``/``ipv6_prefix``
    bits, so a spoofed victim is one account however its addresses vary) and
    per response: one answer (name, type), one NODATA (name, type), NXDOMAIN
    per zone (a flood of random names is one account), one referral per
    delegation, and every error together. Each account earns ``rate`` replies
    a second, up to one second's worth; ``all_rate`` bounds the replies of all
    kinds to one network the same way (BIND's all-per-second). Past either, a
    reply is not sent, except every ``leak``-th, sent whole, and every
    ``slip``-th, sent empty with TC=1 so that a real client behind a spoofed
    address retries over TCP, where no limit applies (a spoofer cannot
    complete a TCP handshake). 0 switches a rate, ``slip`` or ``leak`` off. At
    most ``table`` accounts are kept, the least recently used going first.
    """

    def __init__(
        self,
        rate: int,
        *,
        all_rate: int = 0,
        slip: int = 2,
        leak: int = 0,
        ipv4_prefix: int = 24,
        ipv6_prefix: int = 56,
        table: int = 100_000,
    ) -> None:
        self.rate = rate
        self.all_rate = all_rate
        self.slip = slip
        self.leak = leak
        self.ipv4_shift = 32 - ipv4_prefix
        self.ipv6_shift = 128 - ipv6_prefix
        self.table = table
        # account -> [replies left, when last credited, replies limited]
        self._accounts: OrderedDict[bytes, list[float]] = OrderedDict()
        self._networks: dict[str, bytes] = {}

    def check(self, client: str, reply: bytes, now: float) -> bytes | None:
        """What to send for ``reply``: itself, its truncated form, or nothing."""
        if self.rate <= 0 and self.all_rate <= 0:
            return reply
        network = self._network(client)
        limited = 0
        if self.all_rate > 0:
            limited = self._spend(network + b"*", self.all_rate, now)
        if self.rate > 0 and not limited:
            limited = self._spend(network + response_account(reply), self.rate, now)
        if not limited:
            return reply
        if self.leak and limited % self.leak == 0:
            return reply
        if self.slip and limited % self.slip == 0:
            return truncated(reply)
        return None

    def _spend(self, account: bytes, rate: int, now: float) -> int:
        """0 if ``account`` may send one more reply (and it is counted), else how
        many replies it has had limited, this one included."""
        state = self._accounts.get(account)
        if state is None:
            state = [float(rate), now, 0.0]
            self._accounts[account] = state
            if len(self._accounts) > self.table:
                self._accounts.popitem(last=False)
        else:
            self._accounts.move_to_end(account)
            state[0] = min(float(rate), state[0] + (now - state[1]) * rate)
            state[1] = now
        if state[0] >= 1.0:
            state[0] -= 1.0
            return 0
        state[2] += 1
        return int(state[2])

    def _network(self, client: str) -> bytes:
        network = self._networks.get(client)
        if network is None:
            address = client.partition("%")[0]
            try:
                if ":" in address:
                    number = int.from_bytes(socket.inet_pton(socket.AF_INET6, address), "big")
                    network = b"6" + (number >> self.ipv6_shift).to_bytes(16, "big")
                else:
                    number = int.from_bytes(socket.inet_pton(socket.AF_INET, address), "big")
                    network = b"4" + (number >> self.ipv4_shift).to_bytes(4, "big")
            except OSError:
                network = b"?" + address.encode()
            if len(self._networks) >= self.table:
                self._networks.clear()
            self._networks[client] = network
        return network


def response_account(reply: bytes) -> bytes:
    """What RRL counts ``reply`` as: b"A"/b"N" + name + type (an answer, a
    NODATA), b"X" + zone (NXDOMAIN), b"R" + delegation (a referral), b"E" (an error)."""
    try:
        rcode = reply[3] & 0x0F
        qdcount, ancount, nscount, _ = struct.unpack_from("!HHHH", reply, 4)
        if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN) or qdcount != 1:
            return b"E"
        name_end = _skip_name(reply, HEADER.size)
        question = reply[HEADER.size : name_end].lower() + reply[name_end : name_end + 2]
        if rcode == dns.rcode.NOERROR and ancount:
            return b"A" + question
        position = name_end + 4
        for _ in range(ancount):
            position = _skip_name(reply, position)
            position += 10 + struct.unpack_from("!H", reply, position + 8)[0]
        if nscount:
            owner = _read_name(reply, position)
            (rdtype,) = struct.unpack_from("!H", reply, _skip_name(reply, position))
            if rcode == dns.rcode.NXDOMAIN and rdtype == dns.rdatatype.SOA:
                return b"X" + owner
            if rcode == dns.rcode.NOERROR and rdtype == dns.rdatatype.NS:
                return b"R" + owner
        return (b"X" if rcode == dns.rcode.NXDOMAIN else b"N") + question
    except (IndexError, struct.error):
        return b"E"


def truncated(reply: bytes) -> bytes:
    """``reply`` emptied with TC=1: the header and question, nothing else (RFC 7766 §5:
    the client asks again over TCP)."""
    qdcount = struct.unpack_from("!H", reply, 4)[0]
    end = _skip_name(reply, HEADER.size) + 4 if qdcount == 1 else HEADER.size
    flags = bytes([reply[2] | TC, reply[3]])
    return (
        reply[:2]
        + flags
        + struct.pack("!HHHH", 1 if end > HEADER.size else 0, 0, 0, 0)
        + (reply[HEADER.size : end])
    )


def _read_name(wire: bytes, position: int) -> bytes:
    """The name at ``position`` in lower-cased uncompressed wire form."""
    labels = []
    for _ in range(128):  # a name has at most 127 labels; more is a pointer loop
        length = wire[position]
        if length >= 0xC0:
            position = struct.unpack_from("!H", wire, position)[0] & 0x3FFF
            continue
        labels.append(wire[position : position + 1 + length])
        if length == 0:
            return b"".join(labels).lower()
        position += 1 + length
    raise IndexError("compression loop")


class Replay:
    """A reply's wire form with the offsets of its TTLs, aged without a parse.

    RFC 1035 §4.1.3: each resource record's TTL sits after its owner name,
    TYPE and CLASS. The OPT pseudo-record's TTL field holds EDNS flags (RFC
    6891 §6.1.3) and is left alone.
    """

    __slots__ = ("tail", "offsets", "ttls", "created", "expires", "_second", "_current")

    @property
    def size(self) -> int:
        """Octets held: the reply twice (as kept and as last aged), its TTL offsets."""
        return 2 * len(self.tail) + 64 * len(self.offsets)

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

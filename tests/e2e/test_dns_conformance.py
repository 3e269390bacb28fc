"""The authoritative server against Knot DNS, answer by answer.

Knot (`knotd`, its own config, on 127.0.0.77 and an unprivileged port) and a
mailstack node serve the same zones (tests/e2e/data/conformance); a corpus of
several hundred queries, written here, goes to both, and the replies are
compared: rcode, opcode, the flags AA/TC/RD/RA/AD/CD, the question as echoed
(case included), the answer, authority and additional sections as sets of
records in presentation form (so the case of names in RDATA counts), and the
EDNS version, DO bit, payload and options (NSID; Extended DNS Errors by code).

The corpus covers RFC 1034 §4.3.2 (CNAME chains, a CNAME into another zone
we serve not chased, delegations with glue, DS at a cut, NXDOMAIN/NODATA),
RFC 4592 wildcards, RFC 6672 DNAME, RFC 8482 ANY, RFC 3225 DO, RFC 5001 NSID,
RFC 8914 EDE, CHAOS version.bind/id.server, QDCOUNT != 1, QTYPE 0, meta types,
AXFR/IXFR over UDP, class ANY and CHAOS, EDNS versions, and case.

The few answers where we differ from Knot on purpose are listed in
``DELIBERATE`` with the reason; every other query must match.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

DATA = Path(__file__).parent / "data" / "conformance"
ZONES = {
    "example.": "example.zone",
    "other.test.": "other.test.zone",
    "sub.example.": "sub.example.zone",
}
KNOT_HOST = "127.0.0.77"
NSID = "ns.conformance"
VERSION = "conformance"

KNOTD = shutil.which("knotd") or shutil.which("knotd", path="/usr/sbin:/sbin")
needs_knot = pytest.mark.skipif(KNOTD is None, reason="knotd (Debian package knot) not installed")


# -- the corpus ---------------------------------------------------------------

NAMES = [
    "example.",
    "ns1.example.",
    "ns2.example.",
    "mail.example.",
    "www.example.",
    "web.example.",
    "ext.example.",
    "chain1.example.",
    "loop1.example.",
    "toother.example.",
    "todeleg.example.",
    "towild.example.",
    "tonx.example.",
    "x.wild.example.",
    "a.b.wild.example.",
    "wild.example.",
    "*.wild.example.",
    "y.cwild.example.",
    "b.ent.example.",
    "ent.example.",
    "a.b.ent.example.",
    "nx.example.",
    "deep.nx.example.",
    "_imap._tcp.example.",
    "_ext._tcp.example.",
    "sub.example.",
    "host.sub.example.",
    "ns.sub.example.",
    "nx.sub.example.",
    "deleg.example.",
    "a.deleg.example.",
    "ns.deleg.example.",
    "dn.example.",
    "www.dn.example.",
    "back.dn.example.",
    "a.b.dn.example.",
    "dnl.example.",
    "host.dnl.example.",
    "www.dnl.example.",
    "nx.dnl.example.",
    "x.dnx.example.",
    "mixedcase.example.",
    "case.example.",
    "upper.example.",
    "big.example.",
    "1.2.0.192.in-addr.example.",
    "other.test.",
    "www.other.test.",
    "back.other.test.",
    "x.any.other.test.",
    "nx.other.test.",
    "nowhere.test.",
    ".",
]
TYPES = ["A", "AAAA", "MX", "NS", "SOA", "TXT", "CNAME", "ANY", "DS", "DNAME", "SRV", "PTR"]


@dataclass(frozen=True, slots=True)
class Query:
    label: str
    wire: Callable[[int], bytes]
    tcp: bool = False


def _message(
    name: str,
    rdtype: str | int = "A",
    rdclass: str | int = "IN",
    *,
    flags: int = 0,
    edns: int = 0,
    do: bool = False,
    payload: int = 1232,
    options: tuple[dns.edns.Option, ...] = (),
) -> Callable[[int], bytes]:
    def build(ident: int) -> bytes:
        query = dns.message.make_query(
            name,
            dns.rdatatype.RdataType.make(rdtype),
            dns.rdataclass.RdataClass.make(rdclass),
            use_edns=edns,
            want_dnssec=do,
            payload=payload,
            options=list(options),
        )
        query.id = ident
        query.flags = flags
        return query.to_wire()

    return build


def _raw(
    header_flags: int, counts: tuple[int, int, int, int], body: bytes
) -> Callable[[int], bytes]:
    def build(ident: int) -> bytes:
        return struct.pack("!HH4H", ident, header_flags, *counts) + body

    return build


def _question(name: str, rdtype: int, rdclass: int = 1) -> bytes:
    return dns.name.from_text(name).to_wire() + struct.pack("!HH", rdtype, rdclass)


OPT_1232 = b"\x00" + struct.pack("!HHIH", 41, 1232, 0, 0)
NSID_OPTION = dns.edns.GenericOption(dns.edns.NSID, b"")


def corpus() -> list[Query]:
    queries = [
        Query(f"{name} {rdtype}", _message(name, rdtype)) for name in NAMES for rdtype in TYPES
    ]
    variants: dict[str, dict[str, object]] = {
        "rd": {"flags": dns.flags.RD},
        "cd": {"flags": dns.flags.CD},
        "ad": {"flags": dns.flags.AD},
        "do": {"do": True},
        "do+cd": {"do": True, "flags": dns.flags.CD},
        "noedns": {"edns": -1},
        "nsid": {"options": (NSID_OPTION,)},
        "edns1": {"edns": 1},
        "payload512": {"payload": 512},
        "unknown-option": {"options": (dns.edns.GenericOption(65001, b"hello"),)},
    }
    sample = [
        ("example.", "SOA"),
        ("www.example.", "A"),
        ("nx.example.", "A"),
        ("mail.example.", "TXT"),
        ("x.wild.example.", "MX"),
        ("host.sub.example.", "A"),
        ("a.deleg.example.", "A"),
        ("www.dn.example.", "A"),
        ("big.example.", "TXT"),
        ("nowhere.test.", "A"),
        ("example.", "ANY"),
    ]
    for label, options in variants.items():
        for name, rdtype in sample:
            queries.append(Query(f"{name} {rdtype} +{label}", _message(name, rdtype, **options)))  # type: ignore[arg-type]
    for name in [
        "WWW.Example.",
        "wWw.eXaMpLe.",
        "X.WILD.example.",
        "Host.Sub.Example.",
        "WWW.DN.Example.",
        "NX.example.",
        "MixedCase.example.",
        "Case.Example.",
    ]:
        for rdtype in ("A", "MX", "SRV", "CNAME"):
            queries.append(Query(f"{name} {rdtype}", _message(name, rdtype)))
    for rdclass in ("ANY", "CH", "HS", "NONE"):
        for name, rdtype in [
            ("example.", "SOA"),
            ("www.example.", "A"),
            ("nx.example.", "A"),
            ("nowhere.test.", "A"),
        ]:
            queries.append(Query(f"{name} {rdclass} {rdtype}", _message(name, rdtype, rdclass)))
    for name in [
        "version.bind.",
        "version.server.",
        "id.server.",
        "hostname.bind.",
        "authors.bind.",
        "foo.bind.",
        "VERSION.BIND.",
    ]:
        for rdtype in ("TXT", "A", "ANY"):
            queries.append(Query(f"{name} CH {rdtype}", _message(name, rdtype, "CH")))
            queries.append(
                Query(
                    f"{name} CH {rdtype} +nsid",
                    _message(name, rdtype, "CH", options=(NSID_OPTION,)),
                )
            )
    for rdtype in (0, "MAILA", "MAILB", "OPT", "TSIG", "TKEY", "NULL", 65280):
        for name in ("example.", "www.example.", "nowhere.test."):
            queries.append(Query(f"{name} TYPE{rdtype}", _message(name, rdtype)))
    for name in ("example.", "sub.example.", "www.example.", "nowhere.test."):
        queries.append(Query(f"{name} AXFR udp", _message(name, "AXFR")))
        queries.append(Query(f"{name} AXFR tcp", _message(name, "AXFR"), tcp=True))
        queries.append(Query(f"{name} IXFR udp no SOA", _message(name, "IXFR")))
    queries += [
        Query("header only", _raw(0, (0, 0, 0, 0), b"")),
        Query("QDCOUNT 0 with EDNS", _raw(0, (0, 0, 0, 1), OPT_1232)),
        Query(
            "QDCOUNT 2",
            _raw(0, (2, 0, 0, 0), _question("example.", 1) + _question("www.example.", 1)),
        ),
        Query(
            "QDCOUNT 2 with EDNS",
            _raw(
                0, (2, 0, 0, 1), _question("example.", 1) + _question("www.example.", 1) + OPT_1232
            ),
        ),
        Query("QDCOUNT 2 same", _raw(0, (2, 0, 0, 0), _question("example.", 6) * 2)),
        Query("QDCOUNT 1 but two", _raw(0, (1, 0, 0, 0), _question("example.", 1) * 2)),
        Query("QDCOUNT 2 but one", _raw(0, (2, 0, 0, 0), _question("example.", 1))),
        Query("QR set", _raw(0x8000, (1, 0, 0, 0), _question("example.", 1))),
        Query("opcode IQUERY", _raw(1 << 11, (1, 0, 0, 0), _question("example.", 1))),
        Query("opcode STATUS", _raw(2 << 11, (1, 0, 0, 0), _question("example.", 1))),
        Query("opcode 3", _raw(3 << 11, (1, 0, 0, 0), _question("example.", 1))),
        Query("opcode 15", _raw(15 << 11, (1, 0, 0, 0), _question("example.", 1))),
        Query(
            "NOTIFY from a stranger", _raw(4 << 11 | 0x0400, (1, 0, 0, 0), _question("example.", 6))
        ),
        Query("UPDATE unsigned", _raw(5 << 11, (1, 0, 0, 0), _question("example.", 6))),
        Query("two OPT records", _raw(0, (1, 0, 0, 2), _question("example.", 1) + OPT_1232 * 2)),
        Query(
            "OPT not at root", _raw(0, (1, 0, 0, 1), _question("example.", 1) + b"\x01a" + OPT_1232)
        ),
        Query("trailing garbage", _raw(0, (1, 0, 0, 0), _question("example.", 1) + b"junk")),
        Query("Z bit set", _raw(0x0040, (1, 0, 0, 1), _question("example.", 1) + OPT_1232)),
        Query("TC set in query", _raw(0x0200, (1, 0, 0, 1), _question("example.", 1) + OPT_1232)),
        Query("AA set in query", _raw(0x0400, (1, 0, 0, 1), _question("example.", 1) + OPT_1232)),
        Query("IXFR udp serial 1", _ixfr("example.", 1)),
        Query("IXFR udp current", _ixfr("example.", 2024010101)),
        Query("IXFR udp newer", _ixfr("example.", 2024010102)),
        Query("IXFR udp other zone", _ixfr("nowhere.test.", 1)),
        Query("IXFR udp below apex", _ixfr("www.example.", 1)),
        Query("big TXT tcp", _message("big.example.", "TXT", edns=-1), tcp=True),
        Query("www tcp", _message("www.example.", "A"), tcp=True),
    ]
    return queries


def _ixfr(name: str, serial: int) -> Callable[[int], bytes]:
    def build(ident: int) -> bytes:
        query = dns.message.make_query(name, "IXFR", use_edns=0, payload=1232)
        query.id = ident
        query.flags = 0
        soa = dns.rrset.from_text(name, 0, "IN", "SOA", f". . {serial} 0 0 0 0")
        query.authority.append(soa)
        return query.to_wire()

    return build


# -- comparing replies -----------------------------------------------------------

FLAGS = (
    ("aa", dns.flags.AA),
    ("tc", dns.flags.TC),
    ("rd", dns.flags.RD),
    ("ra", dns.flags.RA),
    ("ad", dns.flags.AD),
    ("cd", dns.flags.CD),
)


def summary(wires: list[bytes] | None) -> object:
    """What the comparison looks at in a reply (or a sequence, for AXFR)."""
    if not wires:
        return "no reply"
    return [_summary(wire) for wire in wires]


def _summary(wire: bytes) -> dict[str, object]:
    ident, flags, qd, an, ns, ar = struct.unpack_from("!HHHHHH", wire)
    out: dict[str, object] = {
        "opcode": (flags >> 11) & 0xF,
        "flags": sorted(name for name, bit in FLAGS if flags & bit),
        "counts": (qd, an, ns, ar) if an + ns + ar == 0 else None,
    }
    try:
        message = dns.message.from_wire(
            wire, keyring=False, ignore_trailing=True, question_only=False
        )
    except Exception as exc:  # a header we cannot parse further: compare the header
        out["rcode"] = flags & 0xF
        out["unparsable"] = type(exc).__name__
        return out
    out["rcode"] = dns.rcode.to_text(message.rcode())
    out["question"] = [
        f"{q.name} {dns.rdataclass.to_text(q.rdclass)} {dns.rdatatype.to_text(q.rdtype)}"
        for q in message.question
    ]
    for section in ("answer", "authority", "additional"):
        out[section] = sorted(
            line for rrset in getattr(message, section) for line in rrset.to_text().splitlines()
        )
    if message.edns >= 0:
        options = []
        for option in message.options:
            if option.otype == dns.edns.EDE:
                options.append(f"EDE {option.code}")  # the text is free-form (RFC 8914 §2)
            else:
                options.append(f"{option.otype} {option.to_wire().hex()}")
        out["edns"] = {
            "version": message.edns,
            "do": bool(message.ednsflags & dns.flags.DO),
            "payload": message.payload,
            "options": sorted(options),
        }
    return out


def ask(host: str, port: int, query: Query, ident: int) -> list[bytes] | None:
    wire = query.wire(ident)
    if not query.tcp:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(0.5)
            sock.sendto(wire, (host, port))
            try:
                return [sock.recv(65535)]
            except TimeoutError:
                return None
    replies = []
    with socket.create_connection((host, port), timeout=2.0) as sock:
        sock.sendall(struct.pack("!H", len(wire)) + wire)
        try:
            while True:
                length = struct.unpack("!H", _read(sock, 2))[0]
                reply = _read(sock, length)
                replies.append(reply)
                message = dns.message.from_wire(reply, keyring=False, one_rr_per_rrset=True)
                if message.rcode() != dns.rcode.NOERROR:
                    break
                question = dns.message.from_wire(wire, keyring=False).question
                if not question or question[0].rdtype != dns.rdatatype.AXFR:
                    break
                soas = sum(1 for m in replies for r in _answers(m) if r == dns.rdatatype.SOA)
                if soas >= 2:
                    break
        except (TimeoutError, ConnectionError, EOFError):
            pass
    return replies or None


def _answers(wire: bytes) -> list[int]:
    return [r.rdtype for r in dns.message.from_wire(wire, keyring=False).answer]


def _read(sock: socket.socket, length: int) -> bytes:
    data = b""
    while len(data) < length:
        chunk = sock.recv(length - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


# -- Knot --------------------------------------------------------------------------


def free_port(host: str) -> int:
    """A port free for both UDP and TCP on ``host``."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((host, 0))
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((host, port))
                except OSError:
                    continue
                return int(port)


@contextlib.contextmanager
def running_knot(directory: Path) -> Iterator[int]:
    assert KNOTD is not None
    port = free_port(KNOT_HOST)
    zones = "".join(
        f"  - domain: {origin}\n    file: {DATA / file}\n    journal-content: none\n"
        for origin, file in ZONES.items()
    )
    conf = directory / "knot.conf"
    conf.write_text(
        f"server:\n    listen: {KNOT_HOST}@{port}\n    rundir: {directory}\n"
        "    udp-workers: 1\n    tcp-workers: 1\n    background-workers: 1\n"
        f'    nsid: "{NSID}"\n    identity: "{NSID}"\n    version: "{VERSION}"\n'
        f"database:\n    storage: {directory}/knotdb\n"
        "log:\n  - target: stderr\n    any: warning\n"
        f"zone:\n{zones}"
    )
    log = (directory / "knot.log").open("w")
    knot = subprocess.Popen([KNOTD, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=log)
    try:
        probe = Query("probe", _message("example.", "SOA"))
        deadline = time.monotonic() + 10
        while ask(KNOT_HOST, port, probe, 1) is None:
            if time.monotonic() > deadline or knot.poll() is not None:
                raise RuntimeError(f"knotd did not start: {(directory / 'knot.log').read_text()}")
        yield port
    finally:
        knot.terminate()
        knot.wait(10)
        log.close()


# -- the test --------------------------------------------------------------------

# Queries where we answer otherwise than Knot on purpose, and why.
RDATA_CASE = (
    "Knot lowercases names in RDATA when it loads a zone; we keep the case the "
    "zone gives them (RFC 4343 §4.1)"
)
TRANSFER_REFUSED = (
    "a transfer the ACL denies: Knot says NOTAUTH; we say REFUSED with EDE 18 "
    "Prohibited (RFC 5936 §6, RFC 8914 §4.19)"
)
QDCOUNT = "Knot drops a QUERY whose QDCOUNT is over 1; we answer FORMERR (RFC 9619 §4)"
DELIBERATE: dict[str, str] = {
    **dict.fromkeys([f"mixedcase.example. {rdtype}" for rdtype in TYPES], RDATA_CASE),
    **dict.fromkeys(
        [f"MixedCase.example. {t}" for t in ("A", "MX", "SRV", "CNAME")]
        + [f"{n} {t}" for n in ("case.example.", "Case.Example.") for t in ("MX", "SRV")]
        + ["case.example. ANY", "other.test. MX"],
        RDATA_CASE,
    ),
    **dict.fromkeys(
        [f"{zone} AXFR tcp" for zone in ("example.", "sub.example.")]
        + [f"{zone} IXFR udp no SOA" for zone in ("example.", "sub.example.")]
        + [f"IXFR udp {serial}" for serial in ("serial 1", "current", "newer")],
        TRANSFER_REFUSED,
    ),
    **dict.fromkeys(
        ["QDCOUNT 2", "QDCOUNT 2 with EDNS", "QDCOUNT 2 same", "QDCOUNT 2 but one"], QDCOUNT
    ),
    "OPT not at root": "Knot ignores it; RFC 6891 §6.1.2 says the OPT owner MUST be root: FORMERR",
    "UPDATE unsigned": "RFC 2136 §3.3 allows REFUSED for an update without permission; Knot "
    "says NOTAUTH",
    "NOTIFY from a stranger": "dns/server.py sets AA on every NOTIFY reply; Knot does not",
}


def compare(knot_port: int, our_port: int) -> tuple[list[str], list[str]]:
    matched, differing = [], []
    for ident, query in enumerate(corpus(), start=1000):
        theirs = summary(ask(KNOT_HOST, knot_port, query, ident))
        ours = summary(ask("127.0.0.1", our_port, query, ident))
        if theirs == ours:
            matched.append(query.label)
        else:
            differing.append(f"{query.label}\n  knot: {theirs}\n  ours: {ours}")
    return matched, differing


@needs_knot
async def test_answers_match_knot(node_factory, tmp_path):
    node = await node_factory(
        listen=("dns",),
        dns={
            "zones_dir": str(tmp_path / "no-zones"),
            "managed_zones": False,
            "zone": [
                {"file": str(DATA / file), "origin": origin} for origin, file in ZONES.items()
            ],
            "nsid": NSID,
            "identity": NSID,
            "version": VERSION,
        },
        limits={"dns_udp_rate": 0, "dns_rrl_rate": 0},
    )
    with running_knot(tmp_path) as knot_port:
        matched, differing = await asyncio.to_thread(compare, knot_port, node.port("dns"))
    total = len(matched) + len(differing)
    # DNS_CONFORMANCE_REPORT=path keeps the differences where a person can read them.
    report = Path(os.environ.get("DNS_CONFORMANCE_REPORT", tmp_path / "differences.txt"))
    report.write_text("\n".join(differing))
    unexpected = [d for d in differing if d.split("\n", 1)[0] not in DELIBERATE]
    print(
        f"\nconformance with Knot: {len(matched)} of {total} match, "
        f"{len(differing) - len(unexpected)} differ on purpose; differences in {report}"
    )
    assert not unexpected, f"{len(unexpected)} of {total} differ from Knot:\n" + "\n".join(
        unexpected[:20]
    )

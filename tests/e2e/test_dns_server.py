"""The node's DNS service, driven by dig, nsupdate and dnspython."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import shutil
import subprocess
from pathlib import Path

import dns.asyncquery
import dns.asyncresolver
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.resolver
import dns.tsigkeyring
import dns.update
import pytest
from tests.e2e.test_dns_resolver import HINTS, start_hierarchy

from mailstack.errors import ConfigError

EXAMPLE = Path(__file__).parent.parent / "unit" / "dns" / "data" / "example.zone"
SECRET = base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
KEY = {"name": "update-key.", "secret": SECRET, "algorithm": "hmac-sha256"}

needs_dig = pytest.mark.skipif(shutil.which("dig") is None, reason="dig (dnsutils) not installed")


def dig(port: int, *args: str, host: str = "127.0.0.1") -> str:
    result = subprocess.run(
        ["dig", f"@{host}", "-p", str(port), "+time=2", "+tries=1", *args],
        capture_output=True,
        text=True,
        timeout=20,
    )
    return result.stdout


async def adig(port: int, *args: str) -> str:
    return await asyncio.to_thread(dig, port, *args)


@pytest.fixture
async def dns_node(node_factory, tmp_path):
    async def start(**dns_table):
        data = tmp_path / "dnsdata"
        (data / "zones").mkdir(parents=True, exist_ok=True)
        shutil.copy(EXAMPLE, data / "zones" / "example.zone")
        # No recursion unless a test asks: nothing may ever reach the real roots.
        table = {"zones_dir": str(data / "zones"), "recursion": [], **dns_table}
        node = await node_factory(listen=("dns",), dns=table)
        return node, node.port("dns")

    return start


def answer_lines(output: str) -> list[str]:
    lines = output.split(";; ANSWER SECTION:\n", 1)
    if len(lines) < 2:
        return []
    return [line for line in lines[1].split("\n\n", 1)[0].splitlines() if line]


@needs_dig
@pytest.mark.parametrize(
    ("qname", "qtype", "expected"),
    [
        ("example", "A", "192.0.2.1"),
        ("mail.example", "AAAA", "2001:db8::25"),
        ("example", "MX", "10 mail.example."),
        ("example", "TXT", '"v=spf1 mx -all"'),
        ("example", "NS", "ns1.example."),
        ("example", "SOA", "2024010101"),
        ("www.example", "CNAME", "web.example."),
        ("_imap._tcp.example", "SRV", "0 1 143 mail.example."),
        ("1.2.0.192.in-addr.example", "PTR", "mail.example."),
        ("anything.wild.example", "A", "192.0.2.99"),
    ],
)
async def test_dig_answers(dns_node, qname, qtype, expected):
    _, port = await dns_node()
    out = await adig(port, "+norec", qname, qtype)
    assert "status: NOERROR" in out and " aa" in out.split("flags:")[1].split(";")[0]
    assert any(expected in line for line in answer_lines(out)), out


@needs_dig
async def test_dig_negative_answers(dns_node):
    _, port = await dns_node()
    out = await adig(port, "+norec", "nope.example", "A")
    assert "status: NXDOMAIN" in out and "AUTHORITY SECTION" in out and "SOA" in out
    out = await adig(port, "+norec", "web.example", "MX")
    assert "status: NOERROR" in out and "ANSWER: 0" in out and "SOA" in out


@needs_dig
async def test_truncation_then_tcp(dns_node):
    _, port = await dns_node()
    udp = await adig(port, "+norec", "+ignore", "+bufsize=512", "big.example", "TXT")
    assert " tc" in udp.split("flags:")[1].split(";")[0]
    full = await adig(port, "+norec", "+bufsize=512", "big.example", "TXT")
    assert len(answer_lines(full)) == 5


@needs_dig
async def test_axfr_by_dig_is_refused_without_acl(dns_node):
    _, port = await dns_node()
    out = await adig(port, "example", "AXFR")
    assert "Transfer failed" in out or "REFUSED" in out


@needs_dig
async def test_axfr_by_dig(dns_node):
    _, port = await dns_node(allow_transfer=["127.0.0.0/8"])
    out = await adig(port, "example", "AXFR")
    records = [line for line in out.splitlines() if line and not line.startswith(";")]
    assert records[0].split()[3] == "SOA" and records[-1].split()[3] == "SOA"
    assert any("192.0.2.200" in line for line in records)  # glue below the cut
    assert len(records) == 29  # 28 records and the closing SOA


async def test_dnspython_stub_resolver(dns_node):
    _, port = await dns_node()
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = port
    answer = await resolver.resolve("www.example.", "A")
    assert [r.address for r in answer] == ["192.0.2.80"]
    with pytest.raises(dns.resolver.NXDOMAIN):
        await resolver.resolve("nope.example.", "A")


async def test_refused_outside_our_zones_without_recursion(dns_node):
    _, port = await dns_node(recursion=["192.0.2.0/24"])
    query = dns.message.make_query("gaia.cs.umass.edu.", "A")
    reply = await dns.asyncquery.udp(query, "127.0.0.1", port=port, timeout=2)
    assert reply.rcode() == dns.rcode.REFUSED
    assert not reply.flags & dns.flags.RA


async def test_recursion_for_loopback_clients(dns_node, tmp_path):
    servers, hierarchy_port = await start_hierarchy()
    try:
        hints = tmp_path / "root.hints"
        hints.write_text(HINTS)
        _, port = await dns_node(
            recursion=["127.0.0.0/8"],
            resolver={"root_hints": str(hints), "port": hierarchy_port},
        )
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = ["127.0.0.1"]
        resolver.port = port
        answer = await resolver.resolve("gaia.cs.umass.edu.", "A")
        assert [r.address for r in answer] == ["128.119.245.12"]
        assert answer.response.flags & dns.flags.RA
        again = await resolver.resolve("gaia.cs.umass.edu.", "A")
        assert [r.address for r in again] == ["128.119.245.12"]
    finally:
        for server in servers:
            await server.stop()


async def test_edns_badvers_and_notimp(dns_node):
    _, port = await dns_node()
    query = dns.message.make_query("example.", "A", use_edns=1)
    reply = await dns.asyncquery.udp(query, "127.0.0.1", port=port, timeout=2)
    assert reply.rcode() == dns.rcode.BADVERS and reply.edns == 0
    query = dns.message.make_query("example.", "A")
    query.set_opcode(2)  # STATUS
    reply = await dns.asyncquery.udp(query, "127.0.0.1", port=port, timeout=2)
    assert reply.rcode() == dns.rcode.NOTIMP


async def test_tcp_pipelining(dns_node):
    _, port = await dns_node()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    names = ["example.", "www.example.", "nope.example.", "mail.example."]
    queries = [dns.message.make_query(n, "A") for n in names]
    for query in queries:
        wire = query.to_wire()
        writer.write(len(wire).to_bytes(2, "big") + wire)
    await writer.drain()
    replies = {}
    for _ in queries:
        length = int.from_bytes(await asyncio.wait_for(reader.readexactly(2), 5), "big")
        reply = dns.message.from_wire(await reader.readexactly(length))
        replies[reply.id] = reply
    writer.close()
    assert {q.id for q in queries} == set(replies)
    nx = next(q for q in queries if q.question[0].name.to_text() == "nope.example.")
    assert replies[nx.id].rcode() == dns.rcode.NXDOMAIN


async def test_managed_zone_changes_show_without_restart(dns_node):
    node, port = await dns_node()
    await node.store.zone_create(
        "mail.test", nameservers=["ns.mail.test."], hostmaster="hostmaster@mail.test"
    )
    await node.store.record_add("mail.test", "@", "MX", "10 mx.mail.test.")
    query = dns.message.make_query("mail.test.", "MX")
    for _ in range(50):
        reply = await dns.asyncquery.udp(query, "127.0.0.1", port=port, timeout=2)
        if reply.answer:
            break
        await asyncio.sleep(0.1)
    assert reply.answer[0][0].exchange.to_text() == "mx.mail.test."
    assert reply.flags & dns.flags.AA


@pytest.mark.skipif(shutil.which("nsupdate") is None, reason="nsupdate not installed")
async def test_nsupdate_with_tsig_is_durable(dns_node):
    node, port = await dns_node(key=[KEY], allow_update=["update-key."])
    await node.store.zone_create(
        "dyn.test", nameservers=["ns.dyn.test."], hostmaster="hostmaster@dyn.test"
    )
    await node.services["dns"]._poll_managed()
    script = (
        f"server 127.0.0.1 {port}\nzone dyn.test\n"
        "update add host.dyn.test. 300 A 192.0.2.44\nsend\n"
    )
    result = await asyncio.to_thread(
        subprocess.run,
        ["nsupdate", "-y", f"hmac-sha256:update-key:{SECRET}"],
        input=script,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 0, result.stderr
    zone = await node.store.zone_get("dyn.test")
    assert any(r.name == "host.dyn.test." and r.rdata == "192.0.2.44" for r in zone.records)
    assert zone.serial == 2
    reply = await dns.asyncquery.udp(
        dns.message.make_query("host.dyn.test.", "A"), "127.0.0.1", port=port, timeout=2
    )
    assert reply.answer[0][0].address == "192.0.2.44"


async def test_update_without_key_is_refused(dns_node):
    node, port = await dns_node(key=[KEY], allow_update=["update-key."])
    update = dns.update.UpdateMessage("example.")
    update.add("host.example.", 300, "A", "192.0.2.45")
    reply = await dns.asyncquery.tcp(update, "127.0.0.1", port=port, timeout=2)
    assert reply.rcode() == dns.rcode.REFUSED


async def test_update_zone_section_must_be_one_soa(dns_node):
    """RFC 2136 §3.1.1: ZOCOUNT 1 and type SOA, else FORMERR; then NOTAUTH
    for a zone we do not serve."""
    node, port = await dns_node(key=[KEY], allow_update=["update-key."])
    keyring = dns.tsigkeyring.from_text({"update-key.": ("hmac-sha256", SECRET)})
    wrong_type = dns.update.UpdateMessage("example.")  # a FORMERR cannot be signed
    wrong_type.question[0].rdtype = dns.rdatatype.A
    wrong_type.add("host.example.", 300, "A", "192.0.2.45")
    reply = await dns.asyncquery.tcp(wrong_type, "127.0.0.1", port=port, timeout=2)
    assert reply.rcode() == dns.rcode.FORMERR
    elsewhere = dns.update.UpdateMessage("not-ours.test.", keyring=keyring)
    elsewhere.add("host.not-ours.test.", 300, "A", "192.0.2.45")
    reply = await dns.asyncquery.tcp(elsewhere, "127.0.0.1", port=port, timeout=2)
    assert reply.rcode() == dns.rcode.NOTAUTH


async def test_update_file_zone_with_tsig(dns_node, tmp_path):
    node, port = await dns_node(key=[KEY], allow_update=["update-key."])
    keyring = dns.tsigkeyring.from_text({"update-key.": ("hmac-sha256", SECRET)})
    update = dns.update.UpdateMessage("example.", keyring=keyring)
    update.present("www.example.", "CNAME")
    update.replace("web.example.", 60, "A", "192.0.2.81")
    reply = await dns.asyncquery.tcp(update, "127.0.0.1", port=port, timeout=2)
    assert reply.rcode() == dns.rcode.NOERROR
    text = (tmp_path / "dnsdata" / "zones" / "example.zone").read_text()
    assert "192.0.2.81" in text and "192.0.2.80" not in text
    failing = dns.update.UpdateMessage("example.", keyring=keyring)
    failing.absent("web.example.")
    failing.delete("mail.example.")
    reply = await dns.asyncquery.tcp(failing, "127.0.0.1", port=port, timeout=2)
    assert reply.rcode() == dns.rcode.YXDOMAIN


async def test_notify_and_transfer_to_a_secondary(node_factory, dns_node, tmp_path, monkeypatch):
    import mailstack.dns.server as server_module

    transfers: list[int] = []
    real = server_module.transfer_replies

    def spy(catalog, query, client):
        transfers.append(query.question[0].rdtype)
        return real(catalog, query, client)

    monkeypatch.setattr(server_module, "transfer_replies", spy)
    primary, primary_port = await dns_node(allow_transfer=["127.0.0.0/8"])
    secondary = await node_factory(
        listen=("dns",),
        dns={
            "zones_dir": str(tmp_path / "none"),
            "recursion": [],
            "secondary": [{"origin": "example.", "primaries": [f"127.0.0.1:{primary_port}"]}],
        },
    )
    secondary_port = secondary.port("dns")
    # The secondary's port is known only now: tell the primary to NOTIFY it.
    service = primary.services["dns"]
    service.config = dataclasses.replace(service.config, notify=(("127.0.0.1", secondary_port),))
    query = dns.message.make_query("web.example.", "A")

    async def secondary_answer() -> dns.message.Message:
        for _ in range(50):
            reply = await dns.asyncquery.udp(query, "127.0.0.1", port=secondary_port, timeout=2)
            if reply.answer:
                return reply
            await asyncio.sleep(0.1)
        return reply

    first = await secondary_answer()
    assert first.answer[0][0].address == "192.0.2.80"
    # A change on the primary: NOTIFY makes the secondary pull the new serial.
    zone = service.catalog.authority.zones[dns.name.from_text("example.")]
    from mailstack.dns.zone import rrset_from_text

    changed = zone.with_changes(
        [zone.get(dns.name.from_text("web.example."), dns.rdatatype.A)],
        [rrset_from_text(dns.name.from_text("web.example."), 60, "A", "192.0.2.90", dns.name.root)],
    ).with_serial(zone.serial + 1)
    service.catalog.publish(changed)
    for _ in range(50):
        reply = await dns.asyncquery.udp(query, "127.0.0.1", port=secondary_port, timeout=2)
        if reply.answer and reply.answer[0][0].address == "192.0.2.90":
            break
        await asyncio.sleep(0.1)
    assert reply.answer[0][0].address == "192.0.2.90"
    saved = secondary.config.data_dir / "secondary" / "example.zone"
    assert "192.0.2.90" in saved.read_text()
    # The second pull was incremental: the primary served IXFR from its journal.
    assert any(q == dns.rdatatype.IXFR for q in transfers)


@needs_dig
async def test_ixfr_by_dig_from_the_store_journal(dns_node):
    node, port = await dns_node(allow_transfer=["127.0.0.0/8"])
    store = node.store
    await store.zone_create(
        "ixfr.test", nameservers=["ns.ixfr.test."], hostmaster="hostmaster@ixfr.test"
    )
    await store.record_add("ixfr.test", "a", "A", "192.0.2.1")
    await store.record_add("ixfr.test", "b", "A", "192.0.2.2")
    service = node.services["dns"]
    # As after a restart: the journal comes from the store, not from memory.
    service.catalog.journals.clear()
    service._managed_serials.clear()
    await service._poll_managed()
    out = await adig(port, "ixfr.test", "IXFR=1")
    records = [line.split() for line in out.splitlines() if line and not line.startswith(";")]
    soas = [r[6] for r in records if r[3] == "SOA"]
    assert soas == ["3", "1", "2", "2", "3", "3"], out
    assert [r[4] for r in records if r[3] == "A"] == ["192.0.2.1", "192.0.2.2"]
    current = await adig(port, "ixfr.test", "IXFR=3")
    assert [
        line.split()[3] for line in current.splitlines() if line and not line.startswith(";")
    ] == ["SOA"]


async def test_serve_trace_prints_each_exchange(node_factory, tmp_path, capsys):
    zones = tmp_path / "tracezones"
    zones.mkdir()
    shutil.copy(EXAMPLE, zones / "example.zone")
    node = await node_factory(
        listen=("dns",), trace=True, dns={"zones_dir": str(zones), "recursion": []}
    )
    query = dns.message.make_query("www.example.", "A")
    await dns.asyncquery.udp(query, "127.0.0.1", port=node.port("dns"), timeout=2)
    out = capsys.readouterr().out
    assert f"C: query {query.id} www.example. IN A [rd]" in out
    assert f"S: NOERROR {query.id} [qr aa rd]: www.example. CNAME web.example.;" in out


async def test_bad_dropped_in_zone_file_is_skipped_configured_one_fails(node_factory, tmp_path):
    zones = tmp_path / "badzones"
    zones.mkdir()
    shutil.copy(EXAMPLE, zones / "example.zone")
    (zones / "broken.test.zone").write_text("@ 60 IN A 192.0.2.1\n")  # no SOA
    node = await node_factory(listen=("dns",), dns={"zones_dir": str(zones), "recursion": []})
    reply = await dns.asyncquery.udp(
        dns.message.make_query("web.example.", "A"), "127.0.0.1", port=node.port("dns"), timeout=2
    )
    assert reply.answer
    with pytest.raises(ConfigError, match="broken.test.zone"):
        await node_factory(
            listen=("dns",),
            dns={
                "zones_dir": str(tmp_path / "none"),
                "recursion": [],
                "zone": [{"file": str(zones / "broken.test.zone")}],
            },
        )


@needs_dig
async def test_axfr_with_tsig_key(dns_node):
    xfr_key = {"name": "xfr-key.", "secret": SECRET}
    _, port = await dns_node(key=[xfr_key], allow_transfer=["xfr-key."])
    out = await adig(port, "-y", f"hmac-sha256:xfr-key:{SECRET}", "example", "AXFR")
    lines = [line for line in out.splitlines() if line and not line.startswith(";")]
    records = [line for line in lines if line.split()[3] != "TSIG"]
    assert len(records) == 29
    assert len(lines) - len(records) == 1  # the reply is signed (dig verifies it)
    assert "failure" not in out.lower()
    unsigned = await adig(port, "example", "AXFR")
    assert "Transfer failed" in unsigned


CHAIN_ROOT = """
$ORIGIN .
$TTL 3600
@ SOA a.root. hostmaster.root. 1 3600 600 86400 60
@ NS a.root.
a.root. A 127.0.0.41
edu. NS ns.edu.
ns.edu. A 127.0.0.42
"""
CHAIN_EDU = """
$ORIGIN edu.
$TTL 3600
@ SOA ns hostmaster 1 3600 600 86400 60
@ NS ns
ns A 127.0.0.42
umass NS dns.umass
dns.umass A 127.0.0.43
"""
CHAIN_UMASS = """
$ORIGIN umass.edu.
$TTL 300
@ SOA dns hostmaster 1 3600 600 86400 60
@ NS dns
dns A 127.0.0.43
gaia.cs A 127.0.0.50
"""


async def test_chain_passes_a_recursive_query_down_the_hierarchy(tmp_path):
    # [dns.resolver] chain: the root, asked to recurse, asks edu with RD set,
    # which asks umass.edu: each hop is seen by the next as its client, and
    # the answer comes back the same way (RFC 1034 §4.3.1, the lectures'
    # recursive figure). An iterative query still gets the referral.
    from support import TestNode, make_config, open_fast_store

    layout = [("127.0.0.41", CHAIN_ROOT), ("127.0.0.42", CHAIN_EDU), ("127.0.0.43", CHAIN_UMASS)]
    hints = tmp_path / "root.hints"
    hints.write_text(". 3600000 NS a.root.\na.root. 3600000 A 127.0.0.41\n")
    seen: list[tuple[str, str]] = []
    for _attempt in range(5):
        nodes: list[TestNode] = []
        seen.clear()
        port = 0
        try:
            for host, zone in layout:
                data = tmp_path / f"{host}-{_attempt}"
                (data / "zones").mkdir(parents=True)
                (data / "zones" / "zone.zone").write_text(zone)
                table = {
                    "listen": {"dns": f"{host}:{port}"},
                    "dns": {
                        "zones_dir": "zones",
                        "recursion": ["127.0.0.0/8"],
                        "resolver": {
                            "root_hints": str(hints),
                            "chain": True,
                            "source": host,
                            "port": port or 53,
                        },
                    },
                }
                config = make_config(data, ("dns",), f"ns.{host}", host, table)
                node = TestNode(config, store_factory=open_fast_store)
                await node.start()
                nodes.append(node)
                port = port or node.port("dns")
                service = node.services["dns"]
                service.server.on_exchange = lambda client, _t, _q, _r, _w, me=host: seen.append(
                    (client, me)
                )
            break
        except OSError:
            for node in nodes:
                await node.stop()
    try:
        # The root learnt its own port only once it listened: its resolver
        # passes on to the same port as everyone's.
        nodes[0].services["dns"].resolver.port = port
        query = dns.message.make_query("gaia.cs.umass.edu.", "A")
        reply = await dns.asyncquery.udp(query, "127.0.0.41", port=port, timeout=5)
        assert [r.address for r in reply.answer[0]] == ["127.0.0.50"]
        assert reply.flags & dns.flags.RA and not reply.flags & dns.flags.AA
        # (client, server) as each reply is ready: the deepest first.
        assert seen == [
            ("127.0.0.42", "127.0.0.43"),
            ("127.0.0.41", "127.0.0.42"),
            ("127.0.0.1", "127.0.0.41"),
        ]
        iterative = dns.message.make_query("gaia.cs.umass.edu.", "A")
        iterative.flags &= ~dns.flags.RD
        referral = await dns.asyncquery.udp(iterative, "127.0.0.41", port=port, timeout=5)
        assert not referral.answer and referral.authority[0].name == dns.name.from_text("edu.")
    finally:
        for node in nodes:
            await node.stop()

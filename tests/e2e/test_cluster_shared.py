"""What two nodes on one PostgreSQL store share beyond mail: a managed
zone's change is announced to a secondary once (not once per node), and a
JMAP upload made through one node is usable through the other."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import dns.asyncquery
import dns.message
import dns.opcode
import dns.rdatatype
import pytest

from support import PostgresDatabase, TestNode, make_config

HOSTS = ("127.0.0.31", "127.0.0.32")
USER, PASSWORD = "bob@hamburger.edu", "hungry"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}
MAIL = "urn:ietf:params:jmap:mail"
CORE = "urn:ietf:params:jmap:core"


class NotifyCounter(asyncio.DatagramProtocol):
    """A secondary's UDP port that only counts the NOTIFYs it is sent
    (RFC 1996), answering each so that the primary does not send it again."""

    def __init__(self) -> None:
        self.serials: list[int] = []
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        query = dns.message.from_wire(data)
        if query.opcode() != dns.opcode.NOTIFY:
            return
        soa = [rrset for rrset in query.answer if rrset.rdtype == dns.rdatatype.SOA]
        self.serials.append(soa[0][0].serial if soa else 0)
        reply = dns.message.make_response(query)
        self.transport.sendto(reply.to_wire(), addr)


@pytest.fixture
async def secondary() -> AsyncIterator[tuple[NotifyCounter, int]]:
    loop = asyncio.get_running_loop()
    transport, counter = await loop.create_datagram_endpoint(
        NotifyCounter, local_addr=("127.0.0.1", 0)
    )
    try:
        yield counter, transport.get_extra_info("sockname")[1]
    finally:
        transport.close()


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    database = PostgresDatabase()
    url = await database.create()
    started: list[TestNode] = []

    async def start(listen: tuple[str, ...], **tables: Any) -> list[TestNode]:
        for n, host in enumerate(HOSTS):
            config = make_config(
                tmp_path / f"node{n}", listen, host=host,
                table={"store": {"backend": "postgresql", "url": url, "pool_size": 4}, **tables},
            )
            node = TestNode(config)
            await node.start()
            started.append(node)
        return started

    try:
        yield start
    finally:
        for node in started:
            await node.stop()
        await database.drop()


async def soa_serial(node: TestNode, origin: str) -> int:
    query = dns.message.make_query(origin, "SOA")
    reply = await dns.asyncquery.udp(query, node.config.listen["dns"][0], port=node.port("dns"),
                                     timeout=2)
    return int(reply.answer[0][0].serial) if reply.answer else 0


async def served_everywhere(nodes: list[TestNode], origin: str, serial: int) -> None:
    """Until every node answers the serial (each looks at the store once a second)."""
    for _ in range(100):
        if all([await soa_serial(node, origin) == serial for node in nodes]):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not every node serves serial {serial}")


async def test_a_managed_zone_change_is_notified_once_across_nodes(cluster, secondary) -> None:
    counter, port = secondary
    nodes = await cluster(("dns",), dns={"recursion": [], "notify": [f"127.0.0.1:{port}"]})
    store = nodes[0].store
    await store.zone_create("shared.test", nameservers=["ns.shared.test."],
                            hostmaster="hostmaster@shared.test")
    await served_everywhere(nodes, "shared.test.", 1)
    for serial in (2, 3):
        assert await store.record_add("shared.test", "www", "A", f"192.0.2.{serial}") == serial
        await served_everywhere(nodes, "shared.test.", serial)
    # Both nodes published every serial; a duplicate would come at most a
    # poll period later. Give it a few.
    for _ in range(30):
        await asyncio.sleep(0.1)
    assert sorted(counter.serials) == [1, 2, 3]


async def test_notify_claims_once_per_serial(cluster) -> None:
    nodes = await cluster(("smtp",))
    a, b = (node.store for node in nodes)
    claims = await asyncio.gather(*(s.zone_notify_claim("z.test", 7) for s in (a, b, a, b)))
    assert sorted(claims) == [False, False, False, True]
    assert await b.zone_notify_claim("Z.TEST.", 8) is True
    assert await a.zone_notify_claim("z.test", 8) is False


async def jmap_session(client: aiohttp.ClientSession, node: TestNode) -> dict[str, Any]:
    host = node.config.listen["http"][0]
    async with client.get(f"http://{host}:{node.port('http')}/jmap/session", headers=AUTH) as r:
        assert r.status == 200
        return dict(await r.json())


async def test_an_upload_through_one_node_is_used_through_the_other(cluster) -> None:
    a, b = await cluster(("http",))
    await a.add_user(USER, PASSWORD)
    # Larger than a row of the store (STORE_CHUNK): it comes back whole and in order.
    attachment = os.urandom(2 * 1024 * 1024 + 12345)
    message = (f"From: alice@crepes.fr\r\nTo: {USER}\r\nSubject: uploaded on A\r\n"
               "\r\nimported on B\r\n").encode()
    async with aiohttp.ClientSession() as client:
        on_a, on_b = await jmap_session(client, a), await jmap_session(client, b)
        account = next(iter(on_a["accounts"]))
        upload = on_a["uploadUrl"].replace("{accountId}", account)
        made = {}
        for name, data, media_type in (("attachment", attachment, "application/pdf"),
                                       ("message", message, "message/rfc822")):
            async with client.post(upload, data=data,
                                   headers={**AUTH, "Content-Type": media_type}) as r:
                assert r.status == 201
                made[name] = await r.json()
        assert made["attachment"]["size"] == len(attachment)
        download = (on_b["downloadUrl"].replace("{accountId}", account)
                    .replace("{blobId}", made["attachment"]["blobId"])
                    .replace("{name}", "report.pdf").replace("{type}", "application/pdf"))
        async with client.get(download, headers=AUTH) as r:
            assert r.status == 200
            assert await r.read() == attachment

        async def call_b(*calls: list[Any]) -> list[Any]:
            body = {"using": [CORE, MAIL], "methodCalls": list(calls)}
            async with client.post(on_b["apiUrl"], json=body, headers=AUTH) as r:
                assert r.status == 200
                return list((await r.json())["methodResponses"])

        (_, boxes, _), = await call_b(["Mailbox/get", {"accountId": account}, "m"])
        inbox = next(box["id"] for box in boxes["list"] if box["role"] == "inbox")
        (_, imported, _), = await call_b(["Email/import", {
            "accountId": account,
            "emails": {"e": {"blobId": made["message"]["blobId"], "mailboxIds": {inbox: True}}},
        }, "i"])
        assert imported["created"]["e"]["size"] == len(message)
        (_, copied, _), = await call_b(["Blob/copy", {
            "fromAccountId": account, "accountId": account,
            "blobIds": [made["attachment"]["blobId"]],
        }, "c"])
        copy_id = copied["copied"][made["attachment"]["blobId"]]
    # The copy made on B is a shared upload too: A reads it back whole.
    async with aiohttp.ClientSession() as client:
        again = on_a["downloadUrl"].replace("{accountId}", account).replace(
            "{blobId}", copy_id).replace("{name}", "x").replace("{type}", "application/pdf")
        async with client.get(again, headers=AUTH) as r:
            assert r.status == 200
            assert await r.read() == attachment


async def test_an_upload_cut_off_or_over_the_limit_leaves_nothing(cluster) -> None:
    a, b = await cluster(("http",), jmap={"max_size_upload": 3 * 1024 * 1024})
    await a.add_user(USER, PASSWORD)

    async def too_much() -> Any:
        for _ in range(4):
            yield b"x" * (1024 * 1024)

    async with aiohttp.ClientSession() as client:
        on_a = await jmap_session(client, a)
        account = next(iter(on_a["accounts"]))
        upload = on_a["uploadUrl"].replace("{accountId}", account)
        async with client.post(upload, data=too_much(), headers=AUTH) as r:
            assert r.status == 413
    assert b.store is not None
    assert await b.store.upload_sweep(float("inf")) == 0  # no row left behind


async def test_the_login_cache_is_per_node_and_a_password_change_reaches_every_node(
    cluster,
) -> None:
    import imaplib

    a, b = await cluster(("imap",))
    await a.add_user(USER, PASSWORD)

    def login(node: TestNode, password: str) -> bool:
        c = imaplib.IMAP4(node.config.listen["imap"][0], node.port("imap"), timeout=20)
        try:
            c.login(USER, password)
        except imaplib.IMAP4.error:
            return False
        finally:
            c.shutdown()
        return True

    assert await asyncio.to_thread(login, b, PASSWORD)  # B verifies and keeps it
    assert await asyncio.to_thread(login, a, PASSWORD)  # A verifies it on its own
    assert a.store is not None
    await a.store.set_password(USER, "changed-on-a")
    # B's kept login no longer matches the stored hash: the old password fails there.
    assert not await asyncio.to_thread(login, b, PASSWORD)
    assert await asyncio.to_thread(login, b, "changed-on-a")

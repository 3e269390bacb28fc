"""Backscatter (issue 15 item 6), with smtplib against an MX whose resolver
asks a mailstack DNS server holding the senders' SPF, DKIM and DMARC records:
a "delivered" DSN (NOTIFY=SUCCESS) goes only to a sender SPF or aligned
DKIM proved; the header section is capped at receipt."""

from __future__ import annotations

import asyncio
import smtplib

import pytest

from mailstack.msgauth import records

from support import wait_served

SENDER_IP = "127.0.0.2"  # tarte.fr's mail host: SPF passes from here
FORGER_IP = "127.0.0.4"  # in no SPF record
RECEIVER_IP = "127.0.0.3"

MESSAGE = (
    b"From: Alice <alice@tarte.fr>\r\nTo: bob@hamburger.edu\r\nSubject: tarte\r\n"
    b"Message-ID: <b1@tarte.fr>\r\n\r\nUne tarte?\r\n"
)



@pytest.fixture
async def receiver(node_factory):
    dns_node = await node_factory(listen=("dns",), hostname="ns.test", dns={"recursion": []})
    for domain, host, address in (
        ("tarte.fr", "mail.tarte.fr", SENDER_IP),
        ("hamburger.edu", "mx.hamburger.edu", RECEIVER_IP),
    ):
        wanted = records.mail_records(domain, host, addresses=[address], keys=[])
        await records.publish(dns_node.store, domain, wanted, nameserver="ns.test")
    await wait_served(dns_node.port("dns"), "_dmarc.hamburger.edu")
    node = await node_factory(
        listen=("smtp",),
        hostname="mx.hamburger.edu",
        host=RECEIVER_IP,
        dns={"resolver": {"forwarders": [f"127.0.0.1:{dns_node.port('dns')}"]}},
        limits={"header_size": 4096, "dsn_returned_size": 2048},
    )
    await node.add_user("bob@hamburger.edu")
    return node


def send(node, data: bytes, source: str) -> int:
    with smtplib.SMTP(
        RECEIVER_IP, node.port("smtp"), source_address=(source, 0), timeout=30
    ) as client:
        client.ehlo("mail.tarte.fr")
        client.mail("alice@tarte.fr", ["ENVID=tarte-1"])
        orcpt = "ORCPT=rfc822;bob@hamburger.edu"
        assert client.rcpt("bob@hamburger.edu", ["NOTIFY=SUCCESS", orcpt])[0] == 250
        return client.data(data)[0]


async def test_a_verified_sender_gets_its_delivered_dsn(receiver):
    assert await asyncio.to_thread(send, receiver, MESSAGE, SENDER_IP) == 250
    [dsn] = await receiver.store.queue_list()
    assert dsn.mail_from == ""  # RFC 3461 §6.2: a DSN has a null reverse-path
    assert [r.address for r in dsn.recipients] == ["alice@tarte.fr"]
    report = await receiver.store.queue_data(dsn.id)
    assert b"multipart/report" in report and b'report-type="delivery-status"' in report
    assert b"Action: delivered" in report and b"Original-Envelope-Id: tarte-1" in report


async def test_once_delivered_a_dsn_that_cannot_be_queued_still_gets_250(receiver, monkeypatch):
    """A failure after the commit must not make the client send again."""
    from mailstack.errors import StoreError

    async def broken(*args, **kwargs):
        raise StoreError("queue on fire")

    monkeypatch.setattr(receiver.queue, "report_delivered", broken)
    assert await asyncio.to_thread(send, receiver, MESSAGE, SENDER_IP) == 250
    bob = await receiver.store.account_get("bob@hamburger.edu")
    inbox = await receiver.store.mailbox_get(bob.id, "INBOX")
    assert len(await receiver.store.messages(inbox.id)) == 1


async def test_a_forged_sender_gets_no_delivered_dsn(receiver):
    # SPF fails from the forger's address; the message is still delivered
    # (tarte.fr's DMARC policy is none), but no one is told.
    assert await asyncio.to_thread(send, receiver, MESSAGE, FORGER_IP) == 250
    assert await receiver.store.queue_list() == []


async def test_the_header_section_is_capped_at_receipt(receiver):
    big = b"X-Filler: " + b"y" * 100 + b"\r\n"
    code = await asyncio.to_thread(send, receiver, big * 50 + MESSAGE, SENDER_IP)
    assert code == 552
    assert await receiver.store.queue_list() == []


async def test_a_dsn_returns_at_most_dsn_returned_size_of_the_header(receiver):
    big = b"X-Filler: " + b"y" * 100 + b"\r\n"
    assert await asyncio.to_thread(send, receiver, big * 30 + MESSAGE, SENDER_IP) == 250
    [dsn] = await receiver.store.queue_list()
    report = await receiver.store.queue_data(dsn.id)
    returned = report.split(b"Content-Type: text/rfc822-headers", 1)[1]
    assert returned.count(b"X-Filler") < 20
    assert len(report) < 2048 + 3000

"""Mail out end to end: alice@crepes.fr submits, her node queues the message,
finds hamburger.edu's MX through a mailstack DNS server and delivers over SMTP
to bob@hamburger.edu's node; retries, bounces, null MX, relay refusal.

Nodes: crepes.fr on 127.0.0.2, hamburger.edu on 127.0.0.3, DNS on 127.0.0.4.
The queue's clock is a fake: retries happen when the test moves it, never by
sleeping.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email
import smtplib
import socket
import ssl
import threading
from email import policy

import dns.name
import pytest
from aiosmtpd.controller import Controller

from mailstack.store import QUEUED

MESSAGE = (
    b"From: Alice <alice@crepes.fr>\r\nTo: bob@hamburger.edu\r\nSubject: ketchup\r\n\r\n"
    b"Do you like ketchup?\r\nHow about pickles?\r\n"
)

ZONE = """$ORIGIN {domain}.
$TTL 300
@ IN SOA ns.{domain}. hostmaster.{domain}. 1 3600 600 86400 300
@ IN NS ns.{domain}.
ns IN A 127.0.0.4
@ IN MX 10 mail.{domain}.
mail IN A {address}
"""


class FakeClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeResolver:
    """MX and A answers from a table (the queue takes its resolver as an argument)."""

    def __init__(self, mx: dict[str, list[tuple[int, str]]], hosts: dict[str, list[str]]):
        self.mx_records = mx
        self.hosts = hosts

    async def mx(self, domain):
        return [(p, dns.name.from_text(h)) for p, h in self.mx_records[domain]]

    async def addresses(self, host):
        return self.hosts.get(host, [])


def tls_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def submit(
    node, rcpts, message=MESSAGE, sender="alice@crepes.fr", mail_options=(), rcpt_options=()
):
    def send():
        with smtplib.SMTP("127.0.0.2", node.port("submission"), timeout=10) as s:
            s.starttls(context=tls_context())
            s.login("alice@crepes.fr", "hungry")
            return s.sendmail(sender, rcpts, message, list(mail_options), list(rcpt_options))

    return asyncio.to_thread(send)


async def mailbox(node, address, name="INBOX") -> list[bytes]:
    account = await node.store.account_get(address)
    box = await node.store.mailbox_get(account.id, name)
    return [
        await node.store.message_bytes(box.id, m.uid) for m in await node.store.messages(box.id)
    ]


@pytest.fixture
async def world(node_factory, tmp_path):
    """DNS on 127.0.0.4 with both zones, hamburger.edu's MX, crepes.fr's MSA."""
    zones = tmp_path / "zones"
    zones.mkdir()
    for domain, address in (("crepes.fr", "127.0.0.2"), ("hamburger.edu", "127.0.0.3")):
        (zones / f"{domain}.zone").write_text(ZONE.format(domain=domain, address=address))
    dns_node = await node_factory(
        listen=("dns",), hostname="ns.test", host="127.0.0.4", dns={"zones_dir": str(zones)}
    )
    bob = await node_factory(listen=("smtp",), hostname="mail.hamburger.edu", host="127.0.0.3")
    await bob.add_user("bob@hamburger.edu")
    alice = await node_factory(
        listen=("submission", "smtp"),
        hostname="mail.crepes.fr",
        host="127.0.0.2",
        queue={"port": bob.port("smtp")},
        dns={"resolver": {"forwarders": [f"127.0.0.4:{dns_node.port('dns')}"]}},
    )
    await alice.add_user("alice@crepes.fr")
    clock = FakeClock()
    alice.queue.clock = clock
    return alice, bob, clock


async def test_submitted_mail_reaches_the_remote_mailbox_by_mx(world):
    alice, bob, _clock = world
    assert await submit(alice, ["bob@hamburger.edu"]) == {}
    await alice.queue.run_once()
    [message] = await mailbox(bob, "bob@hamburger.edu")
    head, _, body = message.partition(b"\r\n\r\n")
    assert body == b"Do you like ketchup?\r\nHow about pickles?\r\n"
    assert head.startswith(b"Return-Path: <alice@crepes.fr>\r\nDelivered-To: bob@hamburger.edu")
    # Two hops: the MSA's Received and the MX's (over opportunistic STARTTLS).
    assert b"by mail.crepes.fr (mailstack) with ESMTPSA" in head
    assert b"by mail.hamburger.edu (mailstack) with ESMTPS" in head
    # Each hop says how TLS protected it (as Postfix writes it).
    assert head.count(b"(using TLSv1.") == 2
    assert await alice.store.queue_list() == []


async def test_remote_down_then_back_is_retried_on_the_clock(world):
    alice, bob, clock = world
    smtp = bob.services["smtp"]
    port = smtp.bound[0][1]
    await smtp.stop()
    await submit(alice, ["bob@hamburger.edu"])
    await alice.queue.run_once()
    [entry] = await alice.store.queue_list()
    [rcpt] = entry.recipients
    assert rcpt.state == QUEUED and rcpt.attempts == 1
    assert rcpt.next_attempt == clock.now + alice.queue.config.retry_first
    assert "cannot connect to mail.hamburger.edu" in rcpt.last_reply

    smtp.port = port
    await smtp.start()
    await alice.queue.run_once()  # not due yet: nothing is tried
    assert await mailbox(bob, "bob@hamburger.edu") == []
    clock.advance(alice.queue.config.retry_first)
    await alice.queue.run_once()
    assert len(await mailbox(bob, "bob@hamburger.edu")) == 1
    assert await alice.store.queue_list() == []


async def test_remote_550_bounces_with_a_dsn_to_alice(world):
    alice, bob, _clock = world
    await submit(alice, ["nobody@hamburger.edu"])
    await alice.queue.run_once()
    [bounce] = await mailbox(alice, "alice@crepes.fr")
    assert bounce.startswith(b"Return-Path: <>\r\n")
    dsn = email.message_from_bytes(bounce, policy=policy.default)
    assert dsn.get_content_type() == "multipart/report"
    assert dsn["Subject"] == "Undelivered Mail Returned to Sender"
    _human, status, returned = dsn.iter_parts()
    per_message, per_rcpt = status.get_payload()
    assert per_message["Reporting-MTA"] == "dns; mail.crepes.fr"
    assert per_rcpt["Final-Recipient"] == "rfc822; nobody@hamburger.edu"
    assert per_rcpt["Action"] == "failed"
    assert per_rcpt["Status"] == "5.1.1"
    assert per_rcpt["Remote-MTA"] == "dns; mail.hamburger.edu"
    assert per_rcpt["Diagnostic-Code"].startswith("smtp; 550 5.1.1")
    assert "Subject: ketchup" in returned.get_payload()
    assert await alice.store.queue_list() == []
    assert await mailbox(bob, "bob@hamburger.edu") == []


async def test_mixed_recipients_one_delivered_one_bounced(world):
    alice, bob, _clock = world
    await submit(alice, ["bob@hamburger.edu", "nobody@hamburger.edu"])
    await alice.queue.run_once()
    assert len(await mailbox(bob, "bob@hamburger.edu")) == 1
    [bounce] = await mailbox(alice, "alice@crepes.fr")
    assert b"Final-Recipient: rfc822; nobody@hamburger.edu" in bounce
    assert b"Final-Recipient: rfc822; bob@hamburger.edu" not in bounce


async def test_ret_full_and_envid_come_back_in_the_bounce(world):
    alice, _bob, _clock = world
    await submit(
        alice,
        ["nobody@hamburger.edu"],
        mail_options=["RET=FULL", "ENVID=QQ314159"],
        rcpt_options=["NOTIFY=FAILURE", "ORCPT=rfc822;nobody@hamburger.edu"],
    )
    await alice.queue.run_once()
    [bounce] = await mailbox(alice, "alice@crepes.fr")
    dsn = email.message_from_bytes(bounce, policy=policy.default)
    _human, status, returned = dsn.iter_parts()
    per_message, per_rcpt = status.get_payload()
    assert per_message["Original-Envelope-Id"] == "QQ314159"
    assert per_rcpt["Original-Recipient"] == "rfc822;nobody@hamburger.edu"
    assert returned.get_content_type() == "message/rfc822"
    assert "How about pickles?" in returned.get_payload()[0].get_payload()


async def test_notify_never_means_no_bounce(world):
    alice, _bob, _clock = world
    await submit(alice, ["nobody@hamburger.edu"], rcpt_options=["NOTIFY=NEVER"])
    await alice.queue.run_once()
    assert await mailbox(alice, "alice@crepes.fr") == []
    assert await alice.store.queue_list() == []


async def test_gives_up_after_the_configured_time(world):
    alice, bob, clock = world
    await bob.services["smtp"].stop()
    await submit(alice, ["bob@hamburger.edu"])
    await alice.queue.run_once()
    config = alice.queue.config
    attempts = 1
    while await alice.store.queue_list() and attempts < 200:
        clock.advance(config.retry_max)
        await alice.queue.run_once()
        attempts += 1
    assert await alice.store.queue_list() == []
    bounces = await mailbox(alice, "alice@crepes.fr")
    # One "delayed" warning after four hours, then the failure after five days.
    subjects = [email.message_from_bytes(b, policy=policy.default)["Subject"] for b in bounces]
    assert subjects == ["Delayed Mail (still being retried)", "Undelivered Mail Returned to Sender"]
    assert b"Status: 4.4.7" in bounces[1]
    assert attempts == pytest.approx(config.give_up / config.retry_max, abs=8)


async def test_null_mx_bounces_at_once(world):
    alice, _bob, _clock = world
    alice.queue.resolver = FakeResolver({"nomail.example": [(0, ".")]}, {})
    await submit(alice, ["someone@nomail.example"])
    await alice.queue.run_once()
    [bounce] = await mailbox(alice, "alice@crepes.fr")
    assert b"Status: 5.1.10" in bounce and b"null MX" in bounce


async def test_mx_hosts_in_preference_order_fall_back(world):
    alice, bob, _clock = world
    # The preferred host has nobody listening; the second is Bob's node.
    alice.queue.resolver = FakeResolver(
        {"hamburger.edu": [(20, "mail.hamburger.edu"), (10, "dead.hamburger.edu")]},
        {"dead.hamburger.edu": ["127.0.0.66"], "mail.hamburger.edu": ["127.0.0.3"]},
    )
    await submit(alice, ["bob@hamburger.edu"])
    await alice.queue.run_once()
    assert len(await mailbox(bob, "bob@hamburger.edu")) == 1


async def test_the_mx_port_refuses_to_relay(world):
    alice, _bob, _clock = world

    def relay():
        with smtplib.SMTP("127.0.0.2", alice.port("smtp"), timeout=10) as s:
            s.ehlo("spammer.example")
            s.mail("spammer@example.com")
            return s.rcpt("bob@hamburger.edu")

    code, text = await asyncio.to_thread(relay)
    assert code == 550 and text.startswith(b"5.7.1")
    assert await alice.store.queue_list() == []


class Recorder:
    """aiosmtpd handler: remembers sessions and envelopes."""

    def __init__(self) -> None:
        self.sessions: set[int] = set()
        self.envelopes: list[tuple[str, list[str], bytes]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.sessions.add(id(session))
            self.envelopes.append(
                (envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
            )
        return "250 2.0.0 OK"


@pytest.fixture
def remote():
    """A receiving server we did not write (aiosmtpd) on 127.0.0.5."""
    recorder = Recorder()
    with socket.socket() as probe:  # aiosmtpd needs a real port number up front
        probe.bind(("127.0.0.5", 0))
        port = probe.getsockname()[1]
    controller = Controller(recorder, hostname="127.0.0.5", port=port, enable_SMTPUTF8=False)
    controller.start()
    yield controller, recorder
    controller.stop()


def to_remote(alice, controller) -> None:
    alice.queue.resolver = FakeResolver(
        {"poly.edu": [(10, "mx.poly.edu")]}, {"mx.poly.edu": ["127.0.0.5"]}
    )
    alice.queue.config = dataclasses.replace(alice.queue.config, port=controller.port)


async def test_one_connection_carries_several_messages(world, remote):
    alice, _bob, _clock = world
    controller, recorder = remote
    to_remote(alice, controller)
    alice.queue.config = dataclasses.replace(alice.queue.config, connections_per_domain=1)
    # Queue three messages while the runner's loop is stopped, then run one round.
    await alice.queue.stop()
    for n in range(3):
        await submit(alice, ["ann@poly.edu"], MESSAGE.replace(b"ketchup", f"m{n}".encode()))
    await alice.queue.run_once()
    assert len(recorder.envelopes) == 3
    assert len(recorder.sessions) == 1
    assert {e[0] for e in recorder.envelopes} == {"alice@crepes.fr"}


async def test_message_needing_smtputf8_bounces_at_a_server_without_it(world, remote):
    alice, _bob, _clock = world
    controller, recorder = remote
    to_remote(alice, controller)
    utf8 = "From: alice@crepes.fr\r\nTo: ann@poly.edu\r\nSubject: crêpes\r\n\r\nmiam\r\n"

    def send():
        with smtplib.SMTP("127.0.0.2", alice.port("submission"), timeout=10) as s:
            s.starttls(context=tls_context())
            s.login("alice@crepes.fr", "hungry")
            return s.sendmail(
                "alice@crepes.fr", ["ann@poly.edu"], utf8.encode(), ["SMTPUTF8", "BODY=8BITMIME"]
            )

    await asyncio.to_thread(send)
    await alice.queue.run_once()
    assert recorder.envelopes == []
    [bounce] = await mailbox(alice, "alice@crepes.fr")
    assert b"Status: 5.6.9" in bounce and b"SMTPUTF8" in bounce


async def test_connections_per_domain_is_a_limit(world, remote):
    alice, _bob, _clock = world
    controller, recorder = remote
    to_remote(alice, controller)
    alice.queue.config = dataclasses.replace(alice.queue.config, connections_per_domain=2)
    await alice.queue.stop()
    for n in range(6):
        await submit(alice, ["ann@poly.edu"], MESSAGE.replace(b"ketchup", f"m{n}".encode()))
    await alice.queue.run_once()
    assert len(recorder.envelopes) == 6
    assert len(recorder.sessions) == 2


async def test_a_recipient_named_twice_gets_one_copy(world):
    alice, bob, _clock = world
    await submit(alice, ["bob@hamburger.edu", "bob@hamburger.edu"])
    await alice.queue.run_once()
    assert len(await mailbox(bob, "bob@hamburger.edu")) == 1


async def test_notify_success_for_a_local_recipient_gives_a_delivered_report(world):
    alice, _bob, _clock = world
    await alice.add_user("carol@crepes.fr")
    await submit(alice, ["carol@crepes.fr"], rcpt_options=["NOTIFY=SUCCESS"])
    await alice.queue.run_once()
    assert len(await mailbox(alice, "carol@crepes.fr")) == 1
    [report] = await mailbox(alice, "alice@crepes.fr")
    dsn = email.message_from_bytes(report, policy=policy.default)
    assert dsn["Subject"] == "Successful Mail Delivery Report"
    _per_message, per_rcpt = list(dsn.iter_parts())[1].get_payload()
    assert (per_rcpt["Action"], per_rcpt["Status"]) == ("delivered", "2.0.0")


async def test_full_local_mailbox_is_queued_and_retried(world):
    alice, _bob, clock = world
    await alice.store.account_add("dave@crepes.fr", "pw", quota=10)
    assert await submit(alice, ["dave@crepes.fr"]) == {}  # 250: the queue has it
    await alice.queue.run_once()
    [entry] = await alice.store.queue_list()
    [rcpt] = entry.recipients
    assert rcpt.state == QUEUED and rcpt.last_reply == "mailbox full"
    assert await mailbox(alice, "dave@crepes.fr") == []


async def test_local_recipient_at_once_remote_through_the_queue(world):
    alice, bob, _clock = world
    await alice.add_user("carol@crepes.fr")
    await alice.queue.stop()  # so that the remote part waits for run_once
    await submit(alice, ["carol@crepes.fr", "bob@hamburger.edu"])
    assert len(await mailbox(alice, "carol@crepes.fr")) == 1
    [entry] = await alice.store.queue_list()
    assert [r.address for r in entry.recipients] == ["bob@hamburger.edu"]
    await alice.queue.run_once()
    assert len(await mailbox(bob, "bob@hamburger.edu")) == 1


async def test_report_delivered_for_mail_the_mx_took(world, remote):
    alice, _bob, _clock = world
    controller, recorder = remote
    to_remote(alice, controller)
    dsn_id = await alice.queue.report_delivered(
        "ann@poly.edu",
        MESSAGE,
        [("alice@crepes.fr", "rfc822;alice@crepes.fr")],
        envid="E1",
    )
    assert dsn_id is not None
    await alice.queue.run_once()
    [(mail_from, rcpts, data)] = recorder.envelopes
    assert (mail_from, rcpts) == ("<>", ["ann@poly.edu"])  # aiosmtpd says <> for null
    dsn = email.message_from_bytes(data, policy=policy.default)
    per_message, per_rcpt = list(dsn.iter_parts())[1].get_payload()
    assert per_message["Original-Envelope-Id"] == "E1"
    assert (per_rcpt["Action"], per_rcpt["Original-Recipient"]) == (
        "delivered",
        "rfc822;alice@crepes.fr",
    )
    assert await alice.queue.report_delivered("", MESSAGE, [("alice@crepes.fr", None)]) is None

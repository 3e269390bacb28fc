"""The whole path: alice@crepes.fr submits with smtplib (STARTTLS + AUTH), her
node DKIM-signs and queues the message, delivers it by MX (found through a
mailstack DNS server serving the zones `domain add` writes) to
bob@hamburger.edu's node, which checks SPF, DKIM and DMARC."""

from __future__ import annotations

import asyncio
import email
import re
import smtplib
import ssl

import pytest

from mailstack.msgauth import keys, records

from support import wait_served

ALICE_IP, BOB_IP, DNS_IP = "127.0.0.2", "127.0.0.3", "127.0.0.4"

MESSAGE = (
    b"From: Alice <alice@crepes.fr>\r\nTo: bob@hamburger.edu\r\nSubject: crepes\r\n\r\n"
    b"Une crepe au sucre?\r\n"
)


def submit(node, message: bytes, sender: str = "alice@crepes.fr") -> object:
    def send() -> object:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with smtplib.SMTP(ALICE_IP, node.port("submission"), timeout=30) as client:
            client.starttls(context=context)
            client.login("alice@crepes.fr", "hungry")
            return client.sendmail(sender, ["bob@hamburger.edu"], message)

    return asyncio.to_thread(send)


@pytest.fixture
async def world(node_factory):
    dns_node = await node_factory(
        listen=("dns",), hostname="ns.test", host=DNS_IP, dns={"recursion": []}
    )
    resolver = {"resolver": {"forwarders": [f"{DNS_IP}:{dns_node.port('dns')}"]}}
    bob = await node_factory(
        # http: the webmail's explain panel is tested on this world too.
        listen=("smtp", "http"),
        hostname="mail.hamburger.edu",
        host=BOB_IP,
        dns=resolver,
    )
    await bob.add_user("bob@hamburger.edu")
    alice = await node_factory(
        listen=("submission",),
        hostname="mail.crepes.fr",
        host=ALICE_IP,
        queue={"port": bob.port("smtp")},
        dns=resolver,
    )
    await alice.add_user("alice@crepes.fr")
    signing = await keys.create(alice.store, "crepes.fr", "path")
    for domain, host, address, domain_keys in (
        ("crepes.fr", "mail.crepes.fr", ALICE_IP, signing),
        ("hamburger.edu", "mail.hamburger.edu", BOB_IP, []),
    ):
        wanted = records.mail_records(domain, host, addresses=[address], keys=domain_keys)
        await records.publish(dns_node.store, domain, wanted, nameserver="ns.test")
    await wait_served(dns_node.port("dns"), "_dmarc.hamburger.edu", address=DNS_IP)
    return alice, bob


async def bob_inbox(bob) -> list[bytes]:
    account = await bob.store.account_get("bob@hamburger.edu")
    box = await bob.store.mailbox_get(account.id, "INBOX")
    return [await bob.store.message_bytes(box.id, m.uid) for m in await bob.store.messages(box.id)]


async def test_submitted_mail_arrives_signed_and_authenticated(world) -> None:
    alice, bob = world
    assert await submit(alice, MESSAGE) == {}
    await alice.queue.run_once()
    [delivered] = await bob_inbox(bob)
    parsed = email.message_from_bytes(delivered)
    assert len(parsed.get_all("DKIM-Signature")) == 2
    [field] = parsed.get_all("Authentication-Results")
    verdict = " ".join(field.split())
    assert verdict.startswith("mail.hamburger.edu; spf=")
    assert "dkim=pass header.d=crepes.fr header.s=path-rsa header.a=rsa-sha256" in verdict
    assert "dkim=pass header.d=crepes.fr header.s=path-ed25519 header.a=ed25519-sha256" in verdict
    assert "dmarc=pass (p=quarantine dis=none) header.from=crepes.fr" in verdict
    # SPF ("v=spf1 mx -all", mail.crepes.fr = 127.0.0.2) passes: the queue
    # sends from the address its node receives mail on, which the receiver's
    # Received line shows.
    received = [r for r in parsed.get_all("Received") if "by mail.hamburger.edu" in r]
    match = re.search(r"\(\[([0-9.]+)\]\)", received[0])
    assert match is not None and match.group(1) == ALICE_IP, received
    assert "spf=pass smtp.mailfrom=alice@crepes.fr" in verdict, (received, verdict)


async def test_the_delivered_message_explains_its_path_and_checks(world) -> None:
    """Explain this message (webmail/explain.py) on what really arrived."""
    from mailstack.webmail.explain import explain

    alice, bob = world
    assert await submit(alice, MESSAGE) == {}
    await alice.queue.run_once()
    [delivered] = await bob_inbox(bob)
    parsed = email.message_from_bytes(delivered)
    result = explain(
        parsed.get_all("Received"),
        parsed.get_all("Authentication-Results"),
        trusted={"mail.hamburger.edu"},
    )
    msa, mx = result.hops
    assert (msa.by, msa.protocol, msa.tls, msa.authenticated) == (
        "mail.crepes.fr", "ESMTPSA", True, True,
    )  # fmt: skip
    assert (mx.by, mx.from_host, mx.from_ip) == ("mail.hamburger.edu", "mail.crepes.fr", ALICE_IP)
    assert mx.tls is True and mx.delay is not None and mx.delay >= 0
    results = {(c.method, c.result) for c in result.checks}
    assert {("spf", "pass"), ("dkim", "pass"), ("dmarc", "pass")} <= results
    assert any("crepes.fr lists as allowed" in line for line in result.summary())

"""MTA-STS (RFC 8461) and TLS-RPT (RFC 8460) end to end: alice@crepes.fr's
node delivers to hamburger.edu, whose DNS (127.0.0.4, managed zones)
publishes a policy served over HTTPS at mta-sts.hamburger.edu (127.0.0.5:443,
a certificate from a test CA that alice's queue trusts).

Nodes: crepes.fr on 127.0.0.2, hamburger.edu's MX on 127.0.0.3.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import ssl
from email import message_from_bytes
from email import policy as email_policy
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from mailstack.certs.files import replace_pair
from mailstack.queue.mtasts import (
    FETCH_ERROR,
    POLICY_INVALID,
    WEBPKI_INVALID,
    PolicyError,
    fetch_policy,
)
from mailstack.store import QUEUED, NewRecipient

from support import TestCA

MESSAGE = b"From: alice@crepes.fr\r\nTo: bob@hamburger.edu\r\nSubject: sts\r\n\r\nHello\r\n"
POLICY = "version: STSv1\r\nmode: {mode}\r\nmx: {mx}\r\nmax_age: 86400\r\n"
POLICY_HOST = "127.0.0.5"


class PolicyServer:
    """https://mta-sts.hamburger.edu/.well-known/mta-sts.txt on 127.0.0.5:443."""

    def __init__(self, ca: TestCA, tmp: Path) -> None:
        cert, key = ca.issue("mta-sts.hamburger.edu")
        (tmp / "sts-cert.pem").write_bytes(cert)
        (tmp / "sts-key.pem").write_bytes(key)
        self.ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ssl.load_cert_chain(tmp / "sts-cert.pem", tmp / "sts-key.pem")
        self.text = POLICY.format(mode="enforce", mx="mail.hamburger.edu")
        self.content_type = "text/plain"
        self.delay = 0.0
        self.hits = 0
        self.runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.hits += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if request.path != "/.well-known/mta-sts.txt":
            raise web.HTTPNotFound()
        if self.text == "REDIRECT":
            raise web.HTTPFound("https://elsewhere.example/policy")
        return web.Response(text=self.text, content_type=self.content_type)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, POLICY_HOST, 443, ssl_context=self.ssl).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


@pytest.fixture
async def world(node_factory: Any, tmp_path: Path) -> Any:
    ca = TestCA(tmp_path / "ca")
    dns_node = await node_factory(listen=("dns",), hostname="ns.test", host="127.0.0.4")
    store = dns_node.store
    for domain, address in (("crepes.fr", "127.0.0.2"), ("hamburger.edu", "127.0.0.3")):
        await store.zone_create(domain, nameservers=[f"ns.{domain}."], hostmaster=f"h@{domain}")
        await store.record_add(domain, "@", "MX", f"10 mail.{domain}.", 300)
        await store.record_add(domain, "mail", "A", address, 300)
    await store.record_add("hamburger.edu", "mta-sts", "A", POLICY_HOST, 300)
    # TTL 0: a changed id is seen at once (the resolver caches nothing of it).
    await store.record_add("hamburger.edu", "_mta-sts", "TXT", '"v=STSv1; id=20261206"', 0)
    await store.record_add(
        "hamburger.edu", "_smtp._tls", "TXT", '"v=TLSRPTv1; rua=mailto:tlsrpt@crepes.fr"', 300
    )
    bob = await node_factory(listen=("smtp",), hostname="mail.hamburger.edu", host="127.0.0.3")
    await bob.add_user("bob@hamburger.edu")
    # A certificate for mail.hamburger.edu that alice's queue trusts.
    replace_pair(bob.config.cert_path, bob.config.key_path, *ca.issue("mail.hamburger.edu"))
    bob.tls.RELOAD_SECONDS = 0.0
    alice = await node_factory(
        listen=("smtp",),
        hostname="mail.crepes.fr",
        host="127.0.0.2",
        queue={
            "port": bob.port("smtp"),
            "ca_file": str(ca.path),
            "fetch_allow": ["127.0.0.0/8"],
            "mta_sts_timeout": 3.0,
        },
        dns={"resolver": {"forwarders": [f"127.0.0.4:{dns_node.port('dns')}"]}},
    )
    await alice.add_user("alice@crepes.fr")
    await alice.add_user("tlsrpt@crepes.fr")
    server = PolicyServer(ca, tmp_path)
    await server.start()
    await asyncio.sleep(1.2)  # the DNS service reads the store about once a second
    try:
        yield alice, bob, dns_node, server, ca
    finally:
        await server.stop()


async def send(alice: Any) -> int:
    queue = alice.queue
    entry = queue.new_entry("alice@crepes.fr", [NewRecipient("bob@hamburger.edu")], MESSAGE)
    entry_id = await alice.store.queue_add(entry)
    await queue.run_once()
    return int(entry_id)


async def inbox(node: Any, address: str) -> list[bytes]:
    account = await node.store.account_get(address)
    box = await node.store.mailbox_get(account.id, "INBOX")
    return [
        await node.store.message_bytes(box.id, m.uid) for m in await node.store.messages(box.id)
    ]


async def pending(alice: Any) -> list[str]:
    return [
        r.last_reply
        for e in await alice.store.queue_list()
        for r in e.recipients
        if r.state == QUEUED
    ]


def deferred_with(caplog: Any, status: str) -> bool:
    """The queue's delivery log says the recipient stayed queued with status."""
    return any(f"queued {status}" in r.getMessage() for r in caplog.records)


async def test_enforce_with_a_valid_certificate_delivers_verified(world: Any, caplog: Any) -> None:
    alice, bob, _dns, server, _ca = world
    with caplog.at_level(logging.INFO, logger="mailstack.queue"):
        await send(alice)
    assert len(await inbox(bob, "bob@hamburger.edu")) == 1
    assert server.hits == 1
    assert any("verified; mta-sts enforce" in r.getMessage() for r in caplog.records)
    # Cached: the next delivery does not fetch again (same id).
    await send(alice)
    assert server.hits == 1 and len(await inbox(bob, "bob@hamburger.edu")) == 2


async def test_enforce_without_a_valid_certificate_defers_with_4_7_5(
    world: Any, caplog: Any
) -> None:
    alice, bob, _dns, _server, _ca = world
    # Bob's certificate becomes self-signed: not valid for an enforced policy.
    from mailstack.common.tls import make_self_signed

    make_self_signed(bob.config.cert_path, bob.config.key_path, "mail.hamburger.edu")
    with caplog.at_level(logging.INFO, logger="mailstack.queue"):
        await send(alice)
    assert await inbox(bob, "bob@hamburger.edu") == []
    [reply] = await pending(alice)
    assert "certificate not valid (certificate-not-trusted; mta-sts enforce)" in reply
    assert deferred_with(caplog, "4.7.5")
    alice.queue.tls_results.flush()
    day = json.loads(next((alice.config.data_dir / "tls-rpt").glob("*.json")).read_text())
    failures = day["domains"]["hamburger.edu"]["failures"]
    assert any(k.startswith("certificate-not-trusted|mail.hamburger.edu") for k in failures)


async def test_testing_mode_delivers_and_reports(world: Any) -> None:
    alice, bob, dns_node, server, _ca = world
    server.text = POLICY.format(mode="testing", mx="mail.hamburger.edu")
    from mailstack.common.tls import make_self_signed

    make_self_signed(bob.config.cert_path, bob.config.key_path, "mail.hamburger.edu")
    await send(alice)
    assert len(await inbox(bob, "bob@hamburger.edu")) == 1  # delivered regardless
    alice.queue.tls_results.flush()
    day = json.loads(next((alice.config.data_dir / "tls-rpt").glob("*.json")).read_text())
    entry = day["domains"]["hamburger.edu"]
    assert (
        entry["policy"]["policy-type"] == "sts"
        and "mode: testing" in entry["policy"]["policy-string"]
    )
    assert sum(entry["failures"].values()) == 1


async def test_an_mx_the_policy_does_not_name_is_never_tried(world: Any, caplog: Any) -> None:
    alice, bob, _dns, server, _ca = world
    server.text = POLICY.format(mode="enforce", mx="*.elsewhere.example")
    with caplog.at_level(logging.INFO, logger="mailstack.queue"):
        await send(alice)
    assert await inbox(bob, "bob@hamburger.edu") == []
    [reply] = await pending(alice)
    assert "matches its MTA-STS policy" in reply
    assert deferred_with(caplog, "4.7.5")


async def test_a_policy_in_force_is_never_downgraded_by_a_failed_refresh(
    world: Any, caplog: Any
) -> None:
    alice, bob, dns_node, server, _ca = world
    await send(alice)  # fetched and cached: enforce
    assert len(await inbox(bob, "bob@hamburger.edu")) == 1
    # The record's id changes but the policy host is gone: the cached policy stays.
    await dns_node.store.record_remove("hamburger.edu", "_mta-sts", "TXT")
    await dns_node.store.record_add("hamburger.edu", "_mta-sts", "TXT", '"v=STSv1; id=2"', 0)
    await server.stop()
    from mailstack.common.tls import make_self_signed

    make_self_signed(bob.config.cert_path, bob.config.key_path, "mail.hamburger.edu")
    await asyncio.sleep(1.2)
    with caplog.at_level(logging.INFO, logger="mailstack"):
        await send(alice)
    assert len(await inbox(bob, "bob@hamburger.edu")) == 1  # not delivered anyway
    [reply] = await pending(alice)
    assert "mta-sts enforce" in reply
    # The refresh was tried (the id changed), failed, and changed nothing.
    assert any("mta-sts: hamburger.edu:" in r.getMessage() for r in caplog.records)


async def test_policy_fetch_failures_are_classified(world: Any, tmp_path: Path) -> None:
    alice, _bob, _dns, server, ca = world
    resolver = alice.queue.resolver
    allow = alice.queue.allow

    async def fetch(**kw: Any) -> Any:
        return await fetch_policy(
            "hamburger.edu", resolver.addresses, allow=allow, ca_file=str(ca.path), **kw
        )

    assert (await fetch()).mode == "enforce"
    server.content_type = "text/html"
    with pytest.raises(PolicyError, match="not text/plain") as caught:
        await fetch()
    assert caught.value.result == FETCH_ERROR
    server.content_type = "text/plain"
    server.text = "REDIRECT"
    with pytest.raises(PolicyError, match="HTTP 302"):
        await fetch()
    server.text = "version: STSv1\r\nmode: enforce\r\n" + "mx: a.example\r\n" * 5000
    with pytest.raises(PolicyError, match="over 1024 octets"):
        await fetch(max_size=1024)
    server.text = "version: STSv2\nmode: enforce\nmx: a\nmax_age: 1\n"
    with pytest.raises(PolicyError) as caught:
        await fetch()
    assert caught.value.result == POLICY_INVALID
    server.text = POLICY.format(mode="enforce", mx="mail.hamburger.edu")
    server.delay = 2.0
    with pytest.raises(PolicyError, match="fetch failed"):
        await fetch(timeout=0.5)
    server.delay = 0.0
    # A CA the fetcher does not trust: the WebPKI failure of RFC 8460.
    other = TestCA(tmp_path / "other-ca")
    with pytest.raises(PolicyError) as caught:
        await fetch_policy(
            "hamburger.edu", resolver.addresses, allow=allow, ca_file=str(other.path)
        )
    assert caught.value.result == WEBPKI_INVALID
    # Without fetch_allow, a policy host on loopback is refused (no SSRF).
    with pytest.raises(PolicyError, match="may not fetch"):
        await fetch_policy("hamburger.edu", resolver.addresses, ca_file=str(ca.path))


async def test_the_daily_report_reaches_the_rua_and_parses(world: Any) -> None:
    alice, bob, _dns, _server, _ca = world
    clock_now = [1_900_000_000.0]
    results = alice.queue.tls_results
    results.clock = lambda: clock_now[0]
    await send(alice)
    await send(alice)
    assert len(await inbox(bob, "bob@hamburger.edu")) == 2
    assert await alice.queue.send_tls_reports() == []  # the day is not over
    clock_now[0] += 86400
    sent = await alice.queue.send_tls_reports()
    assert [(domain, rua) for _day, domain, rua in sent] == [
        ("hamburger.edu", "mailto:tlsrpt@crepes.fr")
    ]
    await alice.queue.run_once()
    [raw] = await inbox(alice, "tlsrpt@crepes.fr")
    message = message_from_bytes(raw, policy=email_policy.default)
    assert message.get_content_type() == "multipart/report"
    assert message.get_param("report-type") == "tlsrpt"
    assert message["TLS-Report-Domain"] == "hamburger.edu"
    [part] = [p for p in message.walk() if p.get_content_type() == "application/tlsrpt+gzip"]
    report = json.loads(gzip.decompress(part.get_payload(decode=True)))
    [policy] = report["policies"]
    assert policy["policy"]["policy-domain"] == "hamburger.edu"
    assert policy["summary"] == {
        "total-successful-session-count": 2,
        "total-failure-session-count": 0,
    }
    # Sent once: the day is marked.
    assert await alice.queue.send_tls_reports() == []


async def test_the_recipient_node_serves_its_own_policy_over_https(
    world: Any, caplog: Any
) -> None:
    """hamburger.edu's own node publishes its policy (`mailstack mta-sts`) and
    serves it from its HTTPS listener, with a certificate for
    mta-sts.hamburger.edu chosen by SNI; alice's queue fetches and enforces it."""
    from mailstack.certs.cli import publish_mta_sts
    from mailstack.certs.mtasts import policy_id, published_path

    alice, bob, dns_node, server, ca = world
    await server.stop()  # this test's policy comes from bob's node itself
    # Bob's node gets an HTTPS listener on 127.0.0.6:443 (where mta-sts points):
    # a second process over the same data directory, as a web front would be.
    from support import TestNode, make_config, open_fast_store

    config = make_config(
        bob.config.data_dir,
        (),
        hostname="mail.hamburger.edu",
        table={"listen": {"https": "127.0.0.6:443"}},
    )
    # make_config wrote a self-signed default pair: bob's CA-signed one back.
    replace_pair(bob.config.cert_path, bob.config.key_path, *ca.issue("mail.hamburger.edu"))
    https_node = TestNode(config, store_factory=open_fast_store)
    await https_node.start()
    try:
        https_node.tls.certs.install(*ca.issue("mta-sts.hamburger.edu"))
        if not await bob.store.is_local_domain("hamburger.edu"):
            await bob.store.domain_add("hamburger.edu")
        done = await publish_mta_sts(bob.store, bob.config, "hamburger.edu", "enforce")
        assert any("publish these records yourself" in line for line in done)
        text = published_path(bob.config.data_dir, "hamburger.edu").read_bytes().decode()
        store = dns_node.store
        await store.record_remove("hamburger.edu", "mta-sts", "A")
        await store.record_add("hamburger.edu", "mta-sts", "A", "127.0.0.6", 300)
        await store.record_remove("hamburger.edu", "_mta-sts", "TXT")
        await store.record_add(
            "hamburger.edu", "_mta-sts", "TXT", f'"v=STSv1; id={policy_id(text)}"', 0
        )
        await asyncio.sleep(1.2)
        with caplog.at_level(logging.INFO, logger="mailstack.queue"):
            await send(alice)
        assert len(await inbox(bob, "bob@hamburger.edu")) == 1
        assert any("verified; mta-sts enforce" in r.getMessage() for r in caplog.records)
        assert any(f"policy {policy_id(text)}" in r.getMessage() for r in caplog.records)
    finally:
        await https_node.stop()

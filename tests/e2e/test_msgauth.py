"""Message authentication end to end: a mailstack DNS server holds the
domains' records (written by msgauth.records, as `domain add` does), a
receiving node checks what smtplib delivers from different loopback addresses,
and the verdicts land in Authentication-Results, Junk, or a 550."""

from __future__ import annotations

import asyncio
import email
import shutil
import smtplib
import subprocess

import pytest

from mailstack.msgauth import dkim, keys, records

from support import wait_served

SENDER_IP = "127.0.0.2"  # crepes.fr's mail host: its MX, so SPF passes
FORGER_IP = "127.0.0.4"  # not in any SPF record
RECEIVER_IP = "127.0.0.3"


def message(sender: str = "alice@crepes.fr", extra: bytes = b"") -> bytes:
    return (
        extra + f"From: Alice <{sender}>\r\n".encode() + b"To: bob@hamburger.edu\r\n"
        b"Subject: crepes\r\nDate: Sat, 21 Nov 2026 12:00:00 +0000\r\n"
        b"Message-ID: <e2e@crepes.fr>\r\n\r\nBonjour Bob!\r\n"
    )



@pytest.fixture
async def world(node_factory):
    dns_node = await node_factory(listen=("dns",), hostname="ns.test", dns={"recursion": []})
    sender = await node_factory(listen=(), hostname="mail.crepes.fr")
    dkim_keys = await keys.create(sender.store, "crepes.fr", "e2e")
    zones = {
        "crepes.fr": ("mail.crepes.fr", SENDER_IP, dkim_keys, "reject"),
        "quiche.fr": ("mail.quiche.fr", SENDER_IP, [], "quarantine"),
        "tarte.fr": ("mail.tarte.fr", SENDER_IP, [], "none"),
        "hamburger.edu": ("mx.hamburger.edu", RECEIVER_IP, [], "reject"),
    }
    for domain, (host, address, domain_keys, policy) in zones.items():
        wanted = records.mail_records(
            domain, host, addresses=[address], keys=domain_keys, dmarc_policy=policy
        )
        await records.publish(dns_node.store, domain, wanted, nameserver="ns.test")
    await wait_served(dns_node.port("dns"), "_dmarc.hamburger.edu")
    receiver = await node_factory(
        listen=("smtp",),
        hostname="mx.hamburger.edu",
        host=RECEIVER_IP,
        dns={"resolver": {"forwarders": [f"127.0.0.1:{dns_node.port('dns')}"]}},
        smtp={"message_auth": "enforce"},
    )
    await receiver.add_user("bob@hamburger.edu")
    return sender, receiver


def send(receiver, data: bytes, *, source: str, mail_from: str, helo: str) -> None:
    with smtplib.SMTP(
        RECEIVER_IP,
        receiver.port("smtp"),
        local_hostname=helo,
        source_address=(source, 0),
        timeout=30,
    ) as client:
        client.sendmail(mail_from, ["bob@hamburger.edu"], data)


async def mailbox(node, name: str) -> list[bytes]:
    account = await node.store.account_get("bob@hamburger.edu")
    box = await node.store.mailbox_get(account.id, name)
    return [
        await node.store.message_bytes(box.id, m.uid) for m in await node.store.messages(box.id)
    ]


def results(raw: bytes) -> str:
    parsed = email.message_from_bytes(raw)
    fields = parsed.get_all("Authentication-Results")
    assert fields is not None and len(fields) == 1
    return " ".join(fields[0].split())


async def test_signed_mail_from_the_mx_passes_spf_dkim_dmarc(world) -> None:
    sender, receiver = world
    body = message()
    signed = await dkim.sign(body, "crepes.fr", sender.store) + body
    await asyncio.to_thread(
        send, receiver, signed, source=SENDER_IP, mail_from="alice@crepes.fr", helo="mail.crepes.fr"
    )
    [delivered] = await mailbox(receiver, "INBOX")
    verdict = results(delivered)
    assert verdict.startswith("mx.hamburger.edu; spf=pass smtp.mailfrom=alice@crepes.fr")
    assert "dkim=pass header.d=crepes.fr header.s=e2e-rsa header.a=rsa-sha256" in verdict
    assert "dkim=pass header.d=crepes.fr header.s=e2e-ed25519" in verdict
    assert "dmarc=pass (p=reject dis=none) header.from=crepes.fr" in verdict


async def test_forged_sender_is_refused_under_p_reject(world) -> None:
    _, receiver = world
    with pytest.raises(smtplib.SMTPDataError) as refused:
        await asyncio.to_thread(
            send, receiver, message(), source=FORGER_IP, mail_from="alice@crepes.fr", helo="evil"
        )
    assert refused.value.smtp_code == 550 and refused.value.smtp_error.startswith(b"5.7.1")
    assert await mailbox(receiver, "INBOX") == []


async def test_forged_sender_goes_to_junk_under_p_quarantine(world) -> None:
    _, receiver = world
    await asyncio.to_thread(
        send,
        receiver,
        message("chef@quiche.fr"),
        source=FORGER_IP,
        mail_from="chef@quiche.fr",
        helo="evil",
    )
    assert await mailbox(receiver, "INBOX") == []
    [junk] = await mailbox(receiver, "Junk")
    verdict = results(junk)
    assert "spf=fail smtp.mailfrom=chef@quiche.fr" in verdict
    assert "dkim=none" in verdict and "dmarc=fail (p=quarantine dis=quarantine)" in verdict


async def test_forged_sender_under_p_none_is_recorded_and_forged_results_removed(world) -> None:
    _, receiver = world
    forged = b"Authentication-Results: mx.hamburger.edu; spf=pass; dmarc=pass\r\n"
    await asyncio.to_thread(
        send,
        receiver,
        message("baker@tarte.fr", extra=forged),
        source=FORGER_IP,
        mail_from="baker@tarte.fr",
        helo="evil",
    )
    [delivered] = await mailbox(receiver, "INBOX")
    verdict = results(delivered)  # exactly one field: the forged one is gone
    assert "spf=fail smtp.mailfrom=baker@tarte.fr" in verdict
    assert "dmarc=fail (p=none dis=none) header.from=tarte.fr" in verdict


async def test_unreachable_dns_gives_temperror_not_a_hang(node_factory) -> None:
    receiver = await node_factory(
        listen=("smtp",),
        hostname="mx.hamburger.edu",
        host=RECEIVER_IP,
        dns={"resolver": {"forwarders": ["127.0.0.9:9"], "timeout": 0.2}},
        smtp={"message_auth": "enforce"},
        limits={"msgauth_dns_timeout": 0.5, "msgauth_timeout": 2.0},
    )
    await receiver.add_user("bob@hamburger.edu")
    await asyncio.wait_for(
        asyncio.to_thread(
            send,
            receiver,
            message(),
            source=SENDER_IP,
            mail_from="alice@crepes.fr",
            helo="mail.crepes.fr",
        ),
        30,
    )
    [delivered] = await mailbox(receiver, "INBOX")
    verdict = results(delivered)
    assert "spf=temperror" in verdict and "dmarc=temperror" in verdict


def swaks(receiver, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["swaks", "--server", RECEIVER_IP, "--port", str(receiver.port("smtp")), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks is not installed")
async def test_swaks_signed_passes_and_forged_is_refused(world, tmp_path) -> None:
    sender, receiver = world
    body = message()
    signed = tmp_path / "signed.eml"
    signed.write_bytes(await dkim.sign(body, "crepes.fr", sender.store) + body)
    common = ["--to", "bob@hamburger.edu", "--from", "alice@crepes.fr"]
    good = await asyncio.to_thread(
        swaks,
        receiver,
        *common,
        "--local-interface",
        SENDER_IP,
        "--helo",
        "mail.crepes.fr",
        "--data",
        str(signed),
    )
    assert good.returncode == 0, good.stdout
    [delivered] = await mailbox(receiver, "INBOX")
    verdict = results(delivered)
    assert "spf=pass" in verdict and "dkim=pass" in verdict and "dmarc=pass" in verdict
    forged = await asyncio.to_thread(
        swaks, receiver, *common, "--local-interface", FORGER_IP, "--helo", "evil"
    )
    assert forged.returncode != 0 and "550 5.7.1" in forged.stdout
    assert len(await mailbox(receiver, "INBOX")) == 1


async def test_domain_check_asks_the_dns_server(world) -> None:
    from mailstack.cli import main

    sender, receiver = world
    await sender.store.domain_add("crepes.fr")
    # The CLI reads the node's config file (test nodes are configured in memory).
    config_file = sender.config.data_dir / "mailstack.toml"
    config_file.write_text('[node]\nhostname = "mail.crepes.fr"\n\n[listen]\n')
    server = f"127.0.0.1:{receiver.config.dns.resolver.forwarders[0][1]}"
    argv = ["domain", "check", "crepes.fr", "--data-dir", str(sender.config.data_dir)]
    argv += ["--server", server, "--address", SENDER_IP]
    assert await asyncio.to_thread(main, argv) == 0
    # A key that is not in DNS is reported, and the command fails.
    await keys.rotate(sender.store, "crepes.fr", "unpublished")
    assert await asyncio.to_thread(main, argv) == 1

"""Message submission end to end: smtplib, aiosmtplib, swaks and msmtp against a
real node's `submission` (STARTTLS) and `submissions` (implicit TLS) ports."""

from __future__ import annotations

import asyncio
import shutil
import smtplib
import ssl
import subprocess

import aiosmtplib
import pytest

MESSAGE = (
    b"From: alice@crepes.fr\r\nTo: bob@crepes.fr\r\nSubject: ketchup\r\n\r\n"
    b"Do you like ketchup?\r\n"
)


def tls_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the node's certificate is self-signed
    return context


@pytest.fixture
async def msa(node_factory):
    node = await node_factory(
        listen=("submission", "submissions"),
        hostname="crepes.fr",
        limits={"login_failures": 3, "login_failure_delay": 0.01},
    )
    await node.add_user("alice@crepes.fr")
    await node.add_user("bob@crepes.fr")
    await node.store.alias_add("chef@crepes.fr", "alice@crepes.fr")
    return node


def submission(node) -> smtplib.SMTP:
    return smtplib.SMTP("127.0.0.1", node.port("submission"), local_hostname="alice-pc", timeout=10)


async def mailbox(node, address, name="INBOX") -> list[bytes]:
    account = await node.store.account_get(address)
    box = await node.store.mailbox_get(account.id, name)
    return [
        await node.store.message_bytes(box.id, m.uid) for m in await node.store.messages(box.id)
    ]


async def test_starttls_auth_and_local_delivery(msa):
    def send():
        with submission(msa) as s:
            s.starttls(context=tls_context())
            s.login("alice@crepes.fr", "hungry")
            return s.sendmail("alice@crepes.fr", ["bob@crepes.fr"], MESSAGE)

    assert await asyncio.to_thread(send) == {}
    [message] = await mailbox(msa, "bob@crepes.fr")
    head, _, body = message.partition(b"\r\n\r\n")
    assert head.startswith(b"Return-Path: <alice@crepes.fr>\r\nDelivered-To: bob@crepes.fr\r\n")
    assert b"by crepes.fr (mailstack) with ESMTPSA id " in head
    # RFC 6409 §8.2, §8.3: the MSA added what the client left out.
    assert b"\r\nDate: " in head and b"\r\nMessage-ID: <" in head
    assert body == b"Do you like ketchup?\r\n"
    assert await msa.store.queue_list() == []  # nothing remote, nothing queued


async def test_auth_is_not_offered_before_tls(msa):
    def dialogue():
        with submission(msa) as s:
            s.ehlo()
            before = s.has_extn("auth")
            refused = s.docmd("AUTH", "PLAIN AGFsaWNlQGNyZXBlcy5mcgBodW5ncnk=")
            mail = s.docmd("MAIL", "FROM:<alice@crepes.fr>")
            s.starttls(context=tls_context())
            s.ehlo()
            return before, refused, mail, s.esmtp_features.get("auth", "")

    before, refused, mail, after = await asyncio.to_thread(dialogue)
    assert not before
    assert refused[0] == 538  # RFC 4954 §4: encryption required
    assert mail[0] == 530  # RFC 6409 §4: no MAIL before a login
    assert after.split() == ["PLAIN", "LOGIN"]


async def test_plaintext_auth_on_loopback_when_configured(node_factory):
    node = await node_factory(
        listen=("submission",),
        hostname="crepes.fr",
        submission={"allow_plaintext_on_loopback": True},
    )
    await node.add_user("alice@crepes.fr")
    await node.add_user("bob@crepes.fr")

    def send():
        with submission(node) as s:
            s.login("alice@crepes.fr", "hungry")
            return s.sendmail("alice@crepes.fr", ["bob@crepes.fr"], MESSAGE)

    assert await asyncio.to_thread(send) == {}
    assert len(await mailbox(node, "bob@crepes.fr")) == 1


async def test_submissions_implicit_tls_with_auth_login(msa):
    def send():
        with smtplib.SMTP_SSL(
            "127.0.0.1", msa.port("submissions"), context=tls_context(), timeout=10
        ) as s:
            s.ehlo()
            s.user, s.password = "alice@crepes.fr", "hungry"
            code, _ = s.auth("LOGIN", s.auth_login, initial_response_ok=False)
            assert code == 235
            return s.sendmail("alice@crepes.fr", ["bob@crepes.fr"], MESSAGE)

    assert await asyncio.to_thread(send) == {}
    assert len(await mailbox(msa, "bob@crepes.fr")) == 1


async def test_aiosmtplib_submits(msa):
    await aiosmtplib.send(
        MESSAGE,
        sender="alice@crepes.fr",
        recipients=["bob@crepes.fr"],
        hostname="127.0.0.1",
        port=msa.port("submission"),
        start_tls=True,
        tls_context=tls_context(),
        username="alice@crepes.fr",
        password="hungry",
        timeout=10,
    )
    assert len(await mailbox(msa, "bob@crepes.fr")) == 1


def logged_in(node) -> smtplib.SMTP:
    s = submission(node)
    s.starttls(context=tls_context())
    s.login("alice@crepes.fr", "hungry")
    return s


async def test_forged_envelope_sender_is_refused(msa):
    def dialogue():
        with logged_in(msa) as s:
            return s.mail("bob@crepes.fr"), s.rset(), s.mail("<>")

    forged, _, null = await asyncio.to_thread(dialogue)
    assert forged[0] == 550 and forged[1].startswith(b"5.7.1")
    assert null[0] == 550


async def test_forged_from_header_is_refused(msa):
    forged = MESSAGE.replace(b"From: alice@crepes.fr", b"From: President <bob@crepes.fr>")

    def send():
        with logged_in(msa) as s:
            s.sendmail("alice@crepes.fr", ["bob@crepes.fr"], forged)

    with pytest.raises(smtplib.SMTPDataError) as caught:
        await asyncio.to_thread(send)
    assert caught.value.smtp_code == 550 and caught.value.smtp_error.startswith(b"5.7.1")
    assert await mailbox(msa, "bob@crepes.fr") == []


async def test_alias_and_subaddress_of_the_user_may_send(msa):
    as_chef = MESSAGE.replace(b"From: alice@crepes.fr", b"From: Chef <chef@crepes.fr>")

    def send():
        with logged_in(msa) as s:
            s.sendmail("chef@crepes.fr", ["bob@crepes.fr"], as_chef)
            s.sendmail("alice+news@crepes.fr", ["bob@crepes.fr"], MESSAGE)

    await asyncio.to_thread(send)
    assert len(await mailbox(msa, "bob@crepes.fr")) == 2


async def test_unknown_local_recipient_is_refused(msa):
    def dialogue():
        with logged_in(msa) as s:
            s.mail("alice@crepes.fr")
            return s.rcpt("nobody@crepes.fr")

    code, text = await asyncio.to_thread(dialogue)
    assert code == 550 and text.startswith(b"5.1.1")


async def test_failed_logins_are_throttled_per_client(msa):
    def attempts():
        codes = []
        with submission(msa) as s:
            s.starttls(context=tls_context())
            s.ehlo()
            for _ in range(4):
                code, _ = s.docmd("AUTH", "PLAIN AGFsaWNlQGNyZXBlcy5mcgB3cm9uZw==")  # "wrong"
                codes.append(code)
            # Even the right password is refused now, without being checked.
            right, _ = s.docmd("AUTH", "PLAIN AGFsaWNlQGNyZXBlcy5mcgBodW5ncnk=")
        return codes, right

    codes, right = await asyncio.to_thread(attempts)
    assert codes == [535, 535, 535, 454]
    assert right == 454


async def test_sent_copy_when_configured(node_factory):
    node = await node_factory(
        listen=("submission",), hostname="crepes.fr", submission={"save_sent": True}
    )
    await node.add_user("alice@crepes.fr")
    await node.add_user("bob@crepes.fr")

    def send():
        with logged_in(node) as s:
            s.sendmail("alice@crepes.fr", ["bob@crepes.fr"], MESSAGE)

    await asyncio.to_thread(send)
    [copy] = await mailbox(node, "alice@crepes.fr", "Sent")
    assert copy.endswith(b"Do you like ketchup?\r\n") and b"Subject: ketchup" in copy
    account = await node.store.account_get("alice@crepes.fr")
    sent = await node.store.mailbox_get(account.id, "Sent")
    [meta] = await node.store.messages(sent.id)
    assert "\\Seen" in meta.flags


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks not installed")
async def test_swaks_auth(msa):
    def run():
        return subprocess.run(
            [
                "swaks",
                "--server", f"127.0.0.1:{msa.port('submission')}",
                "--tls",
                "--auth", "PLAIN",
                "--auth-user", "alice@crepes.fr",
                "--auth-password", "hungry",
                "--from", "alice@crepes.fr",
                "--to", "bob@crepes.fr",
                "--header", "Subject: from swaks",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )  # fmt: skip

    result = await asyncio.to_thread(run)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "235 2.7.0" in result.stdout
    [message] = await mailbox(msa, "bob@crepes.fr")
    assert b"Subject: from swaks" in message


@pytest.mark.skipif(shutil.which("msmtp") is None, reason="msmtp not installed")
async def test_msmtp(msa, tmp_path):
    config = tmp_path / "msmtprc"
    config.write_text(
        "account default\n"
        "host 127.0.0.1\n"
        f"port {msa.port('submission')}\n"
        "tls on\n"
        "tls_starttls on\n"
        "tls_certcheck off\n"
        "auth plain\n"
        "user alice@crepes.fr\n"
        "password hungry\n"
        "from alice@crepes.fr\n"
    )
    config.chmod(0o600)

    def run():
        return subprocess.run(
            ["msmtp", "-C", str(config), "bob@crepes.fr"],
            input=b"From: alice@crepes.fr\nTo: bob@crepes.fr\nSubject: from msmtp\n\nhi\n",
            capture_output=True,
            timeout=30,
        )

    result = await asyncio.to_thread(run)
    assert result.returncode == 0, result.stderr
    [message] = await mailbox(msa, "bob@crepes.fr")
    assert b"Subject: from msmtp" in message


async def test_stopping_the_node_says_421_to_open_sessions(msa):
    """RFC 5321 §3.8: a server that shuts down answers 421 before closing."""
    s = await asyncio.to_thread(submission, msa)
    await asyncio.to_thread(s.ehlo, "crepes.fr")
    await msa.stop()
    code, text = await asyncio.to_thread(s.getreply)
    assert code == 421 and text.startswith(b"4.3.2")
    s.close()

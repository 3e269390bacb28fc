"""`mailstack send` and `mailstack read` as a user runs them, against real nodes.

One node serves DNS (the zones `domain add` would publish: MX, A, the RFC
6186 SRV records with the mail node's real ports); the mail node
(mail.crepes.fr) runs SMTP, submission, IMAP and POP3 for alice@crepes.fr and
bob@hamburger.edu, and resolves through the DNS node. The commands run as
child processes; what they send is parsed back with `email` and with
`mailstack.mime`.
"""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from mailstack.mime import parse
from mailstack.msgauth import records
from mailstack.store import DeliveryTarget
from mailstack.ua import view

from support import deliver as store_deliver
from support import wait_served

MAIL_SERVICES = ("smtp", "submission", "submissions", "imap", "imaps", "pop3", "pop3s")
PASSWORD = "hungry"


@dataclass
class World:
    dns_node: object
    node: object
    tmp: Path

    @property
    def dns(self) -> str:
        return f"127.0.0.1:{self.dns_node.port('dns')}"

    def at(self, service: str) -> str:
        return f"127.0.0.1:{self.node.port(service)}"

    @property
    def ca(self) -> str:
        return str(self.node.config.cert_path)

    @property
    def password_file(self) -> str:
        path = self.tmp / "password"
        path.write_text(PASSWORD + "\n")
        return str(path)



async def make_world(node_factory, tmp_path) -> World:
    dns_node = await node_factory(listen=("dns",), hostname="ns.test", dns={"recursion": []})
    forward = {"resolver": {"forwarders": [f"127.0.0.1:{dns_node.port('dns')}"]}}
    node = await node_factory(listen=MAIL_SERVICES, hostname="mail.crepes.fr", dns=forward)
    await node.add_user("alice@crepes.fr", PASSWORD)
    await node.add_user("bob@hamburger.edu", PASSWORD)
    ports = {name: node.port(name) for name in MAIL_SERVICES}
    for domain in ("crepes.fr", "hamburger.edu"):
        # What `mailstack domain add` publishes, with the ports the node bound.
        wanted = records.mail_records(
            domain, "mail.crepes.fr", addresses=["127.0.0.1"], ports=ports
        )
        await records.publish(dns_node.store, domain, wanted, nameserver="ns.test")
    await wait_served(dns_node.port("dns"), "_submissions._tcp.crepes.fr", "SRV")
    await wait_served(dns_node.port("dns"), "hamburger.edu", "MX")
    (tmp_path / "ua").mkdir()
    return World(dns_node, node, tmp_path / "ua")


@pytest.fixture
async def world(node_factory, tmp_path) -> World:
    return await make_world(node_factory, tmp_path)


async def mailstack(*args: str, stdin: bytes | None = None, env: dict | None = None):
    """Run `mailstack ARGS` as a user would (in a thread: the nodes run in this loop)."""
    environment = {**os.environ, **(env or {})}
    environment.pop("MAILSTACK_PASSWORD", None)
    environment.update(env or {})
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "mailstack.cli", *args],
        input=stdin or b"",
        capture_output=True,
        timeout=60,
        env=environment,
    )


def text(result) -> tuple[str, str]:
    return result.stdout.decode(), result.stderr.decode()


async def mailbox(node, address: str, name: str = "INBOX") -> list[bytes]:
    account = await node.store.account_get(address)
    box = await node.store.mailbox_get(account.id, name)
    return [
        await node.store.message_bytes(box.id, m.uid) for m in await node.store.messages(box.id)
    ]


def attachments_dir(tmp: Path) -> tuple[dict[str, bytes], list[str]]:
    files = {
        "photo.png": b"\x89PNG\r\n\x1a\n" + os.urandom(70_000),
        "résumé ünïcode — 日本.bin": bytes(range(256)) * 40,
        "notes.txt": b"lines\r\nwith CRLF\nand LF\n.leading dot\n",
    }
    paths = []
    for name, data in files.items():
        (tmp / name).write_bytes(data)
        paths += ["--attach", str(tmp / name)]
    return files, paths


def attached(message) -> dict[str, bytes]:
    return {p.get_filename(): p.get_payload(decode=True) for p in message.iter_attachments()}


# -- sending ------------------------------------------------------------------------------


async def test_send_attachments_and_read_them_back_over_imap_and_pop3(world):
    tmp_path = world.tmp
    files, attach = attachments_dir(tmp_path)
    subject = "Magst du Ketchup? — ça va, 日本"
    (tmp_path / "body.html").write_text("<p>Do you like <b>ketchup</b>?</p>")
    sent = await mailstack(
        "send", "--from", "Älice Crêpe <alice@crepes.fr>", "--to", "bob@hamburger.edu",
        "--subject", subject, "--body", "Grüße aus Paris.\nDo you like ketchup?\n",
        "--html-file", str(tmp_path / "body.html"), *attach,
        "--server", world.at("submission"), "--ca-file", world.ca,
        "--password-file", world.password_file,
    )  # fmt: skip
    out, err = text(sent)
    assert sent.returncode == 0, err
    assert out.startswith("accepted for bob@hamburger.edu: 250 2.0.0")
    [stored] = await mailbox(world.node, "bob@hamburger.edu")
    parsed = email.message_from_bytes(stored, policy=email.policy.default)
    assert parsed["Subject"] == subject
    assert parsed["From"].addresses[0].display_name == "Älice Crêpe"
    assert attached(parsed) == files

    # IMAP: the list, then message 1 with its attachments saved.
    imap = ["--imap", world.at("imap"), "--tls", "none", "--user", "bob@hamburger.edu",
            "--password-file", world.password_file]  # fmt: skip
    listing = await mailstack("read", *imap, "--json")
    assert listing.returncode == 0, listing.stderr
    [row] = json.loads(listing.stdout)
    assert row["subject"] == subject
    assert row["from"] == "Älice Crêpe <alice@crepes.fr>"
    assert row["to"] == "bob@hamburger.edu"
    assert row["size"] == len(stored) and "\\Seen" not in row["flags"]
    assert sorted(row["attachments"]) == sorted(files)
    saved = tmp_path / "imap-saved"
    shown = await mailstack("read", *imap, "1", "--save-attachments", str(saved))
    out, err = text(shown)
    assert shown.returncode == 0, err
    assert f"Subject: {subject}" in out and "Grüße aus Paris." in out
    assert "résumé ünïcode — 日本.bin (application/octet-stream, 10240 octets)" in out
    assert {p.name: p.read_bytes() for p in saved.iterdir()} == files
    raw = await mailstack("read", *imap, "--uid", row["uid"], "--raw")
    assert raw.stdout == stored

    # POP3: download into a Maildir (keeping), the attachments byte for byte.
    maildir, saved = tmp_path / "Mail", tmp_path / "pop-saved"
    pop = await mailstack(
        "read", "--pop3", world.at("pop3s"), "--tls", "implicit", "--ca-file", world.ca,
        "--user", "bob@hamburger.edu", "--password-file", world.password_file,
        "--maildir", str(maildir), "--keep", "1", "--save-attachments", str(saved),
    )  # fmt: skip
    out, err = text(pop)
    assert pop.returncode == 0, err
    assert "fetched 1 new messages" in err
    assert {p.name: p.read_bytes() for p in saved.iterdir()} == files
    [downloaded] = list((maildir / "new").iterdir())
    assert downloaded.read_bytes() == stored


async def test_dry_run_is_well_formed_for_email_and_mailstack_mime(tmp_path):
    files, attach = attachments_dir(tmp_path)
    result = await mailstack(
        "send", "--from", "Ünal Çelik <alice@crepes.fr>", "--to", "Bob <bob@hamburger.edu>",
        "--cc", "carol@hamburger.edu", "--bcc", "dave@secret.example", "--reply-to",
        "alice+replies@crepes.fr", "--header", "X-Mailer-Test: yes", "--subject",
        "Ketchup 🍅 für alle", *attach, "--dry-run",
        stdin=b"Hello Bob,\nDo you like ketchup?\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "RCPT TO:<dave@secret.example>" in result.stderr.decode()
    data = result.stdout.replace(b"\n", b"\r\n")
    assert data.isascii()  # RFC 2045 7bit throughout: encoded words and transfer encodings
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))  # RFC 5322 §2.1.1
    first = email.message_from_bytes(data, policy=email.policy.default)
    assert first["Subject"] == "Ketchup 🍅 für alle"
    assert "=?utf-8?" in data.split(b"\r\n\r\n")[0].decode()  # RFC 2047
    assert "Bcc" not in first and b"dave@" not in data
    assert first["MIME-Version"] == "1.0" and first["Date"] and first["Message-ID"]
    assert first["X-Mailer-Test"] == "yes"
    assert first["Reply-To"] == "alice+replies@crepes.fr"
    assert not first.defects
    assert attached(first) == files
    assert b"filename*" in data  # RFC 2231 for the UTF-8 name
    # The text part is 7bit, each attachment base64, and MIME-Version is said once.
    body = first.get_body(("plain",))
    assert body["Content-Transfer-Encoding"] == "7bit"
    assert body.get_content().replace("\r\n", "\n") == "Hello Bob,\nDo you like ketchup?\n"
    assert {p["Content-Transfer-Encoding"] for p in first.iter_attachments()} == {"base64"}
    assert data.count(b"MIME-Version") == 1
    # The second parser: mailstack's own.
    second = parse(data)
    assert second.header_value("subject") == "Ketchup 🍅 für alle"
    assert second.header_value("from") == "Ünal Çelik <alice@crepes.fr>"
    assert [a.name for a in second.envelope.from_] == ["=?utf-8?q?=C3=9Cnal_=C3=87elik?="]
    got = {a.name: a.data for a in view.attachments(data, second)}
    assert got == files


async def test_quoted_printable_text(tmp_path):
    result = await mailstack(
        "send", "--from", "alice@crepes.fr", "--to", "bob@hamburger.edu",
        "--body", "Liebe Grüße aus Paris, Alice\n", "--dry-run",
    )  # fmt: skip
    message = email.message_from_bytes(result.stdout, policy=email.policy.default)
    assert message["Content-Transfer-Encoding"] == "quoted-printable"
    assert message.get_content() == "Liebe Grüße aus Paris, Alice\n"
    mostly_not_latin = await mailstack(
        "send", "--from", "alice@crepes.fr", "--to", "bob@hamburger.edu",
        "--body", "日本語のメッセージです\n", "--dry-run",
    )  # fmt: skip
    message = email.message_from_bytes(mostly_not_latin.stdout, policy=email.policy.default)
    assert message["Content-Transfer-Encoding"] == "base64"  # shorter than quoted-printable
    assert message.get_content().replace("\r\n", "\n") == "日本語のメッセージです\n"


async def test_srv_discovery_through_the_nodes_dns(world):
    args = ["send", "--from", "alice@crepes.fr", "--to", "bob@hamburger.edu", "--subject",
            "found by SRV", "--body", "hi", "--ca-file", world.ca,
            "--password-file", world.password_file, "--trace"]  # fmt: skip
    by_dns = await mailstack(*args, "--dns", world.dns)
    out, err = text(by_dns)
    assert by_dns.returncode == 0, err
    # RFC 8314 §5.1: implicit TLS (_submissions) is preferred.
    assert f"connection to mail.crepes.fr:{world.node.port('submissions')}" in err
    # Without --dns: the node's own DNS listener, from its data directory's ports.json.
    by_node = await mailstack(*args, "--data-dir", str(world.dns_node.config.data_dir))
    assert by_node.returncode == 0, by_node.stderr
    assert len(await mailbox(world.node, "bob@hamburger.edu")) == 2


async def test_direct_delivery_through_the_mx(world):
    result = await mailstack(
        "send", "--direct", "--from", "alice@crepes.fr", "--to", "bob@hamburger.edu",
        "--subject", "Do you like ketchup?", "--body", "How about pickles?",
        "--dns", world.dns, "--port", str(world.node.port("smtp")), "--tls", "none", "--trace",
    )  # fmt: skip
    out, err = text(result)
    assert result.returncode == 0, err
    lines = [line.split("] ", 1)[1] for line in err.splitlines() if "] " in line]
    assert "S: 220 mail.crepes.fr ESMTP mailstack" in lines
    assert "C: EHLO crepes.fr" in lines
    assert "C: MAIL FROM:<alice@crepes.fr>" in " ".join(lines)
    assert "C: RCPT TO:<bob@hamburger.edu>" in lines
    assert "C: DATA" in lines and not any("BDAT" in line for line in lines)
    assert any(line.startswith("S: 354") for line in lines)
    assert "C: ." in lines and "C: QUIT" in lines
    [stored] = await mailbox(world.node, "bob@hamburger.edu")
    assert b"How about pickles?" in stored
    assert b"spf=pass" in stored  # the MX saw alice's own MX address


async def test_trace_elides_credentials(world):
    result = await mailstack(
        "send", "--from", "alice@crepes.fr", "--to", "bob@hamburger.edu", "--body", "x",
        "--server", world.at("submission"), "--ca-file", world.ca, "--trace",
        env={"MAILSTACK_PASSWORD": PASSWORD},
    )  # fmt: skip
    err = result.stderr.decode()
    assert result.returncode == 0, err
    assert "C: AUTH PLAIN <credentials elided>" in err
    assert "C: STARTTLS" in err and "TLS started" in err
    secret = base64.b64encode(f"\0alice@crepes.fr\0{PASSWORD}".encode()).decode()
    assert PASSWORD not in err and secret not in err
    read = await mailstack(
        "read", "--imap", world.at("imap"), "--user", "bob@hamburger.edu", "--ca-file",
        world.ca, "--trace", env={"MAILSTACK_PASSWORD": PASSWORD},
    )  # fmt: skip
    err = read.stderr.decode()
    assert read.returncode == 0, err
    assert " LOGIN <credentials elided>" in err and PASSWORD not in err
    pop = await mailstack(
        "read", "--pop3", world.at("pop3"), "--user", "bob@hamburger.edu", "--ca-file",
        world.ca, "--trace", "--maildir", str(world.tmp / "M"),
        env={"MAILSTACK_PASSWORD": PASSWORD},
    )  # fmt: skip
    err = pop.stderr.decode()
    assert pop.returncode == 0, err
    assert "C: STLS" in err and "C: PASS <credentials elided>" in err and PASSWORD not in err


async def test_refused_recipient_is_said_and_the_others_get_it(world):
    result = await mailstack(
        "send", "--from", "alice@crepes.fr", "--to", "nobody@crepes.fr",
        "--to", "bob@hamburger.edu", "--body", "x", "--server", world.at("submissions"),
        "--tls", "implicit", "--ca-file", world.ca, "--password-file", world.password_file,
    )  # fmt: skip
    out, err = text(result)
    assert result.returncode == 2
    [line] = err.splitlines()
    assert line.startswith("mailstack: nobody@crepes.fr: refused: 550 5.1.1 ")
    assert out.startswith("accepted for bob@hamburger.edu: 250 ")
    assert len(await mailbox(world.node, "bob@hamburger.edu")) == 1


# -- reading ------------------------------------------------------------------------------


JAN5 = "Mon, 05 Jan 2026 10:00:00 +0000"


async def deliver(node, message: bytes) -> None:
    account = await node.store.account_get("bob@hamburger.edu")
    await store_deliver(node.store, message, [DeliveryTarget(account.id)])


async def to_bob(node, subject: str, sender: str = "alice@crepes.fr", date: str = JAN5) -> None:
    await deliver(
        node,
        f"From: {sender}\r\nTo: bob@hamburger.edu\r\nSubject: {subject}\r\n"
        f"Date: {date}\r\nMessage-ID: <{abs(hash(subject))}@test>\r\n\r\nhello\r\n".encode(),
    )


async def test_imap_folders_search_paging_and_mark_read(world):
    node = world.node
    await to_bob(node, "ketchup?")
    await to_bob(node, "mustard", "carol@x.org", "Tue, 06 Jan 2026 10:00:00 +0000")
    await to_bob(node, "more ketchup", date="Wed, 01 Jan 2025 10:00:00 +0000")
    await to_bob(node, "=?utf-8?q?Gr=C3=BC=C3=9Fe?=", date="Thu, 08 Jan 2026 10:00:00 +0000")
    account = await node.store.account_get("bob@hamburger.edu")
    await node.store.mailbox_create(account.id, "Recipes")
    imap = ["--imap", world.at("imap"), "--tls", "none", "--user", "bob@hamburger.edu",
            "--password-file", world.password_file]  # fmt: skip

    folders = await mailstack("read", *imap, "--folders", "--json")
    assert folders.returncode == 0, folders.stderr
    counts = {f["name"]: (f["messages"], f["unseen"]) for f in json.loads(folders.stdout)}
    assert counts["INBOX"] == (4, 4) and counts["Recipes"] == (0, 0)

    async def subjects(*more: str) -> list[str]:
        result = await mailstack("read", *imap, "--json", *more)
        assert result.returncode == 0, result.stderr
        return [row["subject"] for row in json.loads(result.stdout)]

    assert await subjects() == ["Grüße", "more ketchup", "mustard", "ketchup?"]  # newest first
    assert await subjects("--search", "from:alice subject:ketchup since:2026-01-01") == ["ketchup?"]
    assert await subjects("--search", "subject:grüße") == ["Grüße"]
    assert await subjects("--per-page", "3", "--page", "2") == ["ketchup?"]
    table = await mailstack("read", *imap, "--per-page", "3")
    assert "page 1 of 2 (4 messages" in table.stdout.decode()
    assert (await mailstack("read", *imap, "2", "--mark-read")).returncode == 0
    assert await subjects("--search", "unseen") == ["Grüße", "more ketchup", "ketchup?"]
    assert (await mailstack("read", *imap, "1")).returncode == 0  # without --mark-read
    assert await subjects("--search", "seen") == ["mustard"]


async def test_html_only_message_is_shown_as_text(world):
    html = (
        b"From: alice@crepes.fr\r\nTo: bob@hamburger.edu\r\nSubject: menu\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        b"<html><style>p{}</style><p>Cr&ecirc;pes <b>au sucre</b></p></html>\r\n"
    )
    await deliver(world.node, html)
    result = await mailstack(
        "read", "--imap", world.at("imap"), "--tls", "none", "--user", "bob@hamburger.edu",
        "--password-file", world.password_file, "1",
    )  # fmt: skip
    out = result.stdout.decode()
    assert "Crêpes" in out and "au sucre" in out and "<b>" not in out and "p{}" not in out


async def test_pop3_download_and_delete(world):
    for i in range(3):
        await to_bob(world.node, f"n{i}")
    maildir = world.tmp / "Mail"
    pop = ["read", "--pop3", world.at("pop3"), "--tls", "none", "--user", "bob@hamburger.edu",
           "--password-file", world.password_file, "--maildir", str(maildir), "--json"]  # fmt: skip
    first = await mailstack(*pop)
    assert first.returncode == 0, first.stderr
    assert "fetched 3 new messages" in first.stderr.decode()
    assert "deleted 3 from the server" in first.stderr.decode()
    assert [r["subject"] for r in json.loads(first.stdout)] == ["n2", "n1", "n0"]
    assert len(list((maildir / "new").iterdir())) == 3
    assert await mailbox(world.node, "bob@hamburger.edu") == []  # gone from the server
    second = await mailstack(*pop)
    assert "fetched 0 new messages" in second.stderr.decode()
    assert len(json.loads(second.stdout)) == 3  # the local copies stay


async def test_pop3_download_and_keep(world):
    for i in range(2):
        await to_bob(world.node, f"k{i}")
    maildir = world.tmp / "Mail"
    pop = ["read", "--pop3", world.at("pop3"), "--tls", "none", "--user", "bob@hamburger.edu",
           "--password-file", world.password_file, "--maildir", str(maildir), "--keep"]  # fmt: skip
    first = await mailstack(*pop)
    assert "fetched 2 new messages" in first.stderr.decode(), first.stderr
    second = await mailstack(*pop)
    assert "fetched 0 new messages" in second.stderr.decode()  # the UIDLs are remembered
    await to_bob(world.node, "k2")
    third = await mailstack(*pop)
    assert "fetched 1 new messages" in third.stderr.decode()
    assert len(await mailbox(world.node, "bob@hamburger.edu")) == 3  # all still on the server
    assert len(list((maildir / "new").iterdir())) == 3


HOSTILE_NAMES = ("../../escape.txt", "/tmp/absolute.txt", ".bashrc", "a\\..\\..\\win.txt", "..", "")


async def test_attachments_are_never_saved_outside_the_directory(world):
    tmp_path = world.tmp
    parts = "".join(
        f"--b\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Disposition: attachment; filename=\"{name}\"\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n{base64.b64encode(name.encode()).decode()}\r\n"
        for name in HOSTILE_NAMES
    )
    hostile = (
        "From: mallory@evil.example\r\nTo: bob@hamburger.edu\r\nSubject: gifts\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        f"--b\r\nContent-Type: text/plain\r\n\r\nopen me\r\n{parts}--b--\r\n"
    ).encode()
    await deliver(world.node, hostile)
    target = tmp_path / "inbox" / "saved"
    result = await mailstack(
        "read", "--imap", world.at("imap"), "--tls", "none", "--user", "bob@hamburger.edu",
        "--password-file", world.password_file, "1", "--save-attachments", str(target),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    saved = sorted(p.name for p in target.iterdir())
    # (the quoted-string's backslashes are quoting: the name is "a....win.txt")
    assert saved == sorted(["escape.txt", "absolute.txt", "bashrc", "a....win.txt",
                            "attachment-5", "attachment-6"])  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inbox", "password"]
    assert [p.name for p in (tmp_path / "inbox").iterdir()] == ["saved"]
    assert (target / "escape.txt").read_bytes() == b"../../escape.txt"


async def test_an_account_and_imap_found_by_srv(world):
    await to_bob(world.node, "by account")
    accounts = world.tmp / "accounts.toml"
    accounts.write_text(
        f'[account.bob]\nuser = "bob@hamburger.edu"\nca_file = "{world.ca}"\n'
        f'dns = "{world.dns}"\npassword = "{PASSWORD}"\n'
    )
    env = {"MAILSTACK_ACCOUNTS": str(accounts)}
    refused = await mailstack("read", "--account", "bob", "--json", env=env)
    assert refused.returncode == 1 and b"chmod 600" in refused.stderr
    accounts.chmod(0o600)
    # No --imap: the _imaps._tcp SRV record of hamburger.edu names mail.crepes.fr,
    # whose certificate verifies for that name.
    result = await mailstack("read", "--account", "bob", "--json", "--trace", env=env)
    assert result.returncode == 0, result.stderr
    assert [row["subject"] for row in json.loads(result.stdout)] == ["by account"]
    assert f"connection to mail.crepes.fr:{world.node.port('imaps')}" in result.stderr.decode()

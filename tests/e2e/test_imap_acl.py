"""Shared mailboxes end to end: alice shares a mailbox with bob (IMAP SETACL
and the `mailstack share` command), and bob, with imapclient and imaplib,
finds it in NAMESPACE and LIST, reads it, and is refused what his rights do
not allow (RFC 4314, RFC 2342, RFC 8440)."""

from __future__ import annotations

import asyncio
import imaplib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from support import TestNode, append

pytestmark = pytest.mark.timeout(60)

ALICE = "alice@poly.edu"
BOB = "bob@poly.edu"
CAROL = "carol@poly.edu"
PASSWORD = "secret-pw"
SHARED = f"Other Users/{ALICE}/Team"
NOTE = b"From: alice@poly.edu\r\nSubject: plan\r\n\r\nthe plan\r\n"


async def start(node_factory: Any) -> TestNode:
    node: TestNode = await node_factory(listen=("imap",))
    for user in (ALICE, BOB, CAROL):
        await node.add_user(user, PASSWORD)
    alice = await node.store.account_get(ALICE)
    await node.store.mailbox_create(alice.id, "Team")
    team = await node.store.mailbox_get(alice.id, "Team")
    await append(node.store, team.id, NOTE)
    return node


def connect(node: TestNode, user: str) -> IMAPClient:
    c = IMAPClient("127.0.0.1", port=node.port("imap"), ssl=False, timeout=10)
    c.login(user, PASSWORD)
    return c


async def test_share_read_and_refusals_with_imapclient(node_factory: Any) -> None:
    node = await start(node_factory)

    def scenario() -> None:
        with connect(node, ALICE) as alice, connect(node, BOB) as bob:
            assert b"ACL" in alice.capabilities()
            alice.setacl("Team", BOB, "lrs")
            assert dict(alice.getacl("Team"))[BOB.encode()] == b"lrs"

            ns = bob.namespace()
            assert ns.personal == (("", "/"),)
            assert ns.other == (("Other Users/", "/"),)
            names = [f[2] for f in bob.list_folders()]
            assert SHARED in names and "INBOX" in names
            assert [f[2] for f in bob.list_folders(f"Other Users/{ALICE}/")] == [SHARED]

            info = bob.select_folder(SHARED)
            assert info[b"EXISTS"] == 1
            assert info[b"PERMANENTFLAGS"] == (b"\\Seen",)
            assert bob.fetch([1], ["BODY[]"])[1][b"BODY[]"] == NOTE
            assert b"\\Seen" in bob.get_flags([1])[1]
            with pytest.raises(IMAPClientError, match="NOPERM"):
                bob.add_flags([1], [b"\\Flagged"])
            with pytest.raises(IMAPClientError, match="NOPERM"):
                bob.append(SHARED, b"Subject: mine\r\n\r\nnot allowed\r\n")
            with pytest.raises(IMAPClientError, match="NOPERM"):
                bob.delete_folder(SHARED)
            with pytest.raises(IMAPClientError, match="NOPERM"):
                bob.getacl(SHARED)
            bob.unselect_folder()

            # Carol has no right: for her the mailbox does not exist.
            with connect(node, CAROL) as carol:
                assert SHARED not in [f[2] for f in carol.list_folders()]
                with pytest.raises(IMAPClientError, match="NONEXISTENT"):
                    carol.select_folder(SHARED)

            # imapclient has no DELETEACL (and sends empty rights as nothing): imaplib has.
            assert alice._imap.deleteacl("Team", BOB)[0] == "OK"
            assert SHARED not in [f[2] for f in bob.list_folders()]

    await asyncio.to_thread(scenario)


async def test_myrights_and_writes_with_imaplib(node_factory: Any) -> None:
    node = await start(node_factory)

    def scenario() -> None:
        alice = imaplib.IMAP4("127.0.0.1", node.port("imap"), timeout=10)
        bob = imaplib.IMAP4("127.0.0.1", node.port("imap"), timeout=10)
        try:
            alice.login(ALICE, PASSWORD)
            bob.login(BOB, PASSWORD)
            assert alice.setacl("Team", BOB, "lrswte")[0] == "OK"
            typ, data = bob.myrights(f'"{SHARED}"')
            assert typ == "OK" and data == [f'"{SHARED}" lrswted'.encode()]
            typ, data = bob.list('""', f'"Other Users/{ALICE}/*" RETURN (MYRIGHTS)')
            assert typ == "OK" and data == [f'(\\HasNoChildren) "/" "{SHARED}"'.encode()]
            assert bob.response("MYRIGHTS") == ("MYRIGHTS", [f'"{SHARED}" lrswted'.encode()])
            typ, _ = bob.select(f'"{SHARED}"')
            assert typ == "OK"
            assert bob.store("1", "+FLAGS", "(\\Flagged \\Deleted)")[0] == "OK"
            assert bob.expunge()[0] == "OK"
            typ, data = bob.append(f'"{SHARED}"', None, None, b"Subject: x\r\n\r\ny\r\n")
            assert typ == "NO" and b"NOPERM" in data[0]
            bob.logout()
            alice.logout()
        finally:
            for c in (alice, bob):
                try:
                    c.shutdown()
                except OSError:
                    pass

    await asyncio.to_thread(scenario)
    alice = await node.store.account_get(ALICE)
    team = await node.store.mailbox_get(alice.id, "Team")
    assert await node.store.messages(team.id) == []


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "mailstack.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
    )
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result


def test_share_command(tmp_path: Path) -> None:
    data = str(tmp_path / "d")
    cli("init", "--data-dir", data, "--hostname", "mail.poly.edu")
    cli("domain", "add", "poly.edu", "--data-dir", data)
    for user in (ALICE, BOB):
        subprocess.run(
            [sys.executable, "-m", "mailstack.cli", "user", "add", user, "--password-stdin",
             "--data-dir", data],
            input=PASSWORD + "\n", text=True, check=True, capture_output=True, timeout=60,
        )  # fmt: skip
    out = cli("share", "INBOX", "--owner", ALICE, "--with", BOB, "--rights", "lrswipkxtecda",
              "--data-dir", data).stdout  # fmt: skip
    assert out.strip() == f"{ALICE} INBOX: {BOB} has lrswipkxteacd"
    listed = cli("share", "list", "--data-dir", data).stdout
    assert listed == f"{ALICE}\tINBOX\t{BOB}\tlrswipkxteacd\n"
    cli("share", "INBOX", "--owner", ALICE, "--with", BOB, "--rights=-wd", "--data-dir", data)
    assert cli("share", "list", "--owner", ALICE, "--data-dir", data).stdout.endswith(
        "\tlrsipkxac\n"
    )
    cli("share", "INBOX", "--owner", ALICE, "--with", "anyone", "--rights=lr", "--data-dir", data)
    revoked = cli("share", "INBOX", "--owner", ALICE, "--with", BOB, "--rights", "",
                  "--data-dir", data).stdout  # fmt: skip
    assert revoked.strip() == f"{ALICE} INBOX: {BOB} has no rights"
    assert cli("share", "list", "--data-dir", data).stdout == f"{ALICE}\tINBOX\tanyone\tlr\n"
    for bad, message in (
        (("INBOX", "--owner", ALICE, "--with", BOB, "--rights", "lrQ"), "Uppercase"),
        (("INBOX", "--owner", ALICE, "--with", "nobody@poly.edu", "--rights", "lr"), "no such"),
        (("Nope", "--owner", ALICE, "--with", BOB, "--rights", "lr"), "has no mailbox"),
        (("INBOX", "--owner", ALICE, "--with", ALICE, "--rights", "lr"), "every right"),
        (("INBOX", "--owner", ALICE), "needs --owner, --with and --rights"),
    ):
        failed = cli("share", *bad, "--data-dir", data, check=False)
        assert failed.returncode == 1 and message in failed.stderr, failed.stderr

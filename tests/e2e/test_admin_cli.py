"""`mailstack user add --admin`, `user admin [--off]`, `user disable
[--off]`, `user enable`, `user quota` as a user types them: the store
changes, a disabled account cannot log in over IMAP, and every action is
logged with ``actor=cli:USER``, never the password."""

from __future__ import annotations

import asyncio
import getpass
import imaplib
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mailstack.mime import PARSE_CODEC
from mailstack.store.sqlite import SqliteStore

PASSWORD = "a long enough secret"


def cli(data_dir: Path, *args: str, stdin: str | None = None, check: bool = True) -> Any:
    result = subprocess.run(
        [sys.executable, "-m", "mailstack.cli", *args, "--data-dir", str(data_dir)],
        input=stdin, capture_output=True, text=True, timeout=60,
    )
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


async def account(data_dir: Path, address: str) -> Any:
    store = await SqliteStore.open(data_dir / "mailstack.db", codec=PARSE_CODEC)
    try:
        return await store.account_get(address)
    finally:
        await store.close()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "node"
    data.mkdir()
    (data / "mailstack.toml").write_text('[node]\nhostname = "mail.crepes.test"\n[listen]\n')
    cli(data, "domain", "add", "crepes.test", "--no-dns")
    return data


async def test_user_add_admin_role_disable_enable_and_quota(data_dir: Path) -> None:
    run = asyncio.to_thread
    added = await run(
        cli, data_dir, "user", "add", "--admin", "root@crepes.test", "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert "added user root@crepes.test (admin)" in added.stdout
    actor = f"actor=cli:{getpass.getuser()}"
    assert f"admin action {actor} action=account-add target=root@crepes.test" in added.stderr
    assert PASSWORD not in added.stdout + added.stderr
    assert (await account(data_dir, "root@crepes.test")).admin

    await run(cli, data_dir, "user", "add", "bob@crepes.test", "--password-stdin",
              stdin=PASSWORD + "\n")
    assert not (await account(data_dir, "bob@crepes.test")).admin
    out = (await run(cli, data_dir, "user", "admin", "bob@crepes.test")).stdout
    assert "bob@crepes.test has the admin role" in out
    assert (await account(data_dir, "bob@crepes.test")).admin
    await run(cli, data_dir, "user", "admin", "bob@crepes.test", "--off")
    assert not (await account(data_dir, "bob@crepes.test")).admin

    out = (await run(cli, data_dir, "user", "disable", "bob@crepes.test")).stdout
    assert "still receives mail" in out
    assert (await account(data_dir, "bob@crepes.test")).disabled
    listing = (await run(cli, data_dir, "user", "list")).stdout
    assert "bob@crepes.test used=0 disabled" in listing
    assert "root@crepes.test used=0 admin" in listing
    await run(cli, data_dir, "user", "enable", "bob@crepes.test")
    assert not (await account(data_dir, "bob@crepes.test")).disabled
    await run(cli, data_dir, "user", "disable", "bob@crepes.test")
    await run(cli, data_dir, "user", "disable", "bob@crepes.test", "--off")
    assert not (await account(data_dir, "bob@crepes.test")).disabled

    quota = await run(cli, data_dir, "user", "quota", "bob@crepes.test", "5000")
    assert "quota of bob@crepes.test: 5000" in quota.stdout
    assert 'changes="quota=5000"' in quota.stderr
    assert (await account(data_dir, "bob@crepes.test")).quota == 5000
    missing = await run(cli, data_dir, "user", "admin", "nobody@crepes.test", check=False)
    assert missing.returncode == 1 and "no account nobody@crepes.test" in missing.stderr


async def test_a_disabled_account_cannot_log_in_but_still_receives(
    node_factory: Any,
) -> None:
    node = await node_factory(listen=("imap", "smtp"), smtp={"message_auth": "off"})
    await node.add_user("bob@crepes.test", PASSWORD)
    await node.store.account_set("bob@crepes.test", disabled=True)

    def login() -> None:
        with imaplib.IMAP4("127.0.0.1", node.port("imap"), timeout=10) as imap:
            imap.starttls(ssl_context=_insecure())
            imap.login("bob@crepes.test", PASSWORD)

    with pytest.raises(imaplib.IMAP4.error):
        await asyncio.to_thread(login)

    def send() -> None:
        import smtplib

        with smtplib.SMTP("127.0.0.1", node.port("smtp"), timeout=10) as smtp:
            message = b"Subject: hi\r\n\r\nstill here\r\n"
            smtp.sendmail("carol@far.test", ["bob@crepes.test"], message)

    await asyncio.to_thread(send)
    bob = await node.store.account_get("bob@crepes.test")
    inbox = await node.store.mailbox_get(bob.id, "INBOX")
    assert len(await node.store.messages(inbox.id)) == 1
    await node.store.account_set("bob@crepes.test", disabled=False)
    await asyncio.to_thread(login)


def _insecure() -> Any:
    import ssl

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context

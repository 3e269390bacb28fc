"""Two nodes on one PostgreSQL store, driven by clients we did not write:
mail taken by one node's MX (smtplib) is read on the other's IMAP (imaplib),
and an IMAP IDLE on one node hears a delivery accepted by the other."""

from __future__ import annotations

import asyncio
import imaplib
import os
import smtplib
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from support import PostgresDatabase, TestNode, postgres_nodes

USER, PASSWORD = "bob@hamburger.edu", "hungry"


def message(n: int) -> bytes:
    return f"From: alice@crepes.fr\r\nTo: {USER}\r\nSubject: note {n}\r\n\r\nbody {n}\r\n".encode()


@pytest.fixture
async def nodes(tmp_path: Path) -> AsyncIterator[list[TestNode]]:
    async with postgres_nodes(tmp_path, USER, PASSWORD) as started:
        yield started


async def test_mail_taken_by_one_node_is_read_and_heard_on_the_other(nodes: Any) -> None:
    a, b = nodes

    def scenario() -> None:
        c = imaplib.IMAP4("127.0.0.1", b.port("imap"), timeout=10)
        c.login(USER, PASSWORD)
        assert c.select("INBOX") == ("OK", [b"0"])
        tag = c._new_tag().decode()
        c.send(f"{tag} IDLE\r\n".encode())
        assert c.readline().startswith(b"+")
        with smtplib.SMTP("127.0.0.1", a.port("smtp"), timeout=10) as smtp:
            smtp.sendmail("alice@crepes.fr", [USER], message(1))
        c.sock.settimeout(1.5)  # node A's commit reaches node B within a second
        assert c.readline() == b"* 1 EXISTS\r\n"
        c.sock.settimeout(10)
        c.send(b"DONE\r\n")
        lines = [c.readline() for _ in range(2)]
        assert lines == [b"* 1 RECENT\r\n", lines[1]] and lines[1].startswith(tag.encode() + b" OK")
        status, data = c.uid("FETCH", "1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert status == "OK" and b"Subject: note 1" in data[0][1]
        c.logout()
        with smtplib.SMTP("127.0.0.1", b.port("smtp"), timeout=10) as smtp:
            smtp.sendmail("alice@crepes.fr", [USER], message(2))
        c = imaplib.IMAP4("127.0.0.1", a.port("imap"), timeout=10)
        c.login(USER, PASSWORD)
        assert c.select("INBOX") == ("OK", [b"2"])
        status, data = c.uid("SEARCH", "ALL")
        assert data == [b"1 2"]
        c.logout()

    await asyncio.to_thread(scenario)


async def test_the_command_line_works_on_a_postgresql_store(tmp_path: Path) -> None:
    database = PostgresDatabase()
    url = await database.create()
    try:
        data = tmp_path / "node"
        data.mkdir()
        (data / "mailstack.toml").write_text(
            f'[store]\nbackend = "postgresql"\nurl = "{url}"\npassword_env = "MAIL_DB_PW"\n'
        )
        env = {"MAIL_DB_PW": "unused-with-trust"}

        def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "mailstack.cli", *args, "--data-dir", str(data)],
                input=stdin, capture_output=True, text=True, timeout=60,
                env=os.environ | env,
            )

        assert cli("domain", "add", "hamburger.edu").returncode == 0
        done = cli("user", "add", USER, "--password-stdin", stdin="hungry-enough\n")
        assert done.returncode == 0, done.stderr
        store = await database.open()
        try:
            assert [a.address for a in await store.account_list()] == [USER]
        finally:
            await store.close()
        # The password's variable missing: a clear error, no traceback.
        env = {}
        os.environ.pop("MAIL_DB_PW", None)
        failed = cli("domain", "add", "crepes.fr")
        assert failed.returncode != 0
        assert "MAIL_DB_PW" in failed.stderr and "Traceback" not in failed.stderr
    finally:
        await database.drop()

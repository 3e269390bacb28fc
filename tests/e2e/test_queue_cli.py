"""`mailstack queue list|show|retry|delete|bounce` as a user types them."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mailstack.errors import NotFound
from mailstack.mime import PARSE_CODEC
from mailstack.store import NewEntry, NewRecipient, RecipientUpdate
from mailstack.store.sqlite import SqliteStore

MESSAGE = b"From: alice@crepes.fr\r\nTo: bob@hamburger.edu\r\nSubject: ketchup\r\n\r\nHi\r\n"


def cli(data_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "mailstack.cli", "queue", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture
async def queued(tmp_path):
    """A data directory whose queue holds two messages, one of them tried once."""
    data_dir = tmp_path / "node"
    data_dir.mkdir()
    (data_dir / "mailstack.toml").write_text('[node]\nhostname = "mail.crepes.fr"\n[listen]\n')
    store = await SqliteStore.open(data_dir / "mailstack.db", codec=PARSE_CODEC)
    now = time.time()
    ids = []
    for rcpt in ("bob@hamburger.edu", "ann@poly.edu"):
        entry = NewEntry("alice@crepes.fr", [NewRecipient(rcpt)], MESSAGE, now, now + 86400)
        ids.append(await store.queue_add(entry))
    [rcpt] = (await store.queue_get(ids[0])).recipients
    await store.queue_update(
        ids[0], [RecipientUpdate(rcpt.id, "queued", now + 3600, "451 4.3.0 try later")]
    )
    await store.close()
    return data_dir, ids


async def reopen(data_dir: Path) -> SqliteStore:
    return await SqliteStore.open(data_dir / "mailstack.db", codec=PARSE_CODEC)


async def test_list_and_show(queued):
    data_dir, (first, second) = queued
    listing = (await asyncio.to_thread(cli, data_dir, "list")).stdout
    assert "<alice@crepes.fr>" in listing and "<bob@hamburger.edu> queued, 1 attempt(s)" in listing
    assert "451 4.3.0 try later" in listing and "2 message(s) in the queue" in listing
    shown = (await asyncio.to_thread(cli, data_dir, "show", str(first))).stdout
    assert f"id:       {first}" in shown and "Subject: ketchup" in shown
    missing = await asyncio.to_thread(cli, data_dir, "show", "999", check=False)
    assert missing.returncode == 1 and "no queue entry 999" in missing.stdout


async def test_retry_makes_due_now(queued):
    data_dir, (first, _second) = queued
    before = time.time()
    out = (await asyncio.to_thread(cli, data_dir, "retry", str(first))).stdout
    assert "1 recipient(s) due now" in out
    store = await reopen(data_dir)
    try:
        [rcpt] = (await store.queue_get(first)).recipients
        assert before <= rcpt.next_attempt <= time.time()
    finally:
        await store.close()
    assert "2 recipient(s)" in (await asyncio.to_thread(cli, data_dir, "retry")).stdout


async def test_delete_drops_without_a_bounce(queued):
    data_dir, (first, second) = queued
    await asyncio.to_thread(cli, data_dir, "delete", str(first))
    store = await reopen(data_dir)
    try:
        assert [e.id for e in await store.queue_list()] == [second]
    finally:
        await store.close()


async def test_bounce_fails_the_message_and_queues_a_dsn(queued):
    data_dir, (first, second) = queued
    out = (await asyncio.to_thread(cli, data_dir, "bounce", str(first))).stdout
    assert "bounced 1 recipient(s)" in out and "DSN to <alice@crepes.fr> queued as" in out
    store = await reopen(data_dir)
    try:
        with pytest.raises(NotFound):
            await store.queue_get(first)
        entries = {e.id: e for e in await store.queue_list()}
        [dsn_id] = set(entries) - {second}
        assert entries[dsn_id].mail_from == ""
        assert entries[dsn_id].recipients[0].address == "alice@crepes.fr"
        data = await store.queue_data(dsn_id)
        assert b"Action: failed" in data and b"Status: 5.0.0" in data
    finally:
        await store.close()


@pytest.mark.timeout(60)
async def test_a_running_node_hears_retry_at_once(node_factory):
    """`queue retry` in another process reaches a running queue within about
    a second, not at its next poll (here ten minutes away)."""
    node = await node_factory(listen=("smtp",), hostname="mail.hamburger.edu",
                              queue={"poll": 600})
    bob = await node.add_user("bob@hamburger.edu")
    data_dir = node.config.data_dir
    (data_dir / "mailstack.toml").write_text('[node]\nhostname = "mail.hamburger.edu"\n')
    now = time.time()
    entry = NewEntry("alice@crepes.fr", [NewRecipient("bob@hamburger.edu")], MESSAGE, now,
                     now + 86400)
    entry_id = await node.store.queue_add(entry)
    [rcpt] = (await node.store.queue_get(entry_id)).recipients
    await node.store.queue_update(
        entry_id, [RecipientUpdate(rcpt.id, "queued", now + 3600, "451 4.3.0 try later")]
    )
    inbox = await node.store.mailbox_get(bob.id, "INBOX")
    await asyncio.sleep(1.5)
    assert await node.store.messages(inbox.id) == []  # deferred for an hour
    await asyncio.to_thread(cli, data_dir, "retry", str(entry_id))
    deadline = time.monotonic() + 5
    while not await node.store.messages(inbox.id):
        assert time.monotonic() < deadline, "the running queue did not hear the retry"
        await asyncio.sleep(0.1)
    assert b"Subject: ketchup" in await node.store.message_bytes(inbox.id, 1)


async def test_hold_keeps_a_message_back_until_released(queued):
    data_dir, (first, second) = queued
    out = (await asyncio.to_thread(cli, data_dir, "hold", str(first))).stdout
    assert "held 1 recipient(s)" in out
    assert "<bob@hamburger.edu> held" in (await asyncio.to_thread(cli, data_dir, "list")).stdout
    store = await reopen(data_dir)
    try:
        assert [e.id for e in await store.queue_due(time.time() + 86400)] == [second]
    finally:
        await store.close()
    out = (await asyncio.to_thread(cli, data_dir, "release", str(first))).stdout
    assert "released 1 recipient(s)" in out
    store = await reopen(data_dir)
    try:
        assert {e.id for e in await store.queue_due(time.time())} == {first, second}
    finally:
        await store.close()
    missing = await asyncio.to_thread(cli, data_dir, "hold", "999", check=False)
    assert missing.returncode == 1 and "no queue entry 999" in missing.stdout

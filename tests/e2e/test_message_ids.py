"""Ids that name a message ("queued as 7", "accepted for delivery as 3-17",
the Received: id) are unique for the life of the data directory: across
restarts, and after the queue entry they named is gone."""

from __future__ import annotations

import asyncio
import re
import smtplib

from support import TestNode, make_config, open_fast_store

MESSAGE = b"From: alice@crepes.fr\r\nTo: bob@hamburger.edu\r\nSubject: ids\r\n\r\nhi\r\n"


def submit(port: int, rcpt: str) -> str:
    with smtplib.SMTP("127.0.0.1", port, local_hostname="alice-pc", timeout=10) as s:
        s.login("alice@crepes.fr", "hungry")
        s.mail("alice@crepes.fr")
        s.rcpt(rcpt)
        code, text = s.data(MESSAGE)
        assert code == 250, text
        return text.decode()


def receive(port: int) -> str:
    with smtplib.SMTP("127.0.0.1", port, local_hostname="mx.crepes.fr", timeout=10) as s:
        s.ehlo()
        s.mail("carol@crepes.fr")
        s.rcpt("alice@crepes.fr")
        code, text = s.data(MESSAGE)
        assert code == 250, text
        return text.decode()


async def test_ids_are_not_reused_across_restarts(tmp_path):
    config = make_config(
        tmp_path / "data",
        ("smtp", "submission"),
        hostname="crepes.fr",
        table={
            "submission": {"allow_plaintext_on_loopback": True},
            # Nothing leaves: remote mail stays queued, as another node would find it.
            "queue": {"enabled": False},
        },
    )
    queued: list[int] = []
    accepted: list[str] = []
    for run in range(2):
        node = TestNode(config, store_factory=open_fast_store)
        await node.start()
        try:
            if run == 0:
                await node.add_user("alice@crepes.fr")
            reply = await asyncio.to_thread(submit, node.port("submission"), "bob@hamburger.edu")
            [queue_id] = re.findall(r"queued as (\d+)", reply)
            queued.append(int(queue_id))
            # The entry is gone (delivered, say) before the node stops.
            await node.store.queue_remove(int(queue_id))
            for _ in range(2):
                reply = await asyncio.to_thread(receive, node.port("smtp"))
                accepted += re.findall(r"accepted for delivery as (\S+)", reply)
            reply = await asyncio.to_thread(submit, node.port("submission"), "alice@crepes.fr")
            accepted += re.findall(r"accepted for delivery as (\S+)", reply)
        finally:
            await node.stop()
    assert queued[1] > queued[0]
    assert len(accepted) == 6 and len(set(accepted)) == 6
    # The Received: fields carry the same ids.
    store = await open_fast_store(config)
    try:
        account = await store.account_get("alice@crepes.fr")
        inbox = await store.mailbox_get(account.id, "INBOX")
        texts = [await store.message_bytes(inbox.id, m.uid) for m in await store.messages(inbox.id)]
        ids = [re.search(rb"with E?SMTPS?A? id (\S+?)[;\s]", text) for text in texts]
        assert sorted(m.group(1).decode() for m in ids if m) == sorted(accepted)
    finally:
        await store.close()

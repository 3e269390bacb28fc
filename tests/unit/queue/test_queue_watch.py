"""The queue runner tells a watcher each recorded outcome of an entry, and
cancels an entry only while no recipient has it and no attempt is under
way (JMAP EmailSubmission's deliveryStatus and undo, RFC 8621 §7)."""

from __future__ import annotations

import asyncio
import dataclasses
from types import SimpleNamespace

from test_queue_runner import MESSAGE, Clock, Resolver, slow_server  # noqa: F401

from mailstack.queue.config import QueueConfig
from mailstack.queue.runner import QueueRunner
from mailstack.store import DELIVERED, NewRecipient


def runner_for(store, port: int = 25) -> QueueRunner:
    config = dataclasses.replace(QueueConfig(), port=port)
    node = SimpleNamespace(
        config=SimpleNamespace(queue=config), store=store, hostname="mail.crepes.fr"
    )
    return QueueRunner(node, clock=Clock(), resolver=Resolver())  # type: ignore[arg-type]


async def test_an_entry_no_one_tried_is_canceled(store):
    runner = runner_for(store)  # not started: nothing is attempted
    entry_id = await runner.enqueue(
        runner.new_entry("alice@crepes.fr", [NewRecipient("ann@poly.edu")], MESSAGE)
    )
    assert await runner.cancel(entry_id) is True
    assert await store.queue_list() == []
    assert await runner.cancel(entry_id) is False  # gone


async def test_watcher_hears_the_outcome_and_cancel_comes_too_late(store, slow_server):  # noqa: F811
    port, release, data_seen, _accepted = slow_server
    runner = runner_for(store, port)
    heard: list[dict] = []

    async def watcher(entry, outcomes):
        heard.append(outcomes)
        return True

    await runner.start()
    try:
        entry_id = await runner.enqueue(
            runner.new_entry("alice@crepes.fr", [NewRecipient("ann@poly.edu")], MESSAGE),
            watcher,
        )
        await asyncio.wait_for(data_seen.wait(), 10)
        assert await runner.cancel(entry_id) is False  # under way
        release.set()
        for _ in range(200):
            if heard:
                break
            await asyncio.sleep(0.02)
    finally:
        release.set()
        await runner.stop()
    [outcomes] = heard
    assert outcomes["ann@poly.edu"].state == DELIVERED
    assert outcomes["ann@poly.edu"].last_reply.startswith("250 2.0.0")
    assert await runner.cancel(entry_id) is False

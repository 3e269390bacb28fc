"""IDLE (RFC 2177): updates while idling, DONE, a bad continuation, EOF."""

import asyncio

from transcript import Client, message, setup_account

from support import append


async def selected(store, count=3):
    account, inbox = await setup_account(store, count)
    c = Client(store)
    await c.login()
    return c, account, inbox


async def test_idle_reports_delivery_and_done(store):
    c, account, inbox = await selected(store, 1)
    await c.send("s1 SELECT INBOX")
    task = asyncio.create_task(c.send("a1 IDLE"))
    for _ in range(100):
        await asyncio.sleep(0.01)
        if c.channel.out:
            break
    assert c.channel.out == b"+ idling\r\n"
    c.channel.out.clear()
    await append(store, inbox.id, message(2))
    for _ in range(50):
        await asyncio.sleep(0.01)
        if c.channel.out:
            break
    assert bytes(c.channel.out) == b"* 2 EXISTS\r\n* 2 RECENT\r\n"
    c.channel.out.clear()
    await store.store_flags(inbox.id, [1], ["\\Deleted"], "add")
    await store.expunge(inbox.id)
    for _ in range(50):
        await asyncio.sleep(0.01)
        if b"EXPUNGE" in c.channel.out:
            break
    assert b"* 1 EXPUNGE\r\n" in c.channel.out
    c.channel.lines.put_nowait(b"DONE\r\n")
    got = await task
    assert got[-1] == "a1 OK IDLE terminated"


async def test_idle_bad_continuation_and_eof(store):
    c, account, inbox = await selected(store, 0)
    c.channel.lines.put_nowait(b"NOPE\r\n")
    got = await c.send("a1 IDLE")
    assert got == ["+ idling", "a1 BAD Expected DONE"]
    c.channel.lines.put_nowait(None)
    got = await c.send("a2 IDLE")
    assert got == ["+ idling"] and c.session.closing

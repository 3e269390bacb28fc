"""SEARCH through the store's full-text index: the same answers as the scan
(the oracle: the index switched off), and the parse read only of the
messages the index leaves."""

from __future__ import annotations

import random

from transcript import Client, setup_account

from mailstack.store import DeliveryTarget
from search_corpus import NEEDLES, message

from support import append, deliver

PROGRAMS = [
    *(f'TEXT "{n}"' for n in NEEDLES if "\n" not in n),
    *(f'BODY "{n}"' for n in NEEDLES if "\n" not in n),
    *(f'SUBJECT "{n}"' for n in NEEDLES if "\n" not in n),
    'HEADER Delivered-To "bob@ham"', 'HEADER X-N "7"', 'HEADER Subject ""',
    'FROM "alice"', 'FROM "alice lunch"', 'TO "hamburger"',
    'TEXT lunch TEXT report', 'OR TEXT zebra BODY crêpes', 'NOT TEXT lunch',
    'OR SUBJECT zebra FROM "alice x-ray"', 'SEEN TEXT lunch', 'NOT BODY "ab"',
    'TEXT lunch SUBJECT lunch UNSEEN', 'OR (TEXT zebra SEEN) (BODY report NOT SUBJECT ray)',
    'UID 5:20 TEXT lunch', 'TEXT "x-n: 1"', 'TEXT "delivered-to: bob"',
]  # fmt: skip


async def _corpus(store):
    account, inbox = await setup_account(store, 0)
    rng = random.Random(3501)
    for n in range(40):
        raw = message(rng, n)
        if n % 2:
            prefix = f"Delivered-To: bob@hamburger.edu\r\nX-N: {n}\r\n".encode()
            await deliver(store, raw, [DeliveryTarget(account.id, prefix=prefix)])
        else:
            await append(store, inbox.id, raw, ["\\Seen"] if n % 3 else [])
    c = Client(store)
    await c.login()
    await c.send("s1 SELECT INBOX")
    return c, inbox


async def _search(c, program):
    lines = await c.send(f"t SEARCH CHARSET UTF-8 {program}".encode())
    assert lines[-1].startswith("t OK"), (program, lines)
    (found,) = [line for line in lines if line.startswith("* SEARCH")]
    return [int(n) for n in found.split()[2:]]


async def test_search_with_the_index_equals_the_scan(store, monkeypatch):
    c, _inbox = await _corpus(store)
    indexed = {p: await _search(c, p) for p in PROGRAMS}

    async def no_index(mailbox_id, field, needle):
        return None

    monkeypatch.setattr(store, "search_text", no_index)
    scanned = {p: await _search(c, p) for p in PROGRAMS}
    assert indexed == scanned
    # The corpus makes the comparison mean something: hits many, few, none.
    sizes = sorted(len(found) for found in scanned.values())
    assert sizes[0] == 0 and sizes[-1] >= 30 and any(0 < n < 10 for n in sizes)


async def test_search_reads_the_parse_only_of_what_the_index_leaves(store, monkeypatch):
    c, inbox = await _corpus(store)
    asked: list[int] = []
    get_many = c.ctx.parsed.get_many

    async def counting(store_, mailbox_id, uidvalidity, uids):
        asked.extend(uids)
        return await get_many(store_, mailbox_id, uidvalidity, uids)

    monkeypatch.setattr(c.ctx.parsed, "get_many", counting)
    assert await _search(c, "TEXT zebra BODY lunch")
    assert asked == []  # answered by the index alone
    found = await _search(c, "SUBJECT zebra")
    narrowed = await store.search_text(inbox.id, "header", "zebra")
    assert len(asked) == len(narrowed) < 40 and set(found) <= set(asked)
    asked.clear()
    await _search(c, 'TEXT "ab"')  # too short for the index: every message is read
    assert len(asked) == 40


async def test_an_expunged_message_is_no_longer_found(store):
    c, _inbox = await _corpus(store)
    await append(store, _inbox.id, b"Subject: walrus\r\n\r\ngoo goo g'joob\r\n")
    await c.send("n NOOP")
    (last,) = await _search(c, 'TEXT "g\'joob"')
    await c.send(f"s STORE {last} +FLAGS (\\Deleted)")
    await c.send("e EXPUNGE")
    assert await _search(c, 'TEXT "g\'joob"') == []
    assert await _search(c, "SUBJECT walrus") == []

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


def _count_parses(c, monkeypatch) -> list[int]:
    """The UIDs whose parse the session reads from now on (a list that grows)."""
    asked: list[int] = []
    get_many = c.ctx.parsed.get_many

    async def counting(store_, mailbox_id, uidvalidity, uids):
        asked.extend(uids)
        return await get_many(store_, mailbox_id, uidvalidity, uids)

    monkeypatch.setattr(c.ctx.parsed, "get_many", counting)
    return asked


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
    asked = _count_parses(c, monkeypatch)
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


ADDRESS_FORMS = [
    b"From: <user-from (comment)@ (comment) domain.org>\r\n",
    b'From: "Smith, John" <john.smith@example.com>\r\n',
    b"From: john . q . public @ example . net (obsolete spacing)\r\n",
    b"From: =?utf-8?q?J=C3=B6rg_M=C3=BCller?= <jm@example.de>\r\n",
    b'From: "a\\"quote\\"d" <q@example.org>\r\n',
    b"From: walrus@example.com (The Walrus)\r\n",
    b"From: Team: anna@example.com, bert@example.com;\r\n",
    b"From: Folded\r\n Name <folded@example.com>\r\n",
]
ADDRESS_NEEDLES = [
    "user-from@domain.org", "Smith, John", "smith, john <john.smith@", "john.q.public@example.net",
    "Jörg Müller", "jörg müller <jm@example.de>", 'a"quote"d', "The Walrus <walrus@",
    "Team", "bert@example", "Folded Name", "name <folded", "example", "nobody-here",
]  # fmt: skip


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


async def test_address_keys_narrowed_by_the_index_find_what_the_scan_finds(store, monkeypatch):
    """FROM/TO/CC/BCC match the parsed address; the index narrows them by a
    part of the string the header line holds as it is. Comments, quoting,
    folding, obsolete spacing and encoded words change nothing found."""
    _account, inbox = await setup_account(store, 0)
    for n, field in enumerate(ADDRESS_FORMS):
        raw = field + b"To: x@example.net\r\nSubject: form %d\r\n\r\nbody\r\n" % n
        await append(store, inbox.id, raw)
    c = Client(store)
    await c.login()
    await c.send("s1 SELECT INBOX")
    asked = _count_parses(c, monkeypatch)
    indexed = {n: await _search(c, "FROM " + _quoted(n)) for n in ADDRESS_NEEDLES}
    read_indexed = len(asked)
    c.ctx.parsed = type(c.ctx.parsed)()  # nothing cached: the scan reads every parse

    async def no_index(mailbox_id, field, needle):
        return None

    monkeypatch.setattr(store, "search_text", no_index)
    scanned = {n: await _search(c, "FROM " + _quoted(n)) for n in ADDRESS_NEEDLES}
    assert indexed == scanned
    assert all(scanned[n] for n in ADDRESS_NEEDLES[:-1]) and scanned["nobody-here"] == []
    assert scanned["Smith, John"] == [2] and scanned["john.q.public@example.net"] == [3]
    assert read_indexed <= 20  # of 112 the scan reads (14 needles, 8 messages)

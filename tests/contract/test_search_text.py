"""Store contract: search_text, the full-text index kept at delivery.

Its answers are compared with the scan it replaces (the needle, casefolded,
in the stored parse's decoded header lines and body text, as IMAP SEARCH
TEXT/BODY match) over a generated corpus: unicode, case, folded and
RFC 2047 encoded headers, attachments, trace prefixes, shared blobs.
"""

from __future__ import annotations

import asyncio
import random

from mailstack.store import DeliveryTarget
from search_corpus import NEEDLES, message

from support import append, deliver


async def _scan(store, mailbox_id, needle, field):
    """The oracle: what IMAP SEARCH did before the index, over every message."""
    parsed = await store.messages_parsed(
        mailbox_id, [m.uid for m in await store.messages(mailbox_id)]
    )
    folded = needle.casefold()
    found = set()
    for uid, p in parsed.items():
        head = p.header_text()
        hay = {"text": head + "\n" + p.text, "body": p.text, "header": head}[field]
        if folded in hay.casefold():
            found.add(uid)
    return found


async def _setup(store):
    await store.domain_add("hamburger.edu")
    bob = await store.account_add("bob@hamburger.edu", "hungry")
    carol = await store.account_add("carol@hamburger.edu", "hungry")
    return bob, carol


async def test_search_text_equals_the_scan_on_a_generated_corpus(store):
    bob, carol = await _setup(store)
    inbox = await store.mailbox_get(bob.id, "INBOX")
    rng = random.Random(16)
    # Deliveries at once (filed together in one group commit), one at a
    # time, shared by two recipients (one blob), and APPENDs (no prefix).
    await asyncio.gather(
        *(
            deliver(
                store,
                message(rng, n),
                [
                    DeliveryTarget(
                        bob.id, prefix=f"Delivered-To: bob@hamburger.edu\r\nX-N: {n}\r\n".encode()
                    ),
                    DeliveryTarget(carol.id, prefix=b"Delivered-To: carol@hamburger.edu\r\n"),
                ],
            )
            for n in range(30)
        )
    )
    for n in range(30, 40):
        await deliver(
            store, message(rng, n), [DeliveryTarget(bob.id, prefix=b"Return-Path: <x@y.z>\r\n")]
        )
    for n in range(40, 50):
        await append(store, inbox.id, message(rng, n))
    assert len(await store.messages(inbox.id)) == 50
    answered = 0
    for needle in NEEDLES:
        for field in ("text", "body", "header"):
            got = await store.search_text(inbox.id, field, needle)
            if got is None:
                assert len(needle.casefold()) < 3 or "\n" in needle
                continue
            answered += 1
            assert got == await _scan(store, inbox.id, needle, field), (needle, field)
    assert answered > 60
    # Some needles hit many messages, some few, some none.
    counts = {
        n: len(await store.search_text(inbox.id, "text", n) or ())
        for n in ("lunch", "x-n: 7", "not-there-at-all")
    }
    assert counts["lunch"] > 5 and counts["x-n: 7"] == 1 and counts["not-there-at-all"] == 0


async def test_search_text_forgets_expunged_moved_and_deleted_messages(store):
    bob, carol = await _setup(store)
    inbox = await store.mailbox_get(bob.id, "INBOX")
    archive = await store.mailbox_create(bob.id, "Beatles")
    raw = b"Subject: the walrus\r\n\r\nI am the eggman\r\n"
    [(_, first), (carol_box, carol_uid)] = await deliver(
        store,
        raw,
        [
            DeliveryTarget(bob.id, prefix=b"Delivered-To: bob@hamburger.edu\r\n"),
            DeliveryTarget(carol.id, prefix=b"Delivered-To: carol@hamburger.edu\r\n"),
        ],
    )
    second = await append(store, inbox.id, b"Subject: goo goo\r\n\r\nthe eggman again\r\n")
    assert await store.search_text(inbox.id, "body", "EGGMAN") == {first, second}
    assert await store.search_text(inbox.id, "header", "walrus") == {first}
    assert await store.search_text(inbox.id, "text", "delivered-to: bob") == {first}
    assert await store.search_text(carol_box, "text", "delivered-to: carol") == {carol_uid}

    # A copy keeps its text and prefix; the source's expunge leaves the copy's.
    [(_, copied)] = await store.copy(inbox.id, [first], archive.id)
    await store.expunge(inbox.id, [first], require_deleted=False)
    assert await store.search_text(inbox.id, "body", "eggman") == {second}
    assert await store.search_text(inbox.id, "text", "delivered-to: bob") == set()
    assert await store.search_text(archive.id, "text", "delivered-to: bob") == {copied}
    assert await store.search_text(archive.id, "header", "walrus") == {copied}
    # Carol's copy of the shared blob is untouched by Bob's expunge.
    assert await store.search_text(carol_box, "body", "eggman") == {carol_uid}

    # A move within the account takes the message's text along.
    [(_, moved)] = await store.move(inbox.id, [second], archive.id)
    assert await store.search_text(inbox.id, "body", "eggman") == set()
    assert await store.search_text(archive.id, "body", "eggman") == {copied, moved}

    # Deleting the mailbox, then the last holder of the blob: nothing is found.
    await store.mailbox_delete(bob.id, "Beatles")
    await store.expunge(carol_box, [carol_uid], require_deleted=False)
    assert await store.search_text(carol_box, "body", "eggman") == set()
    assert await store.search_text(carol_box, "text", "delivered-to") == set()


async def test_search_text_declines_what_the_index_cannot_answer(store):
    bob, _carol = await _setup(store)
    inbox = await store.mailbox_get(bob.id, "INBOX")
    await append(store, inbox.id, b"Subject: ab\r\n\r\nab\r\ncd\r\n")
    assert await store.search_text(inbox.id, "text", "ab") is None
    assert await store.search_text(inbox.id, "body", "ab\ncd") is None
    assert await store.search_text(inbox.id, "body", 'a"b') == set()  # quotes are text
    assert await store.search_text(inbox.id, "body", "%b_") == set()  # so are wildcards
    quoted = await append(store, inbox.id, b"Subject: q\r\n\r\nit's 5 o'clock \\ 100%_done\r\n")
    for needle in ("'s 5 o'", "k \\ 1", "0%_d", "IT'S"):
        assert await store.search_text(inbox.id, "body", needle) == {quoted}, needle
    for needle in ("'; drop table messages; --", "\\%_", "o'c'"):
        assert await store.search_text(inbox.id, "body", needle) == set(), needle


async def test_a_large_message_is_indexed_and_sort_recorded_at_delivery_and_append(store):
    """Past 32 KiB the texts and the SORT record are made off the event loop
    (PostgreSQL): they are kept all the same, delivered or appended."""
    bob, _carol = await _setup(store)
    inbox = await store.mailbox_get(bob.id, "INBOX")
    body = ("filler line of a long letter\r\n" * 2000) + "the word zanzibar ends it\r\n"
    raw = (
        "From: Alice <alice@crepes.fr>\r\nTo: bob@hamburger.edu\r\n"
        "Subject: A long letter\r\nMessage-ID: <long@crepes.fr>\r\n\r\n" + body
    ).encode()
    assert len(raw) > 40_000
    await deliver(store, raw, [DeliveryTarget(bob.id)])
    await append(store, inbox.id, raw.replace(b"<long@", b"<long2@"))
    uids = [m.uid for m in await store.messages(inbox.id)]
    assert len(uids) == 2
    assert await store.search_text(inbox.id, "body", "zanzibar") == set(uids)
    assert await store.search_text(inbox.id, "text", "a long letter") == set(uids)
    assert set(await store.messages_sort_records(inbox.id, uids)) == set(uids)

"""ordering.py without a session: RFC 5256 §2.1 base subjects, the sort
keys, ORDEREDSUBJECT and REFERENCES threading and the thread-list syntax."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mailstack.imap.ordering import (
    Entry,
    MessageKeys,
    base_subject,
    casemap,
    sort_order,
    thread_orderedsubject,
    thread_references,
    thread_text,
)
from mailstack.mime import parse


@pytest.mark.parametrize(
    ("subject", "base", "reply"),
    [
        ("Hello", "Hello", False),
        ("Re: Hello", "Hello", True),
        ("RE:  re: Fwd: Hello", "Hello", True),
        ("Fw: Hello", "Hello", True),
        ("Re[2]: Hello", "Hello", True),  # subj-refwd: "re" *WSP [subj-blob] ":"
        ("Re: [2] x", "x", True),
        ("Re [2] x", "Re [2] x", False),  # no ":" after the blob
        ("Re [2]: Hello", "Hello", True),
        ("[list] Re: Hello", "Hello", True),
        ("[list] [other] Hello", "Hello", False),
        ("[list]", "[list]", False),  # step 4: a blob stays when nothing else is left
        ("Hello (fwd)", "Hello", True),
        ("Hello (fwd) (FWD)  ", "Hello", True),
        ("[Fwd: Re: Hello]", "Hello", True),
        ("[fwd: [fwd: Hello (fwd)]]", "Hello", True),
        ("  Hello\t  world  ", "Hello world", False),
        ("=?utf-8?q?Re=3A_Caf=C3=A9?=", "Café", True),
        ("Re:", "", True),
        ("Rehearsal: tonight", "Rehearsal: tonight", False),
        ("", "", False),
        (None, "", False),
    ],
)
def test_base_subject(subject: str | None, base: str, reply: bool) -> None:
    assert base_subject(subject) == (base, reply)


def test_casemap_folds_ascii_only() -> None:
    assert casemap("café Zoë") == "CAFé ZOë"


def keys_of(raw: str) -> MessageKeys:
    return MessageKeys.of(parse(raw.replace("\n", "\r\n").encode()))


def test_keys_from_the_stored_parse() -> None:
    keys = keys_of(
        "From: =?utf-8?q?Zo=C3=AB?= <zoe@b.example>\n"
        'To: Group: ; "" <amy@c.example>, bob@d.example\n'
        "Cc: (just a comment) carl@e.example\n"
        "Subject: Re: [list] lunch\n"
        "Date: Tue, 1 Feb 2022 10:00:00 +0100\n"
        "Message-ID: <m1@x>\n"
        "References: <a@x>\n <b@x>\n"
        "In-Reply-To: <c@x>\n\nbody\n"
    )
    assert keys.from_ == "ZOE" and keys.display_from == "ZOë"
    # RFC 5957 §3: no display name, so the addr-spec; the empty group is no address.
    assert keys.to == "AMY" and keys.display_to == "AMY@C.EXAMPLE"
    assert keys.cc == "CARL"
    assert keys.subject == "LUNCH" and keys.reply
    assert keys.sent == datetime(2022, 2, 1, 9, tzinfo=UTC).timestamp()
    assert keys.message_id == "m1@x"
    assert keys.references == ("a@x", "b@x")
    # Without References, the first message-id of In-Reply-To.
    assert keys_of("In-Reply-To: <c@x> <d@x>\n\n").references == ("c@x",)
    assert keys_of("Subject: x\n\n").sent is None


BASE = datetime(2020, 1, 1, tzinfo=UTC)


def entry(
    n: int,
    subject: str = "",
    *,
    sent: int | None = None,
    mid: str | None = None,
    refs: tuple[str, ...] = (),
    size: int = 100,
    arrival: int = 0,
    sender: str = "",
) -> Entry:
    base, reply = base_subject(subject)
    keys = MessageKeys(
        sent=None if sent is None else (BASE + timedelta(hours=sent)).timestamp(),
        subject=casemap(base),
        reply=reply,
        from_=casemap(sender),
        to="",
        cc="",
        display_from=casemap(sender),
        display_to="",
        message_id=mid,
        references=refs,
    )
    return Entry.of(n, n, BASE + timedelta(hours=arrival), size, keys)


def numbers(entries: list[Entry]) -> list[int]:
    return [e.number for e in entries]


def test_sort_criteria_reverse_and_ties() -> None:
    es = [
        entry(1, "b", sent=3, size=10, sender="zed"),
        entry(2, "Re: a", sent=1, size=30, sender="amy"),
        entry(3, "A", sent=2, size=30, sender="Amy"),
        entry(4, "c", sent=None, arrival=5, size=20, sender="bob"),
    ]
    assert numbers(sort_order(es, [("SUBJECT", False)])) == [2, 3, 1, 4]
    assert numbers(sort_order(es, [("DATE", False)])) == [2, 3, 1, 4]
    assert numbers(sort_order(es, [("DATE", True)])) == [4, 1, 3, 2]
    # REVERSE applies to its key only; ties stay in mailbox order.
    assert numbers(sort_order(es, [("SIZE", True), ("SUBJECT", False)])) == [2, 3, 4, 1]
    assert numbers(sort_order(es, [("FROM", False)])) == [2, 3, 4, 1]
    assert numbers(sort_order(es, [("FROM", True), ("SIZE", False)])) == [1, 4, 2, 3]
    assert numbers(sort_order(es, [("ARRIVAL", True)])) == [4, 1, 2, 3]


def test_orderedsubject() -> None:
    es = [
        entry(1, "lunch", sent=1),
        entry(2, "Re: lunch", sent=3),
        entry(3, "other", sent=2),
        entry(4, "re: LUNCH", sent=2),
        entry(5, "solo", sent=0),
    ]
    assert thread_text(thread_orderedsubject(es)) == b"(5)(1 (4)(2))(3)"
    assert thread_text(thread_orderedsubject(es[:2])) == b"(1 2)"


def test_references_links_and_dummies() -> None:
    es = [
        entry(1, "a", sent=1, mid="1@x"),
        entry(2, "Re: a", sent=2, mid="2@x", refs=("1@x",)),
        entry(3, "Re: a", sent=3, mid="3@x", refs=("1@x", "2@x")),
        entry(4, "Re: a", sent=4, mid="4@x", refs=("1@x",)),
        # Replies to a message that is not here: a dummy parent with two children.
        entry(5, "b", sent=5, mid="5@x", refs=("gone@x",)),
        entry(6, "Re: b", sent=6, mid="6@x", refs=("gone@x",)),
        # One child of a missing parent is promoted to the root.
        entry(7, "c", sent=7, mid="7@x", refs=("lost@x",)),
    ]
    assert thread_text(thread_references(es)) == b"(1 (2 3)(4))((5)(6))(7)"


def test_references_keeps_the_first_link_and_refuses_loops() -> None:
    es = [
        entry(1, "a", sent=1, mid="1@x", refs=("2@x",)),
        entry(2, "b", sent=2, mid="2@x", refs=("1@x",)),
        entry(3, "c", sent=3, mid="3@x", refs=("3@x",)),
        entry(4, "d", sent=4, mid="1@x"),  # a duplicate Message-ID gets its own
    ]
    # 1 is 2's child first; 2 naming 1 as parent would make a loop.
    assert thread_text(thread_references(es)) == b"(2 1)(3)(4)"


def test_references_merges_by_subject() -> None:
    es = [
        entry(1, "Meeting", sent=1, mid="1@x"),
        entry(2, "Re: Meeting", sent=2, mid="2@x"),  # no references: merged under 1
        entry(3, "Meeting", sent=3, mid="3@x"),  # neither a reply: a dummy over both
        entry(4, "", sent=4, mid="4@x"),
        entry(5, "", sent=5, mid="5@x"),  # empty subjects are never merged
    ]
    assert thread_text(thread_references(es)) == b"((1 2)(3))(4)(5)"
    # A reply first, the original later: the reply goes under the original.
    es = [entry(1, "Re: x", sent=1, mid="1@x"), entry(2, "x", sent=2, mid="2@x")]
    assert thread_text(thread_references(es)) == b"(2 1)"


def test_references_sorts_siblings_by_sent_date() -> None:
    es = [
        entry(1, "a", sent=1, mid="1@x"),
        entry(2, "Re: a", sent=9, mid="2@x", refs=("1@x",)),
        entry(3, "Re: a", sent=5, mid="3@x", refs=("1@x",)),
        entry(4, "z", sent=0, mid="4@x"),
        entry(5, "Re: a", sent=None, arrival=2, mid="5@x", refs=("1@x",)),
    ]
    assert thread_text(thread_references(es)) == b"(4)(1 (5)(3)(2))"


def test_sort_records_read_back_and_refuse_garbage():
    """The record the store keeps at delivery gives back the keys the parse
    gives; many are read at once, and what is not a record is refused (the
    keys then come from the parse)."""
    from mailstack.mime import parse
    from mailstack.mime.sortkeys import SortKeys

    raw = (
        b"From: =?utf-8?q?Ren=C3=A9e?= <renee@crepes.fr>\r\nTo: bob@hamburger.edu\r\n"
        b"Subject: Fwd: [x] Re: lunch\r\nDate: Tue, 8 Feb 1994 10:00:00 +0100\r\n"
        b"Message-ID: <a@b>\r\nIn-Reply-To: <p@b> <q@b>\r\n\r\nbody\r\n"
    )
    keys = SortKeys.of(parse(raw))
    assert keys.subject == "LUNCH" and keys.reply and keys.references == ("p@b",)
    assert SortKeys.from_record(keys.record()) == keys
    bare = SortKeys.of(parse(b"Subject: x\r\n\r\n"))
    assert bare.sent is None and bare.message_id is None and bare.from_ == ""
    got = SortKeys.from_records([keys.record(), b"[1,2]", bare.record(), b'{"a":1}'])
    assert got == [keys, None, bare, None]
    # Batches read with one ``shared`` dict hold one copy of each string
    # (a reply's reference is its parent's message id), and the same keys.
    parent = SortKeys.of(parse(b"Message-ID: <p@b>\r\nSubject: lunch\r\n\r\nhi\r\n"))
    shared: dict[str, str] = {}
    (first,) = SortKeys.from_records([parent.record()], shared)
    (second, junk) = SortKeys.from_records([keys.record(), b"[1]"], shared)
    assert (first, second, junk) == (parent, keys, None)
    assert first.message_id is second.references[0] and "p@b" in shared
    for bad in (b"", b"[", b"[null,1,0,2,3,4,5,6,null,[]]", b"[1,2,3]"):
        try:
            SortKeys.from_record(bad)
        except ValueError:
            continue
        raise AssertionError(bad)

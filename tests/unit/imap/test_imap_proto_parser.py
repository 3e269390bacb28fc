"""The command grammar: every command family's arguments, syntax errors as BAD."""

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailstack.errors import ImapError
from mailstack.imap.proto import mutf7
from mailstack.imap.proto.commands import (
    Append,
    Fetch,
    FetchItem,
    List,
    Login,
    Search,
    SearchKey,
    Section,
    Select,
    SequenceSet,
    Store,
)
from mailstack.imap.proto.parser import ParseError, parse_command


def p(line: bytes):
    return parse_command(line if line.endswith(b"\n") else line + b"\r\n")


def test_login_quoted_and_literal():
    cmd = p(b'a1 LOGIN "bob@x.org" {3}\r\np"w')
    assert cmd.tag == "a1" and cmd.name == "LOGIN"
    assert cmd.args == Login("bob@x.org", 'p"w')


def test_select_inbox_case_insensitive_and_condstore():
    cmd = p(b"a SELECT inbox (CONDSTORE)")
    assert cmd.args == Select("INBOX", False, condstore=True)


def test_select_qresync():
    cmd = p(b"a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))")
    q = cmd.args.qresync
    assert q.uidvalidity == 67890007 and q.modseq == 20050715194045000
    assert q.known_uids == SequenceSet(((41, 41), (43, 211), (214, 541)))


def test_mailbox_modified_utf7():
    assert mutf7.decode("~peter/mail/&U,BTFw-/&ZeVnLIqe-") == "~peter/mail/台北/日本語"
    assert mutf7.encode("~peter/mail/台北/日本語") == "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
    assert mutf7.encode("a&b") == "a&-b"
    with pytest.raises(ImapError):
        mutf7.decode("&Jjo!")


@given(st.text(max_size=30))
def test_mutf7_round_trip(text):
    assert mutf7.decode(mutf7.encode(text)) == text


def test_fetch_items():
    cmd = p(
        b'a3 UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (Subject "From")]<0.100> BODY[1.2.MIME])'
    )
    assert cmd.uid and cmd.name == "FETCH"
    f: Fetch = cmd.args
    assert f.sequence == SequenceSet(((1, 0),))
    assert f.items == (
        FetchItem("FLAGS"),
        FetchItem("BODY", Section((), "HEADER.FIELDS", ("Subject", "From")), True, (0, 100)),
        FetchItem("BODY", Section((1, 2), "MIME")),
    )


def test_fetch_macro_and_changedsince():
    cmd = p(b"a FETCH 2,4:5 FAST (CHANGEDSINCE 12345)")
    assert [i.name for i in cmd.args.items] == ["FLAGS", "INTERNALDATE", "RFC822.SIZE"]
    assert cmd.args.changedsince == 12345


@pytest.mark.parametrize(
    "line",
    [
        b"a FETCH 0 FLAGS",
        b"a FETCH 1 (FLAGS",
        b"a FETCH 1 BODY[FOO]",
        b"a FETCH 1 BODY[]<0.0>",
        b"a FETCH 1 (CHANGEDSINCE)",
        b"a FETCH 1:x FLAGS",
        b"a FETCH 1 FLAGS (VANISHED)",
        b"a NOSUCH",
        b"a SELECT",
        b"a LOGIN bob",
        b"a STORE 1 FLAGS.NOPE (\\Seen)",
        b'a LOGIN "bob pw',
        b"a SEARCH FOO",
        b"a SEARCH OR SEEN",
        b"a STATUS INBOX (BOGUS)",
        b'a LIST (RECURSIVEMATCH) "" *',
    ],
)
def test_syntax_errors_are_bad_with_tag(line):
    with pytest.raises(ParseError) as info:
        p(line)
    assert info.value.bad and info.value.tag == "a"


def test_no_tag():
    with pytest.raises(ParseError) as info:
        p(b"+ NOOP")
    assert info.value.tag == "*"


def test_store_forms():
    cmd = p(b"a STORE 1:3 +FLAGS.SILENT (\\Deleted $Junk)")
    assert cmd.args == Store(SequenceSet(((1, 3),)), "+", True, ("\\Deleted", "$Junk"))
    cmd = p(b"a UID STORE 7 (UNCHANGEDSINCE 5) FLAGS \\Seen")
    assert cmd.args == Store(SequenceSet(((7, 7),)), "", False, ("\\Seen",), 5)


def test_search_nested():
    cmd = p(b'a SEARCH CHARSET UTF-8 OR (FROM "x" SINCE 1-Feb-1994) NOT SEEN 2:4 UID 9')
    s: Search = cmd.args
    assert s.charset == "UTF-8"
    assert s.key == SearchKey(
        "AND",
        (
            SearchKey(
                "OR",
                (
                    SearchKey(
                        "AND", (SearchKey("FROM", ("x",)), SearchKey("SINCE", (date(1994, 2, 1),)))
                    ),
                    SearchKey("NOT", (SearchKey("SEEN"),)),
                ),
            ),
            SearchKey("SEQSET", (SequenceSet(((2, 4),)),)),
            SearchKey("UID", (SequenceSet(((9, 9),)),)),
        ),
    )


def test_esearch_return():
    cmd = p(b"a UID SEARCH RETURN (MIN COUNT) ALL")
    assert cmd.args.returns == ("MIN", "COUNT")


def test_append_multi_with_date():
    cmd = p(b'a APPEND Drafts (\\Draft) "05-Jan-2024 10:11:12 +0200" {2}\r\nhi {3+}\r\nyo!\r\n')
    a: Append = cmd.args
    assert a.mailbox == "Drafts"
    assert [m.data for m in a.messages] == [b"hi", b"yo!"]
    assert a.messages[0].flags == ("\\Draft",)
    assert a.messages[0].internaldate.utcoffset() == timedelta(hours=2)
    assert a.messages[1].internaldate is None


def test_list_extended():
    cmd = p(b'a LIST (SUBSCRIBED) "" ("INBOX" "Sent") RETURN (CHILDREN STATUS (MESSAGES UNSEEN))')
    lst: List = cmd.args
    assert lst.extended and lst.selection == {"SUBSCRIBED"}
    assert lst.patterns == ("INBOX", "Sent")
    assert lst.returns == {"CHILDREN", "STATUS"}
    assert lst.status_items == ("MESSAGES", "UNSEEN")


def test_mailbox_with_brackets_is_an_astring():
    assert p(b"a SELECT [Gmail]/Sent").args.mailbox == "[Gmail]/Sent"


def test_nesting_limit():
    with pytest.raises(ParseError):
        parse_command(b"a SEARCH " + b"(" * 40 + b"ALL" + b")" * 40 + b"\r\n", max_depth=32)


@given(st.binary(max_size=200))
def test_random_bytes_only_raise_parse_errors(data):
    try:
        parse_command(data + b"\r\n")
    except ParseError:
        pass


@given(
    st.lists(
        st.sampled_from(
            [
                b"FLAGS",
                b"UID",
                b"BODY[]",
                b"BODY.PEEK[1.2]",
                b"RFC822.SIZE",
                b"(",
                b")",
                b'"x"',
                b"{2}\r\nab",
                b"ENVELOPE",
                b"BODY[HEADER.FIELDS (A)]",
                b"<1.2>",
                b"*",
                b"1:*",
            ]
        ),
        max_size=12,
    )
)
def test_fetch_fragments_never_crash(parts):
    try:
        parse_command(b"t FETCH " + b" ".join(parts) + b"\r\n")
    except ParseError:
        pass


def test_lines_with_separate_literals_parse_like_the_whole_command():
    from mailstack.imap.proto.lexer import CommandReader, RawCommand

    stream = (
        b"a1 LOGIN {3}\r\nbob {2+}\r\npw\r\n"
        b'a2 APPEND INBOX (\\Seen) "05-Jan-2024 10:11:12 +0200" {5}\r\nhello {1+}\r\nx\r\n'
        b"a3 SEARCH SUBJECT {4+}\r\ncaf\xc3 TEXT {0+}\r\n\r\n"
    )
    reader = CommandReader(max_line=1000, max_literal=1000, max_command=10_000)
    reader.receive_data(stream)
    commands = []
    while len(commands) < 3:
        event = reader.next_event()
        if isinstance(event, RawCommand):
            commands.append(event)
    for cmd in commands:
        assert parse_command(cmd.lines, literals=cmd.literals) == parse_command(cmd.raw)
    with pytest.raises(ParseError):
        parse_command(b"a LOGIN {3}\r\n {2}\r\n\r\n", literals=(b"bob",))
    with pytest.raises(ParseError):
        parse_command(b"a LOGIN {3}\r\n x\r\n", literals=(b"bo",))


@given(
    st.lists(
        st.sampled_from(
            [
                b"APPEND",
                b"INBOX",
                b"{3}\r\nabc",
                b"{0+}\r\n",
                b"{2+}\r\n\r\n",
                b'"q"',
                b"(",
                b")",
                b"(\\Seen)",
                b"LOGIN",
                b"SEARCH",
                b"TEXT",
                b"~{1}\r\nz",
                b"{1}\r\n{",
            ]
        ),
        max_size=10,
    )
)
def test_split_literals_parse_like_whole_commands(words):
    from mailstack.imap.proto.lexer import CommandReader, RawCommand

    reader = CommandReader(max_line=1000, max_literal=1000, max_command=10_000)
    reader.receive_data(b"t " + b" ".join(words) + b"\r\n")
    for _ in range(50):
        event = reader.next_event()
        if isinstance(event, RawCommand):
            break
    else:
        return
    if not isinstance(event, RawCommand):
        return
    outcomes = []
    for args in ((event.lines, event.literals), (event.raw, None)):
        try:
            outcomes.append(parse_command(args[0], literals=args[1]))
        except ParseError as exc:
            outcomes.append(("BAD", exc.text))
    assert outcomes[0] == outcomes[1]


@given(
    st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60)), min_size=1, max_size=8),
    st.lists(st.integers(1, 70), max_size=30),
)
def test_sequence_set_select_agrees_with_contains(ranges, numbers):
    seq = SequenceSet(tuple(ranges))
    expected = [n for n in numbers if seq.contains(n, 50)]
    assert seq.select(numbers, 50) == expected


def test_fetch_attributes_deduplicated_and_bounded():
    cmd = p(b"a FETCH 1 (FLAGS UID FLAGS BODY.PEEK[1] BODY.PEEK[1])")
    assert [i.name for i in cmd.args.items] == ["FLAGS", "UID", "BODY"]
    with pytest.raises(ParseError):
        p(b"a FETCH 1 (" + b" ".join([b"BODY.PEEK[%d]" % n for n in range(1, 150)]) + b")")


def test_search_keys_bounded():
    assert p(b"a SEARCH " + b" ".join([b"SEEN"] * 999)).args.key.name == "AND"
    with pytest.raises(ParseError):
        p(b"a SEARCH " + b" ".join([b"SEEN"] * 1001))


def test_flag_lists_bounded():
    with pytest.raises(ParseError):
        p(b"a STORE 1 +FLAGS (" + b" ".join(b"$k%d" % n for n in range(101)) + b")")


def test_atom_with_open_bracket_is_a_mailbox_name():
    # RFC 3501 §9: '[' is an ATOM-CHAR; only a closed bracket makes a section.
    assert p(b"a SELECT foo[bar").args.mailbox == "foo[bar"
    assert p(b"a SELECT [Gmail]/Sent").args.mailbox == "[Gmail]/Sent"
    with pytest.raises(ParseError):
        p(b"a FETCH 1 BODY[HEADER")


def test_multiappend_of_literals_without_flags_or_date():
    # RFC 3502: a literal followed by another literal is two messages; only a
    # quoted string can be a date-time (RFC 3501 §9).
    cmd = p(b"a APPEND box {3+}\r\none {3+}\r\ntwo")
    assert [m.data for m in cmd.args.messages] == [b"one", b"two"]
    assert all(m.internaldate is None for m in cmd.args.messages)
    cmd = p(b'a APPEND box "07-Feb-1994 21:52:25 -0800" {3+}\r\none {3+}\r\ntwo')
    assert cmd.args.messages[0].internaldate is not None
    assert cmd.args.messages[1].internaldate is None


def test_sort_thread_and_cancelupdate():
    from mailstack.imap.proto.commands import CancelUpdate, PartialRange, Sort, Thread

    cmd = p(b"a UID SORT (REVERSE ARRIVAL displayfrom) utf-8 UNSEEN SUBJECT x")
    assert cmd.uid and cmd.name == "SORT"
    assert cmd.args == Sort(
        (("ARRIVAL", True), ("DISPLAYFROM", False)),
        "UTF-8",
        SearchKey("AND", (SearchKey("UNSEEN"), SearchKey("SUBJECT", ("x",)))),
    )
    cmd = p(b"a SORT RETURN (COUNT PARTIAL -1:-50 UPDATE) (SIZE) US-ASCII ALL")
    assert cmd.args == Sort(
        (("SIZE", False),),
        "US-ASCII",
        SearchKey("ALL"),
        ("COUNT", "PARTIAL", "UPDATE"),
        PartialRange(-1, -50),
    )
    assert p(b"a THREAD references UTF-8 ALL").args == Thread(
        "REFERENCES", "UTF-8", SearchKey("ALL")
    )
    assert p(b'a CANCELUPDATE "b1" {2}\r\nb2').args == CancelUpdate(("b1", "b2"))
    assert p(b"a UID FETCH 1:* FLAGS (PARTIAL 1:10)").args.partial == PartialRange(1, 10)


@pytest.mark.parametrize(
    "line",
    [
        b"a SORT (REVERSE) UTF-8 ALL",
        b"a SORT (REVERSE REVERSE DATE) UTF-8 ALL",
        b"a SORT (DATE) UTF-8",
        b"a SORT () UTF-8 ALL",
        b"a THREAD REFERENCES",
        b"a CANCELUPDATE",
        b"a CANCELUPDATE tag",
        b"a SEARCH RETURN (PARTIAL) ALL",
        b"a SEARCH RETURN (PARTIAL 1:*) ALL",
        b"a SEARCH RETURN (PARTIAL 1:-2) ALL",
        b"a SEARCH RETURN (PARTIAL 1:2 PARTIAL 3:4) ALL",
        b"a SEARCH RETURN (ALL PARTIAL 3:4) ALL",
        b"a SEARCH RETURN (COUNT COUNT) ALL",
        b"a SEARCH RETURN (NEWEST) ALL",
        b"a FETCH 1 FLAGS (PARTIAL 1:2)",
        b"a UID FETCH 1 FLAGS (PARTIAL 0:2)",
    ],
)
def test_sort_and_partial_syntax_errors(line):
    with pytest.raises(ParseError) as exc:
        p(line)
    assert exc.value.tag == "a" and exc.value.bad


def test_partial_range_takes_from_either_end():
    from mailstack.imap.proto.commands import PartialRange

    items = [10, 20, 30, 40, 50]
    assert PartialRange(2, 3).take(items) == [20, 30]
    assert PartialRange(3, 2).take(items) == [20, 30]
    assert PartialRange(4, 9).take(items) == [40, 50]
    assert PartialRange(6, 9).take(items) == []
    assert PartialRange(-1, -2).take(items) == [40, 50]
    assert PartialRange(-2, -1).take(items) == [40, 50]
    assert PartialRange(-4, -9).take(items) == [10, 20]
    assert PartialRange(-6, -9).take(items) == []

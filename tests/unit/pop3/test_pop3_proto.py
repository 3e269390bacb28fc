"""The POP3 state machine (RFC 1939, 2449, 2595, 5034) driven without sockets."""

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailstack.common.lines import NeedData
from mailstack.pop3.proto import (
    ALLOWED,
    Authenticate,
    MaildropMessage,
    Pop3Session,
    Reply,
    Retrieve,
    StartTls,
    State,
    Update,
    format_message,
    unique_id,
)


def session(**kw) -> Pop3Session:
    kw.setdefault("plaintext_ok", True)
    kw.setdefault("tls_available", True)
    return Pop3Session(**kw)


def feed(s: Pop3Session, data: bytes):
    """Feed bytes holding one line; the one event it gives."""
    s.receive_data(data)
    event = s.next_event()
    assert s.next_event() == NeedData()
    return event


def send(s: Pop3Session, line: str | bytes):
    data = line if isinstance(line, bytes) else line.encode()
    return feed(s, data + b"\r\n")


def text(event) -> str:
    assert isinstance(event, Reply), event
    return event.data.decode()


MAILDROP = [MaildropMessage(uid=7, size=498), MaildropMessage(uid=9, size=912)]


def logged_in(**kw) -> Pop3Session:
    s = session(**kw)
    send(s, "USER bob")
    assert isinstance(send(s, "PASS hungry"), Authenticate)
    s.logged_in("bob", 1234, MAILDROP)
    return s


def test_lecture_dialogue():
    s = session()
    assert s.greeting().data == b"+OK POP3 server ready\r\n"
    assert text(send(s, "user bob")) == "+OK\r\n"
    event = send(s, "pass hungry")
    assert event == Authenticate("bob", "hungry")
    assert s.logged_in("bob", 1, MAILDROP).data == b"+OK user successfully logged on\r\n"
    assert text(send(s, "list")) == "+OK 2 messages (1410 octets)\r\n1 498\r\n2 912\r\n.\r\n"
    assert send(s, "retr 1") == Retrieve(1, 7, None)
    assert text(send(s, "dele 1")) == "+OK message 1 deleted\r\n"
    assert send(s, "retr 2") == Retrieve(2, 9, None)
    assert text(send(s, "dele 2")) == "+OK message 2 deleted\r\n"
    update = send(s, "quit")
    assert update == Update(expunge=(7, 9), seen=())
    assert s.state is State.UPDATE
    final = s.update_finished(True)
    assert final.data == b"+OK POP3 server signing off\r\n" and final.close


def test_state_table_is_enforced():
    s = session()
    for cmd in ("STAT", "LIST", "RETR 1", "DELE 1", "NOOP", "RSET", "TOP 1 1", "UIDL"):
        assert text(send(s, cmd)).startswith("-ERR ") and "AUTHORIZATION" in text(send(s, cmd))
    s = logged_in()
    for cmd in ("USER bob", "APOP bob x", "AUTH PLAIN", "STLS"):
        assert "not valid in the TRANSACTION state" in text(send(s, cmd))
    assert ALLOWED[State.UPDATE] == frozenset()


def test_unknown_command_and_case_insensitivity():
    s = logged_in()
    assert text(send(s, "XYZZY")) == "-ERR unknown command\r\n"
    assert text(send(s, "sTaT")) == "+OK 2 1410\r\n"
    assert text(send(s, "")) == "-ERR unknown command\r\n"


def test_pass_must_follow_user():
    s = session()
    assert text(send(s, "PASS x")).startswith("-ERR PASS must follow USER")
    send(s, "USER bob")
    send(s, "CAPA")
    assert text(send(s, "PASS x")).startswith("-ERR PASS must follow USER")


def test_pass_keeps_spaces():
    s = session()
    send(s, "USER bob")
    assert send(s, "PASS correct horse battery") == Authenticate("bob", "correct horse battery")


def test_failed_logins_are_delayed_then_closed():
    s = session(max_failures=3, failure_delay=1.5)
    replies = []
    for _ in range(3):
        send(s, "USER bob")
        assert isinstance(send(s, "PASS wrong"), Authenticate)
        replies.append(s.auth_failed())
    assert [r.delay for r in replies] == [1.5, 3.0, 4.5]
    assert replies[0].data == b"-ERR [AUTH] invalid user name or password\r\n"
    assert not replies[0].close and not replies[1].close
    assert replies[2].close and replies[2].data.startswith(b"-ERR [AUTH]")


def test_login_refused_in_use_stays_in_authorization():
    s = session()
    send(s, "USER bob")
    send(s, "PASS hungry")
    reply = s.login_refused("IN-USE", "maildrop already locked")
    assert reply.data == b"-ERR [IN-USE] maildrop already locked\r\n"
    assert s.state is State.AUTHORIZATION


def test_plaintext_refused_before_tls():
    s = session(plaintext_ok=False)
    assert "needs TLS" in text(send(s, "USER bob"))
    assert "needs TLS" in text(send(s, "AUTH PLAIN"))
    capa = text(send(s, "CAPA"))
    assert "\r\nSTLS\r\n" in capa and "USER" not in capa and "SASL" not in capa
    event = send(s, "STLS")
    assert event == StartTls(b"+OK Begin TLS negotiation\r\n")
    s.tls_started()
    capa = text(send(s, "CAPA"))
    assert "STLS" not in capa and "\r\nUSER\r\n" in capa and "\r\nSASL PLAIN LOGIN\r\n" in capa
    assert text(send(s, "STLS")) == "-ERR TLS already active\r\n"
    assert text(send(s, "USER bob")) == "+OK\r\n"


def test_stls_when_tls_is_not_available():
    s = session(tls_available=False)
    assert text(send(s, "STLS")) == "-ERR TLS not available\r\n"
    assert "STLS" not in text(send(s, "CAPA"))


def test_capa_lists_rfc2449_capabilities():
    s = session(login_delay=60, expire_days=None, implementation="mailstack 0.1")
    capa = text(send(s, "CAPA"))
    lines = capa.split("\r\n")
    assert lines[0].startswith("+OK") and lines[-2:] == [".", ""]
    for cap in ("TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "USER",
                "SASL PLAIN LOGIN", "STLS", "EXPIRE NEVER", "LOGIN-DELAY 60",
                "IMPLEMENTATION mailstack 0.1"):
        assert cap in lines
    s = logged_in(expire_days=0)
    lines = text(send(s, "CAPA")).split("\r\n")
    assert "EXPIRE 0" in lines and "USER" not in lines and "STLS" not in lines


def test_auth_plain_initial_response():
    s = session()
    token = base64.b64encode(b"\x00bob@example.org\x00hungry").decode()
    assert send(s, f"AUTH PLAIN {token}") == Authenticate("bob@example.org", "hungry")


def test_auth_plain_with_challenge():
    s = session()
    assert text(send(s, "AUTH PLAIN")) == "+ \r\n"
    token = base64.b64encode(b"\x00bob\x00pw")
    assert feed(s, token + b"\r\n") == Authenticate("bob", "pw")


def test_auth_login_exchange():
    s = session()
    assert text(send(s, "AUTH LOGIN")) == "+ VXNlcm5hbWU6\r\n"
    assert text(feed(s, base64.b64encode(b"bob") + b"\r\n")) == "+ UGFzc3dvcmQ6\r\n"
    assert feed(s, base64.b64encode(b"pw") + b"\r\n") == Authenticate("bob", "pw")


def test_auth_cancel_bad_base64_and_unknown_mechanism():
    s = session()
    send(s, "AUTH LOGIN")
    assert text(send(s, "*")) == "-ERR authentication cancelled\r\n"
    send(s, "AUTH LOGIN")
    assert text(send(s, "!!!")) == "-ERR malformed SASL response\r\n"
    assert text(send(s, "AUTH CRAM-MD5")) == "-ERR unsupported SASL mechanism\r\n"
    assert text(send(s, "AUTH PLAIN ###")) == "-ERR malformed SASL response\r\n"
    # The session is back to reading commands.
    assert text(send(s, "USER bob")) == "+OK\r\n"


def test_auth_plain_other_authzid_is_a_failed_login():
    s = session()
    token = base64.b64encode(b"alice\x00bob\x00pw").decode()
    reply = send(s, f"AUTH PLAIN {token}")
    assert isinstance(reply, Reply) and reply.data.startswith(b"-ERR [AUTH]")
    assert s.failures == 1


def test_auth_listing_form():
    assert text(send(session(), "AUTH")) == "+OK SASL mechanisms follow\r\nPLAIN\r\nLOGIN\r\n.\r\n"


def test_apop_is_refused():
    assert text(send(session(), "APOP bob c4c9334bac560ecc979e58001b3e22fb")).startswith(
        "-ERR APOP is not supported"
    )


def test_stat_list_uidl():
    s = logged_in()
    assert text(send(s, "STAT")) == "+OK 2 1410\r\n"
    assert text(send(s, "LIST 2")) == "+OK 2 912\r\n"
    assert text(send(s, "UIDL")) == "+OK unique-id listing follows\r\n1 1234.7\r\n2 1234.9\r\n.\r\n"
    assert text(send(s, "UIDL 1")) == "+OK 1 1234.7\r\n"
    send(s, "DELE 1")
    assert text(send(s, "STAT")) == "+OK 1 912\r\n"
    assert text(send(s, "LIST")) == "+OK 1 messages (912 octets)\r\n2 912\r\n.\r\n"
    assert text(send(s, "UIDL")) == "+OK unique-id listing follows\r\n2 1234.9\r\n.\r\n"
    assert text(send(s, "LIST 1")) == "-ERR message 1 already deleted\r\n"
    assert text(send(s, "UIDL 1")) == "-ERR message 1 already deleted\r\n"


@pytest.mark.parametrize("arg", ["0", "3", "-1", "+1", "x", "1.0", "99999999999", "１"])
def test_bad_message_numbers(arg):
    s = logged_in()
    for cmd in ("RETR", "DELE", "LIST", "UIDL"):
        assert text(send(s, f"{cmd} {arg}")).startswith("-ERR ")
    assert text(send(s, f"TOP {arg} 1")).startswith("-ERR ")


def test_wrong_argument_counts():
    s = logged_in()
    for cmd in ("RETR", "DELE", "TOP 1", "STAT 1", "LIST 1 2", "RETR 1 2"):
        assert text(send(s, cmd)).startswith("-ERR usage")


def test_dele_twice_and_rset():
    s = logged_in()
    send(s, "DELE 2")
    assert text(send(s, "DELE 2")) == "-ERR message 2 already deleted\r\n"
    assert isinstance(send(s, "RETR 2"), Reply)
    assert text(send(s, "RSET")) == "+OK maildrop has 2 messages (1410 octets)\r\n"
    assert send(s, "RETR 2") == Retrieve(2, 9, None)
    assert send(s, "QUIT") == Update(expunge=(), seen=(9,))


def test_quit_in_authorization_closes_without_update():
    s = session()
    reply = send(s, "QUIT")
    assert reply == Reply(b"+OK POP3 server signing off\r\n", close=True)


def test_retrieved_kept_messages_are_marked_seen():
    s = logged_in()
    send(s, "RETR 1")
    send(s, "RETR 2")
    send(s, "DELE 2")
    assert send(s, "QUIT") == Update(expunge=(9,), seen=(7,))


def test_expire_zero_deletes_what_was_retrieved():
    s = logged_in(expire_days=0)
    send(s, "RETR 1")
    assert send(s, "QUIT") == Update(expunge=(7,), seen=())


def test_top():
    s = logged_in()
    assert send(s, "TOP 2 0") == Retrieve(2, 9, 0)
    assert send(s, "TOP 1 10") == Retrieve(1, 7, 10)
    assert text(send(s, "TOP 1 -1")).startswith("-ERR invalid number")


def test_update_failure_reply():
    s = logged_in()
    send(s, "DELE 1")
    send(s, "QUIT")
    reply = s.update_finished(False)
    assert reply.close and reply.data.startswith(b"-ERR [SYS/TEMP]")


def test_line_length_limit():
    s = logged_in()
    assert text(feed(s, b"NOOP " + b"x" * 300 + b"\r\n")) == "-ERR line too long\r\n"
    assert text(send(s, "NOOP")) == "+OK\r\n"


def test_non_utf8_command():
    assert text(send(session(), b"USER \xff")) == "-ERR command is not valid UTF-8\r\n"


def test_timed_out_closes_silently():
    s = logged_in()
    send(s, "DELE 1")
    reply = s.timed_out()
    assert reply == Reply(b"", close=True)
    assert s.state is State.TRANSACTION  # never UPDATE: nothing is removed


def test_unique_id_grammar():
    uid = unique_id(4294967295, 4294967295)
    assert 1 <= len(uid) <= 70 and all(0x21 <= ord(c) <= 0x7E for c in uid)


# format_message


def test_format_message_stuffs_dots_and_counts_octets():
    raw = b"Subject: x\r\n\r\n.hidden\r\nline\r\n..two\r\n.\r\n"
    out = format_message(raw)
    assert out == (
        f"+OK {len(raw)} octets\r\n".encode()
        + b"Subject: x\r\n\r\n..hidden\r\nline\r\n...two\r\n..\r\n.\r\n"
    )


def test_format_message_first_line_dot_and_missing_final_crlf():
    assert format_message(b".x") == b"+OK 2 octets\r\n..x\r\n.\r\n"
    assert format_message(b"") == b"+OK 0 octets\r\n.\r\n"


def test_format_message_normalizes_bare_lf():
    assert format_message(b"a: b\n\nbody\n") == b"+OK 14 octets\r\na: b\r\n\r\nbody\r\n.\r\n"


def test_format_message_top():
    raw = b"A: 1\r\nB: 2\r\n\r\nl1\r\n.l2\r\nl3\r\n"
    assert format_message(raw, 0) == b"+OK top of message follows\r\nA: 1\r\nB: 2\r\n\r\n.\r\n"
    assert format_message(raw, 2) == (
        b"+OK top of message follows\r\nA: 1\r\nB: 2\r\n\r\nl1\r\n..l2\r\n.\r\n"
    )
    assert format_message(raw, 99).endswith(b"l3\r\n.\r\n")
    assert format_message(b"A: 1\r\n", 3) == b"+OK top of message follows\r\nA: 1\r\n.\r\n"
    assert format_message(b"\r\nbody\r\nmore\r\n", 1) == (
        b"+OK top of message follows\r\n\r\nbody\r\n.\r\n"
    )


def unstuff(wire: bytes) -> bytes:
    """What a client does: drop the first line, the terminator, and one leading dot."""
    first, _, rest = wire.partition(b"\r\n")
    assert first.startswith(b"+OK ")
    assert rest.endswith(b".\r\n")
    lines = rest[:-3].split(b"\r\n")[:-1]
    return b"".join((line[1:] if line.startswith(b".") else line) + b"\r\n" for line in lines)


_line = st.binary(max_size=20).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))


@given(st.lists(_line, max_size=20))
def test_format_message_round_trips(lines):
    raw = b"".join(line + b"\r\n" for line in lines)
    wire = format_message(raw)
    assert unstuff(wire) == raw
    assert wire.startswith(f"+OK {len(raw)} octets\r\n".encode())
    # No line but the terminator is a lone dot.
    body = wire.split(b"\r\n")[1:-2]
    assert b"." not in body


def plain_format(raw: bytes, top_lines: int | None = None) -> bytes:
    """format_message written the slow, obvious way: line by line."""
    if raw.count(b"\n") != raw.count(b"\r\n"):
        raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    first = f"+OK {len(raw)} octets\r\n".encode()
    if top_lines is not None:
        first = b"+OK top of message follows\r\n"
        head, sep, body = raw.partition(b"\r\n\r\n")
        if raw.startswith(b"\r\n"):
            head, sep, body = b"", b"\r\n", raw[2:]
        if sep:
            kept = body.split(b"\r\n")
            if len(kept) > top_lines:  # all top_lines lines ended in CRLF
                raw = head + sep + b"".join(line + b"\r\n" for line in kept[:top_lines])
    out = [first]
    for line in raw.split(b"\r\n"):
        out.append((b"." + line if line.startswith(b".") else line) + b"\r\n")
    if raw.endswith(b"\r\n") or not raw:
        out.pop()  # what follows the last CRLF is not a line
    return b"".join(out) + b".\r\n"


_text = st.lists(st.sampled_from([b"a", b".", b"\r", b"\n", b"\r\n", b"..", b" x"]),
                 max_size=40).map(b"".join)


@given(_text, st.none() | st.integers(0, 5))
def test_format_message_matches_the_line_by_line_reference(raw, top_lines):
    assert format_message(raw, top_lines) == plain_format(raw, top_lines)


# The edges of format_message's one search for an LF without its CR or an
# LF before a ".": at either end, after a bare CR, a dot not at a line start.
@pytest.mark.parametrize("raw", [
    b"\n", b"\na", b"\n.", b".", b"\r\n.", b"\r\n", b"\r", b"\r.", b"a\r.b\r\n",
    b"a\r\r\n.b\r\n", b"a\n", b"a\r\nb\n", b"a\nb\r\n", b"a\r\n\n", b"a.b\r\n.",
    b"a\r\nb", b"a\r\nb\r", b"a\r\n..\r\n", b"\r\n\r\n.\r\n", b"x" * 300 + b"\n",
    b"A: 1\r\n\r\n" + b"line\r\n" * 50 + b".end\r\n", b"A: 1\n\nl1\r\n.l2\n",
])
@pytest.mark.parametrize("top_lines", [None, 0, 1, 3])
def test_format_message_edges_match_the_reference(raw, top_lines):
    assert format_message(raw, top_lines) == plain_format(raw, top_lines)


def test_format_message_sends_a_clean_message_as_it_is():
    raw = b"From: a@b.test\r\n\r\nHello.\r\nThe end. \r\n"
    assert format_message(raw) == f"+OK {len(raw)} octets\r\n".encode() + raw + b".\r\n"


@given(st.binary(max_size=200))
def test_session_never_crashes_on_garbage(data):
    s = logged_in()
    for line in data.split(b"\n"):
        event = feed(s, line + b"\n")
        assert isinstance(event, (Reply, Retrieve, Update, Authenticate, StartTls))


# Bytes in: the one framer, whole, byte by byte and with trailing data


DIALOGUE = b"USER bob\r\nPASS hungry\r\n"


def events_of(s: Pop3Session, data: bytes, step: int | None = None) -> list:
    events = []
    chunks = [data] if step is None else [data[i : i + step] for i in range(len(data))]
    for chunk in chunks:
        s.receive_data(chunk)
        while not isinstance(event := s.next_event(), NeedData):
            events.append(event)
    return events


@pytest.mark.parametrize("step", [None, 1])
def test_lines_whole_or_byte_by_byte_give_the_same_events(step):
    assert events_of(session(), DIALOGUE, step) == [
        Reply(b"+OK\r\n"),
        Authenticate("bob", "hungry"),
    ]


def test_trailing_partial_line_waits_for_its_end():
    s = session()
    assert events_of(s, DIALOGUE + b"QU") == [Reply(b"+OK\r\n"), Authenticate("bob", "hungry")]
    s.logged_in("bob", 1, MAILDROP)
    assert events_of(s, b"IT\r\n") == [Update(expunge=(), seen=())]


def test_a_long_command_is_refused_before_more_than_255_octets_are_buffered():
    s = logged_in()
    events = []
    for byte in b"NOOP " + b"x" * 10_000 + b"\r\n":
        s.receive_data(bytes([byte]))
        while not isinstance(event := s.next_event(), NeedData):
            events.append(event)
        assert s.buffered < 255
    assert events == [Reply(b"-ERR line too long\r\n")]
    assert text(send(s, "NOOP")) == "+OK\r\n"


def test_a_sasl_response_may_be_longer_than_a_command_line():
    s = session(max_sasl_line=1000)
    assert text(send(s, "AUTH PLAIN")) == "+ \r\n"
    # RFC 4616 §2 allows 255 octets each: a response longer than 255 in base64.
    token = base64.b64encode(b"\x00" + b"b" * 100 + b"\x00" + b"p" * 200)
    assert send(s, token) == Authenticate("b" * 100, "p" * 200)
    assert text(send(s, b"AUTH PLAIN " + token)) == "-ERR line too long\r\n"


def test_end_of_file_closes_without_a_word():
    s = logged_in()
    send(s, "DELE 1")
    s.receive_data(b"NOO")
    assert s.next_event() == NeedData()
    s.receive_data(b"")
    assert s.next_event() == Reply(b"", close=True)


def test_plaintext_pipelined_behind_stls_is_dropped():
    s = session(plaintext_ok=False)
    s.receive_data(b"STLS\r\nUSER mallory\r\n")
    assert s.next_event() == StartTls(b"+OK Begin TLS negotiation\r\n")
    s.tls_started()
    assert s.next_event() == NeedData()
    assert text(send(s, "USER bob")) == "+OK\r\n"


def test_traced_line_elides_passwords_and_sasl_responses():
    s = session()
    send(s, "USER bob")
    assert s.traced_line() == b"USER bob\r\n"
    send(s, "PASS hungry")
    assert s.traced_line() == b"PASS ****"
    token = base64.b64encode(b"\x00bob\x00hungry").decode()
    send(s, f"AUTH PLAIN {token}")
    assert s.traced_line() == b"AUTH PLAIN ****"
    send(s, "AUTH PLAIN")
    send(s, token)
    assert s.traced_line() == "<SASL response>"

"""SEARCH: every key family, nested OR/NOT, sets, charsets, ESEARCH, UID SEARCH."""

from transcript import Client, message, setup_account

from support import append


async def selected(store):
    account, inbox = await setup_account(store, 0)
    await append(store, inbox.id, message(1, "Lunch plans", body="pizza tonight\r\n"), ["\\Seen"])
    await append(
        store,
        inbox.id,
        message(2, "=?utf-8?q?Caf=C3=A9?= meeting", extra="X-Prio: high\r\n"),
        ["\\Flagged", "$Work"],
    )
    await append(store, inbox.id, message(3, "Report", body="x" * 2000 + "\r\n"), ["\\Deleted"])
    c = Client(store)
    await c.login()
    await c.send("s1 SELECT INBOX")
    return c


async def test_flag_and_size_keys(store):
    c = await selected(store)
    await c.transcript(
        """
        C: a1 SEARCH ALL
        S: * SEARCH 1 2 3
        S: a1 OK SEARCH completed
        C: a2 SEARCH SEEN
        S: * SEARCH 1
        S: a2 OK SEARCH completed
        C: a3 SEARCH UNSEEN UNDELETED
        S: * SEARCH 2
        S: a3 OK SEARCH completed
        C: a4 SEARCH KEYWORD $work
        S: * SEARCH 2
        S: a4 OK SEARCH completed
        C: a5 SEARCH LARGER 1000
        S: * SEARCH 3
        S: a5 OK SEARCH completed
        C: a6 SEARCH NEW
        S: * SEARCH 2 3
        S: a6 OK SEARCH completed
        C: a7 SEARCH OR SEEN (FLAGGED NOT DELETED)
        S: * SEARCH 1 2
        S: a7 OK SEARCH completed
        C: a8 SEARCH NOT OR SEEN FLAGGED
        S: * SEARCH 3
        S: a8 OK SEARCH completed
        C: a9 SEARCH 2:* UID 1:2
        S: * SEARCH 2
        S: a9 OK SEARCH completed
        C: b1 UID SEARCH UNKEYWORD $Work
        S: * SEARCH 1 3
        S: b1 OK SEARCH completed
        C: b2 SEARCH SMALLER 10
        S: * SEARCH
        S: b2 OK SEARCH completed
        """
    )


async def test_header_and_text_keys(store):
    c = await selected(store)
    await c.transcript(
        """
        C: a1 SEARCH SUBJECT café
        S: * SEARCH 2
        S: a1 OK SEARCH completed
        C: a2 SEARCH CHARSET UTF-8 SUBJECT {5}\\r\\ncafé
        S: * SEARCH 2
        S: a2 OK SEARCH completed
        C: a3 SEARCH FROM alice@crepes.fr TO bob
        S: * SEARCH 1 2 3
        S: a3 OK SEARCH completed
        C: a4 SEARCH HEADER X-Prio ""
        S: * SEARCH 2
        S: a4 OK SEARCH completed
        C: a5 SEARCH BODY PIZZA
        S: * SEARCH 1
        S: a5 OK SEARCH completed
        C: a6 SEARCH TEXT "lunch"
        S: * SEARCH 1
        S: a6 OK SEARCH completed
        C: a7 SEARCH CHARSET KOI8-R BODY x
        S: a7 NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset
        C: a8 SEARCH SENTON 7-Feb-1994
        S: * SEARCH 1 2 3
        S: a8 OK SEARCH completed
        C: a9 SEARCH SENTBEFORE 1-Jan-1990
        S: * SEARCH
        S: a9 OK SEARCH completed
        C: b1 SEARCH SINCE 1-Jan-2000 BEFORE 1-Jan-3000
        S: * SEARCH 1 2 3
        S: b1 OK SEARCH completed
        C: b2 SEARCH BCC nobody
        S: * SEARCH
        S: b2 OK SEARCH completed
        """
    )


async def test_esearch_and_modseq(store):
    c = await selected(store)
    await c.transcript(
        """
        C: a1 UID SEARCH RETURN (MIN MAX COUNT) ALL
        S: * ESEARCH (TAG "a1") UID MIN 1 MAX 3 COUNT 3
        S: a1 OK SEARCH completed
        C: a2 SEARCH RETURN () UNDELETED
        S: * ESEARCH (TAG "a2") ALL 1:2
        S: a2 OK SEARCH completed
        C: a3 SEARCH RETURN (COUNT) DRAFT
        S: * ESEARCH (TAG "a3") COUNT 0
        S: a3 OK SEARCH completed
        C: a4 SEARCH MODSEQ 1
        S: * OK [HIGHESTMODSEQ ...
        S: * SEARCH 1 2 3 (MODSEQ ...
        S: a4 OK SEARCH completed
        C: a5 SEARCH RETURN (SAVE) ALL
        S: a5 OK SEARCH completed
        """
    )


async def test_address_keys_match_parsed_addresses(store):
    # FROM/TO/CC/BCC match the parsed addresses (mailbox@host, display name),
    # not the raw field: comments and quoting do not count.
    account, inbox = await setup_account(store, 0)
    raw = (
        b"From: <user-from (comment)@ (comment) domain.org>\r\n"
        b"To: \"Bob Q.\" <bob (x) @hamburger.edu>, =?utf-8?q?Z=C3=BC?= <z@x.test>\r\n"
        b"Cc: carol@poly.edu (Carol Tan)\r\n"
        b"Subject: s\r\n\r\nbody\r\n"
    )
    await append(store, inbox.id, raw)
    await append(store, inbox.id, message(2))
    c = Client(store)
    await c.login()
    await c.send("s1 SELECT INBOX")
    await c.transcript(
        """
        C: a1 SEARCH FROM user-from@domain.org
        S: * SEARCH 1
        S: a1 OK SEARCH completed
        C: a2 SEARCH FROM comment
        S: * SEARCH
        S: a2 OK SEARCH completed
        C: a3 SEARCH TO bob@hamburger.edu
        S: * SEARCH 1 2
        S: a3 OK SEARCH completed
        C: a4 SEARCH TO "Bob Q. <bob@"
        S: * SEARCH 1
        S: a4 OK SEARCH completed
        C: a5 SEARCH TO "zü"
        S: * SEARCH 1
        S: a5 OK SEARCH completed
        C: a6 SEARCH CC "carol tan"
        S: * SEARCH 1
        S: a6 OK SEARCH completed
        C: a7 SEARCH FROM alice
        S: * SEARCH 2
        S: a7 OK SEARCH completed
        C: a8 SEARCH BCC x
        S: * SEARCH
        S: a8 OK SEARCH completed
        """
    )


async def test_address_keys_match_group_names(store):
    # RFC 5322 §3.4 groups: TO matches the group's display name as well as
    # its members; the empty group's name too, and nothing matches the end.
    account, inbox = await setup_account(store, 0)
    raw = (
        b"From: a@x.test\r\n"
        b"To: Friends: ann@x.test, bo@y.test;, Nobody:;\r\n"
        b"Subject: s\r\n\r\nbody\r\n"
    )
    await append(store, inbox.id, raw)
    await append(store, inbox.id, message(2))
    c = Client(store)
    await c.login()
    await c.send("s1 SELECT INBOX")
    await c.transcript(
        """
        C: a1 SEARCH TO friends
        S: * SEARCH 1
        S: a1 OK SEARCH completed
        C: a2 SEARCH TO nobody
        S: * SEARCH 1
        S: a2 OK SEARCH completed
        C: a3 SEARCH TO bo@y.test
        S: * SEARCH 1
        S: a3 OK SEARCH completed
        C: a4 SEARCH CC friends
        S: * SEARCH
        S: a4 OK SEARCH completed
        """
    )


async def test_within_older_younger(store):
    """RFC 5032: OLDER/YOUNGER by the internal date's age in seconds; the
    two split the mailbox; the interval is an nz-number."""
    import datetime

    account, inbox = await setup_account(store, 0)
    now = datetime.datetime.now(datetime.UTC)
    for n, age in enumerate((3 * 86400, 2 * 3600, 10), 1):
        await append(store, inbox.id, message(n), (), now - datetime.timedelta(seconds=age))
    c = Client(store)
    await c.login()
    got = await c.send("c1 CAPABILITY")
    assert "WITHIN" in got[0].split()
    await c.send("s1 SELECT INBOX")
    await c.transcript(
        """
        C: a1 SEARCH OLDER 86400
        S: * SEARCH 1
        S: a1 OK SEARCH completed
        C: a2 SEARCH YOUNGER 86400
        S: * SEARCH 2 3
        S: a2 OK SEARCH completed
        C: a3 SEARCH YOUNGER 3600
        S: * SEARCH 3
        S: a3 OK SEARCH completed
        C: a4 SEARCH OR OLDER 600 YOUNGER 600
        S: * SEARCH 1 2 3
        S: a4 OK SEARCH completed
        C: a5 UID SEARCH OLDER 600 YOUNGER 86400
        S: * SEARCH 2
        S: a5 OK SEARCH completed
        C: a6 SEARCH NOT YOUNGER 4294967295
        S: * SEARCH
        S: a6 OK SEARCH completed
        """
    )
    for bad in ("OLDER 0", "YOUNGER -5", "OLDER 4294967296", "YOUNGER", "OLDER x"):
        got = await c.send(f"b1 SEARCH {bad}")
        assert got[-1].startswith("b1 BAD"), (bad, got)


async def test_within_results_kept_up_to_date_age(store, monkeypatch):
    """RFC 5032 with RFC 5267 UPDATE: as time passes, messages leave a
    YOUNGER result and join an OLDER one (the clock is the test's)."""
    import datetime

    from mailstack.imap import matching

    start = datetime.datetime(2026, 5, 1, 12, 0, tzinfo=datetime.UTC)
    now = [start]
    monkeypatch.setattr(matching, "clock", lambda: now[0])
    account, inbox = await setup_account(store, 0)
    for n, minutes in enumerate((30, 5, 1), 1):
        await append(store, inbox.id, message(n), (), start - datetime.timedelta(minutes=minutes))
    c = Client(store)
    await c.login()
    await c.send("s1 SELECT INBOX")
    await c.transcript(
        """
        C: y1 SEARCH RETURN (UPDATE) YOUNGER 600
        S: * ESEARCH (TAG "y1") ALL 2:3
        S: y1 OK SEARCH completed
        C: o1 UID SEARCH RETURN (UPDATE) OLDER 600
        S: * ESEARCH (TAG "o1") UID ALL 1
        S: o1 OK SEARCH completed
        C: n1 NOOP
        S: n1 OK NOOP completed
        """
    )
    now[0] = start + datetime.timedelta(minutes=6)
    await c.transcript(
        """
        C: n2 NOOP
        S: * ESEARCH (TAG "y1") REMOVEFROM (0 2)
        S: * ESEARCH (TAG "o1") UID ADDTO (0 2)
        S: n2 OK NOOP completed
        C: n3 NOOP
        S: n3 OK NOOP completed
        """
    )


FLAG_PROGRAMS = [
    "ALL", "SEEN", "UNSEEN", "FLAGGED UNSEEN", "OR DELETED DRAFT", "NOT ANSWERED",
    "KEYWORD $Work", "UNKEYWORD $work", "KEYWORD $none", "RECENT", "NEW", "OLD",
    "NOT RECENT", "OR NEW FLAGGED", "NOT (SEEN OR FLAGGED KEYWORD $Work)", "UNDELETED UNDRAFT",
    "OR RECENT KEYWORD $WORK",
]  # fmt: skip


async def test_flag_searches_decided_per_flag_set_match_the_per_message_ones(store):
    """Keys that read only flags are decided once per distinct flag set;
    the answers are those of matching each message (the oracle: the same
    program with LARGER 0, true of every message, which takes that path)."""
    _account, inbox = await setup_account(store, 0)
    kinds = [(), ("\\Seen",), ("\\Seen", "\\Flagged"), ("$Work",), ("\\Deleted", "$work"),
             ("\\Draft",), ("\\Answered", "\\Seen")]  # fmt: skip
    for n in range(28):
        await append(store, inbox.id, message(n + 1), flags=kinds[n % len(kinds)])
    c = Client(store)
    await c.login()
    await c.send("a1 SELECT INBOX")  # claims \Recent for all 28 ...
    await c.send("a1 SELECT INBOX")  # ... which are not recent once selected again
    for n in range(28, 33):
        await append(store, inbox.id, message(n + 1), flags=kinds[n % len(kinds)])
    await c.send("a2 NOOP")  # five more, \Recent
    await c.send("a3 STORE 1:3,29 +FLAGS.SILENT (\\Seen)")

    async def counts():
        for program in FLAG_PROGRAMS:
            fast = await c.send(f"s SEARCH {program}")
            slow = await c.send(f"s SEARCH {program} LARGER 0")
            assert fast == slow, program
            assert fast[-1] == "s OK SEARCH completed"
        return {p: len((await c.send(f"s SEARCH {p}"))[0].split()) - 2 for p in FLAG_PROGRAMS}

    found = await counts()
    assert found["ALL"] == 33 and found["RECENT"] == 5 and found["OLD"] == 28
    assert found["KEYWORD $none"] == 0 and found["KEYWORD $Work"] == 10
    assert 0 < found["NEW"] < found["RECENT"] and 0 < found["UNSEEN"] < 33
    await c.send("a4 SELECT INBOX")  # none recent now
    found = await counts()
    assert found["ALL"] == 33 and found["RECENT"] == 0 and found["OLD"] == 33
    assert found["KEYWORD $Work"] == 10 and 0 < found["UNSEEN"] < 33

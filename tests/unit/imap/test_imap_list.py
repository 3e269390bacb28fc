"""LIST, LSUB, SUBSCRIBE, LIST-EXTENDED, LIST-STATUS, SPECIAL-USE, NAMESPACE, mUTF-7."""

from transcript import logged_in


async def test_list_special_cases_and_utf7(store):
    c, _account, _inbox = await logged_in(store)
    await c.transcript(
        """
        C: a1 LIST "" ""
        S: * LIST (\\Noselect) "/" ""
        S: a1 OK LIST completed
        C: a2 CREATE "&ZeVnLIqe-"
        S: a2 OK [MAILBOXID ...
        C: a3 LIST "" "&ZeVnLIqe-"
        S: * LIST (\\HasNoChildren) "/" "&ZeVnLIqe-"
        S: a3 OK LIST completed
        C: a4 LIST "" "inbox"
        S: * LIST (\\HasNoChildren) "/" "INBOX"
        S: a4 OK LIST completed
        C: a5 NAMESPACE
        S: * NAMESPACE (("" "/")) (("Other Users/" "/")) NIL
        S: a5 OK NAMESPACE completed
        """
    )


async def test_subscribe_lsub_and_list_extended(store):
    c, _account, _inbox = await logged_in(store)
    await c.transcript(
        """
        C: a1 CREATE Lists/ietf
        S: a1 OK [MAILBOXID ...
        C: a2 SUBSCRIBE Lists/ietf
        S: a2 OK SUBSCRIBE completed
        C: a3 SUBSCRIBE Nope
        S: a3 NO [NONEXISTENT] No such mailbox
        C: a4 LSUB "" Lists*
        S: * LSUB () "/" "Lists/ietf"
        S: a4 OK LSUB completed
        C: a5 LSUB "" L%
        S: * LSUB (\\Noselect) "/" "Lists"
        S: a5 OK LSUB completed
        C: a6 LIST (SUBSCRIBED) "" L*
        S: * LIST (\\Subscribed \\HasNoChildren) "/" "Lists/ietf"
        S: a6 OK LIST completed
        C: a7 LIST (SUBSCRIBED RECURSIVEMATCH) "" L%
        S: * LIST (\\HasChildren) "/" "Lists" ("CHILDINFO" ("SUBSCRIBED"))
        S: a7 OK LIST completed
        C: a8 LIST (SPECIAL-USE) "" *
        S: * LIST (\\HasNoChildren \\Archive) "/" "Archive"
        S: ~
        S: * LIST (\\HasNoChildren \\Trash) "/" "Trash"
        S: a8 OK LIST completed
        C: a9 LIST "" (INBOX Drafts) RETURN (SUBSCRIBED STATUS (MESSAGES UNSEEN SIZE))
        S: * LIST (\\Subscribed \\HasNoChildren) "/" "INBOX"
        S: * STATUS "INBOX" (MESSAGES 3 UNSEEN 3 SIZE ...
        S: * LIST (\\Subscribed \\HasNoChildren \\Drafts) "/" "Drafts"
        S: * STATUS "Drafts" (MESSAGES 0 UNSEEN 0 SIZE 0)
        S: a9 OK LIST completed
        C: b1 UNSUBSCRIBE Lists/ietf
        S: b1 OK UNSUBSCRIBE completed
        C: b2 LSUB "" Lists*
        S: b2 OK LSUB completed
        C: b3 CREATE MyJunk (USE (\\Junk))
        S: b3 OK [MAILBOXID ...
        C: b4 CREATE Bad (USE (\\Bogus))
        S: b4 NO [USEATTR] Unsupported special use
        C: b5 LIST "" MyJunk
        S: * LIST (\\HasNoChildren \\Junk) "/" "MyJunk"
        S: b5 OK LIST completed
        """
    )


def test_pattern_matching_agrees_with_a_regular_expression():
    import re

    from hypothesis import given
    from hypothesis import strategies as st

    from mailstack.imap.mailboxes import Pattern

    def reference(pattern: str, name: str) -> bool:
        regex = "".join(
            ".*" if c == "*" else "[^/]*" if c == "%" else re.escape(c) for c in pattern
        )
        return re.fullmatch(regex, name, re.DOTALL) is not None

    @given(st.text("ab/*%", max_size=8), st.text("ab/", max_size=8))
    def check(pattern, name):
        assert Pattern("", pattern).match(name) == reference(pattern, name)

    check()
    assert Pattern("", "inbox/%").match("INBOX/x") and Pattern("Work/", "%").match("Work/a")
    # A backtracking regular expression would not finish this one.
    assert not Pattern("", "*a" * 500 + "b").match("a" * 1000)


async def test_list_extended_bad_options_and_childinfo(store):
    c, _account, _inbox = await logged_in(store)
    await c.transcript(
        """
        C: a1 CREATE Lists/ietf
        S: a1 OK [MAILBOXID ...
        C: a2 SUBSCRIBE Lists/ietf
        S: a2 OK SUBSCRIBE completed
        C: b1 LIST (RECURSIVEMATCH REMOTE) "" ""
        S: b1 BAD ...
        C: b2 LIST (RECURSIVEMATCH) "" *
        S: b2 BAD ...
        C: b3 LIST "" "" RETURN (unknown)
        S: b3 BAD ...
        C: b4 LIST "" * RETURN (STATUS)
        S: b4 BAD ...
        C: b5 LIST (REMOTE) "" Lists RETURN (CHILDREN)
        S: * LIST (\\HasChildren) "/" "Lists"
        S: b5 OK LIST completed
        C: c1 LIST (SUBSCRIBED RECURSIVEMATCH) "" L*
        S: * LIST (\\Subscribed \\HasNoChildren) "/" "Lists/ietf"
        S: c1 OK LIST completed
        C: c2 LIST (SUBSCRIBED RECURSIVEMATCH) "" Lists
        S: * LIST (\\HasChildren) "/" "Lists" ("CHILDINFO" ("SUBSCRIBED"))
        S: c2 OK LIST completed
        """
    )

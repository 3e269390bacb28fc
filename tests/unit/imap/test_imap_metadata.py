"""METADATA (RFC 5464): GETMETADATA / SETMETADATA transcripts on the real
store: server and mailbox entries, private and shared, DEPTH, MAXSIZE,
entry name rules, limits, rights, RENAME and DELETE."""

import asyncio
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from transcript import PASSWORD, USER, Client, logged_in

from mailstack.imap.proto.commands import GetMetadata, SetMetadata
from mailstack.imap.proto.parser import ParseError, parse_command
from mailstack.limits import Limits
from mailstack.store import SERVER_ENTRIES

OWNER = "alice@hamburger.edu"
NEW = "(MessageNew MessageExpunge)"


def parse(line: bytes) -> object:
    return parse_command(line + b"\r\n").args


def test_grammar():
    assert parse(b'a GETMETADATA "" /shared/comment') == GetMetadata("", ("/shared/comment",))
    # Options before the mailbox (the ABNF) and after it (the RFC's examples).
    assert parse(b"a GETMETADATA (MAXSIZE 10 DEPTH infinity) INBOX (/Private/A /shared)") == (
        GetMetadata("INBOX", ("/private/a", "/shared"), 10, -1)
    )
    assert parse(b"a GETMETADATA inbox (DEPTH 1) /private/a") == (
        GetMetadata("INBOX", ("/private/a",), None, 1)
    )
    assert parse(b'a SETMETADATA INBOX (/private/a "x" /shared/B NIL /private/c {2}\r\nyz)') == (
        SetMetadata("INBOX", (("/private/a", b"x"), ("/shared/b", None), ("/private/c", b"yz")))
    )
    assert parse(b"a SETMETADATA INBOX (/private/a ~{3}\r\na\x00b)") == (
        SetMetadata("INBOX", (("/private/a", b"a\x00b"),))
    )
    for bad in (
        b"a GETMETADATA INBOX /other/x",
        b"a GETMETADATA INBOX /private/a*",
        b"a GETMETADATA INBOX /private/%",
        b"a GETMETADATA INBOX /private//a",
        b"a GETMETADATA INBOX /private/a/",
        b"a GETMETADATA INBOX ()",
        b"a GETMETADATA (DEPTH 2) INBOX /private/a",
        b"a GETMETADATA (MAXSIZE x) INBOX /private/a",
        b"a GETMETADATA (COLOR 1) INBOX /private/a",
        b"a GETMETADATA INBOX",
        b"a SETMETADATA INBOX (/private/a)",
        b"a SETMETADATA INBOX (/private/a x)",
        b"a SETMETADATA INBOX (/private \"x\")",
        b"a SETMETADATA INBOX /private/a \"x\"",
        b"a SETMETADATA INBOX ()",
    ):
        with pytest.raises(ParseError) as exc:
            parse(bad)
        assert exc.value.bad, bad


async def test_mailbox_entries_private_and_shared(store):
    c, account, inbox = await logged_in(store, 0)
    got = await c.send("c1 CAPABILITY")
    assert {"METADATA", "METADATA-SERVER"} <= set(got[0].split())
    await c.transcript(
        r"""
        C: a1 GETMETADATA INBOX /private/comment
        S: * METADATA "INBOX" (/private/comment NIL)
        S: a1 OK GETMETADATA completed
        C: a2 SETMETADATA INBOX (/private/comment "My own" /shared/comment "Everyone's")
        S: a2 OK SETMETADATA completed
        C: a3 GETMETADATA INBOX (/shared/comment /private/comment)
        S: * METADATA "INBOX" (/private/comment "My own" /shared/comment "Everyone's")
        S: a3 OK GETMETADATA completed
        C: a4 SETMETADATA INBOX (/Private/Vendor/T/A "1" /private/vendor/t/a/b {5}\r\nx"y\z)
        S: a4 OK SETMETADATA completed
        C: a5 GETMETADATA (DEPTH 1) INBOX /private/vendor/t
        S: * METADATA "INBOX" (/private/vendor/t NIL /private/vendor/t/a "1")
        S: a5 OK GETMETADATA completed
        C: a6 GETMETADATA (DEPTH infinity) INBOX /private
        S: * METADATA "INBOX" (/private/comment "My own" /private/vendor/t/a "1" /private/vendor...
        S: a6 OK GETMETADATA completed
        C: a7 GETMETADATA (MAXSIZE 5 DEPTH infinity) INBOX (/shared /private/comment)
        S: a7 OK [METADATA LONGENTRIES 10] GETMETADATA completed
        C: a8 GETMETADATA INBOX (MAXSIZE 6) (/shared/comment /private/comment)
        S: * METADATA "INBOX" (/private/comment "My own")
        S: a8 OK [METADATA LONGENTRIES 10] GETMETADATA completed
        C: a9 SETMETADATA INBOX (/shared/comment NIL /private/nothing NIL)
        S: a9 OK SETMETADATA completed
        C: b1 GETMETADATA INBOX /shared/comment
        S: * METADATA "INBOX" (/shared/comment NIL)
        S: b1 OK GETMETADATA completed
        C: b2 GETMETADATA Nowhere /shared/comment
        S: b2 NO [NONEXISTENT] No such mailbox
        C: b3 SETMETADATA Nowhere (/shared/comment "x")
        S: b3 NO [NONEXISTENT] No such mailbox
        """
    )
    got = await c.send("b0 GETMETADATA INBOX /private/vendor/t/a/b")
    assert got[0] == r'* METADATA "INBOX" (/private/vendor/t/a/b "x\"y\\z")'
    # A binary value goes back as literal8.
    await c.send(b"b4 SETMETADATA INBOX (/private/comment ~{3}\r\na\x00b)")
    got = await c.send("b5 GETMETADATA INBOX /private/comment")
    assert got[0] == '* METADATA "INBOX" (/private/comment ~{3}' and got[1] == "a\x00b)"


async def test_server_entries(store):
    c, account, inbox = await logged_in(store, 0)
    await store.metadata_set(SERVER_ENTRIES, account.id, {"/shared/comment": b"Welcome"})
    await c.transcript(
        """
        C: a1 GETMETADATA "" (/shared/admin /shared/comment)
        S: * METADATA "" (/shared/admin "mailto:postmaster@mx.test" /shared/comment "Welcome")
        S: a1 OK GETMETADATA completed
        C: a0 GETMETADATA "" /private/comment
        S: * METADATA "" (/private/comment NIL)
        S: a0 OK GETMETADATA completed
        C: a2 SETMETADATA "" (/private/comment "note to self")
        S: a2 OK SETMETADATA completed
        C: a3 GETMETADATA "" /private/comment
        S: * METADATA "" (/private/comment "note to self")
        S: a3 OK GETMETADATA completed
        C: a4 SETMETADATA "" (/shared/comment "mine now")
        S: a4 NO [NOPERM] The server's shared entries are the administrator's
        C: a5 GETMETADATA "" /shared/comment
        S: * METADATA "" (/shared/comment "Welcome")
        S: a5 OK GETMETADATA completed
        """
    )
    # Private server entries are the user's alone.
    assert await store.metadata_get(SERVER_ENTRIES, account.id + 1000) == {
        "/shared/comment": b"Welcome"
    }


async def test_specialuse_mirrors_special_use(store):
    c, account, inbox = await logged_in(store, 0)
    await c.transcript(
        r"""
        C: a1 CREATE Outbox (USE (\Sent))
        S: a1 OK...
        C: a2 GETMETADATA Outbox /private/specialuse
        S: * METADATA "Outbox" (/private/specialuse "\\Sent")
        S: a2 OK GETMETADATA completed
        C: a3 GETMETADATA INBOX /private/specialuse
        S: * METADATA "INBOX" (/private/specialuse NIL)
        S: a3 OK GETMETADATA completed
        C: a4 SETMETADATA Outbox (/private/specialuse "\\Drafts")
        S: a4 NO [USEATTR] /private/specialuse is read-only here
        """
    )


async def test_limits(store):
    account_limits = replace(Limits(), imap_metadata_size=8, imap_metadata_entries=2)
    _c, account, inbox = await logged_in(store, 0)
    c = Client(store, account_limits)
    await c.login()
    await c.transcript(
        """
        C: a1 SETMETADATA INBOX (/private/a "123456789")
        S: a1 NO [METADATA MAXSIZE 8] The value is too long
        C: a2 SETMETADATA INBOX (/private/a "12345678" /shared/b "x")
        S: a2 OK SETMETADATA completed
        C: a3 SETMETADATA INBOX (/private/c "x")
        S: a3 NO [METADATA TOOMANY] Too many entries
        C: a4 SETMETADATA INBOX (/private/c "x" /private/a NIL)
        S: a4 OK SETMETADATA completed
        C: a5 GETMETADATA (DEPTH infinity) INBOX (/private /shared)
        S: * METADATA "INBOX" (/private/c "x" /shared/b "x")
        S: a5 OK GETMETADATA completed
        """
    )


async def test_entries_follow_rename_and_go_with_delete(store):
    c, account, inbox = await logged_in(store, 0)
    await c.transcript(
        """
        C: a1 CREATE Work
        S: a1 OK...
        C: a2 SETMETADATA Work (/shared/comment "projects")
        S: a2 OK SETMETADATA completed
        C: a3 RENAME Work Job
        S: a3 OK...
        C: a4 GETMETADATA Job /shared/comment
        S: * METADATA "Job" (/shared/comment "projects")
        S: a4 OK GETMETADATA completed
        C: a5 DELETE Job
        S: a5 OK...
        C: a6 CREATE Job
        S: a6 OK...
        C: a7 GETMETADATA Job /shared/comment
        S: * METADATA "Job" (/shared/comment NIL)
        S: a7 OK GETMETADATA completed
        """
    )


async def test_rights_on_a_shared_mailbox(store):
    """RFC 5464 §3.1.2: l and r to read and to set private entries, w too
    for shared ones; without l the mailbox does not exist."""
    await store.domain_add("hamburger.edu")
    alice = await store.account_add(OWNER, PASSWORD)
    await store.account_add(USER, PASSWORD)
    await store.mailbox_create(alice.id, "Team")
    await store.mailbox_create(alice.id, "Secret")
    team = await store.mailbox_get(alice.id, "Team")
    await store.metadata_set(team.id, alice.id, {"/shared/comment": b"t", "/private/comment": b"a"})
    owner = Client(store)
    got = await owner.send(f"l1 LOGIN {OWNER} {PASSWORD}")
    assert got[-1].startswith("l1 OK")
    await owner.send(f"s1 SETACL Team {USER} lr")
    bob = Client(store)
    await bob.login()
    shared = f'"Other Users/{OWNER}/Team"'
    await bob.transcript(
        f"""
        C: a1 GETMETADATA {shared} (/shared/comment /private/comment)
        S: * METADATA {shared} (/private/comment NIL /shared/comment "t")
        S: a1 OK GETMETADATA completed
        C: a2 SETMETADATA {shared} (/private/comment "bob's")
        S: a2 OK SETMETADATA completed
        C: a3 SETMETADATA {shared} (/shared/comment "bob's")
        S: a3 NO [NOPERM] Permission denied
        C: a4 GETMETADATA "Other Users/{OWNER}/Secret" /shared/comment
        S: a4 NO [NONEXISTENT] No such mailbox
        """
    )
    await owner.send(f"s2 SETACL Team {USER} lrw")
    await bob.transcript(
        f"""
        C: b1 SETMETADATA {shared} (/shared/comment "bob's")
        S: b1 OK SETMETADATA completed
        """
    )
    await owner.send(f"s3 SETACL Team {USER} l")
    await bob.transcript(
        f"""
        C: b2 GETMETADATA {shared} /shared/comment
        S: b2 NO [NOPERM] Permission denied
        """
    )
    await owner.transcript(
        """
        C: c1 GETMETADATA Team (/shared/comment /private/comment)
        S: * METADATA "Team" (/private/comment "a" /shared/comment "bob's")
        S: c1 OK GETMETADATA completed
        """
    )


async def test_names_that_are_no_atoms_go_quoted(store):
    c, account, inbox = await logged_in(store, 0)
    await c.transcript(
        r"""
        C: a1 SETMETADATA INBOX ("/private/a(b]" "1" "/private/q\"\\" "2")
        S: a1 OK SETMETADATA completed
        C: a2 GETMETADATA (DEPTH 1) INBOX /private
        S: * METADATA "INBOX" ("/private/a(b]" "1" "/private/q\"\\" "2")
        S: a2 OK GETMETADATA completed
        """
    )


@given(st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x7F), max_size=30))
def test_any_entry_name_is_checked_or_refused(text):
    """Every name either passes the §3.2 rules, lower-cased, or is BAD."""
    from mailstack.imap.proto.response import quoted

    line = b"a GETMETADATA INBOX " + quoted("/private/" + text) + b"\r\n"
    try:
        args = parse_command(line).args
    except ParseError as exc:
        assert exc.bad
        return
    (name,) = args.entries
    assert name == ("/private/" + text).lower()
    assert not {"*", "%"} & set(name) and "//" not in name and not name.endswith("/")
    assert all(0x21 <= ord(ch) <= 0x7E for ch in name)


# -- NOTIFY (RFC 5465 §5.7): MailboxMetadataChange, ServerMetadataChange ------


async def pushed(c: Client, needle: bytes, tries: int = 1000) -> list[str]:
    """What the session sent once ``needle`` is among it (pushed, no command)."""
    for _ in range(tries):
        if needle in c.channel.out:
            return c.channel.take()
        await asyncio.sleep(0.01)
    raise AssertionError(f"{needle!r} never came; got {bytes(c.channel.out)!r}")


async def test_notify_mailbox_and_server_entries_of_another_session(store):
    """Another session's SETMETADATA is told as ``* METADATA mailbox entry
    ...`` (RFC 5464 §4.4.2) naming what was set, changed or removed; what
    was there at NOTIFY SET is not told; the server's entries only with
    ServerMetadataChange."""
    watcher, account, _inbox = await logged_in(store, 0)
    await store.mailbox_create(account.id, "Work")
    work = await store.mailbox_get(account.id, "Work")
    await store.metadata_set(work.id, account.id, {"/private/old": b"1"})
    setter = Client(store)
    setter.ctx = watcher.ctx
    setter.session.ctx = watcher.ctx
    await setter.login()
    got = await watcher.send("n1 NOTIFY SET STATUS (PERSONAL (MailboxMetadataChange))")
    assert got == ["n1 OK NOTIFY completed"]
    await setter.send('a1 SETMETADATA Work (/private/comment "x" /shared/vendor/a "y")')
    got = await pushed(watcher, b"METADATA")
    assert got == ['* METADATA "Work" /private/comment /shared/vendor/a']
    # Changed and removed are told; one left as it was is not.
    await setter.send('a2 SETMETADATA Work (/private/comment "z" /private/old NIL)')
    assert await pushed(watcher, b"METADATA") == ['* METADATA "Work" /private/comment /private/old']
    await setter.send('a3 SETMETADATA Work (/private/comment "z")')  # the same value
    await setter.send('a4 SETMETADATA "" (/private/motd "hi")')  # not asked for
    await setter.send('a5 SETMETADATA INBOX (/private/last "1")')
    assert await pushed(watcher, b"METADATA") == ['* METADATA "INBOX" /private/last']
    # ServerMetadataChange: the server's entries, as mailbox "".
    both = "MailboxMetadataChange ServerMetadataChange"
    got = await watcher.send(f"n2 NOTIFY SET (PERSONAL ({both}))")
    assert got == ["n2 OK NOTIFY completed"]
    await setter.send('a6 SETMETADATA "" (/private/motd NIL /private/vendor/x "1")')
    assert await pushed(watcher, b"METADATA") == ['* METADATA "" /private/motd /private/vendor/x']
    # A name that is no atom goes quoted.
    await setter.send('a7 SETMETADATA Work ("/private/a(b" "1")')
    assert await pushed(watcher, b"METADATA") == ['* METADATA "Work" "/private/a(b"']
    # NOTIFY NONE: no more.
    await watcher.send("n3 NOTIFY NONE")
    await setter.send('a8 SETMETADATA Work (/private/comment "after")')
    await asyncio.sleep(0.2)
    assert watcher.channel.take() == []


async def test_notify_own_change_selected_mailbox_and_groups(store):
    """The session's own SETMETADATA is told before its tagged OK; the
    selected mailbox is told too (its poll tells messages only); a mailbox
    no group names with the event is not; AnnotationChange (RFC 5257
    ANNOTATE, not offered) stays BADEVENT."""
    c, account, _inbox = await logged_in(store, 0)
    await store.mailbox_create(account.id, "Other")
    await c.send("s1 SELECT INBOX")
    events = "MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange"
    events += " MailboxMetadataChange ServerMetadataChange"
    await c.transcript(
        f"""
        C: n1 NOTIFY SET (SELECTED {NEW}) (MAILBOXES INBOX (MailboxMetadataChange))
        S: n1 OK NOTIFY completed
        C: a1 SETMETADATA INBOX (/private/comment "mine")
        S: * METADATA "INBOX" /private/comment
        S: a1 OK SETMETADATA completed
        C: a2 SETMETADATA Other (/private/comment "not watched")
        S: a2 OK SETMETADATA completed
        C: n2 NOTIFY SET (PERSONAL (MessageNew MessageExpunge AnnotationChange))
        S: n2 NO [BADEVENT ({events})] Unsupported event
        C: a3 SETMETADATA INBOX (/private/comment NIL)
        S: * METADATA "INBOX" /private/comment
        S: a3 OK SETMETADATA completed
        """
    )


async def test_notify_shared_mailbox_entries(store):
    """A shared mailbox (RFC 4314): its owner's /shared/ changes are told,
    the owner's /private/ ones are not (the user does not see them); with
    no r right nothing is told."""
    await store.domain_add("hamburger.edu")
    alice = await store.account_add(OWNER, PASSWORD)
    await store.account_add(USER, PASSWORD)
    await store.mailbox_create(alice.id, "Team")
    team = await store.mailbox_get(alice.id, "Team")
    await store.acl_set(team.id, USER, "lr")
    bob = Client(store)
    await bob.login()
    shared = f"Other Users/{OWNER}/Team"
    got = await bob.send(f'n1 NOTIFY SET (MAILBOXES "{shared}" (MailboxMetadataChange))')
    assert got == ["n1 OK NOTIFY completed"]
    await store.metadata_set(team.id, alice.id, {"/private/mine": b"a"})
    await store.metadata_set(team.id, alice.id, {"/shared/comment": b"t"})
    assert await pushed(bob, b"METADATA") == [f'* METADATA "{shared}" /shared/comment']
    await store.acl_set(team.id, USER, "l")
    await store.metadata_set(team.id, alice.id, {"/shared/comment": b"u"})
    await asyncio.sleep(0.2)
    assert bob.channel.take() == []


async def test_notify_entries_follow_rename_and_go_with_delete(store):
    """Entries follow RENAME (kept by mailbox id): the rename tells no
    METADATA, a later change is told under the new name; DELETE tells none."""
    watcher, account, _inbox = await logged_in(store, 0)
    await store.mailbox_create(account.id, "Work")
    work = await store.mailbox_get(account.id, "Work")
    await store.metadata_set(work.id, account.id, {"/private/comment": b"w"})
    setter = Client(store)
    await setter.login()
    got = await watcher.send("n1 NOTIFY SET (PERSONAL (MailboxName MailboxMetadataChange))")
    assert got == ["n1 OK NOTIFY completed"]
    await setter.send("r1 RENAME Work Done")
    assert await pushed(watcher, b"OLDNAME") == ['* LIST () "/" "Done" ("OLDNAME" ("Work"))']
    await setter.send('a1 SETMETADATA Done (/private/comment "d")')
    assert await pushed(watcher, b"METADATA") == ['* METADATA "Done" /private/comment']
    await setter.send("d1 DELETE Done")
    assert await pushed(watcher, b"NonExistent") == ['* LIST (\\NonExistent) "/" "Done"']

"""IMAP ACL (RFC 4314), the other users' namespace (RFC 2342) and
LIST-MYRIGHTS (RFC 8440): alice shares mailboxes with bob, on the real store."""

from transcript import PASSWORD, USER, Client, message

from mailstack.imap.proto.commands import AclIdentifier, MailboxArg, SetAcl
from mailstack.imap.proto.parser import ParseError, parse_command

from support import append

OWNER = "alice@hamburger.edu"
SHARED = f"Other Users/{OWNER}"
ALL = "lrswipkxteacd"


async def accounts(store):
    await store.domain_add("hamburger.edu")
    alice = await store.account_add(OWNER, PASSWORD)
    bob = await store.account_add(USER, PASSWORD)
    await store.mailbox_create(alice.id, "Projects")
    projects = await store.mailbox_get(alice.id, "Projects")
    for n in (1, 2):
        await append(store, projects.id, message(n))
    await store.mailbox_create(alice.id, "Secret")
    return alice, bob, projects


async def client(store, address: str) -> Client:
    c = Client(store)
    got = await c.send(f"l1 LOGIN {address} {PASSWORD}")
    assert got[-1].startswith("l1 OK"), got
    return c


def parse(line: bytes) -> object:
    return parse_command(line + b"\r\n").args


def test_acl_commands_parse():
    assert parse(b"a SETACL INBOX bob@x.org +lrs") == SetAcl("INBOX", "bob@x.org", "+lrs")
    assert parse(b'a SETACL "A/B" anyone ""') == SetAcl("A/B", "anyone", "")
    assert parse(b"a DELETEACL inbox fred") == AclIdentifier("INBOX", "fred")
    assert parse(b"a LISTRIGHTS x fred") == AclIdentifier("x", "fred")
    assert parse(b"a GETACL x") == MailboxArg("x")
    assert parse(b"a MYRIGHTS x") == MailboxArg("x")
    for bad in (b"a SETACL INBOX fred", b"a GETACL", b"a MYRIGHTS x y", b"a DELETEACL x"):
        try:
            parse(bad)
        except ParseError as exc:
            assert exc.bad
        else:
            raise AssertionError(bad)


async def test_capabilities_and_namespace(store):
    await accounts(store)
    bob = await client(store, USER)
    got = await bob.send("c1 CAPABILITY")
    assert {"ACL", "RIGHTS=texk", "LIST-MYRIGHTS"} <= set(got[0].split())
    await bob.transcript(
        """
        C: c2 NAMESPACE
        S: * NAMESPACE (("" "/")) (("Other Users/" "/")) NIL
        S: c2 OK NAMESPACE completed
        """
    )


async def test_owner_manages_the_acl(store):
    await accounts(store)
    alice = await client(store, OWNER)
    await alice.transcript(
        f"""
        C: a1 MYRIGHTS Projects
        S: * MYRIGHTS "Projects" lrswipkxteacd
        S: a1 OK MYRIGHTS completed
        C: a2 SETACL Projects {USER} lrs
        S: a2 OK SETACL completed
        C: a3 GETACL Projects
        S: * ACL "Projects" {OWNER} {ALL} {USER} lrs
        S: a3 OK GETACL completed
        C: a4 SETACL Projects {USER.upper()} +d
        S: a4 OK SETACL completed
        C: a5 GETACL Projects
        S: * ACL "Projects" {OWNER} {ALL} {USER} lrsted
        S: a5 OK GETACL completed
        C: a6 SETACL Projects {USER} -dr
        S: a6 OK SETACL completed
        C: a7 GETACL Projects
        S: * ACL "Projects" {OWNER} {ALL} {USER} ls
        S: a7 OK GETACL completed
        C: a8 LISTRIGHTS Projects {USER}
        S: * LISTRIGHTS "Projects" {USER} "" l r s w i p k x t e a c d
        S: a8 OK LISTRIGHTS completed
        C: a9 LISTRIGHTS Projects {OWNER}
        S: * LISTRIGHTS "Projects" {OWNER} {ALL}
        S: a9 OK LISTRIGHTS completed
        C: b1 SETACL Projects {USER} lrQs
        S: b1 BAD Uppercase rights are not allowed
        C: b2 SETACL Projects {USER} lrqs
        S: b2 BAD The 'q' right is not supported
        C: b3 SETACL Projects nobody@hamburger.edu lr
        S: b3 NO [CANNOT] No such identifier
        C: b4 SETACL Projects {OWNER} lr
        S: b4 NO [CANNOT] The owner's rights cannot be changed
        C: b5 SETACL Projects -{USER} w
        S: b5 NO [CANNOT] Negative rights are not supported
        C: b6 SETACL Projects "\\u0007" w
        S: b6 BAD Bad identifier
        C: b7 SETACL Nowhere {USER} lr
        S: b7 NO [NONEXISTENT] No such mailbox
        C: b8 DELETEACL Projects {USER}
        S: b8 OK DELETEACL completed
        C: b9 GETACL Projects
        S: * ACL "Projects" {OWNER} {ALL}
        S: b9 OK GETACL completed
        """.replace("\\u0007", "\u0007")
    )


async def test_reader_sees_and_reads_but_cannot_write(store):
    alice, _bob, projects = await accounts(store)
    await store.acl_set(projects.id, USER, "lrs")
    bob = await client(store, USER)
    box = f"{SHARED}/Projects"
    await bob.transcript(
        f"""
        C: a1 LIST "" "*"
        S: * LIST (\\HasNoChildren) "/" "INBOX"
        S: ~
        S: * LIST (\\Noselect \\HasChildren) "/" "Other Users"
        S: * LIST (\\Noselect \\HasChildren) "/" "{SHARED}"
        S: * LIST (\\HasNoChildren) "/" "{box}"
        S: ~
        S: a1 OK LIST completed
        C: a2 LIST "" "{SHARED}/%" RETURN (MYRIGHTS)
        S: * LIST (\\HasNoChildren) "/" "{box}"
        S: * MYRIGHTS "{box}" lrs
        S: a2 OK LIST completed
        C: a3 MYRIGHTS "{box}"
        S: * MYRIGHTS "{box}" lrs
        S: a3 OK MYRIGHTS completed
        C: a3b GETQUOTAROOT "{box}"
        S: * QUOTAROOT "{box}"
        S: a3b OK GETQUOTAROOT completed
        C: a4 STATUS "{box}" (MESSAGES UNSEEN)
        S: * STATUS "{box}" (MESSAGES 2 UNSEEN 2)
        S: a4 OK STATUS completed
        C: a5 SELECT "{box}"
        S: * FLAGS (\\Answered \\Deleted \\Draft \\Flagged \\Seen)
        S: * 2 EXISTS
        S: * 2 RECENT
        S: * OK [UNSEEN 1] First unseen message
        S: * OK [PERMANENTFLAGS (\\Seen)] Flags permitted
        S: ~
        S: a5 OK [READ-WRITE] SELECT completed
        C: a6 FETCH 1 BODY[TEXT]
        S: * 1 FETCH (BODY[TEXT] {{17}}
        S: Hello number 1.
        S:  FLAGS (\\Recent \\Seen))
        S: a6 OK FETCH completed
        C: a7 FETCH 1 FLAGS
        S: * 1 FETCH (FLAGS (\\Recent \\Seen))
        S: a7 OK FETCH completed
        C: a8 STORE 2 +FLAGS (\\Flagged)
        S: a8 NO [NOPERM] Permission denied
        C: a9 STORE 2 +FLAGS (\\Flagged \\Seen)
        S: * 2 FETCH (FLAGS (\\Recent \\Seen))
        S: a9 OK STORE completed
        C: b1 STORE 2 FLAGS ()
        S: * 2 FETCH (FLAGS (\\Recent))
        S: b1 OK STORE completed
        C: b2 EXPUNGE
        S: b2 NO [NOPERM] Permission denied
        C: b3 MOVE 1 INBOX
        S: b3 NO [NOPERM] Permission denied
        C: b4 COPY 1 INBOX
        S: b4 OK [COPYUID ...
        C: b5 APPEND "{box}" {{5+}}\\r\\nhello
        S: b5 NO [NOPERM] Permission denied
        C: b6 GETACL "{box}"
        S: b6 NO [NOPERM] Permission denied
        C: b7 DELETE "{box}"
        S: b7 NO [NOPERM] Permission denied
        C: b8 CREATE "{box}/Sub"
        S: b8 NO [NOPERM] Permission denied
        C: b9 RENAME "{box}" "{SHARED}/Renamed"
        S: b9 NO [NOPERM] Permission denied
        C: c1 CLOSE
        S: c1 OK CLOSE completed
        """
    )
    # The copy went into bob's own INBOX; alice's mailbox is as it was.
    assert len(await store.messages(projects.id)) == 2
    inbox = await store.mailbox_get(alice.id, "INBOX")
    assert await store.messages(inbox.id) == []


async def test_without_rights_a_mailbox_does_not_exist(store):
    await accounts(store)
    bob = await client(store, USER)
    for command in (
        "SELECT", "EXAMINE", "STATUS", "MYRIGHTS", "GETACL", "DELETE", "SUBSCRIBE", "GETQUOTAROOT"
    ):
        args = " (MESSAGES)" if command == "STATUS" else ""
        got = await bob.send(f'x1 {command} "{SHARED}/Secret"{args}')
        assert got == ["x1 NO [NONEXISTENT] No such mailbox"], (command, got)
    got = await bob.send(f'x2 LIST "" "{SHARED}/*"')
    assert got == ["x2 OK LIST completed"]
    got = await bob.send('x3 SELECT "Other Users/nobody@hamburger.edu/INBOX"')
    assert got == ["x3 NO [NONEXISTENT] No such mailbox"]
    got = await bob.send('x4 CREATE "Other Users"')
    assert got == ["x4 NO [CANNOT] Cannot create a mailbox there"]


async def test_read_only_rights_select_read_only(store):
    _alice, _bob, projects = await accounts(store)
    await store.acl_set(projects.id, USER, "lr")
    bob = await client(store, USER)
    await bob.transcript(
        f"""
        C: a1 SELECT "{SHARED}/Projects"
        S: ~
        S: * OK [PERMANENTFLAGS ()] Flags permitted
        S: ~
        S: a1 OK [READ-ONLY] SELECT completed
        C: a2 FETCH 1 BODY[TEXT]
        S: ~
        S: a2 OK FETCH completed
        C: a3 FETCH 1 FLAGS
        S: * 1 FETCH (FLAGS (\\Recent))
        S: a3 OK FETCH completed
        """
    )


async def test_writer_appends_creates_and_expunges(store):
    alice, _bob, projects = await accounts(store)
    await store.acl_set(projects.id, USER, "lrswikte")
    await store.acl_set(projects.id, "anyone", "l")
    bob = await client(store, USER)
    box = f"{SHARED}/Projects"
    await bob.transcript(
        f"""
        C: a1 CREATE "{box}/Sub"
        S: a1 OK [MAILBOXID (M15)] CREATE completed
        C: a2 APPEND "{box}/Sub" (\\Seen \\Flagged) {{5+}}\\r\\nhello
        S: a2 OK [APPENDUID ...
        C: a3 SELECT "{box}"
        S: ~
        S: * OK [PERMANENTFLAGS (\\Answered \\Deleted \\Draft \\Flagged \\Seen \\*)] Flags permitted
        S: ~
        S: a3 OK [READ-WRITE] SELECT completed
        C: a4 STORE 1 +FLAGS.SILENT (\\Deleted)
        S: a4 OK STORE completed
        C: a5 EXPUNGE
        S: * 1 EXPUNGE
        S: a5 OK EXPUNGE completed
        C: a6 MOVE 1 INBOX
        S: * OK [COPYUID ...
        S: * 1 EXPUNGE
        S: a6 OK MOVE completed
        """
    )
    sub = await store.mailbox_get(alice.id, "Projects/Sub")
    assert sub is not None
    # RFC 4314 §4: the new mailbox inherits its parent's ACL.
    assert await store.acl_get(sub.id) == await store.acl_get(projects.id)
    (meta,) = await store.messages(sub.id)
    assert meta.flags == {"\\Seen", "\\Flagged"}
    assert await store.messages(projects.id) == []


async def test_copy_into_shared_keeps_only_permitted_flags(store):
    alice, _bob, projects = await accounts(store)
    await store.acl_set(projects.id, USER, "lrsi")
    bob = await client(store, USER)
    inbox = await store.mailbox_get((await store.account_get(USER)).id, "INBOX")
    await append(store, inbox.id, message(9), ["\\Seen", "\\Deleted", "$Forwarded"])
    await bob.transcript(
        f"""
        C: a1 SELECT INBOX
        S: ~
        S: a1 OK [READ-WRITE] SELECT completed
        C: a2 COPY 1 "{SHARED}/Projects"
        S: a2 OK [COPYUID ...
        C: a3 APPEND "{SHARED}/Projects" (\\Seen \\Draft) {{5+}}\\r\\nhello
        S: a3 OK [APPENDUID ...
        """
    )
    metas = await store.messages(projects.id)
    assert [m.flags for m in metas[2:]] == [{"\\Seen"}, {"\\Seen"}]


async def test_revoking_hides_the_mailbox(store):
    alice, _bob, projects = await accounts(store)
    owner = await client(store, OWNER)
    bob = await client(store, USER)
    got = await owner.send(f"a1 SETACL Projects {USER} lr")
    assert got == ["a1 OK SETACL completed"]
    got = await bob.send(f'b1 LIST "" "{SHARED}/*"')
    assert got[0] == f'* LIST (\\HasNoChildren) "/" "{SHARED}/Projects"'
    got = await owner.send(f"a2 DELETEACL Projects {USER}")
    got = await bob.send(f'b2 LIST "" "{SHARED}/*"')
    assert got == ["b2 OK LIST completed"]
    got = await bob.send(f'b3 SELECT "{SHARED}/Projects"')
    assert got == ["b3 NO [NONEXISTENT] No such mailbox"]
    # Sharing with anyone reaches every account.
    got = await owner.send("a3 SETACL Projects anyone lr")
    got = await bob.send(f'b4 MYRIGHTS "{SHARED}/Projects"')
    assert got[0] == f'* MYRIGHTS "{SHARED}/Projects" lr'
    # DELETE takes the ACL with it.
    got = await owner.send("a4 DELETE Projects")
    assert got == ["a4 OK DELETE completed"]
    assert await store.acl_shared_with(USER) == []

"""NOTIFY (RFC 5465): the command's grammar, and what is told of changes
made elsewhere, between commands, during IDLE and after a command."""

import asyncio

from hypothesis import given
from hypothesis import strategies as st
from transcript import PASSWORD, USER, Client, logged_in, message

from mailstack.errors import StoreUnavailable
from mailstack.imap import notify
from mailstack.imap.proto.commands import Notify, NotifyGroup
from mailstack.imap.proto.parser import ParseError, parse_command

from support import append


async def wait_for(c: Client, needle: bytes, tries: int = 1000) -> list[str]:
    """What the session sent once ``needle`` is among it (pushed, no command)."""
    for _ in range(tries):
        if needle in c.channel.out:
            return c.channel.take()
        await asyncio.sleep(0.01)
    raise AssertionError(f"{needle!r} never came; got {bytes(c.channel.out)!r}")


BADEVENT = (
    "NO [BADEVENT (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange"
    " MailboxMetadataChange ServerMetadataChange)]"
)
NEW = "(MessageNew MessageExpunge)"


async def test_notify_grammar(store):
    c, _account, _inbox = await logged_in(store, 0)
    await c.transcript(
        f"""
        C: n1 NOTIFY NONE
        S: n1 OK NOTIFY completed
        C: n2 NOTIFY SET (SELECTED (MessageNew (UID FLAGS) MessageExpunge))
        S: n2 OK NOTIFY completed
        C: n3 notify set (selected-delayed (messagenew messageexpunge flagchange))
        S: n3 OK NOTIFY completed
        C: n4 NOTIFY SET (PERSONAL NONE) (SUBTREE INBOX (MailboxName)) (MAILBOXES (X "a b") {NEW})
        S: n4 OK NOTIFY completed
        C: n5 NOTIFY SET (SELECTED (MessageNew))
        S: n5 BAD MessageNew and MessageExpunge go together
        C: n6 NOTIFY SET (PERSONAL (FlagChange))
        S: n6 BAD MessageNew and MessageExpunge go together
        C: n7 NOTIFY SET (SELECTED (MailboxName))
        S: n7 BAD Only message events apply to the selected mailbox
        C: n8 NOTIFY SET (BOGUS (MailboxName))
        S: n8 BAD Bad mailbox filter
        C: n9 NOTIFY SET
        S: n9 BAD NOTIFY SET needs an event group
        C: n10 NOTIFY SET (SELECTED {NEW}) (SELECTED-DELAYED NONE)
        S: n10 BAD SELECTED named twice
        C: n11 NOTIFY SET (PERSONAL ())
        S: n11 BAD Expected a list of events
        C: n12 NOTIFY SET (SUBTREE (MailboxName))
        S: n12 BAD Expected the events of an event group
        C: n13 NOTIFY SET (PERSONAL (MailboxName Teleport))
        S: n13 {BADEVENT} Unsupported event
        C: n14 NOTIFY SET (PERSONAL (MessageNew MessageExpunge AnnotationChange))
        S: n14 {BADEVENT} Unsupported event
        C: n15 NOTIFY BOGUS
        S: n15 BAD Expected SET or NONE
        C: n16 NOTIFY SET (SELECTED (MessageNew (RFC822) MessageExpunge))
        S: n16 BAD MessageNew takes BODY.PEEK, not RFC822
        C: n17 NOTIFY SET (SELECTED (MessageNew () MessageExpunge))
        S: n17 BAD Bad MessageNew fetch attributes
        """
    )
    assert "NOTIFY" in c.session.capabilities()


async def test_notify_not_before_login(store):
    c = Client(store)
    got = await c.send("n1 NOTIFY NONE")
    assert got == ["n1 BAD NOTIFY not allowed now"]


async def test_status_indicator_and_other_mailbox_status_pushed(store):
    c, account, inbox = await logged_in(store, 2)
    await c.send("c1 CREATE Lists")
    got = await c.send(f"n1 NOTIFY SET STATUS (INBOXES {NEW}) (SUBTREE Lists {NEW})")
    lists = await store.mailbox_get(account.id, "Lists")
    assert got == [
        f'* STATUS "INBOX" (MESSAGES 2 UIDNEXT 3 UIDVALIDITY {inbox.uidvalidity} UNSEEN 2)',
        f'* STATUS "Lists" (MESSAGES 0 UIDNEXT 1 UIDVALIDITY {lists.uidvalidity} UNSEEN 0)',
        "n1 OK NOTIFY completed",
    ]
    # A delivery while no command is in progress is told at once.
    await append(store, inbox.id, message(3))
    got = await wait_for(c, b"STATUS")
    want = f'* STATUS "INBOX" (MESSAGES 3 UIDNEXT 4 UIDVALIDITY {inbox.uidvalidity} UNSEEN 3)'
    assert got == [want]
    # Expunged elsewhere: MESSAGES goes down.
    await store.store_flags(inbox.id, [1], ["\\Deleted"], "add")
    await store.expunge(inbox.id)
    got = await wait_for(c, b"MESSAGES 2")
    assert got[-1].startswith('* STATUS "INBOX" (MESSAGES 2 UIDNEXT 4')
    # Without FlagChange, a flag that leaves the counts alone is not told.
    await store.store_flags(inbox.id, [2], ["\\Flagged"], "add")
    await asyncio.sleep(0.2)
    assert c.channel.take() == []
    # NOTIFY NONE: nothing more.
    assert (await c.send("n2 NOTIFY NONE")) == ["n2 OK NOTIFY completed"]
    await append(store, inbox.id, message(4))
    await asyncio.sleep(0.2)
    assert c.channel.take() == []


async def test_flagchange_sends_highestmodseq(store):
    c, _account, inbox = await logged_in(store, 1)
    got = await c.send("n1 NOTIFY SET (INBOXES (MessageNew MessageExpunge FlagChange))")
    assert got == ["n1 OK NOTIFY completed"]
    await store.store_flags(inbox.id, [1], ["\\Flagged"], "add")
    got = await wait_for(c, b"STATUS")
    modseq = (await store.mailbox_status(inbox.id)).highest_modseq
    assert got == [
        f'* STATUS "INBOX" (MESSAGES 1 UIDNEXT 2 UIDVALIDITY {inbox.uidvalidity} UNSEEN 1'
        f" HIGHESTMODSEQ {modseq})"
    ]


async def test_mailbox_name_and_subscription_changes(store):
    c, account, _inbox = await logged_in(store, 0)
    got = await c.send("n1 NOTIFY SET (PERSONAL (MailboxName SubscriptionChange))")
    assert got == ["n1 OK NOTIFY completed"]
    await store.mailbox_create(account.id, "Projects")
    assert await wait_for(c, b"Projects") == ['* LIST () "/" "Projects"']
    await store.subscribe(account.id, "Projects")
    assert await wait_for(c, b"Projects") == ['* LIST (\\Subscribed) "/" "Projects"']
    await store.mailbox_rename(account.id, "Projects", "Done")
    assert await wait_for(c, b"Done") == [
        '* LIST (\\Subscribed) "/" "Done" ("OLDNAME" ("Projects"))'
    ]
    await store.unsubscribe(account.id, "Done")
    assert await wait_for(c, b"Done") == ['* LIST () "/" "Done"']
    await store.mailbox_delete(account.id, "Done")
    assert await wait_for(c, b"Done") == ['* LIST (\\NonExistent) "/" "Done"']


async def test_own_changes_told_before_the_tagged_reply(store):
    c, _account, _inbox = await logged_in(store, 0)
    await c.send("n1 NOTIFY SET (SUBTREE Work (MailboxName))")
    got = await c.send("c1 CREATE Work/2026")
    # The parent CREATE made is in the subtree too.
    assert got[:2] == ['* LIST () "/" "Work"', '* LIST () "/" "Work/2026"']
    assert got[2].startswith("c1 OK ")
    # Outside the subtree: nothing.
    got = await c.send("c2 CREATE Play")
    await asyncio.sleep(0.2)
    assert len(got) == 1 and got[0].startswith("c2 OK ") and c.channel.take() == []


async def test_selected_new_message_with_fetch_att_and_expunge(store):
    c, _account, inbox = await logged_in(store, 2)
    await c.send("s1 SELECT INBOX")
    got = await c.send(
        "n1 NOTIFY SET (SELECTED (MessageNew (UID BODY[HEADER.FIELDS (SUBJECT)]) MessageExpunge))"
    )
    assert got == ["n1 OK NOTIFY completed"]
    await append(store, inbox.id, message(3, "pushed"))
    got = await wait_for(c, b"FETCH")
    assert got[:2] == ["* 3 EXISTS", "* 3 RECENT"]
    assert got[2].startswith("* 3 FETCH (UID 3 BODY[HEADER.FIELDS (SUBJECT)] {")
    assert "Subject: pushed" in got
    # BODY[] in MessageNew does not set \Seen.
    assert "\\Seen" not in (await store.messages(inbox.id))[-1].flags
    # SELECTED: an expunge elsewhere is told at once, no command needed.
    await store.store_flags(inbox.id, [1], ["\\Deleted"], "add")
    await store.expunge(inbox.id)
    got = await wait_for(c, b"EXPUNGE")
    assert "* 1 EXPUNGE" in got


async def test_selected_delayed_holds_expunges_for_a_command(store):
    c, _account, inbox = await logged_in(store, 2)
    await c.send("s1 SELECT INBOX")
    await c.send("n1 NOTIFY SET (SELECTED-DELAYED (MessageNew MessageExpunge))")
    await store.store_flags(inbox.id, [1], ["\\Deleted"], "add")
    await store.expunge(inbox.id)
    await append(store, inbox.id, message(3))
    got = await wait_for(c, b"EXISTS")
    assert "* 3 EXISTS" in got and not any("EXPUNGE" in g for g in got)
    got = await c.send("a1 FETCH 1 FLAGS")  # no EXPUNGE during FETCH (RFC 3501 §7.4.1)
    assert not any("EXPUNGE" in g for g in got)
    got = await c.send("a2 NOOP")
    assert got == ["* 1 EXPUNGE", "a2 OK NOOP completed"]


async def test_idle_with_notify_reports_other_mailboxes(store):
    c, account, inbox = await logged_in(store, 0)
    await c.send("c1 CREATE Lists")
    lists = await store.mailbox_get(account.id, "Lists")
    await c.send("s1 SELECT INBOX")
    await c.send(f"n1 NOTIFY SET (SELECTED {NEW}) (PERSONAL {NEW})")
    task = asyncio.create_task(c.send("i1 IDLE"))
    await wait_for(c, b"+ idling")
    await append(store, lists.id, message(1))
    got = await wait_for(c, b"STATUS")
    want = f'* STATUS "Lists" (MESSAGES 1 UIDNEXT 2 UIDVALIDITY {lists.uidvalidity} UNSEEN 1)'
    assert got == [want]
    await append(store, inbox.id, message(2))
    got = await wait_for(c, b"EXISTS")
    assert got[0] == "* 1 EXISTS" and not any("STATUS" in g for g in got)
    c.channel.lines.put_nowait(b"DONE\r\n")
    assert (await task)[-1] == "i1 OK IDLE terminated"


async def test_overflow_turns_notify_off(store):
    c, account, _inbox = await logged_in(store, 0)
    c.ctx.config = type(c.ctx.config)(notify_overflow=2)
    for name in ("p", "p/a", "p/b"):
        await store.mailbox_create(account.id, name)
    await c.send("n1 NOTIFY SET (PERSONAL (MailboxName))")
    await store.mailbox_rename(account.id, "p", "q")  # three renames in one change
    got = await wait_for(c, b"NOTIFICATIONOVERFLOW")
    assert got[-1].startswith("* OK [NOTIFICATIONOVERFLOW]")
    assert c.session.notifier is None
    await store.mailbox_create(account.id, "d")
    await asyncio.sleep(0.2)
    assert c.channel.take() == []


def test_notify_parse_result():
    cmd = parse_command(
        b"t NOTIFY SET STATUS (selected (MessageNew (UID BODY.PEEK[HEADER]) MessageExpunge))"
        b" (subtree (Lists &AOk-t&AOk-) (MailboxName)) (mailboxes inbox NONE)\r\n"
    )
    spec = cmd.args
    assert isinstance(spec, Notify) and spec.status and spec.unknown == ()
    selected, subtree, mailboxes = spec.groups
    assert selected.filter == "SELECTED"
    assert selected.events == ("MessageNew", "MessageExpunge")
    assert [i.name for i in selected.fetch] == ["UID", "BODY"]
    assert subtree == NotifyGroup("SUBTREE", ("Lists", "été"), ("MailboxName",))
    assert mailboxes == NotifyGroup("MAILBOXES", ("INBOX",))
    assert parse_command(b"t NOTIFY NONE\r\n").args == Notify(())
    unknown = parse_command(b"t NOTIFY SET (PERSONAL (MailboxName Later))\r\n").args
    assert isinstance(unknown, Notify) and unknown.unknown == ("Later",)


_WORDS = [
    "SET", "NONE", "STATUS", "(", ")", "SELECTED", "SELECTED-DELAYED", "PERSONAL", "INBOXES",
    "SUBSCRIBED", "SUBTREE", "MAILBOXES", "MessageNew", "MessageExpunge", "FlagChange",
    "MailboxName", "SubscriptionChange", "AnnotationChange", "INBOX", '"a b"', "(UID FLAGS)",
    "BODY[]", "x",
]  # fmt: skip


@given(st.lists(st.sampled_from(_WORDS), max_size=14))
def test_notify_grammar_never_fails_otherwise(words):
    """Any arrangement parses or is a ParseError (BAD), nothing else."""
    line = ("t NOTIFY " + " ".join(words) + "\r\n").encode()
    try:
        parse_command(line)
    except ParseError:
        pass


async def test_rev2_session_pushes_without_recent_and_updates_contexts(store):
    c, _account, inbox = await logged_in(store, 1)
    await c.send("e1 ENABLE IMAP4rev2")
    await c.send("s1 SELECT INBOX")
    got = await c.send("u1 SEARCH RETURN (UPDATE) ALL")
    assert got == ['* ESEARCH (TAG "u1") ALL 1', "u1 OK SEARCH completed"]
    await c.send(f"n1 NOTIFY SET (SELECTED {NEW})")
    await append(store, inbox.id, message(2))
    # RFC 5465 updates RFC 5267: the context's ADDTO comes with the push.
    got = await wait_for(c, b"ADDTO")
    assert got == ["* 2 EXISTS", '* ESEARCH (TAG "u1") ADDTO (0 2)']


async def test_shared_mailboxes_status_and_access_changes(store):
    """Other users' mailboxes the groups name (RFC 4314): their changes come
    from the owner's account; gaining or losing the l right is a LIST."""
    await store.domain_add("hamburger.edu")
    alice = await store.account_add("alice@hamburger.edu", "pw")
    await store.account_add(USER, PASSWORD)
    await store.mailbox_create(alice.id, "Projects")
    projects = await store.mailbox_get(alice.id, "Projects")
    await store.acl_set(projects.id, USER, "lr")
    c = Client(store)
    await c.login()
    shared = "Other Users/alice@hamburger.edu"
    got = await c.send(
        f'n1 NOTIFY SET STATUS (SUBTREE "{shared}" (MessageNew MessageExpunge MailboxName))'
    )
    assert got[0].startswith(f'* STATUS "{shared}/Projects" (MESSAGES 0 UIDNEXT 1 ')
    await append(store, projects.id, message(1))
    got = await wait_for(c, b"STATUS")
    assert got[0].startswith(f'* STATUS "{shared}/Projects" (MESSAGES 1 UIDNEXT 2 ')
    await store.mailbox_create(alice.id, "Plans")
    plans = await store.mailbox_get(alice.id, "Plans")
    await store.acl_set(plans.id, USER, "l")  # listed, not readable: no STATUS
    assert await wait_for(c, b"Plans") == [f'* LIST () "/" "{shared}/Plans"']
    await append(store, plans.id, message(2))
    await store.acl_set(projects.id, USER, "")
    assert await wait_for(c, b"NonExistent") == [f'* LIST (\\NonExistent) "/" "{shared}/Projects"']
    # Not named by the groups: the user's own mailboxes.
    await store.mailbox_create((await store.account_get(USER)).id, "Mine")
    await asyncio.sleep(0.2)
    assert c.channel.take() == []


async def test_selected_mailbox_follows_its_covering_group(store):
    """Without a SELECTED group the group naming the mailbox applies, as
    SELECTED-DELAYED; a group without message events pushes nothing of it."""
    c, _account, inbox = await logged_in(store, 1)
    await c.send("s1 SELECT INBOX")
    await c.send("n1 NOTIFY SET (PERSONAL (MailboxName))")
    await append(store, inbox.id, message(2))
    await asyncio.sleep(0.2)
    assert c.channel.take() == []
    assert (await c.send("a1 NOOP"))[:1] == ["* 2 EXISTS"]
    await c.send(f"n2 NOTIFY SET (INBOXES {NEW})")
    await append(store, inbox.id, message(3))
    assert (await wait_for(c, b"EXISTS"))[0] == "* 3 EXISTS"
    await store.store_flags(inbox.id, [1], ["\\Deleted"], "add")
    await store.expunge(inbox.id)
    await asyncio.sleep(0.2)
    assert not any("EXPUNGE" in line for line in c.channel.take())
    assert (await c.send("a2 NOOP"))[0] == "* 1 EXPUNGE"


async def test_unreachable_store_while_notifying(store, monkeypatch):
    """A store that cannot be read when changes are told: the command is
    still answered, NOTIFY SET is NO [UNAVAILABLE], and all works again after."""
    c, account, _inbox = await logged_in(store, 0)
    await c.send("n1 NOTIFY SET (PERSONAL (MailboxName))")
    real = store.mailbox_list

    async def gone(*args, **kwargs):
        raise StoreUnavailable("the PostgreSQL store is unavailable: connection refused")

    monkeypatch.setattr(store, "mailbox_list", gone)
    await store.mailbox_create(account.id, "Meanwhile")
    await asyncio.sleep(0.2)  # the push between commands fails: logged, nothing sent
    assert c.channel.take() == []
    assert await c.send("a1 NOOP") == ["a1 OK NOOP completed"]
    got = await c.send("n2 NOTIFY SET (PERSONAL (MailboxName))")
    assert got == ["n2 NO [UNAVAILABLE] The store is unavailable, try again"]
    monkeypatch.setattr(store, "mailbox_list", real)
    assert await c.send("n3 NOTIFY SET (PERSONAL (MailboxName))") == ["n3 OK NOTIFY completed"]
    await store.mailbox_create(account.id, "Later")
    assert await wait_for(c, b"Later") == ['* LIST () "/" "Later"']


async def test_extension_event_hook(store, monkeypatch):
    """The hook METADATA plugs in: a registered event is accepted by NOTIFY
    SET and asked at the start and at each update, with the watched
    mailboxes whose group names it."""
    asked: list[list[str]] = []

    async def annotation_changes(s, notifier, boxes):
        asked.append([box.name for box in boxes])
        told = notifier.extension_state.setdefault("AnnotationChange", set())
        new = [box.name for box in boxes if box.name not in told]
        told.update(new)
        return [f'* ANNOTATION "{name}"\r\n'.encode() for name in new]

    monkeypatch.setitem(notify.EXTENSION_EVENTS, "AnnotationChange", annotation_changes)
    c, account, _inbox = await logged_in(store, 0)
    got = await c.send(f"n1 NOTIFY SET (SUBTREE Lists (MailboxName AnnotationChange {NEW[1:]})")
    assert got == ["n1 OK NOTIFY completed"]
    assert asked == [[]]  # the start: nothing watched yet
    await store.mailbox_create(account.id, "Lists")
    await store.mailbox_create(account.id, "Other")
    got = await wait_for(c, b"ANNOTATION")
    assert got == ['* LIST () "/" "Lists"', '* ANNOTATION "Lists"']
    assert asked[-1] == ["Lists"]
    monkeypatch.delitem(notify.EXTENSION_EVENTS, "AnnotationChange")
    got = await c.send(f"n2 NOTIFY SET (PERSONAL (AnnotationChange {NEW[1:]})")
    assert got == [f"n2 {BADEVENT} Unsupported event"]

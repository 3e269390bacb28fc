"""Local delivery: one copy per mailbox with its trace lines, all or nothing
or to those with room, and the DSNs that implies (RFC 3461 §5.2)."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from mailstack.delivery.local import LocalDelivery, delivery_targets
from mailstack.errors import QuotaExceeded
from mailstack.smtp.proto import MessageComplete


def test_one_copy_per_mailbox_with_its_own_trace_lines():
    targets = delivery_targets(
        "alice@crepes.fr",
        [("bob@hamburger.edu", [1]), ("postmaster@hamburger.edu", [1, 2]), ("x@h.edu", [])],
        "Junk",
    )
    assert [(t.account_id, t.mailbox) for t in targets] == [(1, "Junk"), (2, "Junk")]
    assert targets[0].prefix == (
        b"Return-Path: <alice@crepes.fr>\r\nDelivered-To: bob@hamburger.edu\r\n"
    )
    assert targets[1].prefix.endswith(b"Delivered-To: postmaster@hamburger.edu\r\n")


def test_null_sender_keeps_an_empty_return_path():
    [target] = delivery_targets("", [("bob@hamburger.edu", [7])])
    assert target.prefix.startswith(b"Return-Path: <>\r\n") and target.mailbox == "INBOX"


MESSAGE = b"Subject: hello\r\n\r\n" + b"x" * 200 + b"\r\n"


class Queue:
    """The node's queue runner as far as local delivery uses it: DSNs asked for."""

    def __init__(self, *, broken: bool = False) -> None:
        self.failed: list[tuple] = []
        self.delivered: list[tuple] = []
        self.broken = broken

    async def report_failed(self, mail_from, data, recipients, **details):
        if self.broken:
            raise RuntimeError("no room in the queue")
        self.failed.append((mail_from, data, recipients, details))

    async def report_delivered(self, mail_from, data, recipients, *, envid=None):
        self.delivered.append((mail_from, data, recipients, envid))


def transaction(mail_from, *rcpts, notify=None, orcpt=None) -> MessageComplete:
    return MessageComplete(
        mail_from=mail_from,
        rcpt_to=list(rcpts),
        data=MESSAGE,
        mail_params={"ENVID": "k1", "RET": "HDRS"},
        rcpt_params=[{"NOTIFY": notify, "ORCPT": orcpt} for _ in rcpts],
        helo="crepes.fr",
        esmtp=True,
    )


@pytest.fixture
async def accounts(store):
    await store.domain_add("hamburger.edu")
    roomy = await store.account_add("bob@hamburger.edu", "x")
    tiny = await store.account_add("tiny@hamburger.edu", "x", quota=100)
    return roomy.id, tiny.id


async def inbox(store, account_id, mailbox="INBOX"):
    box = await store.mailbox_get(account_id, mailbox)
    return [await store.message_bytes(box.id, m.uid) for m in await store.messages(box.id)]


async def test_deliver_some_files_what_fits_and_reports_the_full_mailbox(store, accounts):
    bob, tiny = accounts
    queue = Queue()
    delivery = LocalDelivery(SimpleNamespace(store=store, queue=queue))
    event = transaction("alice@crepes.fr", "bob@hamburger.edu", "tiny@hamburger.edu", orcpt="x")
    await delivery.deliver_some(
        event, MESSAGE, [("bob@hamburger.edu", [bob]), ("tiny@hamburger.edu", [tiny])], "Junk",
        session_id="S1", full_reply="552 5.2.2 Mailbox full", sender_verified=True,
    )  # fmt: skip
    [copy] = await inbox(store, bob, "Junk")
    assert copy.startswith(b"Return-Path: <alice@crepes.fr>\r\nDelivered-To: bob@hamburger.edu\r\n")
    assert await inbox(store, tiny, "Junk") == []
    [(mail_from, data, told, details)] = queue.failed
    assert (mail_from, data, told) == ("alice@crepes.fr", MESSAGE, [("tiny@hamburger.edu", "x")])
    assert details == {
        "status": "5.2.2", "diagnostic": "552 5.2.2 Mailbox full",
        "reason": "the recipient's mailbox is full", "envid": "k1", "ret": "HDRS",
    }  # fmt: skip
    assert queue.delivered == []


async def test_deliver_some_reports_success_only_to_those_who_asked(store, accounts):
    bob, tiny = accounts
    queue = Queue()
    delivery = LocalDelivery(SimpleNamespace(store=store, queue=queue))
    event = transaction("alice@crepes.fr", "bob@hamburger.edu", "tiny@hamburger.edu",
                        notify="SUCCESS,FAILURE")  # fmt: skip
    await delivery.deliver_some(
        event, MESSAGE, [("bob@hamburger.edu", [bob]), ("tiny@hamburger.edu", [tiny])], "INBOX",
        session_id="S2", full_reply="552 5.2.2 Mailbox full", sender_verified=True,
    )  # fmt: skip
    assert [told for _f, _d, told, _x in queue.failed] == [[("tiny@hamburger.edu", None)]]
    assert queue.delivered == [("alice@crepes.fr", MESSAGE, [("bob@hamburger.edu", None)], "k1")]


@pytest.mark.parametrize("queue", [None, Queue()])
async def test_deliver_some_is_all_or_nothing_when_no_one_could_be_told(store, accounts, queue):
    """A null sender gets no DSN, and without a queue none can be sent: a
    recipient left out would never be known of."""
    bob, tiny = accounts
    delivery = LocalDelivery(SimpleNamespace(store=store, queue=queue))
    mail_from = "" if queue is not None else "alice@crepes.fr"
    with pytest.raises(QuotaExceeded):
        await delivery.deliver_some(
            transaction(mail_from, "bob@hamburger.edu", "tiny@hamburger.edu"), MESSAGE,
            [("bob@hamburger.edu", [bob]), ("tiny@hamburger.edu", [tiny])], "INBOX",
            session_id="S3", full_reply="552 5.2.2 Mailbox full", sender_verified=True,
        )  # fmt: skip
    assert await inbox(store, bob) == []
    assert queue is None or queue.failed == queue.delivered == []


async def test_a_dsn_that_cannot_be_queued_does_not_undo_the_delivery(store, accounts, caplog):
    bob, tiny = accounts
    delivery = LocalDelivery(SimpleNamespace(store=store, queue=Queue(broken=True)))
    with caplog.at_level(logging.ERROR):
        await delivery.deliver_some(
            transaction("alice@crepes.fr", "bob@hamburger.edu", "tiny@hamburger.edu"), MESSAGE,
            [("bob@hamburger.edu", [bob]), ("tiny@hamburger.edu", [tiny])], "INBOX",
            session_id="S4", full_reply="552 5.2.2 Mailbox full", sender_verified=True,
        )  # fmt: skip
    assert len(await inbox(store, bob)) == 1
    assert "message S4 delivered, but its DSN could not be queued" in caplog.text


async def test_deliver_is_all_or_nothing_and_deliver_now_says_so(store, accounts):
    bob, tiny = accounts
    delivery = LocalDelivery(SimpleNamespace(store=store, queue=Queue()))
    both = [("bob@hamburger.edu", [bob]), ("tiny@hamburger.edu", [tiny])]
    with pytest.raises(QuotaExceeded):
        await delivery.deliver(MESSAGE, "alice@crepes.fr", both)
    assert not await delivery.deliver_now(MESSAGE, "alice@crepes.fr", both)
    assert await inbox(store, bob) == []
    assert await delivery.deliver_now(MESSAGE, "alice@crepes.fr", both[:1])
    [copy] = await inbox(store, bob)
    assert copy == (
        b"Return-Path: <alice@crepes.fr>\r\nDelivered-To: bob@hamburger.edu\r\n" + MESSAGE
    )


async def test_an_unverified_sender_hears_of_no_success(store, accounts):
    """Issue 15 item 6: NOTIFY=SUCCESS from a sender nothing proved would
    send a "delivered" DSN to whoever the MAIL FROM names (backscatter)."""
    bob, tiny = accounts
    queue = Queue()
    delivery = LocalDelivery(SimpleNamespace(store=store, queue=queue))
    event = transaction("alice@crepes.fr", "bob@hamburger.edu", "tiny@hamburger.edu",
                        notify="SUCCESS,FAILURE")  # fmt: skip
    await delivery.deliver_some(
        event, MESSAGE, [("bob@hamburger.edu", [bob]), ("tiny@hamburger.edu", [tiny])], "INBOX",
        session_id="S5", full_reply="552 5.2.2 Mailbox full", sender_verified=False,
    )  # fmt: skip
    assert queue.delivered == []
    # A failure is still reported: the sender's own message did not arrive.
    assert [told for _f, _d, told, _x in queue.failed] == [[("tiny@hamburger.edu", None)]]

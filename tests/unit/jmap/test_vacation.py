"""JMAP VacationResponse (RFC 8621 §8) over the real store, and the
auto-replies local delivery then sends (RFC 3834): once per sender, never
to a list, only within the dates."""

from __future__ import annotations

import email
import email.policy

import pytest
from submit_support import Client

from mailstack.delivery.local import LocalDelivery


@pytest.fixture
async def bob(node_factory):
    node = await node_factory(listen=(), queue={"enabled": False})
    user = await node.add_user("bob@crepes.fr")
    await node.store.alias_add("robert@crepes.fr", "bob@crepes.fr")
    return Client(node, user)


async def test_the_singleton_starts_disabled(bob):
    got = await bob.call("VacationResponse/get", ids=None)
    assert got["list"] == [
        {
            "id": "singleton", "isEnabled": False, "fromDate": None, "toDate": None,
            "subject": None, "textBody": None, "htmlBody": None,
        }
    ]
    got = await bob.call(
        "VacationResponse/get", ids=["singleton", "other"], properties=["isEnabled"]
    )
    assert got["list"] == [{"id": "singleton", "isEnabled": False}]
    assert got["notFound"] == ["other"]


async def test_set_updates_only_the_singleton(bob):
    before = (await bob.call("VacationResponse/get", ids=None))["state"]
    result = await bob.call(
        "VacationResponse/set",
        create={"x": {"isEnabled": True}},
        update={
            "singleton": {"isEnabled": True, "textBody": "Away", "toDate": "2099-01-01T00:00:00Z"},
            "other": {"isEnabled": True},
        },
        destroy=["singleton"],
    )
    assert result["notCreated"]["x"]["type"] == "singleton"
    assert result["notDestroyed"]["singleton"]["type"] == "singleton"
    assert result["notUpdated"]["other"]["type"] == "notFound"
    assert result["updated"] == {"singleton": None}
    assert result["oldState"] == before and result["newState"] != before
    [got] = (await bob.call("VacationResponse/get", ids=None))["list"]
    assert got["isEnabled"] is True and got["textBody"] == "Away"
    assert got["toDate"] == "2099-01-01T00:00:00Z"


async def test_bad_values_are_invalid_properties(bob):
    result = await bob.call(
        "VacationResponse/set",
        update={"singleton": {"isEnabled": "yes", "fromDate": "tomorrow", "subject": 3}},
    )
    error = result["notUpdated"]["singleton"]
    assert error["type"] == "invalidProperties"
    assert set(error["properties"]) == {"isEnabled", "fromDate", "subject"}
    result = await bob.call("VacationResponse/set", update={"singleton": {"id": "x"}})
    assert result["notUpdated"]["singleton"]["properties"] == ["id"]


def message(sender: str, extra: str = "", to: str = "bob@crepes.fr") -> bytes:
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: lunch\r\nMessage-ID: <m1@poly.edu>\r\n"
        f"{extra}\r\nhello\r\n"
    ).encode()


async def replies(node) -> list:
    out = []
    for entry in await node.store.queue_list():
        data = await node.store.queue_data(entry.id)
        out.append((entry.mail_from, [r.address for r in entry.recipients], data))
    return out


async def enable(bob, **settings):
    result = await bob.call(
        "VacationResponse/set",
        update={"singleton": {"isEnabled": True, "textBody": "I am away.", **settings}},
    )
    assert result["updated"] == {"singleton": None}


async def test_a_reply_once_per_sender(bob):
    node = bob.node
    delivery = LocalDelivery(node)
    target = [("bob@crepes.fr", [bob.user.id])]
    await delivery.deliver(message("ann@poly.edu"), "ann@poly.edu", target)
    assert await replies(node) == []  # not enabled
    await enable(bob)
    await delivery.deliver(message("ann@poly.edu"), "ann@poly.edu", target)
    [(mail_from, rcpts, data)] = await replies(node)
    assert mail_from == "" and rcpts == ["ann@poly.edu"]
    reply = email.message_from_bytes(data, policy=email.policy.default)
    assert reply["Auto-Submitted"] == "auto-replied"
    assert reply["In-Reply-To"] == "<m1@poly.edu>"
    assert reply["Subject"] == "Auto: lunch"
    assert reply.get_content().strip() == "I am away."
    # Again from the same sender: no second reply; from another: one.
    await delivery.deliver(message("ann@poly.edu"), "ann@poly.edu", target)
    await delivery.deliver(
        message("dan@poly.edu", to="robert@crepes.fr"), "dan@poly.edu",
        [("robert@crepes.fr", [bob.user.id])],
    )
    assert sorted(r[1][0] for r in await replies(node)) == ["ann@poly.edu", "dan@poly.edu"]


async def test_a_changed_response_answers_again(bob):
    delivery = LocalDelivery(bob.node)
    await enable(bob)
    target = [("bob@crepes.fr", [bob.user.id])]
    await delivery.deliver(message("ann@poly.edu"), "ann@poly.edu", target)
    await enable(bob, textBody="Still away.")
    await delivery.deliver(message("ann@poly.edu"), "ann@poly.edu", target)
    assert len(await replies(bob.node)) == 2


async def test_no_reply_to_lists_bulk_null_senders_or_bcc(bob):
    delivery = LocalDelivery(bob.node)
    await enable(bob)
    target = [("bob@crepes.fr", [bob.user.id])]
    await delivery.deliver(message("ann@poly.edu", "List-Id: <cooks.poly.edu>\r\n"),
                           "cooks-bounces@poly.edu", target)
    await delivery.deliver(message("ann@poly.edu", "List-Id: <cooks.poly.edu>\r\n"),
                           "ann@poly.edu", target)
    await delivery.deliver(message("ann@poly.edu", "Precedence: bulk\r\n"), "ann@poly.edu", target)
    await delivery.deliver(message("ann@poly.edu", "Auto-Submitted: auto-replied\r\n"),
                           "ann@poly.edu", target)
    await delivery.deliver(message("MAILER-DAEMON@poly.edu"), "", target)
    # Bcc'd (not in To/Cc): not answered.
    await delivery.deliver(message("ann@poly.edu", to="team@poly.edu"), "ann@poly.edu", target)
    # Filed in Junk: not answered.
    await delivery.deliver(message("eve@poly.edu"), "eve@poly.edu", target, mailbox="Junk")
    assert await replies(bob.node) == []


async def test_only_within_the_dates(bob):
    delivery = LocalDelivery(bob.node)
    target = [("bob@crepes.fr", [bob.user.id])]
    await enable(bob, fromDate="2099-01-01T00:00:00Z")
    await delivery.deliver(message("ann@poly.edu"), "ann@poly.edu", target)
    await enable(bob, fromDate=None, toDate="2000-01-01T00:00:00Z")
    await delivery.deliver(message("ann@poly.edu"), "ann@poly.edu", target)
    assert await replies(bob.node) == []
    await enable(bob, fromDate="2000-01-01T00:00:00Z", toDate=None)
    await delivery.deliver(message("ann@poly.edu"), "ann@poly.edu", target)
    assert len(await replies(bob.node)) == 1

"""JMAP Identity (RFC 8621 §6) over the real store: the default identity,
the addresses an account may send as, patches, mayDelete, changes."""

from __future__ import annotations

import asyncio

import pytest
from submit_support import Client


@pytest.fixture
async def bob(node_factory):
    node = await node_factory(listen=(), queue={"enabled": False})
    user = await node.add_user("bob@crepes.fr")
    await node.add_user("carol@crepes.fr")
    await node.store.alias_add("robert@crepes.fr", "bob@crepes.fr")
    await node.store.domain_add("bob.example")
    await node.store.alias_add("@bob.example", "bob@crepes.fr")
    return Client(node, user)


async def test_every_account_has_its_own_identity(bob):
    got = await bob.call("Identity/get", ids=None)
    [identity] = got["list"]
    assert identity["email"] == "bob@crepes.fr"
    assert identity["mayDelete"] is False
    assert identity["name"] == "" and identity["textSignature"] == ""
    assert identity["replyTo"] is None and identity["bcc"] is None
    again = await bob.call("Identity/get", ids=None)
    assert again["list"] == [identity] and again["state"] == got["state"]


async def test_identities_for_aliases_and_catch_alls_but_not_others(bob):
    result = await bob.call(
        "Identity/set",
        create={
            "alias": {"email": "robert@crepes.fr", "name": "Robert"},
            "sub": {"email": "bob+news@crepes.fr"},
            "catchall": {"email": "*@bob.example"},
            "carol": {"email": "carol@crepes.fr"},
            "stranger": {"email": "x@poly.edu"},
            "nodomain": {"email": "*@crepes.fr"},
        },
    )
    assert set(result["created"]) == {"alias", "sub", "catchall"}
    assert result["created"]["alias"]["mayDelete"] is True
    assert result["created"]["sub"]["name"] == ""  # defaults are returned
    assert {k: v["type"] for k, v in result["notCreated"].items()} == {
        "carol": "forbiddenFrom", "stranger": "forbiddenFrom", "nodomain": "forbiddenFrom",
    }
    got = await bob.call("Identity/get", ids=[result["created"]["alias"]["id"]])
    assert got["list"][0]["name"] == "Robert"


async def test_bad_properties_are_invalid(bob):
    result = await bob.call(
        "Identity/set",
        create={
            "a": {"email": "robert@crepes.fr", "name": 5},
            "b": {"email": "robert@crepes.fr", "replyTo": [{"mail": "x"}]},
            "c": {"name": "no email"},
            "d": {"email": "robert@crepes.fr", "id": "R1"},
            "e": {"email": "robert@crepes.fr", "colour": "blue"},
        },
    )
    errors = result["notCreated"]
    assert errors["a"]["properties"] == ["name"]
    assert errors["b"]["properties"] == ["replyTo"]
    assert errors["c"]["properties"] == ["email"]
    assert errors["d"]["properties"] == ["id"]
    assert errors["e"]["properties"] == ["colour"]
    assert all(e["type"] == "invalidProperties" for e in errors.values())


async def test_update_by_patch_and_email_is_immutable(bob):
    [own] = (await bob.call("Identity/get", ids=None))["list"]
    result = await bob.call(
        "Identity/set",
        update={
            own["id"]: {"name": "Bob", "replyTo": [{"name": None, "email": "b@crepes.fr"}]},
        },
    )
    assert result["updated"] == {own["id"]: None}
    result = await bob.call(
        "Identity/set",
        update={own["id"]: {"replyTo/0/name": "B."}},
    )
    assert result["updated"] == {own["id"]: None}
    [now] = (await bob.call("Identity/get", ids=[own["id"]]))["list"]
    assert now["name"] == "Bob" and now["replyTo"] == [{"name": "B.", "email": "b@crepes.fr"}]
    result = await bob.call(
        "Identity/set",
        update={
            own["id"]: {"email": "robert@crepes.fr"},
            "R999999": {"name": "x"},
            "nonsense": {"name": "x"},
        },
    )
    assert result["notUpdated"][own["id"]] == {
        "type": "invalidProperties", "properties": ["email"]
    }
    assert result["notUpdated"]["R999999"]["type"] == "notFound"
    assert result["notUpdated"]["nonsense"]["type"] == "notFound"


async def test_may_delete_and_changes(bob):
    [own] = (await bob.call("Identity/get", ids=None))["list"]
    before = (await bob.call("Identity/get", ids=[]))["state"]
    made = await bob.call("Identity/set", create={"x": {"email": "robert@crepes.fr"}})
    new_id = made["created"]["x"]["id"]
    assert made["oldState"] == before and made["newState"] != before
    changes = await bob.call("Identity/changes", sinceState=before)
    assert changes["created"] == [new_id] and changes["destroyed"] == []
    gone = await bob.call("Identity/set", destroy=[own["id"], new_id])
    assert gone["destroyed"] == [new_id]
    assert gone["notDestroyed"][own["id"]]["type"] == "forbidden"
    changes = await bob.call("Identity/changes", sinceState=made["newState"])
    assert changes["destroyed"] == [new_id]
    [[name, error, _]] = await bob.request(("Identity/changes", {"sinceState": "x1"}))
    assert (name, error["type"]) == ("error", "cannotCalculateChanges")


async def test_if_in_state_and_other_accounts(bob):
    [[name, error, _]] = await bob.request(
        ("Identity/set", {"ifInState": "12345", "create": {"x": {"email": "robert@crepes.fr"}}})
    )
    assert (name, error["type"]) == ("error", "stateMismatch")
    [[name, error, _]] = await bob.request(("Identity/get", {"accountId": "A9999"}))
    assert (name, error["type"]) == ("error", "accountNotFound")
    [[name, error, _]] = await bob.request(("Identity/get", {"properties": ["nope"]}))
    assert (name, error["type"]) == ("error", "invalidArguments")


async def test_two_first_requests_at_once_leave_one_default_identity(bob):
    first, second = await asyncio.gather(
        bob.call("Identity/get", ids=None), bob.call("Identity/get", ids=None)
    )
    assert len(first["list"]) == 1 and len(second["list"]) == 1
    assert len((await bob.call("Identity/get", ids=None))["list"]) == 1

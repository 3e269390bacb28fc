"""Sharing across IMAP and JMAP, end to end: alice shares a mailbox with bob
over IMAP (SETACL, with imaplib); bob's JMAP session lists alice's account
and jmapc reads the shared mailbox's email in it; alice shares with carol
over JMAP (Mailbox/set shareWith, raw aiohttp) and carol sees it over IMAP.
RFC 4314, RFC 8620 §2, RFC 8621 §2, RFC 9670."""

from __future__ import annotations

import asyncio
import base64
import imaplib
import json
from typing import Any

import aiohttp
import jmapc
import pytest
from jmapc.methods import EmailGet, EmailQuery, MailboxGet

from support import TestNode, append

pytestmark = pytest.mark.timeout(60)

ALICE = "alice@example.org"
BOB = "bob@example.org"
CAROL = "carol@example.org"
PASSWORD = "hungry-hippo"
USING = [
    "urn:ietf:params:jmap:core",
    "urn:ietf:params:jmap:mail",
    "urn:ietf:params:jmap:principals",
]
PLAN = b"From: alice@example.org\r\nSubject: the plan\r\n\r\nstep one\r\n"
DIARY = b"From: alice@example.org\r\nSubject: dear diary\r\n\r\nsecret\r\n"


@pytest.fixture
async def node(node_factory: Any, monkeypatch: Any) -> TestNode:
    node: TestNode = await node_factory(listen=("https", "http", "imap"), hostname="localhost")
    # requests (jmapc) trusts the node's self-signed certificate through this.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(node.config.cert_path))
    for user in (ALICE, BOB, CAROL):
        await node.add_user(user, PASSWORD)
    alice = await node.store.account_get(ALICE)
    await node.store.mailbox_create(alice.id, "Team")
    team = await node.store.mailbox_get(alice.id, "Team")
    await append(node.store, team.id, PLAN)
    inbox = await node.store.mailbox_get(alice.id, "INBOX")
    await append(node.store, inbox.id, DIARY)
    return node


def basic(user: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{PASSWORD}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def session_of(client: aiohttp.ClientSession, node: TestNode, user: str) -> Any:
    url = f"http://127.0.0.1:{node.port('http')}/jmap/session"
    async with client.get(url, headers=basic(user)) as response:
        assert response.status == 200
        return await response.json()


async def api(
    client: aiohttp.ClientSession, node: TestNode, user: str, *calls: list[Any]
) -> list[Any]:
    body = json.dumps({"using": USING, "methodCalls": list(calls)})
    async with client.post(
        f"http://127.0.0.1:{node.port('http')}/jmap/api/",
        data=body,
        headers={**basic(user), "Content-Type": "application/json"},
    ) as response:
        assert response.status == 200, await response.text()
        return list((await response.json())["methodResponses"])


def imap_setacl(node: TestNode, mailbox: str, who: str, rights: str) -> None:
    with imaplib.IMAP4("127.0.0.1", node.port("imap"), timeout=10) as c:
        c.login(ALICE, PASSWORD)
        assert c.setacl(mailbox, who, rights)[0] == "OK"


def imap_folders(node: TestNode, user: str) -> list[bytes]:
    with imaplib.IMAP4("127.0.0.1", node.port("imap"), timeout=10) as c:
        c.login(user, PASSWORD)
        typ, data = c.list()
        assert typ == "OK"
        return [line for line in data if isinstance(line, bytes)]


class AccountClient(jmapc.Client):
    """jmapc sends every call to one account, the session's primary one;
    this one sends them to ``chosen_account``."""

    chosen_account = ""

    @property
    def account_id(self) -> str:
        return self.chosen_account


def jmapc_reads(node: TestNode, account_id: str) -> tuple[Any, Any, Any]:
    """Bob's view of a shared account with jmapc, a client we did not write."""
    client = AccountClient.create_with_password(f"127.0.0.1:{node.port('https')}", BOB, PASSWORD)
    assert client.jmap_session.username == BOB
    client.chosen_account = account_id
    mailboxes = client.request(MailboxGet(ids=None), raise_errors=True, single_response=True)
    query = client.request(EmailQuery(), raise_errors=True, single_response=True)
    emails = client.request(
        EmailGet(ids=query.ids, properties=["subject", "mailboxIds", "preview"]),
        raise_errors=True,
        single_response=True,
    )
    return mailboxes, query, emails


async def test_shared_over_imap_read_over_jmap(node: TestNode) -> None:
    alice = await node.store.account_get(ALICE)
    shared_id = f"A{alice.id}"
    await asyncio.to_thread(imap_setacl, node, "Team", BOB, "lrs")
    async with aiohttp.ClientSession() as client:
        bob_session = await session_of(client, node, BOB)
        assert set(bob_session["accounts"]) == {f"A{(await node.store.account_get(BOB)).id}",
                                                shared_id}  # fmt: skip
        shared = bob_session["accounts"][shared_id]
        assert shared["name"] == ALICE
        assert shared["isPersonal"] is False and shared["isReadOnly"] is False  # s: \Seen
        assert "urn:ietf:params:jmap:principals:owner" in shared["accountCapabilities"]
        carol_session = await session_of(client, node, CAROL)
        assert shared_id not in carol_session["accounts"]

    mailboxes, query, emails = await asyncio.to_thread(jmapc_reads, node, shared_id)
    (team,) = mailboxes.data
    assert team.name == "Team" and team.total_emails == 1
    assert len(query.ids) == 1
    (email,) = emails.data
    assert email.subject == "the plan" and email.preview.startswith("step one")
    assert email.mailbox_ids == {team.id: True}

    async with aiohttp.ClientSession() as client:
        # jmapc's Mailbox has no myRights: raw.
        got = await api(client, node, BOB, ["Mailbox/get", {"accountId": shared_id}, "m"])
        rights = got[0][1]["list"][0]["myRights"]
        assert rights["mayReadItems"] and rights["maySetSeen"]
        assert not rights["mayAddItems"] and not rights["mayDelete"]
        # Alice's INBOX email is not bob's to see; carol sees nothing of alice.
        everything = await api(client, node, ALICE, ["Email/query", {"accountId": shared_id}, "q"])
        assert len(everything[0][1]["ids"]) == 2
        hidden = [i for i in everything[0][1]["ids"] if i not in query.ids]
        got = await api(client, node, BOB,
                        ["Email/get", {"accountId": shared_id, "ids": hidden}, "g"])  # fmt: skip
        assert got[0][1]["notFound"] == hidden and got[0][1]["list"] == []
        refused = await api(client, node, CAROL,
                            ["Mailbox/get", {"accountId": shared_id}, "m"])  # fmt: skip
        assert refused[0] == ["error", {"type": "accountNotFound"}, "m"]

        # Alice shares over JMAP; carol finds it over IMAP.
        carol = await node.store.account_get(CAROL)
        got = await api(client, node, ALICE, ["Mailbox/set", {
            "accountId": shared_id,
            "update": {team.id: {f"shareWith/P{carol.id}": {"mayReadItems": True}}},
        }, "s"], ["Mailbox/get", {"accountId": shared_id, "ids": [team.id],
                                  "properties": ["shareWith"]}, "g"])  # fmt: skip
        assert got[0][1]["updated"] == {team.id: None}, got
        share_with = got[1][1]["list"][0]["shareWith"]
        bob = await node.store.account_get(BOB)
        assert set(share_with) == {f"P{bob.id}", f"P{carol.id}"}
        assert share_with[f"P{carol.id}"]["mayReadItems"] is True
        assert share_with[f"P{carol.id}"]["maySetSeen"] is False
    folders = await asyncio.to_thread(imap_folders, node, CAROL)
    assert any(b'"Other Users/alice@example.org/Team"' in line for line in folders), folders

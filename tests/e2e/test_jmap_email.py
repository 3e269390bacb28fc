"""Email/query, /changes, /queryChanges, /set, /import over HTTPS with jmapc
(a JMAP client we did not write), raw HTTP with aiohttp's client, and state
shared with IMAP in both directions (imaplib)."""

from __future__ import annotations

import asyncio
import base64
import imaplib
import json
import ssl
from typing import Any

import aiohttp
import jmapc
import pytest
from jmapc import (
    Comparator,
    Email,
    EmailAddress,
    EmailBodyPart,
    EmailBodyValue,
    EmailQueryFilterOperator,
    Operator,
    Ref,
)
from jmapc import EmailQueryFilterCondition as Condition
from jmapc.methods import (
    EmailChanges,
    EmailGet,
    EmailQuery,
    EmailQueryChanges,
    EmailSet,
    MailboxGet,
)

from support import TestNode, append

USER = "bob@example.org"
PASSWORD = "hungry"
MAIL = "urn:ietf:params:jmap:mail"
CORE = "urn:ietf:params:jmap:core"


def message(n: int, subject: str | None = None, sender: str = "alice@example.org") -> bytes:
    return (
        f"From: {sender}\r\nTo: {USER}\r\nSubject: {subject or f'message {n}'}\r\n"
        f"Date: Mon, 07 Dec 2026 10:{n:02d}:00 +0000\r\nMessage-ID: <m{n}@example.org>\r\n"
        f"\r\nbody of message {n}\r\n"
    ).encode()


@pytest.fixture
async def node(node_factory: Any) -> TestNode:
    node: TestNode = await node_factory(listen=("http", "https", "imap"))
    await node.add_user(USER, PASSWORD)
    assert node.store is not None
    account = await node.store.account_get(USER)
    inbox = await node.store.mailbox_get(account.id, "INBOX")
    for n in range(1, 6):
        await append(node.store, inbox.id, message(n, sender="zed@example.org" if n == 3 else
                                                  "alice@example.org"))
    return node


@pytest.fixture
def trust_node(node: TestNode, monkeypatch: pytest.MonkeyPatch) -> None:
    """requests (under jmapc) verifies the node's self-signed certificate."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(node.config.cert_path))


def client(node: TestNode) -> jmapc.Client:
    return jmapc.Client(host=f"127.0.0.1:{node.port('https')}", auth=(USER, PASSWORD))


async def run(fn: Any, *args: Any) -> Any:
    """jmapc and imaplib block: they run beside the node's event loop."""
    return await asyncio.to_thread(fn, *args)


def inbox_id(jmap: jmapc.Client) -> str:
    mailboxes = jmap.request(MailboxGet(ids=None), raise_errors=True)
    (inbox,) = [m for m in mailboxes.data if m.role == "inbox"]
    return str(inbox.id)


async def test_query_and_get_with_jmapc(node: TestNode, trust_node: None) -> None:
    jmap = client(node)

    def work() -> tuple[Any, Any, Any]:
        inbox = inbox_id(jmap)
        query, get = jmap.request(
            [
                EmailQuery(
                    filter=Condition(in_mailbox=inbox),
                    sort=[Comparator(property="receivedAt", is_ascending=False)],
                    limit=3,
                    calculate_total=True,
                ),
                EmailGet(ids=Ref("/ids"), properties=["subject", "from", "preview"]),
            ],
            raise_errors=True,
        )
        either = jmap.request(
            EmailQuery(
                filter=EmailQueryFilterOperator(
                    operator=Operator.OR,
                    conditions=[Condition(mail_from="zed"), Condition(text="message 5")],
                ),
                sort=[Comparator(property="subject")],
            ),
            raise_errors=True,
        )
        return query, get, either

    query, get, either = await run(work)
    assert query.response.total == 5 and len(query.response.ids) == 3
    assert [e.subject for e in get.response.data] == ["message 5", "message 4", "message 3"]
    assert get.response.data[2].mail_from[0].email == "zed@example.org"
    assert get.response.data[0].preview.startswith("body of message 5")
    subjects = await run(
        lambda: jmap.request(EmailGet(ids=either.ids, properties=["subject"]), raise_errors=True)
    )
    assert [e.subject for e in subjects.data] == ["message 3", "message 5"]


async def test_set_changes_and_query_changes_with_jmapc(
    node: TestNode, trust_node: None
) -> None:
    jmap = client(node)

    def work() -> dict[str, Any]:
        inbox = inbox_id(jmap)
        query = jmap.request(
            EmailQuery(filter=Condition(in_mailbox=inbox, not_keyword="$seen")), raise_errors=True
        )
        first = query.ids[0]
        state = jmap.request(EmailGet(ids=[first]), raise_errors=True).state
        draft = Email(
            mailbox_ids={inbox: True},
            keywords={"$draft": True},
            mail_from=[EmailAddress(name="Bob", email=USER)],
            to=[EmailAddress(name="Alice", email="alice@example.org")],
            subject="A draft from jmapc",
            body_values={"body": EmailBodyValue(value="Hello from a draft.")},
            text_body=[EmailBodyPart(part_id="body", type="text/plain")],
        )
        created = jmap.request(EmailSet(create={"draft": draft}), raise_errors=True)
        seen = jmap.request(
            EmailSet(update={first: {"keywords/$seen": True}}), raise_errors=True
        )
        changes = jmap.request(EmailChanges(since_state=state), raise_errors=True)
        query_changes = jmap.request(
            EmailQueryChanges(
                filter=Condition(in_mailbox=inbox, not_keyword="$seen"),
                since_query_state=query.query_state,
            ),
            raise_errors=True,
        )
        fetched = jmap.request(
            EmailGet(ids=[created.created["draft"].id], properties=["subject", "keywords"],
                     fetch_text_body_values=True),
            raise_errors=True,
        )
        return {
            "first": first, "created": created, "seen": seen, "changes": changes,
            "query_changes": query_changes, "fetched": fetched,
        }

    out = await run(work)
    draft_id = out["created"].created["draft"].id
    assert out["seen"].updated == {out["first"]: None}
    assert out["changes"].created == [draft_id] and out["changes"].updated == [out["first"]]
    assert out["first"] in out["query_changes"].removed
    assert [a.id for a in out["query_changes"].added] == [draft_id]
    (fetched,) = out["fetched"].data
    assert fetched.subject == "A draft from jmapc" and fetched.keywords == {"$draft": True}


def basic() -> dict[str, str]:
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    return {"Authorization": f"Basic {token}", "Content-Type": "application/json"}


async def api(node: TestNode, *calls: list[Any]) -> list[list[Any]]:
    context = ssl.create_default_context(cafile=str(node.config.cert_path))
    body = {"using": [CORE, MAIL], "methodCalls": list(calls)}
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"https://127.0.0.1:{node.port('https')}/jmap/api/",
            data=json.dumps(body), headers=basic(), ssl=context,
        ) as response:
            assert response.status == 200
            return list((await response.json())["methodResponses"])


async def account_and_inbox(node: TestNode) -> tuple[str, str]:
    account = (await session_of(node))["primaryAccounts"][MAIL]
    (get,) = await api(node, ["Mailbox/get", {"accountId": account, "ids": None}, "m"])
    (inbox,) = [m["id"] for m in get[1]["list"] if m["role"] == "inbox"]
    return account, inbox


async def session_of(node: TestNode) -> dict[str, Any]:
    context = ssl.create_default_context(cafile=str(node.config.cert_path))
    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"https://127.0.0.1:{node.port('https')}/jmap/session", headers=basic(), ssl=context
        ) as response:
            return dict(await response.json())


async def test_import_an_upload_and_errors_over_raw_http(node: TestNode) -> None:
    account, inbox = await account_and_inbox(node)
    session = await session_of(node)
    context = ssl.create_default_context(cafile=str(node.config.cert_path))
    upload_url = session["uploadUrl"].replace("{accountId}", account)
    async with aiohttp.ClientSession() as http:
        async with http.post(
            upload_url, data=message(40, "imported"),
            headers={**basic(), "Content-Type": "message/rfc822"}, ssl=context,
        ) as response:
            blob_id = (await response.json())["blobId"]
    (imported,) = await api(node, ["Email/import", {"accountId": account, "emails": {
        "i": {"blobId": blob_id, "mailboxIds": {inbox: True}, "keywords": {"$seen": True}},
    }}, "0"])
    assert imported[0] == "Email/import"
    email_id = imported[1]["created"]["i"]["id"]
    query, bad_sort, bad_filter, bad_state = await api(
        node,
        ["Email/query", {"accountId": account, "filter": {"subject": "imported"}}, "1"],
        ["Email/query", {"accountId": account, "sort": [{"property": "color"}]}, "2"],
        ["Email/query", {"accountId": account, "filter": {"color": "red"}}, "3"],
        ["Email/changes", {"accountId": account, "sinceState": "nope"}, "4"],
    )
    assert query[1]["ids"] == [email_id]
    assert bad_sort == ["error", {"type": "unsupportedSort", "description": "cannot sort by color"},
                        "2"]
    assert bad_filter[0] == "error" and bad_filter[1]["type"] == "unsupportedFilter"
    assert bad_state[1] == {"type": "cannotCalculateChanges"}


async def test_state_is_shared_with_imap_both_ways(node: TestNode) -> None:
    account, inbox = await account_and_inbox(node)
    (query,) = await api(node, ["Email/query", {"accountId": account, "filter": {
        "inMailbox": inbox}, "sort": [{"property": "receivedAt"}]}, "q"])
    first = query[1]["ids"][0]
    (get,) = await api(node, ["Email/get", {"accountId": account, "ids": [first],
                                            "properties": ["keywords"]}, "g"])
    state = get[1]["state"]

    def imap_flag_and_expunge() -> None:
        imap = imaplib.IMAP4("127.0.0.1", node.port("imap"), timeout=10)
        imap.login(USER, PASSWORD)
        imap.select("INBOX")
        imap.uid("STORE", "1", "+FLAGS", "(\\Flagged)")
        imap.uid("STORE", "2", "+FLAGS", "(\\Deleted)")
        imap.expunge()
        imap.logout()

    await run(imap_flag_and_expunge)
    (changes,) = await api(node, ["Email/changes", {"accountId": account, "sinceState": state},
                                  "c"])
    assert changes[1]["updated"] == [first]
    assert len(changes[1]["destroyed"]) == 1
    (flagged,) = await api(node, ["Email/query", {"accountId": account, "filter": {
        "hasKeyword": "$flagged"}}, "f"])
    assert flagged[1]["ids"] == [first]

    (update,) = await api(node, ["Email/set", {"accountId": account, "update": {
        first: {"keywords/$seen": True, "keywords/$flagged": None, "keywords/later": True}}}, "u"])
    assert update[1]["updated"] == {first: None}

    def imap_flags() -> bytes:
        imap = imaplib.IMAP4("127.0.0.1", node.port("imap"), timeout=10)
        imap.login(USER, PASSWORD)
        imap.select("INBOX")
        typ, data = imap.uid("FETCH", "1", "(FLAGS)")
        imap.logout()
        assert typ == "OK"
        return bytes(data[0])

    flags = await run(imap_flags)
    assert b"\\Seen" in flags and b"later" in flags and b"\\Flagged" not in flags

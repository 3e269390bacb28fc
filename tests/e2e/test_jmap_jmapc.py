"""JMAP core with jmapc, a client we did not write: discovery over https
(/.well-known/jmap), Core/echo, result references, blob upload, push by
EventSource, bearer tokens."""

from __future__ import annotations

import asyncio
import threading

import jmapc
import pytest
from jmapc.methods import CoreEcho

from mailstack.common.auth import new_token, token_digest

USER = "bob@example.org"
PASSWORD = "hungry-hippo"


@pytest.fixture
async def node(node_factory, monkeypatch):
    node = await node_factory(listen=("https",), hostname="localhost")
    node.account = await node.add_user(USER, PASSWORD)
    # requests trusts the node's self-signed certificate (made for
    # localhost and 127.0.0.1) through this variable.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(node.config.cert_path))
    return node


def host(node) -> str:
    return f"127.0.0.1:{node.port('https')}"


async def test_discovery_echo_and_references(node):
    def run():
        client = jmapc.Client.create_with_password(host(node), USER, PASSWORD)
        session = client.jmap_session
        echoed = client.request(CoreEcho(data={"hello": ["world"]}))
        chained = client.request(
            [
                CoreEcho(data={"ids": ["a", "b"]}),
                # jmapc names its first call "0.Core/echo".
                CoreEcho(
                    data={"#x": {"resultOf": "0.Core/echo", "name": "Core/echo", "path": "/ids"}}
                ),
            ],
            raise_errors=True,
        )
        return client.account_id, session, echoed, chained

    account_id, session, echoed, chained = await asyncio.to_thread(run)
    assert account_id == f"A{node.account.id}"
    assert session.username == USER
    assert session.api_url.startswith(f"https://{host(node)}/")
    assert echoed.data == {"hello": ["world"]}
    assert chained[1].response.data == {"x": ["a", "b"]}


async def test_upload_with_jmapc(node, tmp_path):
    path = tmp_path / "note.txt"
    path.write_bytes(b"a note\n")

    def run():
        client = jmapc.Client.create_with_password(host(node), USER, PASSWORD)
        return client.upload_blob(path)

    blob = await asyncio.to_thread(run)
    assert blob.size == 7 and blob.type == "text/plain" and blob.id.startswith("U")


async def test_events_and_bearer_token(node):
    secret = new_token()
    await node.store.token_add(node.account.id, "jmapc", token_digest(secret))
    got: list = []
    listening = threading.Event()

    def listen():
        client = jmapc.Client.create_with_api_token(
            host(node), secret, event_source_config=jmapc.EventSourceConfig(closeafter="state")
        )
        client.jmap_session  # noqa: B018 (discovery before listening)
        listening.set()
        for event in client.events:
            got.append(event)
            break

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    await asyncio.to_thread(listening.wait, 10)
    for attempt in range(50):
        await node.store.mailbox_create(node.account.id, f"Box{attempt}")
        await asyncio.sleep(0.2)
        if got:
            break
    await asyncio.to_thread(thread.join, 10)
    assert got, "no state event"
    changed = got[0].data.changed[f"A{node.account.id}"]
    assert 0 < int(changed.mailbox) <= await node.store.account_state(node.account.id)

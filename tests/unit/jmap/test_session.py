"""The Session object (RFC 8620 §2) and its state."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from mailstack.config import Config
from mailstack.jmap import session

USER: Any = SimpleNamespace(id=4, address="bob@example.org")


class NothingShared:
    """A store in which no one shares a mailbox with the user."""

    async def acl_shared_with(self, address: str) -> list[Any]:
        return []


def node(**jmap: Any) -> Any:
    config = Config.from_table({"jmap": jmap}, Path("/nonexistent"))
    return SimpleNamespace(config=config, limits=config.limits, store=NothingShared())


async def test_urls_follow_the_base_and_the_state_does_not():
    here = await session.session(node(), USER, "https://mail.example.org")
    there = await session.session(node(), USER, "http://127.0.0.1:8025")
    assert here["apiUrl"] == "https://mail.example.org/jmap/api/"
    assert there["uploadUrl"] == "http://127.0.0.1:8025/jmap/upload/{accountId}/"
    assert (
        here["capabilities"]["urn:ietf:params:jmap:websocket"]["url"]
        == "wss://mail.example.org/jmap/ws/"
    )
    assert here["state"] == there["state"] == await session.session_state(node(), USER)


async def test_the_state_changes_with_the_limits():
    first = await session.session(node(), USER, "https://x")
    second = await session.session(node(max_calls_in_request=2), USER, "https://x")
    assert second["capabilities"]["urn:ietf:params:jmap:core"]["maxCallsInRequest"] == 2
    assert first["state"] != second["state"]


async def test_the_own_account_is_primary_for_every_account_capability():
    body = await session.session(node(), USER, "https://x")
    assert list(body["accounts"]) == ["A4"]
    account = body["accounts"]["A4"]
    # RFC 9670 §2: principals:owner is an account capability only.
    owner = "urn:ietf:params:jmap:principals:owner"
    assert set(body["primaryAccounts"]) == set(account["accountCapabilities"]) - {owner}
    assert set(body["primaryAccounts"].values()) == {"A4"}
    assert set(body["capabilities"]) == session.capabilities() - {owner}

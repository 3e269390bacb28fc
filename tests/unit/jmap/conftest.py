"""JMAP method calls against the real store, without HTTP: the `jmap`
fixture runs requests through the dispatcher (`api.process`) for an account
on a temporary SQLite store, and files messages the way delivery does."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from mailstack.config import Config
from mailstack.jmap import api, ids
from mailstack.jmap.shared import JmapShared

from support import append

CORE = "urn:ietf:params:jmap:core"
MAIL = "urn:ietf:params:jmap:mail"


@dataclass
class Jmap:
    store: Any
    node: Any
    user: Any

    @property
    def account_id(self) -> str:
        return ids.encode(ids.ACCOUNT, self.user.id)

    async def request(self, *calls: tuple[str, dict[str, Any]]) -> list[list[Any]]:
        """The method responses of one request (``accountId`` filled in)."""
        body = {
            "using": [CORE, MAIL],
            "methodCalls": [
                [name, {"accountId": self.account_id, **args}, f"c{n}"]
                for n, (name, args) in enumerate(calls)
            ],
        }
        request = api.parse_request(body, known=api.capabilities(api.method_table()), max_calls=16)
        response = await api.process(self.node, self.user, request, session_state="0")
        return list(response["methodResponses"])

    async def call(self, name: str, **args: Any) -> dict[str, Any]:
        """One call's response arguments; an error response fails the test."""
        (response,) = await self.request((name, args))
        assert response[0] == name, response
        return dict(response[1])

    async def error(self, name: str, **args: Any) -> dict[str, Any]:
        """One call's method-level error."""
        (response,) = await self.request((name, args))
        assert response[0] == "error", response
        return dict(response[1])

    async def mailbox(self, name: str = "INBOX") -> Any:
        mailbox = await self.store.mailbox_get(self.user.id, name)
        assert mailbox is not None
        return mailbox

    async def mailbox_id(self, name: str = "INBOX") -> str:
        return ids.encode(ids.MAILBOX, (await self.mailbox(name)).id)

    async def add(
        self,
        raw: bytes,
        mailbox: str = "INBOX",
        flags: tuple[str, ...] = (),
        when: datetime | None = None,
    ) -> str:
        """File a message as IMAP APPEND does; its JMAP email id."""
        box = await self.mailbox(mailbox)
        uid = await append(self.store, box.id, raw, flags, when)
        (meta,) = [m for m in await self.store.messages(box.id) if m.uid == uid]
        return ids.encode(ids.EMAIL, meta.email_id)


def message(
    subject: str = "Hello",
    sender: str = "Alice <alice@example.org>",
    to: str = "Bob <bob@example.org>",
    body: str = "Hi Bob.",
    date: str = "Mon, 07 Dec 2026 10:00:00 +0000",
    extra: str = "",
    msgid: str | None = None,
) -> bytes:
    msgid = msgid or uuid.uuid4().hex
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {date}\r\n{extra}"
        f"Message-ID: <{msgid}@example.org>\r\n\r\n{body}\r\n"
    ).encode()


@pytest.fixture
async def jmap(store: Any, tmp_path: Path) -> Jmap:
    await store.domain_add("example.org")
    account = await store.account_add("bob@example.org", "hungry")
    config = Config.from_table({}, tmp_path)
    node = SimpleNamespace(
        store=store,
        config=config,
        limits=config.limits,
        hostname="mx.test",
        jmap_shared=JmapShared(),
    )
    return Jmap(store, node, account)

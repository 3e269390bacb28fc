"""Running JMAP requests against a real store without HTTP: the
dispatcher (``api.process``) with every method, for the mail method tests."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from mailstack.config import Config
from mailstack.jmap import api, ids
from mailstack.limits import Limits

from support import append

CORE = "urn:ietf:params:jmap:core"
MAIL = "urn:ietf:params:jmap:mail"


class Jmap:
    """One account's JMAP view of a store."""

    def __init__(self, store: Any, account: Any, **jmap: Any) -> None:
        self.store = store
        self.account = account
        self.account_id = ids.encode(ids.ACCOUNT, account.id)
        self.node: Any = SimpleNamespace(
            store=store, limits=Limits(),
            config=Config.from_table({"jmap": jmap} if jmap else {}, Path("/nonexistent")))
        self.methods = api.method_table()

    async def request(self, *calls: tuple[str, dict[str, Any]]) -> list[list[Any]]:
        body = {
            "using": [CORE, MAIL],
            "methodCalls": [
                [name, {"accountId": self.account_id, **args}, f"c{n}"]
                for n, (name, args) in enumerate(calls)
            ],
        }
        request = api.parse_request(body, known=api.capabilities(self.methods), max_calls=16)
        response = await api.process(self.node, self.account, request, session_state="s",
                                     methods=self.methods)
        return list(response["methodResponses"])

    async def call(self, name: str, **args: Any) -> dict[str, Any]:
        """The one response's arguments; an error response fails the test."""
        (response,) = await self.request((name, args))
        assert response[0] == name, response
        return dict(response[1])

    async def error(self, name: str, **args: Any) -> dict[str, Any]:
        """The method-level error the call gets."""
        (response,) = await self.request((name, args))
        assert response[0] == "error", response
        return dict(response[1])

    async def mailbox_ids(self) -> dict[str, str]:
        """IMAP name -> JMAP id."""
        return {m.name: ids.encode(ids.MAILBOX, m.id)
                for m in await self.store.mailbox_list(self.account.id)}

    async def append(self, raw: bytes, mailbox: str = "INBOX", flags: Any = ()) -> str:
        """Append raw to a mailbox; the new email's JMAP id."""
        box = await self.store.mailbox_get(self.account.id, mailbox)
        uid = await append(self.store, box.id, raw, flags)
        meta = next(m for m in await self.store.messages(box.id) if m.uid == uid)
        return ids.encode(ids.EMAIL, meta.email_id)


async def jmap_for(store: Any, address: str = "bob@example.org", **jmap: Any) -> Jmap:
    domain = address.rpartition("@")[2]
    if not await store.is_local_domain(domain):
        await store.domain_add(domain)
    account = await store.account_add(address, "hungry")
    return Jmap(store, account, **jmap)


def message(*lines: str, body: str = "body\r\n") -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()

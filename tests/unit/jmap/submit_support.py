"""Calling JMAP methods on a real node (its store, no listeners) through the
dispatcher, for the Identity, EmailSubmission and VacationResponse tests."""

from __future__ import annotations

from typing import Any

from mailstack.jmap import api

CAPABILITIES = [
    "urn:ietf:params:jmap:core",
    "urn:ietf:params:jmap:mail",
    "urn:ietf:params:jmap:submission",
    "urn:ietf:params:jmap:vacationresponse",
]


class Client:
    """One user's JMAP calls on a node."""

    def __init__(self, node: Any, user: Any, extra: dict[str, Any] | None = None) -> None:
        self.node = node
        self.user = user
        self.account = f"A{user.id}"
        self.extra = extra or {}  # method name -> Method, beside the served ones

    async def request(self, *calls: tuple[str, dict[str, Any]]) -> list[list[Any]]:
        methods = api.method_table() | self.extra
        request = api.parse_request(
            {
                "using": CAPABILITIES,
                "methodCalls": [
                    [name, {"accountId": self.account, **args}, str(n)]
                    for n, (name, args) in enumerate(calls)
                ],
            },
            known=api.capabilities(methods) | set(CAPABILITIES),
            max_calls=64,
        )
        response = await api.process(
            self.node, self.user, request, session_state="0", methods=methods
        )
        return response["methodResponses"]

    async def call(self, name: str, **args: Any) -> dict[str, Any]:
        [[answered, result, _call_id]] = await self.request((name, args))
        assert answered == name, result
        return result

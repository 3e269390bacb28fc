"""JMAP push (RFC 8620 §7): StateChange objects over EventSource (§7.3)
and over JMAP's WebSocket (RFC 8887), which also carries requests.

Both are fed by ``states.StateWatch``.

PushSubscription (§7.2), POSTing StateChanges to a URL the client gives,
is in ``jmap.pushsub``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import WSCloseCode, WSMsgType, hdrs, web

from mailstack.common.logins import answered, kicked
from mailstack.common.webkeys import ACCOUNT
from mailstack.jmap import api, session, sharing
from mailstack.jmap.blobs import problem_response
from mailstack.jmap.problem import RequestError, too_many_requests
from mailstack.jmap.states import StateWatch

if TYPE_CHECKING:
    from mailstack.app import Node
    from mailstack.store import Account

log = logging.getLogger("mailstack.jmap")

Args = dict[str, Any]


async def _account_ids(node: Node, user: Account) -> list[int]:
    return [account.account_id for account in await session.accounts(node, user)]


# --- EventSource (RFC 8620 §7.3) ----------------------------------------


def _event_source_query(
    query: Mapping[str, str], ping_min: int
) -> tuple[frozenset[str] | None, bool, int]:
    """types (None: every type), close after the first state, the ping
    interval (0: none); ValueError for a value the RFC does not allow."""
    types_text = query.get("types", "*")
    types = (
        None
        if types_text == "*"
        else frozenset(name for name in types_text.split(",") if name)
    )
    close_after = query.get("closeafter", "no")
    if close_after not in ("state", "no"):
        raise ValueError("closeafter")
    ping_text = query.get("ping", "0")
    if not ping_text.isascii() or not ping_text.isdigit() or len(ping_text) > 6:
        raise ValueError("ping")
    ping = int(ping_text)
    # §7.3: the server MAY raise a ping interval it finds too short.
    return types, close_after == "state", max(ping, ping_min) if ping else 0


async def event_source(request: web.Request, node: Node) -> web.StreamResponse:
    user: Account = request[ACCOUNT]
    try:
        types, close_after, ping = _event_source_query(
            request.query, node.config.jmap.event_source_ping_min
        )
    except ValueError as exc:
        detail = f"Bad {exc.args[0]} parameter."
        return problem_response(RequestError("about:blank", detail, status=400))
    watch = StateWatch(node, await _account_ids(node, user), types)
    await watch.start()
    response = web.StreamResponse(
        headers={
            hdrs.CONTENT_TYPE: "text/event-stream",
            hdrs.CACHE_CONTROL: "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    release: Callable[[], None] | None = None
    try:
        await response.prepare(request)
        # Ended (the handler cancelled) when the account is disabled or
        # removed: only ever a stream already under way.
        release = node.authenticator.logins.hold(user.address)
        number = 0
        while True:
            change = await watch.next(ping or None)
            if change is None:
                # §7.3: a ping event, with the interval used; no new event id.
                await response.write(_event("ping", {"interval": ping}))
                continue
            number += 1
            await response.write(_event("state", change, str(number)))
            if close_after:
                break
        await response.write_eof()
        return response
    except asyncio.CancelledError as exc:
        if not kicked(exc):
            raise
        answered()
        # The account was disabled or removed: the stream ends cleanly.
        await response.write_eof()
        return response
    finally:
        if release is not None:
            release()
        watch.close()


def _event(name: str, data: Args, event_id: str | None = None) -> bytes:
    head = f"event: {name}\n" + (f"id: {event_id}\n" if event_id else "")
    return f"{head}data: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


# --- WebSocket (RFC 8887) -----------------------------------------------

SUBPROTOCOL = "jmap"


async def websocket(request: web.Request, node: Node) -> web.StreamResponse:
    """RFC 8887: the ``jmap`` subprotocol; text frames carrying Request,
    WebSocketPushEnable and WebSocketPushDisable from the client, Response,
    RequestError and StateChange from us."""
    user: Account = request[ACCOUNT]
    offered = [
        p.strip() for p in request.headers.get(hdrs.SEC_WEBSOCKET_PROTOCOL, "").split(",")
    ]
    if SUBPROTOCOL not in offered:
        # RFC 8887 §4.2: the client MUST offer the "jmap" subprotocol.
        detail = 'The WebSocket handshake must offer the "jmap" subprotocol.'
        return problem_response(RequestError("about:blank", detail, status=400))
    limits = node.config.jmap
    ws = web.WebSocketResponse(
        protocols=(SUBPROTOCOL,), max_msg_size=limits.max_size_request, heartbeat=60.0
    )
    await ws.prepare(request)
    connection = _WebSocketConnection(node, user, ws)
    # Ended (the handler cancelled) when the account is disabled or removed.
    release = node.authenticator.logins.hold(user.address)
    try:
        await connection.run()
    except asyncio.CancelledError as exc:
        if not kicked(exc):
            raise
        answered()
        # RFC 6455 §7.4.1: 1008, the account's policy no longer allows it.
        await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"account disabled or removed")
    finally:
        release()
        connection.stop_push()
    return ws


class _WebSocketConnection:
    def __init__(self, node: Node, user: Account, ws: web.WebSocketResponse) -> None:
        self.node = node
        self.user = user
        self.ws = ws
        self.push: asyncio.Task[None] | None = None
        self.send_lock = asyncio.Lock()

    async def send(self, value: Args) -> None:
        async with self.send_lock:
            await self.ws.send_str(api.encode(value).decode())

    async def run(self) -> None:
        async for message in self.ws:
            if message.type is WSMsgType.TEXT:
                await self.handle(message.data)
            elif message.type is WSMsgType.BINARY:
                await self.send(_request_error(RequestError("notJSON", "Send text frames."), None))
            elif message.type is WSMsgType.ERROR:
                break

    async def handle(self, text: str) -> None:
        request_id = None
        try:
            value = api.decode(text.encode("utf-8", "surrogatepass"))
            if isinstance(value, dict) and isinstance(value.get("id"), str):
                request_id = value["id"]
            kind = value.get("@type") if isinstance(value, dict) else None
            if kind == "Request":
                await self.request(value, request_id)
            elif kind == "WebSocketPushEnable":
                types = value.get("dataTypes")
                if types is not None and not (
                    isinstance(types, list) and all(isinstance(t, str) for t in types)
                ):
                    raise RequestError("notRequest", "dataTypes must be null or strings.")
                await self.start_push(None if types is None else frozenset(types))
            elif kind == "WebSocketPushDisable":
                self.stop_push()
            else:
                raise RequestError(
                    "notRequest",
                    "@type must be Request, WebSocketPushEnable or WebSocketPushDisable.",
                )
        except RequestError as error:
            await self.send(_request_error(error, request_id))

    async def request(self, value: Args, request_id: str | None) -> None:
        limits = self.node.config.jmap
        request = api.parse_request(
            value, known=session.capabilities(), max_calls=limits.max_calls_in_request
        )
        running = self.node.jmap_shared.requests
        if not running.enter(self.user.id, limits.max_concurrent_requests):
            raise too_many_requests()
        try:
            state = await session.session_state(self.node, self.user)
            reach = await sharing.shared_accounts(self.node, self.user)
            response = await api.process(
                self.node, self.user, request, session_state=state, shared=reach
            )
        finally:
            running.leave(self.user.id)
        out: Args = {"@type": "Response", **response}
        if request_id is not None:
            out["requestId"] = request_id
        await self.send(out)

    async def start_push(self, types: frozenset[str] | None) -> None:
        self.stop_push()
        watch = StateWatch(self.node, await _account_ids(self.node, self.user), types)
        await watch.start()
        self.push = asyncio.create_task(self._push(watch))

    async def _push(self, watch: StateWatch) -> None:
        try:
            while True:
                change = await watch.next(None)
                if change is not None:
                    await self.send(change)
        except ConnectionError:
            pass
        finally:
            watch.close()

    def stop_push(self) -> None:
        if self.push is not None:
            self.push.cancel()
            self.push = None


def _request_error(error: RequestError, request_id: str | None) -> Args:
    out: Args = {"@type": "RequestError", **error.problem()}
    if request_id is not None:
        out["requestId"] = request_id
    return out




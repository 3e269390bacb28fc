"""JMAP's HTTP resources (RFC 8620, RFC 8887), as routes for the node's
HTTP service (``mailstack.http.service.ROUTES``), which authenticates every
request but the well-known redirect and puts the account at
``request[ACCOUNT]``.

| path | what |
| --- | --- |
| ``/.well-known/jmap`` | redirect to the session (RFC 8620 §2.2) |
| ``/jmap/session`` | the Session object (§2) |
| ``/jmap/api/`` | POST a Request, get a Response (§3) |
| ``/jmap/upload/{accountId}/`` | POST a blob (§6.1) |
| ``/jmap/download/{accountId}/{blobId}/{name}?type=`` | GET a blob (§6.2) |
| ``/jmap/eventsource/`` | push over EventSource (§7.3) |
| ``/jmap/ws/`` | JMAP over WebSocket, with push (RFC 8887) |
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import hdrs, web

from mailstack.common.webkeys import ACCOUNT
from mailstack.jmap import api, blobs, push, pushsub, session, sharing
from mailstack.jmap.blobs import problem_response
from mailstack.jmap.problem import RequestError

if TYPE_CHECKING:
    from mailstack.app import Node
    from mailstack.store import Account

SESSION_PATH = "/jmap/session"
NO_STORE = {hdrs.CACHE_CONTROL: "no-cache, no-store, must-revalidate"}

# What a Host field may hold to be used in the session's URLs: a name or
# an address, and a port (RFC 9110 §7.2, RFC 3986 §3.2.2).
_HOST = re.compile(r"(?:[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def base_url(request: web.Request, node: Node) -> str:
    """Where clients reach us: ``[http] public_url``, else this request's
    scheme and Host (the socket's address when the Host is unusable)."""
    if node.config.http.public_url:
        return node.config.http.public_url
    host = request.headers.get(hdrs.HOST, "")
    if not _HOST.fullmatch(host):
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        address, port = (sockname[0], sockname[1]) if sockname else ("localhost", 0)
        host = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    return f"{request.scheme}://{host}"


def routes(node: Node) -> list[web.AbstractRouteDef]:
    def bind(handler: Callable[[web.Request, Node], Awaitable[web.StreamResponse]]) -> Handler:
        async def bound(request: web.Request) -> web.StreamResponse:
            return await handler(request, node)

        return bound

    return [
        web.get("/.well-known/jmap", well_known, name="public.jmap_well_known"),
        web.get(SESSION_PATH, bind(session_resource)),
        web.post("/jmap/api/", bind(api_resource)),
        web.post("/jmap/upload/{accountId}/", bind(blobs.upload)),
        web.get("/jmap/download/{accountId}/{blobId}/{name}", bind(blobs.download)),
        web.get("/jmap/eventsource/", bind(push.event_source)),
        web.get("/jmap/ws/", bind(push.websocket)),
    ]


async def listener_started(node: Node) -> None:
    """An HTTP listener started: the first starts the node's push to
    PushSubscription URLs."""
    shared = node.jmap_shared
    shared.listeners += 1
    if shared.listeners == 1:
        shared.pusher = shared.pusher or pushsub.Pusher(node)
        await shared.pusher.start()


async def listener_stopped(node: Node) -> None:
    shared = node.jmap_shared
    shared.listeners -= 1
    if shared.listeners == 0 and shared.pusher is not None:
        await shared.pusher.stop()
        shared.pusher = None


async def well_known(request: web.Request) -> web.StreamResponse:
    # RFC 8620 §2.2: the well-known URI redirects to the session resource.
    raise web.HTTPTemporaryRedirect(SESSION_PATH)


async def session_resource(request: web.Request, node: Node) -> web.StreamResponse:
    user: Account = request[ACCOUNT]
    body = await session.session(node, user, base_url(request, node))
    return web.json_response(body, headers=NO_STORE)


async def api_resource(request: web.Request, node: Node) -> web.StreamResponse:
    """RFC 8620 §3.1: POST a Request object, 200 with the Response object;
    request-level errors as problem details (§3.6.1)."""
    user: Account = request[ACCOUNT]
    limits = node.config.jmap
    shared = node.jmap_shared
    if shared.requests.get(user.id, 0) >= limits.max_concurrent_requests:
        return problem_response(
            RequestError(
                "limit",
                "Too many requests at once for this account.",
                status=429,
                limit="maxConcurrentRequests",
            )
        )
    shared.requests[user.id] = shared.requests.get(user.id, 0) + 1
    try:
        body = await read_body(request, limits.max_size_request, node.limits.http_body_timeout)
        request_ = api.parse_request(
            api.decode(body), known=session.capabilities(), max_calls=limits.max_calls_in_request
        )
        state = await session.session_state(node, user)
        reach = await sharing.shared_accounts(node, user)
        response = await api.process(node, user, request_, session_state=state, shared=reach)
    except RequestError as error:
        return problem_response(error)
    finally:
        shared.requests[user.id] -= 1
        if not shared.requests[user.id]:
            del shared.requests[user.id]
    return web.Response(
        body=api.encode(response), content_type="application/json", headers=NO_STORE
    )


async def read_body(request: web.Request, limit: int, timeout: float) -> bytes:
    """The request body, at most ``limit`` octets (RequestError ``limit``
    naming maxSizeRequest, checked before more is buffered), read within
    ``timeout`` seconds."""
    too_big = RequestError(
        "limit",
        f"The request is larger than {limit} octets.",
        limit="maxSizeRequest",
    )
    if request.content_length is not None and request.content_length > limit:
        raise too_big
    parts: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.content.iter_chunked(blobs.CHUNK):
                size += len(chunk)
                if size > limit:
                    raise too_big
                parts.append(chunk)
    except TimeoutError:
        raise RequestError("about:blank", "The body came too slowly.", status=408) from None
    return b"".join(parts)

"""The HTTP service: aiohttp on the node's loop, one per `http`/`https`
listener, serving the routes of every provider in ``ROUTES``.

A route provider is ``def routes(node) -> list[web.AbstractRouteDef]``
(JMAP's today; ACME http-01, MTA-STS and the webmail add theirs to
``ROUTES``). Every route needs a login (``mailstack.http.auth``) unless its
name starts with ``public.`` (``web.get(path, handler, name="public.x")``);
a handler finds the logged-in ``Account`` at ``request[ACCOUNT]`` and the
node at ``request.app[NODE]``. A login is an Authorization field (Basic or
Bearer) or, without one, the webmail's session cookie (a bearer token, with
its CSRF token on state-changing requests: ``mailstack.webmail.session``).

What the service does for every route: HTTP/1.1 keep-alive up to
``[limits] http_idle_timeout``; request heads bounded by ``http_line`` and
``http_headers``, bodies read with ``request.read()`` by ``http_body`` (a
route with its own bound reads ``request.content`` itself); errors answered
as RFC 7807 problem details, never with a traceback; with ``--trace``, each
request head and response head, Authorization and cookies elided.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import hdrs, web

from mailstack.admin import web as admin_web
from mailstack.certs import web as certs_web
from mailstack.clientconfig import web as clientconfig_web
from mailstack.common.auth import Outcome
from mailstack.common.netguard import is_loopback
from mailstack.common.trace import CREDENTIALS_ELIDED, SessionTrace
from mailstack.common.webkeys import ACCOUNT, TRACE
from mailstack.http.auth import (
    REFUSALS,
    Basic,
    Bearer,
    Malformed,
    bearer_challenge,
    challenges,
    parse_authorization,
)
from mailstack.jmap import web as jmap_web
from mailstack.webmail import session as webmail_session
from mailstack.webmail import web as webmail_web
from mailstack.webmail.imageproxy import load_key

if TYPE_CHECKING:
    from mailstack.app import Node

log = logging.getLogger("mailstack.http")

NODE: web.AppKey[Node] = web.AppKey("node")
# The key of the webmail's CSRF tokens (``mailstack.webmail.session``).
SESSION_KEY: web.AppKey[bytes] = web.AppKey("session_key")

RouteProvider = Callable[["Node"], list[web.AbstractRouteDef]]

# Every provider of routes; each is called once per listener at start.
ROUTES: tuple[RouteProvider, ...] = (
    jmap_web.routes,
    certs_web.routes,
    clientconfig_web.routes,
    webmail_web.routes,
    admin_web.routes,
)

PUBLIC = "public."

# Request fields whose value a trace never shows (RFC 9110 §11.6.2, RFC 6265).
_SECRET_FIELDS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def problem(
    status: int,
    detail: str,
    *,
    type: str = "about:blank",
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> web.Response:
    """An RFC 7807 problem details response."""
    body = {"type": type, "status": status, "detail": detail, **extra}
    return web.Response(
        status=status,
        body=json.dumps(body).encode(),
        content_type="application/problem+json",
        headers=headers,
    )


class HttpService:
    """One listener of the HTTP service (``https``: implicit TLS)."""

    def __init__(self, node: Node, name: str, host: str, port: int) -> None:
        self.node = node
        self.name = name
        self.host = host
        self.port = port
        self.tls = name == "https"
        self.bound: list[tuple[str, int]] = []
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        limits = self.node.limits
        app = make_app(self.node)
        self._runner = web.AppRunner(
            app,
            handle_signals=False,
            access_log=None,
            keepalive_timeout=limits.http_idle_timeout,
            max_line_size=limits.http_line,
            max_field_size=limits.http_line,
            max_headers=limits.http_headers,
            shutdown_timeout=1.0,
        )
        await self._runner.setup()
        context = self.node.tls.server_context() if self.tls else None
        site = web.TCPSite(
            self._runner, self.host, self.port, ssl_context=context, reuse_address=True
        )
        await site.start()
        self.bound = [(str(a[0]), int(a[1])) for a in self._runner.addresses]
        await jmap_web.listener_started(self.node)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            await jmap_web.listener_stopped(self.node)


def make_app(node: Node) -> web.Application:
    app = web.Application(
        client_max_size=node.limits.http_body,
        middlewares=[_trace, _errors, _authenticate],
    )
    app[NODE] = node
    app[SESSION_KEY] = load_key(node.config.data_dir / webmail_session.KEY_FILE)
    app.on_response_prepare.append(_trace_response)
    for provider in ROUTES:
        app.add_routes(provider(node))
    return app


# --- the trace ----------------------------------------------------------


def _head_fields(headers: Mapping[str, str]) -> list[str]:
    lines = []
    for name, value in headers.items():
        if name.lower() in _SECRET_FIELDS:
            scheme = value.split(" ", 1)[0] if "authorization" in name.lower() else ""
            value = f"{scheme} {CREDENTIALS_ELIDED}".strip()
        lines.append(f"{name}: {value}")
    return lines


@web.middleware
async def _trace(request: web.Request, handler: Handler) -> web.StreamResponse:
    tracer = request.app[NODE].tracer
    if tracer.enabled:
        protocol = "https" if request.secure else "http"
        peer = request.remote or "?"
        trace = tracer.session(protocol, peer)
        request[TRACE] = trace
        version = f"HTTP/{request.version.major}.{request.version.minor}"
        line = f"{request.method} {request.raw_path} {version}"
        trace.client("\n".join([line, *_head_fields(request.headers)]))
    return await handler(request)


async def _trace_response(request: web.Request, response: web.StreamResponse) -> None:
    trace: SessionTrace | None = request.get(TRACE)
    if trace is not None:
        line = f"HTTP/1.1 {response.status} {response.reason}"
        trace.server("\n".join([line, *_head_fields(response.headers)]))


# --- errors -------------------------------------------------------------


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() != "content-type"}
        return problem(exc.status, exc.reason, headers=headers)
    except (asyncio.CancelledError, ConnectionError):
        raise
    except Exception:
        log.exception("HTTP handler failed: %s %s", request.method, request.path[:200])
        return problem(500, "The server failed to answer this request.")


# --- authentication -----------------------------------------------------


@web.middleware
async def _authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    match = request.match_info
    if match.http_exception is not None or (match.route.name or "").startswith(PUBLIC):
        return await handler(request)
    node = request.app[NODE]
    client = request.remote or ""
    if not request.secure and not (
        node.config.http.allow_plaintext_on_loopback and is_loopback(client)
    ):
        return problem(403, "Credentials are taken only over https.")
    header = request.headers.get(hdrs.AUTHORIZATION)
    cookie = webmail_session.cookie_token(request) if header is None else None
    if cookie is not None:
        return await _cookie_login(request, handler, cookie)
    if header is None:
        return problem(
            401, "This resource needs credentials.", headers={"WWW-Authenticate": challenges()}
        )
    credentials = parse_authorization(header)
    if isinstance(credentials, Malformed):
        if credentials.scheme == "bearer":
            # RFC 6750 §3.1: a malformed request is invalid_request, 400.
            headers = {"WWW-Authenticate": challenges("invalid_request")}
            return problem(400, "The Authorization field is malformed.", headers=headers)
        headers = {"WWW-Authenticate": challenges()}
        return problem(401, "The Authorization field is not usable here.", headers=headers)
    authenticator = node.authenticator
    if isinstance(credentials, Basic):
        login = await authenticator.login("http", credentials.user, credentials.password, client)
    else:
        assert isinstance(credentials, Bearer)
        login = await authenticator.token_login("http", credentials.token, client)
        if login.outcome is Outcome.OK and await webmail_session.ended(node, login):
            return _refused(Outcome.FAILED, True)
    if login.outcome is Outcome.OK and login.account is not None:
        request[ACCOUNT] = login.account
        return await handler(request)
    return _refused(login.outcome, isinstance(credentials, Bearer))


async def _cookie_login(request: web.Request, handler: Handler, secret: str) -> web.StreamResponse:
    """The webmail's session cookie: a bearer token, with the CSRF token of
    its session on every state-changing request (``mailstack.webmail.session``)."""
    node = request.app[NODE]
    public_url = node.config.http.public_url or None
    if not webmail_session.csrf_ok(request, request.app[SESSION_KEY], secret, public_url):
        return problem(403, "This request lacks the session's CSRF token.")
    login = await node.authenticator.token_login("http", secret, request.remote or "")
    if login.outcome is Outcome.OK and login.account is not None:
        if await webmail_session.ended(node, login):
            return _refused(Outcome.FAILED, True, cookie=True)
        request[ACCOUNT] = login.account
        return await handler(request)
    return _refused(login.outcome, True, cookie=True)


def _refused(outcome: Outcome, bearer: bool, *, cookie: bool = False) -> web.Response:
    status, detail = REFUSALS[outcome]
    headers = {}
    if status == 401:
        # No Basic challenge for a page's expired cookie: the browser would
        # answer it with a password dialog of its own.
        error = "invalid_token" if bearer else None
        headers["WWW-Authenticate"] = bearer_challenge(error) if cookie else challenges(error)
    elif status in (429, 503):
        headers["Retry-After"] = "30"
    return problem(status, detail, headers=headers)

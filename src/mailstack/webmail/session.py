"""The webmail's login session: a bearer token (the same tokens as
``mailstack token create``, RFC 6750) kept in a cookie the page's script
cannot read, and a CSRF token bound to it.

* The cookie (RFC 6265bis): ``HttpOnly`` (no script reads it),
  ``SameSite=Strict`` (no other site's page sends it), ``Secure`` except
  on plain HTTP from loopback, ``Path=/``.
* The HTTP service (``mailstack.http.service``) takes the cookie as it takes
  ``Authorization: Bearer``, through the one authenticator (throttled,
  logged), when a request has no Authorization field.
* A request carrying the cookie and an ``Origin`` must name our own origin.
  A state-changing request (any method but GET, HEAD and OPTIONS, and a
  WebSocket handshake) carrying the cookie must also carry ``X-CSRF-Token``: an HMAC-SHA256 of the
  session's token under a key of the node (``webmail/session.key`` in the
  data directory, 0600). Another site can neither read it nor set a custom
  field on a cross-site request without a CORS preflight we never grant.
* A session ends (its token, named ``webmail``, removed from the store) when it has gone unused
  for ``[webmail] session_idle`` seconds, or ``session_lifetime`` seconds
  after its login however busy (``expired``), as OWASP's session management
  guidance asks of both timeouts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from mailstack.common.events import log_event

if TYPE_CHECKING:
    from mailstack.app import Node
    from mailstack.common.auth import Login
    from mailstack.store.contract.access import Token
    from mailstack.webmail.config import WebmailConfig

COOKIE = "mailstack_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
KEY_FILE = Path("webmail") / "session.key"
TOKEN_NAME = "webmail"  # the name of the tokens logins make (``mailstack token list``)

log = logging.getLogger(__name__)

# RFC 6750 §2.1 b64token, as a bearer token's secret is.
_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def now() -> float:
    """The clock sessions are judged by (a function, so tests can move it)."""
    return time.time()


def expired(token: Token, config: WebmailConfig, at: float) -> bool:
    """True when the session of ``token`` is over at ``at`` (Unix time):
    older than ``session_lifetime``, or idle longer than ``session_idle``
    since its last noted use before this one (or since its login)."""
    if at - token.created > config.session_lifetime:
        return True
    last = token.used_before if token.used_before is not None else token.created
    return at - last > config.session_idle


async def ended(node: Node, login: Login) -> bool:
    """True when a good login by a webmail session's token (from the cookie,
    or copied into an Authorization field) belongs to a session that is over
    (``expired``); the token is then removed, so no copy of it works again.
    Tokens made with ``mailstack token create`` are not sessions."""
    token = login.token
    if token is None or token.name != TOKEN_NAME:
        return False
    if not expired(token, node.config.webmail, now()):
        return False
    if node.store is not None:
        await node.store.token_remove(token.id)
    user = login.account.address if login.account else ""
    log_event(log, logging.INFO, "webmail session ended", {"user": user, "token": token.id})
    return True


def cookie_token(request: web.Request) -> str | None:
    """The session token the request's cookie holds, if it looks like one."""
    value = request.cookies.get(COOKIE)
    if value is None or len(value) > 200 or not _TOKEN.fullmatch(value):
        return None
    return value


def csrf_token(key: bytes, secret: str) -> str:
    """The CSRF token of the session whose token is ``secret``."""
    mac = hmac.new(key, b"csrf\n" + secret.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def same_origin(request: web.Request, public_url: str | None) -> bool:
    """False when the request says it comes from another origin (RFC 6454
    ``Origin``): a sibling host is same-site, so SameSite does not stop it."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    ours = {f"{request.scheme}://{request.host}".lower()}
    if public_url:
        ours.add(public_url.rstrip("/").lower())
    return origin.lower() in ours


def csrf_ok(request: web.Request, key: bytes, secret: str, public_url: str | None = None) -> bool:
    """True when the request may act with the session's cookie: from our
    own origin (when it names one), and a safe method that is not a
    WebSocket handshake (whose requests act, and which a page of any origin
    may open), or with the session's CSRF token in ``X-CSRF-Token``."""
    if not same_origin(request, public_url):
        return False
    upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
    if request.method in SAFE_METHODS and not upgrade:
        return True
    given = request.headers.get(CSRF_HEADER, "")
    return hmac.compare_digest(given.encode(), csrf_token(key, secret).encode())


def set_cookie(response: web.StreamResponse, request: web.Request, secret: str) -> None:
    # Secure unless this is plain HTTP (allowed only from loopback).
    response.set_cookie(
        COOKIE, secret, path="/", httponly=True, samesite="Strict", secure=request.secure
    )


def clear_cookie(response: web.StreamResponse, request: web.Request) -> None:
    response.del_cookie(COOKIE, path="/", samesite="Strict", secure=request.secure)

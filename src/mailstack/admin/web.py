"""The admin pages and the admin JSON endpoints on the node's HTTP service.

Every ``/admin/api/`` route calls an operation of ``mailstack.admin.ops``
(the same the command line calls) for the logged-in account, and only for an
account that has the admin role *now* (read again from the store on every
request, so taking the role away takes effect at once): no login is 401
(the HTTP service's middleware), a login without the role 403. A login is
the webmail's session cookie (with its CSRF token on every state-changing
request, ``mailstack.webmail.session``), or an ``Authorization`` field
(a bearer token, as for JMAP, or Basic) for scripts. docs/admin.md lists
the endpoints.

The pages (``/admin/`` and ``/admin/static/{name}``) are public files with
no secret in them, under the webmail's strict CSP; what they show comes from
the API.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import TYPE_CHECKING, Any

from aiohttp import hdrs, web

from mailstack.admin.ops import Admin
from mailstack.common.webkeys import ACCOUNT
from mailstack.errors import AlreadyExists, MailstackError, NotFound

if TYPE_CHECKING:
    from mailstack.app import Node

PAGE = "/admin/"
API = "/admin/api"
NO_STORE = {hdrs.CACHE_CONTROL: "no-store"}
# As the webmail's app: its own scripts, styles and requests only.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
STATIC = {
    "admin.js": "text/javascript",
    "admin.css": "text/css",
    "link.js": "text/javascript",
}
# At most this many log lines in one answer.
MAX_LINES = 1000

Operation = Callable[[web.Request, Admin], Awaitable[Any]]


def _asset(name: str) -> bytes:
    return resources.files("mailstack.admin").joinpath("static", name).read_bytes()


def _problem(status: int, detail: str) -> web.Response:
    body = {"type": "about:blank", "status": status, "detail": detail}
    return web.Response(
        status=status,
        body=json.dumps(body).encode(),
        content_type="application/problem+json",
        headers=NO_STORE | SECURITY,
    )


class BadRequest(MailstackError):
    """The request's body or parameters are not what the endpoint takes."""


async def _body(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise BadRequest("send a JSON object (Content-Type: application/json)")
    try:
        body = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("the body is not JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("send a JSON object")
    return body


def _text(body: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > 1024:
        raise BadRequest(f"{name}: a non-empty string")
    return value


def _flag(body: dict[str, Any], name: str) -> bool | None:
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise BadRequest(f"{name}: true or false")
    return value


def _octets(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if type(value) is not int or value < 0:
        raise BadRequest(f"{name}: a number of octets, 0 or more")
    return value


def _number(text: str, name: str) -> int:
    if not text.isdigit() or len(text) > 18:
        raise BadRequest(f"{name}: a number")
    return int(text)


def _count(request: web.Request) -> int:
    text = request.query.get("count", "100")
    return min(MAX_LINES, max(1, _number(text, "count")))


class AdminWeb:
    def __init__(self, node: Node) -> None:
        self.node = node

    def resolver(self) -> Any:
        """What the live DNS check asks: the node's own DNS listener when it
        has one (it serves the node's zones and resolves the rest for
        loopback clients, as `mailstack domain check` asks it), else the
        node's configured resolver."""
        from mailstack.dns.resolver import Resolver

        bound = self.node.addresses().get("dns")
        if bound:
            host, port = bound[0]
            if host in ("0.0.0.0", "::"):
                host = "127.0.0.1" if host == "0.0.0.0" else "::1"
            return Resolver(forwarders=[(host, port)])
        if not self.node.resolver_configured:
            raise MailstackError("the node has no resolver: set [dns.resolver] forwarders")
        return self.node.resolver

    # --- pages ----------------------------------------------------------

    async def page(self, request: web.Request) -> web.StreamResponse:
        headers = {"Content-Security-Policy": CSP, "X-Frame-Options": "DENY"}
        return web.Response(
            body=_asset("admin.html"),
            content_type="text/html",
            charset="utf-8",
            headers=headers | SECURITY | {hdrs.CACHE_CONTROL: "no-cache"},
        )

    async def to_page(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(PAGE)

    async def static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        kind = STATIC.get(name)
        if kind is None:
            return _problem(404, "No such file.")
        return web.Response(
            body=_asset(name),
            content_type=kind,
            charset="utf-8",
            headers=SECURITY | {hdrs.CACHE_CONTROL: "no-cache"},
        )

    # --- the API --------------------------------------------------------

    def api(self, operation: Operation, status: int = 200) -> Callable[..., Any]:
        """A handler that runs ``operation`` for an admin, and answers its
        result as JSON (errors as problem details, never a traceback)."""

        async def handler(request: web.Request) -> web.StreamResponse:
            store = self.node.store
            assert store is not None
            who = await store.account_get(request[ACCOUNT].address)
            if who is None or not who.admin or who.disabled:
                return _problem(403, "This needs an account with the admin role.")
            admin = Admin(store, self.node.config, who.address, resolver=self.resolver)
            try:
                result = await operation(request, admin)
            except BadRequest as exc:
                return _problem(400, str(exc))
            except NotFound as exc:
                return _problem(404, str(exc))
            except AlreadyExists as exc:
                return _problem(409, str(exc))
            except MailstackError as exc:
                return _problem(400, str(exc))
            if request.method != "GET":
                # An account disabled or removed loses its sessions now.
                self.node.authenticator.logins.check_now()
            return web.json_response(
                result if result is not None else {}, status=status, headers=NO_STORE | SECURITY
            )

        return handler

    def routes(self) -> list[web.AbstractRouteDef]:
        api = self.api
        return [
            web.get("/admin", self.to_page, name="public.admin-redirect"),
            web.get(PAGE, self.page, name="public.admin-page"),
            web.get("/admin/static/{name}", self.static, name="public.admin-static"),
            web.get(f"{API}/me", api(me)),
            web.get(f"{API}/domains", api(domain_list)),
            web.post(f"{API}/domains", api(domain_add, 201)),
            web.get(f"{API}/domains/{{domain}}/records", api(domain_records)),
            web.get(f"{API}/domains/{{domain}}/check", api(domain_check)),
            web.delete(f"{API}/domains/{{domain}}", api(domain_remove)),
            web.get(f"{API}/accounts", api(account_list)),
            web.post(f"{API}/accounts", api(account_add, 201)),
            web.get(f"{API}/accounts/{{address}}", api(account_get)),
            web.patch(f"{API}/accounts/{{address}}", api(account_change)),
            web.delete(f"{API}/accounts/{{address}}", api(account_remove)),
            web.get(f"{API}/aliases", api(alias_list)),
            web.post(f"{API}/aliases", api(alias_add, 201)),
            web.delete(f"{API}/aliases", api(alias_remove)),
            web.get(f"{API}/dkim", api(dkim_list)),
            web.post(f"{API}/dkim/{{domain}}/rotate", api(dkim_rotate)),
            web.get(f"{API}/queue", api(queue_list)),
            web.post(f"{API}/queue/retry", api(queue_retry_all)),
            web.get(f"{API}/queue/{{id}}", api(queue_show)),
            web.post(f"{API}/queue/{{id}}/retry", api(queue_retry)),
            web.post(f"{API}/queue/{{id}}/bounce", api(queue_bounce)),
            web.post(f"{API}/queue/{{id}}/hold", api(queue_hold)),
            web.post(f"{API}/queue/{{id}}/release", api(queue_release)),
            web.delete(f"{API}/queue/{{id}}", api(queue_delete)),
            web.get(f"{API}/logs", api(logs)),
            web.get(f"{API}/logins/failed", api(failed_logins)),
            web.get(f"{API}/certificates", api(certificates)),
        ]


# --- the operations, one per endpoint -----------------------------------


async def me(request: web.Request, admin: Admin) -> Any:
    return {"address": admin.actor}


async def domain_list(request: web.Request, admin: Admin) -> Any:
    return await admin.domain_list()


async def domain_add(request: web.Request, admin: Admin) -> Any:
    body = await _body(request)
    name = _text(body, "domain")
    assert name is not None
    return await admin.domain_add(
        name,
        postmaster=_text(body, "postmaster", required=False),
        force=bool(_flag(body, "force")),
        selector=_text(body, "selector", required=False),
        no_dns=bool(_flag(body, "noDns")),
    )


async def domain_records(request: web.Request, admin: Admin) -> Any:
    return await admin.domain_records(request.match_info["domain"])


async def domain_check(request: web.Request, admin: Admin) -> Any:
    return await admin.domain_check(request.match_info["domain"])


async def domain_remove(request: web.Request, admin: Admin) -> Any:
    await admin.domain_remove(request.match_info["domain"])
    return {"removed": request.match_info["domain"]}


async def account_list(request: web.Request, admin: Admin) -> Any:
    return await admin.account_list(request.query.get("domain") or None)


async def account_add(request: web.Request, admin: Admin) -> Any:
    body = await _body(request)
    address, password = _text(body, "address"), _text(body, "password")
    assert address is not None and password is not None
    return await admin.account_add(
        address, password, quota=_octets(body, "quota") or 0, admin=bool(_flag(body, "admin"))
    )


async def account_get(request: web.Request, admin: Admin) -> Any:
    return await admin.account_get(request.match_info["address"])


async def account_change(request: web.Request, admin: Admin) -> Any:
    """Quota, admin role, disabled, and a new password: what the body names."""
    body = await _body(request)
    address = request.match_info["address"]
    quota, role, disabled = _octets(body, "quota"), _flag(body, "admin"), _flag(body, "disabled")
    password = _text(body, "password", required=False)
    if address.strip().lower() == admin.actor and (role is False or disabled):
        raise BadRequest("an admin cannot take away their own role or disable themselves")
    if password is not None:
        await admin.set_password(address, password)
    return await admin.account_set(address, quota=quota, admin=role, disabled=disabled)


async def account_remove(request: web.Request, admin: Admin) -> Any:
    address = request.match_info["address"]
    if address.strip().lower() == admin.actor:
        raise BadRequest("an admin cannot remove their own account")
    await admin.account_remove(address)
    return {"removed": address}


async def alias_list(request: web.Request, admin: Admin) -> Any:
    return await admin.alias_list()


async def alias_add(request: web.Request, admin: Admin) -> Any:
    body = await _body(request)
    source, target = _text(body, "source"), _text(body, "target")
    assert source is not None and target is not None
    return await admin.alias_add(source, target)


async def alias_remove(request: web.Request, admin: Admin) -> Any:
    source = request.query.get("source")
    if not source:
        raise BadRequest("source: the alias's source address")
    await admin.alias_remove(source, request.query.get("target") or None)
    return {"removed": source}


async def dkim_list(request: web.Request, admin: Admin) -> Any:
    return await admin.dkim_list(request.query.get("domain") or None)


async def dkim_rotate(request: web.Request, admin: Admin) -> Any:
    selector = None
    if request.can_read_body:
        selector = _text(await _body(request), "selector", required=False)
    return await admin.dkim_rotate(request.match_info["domain"], selector)


def _entry(request: web.Request) -> int:
    return _number(request.match_info["id"], "id")


async def queue_list(request: web.Request, admin: Admin) -> Any:
    return await admin.queue_list()


async def queue_show(request: web.Request, admin: Admin) -> Any:
    return await admin.queue_show(_entry(request))


async def queue_retry(request: web.Request, admin: Admin) -> Any:
    return {"due": await admin.queue_retry(_entry(request))}


async def queue_retry_all(request: web.Request, admin: Admin) -> Any:
    return {"due": await admin.queue_retry(None)}


async def queue_bounce(request: web.Request, admin: Admin) -> Any:
    return await admin.queue_bounce(_entry(request))


async def queue_hold(request: web.Request, admin: Admin) -> Any:
    return {"held": await admin.queue_hold(_entry(request), True)}


async def queue_release(request: web.Request, admin: Admin) -> Any:
    return {"released": await admin.queue_hold(_entry(request), False)}


async def queue_delete(request: web.Request, admin: Admin) -> Any:
    await admin.queue_delete(_entry(request))
    return {"removed": _entry(request)}


async def logs(request: web.Request, admin: Admin) -> Any:
    return await asyncio.to_thread(admin.recent_log, _count(request))  # reads files


async def failed_logins(request: web.Request, admin: Admin) -> Any:
    return await asyncio.to_thread(admin.failed_logins, _count(request))  # reads files


async def certificates(request: web.Request, admin: Admin) -> Any:
    return await asyncio.to_thread(admin.certificates)  # reads files


def routes(node: Node) -> list[web.AbstractRouteDef]:
    return AdminWeb(node).routes()
